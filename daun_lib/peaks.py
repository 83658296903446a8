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
  from every U-subset of the ``U + AP_EXTRA_PEAKS`` best peaks (:func:`multistart_from_peaks`).

Inner functions: they trust their inputs (the localisers validate).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from . import continuous, joint_ml
from ._checks import check_n_users, check_scenario, check_y, dictionaries
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
    cells = np.ascontiguousarray(cells, dtype=np.float64)
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
    if getattr(m, "ndim", None) == 3:
        return row_power(m, normalize=True)  # the quantity argmax_rows maximises
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
