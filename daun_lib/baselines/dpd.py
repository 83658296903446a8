r"""DPD: direct position determination (Weiss 2004, ref. [8] of the paper).

Source.  Weiss, "Direct position determination of narrowband radio frequency
transmitters", IEEE SPL 11(5), 2004.  Each of L sensors (here the M BSs)
receives ``r_m(t) = b_m a_m(p) s(t) + n_m(t)`` with an unknown complex path
gain ``b_m`` per sensor and white noise.  Concentrating the likelihood over the
gains and an unknown common signal gives (Weiss' eq. (9)-(12)) the cost

.. math::

    \hat p = \arg\max_p \lambda_{\max}\{Q(p)\},\quad Q = V^H V,\quad
    V = [v_1, \dots, v_M],\ v_m(t) = \bar a_m(p)^H r_m(t)

over a search over positions, with ``bar a = a / ||a||``.  With a known signal
(or, as here, a single snapshot absorbed into the unknown gains) the cost is
the sum of the per-BS beamformer powers

.. math::

    F(p) = \sum_m |\bar a_m(p)^H y_m|^2,

and with one snapshot ``Q`` has rank one and ``lambda_max(Q) = F(p)``: the two
forms coincide (:func:`cost_eigen` checks it).  Equal noise power at every BS
is assumed (true for the paper's model (1)); ``F`` is then the exact ML cost.

This implementation.
* Exhaustive search over the same position grid as DAUN (``scenario.grid``,
  K = 900 at paper scale): the grid DPD of Fig. 2 / Table I.  Batched: one
  product ``A_m^H y_m`` per BS for all samples.
* Option ``DPDParams(offgrid=True)`` (off by default): a continuous local
  maximisation of the same cost around the grid peak, for comparisons off the
  grid.  It is a derivative-free zoom (pattern) search: a ``points x points``
  lattice of half-width one grid cell around the current best point, shrunk
  by ``(points - 1) / 2`` per level, ``levels`` times (final resolution
  ``spacing / 3^levels`` with the defaults, below a millimetre), clipped to the
  area.  It is batched over samples and needs no gradients; it finds the
  local maximum of the cell that the grid peak lies in.
* Deviation: Weiss (and Table I's "DPD") searched a fine grid; here the grid
  is the one of DAUN so that both are compared on the same candidate set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from .. import _validation
from .._validation import as_array, positive
from ..localizers import MapLocalizer
from ..operators import is_operator
from ..scenario import Scenario, steering, wrap_angle
from . import _common

__all__ = [
    "DPDParams",
    "DPDLocalizer",
    "localize",
    "cost",
    "cost_eigen",
    "cost_at",
]


@dataclass(frozen=True)
class DPDParams:
    """Settings of :func:`localize`.

    Attributes
    ----------
    offgrid : bool
        Continue the grid peak with the continuous local maximisation (default False).
    levels : int
        Zoom levels of the local maximisation (default 8).
    points : int
        Odd number of lattice points per axis and level (default 7).
    """

    offgrid: bool = False
    levels: int = 8
    points: int = 7

    def __post_init__(self) -> None:
        if not isinstance(self.offgrid, (bool, np.bool_)):
            raise ValueError(f"offgrid: expected a bool, got {self.offgrid!r}")
        positive(self.levels, "levels", integer=True)
        positive(self.points, "points", integer=True)
        if self.points < 3 or self.points % 2 == 0:
            raise ValueError(f"points: expected an odd integer >= 3, got {self.points!r}")


def _check_A_y(A: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    A = np.asarray(as_array(A, "A", 3))
    if min(A.shape) < 1:
        raise ValueError(f"A: expected a non-empty (M, N, K) dictionary, got shape {A.shape}")
    y = np.asarray(_validation.signals(y, A.shape[0], A.shape[1], expected=" to match A (M, N, K)"))
    return A, y


def cost(A: Any, y: Any) -> np.ndarray:
    """Single-snapshot DPD cost ``F_k = sum_m |a_mk^H y_m|^2 / ||a_mk||^2`` on a grid.

    Parameters
    ----------
    A : (M, N, K) complex, or a :mod:`daun_lib.operators` operator
        Steering vectors of the candidate positions, ``A[m][:, k] = a_m(Phi_k)``.  A
        ``StructuredOperator`` computes ``A^H y`` by FFT plus interpolation (unit-norm
        columns; its relative error, 1e-7 in complex64, is in :mod:`daun_lib.operators`).
    y : (n, M, N) or (M, N) complex
        One snapshot per sample.

    Returns
    -------
    (n, K) float

    Raises
    ------
    ValueError
        When a sample's largest magnitude is outside ``[1e-145, 1e150]``
        (:func:`daun_lib.baselines._common.check_magnitudes`): the squares of the cost would
        overflow to inf or lose their precision in subnormal numbers, and the argmax of such a map
        is an arbitrary cell.  Divide ``y`` by a common scale first (the localisers are invariant
        to it).
    """
    if getattr(A, "kind", "") == "structured":
        y = np.asarray(_validation.signals(y, A.shape[0], A.shape[1], expected=" to match A (M, N, K)"))
        _common.check_magnitudes(y, "the DPD cost |a^H y|^2")
        v = A.rmatvec(torch.as_tensor(np.ascontiguousarray(y.transpose(1, 2, 0))))  # (M, K, n)
        return (v.real.double().square() + v.imag.double().square()).sum(dim=0).T.numpy()
    A, y = _check_A_y(A.dense() if is_operator(A) else A, y)
    _common.check_magnitudes(y, "the DPD cost |a^H y|^2")
    norm2 = np.sum(np.abs(A) ** 2, axis=1)  # (M, K)
    norm2 = np.where(norm2 > 0, norm2, 1.0)
    out = np.zeros((y.shape[0], A.shape[2]))
    for m in range(A.shape[0]):  # (n, N) @ (N, K): one GEMM per BS
        out += np.abs(y[:, m, :] @ A[m].conj()) ** 2 / norm2[m]
    return out


def cost_eigen(A: Any, Y: Any) -> np.ndarray:
    """Weiss' eigenvalue form for an unknown common signal: ``lambda_max(V^H V)``.

    Parameters
    ----------
    A : (M, N, K) complex
    Y : (n, M, N, T) complex
        T snapshots per sample (the same signal ``s(t)`` at every BS).

    Returns
    -------
    (n, K) float
        The largest eigenvalue of the M x M matrix ``Q = V^H V`` with
        ``V[t, m] = a_mk^H Y[m, :, t] / ||a_mk||``; equals :func:`cost` for T = 1.
    """
    A = np.asarray(as_array(A, "A", 3))
    Y = np.asarray(as_array(Y, "Y", 4))
    if Y.shape[1:3] != A.shape[:2] or Y.shape[0] < 1 or Y.shape[3] < 1:
        raise ValueError(f"Y: expected shape (n, {A.shape[0]}, {A.shape[1]}, T), got {Y.shape}")
    norm = np.sqrt(np.sum(np.abs(A) ** 2, axis=1))
    norm = np.where(norm > 0, norm, 1.0)
    V = np.einsum("mnk,bmnt->bktm", A.conj(), Y) / norm.T[None, :, None, :]  # (n, K, T, M)
    Q = np.einsum("bktm,bktl->bkml", V.conj(), V)
    return np.linalg.eigvalsh(Q)[..., -1]


def cost_at(scenario: Scenario, y: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """DPD cost ``F(p)`` at arbitrary positions.

    Parameters
    ----------
    scenario : Scenario
    y : (n, M, N) complex
    positions : (n, P, 2) float
        P candidate positions per sample.  In ``"3d"`` the steering vectors
        are those of :meth:`Scenario.los_sines` (the columns of the
        height-aware ``A``).

    Returns
    -------
    (n, P) float

    ``scenario``, ``y`` and ``positions`` (finite, n matching ``y``) are checked: a ``ValueError`` names the argument.
    """
    scenario = _common.check_scenario(scenario)
    y = _common.check_y(scenario, y)
    _common.check_magnitudes(y, "the DPD cost |a^H y|^2")
    positions = np.asarray(as_array(positions, "positions", 3, complex_ok=False), dtype=float)
    if positions.shape[0] != y.shape[0] or positions.shape[2] != 2:
        raise ValueError(
            f"positions: expected (n, P, 2) with n = {y.shape[0]} (the samples of y), got {positions.shape}"
        )
    return _cost_at(scenario, y, positions)


def _cost_at(scenario: Scenario, y: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """:func:`cost_at` on checked arguments (the refinement's inner loop)."""
    if scenario.geometry == "3d":  # the measured u of the LoS path (height-aware), as the columns of A
        n, P = positions.shape[:2]
        a = scenario.los_steering(positions.reshape(-1, 2)).reshape(n, P, scenario.n_bs, scenario.n_antennas)
        return np.sum(np.abs(np.einsum("npmi,nmi->npm", a.conj(), y)) ** 2, axis=-1)
    bs = scenario.bs_array
    d = positions[:, :, None, :] - bs[None, None]  # (n, P, M, 2)
    theta = wrap_angle(np.arctan2(d[..., 1], d[..., 0]) - scenario.array_normals)  # (n, P, M)
    a = steering(theta, scenario.n_antennas, scenario.antenna_spacing)  # (n, P, M, N), unit norm
    inner = np.einsum("npmi,nmi->npm", a.conj(), y)  # a^H y
    return np.sum(np.abs(inner) ** 2, axis=-1)


def _zoom(scenario: Scenario, y: np.ndarray, p0: np.ndarray, params: DPDParams, chunk: int = 64) -> np.ndarray:
    """Continuous local maximisation of :func:`cost_at` from ``p0`` (n, 2)."""
    half = scenario.area_size / 2.0
    h0 = np.array(scenario.grid_spacing)
    t = np.linspace(-1.0, 1.0, params.points)
    off = np.stack(np.meshgrid(t, t, indexing="ij"), axis=-1).reshape(-1, 2)  # (P, 2)
    shrink = (params.points - 1) / 2.0
    out = np.empty_like(p0)
    for s in range(0, p0.shape[0], chunk):
        p = p0[s : s + chunk].copy()
        yy = y[s : s + chunk]
        h = h0.copy()
        for _ in range(params.levels):
            cand = np.clip(p[:, None, :] + off[None] * h, -half, half)
            best = np.argmax(_cost_at(scenario, yy, cand), axis=1)
            p = cand[np.arange(p.shape[0]), best]
            h = h / shrink
        out[s : s + chunk] = p
    return out


@dataclass(frozen=True)
class DPDLocalizer(MapLocalizer):
    """Grid DPD: the cost :func:`cost` on the position grid, a readout of it (default the plain argmax),
    and with ``params.offgrid`` the continuous local maximisation from there -> (n, 2).

    Attributes
    ----------
    readout : str
        A readout of :data:`daun_lib.readouts.READOUTS` that takes a score map (default "argmax").
    params : DPDParams, optional (None: the defaults)
    """

    params: DPDParams | None = None
    params_type: ClassVar[type] = DPDParams

    def _map(self, scenario: Scenario, y: np.ndarray) -> np.ndarray:
        return cost(_common.dictionaries(scenario)[0], y)

    def _check_users(self, scenario: Scenario, n_users: int) -> None:
        super()._check_users(scenario, n_users)
        if self.params.offgrid and n_users > 1:
            raise ValueError(f"n_users: the off-grid zoom of DPDParams(offgrid=True) places one user; got {n_users}")

    def _process(self, scenario: Scenario, y: np.ndarray, n_users: int) -> np.ndarray:
        p = super()._process(scenario, y, n_users)
        return _zoom(scenario, y, p[:, 0], self.params)[:, None] if self.params.offgrid else p


def localize(scenario: Scenario, y: Any, params: DPDParams | None = None) -> np.ndarray:
    """``DPDLocalizer(params=params)(scenario, y)``: ``scenario.grid[argmax_k F_k]`` (n, 2), or the
    local maximum of ``F`` near it when ``params.offgrid``."""
    return DPDLocalizer(params=params)(scenario, y)
