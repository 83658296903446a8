"""Channel vectors (steps 10-11 of TR 38.901 Sec. 7.5) and the received signals of model (1).

``y_m = sqrt(omega) h_m + n_m``, ``n_m ~ CN(0, I_N)``, ``||h_m||^2 = N``; see :mod:`daun_lib.channel`.

Pure LoS (``Scenario(multipath=False)``): the ray phases are drawn exactly as for the clustered
channel (one uniform per ray, LoS ray first, same shape and order), and only the LoS ray is
summed.  Step 11 scales ``h_m = c sqrt(P_LoS) exp(j Phi_LoS) a(u)`` (``a`` unit-norm,
:func:`daun_lib.scenario.steering`) to ``||h_m||^2 = N``, i.e. ``c sqrt(P_LoS) = sqrt(N)``, so
``h_m = exp(j Phi_LoS) sqrt(N) a(u)``, element ``n`` being ``exp(j (Phi_LoS + array_phase(u)[n]))``;
that is how it is computed (every element has modulus 1, no normalisation step is needed).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .._validation import check_scenario, positive, rng_from_seed, snr_db_per_sample
from ..scenario import Scenario, array_phase, element_offsets, phase_step
from .clusters import (
    Clusters,
    LinkRandoms,
    draw_link_randoms,
    geometry_of,
    link_fields,
    ray_azimuths,
    ray_zeniths,
)
from .los import draw_los
from .tables import RAY_OFFSETS

__all__ = ["ChannelBatch", "SNR_DB_RANGE", "channel_vectors", "simulate"]

_CHUNK = 256  # samples per block when summing rays (memory bound, fixed for determinism)


class ChannelBatch(NamedTuple):
    """A batch of received signals, model (1).

    Attributes
    ----------
    y : (n, M, N) complex128
        Received signals ``sqrt(omega) h_m + n_m``.
    positions : (n, 2) float64
        User positions, metres.
    los : (n, M) bool
        Whether the link user -> BS m has a LoS path.
    snr_db : (n,) float64
        Per-sample SNR, dB (``omega = 10^(snr_db/10)`` per antenna).
    h : (n, M, N) complex128
        Noiseless channels, each scaled to ``||h_m||^2 = N``.
    ut_heights : (n,) float64 or None
        Each user's height, metres: drawn in ``scenario.ut_height_range_m`` when it is set,
        else ``scenario.ut_height_m`` for every user (the ``"2d"`` model does not use it).
        ``None`` only for a batch built elsewhere without heights.
    """

    y: np.ndarray
    positions: np.ndarray
    los: np.ndarray
    snr_db: np.ndarray
    h: np.ndarray
    ut_heights: np.ndarray | None = None


def _blocks(n: int) -> list[slice]:
    return [slice(s, min(s + _CHUNK, n)) for s in range(0, n, _CHUNK)]


def _rows(r: LinkRandoms, sl: slice) -> LinkRandoms:
    return LinkRandoms(*(None if f is None else f[sl] for f in r))


def _block(heights: np.ndarray | None, sl: slice) -> np.ndarray | None:
    return None if heights is None else heights[sl]


def _ray_sines(ray_angles: np.ndarray, ray_zen: np.ndarray | None) -> np.ndarray:
    """What a horizontal ULA measures of each ray, ``u = sin(zenith) sin(azimuth - broadside)``.

    ``sin(zenith)`` is the cosine of the elevation and ``sin(azimuth - broadside)`` the horizontal
    direction's component along the array axis; ``ray_zen`` None (2-D) gives ``sin(ray_angles)``.
    """
    if ray_zen is None:
        return np.sin(ray_angles)
    return np.sin(ray_zen) * np.sin(ray_angles)


def _sum_rays(
    N: int,
    spacing: float,
    los_power: np.ndarray,
    los_sine: np.ndarray,
    powers: np.ndarray,
    ray_sines: np.ndarray,
    rng: np.random.Generator,
    out: np.ndarray,
    multipath: bool = True,
) -> None:
    """Steps 10-11 for one block: ``out (b, M, N)`` = normalised sum of the rays.

    ``powers (b, M, c)`` and ``ray_sines (b, M, c, R)`` (the measured ``u = sin(theta)`` of each
    ray) hold the cluster slots that are summed; ``los_sine (b, M)`` is the LoS ray's ``u``.
    Draws the ray phases of the block (one uniform per ray, shape ``(b, M, 1 + c R)``, LoS ray
    first).  ``multipath=False``: the same draw, then ``out = exp(j (Phi_LoS + array_phase(u)))``
    (the LoS ray alone, normalised; module docstring); every link needs ``los_power > 0``.
    """
    b, M, c, R = ray_sines.shape
    if not multipath:
        if not (los_power > 0).all():
            raise ValueError(
                "clusters: multipath=False keeps only the LoS ray, but a link has no LoS power (los_power == 0)"
            )
        phase = rng.uniform(-np.pi, np.pi, size=(b, M, 1 + c * R))  # the draw of the clustered channel
        out[...] = np.exp(1j * (phase[..., :1] + array_phase(los_sine, N, spacing)))
        return
    pw = np.concatenate(
        [los_power[..., None], np.broadcast_to(powers[..., None] / R, (b, M, c, R)).reshape(b, M, c * R)], axis=-1
    )
    sn = np.concatenate([los_sine[..., None], ray_sines.reshape(b, M, c * R)], axis=-1)
    phase = rng.uniform(-np.pi, np.pi, size=pw.shape)
    # the phase of scenario.array_phase, element by element: element 0 at k0 * u, then steps of u
    k0 = element_offsets(N)[0]
    u = phase_step(sn, spacing)  # phase step per element
    w = np.sqrt(pw) * np.exp(1j * (phase + k0 * u))  # ray weight x element 0
    step = np.exp(1j * u)
    for i in range(N):  # h[k] = sum_r w_r step_r^k
        out[:, :, i] = w.sum(axis=-1)
        w *= step
    energy = np.sum(np.abs(out) ** 2, axis=-1, keepdims=True)
    if not (np.isfinite(energy).all() and (energy > 0).all()):
        raise ValueError("clusters: a link's rays sum to a zero or non-finite channel (check its powers and angles)")
    out *= np.sqrt(N / energy)


def _used_slots(powers: np.ndarray) -> int:
    """Number of leading cluster slots that carry power somewhere in ``powers (n, M, C)``."""
    used = np.flatnonzero((powers > 0).any(axis=(0, 1)))
    return int(used.max()) + 1 if used.size else 0


def _check_clusters(clusters: Any, M: int) -> None:
    if not isinstance(clusters, Clusters):
        raise ValueError(f"clusters: expected a Clusters tuple from draw_clusters, got {type(clusters).__name__}")
    la = np.asarray(clusters.los_angle)
    if la.ndim != 2 or la.shape[1] != M:
        raise ValueError(f"clusters: expected {M} BSs, got shape {la.shape}")
    n = la.shape[0]
    if n < 1:
        raise ValueError("clusters: expected at least one sample (n >= 1), got an empty batch")
    want = {
        "los_power": (n, M),
        "los_angle": (n, M),
        "powers": (n, M, None),
        "angles": (n, M, None),
        "ray_angles": (n, M, None, RAY_OFFSETS.size),
    }
    arrays = {}
    for name, shape in want.items():
        a = np.asarray(getattr(clusters, name))
        if (
            a.dtype == object
            or not np.issubdtype(a.dtype, np.floating)
            or a.ndim != len(shape)
            or any(s is not None and s != t for s, t in zip(shape, a.shape, strict=True))
        ):
            raise ValueError(
                f"clusters.{name}: expected a float array of shape {shape} (None: any), got {a.dtype} {a.shape}"
            )
        if not np.isfinite(a).all():
            raise ValueError(f"clusters.{name}: contains NaN or inf")
        arrays[name] = a
    if arrays["powers"].shape[2] != arrays["ray_angles"].shape[2]:
        raise ValueError(
            f"clusters.ray_angles: expected {arrays['powers'].shape[2]} cluster slots like powers, "
            f"got {arrays['ray_angles'].shape[2]}"
        )
    for name, like in (("los_sine", "los_angle"), ("ray_zeniths", "ray_angles")):
        v = getattr(clusters, name, None)
        if v is None:
            continue
        a = np.asarray(v)
        if a.dtype == object or not np.issubdtype(a.dtype, np.floating) or a.shape != arrays[like].shape:
            raise ValueError(
                f"clusters.{name}: expected a float array of the shape of {like} {arrays[like].shape}, "
                f"got {a.dtype} {a.shape}"
            )
        if not np.isfinite(a).all():
            raise ValueError(f"clusters.{name}: contains NaN or inf")
    if clusters.los_sine is not None and (np.abs(clusters.los_sine) > 1.0).any():
        raise ValueError("clusters.los_sine: expected values in [-1, 1] (a direction's sine)")
    if (arrays["powers"] < 0).any() or (arrays["los_power"] < 0).any():
        raise ValueError("clusters.powers / clusters.los_power: expected non-negative powers")
    if ((arrays["powers"].sum(-1) + arrays["los_power"]) <= 0).any():
        raise ValueError("clusters.powers: every link needs a positive total power")


def channel_vectors(scenario: Scenario, clusters: Clusters, seed: Any = None) -> np.ndarray:
    """Sum the rays of ``clusters`` into normalised channel vectors (steps 10-11).

    ``h_m = c sum_i sqrt(P_i) exp(j Phi_i) a(theta_i)`` over the LoS ray and all
    cluster rays of :meth:`Clusters.rays`, with independent phases
    ``Phi_i ~ U(-pi, pi)``, unit-norm steering vectors ``a`` of
    :func:`daun_lib.scenario.steering` and ``c`` such that ``||h_m||^2 = N``.
    With ``scenario.multipath`` False only the LoS ray is kept,
    ``h_m = exp(j Phi_LoS) sqrt(N) a(u_m)`` (the phases are drawn as with True;
    every link needs ``los_power > 0``).

    Parameters
    ----------
    scenario : Scenario
        Supplies N and the element spacing.
    clusters : Clusters
        From :func:`draw_clusters`, ``n >= 1`` samples and ``M = scenario.n_bs``.
        Checked: consistent shapes, finite angles and powers, non-negative
        powers and a positive total power on every link.
    seed : int, None or numpy.random.Generator
        Draws the ray phases (block by block, in a fixed order).

    Returns
    -------
    (n, M, N) complex128

    Raises
    ------
    ValueError
        Naming ``scenario``, ``clusters`` (or the offending field) or ``seed``.
    """
    scenario = check_scenario(scenario)
    _check_clusters(clusters, scenario.n_bs)
    three_d_rays = clusters.ray_zeniths is not None and not np.all(clusters.ray_zeniths == np.pi / 2)
    if scenario.geometry == "2d" and three_d_rays:
        raise ValueError("clusters: drawn for geometry='3d' (ray zeniths off the horizon), the scenario is 2-D")
    if scenario.geometry == "3d" and not three_d_rays:
        raise ValueError("clusters: drawn for geometry='2d' (every ray on the horizon), the scenario is 3-D")
    rng = rng_from_seed(seed)
    N, d = scenario.n_antennas, scenario.antenna_spacing
    multipath = scenario.multipath
    n, M = clusters.los_angle.shape
    # Cluster slots that carry power anywhere in the batch (drops the padding of all-LoS batches).
    c_used = _used_slots(clusters.powers)
    h = np.empty((n, M, N), dtype=complex)
    three_d = clusters.ray_zeniths is not None
    for sl in _blocks(n):
        rz = clusters.ray_zeniths[sl, :, :c_used] if three_d else None
        los_sine = clusters.los_sine[sl] if clusters.los_sine is not None else np.sin(clusters.los_angle[sl])
        _sum_rays(
            N,
            d,
            clusters.los_power[sl],
            los_sine,
            clusters.powers[sl, :, :c_used],
            _ray_sines(clusters.ray_angles[sl, :, :c_used], rz),
            rng,
            h[sl],
            multipath=multipath,
        )
    return h


#: Accepted per-antenna SNR range of :func:`simulate`, dB.  At the bounds the
#: signal amplitude ``10^(snr_db / 20)`` is about 3e7 or 3e-8, far from the
#: float64 (and float32) limits even after squaring and summing over a batch.
SNR_DB_RANGE: tuple[float, float] = (-150.0, 150.0)


def _check_snr(snr_db: Any, n: int) -> np.ndarray:
    return snr_db_per_sample(snr_db, n, valid_range=SNR_DB_RANGE)


def simulate(scenario: Scenario, n: int, snr_db: Any, seed: Any = None) -> ChannelBatch:
    """Draw ``n`` users uniformly in the area and their received signals (1).

    Parameters
    ----------
    scenario : Scenario
        Geometry, arrays, carrier and ``los_model``.
    n : int
        Number of samples (>= 1).
    snr_db : float or (n,) float
        Per-antenna SNR in dB, one for all samples or one per sample, within
        :data:`SNR_DB_RANGE` ([-150, 150] dB).
    seed : int, None or numpy.random.Generator
        The same int seed gives identical output.

    Returns
    -------
    ChannelBatch
        ``y`` (n, M, N), ``positions`` (n, 2), ``los`` (n, M), ``snr_db`` (n,),
        ``h`` (n, M, N) with ``||h[i, m]||^2 = N``, ``ut_heights`` (n,); all finite.

    Raises
    ------
    ValueError
        Naming ``scenario``, ``n``, ``snr_db`` or ``seed`` when one is invalid.

    Notes
    -----
    Random draws, in order: positions, LoS states (:func:`draw_los`), cluster
    parameters (:func:`draw_clusters`), ray phases (:func:`channel_vectors`),
    noise.  ``scenario.multipath`` False draws the same numbers in the same order
    and keeps only the LoS ray of each link, ``h_m = exp(j Phi_LoS) sqrt(N) a(u_m(p))``
    (same seed: same users, LoS states, LoS phases and noise as the clustered batch).  With ``scenario.ut_height_range_m`` set, the user heights are drawn uniformly
    in the range from an independent stream, ``Generator(rng.bit_generator.jumped())`` taken
    before the first draw, which leaves the main stream untouched: positions, LoS uniforms,
    cluster parameters, ray phases and noise are the numbers of the fixed-height batch of
    the same seed, and only the height-dependent quantities change (LoS probability of
    Table 7.4.2-1, LoS zenith, lgZSD and ZOD offset of Table 7.5-7, LoS cone sine).
    The result equals ``channel_vectors(scenario, draw_clusters(...,
    ut_heights=batch.ut_heights))`` plus noise, bit for bit, but the rays, channel vectors and noise are
    computed in blocks of ``_CHUNK`` samples: beyond the returned arrays
    (6.3 KiB per sample at the paper's M = 4, N = 50) memory holds the per-link
    random numbers of the cluster draw (about 2.2 KiB per sample) and a fixed
    working set for one block (some tens of MB), instead of the full ray
    arrays of the whole batch.
    """
    scenario = check_scenario(scenario)
    n = positive(n, "n", integer=True)
    snr = _check_snr(snr_db, n)
    rng = rng_from_seed(seed)
    half = scenario.area_size / 2.0
    M, N = scenario.n_bs, scenario.n_antennas
    h_range = getattr(scenario, "ut_height_range_m", None)
    heights = None
    if h_range is not None:
        jumped = getattr(rng.bit_generator, "jumped", None)
        if jumped is None:
            raise ValueError(
                f"seed: per-user heights (ut_height_range_m) draw from the jumped-ahead stream, which "
                f"{type(rng.bit_generator).__name__} does not provide; pass an int or a PCG64 Generator"
            )
        heights = np.random.Generator(jumped()).uniform(h_range[0], h_range[1], size=n)
    positions = rng.uniform(-half, half, size=(n, 2))
    los = draw_los(scenario, positions, rng, ut_heights=heights)
    three_d = geometry_of(scenario) == "3d"
    raw = draw_link_randoms(rng, n, M, zenith=three_d)
    blocks = _blocks(n)
    # Pass 1: which cluster slots carry power anywhere in the batch (fixes the ray count, hence the stream).
    # A single block keeps its fields for pass 2 (the Monte Carlo engine draws one sample at a time).
    c_used, first = 0, None
    for sl in blocks:
        f = link_fields(scenario, positions[sl], los[sl], _rows(raw, sl), _block(heights, sl))
        c_used = max(c_used, _used_slots(f["powers"]))
        first = f if len(blocks) == 1 else None
    # Pass 2: rays -> channel vectors, block by block (ray phases drawn in block order).
    h = np.empty((n, M, N), dtype=complex)
    for sl in blocks:
        f = (
            first
            if first is not None
            else link_fields(scenario, positions[sl], los[sl], _rows(raw, sl), _block(heights, sl))
        )
        ray_angles = ray_azimuths(f["angles"][..., :c_used], los[sl])
        rz = ray_zeniths(f["zeniths"][..., :c_used], f["mu_lgzsd"], raw.perm[sl, :, :c_used]) if three_d else None
        _sum_rays(
            N,
            scenario.antenna_spacing,
            f["los_power"],
            f["los_sine"],
            f["powers"][..., :c_used],
            _ray_sines(ray_angles, rz),
            rng,
            h[sl],
            multipath=scenario.multipath,
        )
    del raw
    y = np.empty_like(h)
    amp = np.sqrt(10.0 ** (snr / 10.0))
    to_complex = np.array([1.0, 1j])
    for sl in blocks:
        noise = rng.standard_normal((sl.stop - sl.start, M, N, 2)) @ to_complex / np.sqrt(2.0)
        y[sl] = amp[sl, None, None] * h[sl] + noise
    if not (np.isfinite(y).all() and np.isfinite(h).all()):
        raise FloatingPointError("simulate: produced a non-finite signal; please report this with the arguments used")
    if heights is None:
        heights = np.full(n, float(scenario.ut_height_m))
    return ChannelBatch(y=y, positions=positions, los=los, snr_db=snr, h=h, ut_heights=heights)
