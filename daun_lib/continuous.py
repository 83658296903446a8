r"""Continuous maximum-likelihood position estimation: safeguarded Newton on the DPD cost.

Model
-----
BS ``m`` receives one snapshot ``y_m = beta_m a_m(u_m(p)) + n_m`` (the LoS model of
:mod:`daun_lib.bounds`): ``a_m`` the unit-norm centred ULA steering vector,
``a[n] = exp(j k_n u) / sqrt(N)``, ``k_n = 2 pi d c_n``, ``c_n = n - (N-1)/2``
(:func:`daun_lib.scenario.element_wavenumbers`), ``u_m(p)`` the direction cosine of
:meth:`Scenario.los_sines` (``"2d"``, or ``"3d"`` with the users at the known height
``ut_height_m``), ``beta_m`` an unknown complex gain per BS.  Per-BS weights
``w_m >= 0`` (one row per sample) select the BSs a cost uses (a LoS oracle, a
blockage-robust subset); ``weights=None`` means all ones.

Costs (both maximised over ``p``)
---------------------------------
``"dpd"`` (default): equal, known noise power at every BS (the package's signal
model, ``n ~ CN(0, I)``).  The log-likelihood is ``-sum_m ||y_m - beta_m a_m||^2``
up to constants; for unit-norm ``a_m`` it is maximised over ``beta_m`` by
``beta_m = a_m^H y_m`` with residual ``||y_m||^2 - |a_m^H y_m|^2``, so the
concentrated ML cost is the DPD cost (Weiss 2004, :mod:`daun_lib.baselines.dpd`)::

    F(p) = sum_m w_m c_m(u_m(p)),    c_m(u) = |s_m(u)|^2,   s_m(u) = a_m(u)^H y_m.

``"per_bs_noise"``: white noise of unknown variance ``sigma_m^2`` per BS (a BS
whose data the LoS ray explains badly, e.g. one with strong NLoS clusters or a
blocked LoS, then counts less).  Per BS the log-likelihood of ``CN(beta a, sigma^2 I_N)``
is ``-N log(pi sigma^2) - ||y - beta a||^2 / sigma^2``.  Concentrating ``beta``
(``beta = a^H y`` as above) leaves the residual ``R_m = ||y_m||^2 - |a_m^H y_m|^2``;
then ``d/d sigma^2 = 0`` gives ``sigma^2 = R_m / N`` and the value
``-N log(pi R_m / N) - N``.  Dropping the constants::

    F(p) = -N sum_m w_m log R_m(p),    R_m = ||y_m||^2 - c_m(u_m(p)) >= 0 (Cauchy-Schwarz).

``R_m`` is floored at ``RESIDUAL_FLOOR * ||y_m||^2`` (plus the smallest normal
float) so that a noiseless LoS signal or an all-zero BS gives finite values.

Derivatives (:func:`cost_derivatives`)
--------------------------------------
Per BS, with ``z_n = conj(a_n(u)) y_n`` (so ``s = sum_n z_n``)::

    s'  = sum_n (-j k_n) z_n,      s'' = sum_n (-k_n^2) z_n,
    c'  = 2 Re(conj(s) s'),        c'' = 2 (|s'|^2 + Re(conj(s) s'')).

For ``"per_bs_noise"`` the per-BS term ``f = -N log(E - c)`` (``E = ||y_m||^2``) has
``f' = N c' / R`` and ``f'' = N c'' / R + N c'^2 / R^2``; for ``"dpd"`` ``f = c``.

Chain rule through ``u_m(p)``: let ``d`` be the vector from array ``m`` to the user,
horizontal part ``d_h = p - b_m`` (2-D) and in ``"3d"`` a constant vertical part
``-(bs_height_m - ut_height_m)``, ``r = |d|`` (2-D or 3-D), ``e = axis_m``
(:attr:`Scenario.array_axes`, horizontal), ``q = e . d_h``, ``u = q / r``.  With
``dr/dp = d_h / r``::

    g   = grad_p u = e / r - q d_h / r^3                       (bounds.los_gradients),
    H_u = d/dp g^T = -(e d_h^T + d_h e^T) / r^3 - q I_2 / r^3 + 3 q d_h d_h^T / r^5

(differentiate ``e_i / r`` -> ``-e_i d_j / r^3``; ``-q d_i / r^3`` ->
``-(e_j d_i + q delta_ij) / r^3 + 3 q d_i d_j / r^5``).  Then::

    grad F = sum_m w_m f'_m g_m,       hess F = sum_m w_m (f''_m g_m g_m^T + f'_m H_u,m).

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
from ._validation import as_array, positive
from ._validation import positions as _check_positions
from .scenario import Scenario, element_wavenumbers

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
    "trust_radius",
]

#: The cost names accepted by the functions of this module (module docstring).
COSTS: tuple[str, ...] = ("dpd", "per_bs_noise")

#: Relative floor of the residual ``R_m`` of the ``"per_bs_noise"`` cost (a fraction of ``||y_m||^2``).
RESIDUAL_FLOOR: float = 1e-12

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


# ---------------------------------------------------------------- validation


def _check_cost(cost: Any) -> str:
    if not isinstance(cost, str) or cost not in COSTS:
        raise ValueError(f"cost: expected one of {COSTS}, got {cost!r}")
    return cost


def _check_weights(weights: Any, n: int, M: int) -> np.ndarray:
    """``weights`` (n, M) or (M,) finite >= 0, or None -> (n, M) float64."""
    if weights is None:
        return np.ones((n, M))
    if isinstance(weights, (bool, np.bool_)):
        raise ValueError(f"weights: expected a finite (n, M) = ({n}, {M}) array >= 0, got {weights!r}")
    w = np.asarray(as_array(weights, "weights", (1, 2), complex_ok=False), dtype=float)
    if w.ndim == 1:
        w = np.broadcast_to(w, (n, w.shape[0]))
    if w.shape != (n, M):
        raise ValueError(f"weights: expected shape ({n}, {M}) (one weight per sample and BS), got {w.shape}")
    if (w < 0).any():
        raise ValueError("weights: expected weights >= 0, got a negative weight")
    return np.ascontiguousarray(w)


def _check_points(scenario: Scenario, p: Any, n: int, name: str) -> np.ndarray:
    p = _check_positions(p, name)
    if p.shape[0] != n:
        raise ValueError(f"{name}: expected shape ({n}, 2) (one position per sample of y), got {p.shape}")
    if scenario.geometry == "2d":
        at_bs = (p[:, None, :] == scenario.bs_array[None]).all(axis=-1).any()
        if at_bs:
            raise ValueError(f"{name}: a position coincides with a BS; its direction from that BS is undefined")
    return p


def effective_weights(scenario: Scenario, weights: Any, n: int) -> np.ndarray:
    """(n, M) float: ``weights`` validated, with all ones for samples that have fewer than two ``w > 0``.

    Parameters
    ----------
    scenario : Scenario
    weights : (n, M) or (M,) float >= 0, or None (all ones)
    n : int
        Number of samples.

    Returns
    -------
    (n, M) float
        The weights the localisers of this module use (module docstring, "Fewer than two BSs").
    """
    _checks.check_scenario(scenario)
    n = positive(n, "n", integer=True)
    w = _check_weights(weights, n, scenario.n_bs).copy()
    few = (w > 0).sum(axis=1) < 2
    w[few] = 1.0
    return w


# ---------------------------------------------------------------- the cost


def sine_geometry(scenario: Scenario, p: np.ndarray, hessian: bool):
    """u (n, M), g (n, M, 2) and, when ``hessian``, H_u (n, M, 2, 2) (module docstring)."""
    d = p[:, None, :] - scenario.bs_array[None]  # (n, M, 2)
    e = scenario.array_axes  # (M, 2)
    r2 = (d**2).sum(axis=-1)
    if scenario.geometry == "3d":
        r2 = r2 + (scenario.bs_height_m - scenario.ut_height_m) ** 2
    r = np.sqrt(r2)
    q = d[..., 0] * e[:, 0] + d[..., 1] * e[:, 1]
    u = q / r
    r3 = r * r2
    g = e[None] / r[..., None] - (q / r3)[..., None] * d
    if not hessian:
        return u, g, None
    ed = e[None, :, :, None] * d[..., None, :]  # e_i d_j
    H = -(ed + np.swapaxes(ed, -1, -2)) / r3[..., None, None]
    H = H + (3.0 * q / (r3 * r2))[..., None, None] * (d[..., :, None] * d[..., None, :])
    diag = q / r3
    H[..., 0, 0] -= diag
    H[..., 1, 1] -= diag
    return u, g, H


def _per_bs(scenario: Scenario, y: np.ndarray, u: np.ndarray, order: int):
    """Per-BS ``c`` and, for ``order`` >= 1/2, ``c'`` and ``c''`` (n, M) at the sines ``u`` (n, M)."""
    k = element_wavenumbers(scenario.n_antennas, scenario.antenna_spacing)  # (N,)
    z = np.exp(-1j * (u[..., None] * k)) * y / np.sqrt(scenario.n_antennas)  # conj(a_n) y_n
    s = z.sum(axis=-1)
    c = s.real**2 + s.imag**2
    if order == 0:
        return c, None, None
    kz = z * k
    s1 = -1j * kz.sum(axis=-1)
    c1 = 2.0 * (s.conj() * s1).real
    s2 = -(kz * k).sum(axis=-1)
    c2 = 2.0 * (s1.real**2 + s1.imag**2 + (s.conj() * s2).real)
    return c, c1, c2


def _terms(cost: str, c, c1, c2, energy, N: int):
    """Per-BS cost term ``f`` and its u-derivatives (module docstring)."""
    if cost == "dpd":
        return c, c1, c2
    floor = RESIDUAL_FLOOR * energy + np.finfo(float).tiny
    R = np.maximum(energy - c, floor)
    f = -N * np.log(R)
    if c1 is None:
        return f, None, None
    f1 = N * c1 / R
    f2 = N * c2 / R + N * (c1 / R) ** 2
    return f, f1, f2


def _value(scenario, y, energy, p, w, cost):
    u, _, _ = sine_geometry(scenario, p, hessian=False)
    c, _, _ = _per_bs(scenario, y, u, 0)
    f, _, _ = _terms(cost, c, None, None, energy, scenario.n_antennas)
    return (w * f).sum(axis=1)


def _derivatives(scenario, y, energy, p, w, cost):
    u, g, H = sine_geometry(scenario, p, hessian=True)
    c, c1, c2 = _per_bs(scenario, y, u, 2)
    f, f1, f2 = _terms(cost, c, c1, c2, energy, scenario.n_antennas)
    F = (w * f).sum(axis=1)
    grad = np.einsum("nm,nmi->ni", w * f1, g)
    hess = np.einsum("nm,nmi,nmj->nij", w * f2, g, g) + np.einsum("nm,nmij->nij", w * f1, H)
    return F, grad, hess


def _energy(y: np.ndarray) -> np.ndarray:
    return (y.real**2 + y.imag**2).sum(axis=-1)  # (n, M)


def _checked_at(scenario: Scenario, y: Any, p: Any, p_name: str, weights: Any, cost: Any):
    """The inputs of :func:`cost_values` / :func:`cost_derivatives` checked: y (n, M, N), p (n, 2), w (n, M), cost."""
    _checks.check_scenario(scenario)
    y = _checks.check_y(scenario, y)
    cost = _check_cost(cost)
    p = _check_points(scenario, p, y.shape[0], p_name)
    return y, p, _check_weights(weights, y.shape[0], scenario.n_bs), cost


def cost_values(scenario: Scenario, y: Any, positions: Any, weights: Any = None, cost: str = "dpd") -> np.ndarray:
    """(n,) float: the cost ``F(p)`` (module docstring) at one position per sample.

    Parameters
    ----------
    scenario : Scenario
    y : (n, M, N) complex
    positions : (n, 2) float, metres (none at a BS in ``"2d"``)
    weights : (n, M) or (M,) float >= 0, or None (all ones); used as given
    cost : "dpd" or "per_bs_noise"
    """
    y, p, w, cost = _checked_at(scenario, y, positions, "positions", weights, cost)
    return _value(scenario, y, _energy(y), p, w, cost)


def cost_derivatives(
    scenario: Scenario, y: Any, p: Any, weights: Any = None, cost: str = "dpd"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cost and its analytic gradient and Hessian in the position.

    Parameters
    ----------
    scenario : Scenario
        ``"2d"`` or ``"3d"`` (users at ``ut_height_m``).
    y : (n, M, N) complex
        Received signals.
    p : (n, 2) float
        Positions, metres, finite (in ``"2d"`` none at a BS).
    weights : (n, M) or (M,) float >= 0, or None
        Per-BS weights ``w_m``, used as given (None: all ones).
    cost : "dpd" or "per_bs_noise"
        ``sum_m w_m |a_m^H y_m|^2`` or ``-N sum_m w_m log(||y_m||^2 - |a_m^H y_m|^2)``.

    Returns
    -------
    F : (n,) float
    grad : (n, 2) float
        ``grad F = sum_m w_m f'_m g_m`` (module docstring).
    hess : (n, 2, 2) float
        ``sum_m w_m (f''_m g_m g_m^T + f'_m H_u,m)``, symmetric.

    Raises
    ------
    ValueError
        Naming ``scenario``, ``y``, ``p``, ``weights`` or ``cost``.
    """
    y, p, w, cost = _checked_at(scenario, y, p, "p", weights, cost)
    return _derivatives(scenario, y, _energy(y), p, w, cost)


# ---------------------------------------------------------------- the estimators


def _unit_scale(y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``y`` and ``w`` divided per sample by powers of two that bring their largest magnitude into [1, 2).

    Both costs are homogeneous in ``y`` and ``w`` up to an additive constant (``"dpd"``: ``F`` scales
    by ``c^2 b``; ``"per_bs_noise"``: ``log R`` shifts by ``log c^2``), so their maximisers do not
    move; a power-of-two factor is exact in floating point, so at ordinary scales the positions are
    bit-identical, and at extreme ones (``y`` near 1e-150 or 1e150, weights near 1e-300) the squares
    neither overflow nor underflow.
    """
    wmax = w.max(axis=1)
    ew = np.frexp(np.where(wmax > 0, wmax, 1.0))[1] - 1
    return unit_scale_y(y), np.ldexp(w, -ew[:, None])


def unit_scale_exponent(y: np.ndarray) -> np.ndarray:
    """Per sample of ``y`` (n, ...) the ``e`` (n,) int with ``2**e <= max |y| < 2**(e + 1)`` (0 for an
    all-zero sample): :func:`unit_scale_y` divides by ``2**e``."""
    ymax = np.abs(y).reshape(y.shape[0], -1).max(axis=1)
    return np.frexp(np.where(ymax > 0, ymax, 1.0))[1] - 1


def unit_scale_y(y: np.ndarray) -> np.ndarray:
    """``y`` (n, ...) complex divided per sample by the power of two that brings its largest magnitude
    into [1, 2) (:func:`unit_scale_exponent`; exact in floating point; an all-zero sample is left as it is)."""
    fy = np.ldexp(1.0, -unit_scale_exponent(y)).reshape((-1,) + (1,) * (y.ndim - 1))  # exact powers of two
    return y * fy  # (complex ldexp does not exist)


def _grid_start(scenario: Scenario, y: np.ndarray, w: np.ndarray, cost: str) -> np.ndarray:
    A = _checks.dictionaries(scenario)[0]  # (M, N, K), unit-norm columns
    grid = scenario.grid
    N = scenario.n_antennas
    out = np.empty((y.shape[0], 2))
    for s in range(0, y.shape[0], GRID_BLOCK):
        yy = y[s : s + GRID_BLOCK]
        ww = w[s : s + GRID_BLOCK]
        energy = _energy(yy)
        score = np.zeros((yy.shape[0], A.shape[2]))
        for m in range(scenario.n_bs):
            v = yy[:, m, :] @ A[m].conj()  # (b, K) = a^H y
            c = v.real**2 + v.imag**2
            f, _, _ = _terms(cost, c, None, None, energy[:, m, None], N)
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
    cost = _check_cost(cost)
    w = effective_weights(scenario, weights, y.shape[0])
    return _grid_start(scenario, *_unit_scale(y, w), cost)


def _newton(scenario: Scenario, y: np.ndarray, p0: np.ndarray, w: np.ndarray, cost: str, params: MLParams):
    half = scenario.area_size / 2.0
    rho = params.trust_radius_m if params.trust_radius_m is not None else trust_radius(scenario)
    energy_all = _energy(y)
    p = np.clip(p0, -half, half)
    active = np.arange(p.shape[0])
    for _ in range(params.max_iter):
        if active.size == 0:
            break
        yy, ee, ww, pp = y[active], energy_all[active], w[active], p[active]
        F, g, H = _derivatives(scenario, yy, ee, pp, ww, cost)
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
            Fn = _value(scenario, yy[todo], ee[todo], cand, ww[todo], cost)
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
        Start positions, metres, finite; projected onto the area first.
    weights : (n, M) or (M,) float >= 0, or None
        Samples with fewer than two positive weights use all BSs (:func:`effective_weights`).
    cost : "dpd" or "per_bs_noise"
    params : MLParams or None (the defaults)

    Returns
    -------
    (n, 2) float
        Positions in the area with ``F(result) >= F(projected start)`` for every sample
        (``F`` with :func:`effective_weights`).

    Raises
    ------
    ValueError
        Naming ``scenario``, ``y``, ``start``, ``weights``, ``cost`` or ``params``.
    """
    _checks.check_scenario(scenario)
    y = _checks.check_y(scenario, y)
    cost = _check_cost(cost)
    params = _checks.check_params(params, MLParams)
    p0 = _check_points(scenario, start, y.shape[0], "start")
    w = effective_weights(scenario, weights, y.shape[0])
    ys, ws = _unit_scale(y, w)
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
        Start positions (e.g. the peak of a network's map); None: the grid maximum of the cost.
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
    cost = _check_cost(cost)
    params = _checks.check_params(params, MLParams)
    w = effective_weights(scenario, weights, y.shape[0])
    y, w = _unit_scale(y, w)
    if start is None:
        p0 = _grid_start(scenario, y, w, "dpd")
    else:
        p0 = _check_points(scenario, start, y.shape[0], "start")
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
