r"""Continuous maximum-likelihood position estimation: safeguarded Newton on the DPD cost.

The model, the two costs (``"dpd"``, ``"per_bs_noise"``) and their analytic derivatives are in
:mod:`daun_lib._ml_cost` (re-exported here: :func:`cost_values`, :func:`cost_derivatives`,
:func:`effective_weights`, :data:`COSTS`, ...).  Shapes: ``y`` (n, M, N) complex, positions
(n, 2) metres, weights (n, M) or (M,).

Newton with safeguards (:func:`newton_ml`)
------------------------------------------
Per iteration and sample: the direction is the Newton step ``-H^{-1} grad`` when
``H`` is negative definite (then it is an ascent direction), else the gradient
``grad``; its length is capped at the trust radius ``rho``; the step is halved
until ``F`` does not decrease (at most ``MLParams.max_halvings`` times; if none
succeeds the sample stops where it is).  Positions are projected onto the user
area ``[-area/2, area/2]^2`` (the search region is the area, the paper's prior);
a coordinate at a bound whose gradient points out of the area is held fixed
(projected Newton: its row and column of ``H`` are replaced by ``-1`` on the
diagonal and its gradient component by 0).  A sample stops when an accepted step
is shorter than ``tol_m``, when its reduced gradient is zero, when no halving
increases ``F`` or after ``max_iter`` iterations.  Every accepted step has
``F(new) >= F(old)``, so ``F(result) >= F(start)`` for every sample.

Trust radius (``MLParams.trust_radius_m = None``, derived per scenario): the
quadratic model of ``c(u)`` is meaningful only inside the main lobe of the
beampattern, whose peak-to-first-null half-width is ``1 / (N d)`` in ``u``.  Since
``|g_m| <= 1 / r_m`` (``|g|^2 = 1/r^2 - q^2 (2 r^2 - |d_h|^2) / r^6 <= 1/r^2``), that
half-width is at least ``r_min / (N d)`` metres in position anywhere in the area,
``r_min`` the smallest horizontal distance from a BS to the area.  The derived
radius is the smaller of that and the grid spacing (the start comes from the
grid, whose cells it need not leave in one step)::

    rho = min(min(grid_spacing), r_min / (N d)).

For the default scenario ``r_min = 30 sqrt(2) m`` and ``N d = 25``, so the grid
spacing 40/30 m is the smaller.

Start (:func:`grid_start`): the grid point of ``scenario.grid`` (the columns of
``A``) maximising the same cost, computed as one GEMM per BS on blocks of
``GRID_BLOCK`` samples.

Fewer than two BSs: the localisers (:func:`grid_start`, :func:`newton_ml`,
:func:`ml_localize`, :func:`los_oracle`) replace the weights of a sample with
fewer than two positive weights by all ones (:func:`effective_weights`): one
bearing fixes a line, not a position, so the weighted cost has a ridge of maxima
and its maximiser would be arbitrary; :func:`cost_derivatives` evaluates the
weights as given.

Per-user heights (``Scenario.ut_height_range_m``) are not modelled: the estimator
assumes the nominal ``ut_height_m``, as the dictionaries do.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _checks
from ._ml_cost import (
    COSTS,
    RESIDUAL_FLOOR,
    check_cost,
    check_points,
    cost_at,
    cost_derivatives,
    cost_terms,
    cost_values,
    derivatives_at,
    effective_weights,
    signal_energy,
    sine_geometry,
    unit_scale,
    unit_scale_exponent,
    unit_scale_y,
)
from ._validation import positive
from .scenario import Scenario

__all__ = [
    "COSTS",
    "GRID_BLOCK",
    "MLParams",
    "RESIDUAL_FLOOR",
    "cost_derivatives",
    "cost_values",
    "effective_weights",
    "grid_start",
    "los_oracle",
    "ml_localize",
    "newton_ml",
    "sine_geometry",
    "trust_radius",
    "unit_scale_exponent",
    "unit_scale_y",
]

#: Samples per block in :func:`grid_start` (bounds its working memory to ``GRID_BLOCK * K`` floats per BS).
GRID_BLOCK: int = 1024


@dataclass(frozen=True)
class MLParams:
    """Settings of :func:`newton_ml`.

    Attributes
    ----------
    max_iter : int
        Newton iterations per sample at most (default 50).
    tol_m : float
        A sample stops after an accepted step shorter than this, metres (default 1e-6).
    trust_radius_m : float or None
        Step length cap, metres; ``None`` (default) derives it from the scenario
        (:func:`trust_radius`, module docstring).
    max_halvings : int
        Step halvings per iteration before a sample stops (default 40).
    """

    max_iter: int = 50
    tol_m: float = 1e-6
    trust_radius_m: float | None = None
    max_halvings: int = 40

    def __post_init__(self) -> None:
        positive(self.max_iter, "max_iter", integer=True)
        positive(self.tol_m, "tol_m")
        if self.trust_radius_m is not None:
            positive(self.trust_radius_m, "trust_radius_m")
        positive(self.max_halvings, "max_halvings", integer=True)


def trust_radius(scenario: Scenario) -> float:
    """The derived trust radius ``min(min(grid_spacing), r_min / (N d))`` in metres (module docstring).

    ``r_min`` is the smallest horizontal distance from a BS to the square user area.
    """
    _checks.check_scenario(scenario)
    half = scenario.area_size / 2.0
    bs = scenario.bs_array
    gap = np.maximum(np.abs(bs) - half, 0.0)  # (M, 2) distance outside the square per axis
    r_min = float(np.sqrt((gap**2).sum(axis=1)).min())
    lobe = r_min / (scenario.n_antennas * scenario.antenna_spacing)
    return float(min(min(scenario.grid_spacing), lobe))


# ---------------------------------------------------------------- the estimators


def _grid_start(scenario: Scenario, y: np.ndarray, w: np.ndarray, cost: str) -> np.ndarray:
    A = _checks.dictionaries(scenario)[0]  # (M, N, K), unit-norm columns
    grid = scenario.grid
    N = scenario.n_antennas
    out = np.empty((y.shape[0], 2))
    for s in range(0, y.shape[0], GRID_BLOCK):
        yy = y[s : s + GRID_BLOCK]
        ww = w[s : s + GRID_BLOCK]
        energy = signal_energy(yy)
        score = np.zeros((yy.shape[0], A.shape[2]))
        for m in range(scenario.n_bs):
            v = yy[:, m, :] @ A[m].conj()  # (b, K) = a^H y
            c = v.real**2 + v.imag**2
            f, _, _ = cost_terms(cost, c, None, None, energy[:, m, None], N)
            score += ww[:, m, None] * f
        out[s : s + GRID_BLOCK] = grid[np.argmax(score, axis=1)]
    return out


def grid_start(scenario: Scenario, y: Any, weights: Any = None, cost: str = "dpd") -> np.ndarray:
    """(n, 2) float: the grid point of ``scenario.grid`` maximising the cost, per sample.

    Parameters
    ----------
    scenario : Scenario
    y : (n, M, N) complex
    weights : (n, M) or (M,) float >= 0, or None
        Samples with fewer than two positive weights use all BSs (:func:`effective_weights`).
    cost : "dpd" or "per_bs_noise"

    Returns
    -------
    (n, 2) float
        Computed on blocks of :data:`GRID_BLOCK` samples (one GEMM per BS and block).
    """
    _checks.check_scenario(scenario)
    y = _checks.check_y(scenario, y)
    cost = check_cost(cost)
    w = effective_weights(scenario, weights, y.shape[0])
    return _grid_start(scenario, *unit_scale(y, w), cost)


def _newton(scenario: Scenario, y: np.ndarray, p0: np.ndarray, w: np.ndarray, cost: str, params: MLParams):
    half = scenario.area_size / 2.0
    rho = params.trust_radius_m if params.trust_radius_m is not None else trust_radius(scenario)
    energy_all = signal_energy(y)
    p = np.clip(p0, -half, half)
    active = np.arange(p.shape[0])
    for _ in range(params.max_iter):
        if active.size == 0:
            break
        yy, ee, ww, pp = y[active], energy_all[active], w[active], p[active]
        F, g, H = derivatives_at(scenario, yy, ee, pp, ww, cost)
        # projected Newton: hold coordinates at a bound whose gradient points outwards
        bound = ((pp >= half) & (g > 0)) | ((pp <= -half) & (g < 0))  # (b, 2)
        g = np.where(bound, 0.0, g)
        both = bound[:, :, None] | bound[:, None, :]
        H = np.where(both, 0.0, H)
        H[:, 0, 0] = np.where(bound[:, 0], -1.0, H[:, 0, 0])
        H[:, 1, 1] = np.where(bound[:, 1], -1.0, H[:, 1, 1])
        a, b, c = H[:, 0, 0], 0.5 * (H[:, 0, 1] + H[:, 1, 0]), H[:, 1, 1]
        det = a * c - b * b
        negdef = (a < 0) & (det > 0)
        safe = np.where(negdef, det, 1.0)
        newton = -np.stack([c * g[:, 0] - b * g[:, 1], a * g[:, 1] - b * g[:, 0]], axis=1) / safe[:, None]
        step = np.where(negdef[:, None], newton, g)
        length = np.sqrt((step**2).sum(axis=1))
        scale = np.where(length > rho, rho / np.where(length > 0, length, 1.0), 1.0)
        if not negdef.all():  # gradient steps: length rho (the cost's curvature scale), halved below
            scale = np.where(negdef, scale, rho / np.where(length > 0, length, 1.0))
        step = step * scale[:, None]
        done = length == 0.0
        accepted = np.zeros(active.size, dtype=bool)
        moved = np.zeros(active.size)
        todo = np.flatnonzero(~done)
        t = 1.0
        for _h in range(params.max_halvings + 1):
            if todo.size == 0:
                break
            cand = np.clip(pp[todo] + t * step[todo], -half, half)
            Fn = cost_at(scenario, yy[todo], ee[todo], cand, ww[todo], cost)
            ok = Fn >= F[todo]
            idx = todo[ok]
            moved[idx] = np.sqrt(((cand[ok] - pp[idx]) ** 2).sum(axis=1))
            pp[idx] = cand[ok]
            accepted[idx] = True
            todo = todo[~ok]
            t *= 0.5
        p[active] = pp
        stop = done | ~accepted | (moved < params.tol_m)
        active = active[~stop]
    return p


def _check_start(scenario: Scenario, start: Any, n: int) -> np.ndarray:
    """``start`` (n, 2) checked (:func:`check_points`) and inside the user area: a start outside would be
    clipped to the boundary, far from what the caller asked for (the rule of :mod:`daun_lib.joint_ml`)."""
    p = check_points(scenario, start, n, "start")
    half = scenario.area_size / 2.0
    if (np.abs(p) > half).any():
        raise ValueError(f"start: expected points inside the user area [-{half:g}, {half:g}]^2 (metres)")
    return p


def newton_ml(
    scenario: Scenario,
    y: Any,
    start: Any,
    weights: Any = None,
    cost: str = "dpd",
    params: MLParams | None = None,
) -> np.ndarray:
    """Maximise the cost from ``start`` by safeguarded, projected Newton (module docstring).

    Parameters
    ----------
    scenario : Scenario
    y : (n, M, N) complex
    start : (n, 2) float
        Start positions, metres, finite, inside the user area (else ``ValueError`` naming ``start``).
    weights : (n, M) or (M,) float >= 0, or None
        Samples with fewer than two positive weights use all BSs (:func:`effective_weights`).
    cost : "dpd" or "per_bs_noise"
    params : MLParams or None (the defaults)

    Returns
    -------
    (n, 2) float
        Positions in the area with ``F(result) >= F(start)`` for every sample
        (``F`` with :func:`effective_weights`).

    Raises
    ------
    ValueError
        Naming ``scenario``, ``y``, ``start``, ``weights``, ``cost`` or ``params``.
    """
    _checks.check_scenario(scenario)
    y = _checks.check_y(scenario, y)
    cost = check_cost(cost)
    params = _checks.check_params(params, MLParams)
    p0 = _check_start(scenario, start, y.shape[0])
    w = effective_weights(scenario, weights, y.shape[0])
    ys, ws = unit_scale(y, w)
    return _newton(scenario, ys, p0, ws, cost, params)


def ml_localize(
    scenario: Scenario,
    y: Any,
    start: Any = None,
    weights: Any = None,
    cost: str = "dpd",
    params: MLParams | None = None,
) -> np.ndarray:
    """Continuous ML position: :func:`grid_start` (when ``start`` is None), then :func:`newton_ml`.

    With ``cost="per_bs_noise"`` the start is the grid maximum of the ``"dpd"`` cost and the
    Newton ascent runs first on ``"dpd"``, then on ``"per_bs_noise"`` from there: at high SNR the
    per-BS cost has narrow ridges along every BS's bearing line (``-N log R_m`` grows without
    bound as the residual of one BS vanishes), on which a Newton ascent from a grid cell stalls
    far from the intersection; the ``"dpd"`` optimum lies in the basin of the per-BS optimum
    (both costs peak where every bearing fits).

    Parameters
    ----------
    scenario : Scenario
    y : (n, M, N) complex
    start : (n, 2) float or None
        Start positions inside the user area (e.g. the peak of a network's map; outside it
        ``ValueError`` naming ``start``, as in :mod:`daun_lib.joint_ml`); None: the grid maximum.
    weights : (n, M) or (M,) float >= 0, or None
        Per-BS weights; a sample with fewer than two positive weights is localised with all BSs.
    cost : "dpd" or "per_bs_noise"
    params : MLParams or None

    Returns
    -------
    (n, 2) float
        Positions in the user area.
    """
    _checks.check_scenario(scenario)
    y = _checks.check_y(scenario, y)
    cost = check_cost(cost)
    params = _checks.check_params(params, MLParams)
    w = effective_weights(scenario, weights, y.shape[0])
    y, w = unit_scale(y, w)
    if start is None:
        p0 = _grid_start(scenario, y, w, "dpd")
    else:
        p0 = _check_start(scenario, start, y.shape[0])
    if cost == "per_bs_noise":
        p0 = _newton(scenario, y, p0, w, "dpd", params)
    return _newton(scenario, y, p0, w, cost, params)


def los_oracle(scenario: Scenario, y: Any, los: Any, cost: str = "dpd", params: MLParams | None = None) -> np.ndarray:
    """The LoS-oracle reference: continuous ML on the true LoS links only (an oracle, not a localiser).

    Parameters
    ----------
    scenario : Scenario
    y : (n, M, N) complex
    los : (n, M) bool
        True where the link has a LoS path (``ChannelBatch.los``).
    cost : "dpd" or "per_bs_noise"
    params : MLParams or None

    Returns
    -------
    (n, 2) float
        :func:`ml_localize` with ``weights = los``.  Users with fewer than two LoS
        links are localised with all links: without a prior the oracle can do
        nothing better for them.
    """
    _checks.check_scenario(scenario)
    y = _checks.check_y(scenario, y)
    los_arr = np.asarray(los)
    if los_arr.dtype != bool:
        if not (
            np.issubdtype(los_arr.dtype, np.integer)
            and los_arr.size
            and isinstance(los_arr.flat[0], numbers.Integral)
            and np.isin(los_arr, (0, 1)).all()
        ):
            raise ValueError(f"los: expected a boolean (n, M) array, got dtype {los_arr.dtype}")
    if los_arr.shape != (y.shape[0], scenario.n_bs):
        raise ValueError(f"los: expected shape ({y.shape[0]}, {scenario.n_bs}), got {los_arr.shape}")
    return ml_localize(scenario, y, weights=los_arr.astype(float), cost=cost, params=params)
