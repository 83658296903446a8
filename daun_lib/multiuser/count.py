r"""How many users a snapshot holds (issue 23), and localising them without knowing how many.

Two families of rules, one function (:func:`estimate_n_users`, ``rule=``):

* **On the joint fits** (``"lrt"``, the default, and ``"ic"``).  A multi-user localiser (by default
  :func:`default_localizer`: the ``DAUN-MU`` map, or the DPD map, read out by ``"ap-relax1"``) places ``U'`` users for
  ``U' = 1, 2, ..``; :func:`residual_energy` gives what the users' LoS steering vectors, with the best
  gains per BS, leave unexplained at each BS, ``R_{U',m}`` (``R_{0,m} = ||y_m||^2``).  With an unknown
  noise-plus-cluster level per BS the concentrated log-likelihood is ``-N sum_m ln R_{U',m}``, and a
  user has ``p = 2 + 2 M`` real parameters (position, a complex gain per BS).

  - ``"ic"``: minimise ``2 N sum_m ln R_{U',m} + p U' ln(2 M N)`` over ``U' = 1 .. max_users``
    (Schwarz's criterion; no constant to choose).
  - ``"lrt"``: sequential likelihood-ratio test: user ``U'`` is accepted while
    ``2 N sum_m ln(R_{U'-1,m} / R_{U',m}) > p ln(2 M N) + LRT_GROWTH * 2 N sum_m ln(R_{0,m} / R_{U'-1,m})``.
    The second term grows with the energy the found users explain: their NLoS clusters, which the
    LoS model leaves in the residual, are stronger the stronger the users, and at 10 dB and above
    they make ``"ic"`` over-count.  :data:`LRT_GROWTH` was chosen on calibration snapshots (seeds
    7000 and 8000, 400-500 per point, U = 1, 2, 3 at 0 / 10 / 20 dB, with and without a 10 dB power
    spread), not on notebook 08's: 0.05 gave the best mean P(correct U) on both sets (0.96-0.97,
    against 0.93 for ``"ic"`` and 0.73 for ``"min-bs"``).  The fits' re-search with one candidate
    cell per user counted as well as with three on seeds 8000 (mean 0.966 against 0.968, worst cell
    from 10 dB 0.950 against 0.953; 300 and 400 snapshots per point) in about 60 % of the time, hence ``"ap-relax1"``.  Only the fits that the test reaches are
    computed (``U' + 1`` is fitted for the samples that accepted ``U'``).

  Both return ``1 <= U_hat <= max_users``: they compare fits and assume at least one user (use
  ``"min-bs"`` to detect an empty snapshot).  Noiseless data have no noise level to test against.
* **On successive-cancellation detections** (``"min-bs"``, ``"sum"``; release 0.1): the search of
  :class:`daun_lib.multiuser.search.SICLocalizer` for ``max_users`` steps, counting the leading
  steps whose pick passes a test at false-alarm probability ``pfa`` per map (:func:`noise_threshold`,
  Bonferroni over the K cells); ``0 <= U_hat <= max_users``.

:func:`locate_unknown` counts and localises in one call, returning the positions of the counted
users with a mask (:class:`UnknownUsers`).  Every rule works in blocks of :data:`BLOCK` samples, so
memory is flat in n.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy.stats import gamma

from .. import continuous
from .._alternating_projection import check_positions
from .._checks import check_n_users, check_noise_floor, check_scenario, check_y, dictionaries
from ..joint_ml import SPAN_TOL, conditional_terms, orthonormal_basis, project_out
from ..localizers import Localizer, MapLocalizer
from ..peaks import SUPPRESSION_M, check_suppression, found_atoms
from ..scenario import Scenario
from .search import sic_cells

__all__ = [
    "RULES",
    "LRT_GROWTH",
    "UnknownUsers",
    "noise_threshold",
    "per_bs_statistics",
    "residual_energy",
    "default_localizer",
    "estimate_n_users",
    "locate_unknown",
]

#: The rules of :func:`estimate_n_users`; the first is the default.
RULES = ("lrt", "ic", "min-bs", "sum")
#: Growth of the ``"lrt"`` threshold with the explained energy (module docstring).
LRT_GROWTH = 0.05
#: Samples per block of every rule.
BLOCK = 256
#: Residual energies are floored at this fraction of ``||y_m||^2`` (a logarithm of 0 is no test).
_FLOOR = 1e-12


def noise_threshold(scenario: Scenario, pfa: float = 0.01, rule: str = "min-bs") -> float:
    """Detection threshold of :func:`estimate_n_users` for a map without a further user.

    Without a user at a cell, each BS term ``|a^H P n_m|^2 / ||P a||^2`` (unit-norm ``a``, white
    noise ``n_m`` of unit power, ``P`` a projection) is Exp(1), independent across the M BSs.

    * ``rule="sum"``: the conditional DPD cost, their sum, is Gamma(M, 1); the threshold is its
      upper quantile at ``pfa / K``.
    * ``rule="min-bs"``: the smallest of the M terms is Exp(M); ``P(min > t) = exp(-M t)``, so
      ``t = ln(K / pfa) / M``.

    Both are Bonferroni over the K cells: the probability that any cell of a noise-only map
    exceeds the threshold is at most ``pfa``.

    Parameters
    ----------
    scenario : Scenario
    pfa : float in (0, 1)
        False-alarm probability per map.
    rule : "min-bs" or "sum"

    Returns
    -------
    float
    """
    scenario = check_scenario(scenario)
    if isinstance(pfa, (bool, np.bool_)) or not isinstance(pfa, (int, float, np.floating)) or not 0 < pfa < 1:
        raise ValueError(f"pfa: expected a probability in (0, 1), got {pfa!r}")
    if rule == "sum":
        return float(gamma.isf(pfa / scenario.n_grid, scenario.n_bs))
    if rule == "min-bs":
        return float(np.log(scenario.n_grid / pfa) / scenario.n_bs)
    raise ValueError(f"rule: expected 'min-bs' or 'sum', got {rule!r}")


def per_bs_statistics(scenario: Scenario, y: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Per-BS normalised conditional beam powers at the SIC picks k (n, U) -> (n, U, M).

    NaN where the pick's atom lies in the span of the found ones at that BS (the BS sees the
    new cell on the bearing of a found user and cannot tell them apart).

    Step u: ``|a_m(k_u)^H P_m y_m|^2 / (||P_m a_m(k_u)||^2 sigma_m^2)`` with ``P_m`` the projection
    off the first u - 1 picks' atoms and ``sigma_m^2 = ||P_m y_m||^2 / (N - rank)`` the per-BS
    residual level (the residual taken as white: noise plus whatever the found atoms do not explain).
    """
    A = dictionaries(scenario)[0]
    n, U = k.shape
    N = scenario.n_antennas
    out = np.empty((n, U, scenario.n_bs))
    for u in range(U):
        if u == 0:
            Q = np.zeros(y.shape + (1,), dtype=complex)
        else:
            Q = orthonormal_basis(found_atoms(A, k[:, :u]))
        r = project_out(y, Q)
        rank = np.count_nonzero(np.abs(Q).sum(axis=2) > 0, axis=-1)  # (n, M)
        sig2 = np.maximum((np.abs(r) ** 2).sum(axis=-1) / (N - rank), np.finfo(float).tiny)
        num, den = conditional_terms(np.transpose(A[:, :, k[:, u]], (2, 0, 1)), r, Q)  # a: (n, M, N)
        out[:, u] = np.where(den > SPAN_TOL, num / np.maximum(den, SPAN_TOL) / sig2, np.nan)
    return out


def residual_energy(scenario: Scenario, y: Any, positions: Any) -> np.ndarray:
    """Per-BS energy of ``y`` that the users' LoS steering vectors leave unexplained -> (n, M).

    ``R_m = ||y_m||^2 - ||Q_m^H y_m||^2`` with ``Q_m`` an orthonormal basis of the steering vectors
    ``a_m(p_u)`` of the users at ``positions`` (n, U, 2) (the residual after the least-squares gains
    per BS and user); in the units of ``y`` squared.  y (n, M, N) or (M, N) complex.
    """
    scenario = check_scenario(scenario)
    y = check_y(scenario, y)
    p = check_positions(scenario, y, positions, "positions")
    return _residuals(scenario, y, p)


def _residuals(scenario: Scenario, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    V = np.stack([scenario.los_steering(p[:, j]) for j in range(p.shape[1])], axis=-1)  # (n, M, N, U)
    c = np.einsum("bmnu,bmn->bmu", orthonormal_basis(V).conj(), y)
    total = np.sum(y.real**2 + y.imag**2, axis=-1)
    return np.maximum(total - np.sum(c.real**2 + c.imag**2, axis=-1), _FLOOR * total)


class UnknownUsers(NamedTuple):
    """What :func:`locate_unknown` returns.

    Attributes
    ----------
    n_users : (n,) int
        The estimated number of users per sample.
    positions : (n, max_users, 2) float
        Metres; sample i's users in ``positions[i, :n_users[i]]``, the other slots NaN (a fixed shape
        for a batch: arrays stack, save and index like every other result of the package).
    mask : (n, max_users) bool
        ``mask[i, u] = u < n_users[i]``: the slots that hold a user.
    """

    n_users: np.ndarray
    positions: np.ndarray
    mask: np.ndarray


def _fit_localizer(localizer: Any, scenario: Scenario) -> Localizer:
    from . import MULTI_REGISTRY  # the registry is filled in the package __init__

    if localizer is None:  # the two-user network's map where it serves this scenario, else the DPD map
        return default_localizer(scenario)
    if isinstance(localizer, str):
        if localizer not in MULTI_REGISTRY:
            raise ValueError(f"localizer: unknown {localizer!r}; known: {sorted(MULTI_REGISTRY)}")
        localizer = MULTI_REGISTRY[localizer]
    if not isinstance(localizer, Localizer) or not localizer.multi_user:
        raise ValueError(
            f"localizer: expected a multi-user localiser (a name of MULTI_REGISTRY or a daun_lib.localizers.Localizer "
            f"serving several users), got {localizer!r}"
        )
    return localizer


def default_localizer(scenario: Scenario) -> Localizer:
    """The fits of the ``"lrt"`` / ``"ic"`` rules when no localiser is given: the map of ``DAUN-MU`` (the two-user
    network, where shipped and trained for this scenario's dictionaries), else the DPD map, read out by
    ``"ap-relax1"`` (the multi-start joint ML and a re-search with one candidate cell per user)."""
    from ..baselines import dpd
    from . import DAUN_MU_FILE, DAUN_MU_VARIANT, DAUNVariantLocalizer

    scenario = check_scenario(scenario)
    if DAUN_MU_FILE.is_file():
        net = DAUNVariantLocalizer(variant=DAUN_MU_VARIANT, readout="ap-relax1")
        try:
            net._check_scenario(scenario)
            return net
        except ValueError:
            pass
    return dpd.DPDLocalizer(readout="ap-relax1")


def _check_common(scenario: Any, y: Any, max_users: Any, rule: Any) -> tuple[Scenario, np.ndarray, int]:
    scenario = check_scenario(scenario)
    y = check_y(scenario, y)
    max_users = check_n_users(max_users, "max_users")
    if max_users > scenario.n_grid:
        raise ValueError(f"max_users: expected at most the K = {scenario.n_grid} grid cells, got {max_users}")
    if max_users > scenario.n_antennas:
        raise ValueError(
            f"max_users: a BS's {scenario.n_antennas} antennas separate at most N = {scenario.n_antennas} LoS sources; "
            f"got {max_users}"
        )
    if not isinstance(rule, str) or rule not in RULES:
        raise ValueError(f"rule: expected one of {RULES}, got {rule!r}")
    return scenario, y, max_users


def _fits(
    scenario: Scenario, y: np.ndarray, max_users: int, loc: Localizer, rule: str
) -> tuple[np.ndarray, np.ndarray]:
    """Counts (n,) and the fitted positions (n, max_users, 2) (NaN past the count) of a fit rule, one block."""
    n, M, N = y.shape
    penalty = (2 + 2 * M) * np.log(2 * M * N)
    ys = continuous.unit_scale_y(y)  # residual ratios are scale-free; this keeps their energies finite
    score = loc.scores(scenario, y) if isinstance(loc, MapLocalizer) else None

    def fit(rows: np.ndarray, U: int) -> np.ndarray:
        if score is not None:
            return loc._read(scenario, y[rows], score[rows], U)
        return loc.locate(scenario, y[rows], U)

    R_prev = np.sum(ys.real**2 + ys.imag**2, axis=-1)  # R_0 (n, M)
    R0 = R_prev
    fits = np.full((n, max_users, max_users, 2), np.nan)
    crit = np.full((n, max_users), np.inf)
    count = np.ones(n, dtype=np.int64)
    alive = np.arange(n)
    for U in range(1, max_users + 1):
        p = fit(alive, U)
        fits[alive, U - 1, :U] = p
        R = _residuals(scenario, ys[alive], p)
        crit[alive, U - 1] = 2 * N * np.log(R).sum(axis=1) + penalty * U
        if rule == "lrt" and U >= 2:
            T = 2 * N * np.log(R_prev / R).sum(axis=1)
            grown = penalty + LRT_GROWTH * 2 * N * np.log(R0[alive] / R_prev).sum(axis=1)
            ok = T > grown
            count[alive[ok]] = U
            alive, R = alive[ok], R[ok]
            if alive.size == 0:
                break
        R_prev = R
    if rule == "ic":
        count = np.argmin(crit, axis=1) + 1
    return count, fits[np.arange(n), count - 1]


def estimate_n_users(
    scenario: Scenario,
    y: Any,
    max_users: int,
    *,
    rule: str = "lrt",
    localizer: Any = None,
    pfa: float = 0.01,
    suppression_m: float = 3.0,
) -> np.ndarray:
    """Number of users per sample (module docstring: the rules and how the default was chosen).

    Parameters
    ----------
    scenario : Scenario
    y : (n, M, N) or (M, N) complex
    max_users : int, 1 <= max_users <= N (antennas per BS)
        The largest count considered.
    rule : "lrt" (default), "ic", "min-bs" or "sum"
    localizer : str, Localizer or None
        The fits of ``"lrt"`` and ``"ic"``: a name of :data:`daun_lib.multiuser.MULTI_REGISTRY` or a
        multi-user localiser; None: :func:`default_localizer`.
    pfa : float in (0, 1)
        False-alarm probability per map of ``"min-bs"`` and ``"sum"``.
    suppression_m : float >= 0
        Suppression of the ``"min-bs"`` / ``"sum"`` search.

    Returns
    -------
    (n,) int
        In ``[1, max_users]`` for ``"lrt"`` and ``"ic"``, ``[0, max_users]`` for the others.
    """
    return _count(scenario, y, max_users, rule, localizer, pfa, suppression_m, positions=False)[0]


def locate_unknown(
    scenario: Scenario, y: Any, max_users: int, *, rule: str = "lrt", localizer: Any = None, pfa: float = 0.01
) -> UnknownUsers:
    """Count the users of each sample (:func:`estimate_n_users`) and localise that many -> :class:`UnknownUsers`.

    With ``"lrt"`` and ``"ic"`` the positions are the localiser's fit for the chosen count (already
    computed by the rule); with ``"min-bs"`` and ``"sum"`` the localiser runs once per distinct
    count (a count of 0 leaves the sample's slots empty).  Arguments as :func:`estimate_n_users`.
    """
    count, positions = _count(scenario, y, max_users, rule, localizer, pfa, SUPPRESSION_M, positions=True)
    mask = np.arange(positions.shape[1])[None, :] < count[:, None]
    return UnknownUsers(count, positions, mask)


def _count(
    scenario: Any, y: Any, max_users: Any, rule: Any, localizer: Any, pfa: Any, suppression_m: Any, *, positions: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    scenario, y, max_users = _check_common(scenario, y, max_users, rule)
    t = noise_threshold(scenario, pfa, "sum" if rule == "sum" else "min-bs")  # checks pfa whatever the rule
    suppression_m = check_suppression(suppression_m)
    if rule in ("lrt", "ic"):
        loc = _fit_localizer(localizer, scenario)
        parts = [_fits(scenario, y[lo : lo + BLOCK], max_users, loc, rule) for lo in range(0, y.shape[0], BLOCK)]
        return np.concatenate([c for c, _ in parts]), np.concatenate([p for _, p in parts])
    if rule == "sum":  # the only rule in units of the noise power: refuse data that cannot be in those units
        check_noise_floor(y, 1.0, "the unit noise power of rule='sum'")
    count = np.concatenate(
        [
            _sic_count(scenario, y[lo : lo + BLOCK], max_users, t, rule, suppression_m)
            for lo in range(0, y.shape[0], BLOCK)
        ]
    )
    if not positions:
        return count, None
    loc = _fit_localizer(localizer, scenario)
    out = np.full((y.shape[0], max_users, 2), np.nan)
    for U in np.unique(count[count > 0]):
        rows = np.flatnonzero(count == U)
        out[rows, :U] = loc.locate(scenario, y[rows], int(U))
    return count, out


def _sic_count(
    scenario: Scenario, y: np.ndarray, max_users: int, t: float, rule: str, suppression_m: float
) -> np.ndarray:
    """Release 0.1's detections on one block: the leading SIC picks above the threshold ``t``."""
    k, peak = sic_cells(scenario, y, max_users, suppression_m)
    if rule == "min-bs":
        stats = per_bs_statistics(scenario, y, k)
        seen = ~np.isnan(stats)  # BSs that can separate the pick from the found users
        peak = np.where(seen.any(axis=-1), np.where(seen, stats, np.inf).min(axis=-1), 0.0)
    return np.cumprod(peak > t, axis=1).sum(axis=1)
