r"""Position refinement, Algorithm 1 of Sec. III-C, and the plain argmax readout of (3).

Plain readout (after (3))::

    k_hat = argmax_k || [X]_{k,:} ||_2

Algorithm 1 (as this package reads it).  For every row k of X (K x M), split
the moduli ``|X[k, m]|`` of its M entries into two clusters by 1-D 2-means,
the "large" centre started at the row maximum and the "small" one at 0.  An
entry joins the large cluster S_k1 when it is *closer* to the large centre
(the paper's line 5 prints the test inverted; read literally, the largest entry
would never join the cluster whose centre it is).  Centres are the cluster means
and the split is repeated until it no longer changes (Lloyd iterations; the
paper's pseudo-code updates the centres inside the loop over entries, which
for a converged split gives the same result).  Rows with ``|S_k1| >= 3``
(``min_active``) form the set F of candidates supported by at least three
BSs; the estimate is ``argmax_{k in F} || X[k, S_k1] ||_2``, the norm of the
large entries only, so that a large gain at a BS without a LoS path to that
grid point no longer decides the estimate.

Fallback: when F is empty (no row has ``min_active`` large entries, e.g. with
fewer LoS links than ``min_active``), the plain argmax is returned.

These functions compute grid indices, row powers and sub-grid positions; the
localisers reach them through the named readouts of :mod:`daun_lib.readouts`
(``"argmax"``, ``"alg1"``, ``"subgrid"``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _checks
from ._validation import as_array, is_tensor
from .scenario import Scenario

__all__ = [
    "argmax_rows",
    "refine",
    "two_means",
    "subgrid",
    "row_power",
]


def _as_magnitudes(X: Any, *, unit: bool = False) -> np.ndarray:
    """``|X|`` as (n, K, M); with ``unit``, each sample times the power of two that puts its largest
    entry in [0.5, 1).  That scaling is exact, so the readouts (argmax, 2-means) are unchanged by it,
    and squares can neither overflow nor underflow whatever the scale of ``X``."""
    X = as_array(X, "X", (2, 3))
    if is_tensor(X):
        X = X.detach().cpu().numpy()
    mag = np.abs(np.asarray(X))
    if mag.ndim == 2:
        mag = mag[None]
    if mag.shape[1] < 1 or mag.shape[2] < 1:
        raise ValueError(f"X: expected a non-empty (n, K, M) array, got shape {mag.shape}")
    if unit and mag.shape[0] > 0:
        _, e = np.frexp(mag.max(axis=(1, 2)))
        if np.any(e != 0):
            mag = np.ldexp(mag, -e.reshape(-1, 1, 1).astype(np.int32)).astype(mag.dtype, copy=False)
    return mag


def argmax_rows(X: Any) -> np.ndarray:
    """Plain readout ``argmax_k ||X[k, :]||_2``.

    Parameters
    ----------
    X : (n, K, M) or (K, M) complex

    Returns
    -------
    (n,) int
    """
    mag = _as_magnitudes(X, unit=True)
    return np.argmax(np.square(mag).sum(axis=2), axis=1)


def two_means(mag: np.ndarray, max_iter: int | None = None) -> np.ndarray:
    """1-D 2-means split of every row of ``mag`` (lines 1-10 of Algorithm 1).

    Parameters
    ----------
    mag : (n, K, M) float >= 0
        Moduli of the entries of X.
    max_iter : int, optional
        Cap on the Lloyd iterations (default ``2 M + 2``; 1-D 2-means with
        these starts settles in at most M + 1).

    Returns
    -------
    (n, K, M) bool
        True where the entry belongs to the large cluster S_k1.
    """
    M = mag.shape[-1]
    hi = mag.max(axis=-1, keepdims=True)  # chi_k1 start: the row maximum
    lo = np.zeros_like(hi)  # chi_k2 start: 0
    member = None
    for _ in range(max_iter or 2 * M + 2):
        new = np.abs(mag - hi) < np.abs(mag - lo)  # closer to the large centre
        if member is not None and np.array_equal(new, member):
            break
        member = new
        n1 = member.sum(axis=-1, keepdims=True)
        n2 = M - n1
        s1 = np.where(member, mag, 0.0).sum(axis=-1, keepdims=True)
        s2 = np.where(member, 0.0, mag).sum(axis=-1, keepdims=True)
        hi = np.where(n1 > 0, s1 / np.maximum(n1, 1), hi)  # empty cluster keeps its centre
        lo = np.where(n2 > 0, s2 / np.maximum(n2, 1), lo)
    return member


def refine(X: Any, *, min_active: int = 3) -> np.ndarray:
    """Algorithm 1: grid index of the position estimate, robust to inactive LoS links.

    Parameters
    ----------
    X : (n, K, M) or (K, M) complex, numpy array or tensor
        LoS gain estimates (from P-ADMM, DAUN or the reference solver).
    min_active : int
        Minimum size of the large cluster for a row to be a candidate
        (the paper's 3; at most M).

    Returns
    -------
    (n,) int
        Grid indices k_hat; plain argmax for samples whose candidate set F
        is empty.
    """
    mag = _as_magnitudes(X, unit=True)
    M = mag.shape[-1]
    if isinstance(min_active, bool) or not isinstance(min_active, (int, np.integer)) or not 1 <= min_active <= M:
        raise ValueError(f"min_active: expected an integer in [1, M={M}], got {min_active!r}")
    member = two_means(mag)
    score = np.where(member, np.square(mag), 0.0).sum(axis=-1)  # ||X[k, S_k1]||^2
    candidate = member.sum(axis=-1) >= min_active  # the set F
    score = np.where(candidate, score, -1.0)
    k_ref = np.argmax(score, axis=1)
    k_plain = np.argmax(np.square(mag).sum(axis=2), axis=1)
    return np.where(candidate.any(axis=1), k_ref, k_plain)


def subgrid(power: Any, scenario: Scenario, k: Any = None) -> np.ndarray:
    """Sub-grid position readout: a 3-point Gaussian fit around a grid peak (not in the paper).

    The grid limits any argmax readout to the cell centres (MSE floor
    ``2 d^2 / 12`` = 0.296 m^2 for the 1.33 m cells of the paper).  This
    readout fits a parabola to ``log power`` at the peak and its two
    neighbours along x and along y (separately) and moves the estimate to the
    vertex, at most half a cell.  At the area edge, or where the three points
    are not concave, that coordinate stays at the cell centre.

    Parameters
    ----------
    power : (n, K) float >= 0
        A map over the position grid: the row powers ``||X[k, :]||^2`` of an
        ADMM/DAUN estimate (:func:`row_power`) or a DPD cost.
    scenario : Scenario
        Supplies the grid (shape, spacing, centres).
    k : (n,) int, optional
        The peak to refine around (e.g. from :func:`refine`); default the argmax.

    Returns
    -------
    (n, 2) float, metres
    """
    _checks.check_scenario(scenario)
    P = np.asarray(as_array(power, "power", 2, complex_ok=False), dtype=float)
    nx, ny = scenario.grid_shape
    if P.shape[1] != nx * ny or P.shape[0] < 1 or (P < 0).any():
        raise ValueError(f"power: expected a non-negative (n, {nx * ny}) map over the grid, got shape {P.shape}")
    n = P.shape[0]
    if k is None:
        k = np.argmax(P, axis=1)
    k = np.asarray(k)
    if k.shape != (n,) or not np.issubdtype(k.dtype, np.integer) or (k < 0).any() or (k >= nx * ny).any():
        raise ValueError(f"k: expected (n,) = ({n},) grid indices in [0, {nx * ny}), got {k!r}")
    logp = np.log(np.maximum(P, np.finfo(float).tiny)).reshape(n, nx, ny)
    ix, iy = k // ny, k % ny
    rows = np.arange(n)
    pos = scenario.grid[k].copy()
    for axis, (i, size, step) in enumerate(((ix, nx, scenario.grid_spacing[0]), (iy, ny, scenario.grid_spacing[1]))):
        lo, hi = np.clip(i - 1, 0, size - 1), np.clip(i + 1, 0, size - 1)
        if axis == 0:
            lm, l0, lp = logp[rows, lo, iy], logp[rows, ix, iy], logp[rows, hi, iy]
        else:
            lm, l0, lp = logp[rows, ix, lo], logp[rows, ix, iy], logp[rows, ix, hi]
        curv = lm - 2.0 * l0 + lp
        ok = (i > 0) & (i < size - 1) & (curv < 0)
        offset = np.where(ok, 0.5 * (lm - lp) / np.where(ok, curv, -1.0), 0.0)
        pos[:, axis] += np.clip(offset, -0.5, 0.5) * step
    return pos


def row_power(X: Any, *, normalize: bool = False) -> np.ndarray:
    """``||X[k, :]||_2^2`` for every grid row: X (n, K, M) or (K, M) -> (n, K).

    With ``normalize`` each sample's map is multiplied by a power of two (exact)
    that puts its largest ``|X|`` in [0.5, 1): the map's ratios, all that
    :func:`subgrid` and any argmax use, are unchanged, and the squares can
    neither overflow nor underflow whatever the scale of ``X``.
    """
    if not isinstance(normalize, (bool, np.bool_)):
        raise ValueError(f"normalize: expected True or False, got {normalize!r}")
    return np.square(_as_magnitudes(X, unit=bool(normalize))).sum(axis=2)
