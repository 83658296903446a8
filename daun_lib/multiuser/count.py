r"""How many users a snapshot holds: successive-cancellation detections above a noise threshold.

:func:`estimate_n_users` runs the search of :class:`daun_lib.multiuser.search.SICLocalizer` for
``max_users`` steps and counts the leading steps whose pick passes a test at false-alarm
probability ``pfa`` per map (:func:`noise_threshold`, Bonferroni over the K cells).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import gamma

from .._checks import check_n_users, check_noise_floor, check_scenario, check_y, dictionaries
from ..joint_ml import SPAN_TOL, conditional_terms, orthonormal_basis, project_out
from ..peaks import check_suppression, found_atoms
from ..scenario import Scenario
from .search import sic_cells

__all__ = ["noise_threshold", "per_bs_statistics", "estimate_n_users"]


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


def estimate_n_users(
    scenario: Scenario,
    y: Any,
    max_users: int,
    *,
    pfa: float = 0.01,
    suppression_m: float = 3.0,
    rule: str = "min-bs",
) -> np.ndarray:
    """Number of users per sample: successive-cancellation detections above a noise threshold.

    Run :class:`SICLocalizer`'s search for ``max_users`` steps; ``U_hat`` is the number of leading
    steps whose pick passes the test of ``rule`` at false-alarm probability ``pfa`` per map
    (:func:`noise_threshold`), so ``0 <= U_hat <= max_users``.

    * ``"min-bs"`` (default): every BS must see the new user.  Per BS the conditional beam power
      at the pick is normalised by that BS's residual level after projecting off the found users
      (an unknown noise level per BS, as the ``ml-bs`` readout), and the smallest of the M values
      is compared with ``ln(K / pfa) / M`` (a BS that sees the pick exactly on the bearing of a
      found user, ``||P_m a_m||^2 < 1e-6``, is left out of the minimum).  Scale-free (no noise level needed).  A residue of a
      found user that is off its grid cell, or of its NLoS clusters, is strong at one or two BSs
      but rarely along a common point at all of them.
    * ``"sum"``: the conditional DPD cost at the pick against the Gamma(M, 1) quantile, in units
      of the model's unit noise power.  It ignores those residues and over-counts from about
      10 dB up (measured in the issue-14 report).

    Parameters
    ----------
    scenario : Scenario
    y : (n, M, N) or (M, N) complex
    max_users : int >= 1
    pfa : float in (0, 1)
    suppression_m : float >= 0
    rule : "min-bs" or "sum"

    Returns
    -------
    (n,) int in [0, max_users]
    """
    scenario = check_scenario(scenario)
    y = check_y(scenario, y)
    max_users = check_n_users(max_users, "max_users")
    if max_users > scenario.n_grid:
        raise ValueError(f"max_users: expected at most the K = {scenario.n_grid} grid cells, got {max_users}")
    t = noise_threshold(scenario, pfa, rule)
    if rule == "sum":  # the only rule in units of the noise power: refuse data that cannot be in those units
        check_noise_floor(y, 1.0, "the unit noise power of rule='sum'")
    k, peak = sic_cells(scenario, y, max_users, check_suppression(suppression_m))
    if rule == "min-bs":
        stats = per_bs_statistics(scenario, y, k)
        seen = ~np.isnan(stats)  # BSs that can separate the pick from the found users
        peak = np.where(seen.any(axis=-1), np.where(seen, stats, np.inf).min(axis=-1), 0.0)
    return np.cumprod(peak > t, axis=1).sum(axis=1)
