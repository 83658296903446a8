r"""Joint deterministic maximum likelihood of ``U`` LoS sources: the readout of several users.

The criterion ``J(p_1 .. p_U) = sum_m ||Proj_m y_m||^2`` of Ziskind & Wax (1988) (:func:`joint_fit`,
the energy of ``y`` the users' LoS steering vectors explain with the best gains per BS and user),
its maximisation one user at a time (:func:`alternating_projection`) and the conditional cost of
one more source live in :mod:`daun_lib._alternating_projection`, with their derivations; their
public names are re-exported here.  This module maximises ``J`` over all users at once
(:func:`joint_newton`) and from several starts (:func:`multistart`).  Shapes: ``y`` (n, M, N)
complex, positions (n, U, 2) metres, gradients (n, 2 U) and Hessians (n, 2 U, 2 U), coordinates
ordered ``(x_1, y_1, x_2, y_2, ..)``.

Joint Newton (:func:`joint_newton`, the readout of :mod:`daun_lib.multiuser`).  The alternating
projection converges linearly where users are close (each sweep moves one user against the
others' old positions); a Newton ascent on all ``2 U`` coordinates at once does not.  Per BS,
with ``A = [a(u_1) .. a(u_U)]`` (N, U), ``G = A^H A``, ``b = A^H y``, the gains ``x = G^+ b``
(pseudo-inverse: directions of ``G`` below ``SPAN_TOL^2`` of its largest eigenvalue dropped, as
:func:`orthonormal_basis` drops singular values below ``SPAN_TOL``), the residual ``e = y - A x`` and
``D = [a'(u_1) .. a'(u_U)]`` (``a' = j k a``)::

    J_m = b^H x,     dJ_m / du_i = 2 Re(conj(x_i) d_i^H e)                  (exact),
    d2J_m / du_i du_j ~ -2 Re(M_ij conj(x_i) x_j),  M = D^H D - (A^H D)^H G^+ (A^H D)

(Viberg, Ottersten & Kailath 1991: the Gauss-Newton curvature, exact where the fit is, ``e = 0``).
The chain rule through every user's sines adds the exact curvature of the geometry,
``sum_m dJ_m/du_i H_{m,i}`` on user i's diagonal block.  The step solves with ``-hess`` after
replacing its eigenvalues by their magnitudes, floored at ``1e-8`` of the largest (the
saddle-free Newton step of Dauphin et al. 2014: the Newton step where the cost is concave, an
ascent direction where it is not; the Hessian can be ill-conditioned, down to about 1e-4
between its extreme eigenvalues with three users, so the floor must stay far below that),
inside a per-sample trust radius on the largest user step
(:func:`daun_lib._alternating_projection.trust_region_ascent`, shared with the one-user ascent of
the alternating projection); a step is taken only when ``J`` increases.  At most :data:`_JOINT_ITERATIONS` iterations: enough for two users
(40 give the same P(all < 1 m) on prototype snapshots), while with three users about 5 % of
samples are still moving there (40 iterations: +0.005 to +0.023 in P(all < 1 m), 1.5 times the
time).  Where two users' sines nearly coincide at a BS (a few cm apart), ``G`` is nearly
singular and the derivatives lose precision (the Hessian need not even be symmetric); ``J``
drops towards coincidence, so the ascent does not step there.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from ._alternating_projection import (
    AP_SWEEPS,
    SPAN_TOL,
    alternating_projection,
    check_positions,
    conditional_terms,
    conj_steering,
    explained_energy,
    joint_fit,
    orthonormal_basis,
    project_out,
    split_wavenumbers,
    trust_region_ascent,
)
from ._checks import check_scenario, check_y
from ._validation import integer_at_least
from .scenario import Scenario

__all__ = [
    "AP_SWEEPS",
    "SPAN_TOL",
    "alternating_projection",
    "conditional_terms",
    "joint_fit",
    "joint_newton",
    "multistart",
    "orthonormal_basis",
    "project_out",
]

#: Iterations of the joint Newton ascent (:func:`joint_newton`).
_JOINT_ITERATIONS = 15
#: Floor of the eigenvalue magnitudes of ``-hess`` in the joint Newton step, relative to the largest.
_EIGEN_FLOOR = 1e-8


# ---------------------------------------------------------------- the joint Newton ascent


def _joint_derivatives(scenario: Scenario, y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``J``, its gradient and its Gauss-Newton Hessian at ``p`` (n, U, 2) (module docstring).

    y (n, M, N).  -> J (n,), grad (n, 2 U), hess (n, 2 U, 2 U); coordinates ordered
    ``(x_1, y_1, x_2, y_2, ..)``.
    """
    from .continuous import sine_geometry  # the sines and their derivatives, shared with the continuous ML

    n, U, _ = p.shape
    M, N = scenario.n_bs, scenario.n_antennas
    u, g, Hg = sine_geometry(scenario, p.reshape(-1, 2), hessian=True)  # (n U, M), (n U, M, 2), (n U, M, 2, 2)
    A = np.conj(conj_steering(scenario, u)).reshape(n, U, M, N).transpose(0, 2, 3, 1)  # (n, M, N, U)
    k = split_wavenumbers(N, scenario.antenna_spacing)[0]
    D = (1j * k)[:, None] * A  # d a / du per column
    Ah, Dh = np.conj(A).swapaxes(-1, -2), np.conj(D).swapaxes(-1, -2)
    AhX = Ah @ np.concatenate([A, D, y[..., None]], axis=-1)  # [G, A^H D, b]: one product, (n, M, U, 2 U + 1)
    AhD, b = AhX[..., U : 2 * U], AhX[..., 2 * U]
    w, V = np.linalg.eigh(AhX[..., :U])  # G = A^H A, Hermitian PSD (n, M, U, U)
    keep = w > SPAN_TOL**2 * np.maximum(w[..., -1:], np.finfo(float).tiny)
    Gp = (V * np.where(keep, 1.0 / np.where(keep, w, 1.0), 0.0)[..., None, :]) @ np.conj(V).swapaxes(-1, -2)
    x = (Gp @ b[..., None])[..., 0]  # the least-squares gains (n, M, U)
    J = np.sum(np.real(np.conj(b) * x), axis=(1, 2))
    e = y - (A @ x[..., None])[..., 0]
    gu = 2.0 * np.real(np.conj(x) * (Dh @ e[..., None])[..., 0])  # dJ_m / du_i, (n, M, U)
    Mm = Dh @ D - np.conj(AhD).swapaxes(-1, -2) @ Gp @ AhD
    Hu = -2.0 * np.real(Mm * (np.conj(x)[..., :, None] * x[..., None, :]))  # (n, M, U, U)
    g = g.reshape(n, U, M, 2)
    grad = np.einsum("nmu,numi->nui", gu, g).reshape(n, 2 * U)
    hess = np.einsum("nmuv,numi,nvmj->nuivj", Hu, g, g).reshape(n, 2 * U, 2 * U)
    geo = np.einsum("nmu,numij->nuij", gu, Hg.reshape(n, U, M, 2, 2))  # curvature of the sines
    for i in range(U):
        hess[:, 2 * i : 2 * i + 2, 2 * i : 2 * i + 2] += geo[:, i]
    return J, grad, hess


def _joint_direction(grad: np.ndarray, hess: np.ndarray) -> np.ndarray:
    """``|-hess|^-1 grad`` (n, 2 U): the eigenvalues of ``-hess`` replaced by their magnitudes, floored
    at ``_EIGEN_FLOOR`` of the largest (module docstring); zero where no finite step exists."""
    w, V = np.linalg.eigh(-hess)
    floor = _EIGEN_FLOOR * np.maximum(np.abs(w).max(axis=-1, keepdims=True), np.finfo(float).tiny)
    d = np.einsum("nij,nj->ni", V, np.einsum("nji,nj->ni", V, grad) / np.maximum(np.abs(w), floor))
    return np.where(np.isfinite(d).all(axis=1, keepdims=True), d, 0.0)


def joint_ascent(scenario: Scenario, y: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Joint trust-region Newton ascent of ``J`` from ``start`` (n, U, 2) (module docstring); inputs trusted
    (the validated entry point is :func:`joint_newton`).

    y (n, M, N) is first divided per sample by a power of two (exact).
    :func:`~daun_lib._alternating_projection.trust_region_ascent` with :func:`_joint_derivatives` and :func:`_joint_direction`, at
    most ``_JOINT_ITERATIONS`` iterations.  ``J`` never decreases.  With ``U = 1`` the single-user
    continuous ML (the DPD cost).  -> positions (n, U, 2) and their ``J`` (n,) on the scaled ``y``.
    """
    from . import continuous  # lazy, as the readouts do

    y = continuous.unit_scale_y(y)
    if start.shape[1] == 1:
        p = continuous.ml_localize(scenario, y, start=start[:, 0], cost="dpd")[:, None, :]
        return p, explained_energy(scenario, y, p)

    def evaluate(rows: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return _joint_derivatives(scenario, y[rows], p)

    half = scenario.area_size / 2.0
    return trust_region_ascent(half, start, evaluate, _joint_direction, _JOINT_ITERATIONS)


def joint_newton(scenario: Scenario, y: Any, start: Any) -> np.ndarray:
    """Joint ML positions of ``U`` LoS sources by a Newton ascent on all of them at once -> (n, U, 2).

    The readout of :mod:`daun_lib.multiuser` (``readout="ap"``): a trust-region Newton ascent of
    :func:`joint_fit` over the ``2 U`` coordinates (module docstring) from ``start``; the fit never
    decreases.  Positions do not depend on the scale of ``y`` (a power of two per sample, exact).

    Parameters
    ----------
    scenario : Scenario
    y : (n, M, N) or (M, N) complex
    start : (n, U, 2) float, metres
        Initial positions inside the user area, distinct within a sample (e.g. grid peaks).

    Returns
    -------
    (n, U, 2) float, metres, in the order of ``start``.  With ``U = 1``: the single-user
    continuous ML (:func:`daun_lib.continuous.ml_localize` with the DPD cost from ``start``).
    """
    scenario = check_scenario(scenario)
    y = check_y(scenario, y)
    return joint_ascent(scenario, y, check_positions(scenario, y, start, "start", start=True))[0]


#: Samples per block of :func:`multistart_fit` (bounds its working memory; the ascents are per sample,
#: so blocks change no result).
MULTISTART_BLOCK = 128

#: Most start subsets :func:`multistart` runs per sample (``C(L, U)``; memory grows with it).
MAX_SUBSETS = 64


def multistart(scenario: Scenario, y: Any, candidates: Any, n_users: int) -> np.ndarray:
    """Multi-start joint ML: :func:`joint_newton` from every U-subset of the candidates -> (n, U, 2).

    Each of the ``C(L, U)`` subsets of the ``L`` candidate positions of a sample starts a joint
    Newton ascent; the result with the largest joint fit (:func:`joint_fit`, as the ascent
    computes it: equal up to round-off) is kept (ties: the earliest of
    the tied subsets in :func:`itertools.combinations` order, whose first is the first U
    candidates).  All starts run as one batch.

    Parameters
    ----------
    scenario : Scenario
    y : (n, M, N) or (M, N) complex
    candidates : (n, L, 2) float, metres, ``L >= n_users``, ``C(L, n_users) <= MAX_SUBSETS``
        E.g. the L strongest peaks of a map, strongest first; inside the user area, distinct
        within a sample.
    n_users : int >= 1
    """
    scenario = check_scenario(scenario)
    y = check_y(scenario, y)
    cand = check_positions(scenario, y, candidates, "candidates", start=True)
    n_users = integer_at_least(n_users, "n_users", 1)
    if n_users > cand.shape[1]:
        raise ValueError(f"n_users: expected at most the L = {cand.shape[1]} candidates, got {n_users}")
    if math.comb(cand.shape[1], n_users) > MAX_SUBSETS:
        raise ValueError(
            f"candidates: C(L, n_users) = C({cand.shape[1]}, {n_users}) start subsets exceed MAX_SUBSETS = {MAX_SUBSETS}"
        )
    return multistart_fit(scenario, y, cand, n_users)


def multistart_fit(scenario: Scenario, y: np.ndarray, cand: np.ndarray, n_users: int) -> np.ndarray:
    """:func:`multistart` on checked inputs (y (n, M, N) complex128, cand (n, L, 2) inside the area) -> (n, U, 2)."""
    if cand.shape[0] > MULTISTART_BLOCK:  # bounded working memory: blocks of samples
        return np.concatenate(
            [
                multistart_fit(scenario, y[lo : lo + MULTISTART_BLOCK], cand[lo : lo + MULTISTART_BLOCK], n_users)
                for lo in range(0, cand.shape[0], MULTISTART_BLOCK)
            ]
        )
    n, L, _ = cand.shape
    subsets = [list(c) for c in itertools.combinations(range(L), n_users)]
    starts = np.concatenate([cand[:, c] for c in subsets])  # (S n, U, 2), subset-major
    # every copy of a sample is scaled by the same power of two: fits compared within a sample, no overflow
    p, fit = joint_ascent(scenario, np.concatenate([y] * len(subsets)), starts)
    p, fit = p.reshape(len(subsets), n, n_users, 2), fit.reshape(len(subsets), n)
    return p[np.argmax(fit, axis=0), np.arange(n)]
