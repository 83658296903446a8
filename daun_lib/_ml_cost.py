r"""The concentrated ML cost of one LoS user's position, its analytic derivatives, and its inputs.

The maths of the continuous ML readout: :mod:`daun_lib.continuous` runs the Newton ascent on this
cost and re-exports the public names of this module (import them from there).  The sine geometry
(:func:`sine_geometry`) and the exact rescaling (:func:`unit_scale_y`) are shared with the joint
ML of several users (:mod:`daun_lib.joint_ml`).

Shapes: ``y`` (n, M, N) complex, positions ``p`` (n, 2) metres, weights ``w`` (n, M); the cost
``F`` (n,), its gradient (n, 2) and Hessian (n, 2, 2); per BS ``u``, ``c`` and ``f`` (n, M).

Model
-----
BS ``m`` receives one snapshot ``y_m = beta_m a_m(u_m(p)) + n_m`` (the LoS model of
:mod:`daun_lib.bounds`): ``a_m`` the unit-norm centred ULA steering vector,
``a[n] = exp(j k_n u) / sqrt(N)``, ``k_n = 2 pi d c_n``, ``c_n = n - (N-1)/2``
(:func:`daun_lib.arrays.element_wavenumbers`), ``u_m(p)`` the direction cosine of
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

Scaling (:func:`unit_scale`): both costs are homogeneous in ``y`` and ``w`` up to an additive
constant, so the localisers divide every sample by a power of two (exact) before evaluating them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _checks
from ._validation import as_array, positive
from ._validation import positions as _check_positions
from .arrays import element_wavenumbers
from .scenario import Scenario

__all__ = [
    "COSTS",
    "RESIDUAL_FLOOR",
    "check_cost",
    "check_points",
    "cost_at",
    "cost_derivatives",
    "cost_terms",
    "cost_values",
    "derivatives_at",
    "effective_weights",
    "signal_energy",
    "sine_geometry",
    "unit_scale",
    "unit_scale_exponent",
    "unit_scale_y",
]

#: The cost names accepted by the functions of this module and of :mod:`daun_lib.continuous` (module docstring).
COSTS: tuple[str, ...] = ("dpd", "per_bs_noise")

#: Relative floor of the residual ``R_m`` of the ``"per_bs_noise"`` cost (a fraction of ``||y_m||^2``).
RESIDUAL_FLOOR: float = 1e-12


# ---------------------------------------------------------------- validation


def check_cost(cost: Any) -> str:
    """``cost`` checked: one of :data:`COSTS`."""
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


def check_points(scenario: Scenario, p: Any, n: int, name: str) -> np.ndarray:
    """``p`` (n, 2) finite positions checked, one per sample (in ``"2d"`` none at a BS); errors name ``name``."""
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
        The weights the localisers of :mod:`daun_lib.continuous` use (its docstring, "Fewer than two BSs").
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


def cost_terms(cost: str, c, c1, c2, energy, N: int):
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


def cost_at(scenario, y, energy, p, w, cost):
    """(n,) float: the cost ``F(p)`` on checked inputs; ``energy`` (n, M) is :func:`signal_energy` of ``y``."""
    u, _, _ = sine_geometry(scenario, p, hessian=False)
    c, _, _ = _per_bs(scenario, y, u, 0)
    f, _, _ = cost_terms(cost, c, None, None, energy, scenario.n_antennas)
    return (w * f).sum(axis=1)


def derivatives_at(scenario, y, energy, p, w, cost):
    """``F`` (n,), its gradient (n, 2) and Hessian (n, 2, 2) on checked inputs (:func:`cost_derivatives`)."""
    u, g, H = sine_geometry(scenario, p, hessian=True)
    c, c1, c2 = _per_bs(scenario, y, u, 2)
    f, f1, f2 = cost_terms(cost, c, c1, c2, energy, scenario.n_antennas)
    F = (w * f).sum(axis=1)
    grad = np.einsum("nm,nmi->ni", w * f1, g)
    hess = np.einsum("nm,nmi,nmj->nij", w * f2, g, g) + np.einsum("nm,nmij->nij", w * f1, H)
    return F, grad, hess


def signal_energy(y: np.ndarray) -> np.ndarray:
    """(n, M) float: ``||y_m||^2`` per sample and BS."""
    return (y.real**2 + y.imag**2).sum(axis=-1)  # (n, M)


def _checked_at(scenario: Scenario, y: Any, p: Any, p_name: str, weights: Any, cost: Any):
    """The inputs of :func:`cost_values` / :func:`cost_derivatives` checked: y (n, M, N), p (n, 2), w (n, M), cost."""
    _checks.check_scenario(scenario)
    y = _checks.check_y(scenario, y)
    cost = check_cost(cost)
    p = check_points(scenario, p, y.shape[0], p_name)
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
    return cost_at(scenario, y, signal_energy(y), p, w, cost)


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
    return derivatives_at(scenario, y, signal_energy(y), p, w, cost)


# ---------------------------------------------------------------- exact rescaling


def unit_scale(y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
