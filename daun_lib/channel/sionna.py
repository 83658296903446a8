"""Sionna's TR 38.901 UMa channels as a second, independent data source (issue 12).

:func:`simulate_sionna` draws users exactly as :func:`daun_lib.channel.simulate`
does (uniform in the area) and returns a :class:`~daun_lib.channel.ChannelBatch`
of the same form, but the channels come from Sionna's system-level UMa model
(``sionna.phy.channel.tr38901.UMa``, TR 38.901 v16.1 tables, Sec. 7.5 steps
1-11, uplink), not from the package's generator.  The set-up follows the
package's geometry:

* BS ``m`` at ``(bs_positions[m], bs_height_m)``, a horizontal ULA of ``N``
  omnidirectional, vertically polarised elements at ``antenna_spacing``
  wavelengths (a ``PanelArray`` of one row), its broadside rotated by the
  bearing ``array_normals[m]`` so that its axis is
  ``(-sin(normal_m), cos(normal_m))`` (:attr:`Scenario.array_axes`);
* users single-antenna (omni), outdoor, static, at ``ut_height_m``;
* path loss and shadow fading off; LoS forced to the scenario's ``los_model``
  (``"always"``: every link LoS; ``"3gpp"``: Sionna's own TR 38.901 Table
  7.4.2-1 draw; a probability ``p``: independent links LoS with probability p);
* narrowband: the frequency-flat channel at the carrier, ``h = sum_p a_p``
  over Sionna's paths (the baseband frequency response at f = 0);
* model (1) with per-antenna SNR as in the package: each ``h_m`` scaled to
  ``||h_m||^2 = N``, ``y_m = sqrt(10^(snr_db/10)) h_m + n_m``, ``n_m ~ CN(0, I_N)``.

Sionna is an optional extra (``pip install 'daun_lib[sionna]'``,
``sionna-no-rt==2.2.0``); it is imported only when :func:`simulate_sionna`
runs, so the core install does not need it.  Sionna always simulates the 3-D
geometry (heights included), whatever ``scenario.geometry`` says: the geometry
field only changes the package's dictionaries.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._checks import check_scenario
from .._validation import positive, rng_from_seed
from ..scenario import Scenario
from .signals import ChannelBatch, check_snr

__all__ = ["SIONNA_EXTRA", "SIONNA_SPEC_VERSION", "simulate_sionna", "sionna_available"]

#: The optional dependency that provides Sionna (``pip install 'daun_lib[sionna]'``).
SIONNA_EXTRA = "sionna-no-rt==2.2.0"
#: TR 38.901 version of the parameter tables asked from Sionna (the package's channel uses v16.1).
SIONNA_SPEC_VERSION = "16.1"
#: Users per Sionna call (bounds memory: Sionna's ray tensors grow with users x BSs x antennas).
_BATCH = 500


def sionna_available() -> bool:
    """True when ``sionna.phy.channel.tr38901`` can be imported (the ``sionna`` extra is installed)."""
    try:
        _import_sionna()
    except ImportError:
        return False
    return True


def _import_sionna():
    try:
        from sionna.phy import config
        from sionna.phy.channel.tr38901 import PanelArray, UMa
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"simulate_sionna needs Sionna, the optional extra 'sionna' of daun_lib: "
            f"pip install 'daun_lib[sionna]' (or pip install {SIONNA_EXTRA}); import failed: {exc}"
        ) from exc
    return config, UMa, PanelArray


def _normals(scenario: Scenario) -> np.ndarray:
    """(M,) float: bearing of each array's broadside, radians (``array_axes`` if the scenario has them)."""
    axes = getattr(scenario, "array_axes", None)
    if axes is not None:
        axes = np.asarray(axes, dtype=float)
        return np.arctan2(-axes[:, 0], axes[:, 1])
    # the paper's default broadside rule: BSs left of the area face +x, the others -x
    return np.where(np.asarray(scenario.bs_array)[:, 0] < 0, 0.0, np.pi)


def _sionna_seed(seed: Any, rng: np.random.Generator) -> int:
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> np.uint64(1))
    return int(rng.integers(0, 2**62))


def simulate_sionna(
    scenario: Scenario, n: int, snr_db: Any, seed: Any = None, *, precision: str = "double"
) -> ChannelBatch:
    """Draw ``n`` users uniformly in the area and their received signals (1) from Sionna's UMa.

    Parameters
    ----------
    scenario : Scenario
        Geometry (BS positions and heights, array orientation, user height),
        N, element spacing, carrier and ``los_model``.
    n : int
        Number of samples (>= 1).
    snr_db : float or (n,) float
        Per-antenna SNR in dB, within :data:`daun_lib.channel.SNR_DB_RANGE`.
    seed : int, None or numpy.random.Generator
        Draws the positions and the noise, and seeds Sionna (``sionna.phy.config.seed``).
        The same int seed gives identical output on the same machine and
        Sionna version.  Torch's global random state is restored afterwards.
    precision : "double" or "single"
        Sionna's working precision.

    Returns
    -------
    ChannelBatch
        ``y`` (n, M, N) complex128, ``positions`` (n, 2), ``los`` (n, M) bool
        (Sionna's LoS state of each link), ``snr_db`` (n,), ``h`` (n, M, N)
        complex128 with ``||h[i, m]||^2 = N``.

    Raises
    ------
    ImportError
        Sionna is not installed (names the extra ``sionna``).
    ValueError
        Naming ``scenario``, ``n``, ``snr_db``, ``seed`` or ``precision``.

    Notes
    -----
    Random draws, in order: positions and (for a numeric ``los_model``) the
    LoS states from the numpy stream of ``seed``, then Sionna's seed, then
    Sionna's channels in blocks of ``_BATCH`` users (one topology per user:
    batch index = user, one UT, M BSs, so users are independent as in
    :func:`daun_lib.channel.simulate`), then the noise.  This module sets
    Sionna's global seed.
    """
    scenario = check_scenario(scenario)
    if getattr(scenario, "ut_height_range_m", None) is not None:
        raise ValueError(
            "scenario: ut_height_range_m (per-user heights) is not supported by the Sionna adapter; every "
            "user would sit at ut_height_m (use a scenario without the range, or channel.simulate)"
        )
    if not scenario.multipath:
        raise ValueError(
            "scenario: multipath=False (pure-LoS links) is not supported by the Sionna adapter; Sionna's UMa "
            "channels always carry their clusters (use channel.simulate for pure-LoS data)"
        )
    n = positive(n, "n", integer=True)
    snr = check_snr(snr_db, n)
    if precision not in ("double", "single"):
        raise ValueError(f"precision: expected 'double' or 'single', got {precision!r}")
    rng = rng_from_seed(seed)
    config, UMa, PanelArray = _import_sionna()
    import torch

    M, N = scenario.n_bs, scenario.n_antennas
    half = scenario.area_size / 2.0
    positions = rng.uniform(-half, half, size=(n, 2))
    lm = scenario.los_model
    forced = None
    if not isinstance(lm, str):
        forced = rng.random((n, M)) < float(lm)
    sionna_seed = _sionna_seed(seed, rng)

    fc = float(scenario.carrier_hz)
    spacing = float(scenario.antenna_spacing)
    rdtype = torch.float64 if precision == "double" else torch.float32
    torch_state = torch.get_rng_state()
    try:
        config.seed = sionna_seed
        array_kw = dict(
            num_rows_per_panel=1,
            polarization="single",
            polarization_type="V",
            antenna_pattern="omni",
            carrier_frequency=fc,
            precision=precision,
            device="cpu",
        )
        bs_array = PanelArray(num_cols_per_panel=N, element_horizontal_spacing=spacing, **array_kw)
        ut_array = PanelArray(num_cols_per_panel=1, **array_kw)
        model = UMa(
            carrier_frequency=fc,
            o2i_model="low",
            ut_array=ut_array,
            bs_array=bs_array,
            direction="uplink",
            enable_pathloss=False,
            enable_shadow_fading=False,
            precision=precision,
            device="cpu",
            spec_version=SIONNA_SPEC_VERSION,
        )
        bs_xyz = np.concatenate([scenario.bs_array, np.full((M, 1), float(scenario.bs_height_m))], axis=1)
        bs_ori = np.zeros((M, 3))
        bs_ori[:, 0] = _normals(scenario)  # yaw (bearing); no down-tilt, no slant
        h = np.empty((n, M, N), dtype=complex)
        los = np.empty((n, M), dtype=bool)
        for start in range(0, n, _BATCH):
            stop = min(start + _BATCH, n)
            b = stop - start

            def t(a, b=b):
                return torch.as_tensor(np.ascontiguousarray(a), dtype=rdtype)

            ut = np.concatenate([positions[start:stop], np.full((b, 1), float(scenario.ut_height_m))], axis=1)
            if lm == "always":
                los_arg = True
            elif lm == "3gpp":
                los_arg = "random"
            else:
                los_arg = torch.as_tensor(forced[start:stop])  # (batch, num_bs, num_ut=1)
                los_arg = los_arg[:, :, None]
            model.set_topology(
                ut_loc=t(ut[:, None, :]),
                bs_loc=t(np.broadcast_to(bs_xyz, (b, M, 3))),
                ut_orientations=t(np.zeros((b, 1, 3))),
                bs_orientations=t(np.broadcast_to(bs_ori, (b, M, 3))),
                ut_velocities=t(np.zeros((b, 1, 3))),
                in_state=torch.zeros(b, 1, dtype=torch.bool),
                los=los_arg,
            )
            # the topology buffers are updated in place by later calls: copy
            los[start:stop] = model._scenario.los[:, :, 0].detach().cpu().numpy().copy()
            a, _tau = model(1, 1.0)  # (b, M rx, N rx ant, 1 tx, 1 tx ant, paths, 1 time sample)
            h[start:stop] = a[:, :, :, 0, 0, :, 0].sum(dim=-1).detach().cpu().numpy().astype(complex)
    finally:
        torch.set_rng_state(torch_state)
    norm = np.linalg.norm(h, axis=-1, keepdims=True)
    if not (np.isfinite(h).all() and (norm > 0).all()):
        raise FloatingPointError("simulate_sionna: Sionna returned a zero or non-finite channel")
    h *= np.sqrt(N) / norm
    amp = np.sqrt(10.0 ** (snr / 10.0))
    noise = rng.standard_normal((n, M, N, 2)) @ np.array([1.0, 1j]) / np.sqrt(2.0)
    y = amp[:, None, None] * h + noise
    return ChannelBatch(y=y, positions=positions, los=los, snr_db=snr, h=h)
