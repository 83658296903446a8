r"""The deterministic ML criterion of ``U`` LoS sources and its maximisation one user at a time.

The criterion ``J`` (:func:`joint_fit`), the conditional cost of one more source given the others
(its value, analytic gradient and Hessian), the trust-region ascent of one user, and the
alternating projection (:func:`alternating_projection`) built from them.  :mod:`daun_lib.joint_ml`
adds the joint Newton ascent of all users at once (which shares :func:`trust_region_ascent`,
:func:`conj_steering` and :func:`explained_energy`) and re-exports the public names of this
module (import them from there).  Shapes: ``y`` (n, M, N) complex, positions (n, U, 2) metres,
orthonormal bases ``Q`` (n, M, N, u), one user's position (n, 2).

Model.  BS ``m`` receives ``y_m = sum_u beta_{m,u} a_m(p_u) + n_m`` with unit-norm LoS steering
vectors ``a_m(p)`` (:meth:`daun_lib.Scenario.los_steering`), unknown complex gains per BS and
user, and white noise.  Concentrating the gains (least squares per BS) leaves the deterministic
ML criterion of Ziskind & Wax (1988)::

    J(p_1 .. p_U) = sum_m ||Proj_m y_m||^2,   Proj_m the projection onto span(a_m(p_1) .. a_m(p_U))

(:func:`joint_fit`), the energy of ``y`` the users explain.  With one user it is the DPD cost.
The users' NLoS clusters are noise to this model.

Alternating projection (:func:`alternating_projection`).  One sweep moves every user in turn
to the maximiser of ``J`` over its own position, the others fixed.  With ``Q_m`` an orthonormal
basis of the others' steering vectors at BS ``m`` and ``r_m = (I - Q_m Q_m^H) y_m``, the increase
of ``J`` when the user is at ``p`` is the *conditional cost*::

    C(p) = sum_m |a_m^H r_m|^2 / ||P_m a_m||^2,   ||P_m a_m||^2 = 1 - ||Q_m^H a_m||^2

(the projection onto ``span(Q_m, a_m)`` is ``Q_m Q_m^H + b b^H / ||b||^2`` with ``b = P_m a_m``).  A
BS whose ``||P_m a_m||^2`` is at or below :data:`SPAN_TOL` sees the user on the bearing of
another one and contributes 0.  ``J`` never decreases along the sweeps.

Derivatives of ``C`` (:func:`_conditional_derivatives`).  Every term of BS ``m`` is a function of
the one sine ``u_m(p)`` that its array measures (:meth:`Scenario.los_sines`).  Write
``a_n(u) = exp(j k_n u) / sqrt(N)`` (:func:`daun_lib.arrays.element_wavenumbers`) and, for any
vector ``z`` of the BS (``r_m`` or a column ``q`` of ``Q_m``), ``s(u) = a(u)^H z`` with
``s' = -j sum_n k_n conj(a_n) z_n`` and ``s'' = -sum_n k_n^2 conj(a_n) z_n``; then ``c = |s|^2`` has
``c' = 2 Re(conj(s) s')`` and ``c'' = 2 (|s'|^2 + Re(conj(s) s''))``, as in
:mod:`daun_lib.continuous`.  The numerator is ``A = c[r]``, the denominator
``D = 1 - sum_q c[q]``, and the quotient ``f = A / D`` has::

    f'  = (A' - f D') / D,        f'' = (A'' - 2 f' D' - f D'') / D.

The chain rule through ``u_m(p)`` (gradient ``g_m`` and Hessian ``H_m`` of the sine,
:func:`daun_lib.continuous.sine_geometry`) gives ``grad C = sum_m f'_m g_m`` and
``hess C = sum_m (f''_m g_m g_m^T + f'_m H_m)``.  The three sums over the antennas of every
vector are one batched product with the moments ``[z, k z, k^2 z]``, computed once per update
(:func:`_moments`).

The ascent of one user (:func:`_newton`): Newton steps where the Hessian is negative definite,
else a step of :data:`_GRADIENT_STEP_M` along the gradient, inside a per-sample trust radius
(at most :data:`_MAX_STEP_M`, doubled after an accepted step, a quarter of the rejected step
after a rejected one); a step is taken only when ``C`` increases, so ``C`` never decreases.  One
evaluation (value, gradient and Hessian at once) per iteration.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from ._checks import check_magnitudes, check_scenario, check_y
from ._validation import as_array, integer_at_least
from .arrays import element_wavenumbers
from .scenario import Scenario

__all__ = [
    "AP_SWEEPS",
    "SPAN_TOL",
    "alternating_projection",
    "check_positions",
    "conditional_terms",
    "conj_steering",
    "explained_energy",
    "joint_fit",
    "orthonormal_basis",
    "project_out",
    "split_wavenumbers",
    "trust_region_ascent",
]

#: ``||P_m a_m||^2`` below this: the steering vector at BS m lies in the span of the other users'
#: vectors (unit-norm vectors, so this is a fraction of the vector's energy).
SPAN_TOL = 1e-6

#: Sweeps of the alternating projection over the users.  Chosen on prototype snapshots (400
#: two-user pairs per SNR, seeds 150000 + SNR, not those of notebook 08): from the SIC picks
#: P(both < 1 m) was 0.848 / 0.897 / 0.897 after 2 sweeps and 0.850 / 0.912 / 0.905 after 4 at
#: 0 / 10 / 20 dB (the gain from 2 to 4 is within one standard error, about 0.015).
AP_SWEEPS = 4
#: A sample stops sweeping once no user of it moved more than this (metres) in a sweep.
_SWEEP_STILL_M = 1e-3
#: Iterations of one user's ascent (:func:`_newton`).
_NEWTON_ITERATIONS = 15
#: Largest step of one iteration (metres), the initial trust radius.
_MAX_STEP_M = 1.0
#: Length of a step along the gradient where the Hessian is not negative definite (metres).
_GRADIENT_STEP_M = 0.1
#: The ascent of a sample stops when its step or its trust radius is below this (metres).
_STILL_M = 1e-4


# ---------------------------------------------------------------- projections


def orthonormal_basis(V: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the span of the columns of V (n, M, N, u) -> (n, M, N, u), dropped
    directions (rank deficiency: singular value below ``SPAN_TOL`` of the largest) as zero columns."""
    Q, s, _ = np.linalg.svd(V, full_matrices=False)
    keep = s > SPAN_TOL * np.maximum(s[..., :1], np.finfo(float).tiny)
    return Q * keep[..., None, :]


def project_out(y: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """``(I - Q Q^H) y`` per sample and BS: y (n, M, N), Q (n, M, N, u) orthonormal (or zero) columns."""
    c = np.einsum("bmnu,bmn->bmu", Q.conj(), y)
    return y - np.einsum("bmnu,bmu->bmn", Q, c)


def conditional_terms(a: np.ndarray, r: np.ndarray, Q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-BS ``|a_m^H r_m|^2`` and ``||P_m a_m||^2 = 1 - ||Q_m^H a_m||^2`` (unit-norm ``a_m``), (n, M) each.

    a (n, M, N) steering vectors of the new source, r (n, M, N) the data projected off the found
    sources, Q (n, M, N, u) their orthonormal basis (zero columns allowed).
    """
    num = np.abs(np.einsum("bmn,bmn->bm", a.conj(), r)) ** 2
    den = 1.0 - np.sum(np.abs(np.einsum("bmnu,bmn->bmu", Q.conj(), a)) ** 2, axis=-1)
    return num, den


def conditional_cost(A: np.ndarray, y: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """Conditional DPD cost of one more LoS source given the found ones (inputs trusted).

    Parameters
    ----------
    A : (M, N, K) complex, unit-norm columns
    y : (n, M, N) complex
    Q : (n, M, N, u) complex
        Orthonormal basis (zero columns allowed) of the found users' steering vectors per BS.

    Returns
    -------
    (n, K) float
        ``sum_m |a_m(k)^H P_m y_m|^2 / ||P_m a_m(k)||^2`` with ``P_m = I - Q_m Q_m^H``; a term with
        ``||P_m a_m(k)||^2 < 1e-6`` is 0.  For unit white noise each term is Exp(1), the sum
        Gamma(M, 1) (the projection keeps the noise white in the complement).
    """
    r = project_out(y, Q)
    out = np.zeros((y.shape[0], A.shape[2]))
    for m in range(A.shape[0]):
        num = np.abs(r[:, m, :] @ A[m].conj()) ** 2  # (n, K): |a^H P y|^2 (P Hermitian, P y = r)
        u = Q.shape[-1]
        inner = (np.conj(Q[:, m]).transpose(0, 2, 1).reshape(-1, A.shape[1]) @ A[m]).reshape(-1, u, A.shape[2])  # Q^H a
        den = 1.0 - np.sum(inner.real**2 + inner.imag**2, axis=1)  # ||P a||^2 = 1 - ||Q^H a||^2
        ok = den > SPAN_TOL
        out += np.where(ok, num / np.where(ok, den, 1.0), 0.0)
    return out


# ---------------------------------------------------------------- the criterion


def check_positions(scenario: Scenario, y: np.ndarray, positions: Any, name: str, start: bool = False) -> np.ndarray:
    """(n, U, 2) finite positions matching y's n; a ``start`` also inside the user area (the ascents
    clip to it) with distinct points per sample (coincident users cannot separate: every BS sees
    them in one direction)."""
    p = np.asarray(as_array(positions, name, 3, complex_ok=False), dtype=float)
    if p.shape[0] != y.shape[0] or p.shape[2] != 2 or p.shape[1] < 1:
        raise ValueError(
            f"{name}: expected a finite (n, U, 2) array with n = {y.shape[0]} (the samples of y) and U >= 1, "
            f"got shape {p.shape}"
        )
    if start:
        half = scenario.area_size / 2.0
        if (np.abs(p) > half).any():
            raise ValueError(f"{name}: expected points inside the user area [-{half:g}, {half:g}]^2 (metres)")
        U = p.shape[1]
        if U > 1 and any((p[:, i] == p[:, j]).all(axis=1).any() for i in range(U) for j in range(i + 1, U)):
            raise ValueError(f"{name}: expected distinct points within each sample, got two equal ones")
    return p


def joint_fit(scenario: Scenario, y: Any, positions: Any) -> np.ndarray:
    """Concentrated likelihood of ``U`` LoS sources ``sum_m ||Proj_m y_m||^2`` (module docstring) -> (n,).

    The energy of ``y`` explained by the users' LoS steering vectors with the best gains per BS
    and user.  y (n, M, N) or (M, N) complex, positions (n, U, 2) metres.  Computed on ``y``
    divided by a power of two per sample and scaled back (exact); a sample with ``|y|`` outside
    [1e-145, 1e150], where the energy overflows to ``inf`` or underflows to 0, raises ``ValueError``
    naming ``y`` (the guard of every method that squares ``y``).
    """
    from .continuous import unit_scale_exponent, unit_scale_y  # lazy, as the readouts do

    scenario = check_scenario(scenario)
    y = check_y(scenario, y)
    check_magnitudes(y, "joint_fit")
    p = check_positions(scenario, y, positions, "positions")
    return np.ldexp(explained_energy(scenario, unit_scale_y(y), p), 2 * unit_scale_exponent(y))


def explained_energy(scenario: Scenario, y: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``sum_m ||Q_m^H y_m||^2`` with ``Q_m`` an orthonormal basis of the users' steering vectors -> (n,)."""
    V = np.stack([scenario.los_steering(positions[:, j]) for j in range(positions.shape[1])], axis=-1)
    c = np.einsum("bmnu,bmn->bmu", orthonormal_basis(V).conj(), y)
    return np.sum(c.real**2 + c.imag**2, axis=(1, 2))


def _conditional_value(scenario: Scenario, r: np.ndarray, Q: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The conditional cost ``C(p)`` (module docstring) of one more source at ``p`` (n, 2) -> (n,).

    r (n, M, N) the data projected off the others, Q (n, M, N, u) their orthonormal basis (zero
    columns allowed).  The plain definition, from the steering vectors; the ascent uses
    :func:`_conditional_derivatives`, which computes the same value.
    """
    num, den = conditional_terms(scenario.los_steering(p), r, Q)
    ok = den > SPAN_TOL
    return np.sum(np.where(ok, num / np.where(ok, den, 1.0), 0.0), axis=1)


@lru_cache(maxsize=8)
def split_wavenumbers(n_antennas: int, spacing: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``k`` (N,) and its split ``k_n = k_0 + k[a B] - k_0 + (k[b] - k_0)`` for the phase product:
    ``ka = k[::B]`` (N / B,) and ``kb = k[:B] - k_0`` (B,), ``B`` the largest divisor of N up to sqrt(N)."""
    k = element_wavenumbers(n_antennas, spacing)
    B = max(b for b in range(1, int(np.sqrt(n_antennas)) + 1) if n_antennas % b == 0)
    return k, k[::B].copy(), k[:B] - k[0]


def conj_steering(scenario: Scenario, u: np.ndarray) -> np.ndarray:
    """``conj(a(u))`` (n, M, N) at the sines u (n, M): ``exp(-j k_n u) / sqrt(N)`` as the outer product
    of two short exponentials (``k_n = ka_i + kb_j``), equal to the direct one to about 1e-15."""
    k, ka, kb = split_wavenumbers(scenario.n_antennas, scenario.antenna_spacing)
    e1 = np.exp(-1j * (u[..., None] * ka)) / np.sqrt(k.size)
    e2 = np.exp(-1j * (u[..., None] * kb))
    return (e1[..., :, None] * e2[..., None, :]).reshape(u.shape + (k.size,))


def _moments(scenario: Scenario, r: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """``[z, k z, k^2 z]`` of ``z`` = r and the columns of Q: (n, M, 3 C, N), C = 1 + u.

    r (n, M, N), Q (n, M, N, u).  The rows ``0 .. C-1`` are r then Q's columns.
    """
    k = split_wavenumbers(scenario.n_antennas, scenario.antenna_spacing)[0]
    n, M, N = r.shape
    C = 1 + Q.shape[-1]
    W = np.empty((n, M, 3 * C, N), dtype=complex)  # one allocation, filled in place (fresh pages are slow)
    W[:, :, 0] = r
    W[:, :, 1:C] = np.swapaxes(Q, -1, -2)
    np.multiply(W[:, :, :C], k, out=W[:, :, C : 2 * C])
    np.multiply(W[:, :, C : 2 * C], k, out=W[:, :, 2 * C :])
    return W


def _conditional_derivatives(
    scenario: Scenario, W: np.ndarray, p: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``C``, its gradient and Hessian at ``p`` (n, 2) -> (n,), (n, 2), (n, 2, 2) (module docstring).

    W (n, M, 3 C, N) the moments of :func:`_moments`.
    """
    from .continuous import sine_geometry  # the sine u_m(p) and its derivatives, shared with the continuous ML

    u, g, H = sine_geometry(scenario, p, hessian=True)
    S = (W @ conj_steering(scenario, u)[..., None])[..., 0]  # (n, M, 3 C): sum_n k^i conj(a_n) z_n
    C = S.shape[-1] // 3
    s, t1, t2 = S[..., :C], S[..., C : 2 * C], S[..., 2 * C :]  # s' = -j t1, s'' = -t2
    c = s.real**2 + s.imag**2
    c1 = 2.0 * (s.real * t1.imag - s.imag * t1.real)
    c2 = 2.0 * (t1.real**2 + t1.imag**2 - (s.real * t2.real + s.imag * t2.imag))
    A, A1, A2 = c[..., 0], c1[..., 0], c2[..., 0]
    D, D1, D2 = 1.0 - c[..., 1:].sum(axis=-1), -c1[..., 1:].sum(axis=-1), -c2[..., 1:].sum(axis=-1)
    ok = D > SPAN_TOL
    Ds = np.where(ok, D, 1.0)
    f = A / Ds
    f1 = (A1 - f * D1) / Ds
    f2 = (A2 - 2.0 * f1 * D1 - f * D2) / Ds
    f, f1, f2 = (np.where(ok, x, 0.0) for x in (f, f1, f2))
    grad = np.einsum("nm,nmi->ni", f1, g)
    hess = np.einsum("nm,nmi,nmj->nij", f2, g, g) + np.einsum("nm,nmij->nij", f1, H)
    return f.sum(axis=1), grad, hess


# ---------------------------------------------------------------- the ascent


def _direction(g: np.ndarray, H: np.ndarray) -> np.ndarray:
    """Newton step where ``H`` (n, 2, 2) is negative definite, else ``_GRADIENT_STEP_M`` along ``g`` (n, 2);
    zero where no finite step exists."""
    hxx, hyy, hxy = H[:, 0, 0], H[:, 1, 1], H[:, 0, 1]
    det = hxx * hyy - hxy**2
    concave = (hxx < 0) & (det > 0)
    newton = -np.stack([hyy * g[:, 0] - hxy * g[:, 1], hxx * g[:, 1] - hxy * g[:, 0]], axis=-1)
    newton /= np.where(concave, det, 1.0)[:, None]
    gnorm = np.maximum(np.linalg.norm(g, axis=1), np.finfo(float).tiny)
    d = np.where(concave[:, None], newton, _GRADIENT_STEP_M * g / gnorm[:, None])
    return np.where(np.isfinite(d).all(axis=1, keepdims=True), d, 0.0)


def trust_region_ascent(
    half: float,
    p0: np.ndarray,
    evaluate: Any,
    direction: Any,
    iterations: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The trust-region ascent shared by :func:`_newton` and :func:`daun_lib.joint_ml.joint_ascent` (module docstring).

    p0 (n, U, 2) start, clipped to the area ``[-half, half]^2``; ``evaluate(rows, p)`` -> value (r,),
    gradient (r, 2 U), Hessian (r, 2 U, 2 U) of the samples ``rows`` (int array) at ``p`` (r, U, 2);
    ``direction(g, H)`` -> step (r, 2 U).  The step is scaled so that no user moves more than the
    sample's radius (at most ``_MAX_STEP_M``, doubled after an accepted step, a quarter of a rejected
    one) and taken only when the value increases.  At most ``iterations`` evaluations after the
    first; a sample stops when its largest user step or its radius falls below ``_STILL_M``.
    -> positions (n, U, 2) and their values (n,).
    """
    n, U, _ = p0.shape
    p = np.clip(np.array(p0, dtype=float), -half, half)
    active = np.arange(n)  # samples still moving
    F, g, H = evaluate(active, p)
    fit = F.copy()  # the value at p, every sample
    rho = np.full(n, _MAX_STEP_M)
    for _ in range(iterations):
        pa = p[active]
        d = direction(g, H).reshape(-1, U, 2)
        d *= np.minimum(1.0, rho / np.maximum(np.linalg.norm(d, axis=-1).max(axis=1), np.finfo(float).tiny))[
            :, None, None
        ]
        q = np.clip(pa + d, -half, half)
        step = np.linalg.norm(q - pa, axis=-1).max(axis=1)
        go = step >= _STILL_M
        if not go.all():
            active, q, step, F, g, H, rho = (v[go] for v in (active, q, step, F, g, H, rho))
        if active.size == 0:
            break
        Fq, gq, Hq = evaluate(active, q)
        up = Fq > F
        p[active[up]] = q[up]
        fit[active[up]] = Fq[up]
        F = np.where(up, Fq, F)
        g = np.where(up[:, None], gq, g)
        H = np.where(up[:, None, None], Hq, H)
        rho = np.where(up, np.minimum(2.0 * rho, _MAX_STEP_M), step / 4.0)
        go = rho >= _STILL_M
        if not go.all():
            active, F, g, H, rho = (v[go] for v in (active, F, g, H, rho))
        if active.size == 0:
            break
    return p, fit


def _newton(scenario: Scenario, W: np.ndarray, p0: np.ndarray) -> np.ndarray:
    """Maximise the conditional cost of the moments W (n, M, 3 C, N) from ``p0`` (n, 2) -> (n, 2).

    :func:`trust_region_ascent` with :func:`_conditional_derivatives` and :func:`_direction`, at
    most ``_NEWTON_ITERATIONS`` iterations.  Points are clipped to the user area (a point on the
    border may stop early).  ``C`` never decreases.
    """

    def evaluate(rows: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return _conditional_derivatives(scenario, W[rows], p[:, 0])

    half = scenario.area_size / 2.0
    return trust_region_ascent(half, p0[:, None, :], evaluate, _direction, _NEWTON_ITERATIONS)[0][:, 0]


def _check_sweeps(sweeps: Any) -> int:
    return integer_at_least(sweeps, "sweeps", 0)


def alternating_projection(scenario: Scenario, y: Any, start: Any, sweeps: int = AP_SWEEPS) -> np.ndarray:
    """Joint ML positions of ``U`` LoS sources by alternating projection (Ziskind & Wax 1988) -> (n, U, 2).

    One sweep updates every user in turn: ``y_m`` is projected off the other users' steering
    vectors at their current (continuous) positions and the user moves to the maximiser of the
    conditional cost by the trust-region Newton ascent from its current position (module
    docstring).  :func:`joint_fit` never decreases.  ``sweeps`` sweeps from ``start``
    (closely spaced users converge slowly; a sample stops once no user of it moved more than
    1 mm in a sweep).  Each sample is first divided by the power of two that brings its largest
    magnitude into [1, 2) (exact: the positions do not depend on the scale of ``y``).

    Parameters
    ----------
    scenario : Scenario
    y : (n, M, N) or (M, N) complex
    start : (n, U, 2) float, metres
        Initial positions (e.g. grid peaks of a map).
    sweeps : int >= 0

    Returns
    -------
    (n, U, 2) float, metres, in the order of ``start``.  With ``U = 1`` and ``sweeps >= 1``: the
    single-user continuous ML (:func:`daun_lib.continuous.ml_localize` with the DPD cost from
    ``start``).  ``start`` must lie inside the user area, its points distinct within a sample.
    """
    scenario = check_scenario(scenario)
    y = check_y(scenario, y)
    start = check_positions(scenario, y, start, "start", start=True)
    return _alternating_projection(scenario, y, start, _check_sweeps(sweeps))


def _alternating_projection(scenario: Scenario, y: np.ndarray, start: np.ndarray, sweeps: int) -> np.ndarray:
    from . import continuous  # lazy, as the readouts do

    n, U, _ = start.shape
    pos = np.array(start, dtype=float)
    if U == 1 and sweeps > 0:
        return continuous.ml_localize(scenario, y, start=pos[:, 0], cost="dpd")[:, None, :]
    y = continuous.unit_scale_y(y)
    V = np.stack([scenario.los_steering(pos[:, j]) for j in range(U)], axis=-1)  # (n, M, N, U)
    active = np.arange(n)
    for _ in range(sweeps):
        before = pos[active]
        ya = y[active]
        for u in range(U):
            Q = orthonormal_basis(V[active][..., [j for j in range(U) if j != u]])
            W = _moments(scenario, project_out(ya, Q), Q)
            pos[active, u] = _newton(scenario, W, pos[active, u])
            V[active, ..., u] = scenario.los_steering(pos[active, u])
        moved = np.linalg.norm(pos[active] - before, axis=-1).max(axis=1)
        active = active[moved > _SWEEP_STILL_M]
        if active.size == 0:
            break
    return pos
