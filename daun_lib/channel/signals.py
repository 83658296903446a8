"""The received signals of model (1): users, their channels, noise (:func:`simulate`).

``y_m = sqrt(omega) h_m + n_m``, ``n_m ~ CN(0, I_N)``, ``||h_m||^2 = N``; see :mod:`daun_lib.channel`.
With ``U >= 2`` users (``simulate(..., n_users=U)``) ``y_m = sum_u sqrt(omega_u) h_{u,m} + n_m``,
one noise draw; each user's channel is drawn by the single-user machinery (:func:`_channels`):
LoS states (:mod:`daun_lib.channel.los`), cluster parameters (:mod:`daun_lib.channel.clusters`)
and the sum of the rays (steps 10-11, :mod:`daun_lib.channel.rays`, which also holds
:func:`channel_vectors`, re-exported here).  Shapes: ``y`` (n, M, N) complex, positions (n, 2) or
(n, U, 2) metres (:class:`ChannelBatch`).
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import numpy as np

from .._checks import check_scenario
from .._validation import nonnegative, positive, rng_from_seed, snr_db_per_sample
from ..scenario import Scenario
from .clusters import LinkRandoms, draw_link_randoms, geometry_of, link_fields, ray_azimuths, ray_zeniths
from .los import draw_los
from .rays import channel_vectors, ray_sines, sample_blocks, sum_rays, used_slots

__all__ = ["ChannelBatch", "MAX_USERS", "SNR_DB_RANGE", "channel_vectors", "simulate"]


class ChannelBatch(NamedTuple):
    """A batch of received signals, model (1); with ``U >= 2`` users their superposition.

    Shapes for one user (``n_users=1``, the default) / for ``U >= 2`` users
    (:func:`simulate` with ``n_users=U``).

    Attributes
    ----------
    y : (n, M, N) complex128, both cases
        Received signals ``sqrt(omega) h_m + n_m``; with ``U >= 2``,
        ``sum_u sqrt(omega_u) h_{u,m} + n_m`` (one noise draw ``n_m ~ CN(0, I_N)`` per sample and BS).
    positions : (n, 2) / (n, U, 2) float64
        User positions, metres.
    los : (n, M) / (n, U, M) bool
        Whether the link user -> BS m has a LoS path.
    snr_db : (n,) / (n, U) float64
        Per-sample (per-user) SNR, dB (``omega = 10^(snr_db/10)`` per antenna).
    h : (n, M, N) / (n, U, M, N) complex128
        Noiseless channels, each (each user's) scaled to ``||h_m||^2 = N``.
    ut_heights : (n,) / (n, U) float64, or None
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


def _rows(r: LinkRandoms, sl: slice) -> LinkRandoms:
    return LinkRandoms(*(None if f is None else f[sl] for f in r))


def _block(heights: np.ndarray | None, sl: slice) -> np.ndarray | None:
    return None if heights is None else heights[sl]


#: Accepted per-antenna SNR range of :func:`simulate`, dB.  At the bounds the
#: signal amplitude ``10^(snr_db / 20)`` is about 3e7 or 3e-8, far from the
#: float64 (and float32) limits even after squaring and summing over a batch.
SNR_DB_RANGE: tuple[float, float] = (-150.0, 150.0)


def check_snr(snr_db: Any, n: int) -> np.ndarray:
    return snr_db_per_sample(snr_db, n, valid_range=SNR_DB_RANGE)


#: Largest accepted ``n_users`` of :func:`simulate`: a guard against a misplaced argument (``h`` holds
#: ``n * U * M * N`` complex numbers), not a limit of the model.
MAX_USERS: int = 16

#: Redraw rounds of the minimum-separation rejection in :func:`simulate` before it gives up.
_MAX_ROUNDS = 10_000


def _check_n_users(n_users: Any) -> int:
    if isinstance(n_users, (bool, np.bool_)) or not isinstance(n_users, numbers.Integral):
        raise ValueError(f"n_users: expected an int in [1, {MAX_USERS}], got {n_users!r}")
    if not 1 <= n_users <= MAX_USERS:
        raise ValueError(f"n_users: expected an int in [1, {MAX_USERS}] (MAX_USERS), got {n_users!r}")
    return int(n_users)


def _check_separation(min_separation_m: float, n_users: int, area_size: float) -> None:
    """Refuse a ``min_separation_m`` that the area cannot hold for ``n_users`` users.

    Two necessary conditions (``d = min_separation_m``, ``a = area_size``): two points of the square
    are at most its diagonal ``a sqrt(2)`` apart; and the disks of radius ``d / 2`` around the ``U``
    users are disjoint and lie in the square of side ``a + d``, so ``U pi d^2 / 4 <= (a + d)^2``.
    Passing them does not make the rejection fast: :func:`simulate` still gives up after
    ``_MAX_ROUNDS`` rounds.
    """
    d, a = min_separation_m, area_size
    if n_users >= 2 and d > a * np.sqrt(2.0):
        raise ValueError(
            f"min_separation_m: {d:g} m exceeds the diagonal of the {a:g} m area ({a * np.sqrt(2.0):g} m); "
            f"{n_users} users cannot be that far apart"
        )
    if n_users * np.pi * d * d / 4.0 > (a + d) ** 2:
        raise ValueError(
            f"min_separation_m: {n_users} disks of diameter {d:g} m do not fit in the {a:g} m area "
            f"(packing bound U pi d^2 / 4 <= (area_size + d)^2); lower min_separation_m or n_users"
        )


def _too_close(p: np.ndarray, d: float) -> np.ndarray:
    """``(k,)`` bool: whether some pair of the ``U`` users of ``p (k, U, 2)`` is closer than ``d``."""
    dist = np.linalg.norm(p[:, :, None, :] - p[:, None, :, :], axis=-1)
    iu = np.triu_indices(p.shape[1], k=1)
    return (dist[:, iu[0], iu[1]] < d).any(axis=-1)


def _draw_positions(rng: np.random.Generator, n: int, U: int, half: float, d: float) -> np.ndarray:
    """``(n, U, 2)`` users uniform in ``[-half, half]^2``, every pair at least ``d`` apart.

    Rejection sampling: a sample with a pair closer than ``d`` is redrawn whole (all ``U``
    positions), so the accepted samples are uniform on the allowed set.  ``d = 0`` draws once.
    """
    p = rng.uniform(-half, half, size=(n, U, 2))
    if d <= 0.0:
        return p
    bad = np.flatnonzero(_too_close(p, d))
    for _ in range(_MAX_ROUNDS):
        if bad.size == 0:
            return p
        p[bad] = rng.uniform(-half, half, size=(bad.size, U, 2))
        bad = bad[_too_close(p[bad], d)]
    if bad.size == 0:
        return p
    raise ValueError(
        f"min_separation_m: after {_MAX_ROUNDS} redraw rounds {bad.size} of {n} samples still have two of their "
        f"{U} users closer than {d:g} m (the area is too crowded for rejection sampling); "
        "lower min_separation_m or n_users"
    )


def _channels(
    scenario: Scenario, positions: np.ndarray, heights: np.ndarray | None, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """LoS states ``(k, M)`` bool and channels ``h (k, M, N)`` of ``k`` users at ``positions (k, 2)``.

    Draws from ``rng``, in order: LoS states (:func:`draw_los`), the cluster parameters
    (:func:`draw_link_randoms`), the ray phases (block by block); no noise.
    """
    n = positions.shape[0]
    M, N = scenario.n_bs, scenario.n_antennas
    los = draw_los(scenario, positions, rng, ut_heights=heights)
    three_d = geometry_of(scenario) == "3d"
    raw = draw_link_randoms(rng, n, M, zenith=three_d)
    blocks = sample_blocks(n)
    # Pass 1: which cluster slots carry power anywhere in the batch (fixes the ray count, hence the stream).
    # A single block keeps its fields for pass 2 (the Monte Carlo engine draws one sample at a time).
    c_used, first = 0, None
    for sl in blocks:
        f = link_fields(scenario, positions[sl], los[sl], _rows(raw, sl), _block(heights, sl))
        c_used = max(c_used, used_slots(f["powers"]))
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
        sum_rays(
            N,
            scenario.antenna_spacing,
            f["los_power"],
            f["los_sine"],
            f["powers"][..., :c_used],
            ray_sines(ray_angles, rz),
            rng,
            h[sl],
            multipath=scenario.multipath,
        )
    return los, h


def _noise(rng: np.random.Generator, sl: slice, M: int, N: int) -> np.ndarray:
    """One block of ``CN(0, I)`` noise, ``(b, M, N)``: real and imaginary parts ``N(0, 1/2)``."""
    return rng.standard_normal((sl.stop - sl.start, M, N, 2)) @ np.array([1.0, 1j]) / np.sqrt(2.0)


def _child_stream(rng: np.random.Generator) -> np.random.Generator:
    """The multi-user stream: ``Generator(PCG64(SeedSequence(e)))``, ``e`` four draws of ``rng.integers(2**32)``."""
    entropy = [int(v) for v in rng.integers(0, 2**32, size=4, dtype=np.uint64)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


def _simulate_multi(
    scenario: Scenario, n: int, snr: np.ndarray, rng: np.random.Generator, U: int, d: float, spread: float
) -> ChannelBatch:
    """The ``U >= 2`` path of :func:`simulate` (see its Notes for the draw order)."""
    child = _child_stream(rng)
    M, N = scenario.n_bs, scenario.n_antennas
    h_range = getattr(scenario, "ut_height_range_m", None)
    heights = None
    if h_range is not None:  # jumped-ahead stream taken before the first draw, as for one user
        heights = np.random.Generator(child.bit_generator.jumped()).uniform(h_range[0], h_range[1], size=(n, U))
    positions = _draw_positions(child, n, U, scenario.area_size / 2.0, d)
    # Drawn whatever power_spread_db (also 0): the users and channels do not depend on it.
    snr_u = snr[:, None] + spread * (child.uniform(size=(n, U)) - 0.5)
    lo, hi = SNR_DB_RANGE
    if (snr_u < lo).any() or (snr_u > hi).any():
        raise ValueError(
            f"snr_db / power_spread_db: the per-user SNR snr_db +- power_spread_db / 2 leaves [{lo:g}, {hi:g}] dB "
            f"(SNR_DB_RANGE): min {snr_u.min():g}, max {snr_u.max():g}"
        )
    flat_h = None if heights is None else heights.reshape(n * U)
    los, h = _channels(scenario, positions.reshape(n * U, 2), flat_h, child)
    los = los.reshape(n, U, M)
    h = h.reshape(n, U, M, N)
    amp = np.sqrt(10.0 ** (snr_u / 10.0))
    y = np.empty((n, M, N), dtype=complex)
    for sl in sample_blocks(n):
        y[sl] = (amp[sl, :, None, None] * h[sl]).sum(axis=1) + _noise(child, sl, M, N)
    if not (np.isfinite(y).all() and np.isfinite(h).all()):
        raise FloatingPointError("simulate: produced a non-finite signal; please report this with the arguments used")
    if heights is None:
        heights = np.full((n, U), float(scenario.ut_height_m))
    return ChannelBatch(y=y, positions=positions, los=los, snr_db=snr_u, h=h, ut_heights=heights)


#: The keyword-only arguments of :func:`simulate` and their defaults (see its signature note).
def simulate(
    scenario: Scenario,
    n: int,
    snr_db: Any,
    seed: Any = None,
    *,
    n_users: int = 1,
    min_separation_m: float = 0.0,
    power_spread_db: float = 0.0,
) -> ChannelBatch:
    """Draw ``n`` samples of ``n_users`` users uniformly in the area and their received signals (1).

    With several users (``U = n_users >= 2``) the BSs receive the superposition of their signals
    (each user a single-antenna transmitter with its own channel of model (1)) and one noise draw::

        y_m = sum_u sqrt(omega_u) h_{u,m} + n_m,   n_m ~ CN(0, I_N),   ||h_{u,m}||^2 = N.

    Parameters
    ----------
    scenario : Scenario
        Geometry, arrays, carrier and ``los_model``.
    n : int
        Number of samples (>= 1).
    snr_db : float or (n,) float
        Per-antenna SNR in dB, one for all samples or one per sample, within
        :data:`SNR_DB_RANGE` ([-150, 150] dB); with ``U >= 2`` the SNR of every user
        (before the ``power_spread_db`` offsets).
    seed : int, None or numpy.random.Generator
        The same int seed gives identical output.
    n_users : int, keyword-only
        Users per sample, ``1 <= n_users <= MAX_USERS`` (16).  1 (default): today's
        single-user batch, bit for bit.
    min_separation_m : float, keyword-only
        Finite, >= 0 (default 0: no constraint).  With ``U >= 2`` every pair of users of a
        sample is at least this far apart (samples with a closer pair are redrawn whole);
        refused when the area cannot hold ``U`` users that far apart (diagonal and packing
        bounds) or when rejection sampling fails.  Ignored with one user (always satisfied).
    power_spread_db : float, keyword-only
        Finite, >= 0 (default 0: every user at ``snr_db``).  With ``U >= 2`` user ``u`` of
        sample ``i`` gets ``snr_db[i] + o[i, u]``, ``o`` uniform in
        ``[-power_spread_db / 2, +power_spread_db / 2]``, independent across users and samples;
        the per-user SNR must stay in :data:`SNR_DB_RANGE`.  Refused (> 0) with one user.

    Returns
    -------
    ChannelBatch
        One user: ``y`` (n, M, N), ``positions`` (n, 2), ``los`` (n, M), ``snr_db`` (n,),
        ``h`` (n, M, N) with ``||h[i, m]||^2 = N``, ``ut_heights`` (n,).
        ``U >= 2``: ``y`` (n, M, N), ``positions`` (n, U, 2), ``los`` (n, U, M) bool,
        ``snr_db`` (n, U) (per-user SNR), ``h`` (n, U, M, N) with ``||h[i, u, m]||^2 = N``,
        ``ut_heights`` (n, U).  All finite.  Localise ``y`` with this ``scenario`` only: the
        localisers cannot tell signals of another geometry of the same shape (issue 22 plans a check).

    Raises
    ------
    ValueError
        Naming ``scenario``, ``n``, ``snr_db``, ``seed``, ``n_users``, ``min_separation_m`` or
        ``power_spread_db`` when one is invalid.
    TypeError
        For a keyword other than ``n_users``, ``min_separation_m`` and ``power_spread_db``.

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
    computed in blocks of :data:`~daun_lib.channel.rays.CHUNK` samples: beyond the returned arrays
    (6.3 KiB per sample at the paper's M = 4, N = 50) memory holds the per-link
    random numbers of the cluster draw (about 2.2 KiB per sample) and a fixed
    working set for one block (some tens of MB), instead of the full ray
    arrays of the whole batch.

    Several users (``U >= 2``): the caller's generator gives four numbers only (the entropy of a
    child stream ``Generator(PCG64(SeedSequence(...)))``, so any numpy Generator works), and the
    child stream draws, in order: the heights (jumped-ahead stream, as above, shape (n, U)), the
    positions (n, U, 2) with the minimum-separation rejection, one uniform per user for the SNR
    offsets (drawn also when ``power_spread_db`` is 0, so the users and channels of a seed do not
    depend on the spread), then the LoS states, cluster parameters and ray phases of the ``n U``
    users by the single-user machinery (users in sample-major order, ``(i, u) -> i U + u``), and
    last one noise draw (n, M, N).  The users of a sample are independent given the separation
    constraint.  Same seed and arguments: identical output; the ``U >= 2`` batches of different
    ``U`` share nothing by design.
    """
    scenario = check_scenario(scenario)
    n = positive(n, "n", integer=True)
    snr = check_snr(snr_db, n)
    rng = rng_from_seed(seed)
    U = _check_n_users(n_users)
    d = nonnegative(min_separation_m, "min_separation_m")
    spread = nonnegative(power_spread_db, "power_spread_db")
    if U == 1 and spread > 0:
        raise ValueError(f"power_spread_db: a per-user SNR spread needs n_users >= 2, got {spread:g} with n_users=1")
    if U >= 2:
        _check_separation(d, U, float(scenario.area_size))
        return _simulate_multi(scenario, n, snr, rng, U, d, spread)
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
    los, h = _channels(scenario, positions, heights, rng)
    y = np.empty_like(h)
    amp = np.sqrt(10.0 ** (snr / 10.0))
    for sl in sample_blocks(n):
        y[sl] = amp[sl, None, None] * h[sl] + _noise(rng, sl, M, N)
    if not (np.isfinite(y).all() and np.isfinite(h).all()):
        raise FloatingPointError("simulate: produced a non-finite signal; please report this with the arguments used")
    if heights is None:
        heights = np.full(n, float(scenario.ut_height_m))
    return ChannelBatch(y=y, positions=positions, los=los, snr_db=snr, h=h, ut_heights=heights)
