r"""Bearing-only position fixing shared by the two-step baselines (Stansfield, SRL).

A bearing (global azimuth) ``phi_m`` measured at a BS at ``b_m`` defines the
line ``{p : n_m^T (p - b_m) = 0}`` with normal ``n_m = (sin phi_m, -cos phi_m)``.
For a user at distance ``d_m`` a small bearing error ``e_m`` moves the
line by ``n_m^T (p - b_m) = d_m sin(e_m) ~= d_m e_m``.

Stansfield estimator (Stansfield 1947, as analysed by Gavish & Weiss 1992,
their Sec. II, "Stansfield estimator"): the weighted least-squares solution
of the linear equations ``n_m^T p = n_m^T b_m``,

.. math::

    \hat p = (H^T W H)^{-1} H^T W c,\quad H_m = n_m^T,\ c_m = n_m^T b_m,\
    W = \mathrm{diag}\big(1 / (d_m^2 \sigma_m^2)\big),

with bearing variances ``sigma_m^2`` and ranges ``d_m``.  The ranges are unknown;
as usual they are taken from an initial estimate (here the solution with
``d_m = 1``) and the solve is repeated ``iterations`` times with the
ranges of the current estimate.  Gavish & Weiss show that the estimator is
biased but close to the ML (their iterative least squares) at small bearing
errors; with ``sigma_m`` known up to a common factor it is what they call the
Stansfield estimator.

:class:`BearingLocalizer` is the shared second step of the two-step
localisers (Stansfield, SRL): a subclass estimates per-BS angles (and,
optionally, their variances); the intersection and the clip to the area are
here.

In ``Scenario(geometry="3d")`` a measured ``u_m = sin(theta_m)`` fixes a cone
around the array axis, not a vertical plane: on the user plane (height
``ut_height_m``) its locus is a conic, so no line intersection is exact.
:func:`cone_intersection` then solves the weighted least squares on ``u``
directly, ``min_p sum_m w_m (u_m - u_m(p))^2`` with ``u_m(p)`` of
:meth:`Scenario.los_sines`, by damped Gauss-Newton from the best cell of the
position grid; :class:`BearingLocalizer` uses it only in ``"3d"`` (the 2-D path
is the Stansfield intersection above, unchanged).

Conventions: bearings are global azimuths (radians); a ULA angle ``theta``
(from broadside, :mod:`daun_lib.scenario`) at BS ``m`` has the bearing
``phi = array_normals[m] + theta`` (:func:`to_bearings`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._checks import check_scenario
from .._validation import as_array, integer_at_least
from ..localizers import Localizer
from ..scenario import Scenario
from . import _common

__all__ = [
    "BearingLocalizer",
    "stansfield",
    "to_bearings",
    "cone_intersection",
    "RIDGE",
    "CONE_ITERATIONS",
]

#: Relative ridge added to the 2 x 2 normal matrix (guards near-parallel bearings).
RIDGE = 1e-9


def to_bearings(scenario: Scenario, theta: Any) -> np.ndarray:
    """Array angles (n, M) from broadside -> global bearings (n, M), radians."""
    check_scenario(scenario)
    theta = np.asarray(as_array(theta, "theta", 2, complex_ok=False), dtype=float)
    if theta.shape[1] != scenario.n_bs:
        raise ValueError(f"theta: expected shape (n, {scenario.n_bs}), got {theta.shape}")
    return scenario.array_normals[None, :] + theta


def stansfield(
    bs: Any,
    bearings: Any,
    bearing_var: Any | None = None,
    *,
    iterations: int = 3,
) -> np.ndarray:
    """Stansfield weighted least-squares intersection of bearing lines, batched.

    Parameters
    ----------
    bs : (M, 2) float
        Sensor (BS) positions, metres.
    bearings : (n, M) float
        Global azimuths of the measured bearings, radians.
    bearing_var : (n, M) float > 0, optional
        Bearing-error variances ``sigma_m^2`` (only their ratios matter).
        Default: equal variances.
    iterations : int >= 0
        Number of range re-weightings after the initial solve with
        ``d_m = 1``; 0 gives the plain (variance-weighted) least squares.

    Returns
    -------
    (n, 2) float
        Position estimates.
    """
    bs = np.asarray(as_array(bs, "bs", 2, complex_ok=False), dtype=float)
    if bs.shape[1] != 2 or bs.shape[0] < 2:
        raise ValueError(f"bs: expected an (M, 2) array with M >= 2, got shape {bs.shape}")
    phi = np.asarray(as_array(bearings, "bearings", 2, complex_ok=False), dtype=float)
    if phi.shape[1] != bs.shape[0] or phi.shape[0] < 1:
        raise ValueError(f"bearings: expected shape (n, {bs.shape[0]}), got {phi.shape}")
    if bearing_var is None:
        var = np.ones_like(phi)
    else:
        var = np.asarray(as_array(bearing_var, "bearing_var", 2, complex_ok=False), dtype=float)
        if var.shape != phi.shape or (var <= 0).any():
            raise ValueError(f"bearing_var: expected positive values of shape {phi.shape}, got {var.shape}")
    iterations = integer_at_least(iterations, "iterations", 0)
    nrm = np.stack([np.sin(phi), -np.cos(phi)], axis=-1)  # (n, M, 2)
    c = np.einsum("nmi,mi->nm", nrm, bs)  # n_m^T b_m
    w = var.min(axis=1, keepdims=True) / var  # only ratios matter: 1 / var overflows for tiny variances
    p = _wls(nrm, c, w)
    for _ in range(iterations):
        d2 = np.sum(np.square(p[:, None, :] - bs[None]), axis=-1)
        p = _wls(nrm, c, w / np.maximum(d2, 1e-12))
    return p


def _wls(nrm: np.ndarray, c: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Solve ``min_p sum_m w_m (n_m^T p - c_m)^2`` for every sample (2 x 2 systems)."""
    w = w / w.max(axis=1, keepdims=True)
    G = np.einsum("nm,nmi,nmj->nij", w, nrm, nrm)
    r = np.einsum("nm,nmi,nm->ni", w, nrm, c)
    G = G + RIDGE * np.trace(G, axis1=1, axis2=2)[:, None, None] * np.eye(2)
    return np.linalg.solve(G, r[..., None])[..., 0]


@dataclass(frozen=True)
class BearingLocalizer(Localizer):
    """Two-step localiser: per-BS angles, then :func:`stansfield` intersection, clipped to the area.

    Subclasses implement ``_angles(scenario, y) -> (theta (n, M), variance (n, M) or None)``
    (angles from broadside, radians; variances up to a common factor, None for
    equal ones) and ``_iterations()``, the range re-weightings of the intersection.
    """

    def _check_scenario(self, scenario: Scenario) -> None:
        if scenario.n_bs < 2:
            raise ValueError("scenario: bearing intersection needs at least two BSs")

    def _angles(self, scenario: Scenario, y: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    def _iterations(self) -> int:
        raise NotImplementedError

    def _locate(self, scenario: Scenario, y: np.ndarray) -> np.ndarray:
        theta, var = self._angles(scenario, y)
        if scenario.geometry == "3d":
            # var is a variance of theta; var(u) = cos(theta)^2 var(theta) to first order
            w = None if var is None else 1.0 / (var * np.maximum(np.cos(theta) ** 2, 1e-6))
            return cone_intersection(scenario, np.sin(theta), w)
        p = stansfield(scenario.bs_array, to_bearings(scenario, theta), var, iterations=self._iterations())
        return _common.clip_to_area(scenario, p)


#: Gauss-Newton iterations of :func:`cone_intersection`.
CONE_ITERATIONS = 10


def cone_intersection(scenario: Scenario, u: Any, weights: Any | None = None, *, iterations: int = CONE_ITERATIONS):
    """Position from measured direction cosines: weighted least squares on ``u``, clipped to the area.

    Solves ``min_p sum_m w_m (u_m - u_m(p))^2`` over the user area, with
    ``u_m(p)`` the measured quantity of :meth:`Scenario.los_sines` (in
    ``"3d"`` the cosine of the cone angle, whose level set on the user plane
    is a conic; in ``"2d"`` the sine of the in-plane angle).  Start: the cell
    centre of the position grid with the smallest cost; then ``iterations``
    damped Gauss-Newton steps with the Jacobian
    ``du_m/dp = axis_m / r_m - (d_m . axis_m) d_m / r_m^3`` (``d_m`` the
    horizontal offset from BS m, ``r_m`` the 2-D or 3-D distance), each step
    clipped to the area and kept only where it lowers the cost.

    Parameters
    ----------
    scenario : Scenario
    u : (n, M) float
        Measured ``sin(theta_m)`` per sample and BS, in [-1, 1].
    weights : (n, M) float > 0, optional
        ``w_m`` (only ratios within a sample matter); default equal.
    iterations : int >= 0

    Returns
    -------
    (n, 2) float
        Positions inside the area.
    """
    check_scenario(scenario)
    M = scenario.n_bs
    u = np.asarray(as_array(u, "u", 2, complex_ok=False), dtype=float)
    if u.shape[1] != M or u.shape[0] < 1 or not np.isfinite(u).all() or np.abs(u).max() > 1.0 + 1e-12:
        raise ValueError(f"u: expected finite values in [-1, 1] of shape (n, {M}), got shape {u.shape}")
    if weights is None:
        w = np.ones_like(u)
    else:
        w = np.asarray(as_array(weights, "weights", 2, complex_ok=False), dtype=float)
        if w.shape != u.shape or not np.isfinite(w).all() or (w <= 0).any():
            raise ValueError(f"weights: expected finite positive values of shape {u.shape}, got shape {w.shape}")
    iterations = integer_at_least(iterations, "iterations", 0)
    w = w / w.max(axis=1, keepdims=True)
    half = scenario.area_size / 2.0
    grid = scenario.grid
    ug = scenario.los_sines(grid)  # (K, M)
    p = np.empty((u.shape[0], 2))
    for s in range(0, u.shape[0], 256):
        cost = np.einsum("nkm,nm->nk", (u[s : s + 256, None, :] - ug[None]) ** 2, w[s : s + 256])
        p[s : s + 256] = grid[cost.argmin(axis=1)]
    bs, axes = scenario.bs_array, scenario.array_axes
    dz2 = (scenario.bs_height_m - scenario.ut_height_m) ** 2 if scenario.geometry == "3d" else 0.0

    def model(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = q[:, None, :] - bs[None]  # (n, M, 2)
        r = np.sqrt((d**2).sum(axis=-1) + dz2)
        along = np.einsum("nmc,mc->nm", d, axes)
        jac = axes[None] / r[..., None] - (along / r**3)[..., None] * d  # (n, M, 2)
        return along / r, jac

    def total(q: np.ndarray) -> np.ndarray:
        return np.sum(w * (u - model(q)[0]) ** 2, axis=1)

    f = total(p)
    for _ in range(iterations):
        um, jac = model(p)
        G = np.einsum("nm,nmi,nmj->nij", w, jac, jac)
        g = np.einsum("nm,nmi,nm->ni", w, jac, u - um)
        G = G + RIDGE * np.trace(G, axis1=1, axis2=2)[:, None, None] * np.eye(2)
        q = np.clip(p + np.linalg.solve(G, g[..., None])[..., 0], -half, half)
        fq = total(q)
        better = fq < f
        p[better], f[better] = q[better], fq[better]
    return p
