r"""Peak picking on a map for several users, and the per-user readouts built on it.

A map estimator gives a score per grid cell, ``score`` (n, K) (or X (n, K, M), whose row
powers are the score).  For ``U`` users in one snapshot (model (1) summed over the users, so
the LoS part of ``y_m`` has ``U`` active rows of X, the row sparsity of (3)), the readouts of
:mod:`daun_lib.readouts` first pick ``U`` peaks greedily, each pick suppressing the cells within
``suppression_m`` of it (:func:`greedy_peaks`: "a second user's peak found after suppressing
3 m around the first"), then place each user:

* at its cell centre (``argmax``),
* by the sub-grid fit of :func:`daun_lib.refine.subgrid` around its peak (:func:`subgrid_per_user`),
* by the continuous ML of that user after projecting the other picks' atoms out of ``y``
  (:func:`ml_per_user`),
* by the joint ML of all users (:func:`daun_lib.joint_ml.joint_ascent`), from the picks or
  from every U-subset of the ``U + AP_EXTRA_PEAKS`` best peaks (:func:`multistart_from_peaks`),
  then, for the ``"ap-relax"`` readout, each user and each pair searched again on the conditional
  cost given the others (:func:`relax`, issue 23).

Inner functions: they trust their inputs (the localisers validate).
"""

from __future__ import annotations

import itertools
from functools import lru_cache
from typing import Any

import numpy as np

from . import continuous, joint_ml
from ._alternating_projection import conditional_cost, explained_energy
from ._checks import cell_centres, check_n_users, check_scenario, check_y, dictionaries
from ._validation import as_array, nonnegative
from .joint_ml import orthonormal_basis, project_out
from .refine import row_power, subgrid
from .scenario import Scenario

__all__ = [
    "AP_EXTRA_PEAKS",
    "SUPPRESSION_M",
    "check_suppression",
    "cell_distances",
    "greedy_peaks",
    "pick",
    "score_of",
    "found_atoms",
    "subgrid_per_user",
    "ml_per_user",
    "multistart_from_peaks",
    "RELAX_PEAKS",
    "relax",
]

#: Default radius (metres) around each pick that later picks avoid (issue 14: 3 m).
SUPPRESSION_M = 3.0


def check_suppression(value: Any) -> float:
    try:
        return nonnegative(value, "suppression_m")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"suppression_m: expected a finite number >= 0 (metres), got {value!r}") from exc


@lru_cache(maxsize=8)
def _cell_distances(cells_bytes: bytes, K: int) -> np.ndarray:
    cells = np.frombuffer(cells_bytes, dtype=np.float64).reshape(K, 2)
    d = np.sqrt(((cells[:, None, :] - cells[None, :, :]) ** 2).sum(axis=-1))
    d.setflags(write=False)
    return d


def cell_distances(cells: np.ndarray) -> np.ndarray:
    """(K, K) read-only distances between the cell centres ``cells`` (K, 2), cached."""
    cells = np.ascontiguousarray(as_array(cells, "cells", 2, complex_ok=False), dtype=np.float64)
    if cells.shape[1] != 2 or cells.shape[0] < 1:
        raise ValueError(f"cells: expected (K, 2) cell centres in metres, got shape {cells.shape}")
    return _cell_distances(cells.tobytes(), cells.shape[0])


def greedy_peaks(score: np.ndarray, cells: np.ndarray, n_users: int, suppression_m: float) -> np.ndarray:
    """``n_users`` peaks of each map, greedily, each suppressing the cells within ``suppression_m``.

    Parameters
    ----------
    score : (n, K) float
        A score per grid cell (higher = more likely a user).
    cells : (K, 2) float
        Cell centres, metres.
    n_users : int >= 1
    suppression_m : float >= 0
        Cells at distance ``<= suppression_m`` from a pick are not picked again; when every
        cell of a sample is suppressed, the best cell not yet picked is taken.

    Returns
    -------
    (n, U) int
        Grid indices, strongest first; the first column is ``argmax(score, axis=1)``.
    """
    score = np.asarray(as_array(score, "score", 2, complex_ok=False), dtype=float)
    n_users = check_n_users(n_users)
    suppression_m = check_suppression(suppression_m)
    n, K = score.shape
    cells = np.asarray(as_array(cells, "cells", 2, complex_ok=False), dtype=float)
    if cells.shape != (K, 2):
        raise ValueError(f"cells: expected ({K}, 2) centres, one per column of score (K = {K}), got {cells.shape}")
    if n_users > K:
        raise ValueError(f"n_users: expected at most K = {K} (one cell per user), got {n_users}")
    D = cell_distances(cells)
    blocked = np.zeros((n, K), dtype=bool)
    picked = np.zeros((n, K), dtype=bool)
    out = np.empty((n, n_users), dtype=np.int64)
    for u in range(n_users):
        out[:, u] = pick(score, D, suppression_m, blocked, picked)
    return out


def pick(score: np.ndarray, D: np.ndarray, suppression_m: float, blocked: np.ndarray, picked: np.ndarray) -> np.ndarray:
    """One greedy step: per sample the best cell of ``score`` (n, K) not ``blocked`` (the best not yet
    ``picked`` when every cell is blocked) -> (n,) int; marks it picked and blocks the cells within
    ``suppression_m`` of it (``D`` (K, K) cell distances) in place."""
    rows = np.arange(score.shape[0])
    k = np.argmax(np.where(blocked, -np.inf, score), axis=1)
    full = blocked.all(axis=1)
    if full.any():  # every cell suppressed: the best cell not yet picked
        k[full] = np.argmax(np.where(picked[full], -np.inf, score[full]), axis=1)
    picked[rows, k] = True
    blocked |= D[k] <= suppression_m
    blocked |= picked
    return k


def score_of(m: Any) -> np.ndarray:
    """A map estimator's output as a score map (n, K): a map as is, X (n, K, M) as its row powers."""
    m = as_array(m, "score", (2, 3))
    if m.ndim == 3:
        return row_power(m, normalize=True)  # the quantity argmax_rows maximises
    if isinstance(m, np.ndarray) and np.iscomplexobj(m):
        raise ValueError(f"score: expected a real (n, K) map or X (n, K, M), got a complex {tuple(m.shape)} array")
    return np.asarray(m, dtype=float)


def _check_picks(k: Any, n: int, K: int) -> np.ndarray:
    """Grid indices k (n, U) of ints in [0, K), else ``ValueError`` naming ``k``."""
    arr = np.asarray(k)
    if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] < 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"k: expected ({n}, U) integer grid indices, got {arr.dtype} of shape {arr.shape}")
    if ((arr < 0) | (arr >= K)).any():
        raise ValueError(f"k: expected grid indices in [0, {K}), got values in [{arr.min()}, {arr.max()}]")
    return arr


def subgrid_per_user(score: np.ndarray, scenario: Scenario, k: np.ndarray) -> np.ndarray:
    """:func:`daun_lib.refine.subgrid` around each of the peaks ``k`` (n, U) of ``score`` (n, K) -> (n, U, 2)."""
    scenario = check_scenario(scenario)
    score = np.asarray(as_array(score, "score", 2, complex_ok=False), dtype=float)
    K = scenario.n_grid
    if score.shape[1] != K:
        raise ValueError(f"score: expected (n, K) with K = {K} (the scenario's grid cells), got {score.shape}")
    k = _check_picks(k, score.shape[0], K)
    n, U = k.shape
    P = np.maximum(score, 0.0)
    rep = np.repeat(P, U, axis=0)  # (n U, K): sample i's map once per user
    return subgrid(rep, scenario, k.reshape(-1)).reshape(n, U, 2)


def ml_per_user(scenario: Scenario, y: np.ndarray, k: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Continuous ML per user after cancelling the others (:func:`daun_lib.continuous.ml_localize`).

    For user u, ``y_m`` is projected off the other picks' atoms ``A_m[:, k_j]`` (j != u) per BS and
    the DPD cost of the projected data is maximised by the safeguarded Newton ascent from
    ``start[:, u]`` (a sample whose projected data are round-off only keeps ``start``).  k (n, U) grid
    indices, start (n, U, 2) -> (n, U, 2).  With U = 1 this is the ``ml`` readout of the
    single-user pipeline.
    """
    y = check_y(check_scenario(scenario), y)
    A = dictionaries(scenario)[0]
    k = _check_picks(k, y.shape[0], A.shape[2])
    n, U = k.shape
    start = np.asarray(as_array(start, "start", 3, complex_ok=False), dtype=float)
    if start.shape != (n, U, 2):
        raise ValueError(f"start: expected ({n}, {U}, 2), one start per pick k, got {start.shape}")
    out = np.empty((n, U, 2))
    for u in range(U):
        others = [j for j in range(U) if j != u]
        yu = y if not others else project_out(y, orthonormal_basis(found_atoms(A, k[:, others])))
        out[:, u] = start[:, u]
        # nothing left after the cancellation but round-off (energy below 1e-24 of y's): keep the pick
        live = np.sum(np.abs(yu) ** 2, axis=(1, 2)) > 1e-24 * np.sum(np.abs(y) ** 2, axis=(1, 2))
        if live.any():
            out[live, u] = continuous.ml_localize(scenario, yu[live], start=start[live, u], cost="dpd")
    return out


#: Extra peaks of the ``"ap-multi"`` readout: ``U + AP_EXTRA_PEAKS`` peaks are picked and every
#: U-subset of them starts a joint Newton ascent (:func:`_ap_multistart`).
AP_EXTRA_PEAKS = 1


def multistart_from_peaks(
    scenario: Scenario, y: np.ndarray, score: np.ndarray, cells: np.ndarray, n_users: int, suppression_m: float
) -> np.ndarray:
    """Multi-start joint ML: the joint Newton ascent from every U-subset of the ``U + 1`` best peaks.

    The ``U + AP_EXTRA_PEAKS`` greedy peaks of ``score`` (n, K) (cell centres ``cells`` (K, 2),
    suppression as :func:`greedy_peaks`) give ``C(U + 1, U) = U + 1`` start sets;
    :func:`daun_lib.joint_ml.multistart` refines each and keeps the largest joint fit per sample
    (ties: the subset of the U strongest peaks, which is the ``"ap"`` readout).  A weaker user
    whose cell the single-start picks miss (a sidelobe or a cluster of the stronger one ranks
    above it) gets a start of its own.  Costs about ``U + 1`` times the ``"ap"`` readout.  -> (n, U, 2)
    """
    y = check_y(check_scenario(scenario), y)
    n_users = check_n_users(n_users)
    if np.shape(score)[:1] != y.shape[:1]:
        raise ValueError(f"score: expected one map per sample of y ({y.shape[0]}), got shape {np.shape(score)}")
    L = min(n_users + AP_EXTRA_PEAKS, np.shape(score)[1])
    k = greedy_peaks(score, cells, L, suppression_m)
    return joint_ml.multistart_fit(scenario, y, np.asarray(cells, dtype=float)[k], n_users)


def found_atoms(A: np.ndarray, k: np.ndarray) -> np.ndarray:
    """The atoms ``A_m[:, k_j]`` of the picked cells k (n, u) -> (n, M, N, u)."""
    return np.transpose(A[:, :, k], (2, 0, 1, 3))  # A[:, :, k]: (M, N, n, u)


# ---------------------------------------------------------------- re-search (the ap-relax readout)

#: Candidate cells per user in step 1 (module docstring).
RELAX_PEAKS = 3
#: Samples per block of :func:`relax` (bounds the working memory: about 0.2 MB per sample and start).
RELAX_BLOCK = 128
#: A start whose users are all this close (metres) to the estimate is skipped (its ascent returns there).
RELAX_SAME_M = 1.0
#: A start's fit must exceed the estimate's by this relative margin to replace it.
_GAIN = 1e-12


def relax(
    scenario: Scenario,
    y: np.ndarray,
    positions: np.ndarray,
    suppression_m: float,
    peaks: int = RELAX_PEAKS,
) -> np.ndarray:
    r"""Re-search the users one and two at a time from ``positions`` (n, U, 2) -> (n, U, 2), ``J`` never lower.

    The multi-start joint ML (:func:`multistart_from_peaks`) starts the joint Newton
    ascent from the strongest peaks of a map.  With three users a user is often missed: no start lies
    near it (a sidelobe or a cluster of a stronger user ranks above it), and the ascent ends on a
    wrong maximum.  Issue 23 measured that such snapshots make almost all of the gap to an ascent
    started at the true positions.  This re-searches the users given the others, in the
    manner of RELAX (Li & Stoica 1996), on the concentrated likelihood of :mod:`daun_lib.joint_ml`:

    1. **One user at a time.**  For user ``u``, the other ``U - 1`` estimates are held: per BS their LoS
       steering vectors are projected out of ``y`` and the conditional DPD cost of one more source
       (:func:`daun_lib._alternating_projection.conditional_cost`) is evaluated on the grid, cells within
       ``suppression_m`` of the held users excluded.  Each of its ``peaks`` best cells (greedy, with the
       same suppression) replaces user ``u`` in a start, and the joint ascent runs from every start.
    2. **Two users at a time** (``U >= 3``).  For every pair the other ``U - 2`` estimates are held and
       the pair is found again by successive cancellation: the best cell of the conditional cost, then
       the best cell of the conditional cost given the held users and that cell; one joint ascent.

    A start's result replaces the estimate only when its joint fit ``J`` is larger (by more than
    ``1e-12`` relative: round-off does not move an estimate), so ``J`` never decreases and a sample
    that the multi-start already solved keeps its answer unless a better fit exists.  Note that a
    better fit is not always nearer the truth: issue 23 also measured snapshots whose largest ``J``
    is a wrong answer (the likelihood's own ceiling); this search finds those too.

    Cost: ``U * peaks`` ascents for step 1 and ``C(U, 2)`` for step 2, on top of the multi-start's
    ``U + 1`` (U = 3, ``peaks = 3``: 12 more ascents, about 4 times the ``"ap-multi"`` readout).
    The choice of steps and of ``peaks`` was made on calibration snapshots (seeds 5000-6020, 300-500
    per point, three users at 0 / 10 / 20 dB), not those of notebook 08: from the DAUN-MU map, step 1
    with one peak raised P(all < 1 m) by 0.01-0.04 over ``"ap-multi"``, with three peaks by 0.02-0.05,
    and step 2 added 0-0.01 at 20 dB; with two users the search changes 0-0.008.

    Shapes: ``y`` (n, M, N) complex, positions (n, U, 2) metres.  The functions trust their inputs
    (the readout validates); it works in blocks of :data:`RELAX_BLOCK` samples, so memory is flat in n.

    The conditional cost is searched on the scenario's grid (the atoms of its dictionary ``A``,
    centres :func:`daun_lib._checks.cell_centres`).  With ``U = 1`` the positions are returned as
    they are (the one-user ML has nothing to hold).
    """
    out = np.array(positions, dtype=float, copy=True)
    if out.shape[1] < 2:
        return out
    cells = cell_centres(scenario)
    for lo in range(0, y.shape[0], RELAX_BLOCK):
        sl = slice(lo, lo + RELAX_BLOCK)
        out[sl] = _relax_block(scenario, y[sl], out[sl], cells, suppression_m, peaks)
    return out


def _relax_block(
    scenario: Scenario, y: np.ndarray, p: np.ndarray, cells: np.ndarray, suppression_m: float, peaks: int
) -> np.ndarray:
    ys = continuous.unit_scale_y(y)  # the scale joint_ascent works on: fits comparable
    J = explained_energy(scenario, ys, p)
    U = p.shape[1]
    for u in range(U):
        held = [j for j in range(U) if j != u]
        found = _picks(scenario, ys, p[:, held], cells, suppression_m, peaks)  # (n, peaks) cells
        starts = np.repeat(p[None], peaks, axis=0)  # (peaks, n, U, 2)
        starts[:, :, u] = np.transpose(cells[found], (1, 0, 2))
        p, J = _keep_better(scenario, y, p, J, starts)
    if U >= 3:
        for pair in itertools.combinations(range(U), 2):
            held = [j for j in range(U) if j not in pair]
            first = cells[_picks(scenario, ys, p[:, held], cells, suppression_m, 1)[:, 0]]
            second = cells[
                _picks(scenario, ys, np.concatenate([p[:, held], first[:, None]], axis=1), cells, suppression_m, 1)[
                    :, 0
                ]
            ]
            start = p.copy()
            start[:, pair[0]], start[:, pair[1]] = first, second
            p, J = _keep_better(scenario, y, p, J, start[None])
    return p


def _picks(
    scenario: Scenario, ys: np.ndarray, held: np.ndarray, cells: np.ndarray, suppression_m: float, peaks: int
) -> np.ndarray:
    """The ``peaks`` best cells (n, peaks) of the conditional cost given the ``held`` users (n, h, 2)."""
    A = dictionaries(scenario)[0]
    V = np.stack([scenario.los_steering(held[:, j]) for j in range(held.shape[1])], axis=-1)  # (n, M, N, h)
    score = conditional_cost(A, ys, orthonormal_basis(V))
    near = np.linalg.norm(cells[None, None] - held[:, :, None], axis=-1).min(axis=1)  # (n, K)
    blocked = near <= suppression_m
    picked = np.zeros_like(blocked)
    D = cell_distances(cells)
    return np.stack([pick(score, D, suppression_m, blocked, picked) for _ in range(peaks)], axis=1)


def _keep_better(
    scenario: Scenario, y: np.ndarray, p: np.ndarray, J: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The joint ascent from every start (S, n, U, 2) in one batch; per sample the best fit if it beats ``J``.

    A start each of whose users lies within :data:`RELAX_SAME_M` of a user of the estimate ``p`` is not run:
    its ascent returns to the estimate (the common case once a sample is solved).
    """
    S, n = starts.shape[:2]
    # a start is new where one of its users is farther than RELAX_SAME_M from every user of the estimate
    d = np.linalg.norm(starts[:, :, :, None, :] - p[None, :, None, :, :], axis=-1)  # (S, n, U, U)
    new = (d.min(axis=-1) > RELAX_SAME_M).any(axis=-1)  # (S, n)
    s_idx, rows = np.nonzero(new)
    if rows.size == 0:
        return p, J
    q, fit = joint_ml.joint_ascent(scenario, y[rows], starts[s_idx, rows])
    best_fit = np.full((S, n), -np.inf)
    best_fit[s_idx, rows] = fit
    best = np.argmax(best_fit, axis=0)
    at = np.full((S, n), -1)
    at[s_idx, rows] = np.arange(rows.size)
    cols = np.arange(n)
    better = best_fit[best, cols] > J * (1.0 + _GAIN)
    pick_q = q[np.maximum(at[best, cols], 0)]
    p = np.where(better[:, None, None], pick_q, p)
    return p, np.where(better, best_fit[best, cols], J)
