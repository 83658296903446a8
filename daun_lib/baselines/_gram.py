r"""Batched per-BS linear algebra of the reweighted ridge problems of VB and MM.

Both VB (sparse Bayesian learning) and MM (iteratively reweighted least squares)
repeatedly solve, for every BS m and sample, a ridge problem with a diagonal
weight on the stacked unknowns ``w_m = [x_m; z_m]`` (D = K + L entries) of the
dictionary ``Phi_m = [A_m, B_m]`` (N x D):

.. math::

    \mu_m = \Delta_m \Phi_m^H C_m^{-1} y_m,\qquad
    C_m = \sigma^2 I_N + \Phi_m \Delta_m \Phi_m^H,\qquad
    \Delta_m = \mathrm{diag}(\delta_m),

which is the Woodbury form of ``(Phi^H Phi / sigma^2 + Delta^{-1})^{-1} Phi^H y /
sigma^2``: the D x D system (D = 1000 at paper scale) becomes an N x N one
(N = 50).  VB also needs the posterior variances, i.e. the diagonal
``q_d = phi_d^H C^{-1} phi_d``.

For ULA dictionaries (every column a unit-norm steering vector
``a(u)[p] = exp(j 2 pi s (p - c) u) / sqrt(N)``) the outer products
``a a^H`` are Toeplitz, so

* ``C[p, q] = sigma^2 [p = q] + t[p - q]`` with ``t[k] = sum_d delta_d e^{j 2 pi s k u_d} / N``:
  D x N operations instead of D x N^2, and
* ``q_d = (1/N) (g[0] + 2 Re sum_{k>0} e^{-j 2 pi s k u_d} g[k])`` with the
  diagonal sums ``g[k] = sum_{p - q = k} (C^{-1})[p, q]``: again D x N.

:class:`Gram` uses this exact shortcut when it is given the ``u`` of the
columns, and plain dense products otherwise; a test checks that both agree.
Internal layout is BS-first: ``(M, n, ...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch

from ..admm import check_problem, resolve_dtype
from ..localizers import MapLocalizer
from . import _common


class Gram:
    """Products with the per-BS dictionaries ``Phi`` (M, N, D), batched over samples.

    Parameters
    ----------
    Phi : (M, N, D) complex
        Dictionaries.
    u : (M, D) float, optional
        When given, ``Phi[m][:, d]`` must be the unit-norm ULA steering vector
        with spatial frequency ``u[m, d] = sin(theta)`` and element spacing
        ``spacing`` wavelengths; the covariance and its quadratic forms then
        use the Toeplitz shortcut.
    spacing : float
        ULA element spacing in wavelengths (only with ``u``).
    dtype : torch complex dtype
        Working precision (default complex128).
    """

    def __init__(
        self, Phi: np.ndarray, u: np.ndarray | None = None, spacing: float = 0.5, dtype: torch.dtype = torch.complex128
    ) -> None:
        self.dtype = dtype
        self.rdtype = torch.float64 if dtype == torch.complex128 else torch.float32
        self.Phi = torch.as_tensor(np.array(Phi), dtype=dtype)  # (M, N, D)
        self.PhiT = self.Phi.transpose(1, 2).contiguous()  # (M, D, N)
        self.PhiC = self.Phi.conj().contiguous()  # (M, N, D)
        self.PhiH = self.PhiC.transpose(1, 2).contiguous()  # (M, D, N)
        self.M, self.N, self.D = self.Phi.shape
        self.ula = u is not None
        if self.ula:
            N = self.N
            lag = torch.arange(N, dtype=torch.float64)
            ut = torch.as_tensor(np.asarray(u, dtype=float))  # (M, D)
            E = torch.exp(1j * 2.0 * np.pi * spacing * ut[..., None] * lag) / N  # (M, D, N), complex128
            coef = torch.full((N,), 2.0, dtype=torch.float64)
            coef[0] = 1.0
            self.E = E.to(dtype).contiguous()
            self.EqT = (E.conj() * coef).transpose(1, 2).to(dtype).contiguous()  # (M, N, D)
            p = torch.arange(N)
            diff = p[:, None] - p[None, :]
            self.low_flat = torch.nonzero((diff >= 0).reshape(-1)).squeeze(1)  # p >= q, flattened
            self.low_lag = diff.reshape(-1)[self.low_flat]  # their lag p - q

    # -------------------------------------------------------------- products
    def forward(self, w: torch.Tensor) -> torch.Tensor:
        """``Phi_m w_m``: (M, n, D) -> (M, n, N)."""
        return torch.matmul(w, self.PhiT)

    def adjoint(self, v: torch.Tensor) -> torch.Tensor:
        """``Phi_m^H v_m``: (M, n, N) -> (M, n, D)."""
        return torch.matmul(v, self.PhiC)

    def cov(self, delta: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``C_m = noise I + Phi_m diag(delta_m) Phi_m^H``.

        Parameters
        ----------
        delta : (M, n, D) float >= 0
        noise : (n,) float > 0

        Returns
        -------
        (M, n, N, N) complex
        """
        n, N = delta.shape[1], self.N
        if self.ula:
            t = torch.matmul(delta.to(self.dtype), self.E)  # (M, n, N): t[k], k >= 0
            # C[p, q] = r[N - 1 - p + q] with r = [t[N-1], .., t[0], conj t[1], .., conj t[N-1]]
            r = torch.cat([t.flip(-1), t[..., 1:].conj()], dim=-1)
            C = r.unfold(-1, N, 1).flip(-2)
        else:
            C = torch.matmul(self.Phi[:, None] * delta[:, :, None, :].to(self.dtype), self.PhiH[:, None])
        C.diagonal(dim1=-2, dim2=-1).add_(noise.reshape(1, n, 1).to(C.real.dtype))
        return C

    def quad(self, G: torch.Tensor) -> torch.Tensor:
        """``q_d = Re phi_d^H G phi_d`` for Hermitian ``G`` (M, n, N, N) -> (M, n, D)."""
        if self.ula:
            M, n, N = G.shape[0], G.shape[1], self.N
            flat = G.reshape(M, n, N * N)[..., self.low_flat]
            g = torch.zeros(M, n, N, dtype=self.dtype).index_add_(2, self.low_lag, flat)
            return torch.matmul(g, self.EqT).real
        return (self.PhiC[:, None] * torch.matmul(G, self.Phi[:, None])).sum(dim=-2).real


class Ridge(NamedTuple):
    """Output of :func:`ridge` (layout (M, n, ...)).

    mu : (M, n, D) complex, the ridge solution / posterior mean.
    q : (M, n, D) float or None, ``phi_d^H C^{-1} phi_d``.
    logdet : (M, n) float, ``log det C_m``.
    """

    mu: torch.Tensor
    q: torch.Tensor | None
    logdet: torch.Tensor


def ridge(gram: Gram, y: torch.Tensor, delta: torch.Tensor, noise: torch.Tensor, need_q: bool) -> Ridge:
    """Solve the weighted ridge problems (see the module notes), batched.

    Parameters
    ----------
    gram : Gram
    y : (M, n, N) complex
    delta : (M, n, D) float >= 0
        Prior variances / inverse weights.
    noise : (n,) float > 0
        ``sigma^2``.
    need_q : bool
        Also return the diagonal quadratic forms ``q``.

    Returns
    -------
    Ridge
    """
    C = gram.cov(delta, noise)
    L, info = torch.linalg.cholesky_ex(C)
    if bool((info != 0).any()):  # numerically semidefinite: add a relative jitter and retry
        jitter = 1e-10 * C.diagonal(dim1=-2, dim2=-1).real.mean(dim=-1)[..., None, None]
        L, info = torch.linalg.cholesky_ex(C + jitter * torch.eye(C.shape[-1], dtype=C.dtype))
        if bool((info != 0).any()) or not bool(torch.isfinite(L).all()):
            raise ValueError(
                "y: the weighted covariance noise I + Phi diag(delta) Phi^H is not numerically positive "
                f"definite in {gram.dtype} (noise power {float(noise.min()):.3g} to {float(noise.max()):.3g} "
                "relative to the data); the data are far outside the range of the noise model, or use "
                "dtype='float64'"
            )
    Ciy = torch.cholesky_solve(y[..., None], L)[..., 0]
    mu = delta.to(gram.dtype) * gram.adjoint(Ciy)
    q = gram.quad(torch.cholesky_inverse(L)) if need_q else None
    logdet = 2.0 * torch.log(L.diagonal(dim1=-2, dim2=-1).real).sum(dim=-1)
    return Ridge(mu, q, logdet)


@lru_cache(maxsize=4)
def ula_gram(scenario, dtype: torch.dtype = torch.complex128) -> Gram:  # noqa: ANN001 - Scenario
    """:class:`Gram` of ``Phi_m = [A_m, B_m]`` for a scenario, with the ULA shortcut (cached)."""
    A, B = _common.dictionaries(scenario)
    if scenario.geometry == "3d":
        uA = scenario.los_sines(_common.grid(scenario)).T  # (M, K), the height-aware columns of A
    else:
        uA = np.sin(scenario.los_angles(_common.grid(scenario))).T  # (M, K)
    uB = np.broadcast_to(np.sin(scenario.angles), (scenario.n_bs, scenario.n_angles))
    Phi = np.concatenate([A, B], axis=2)
    return Gram(Phi, np.concatenate([uA, uB], axis=1), scenario.antenna_spacing, dtype)


def problem_gram(A: Any, B: Any, y: Any, params: Any, params_type: type) -> tuple[Gram, int, np.ndarray, Any]:
    """Checked inputs of a solver for general dictionaries (VB, MM ``solve``).

    Parameters
    ----------
    A : (M, N, K), B : (M, N, L), y : (n, M, N) or (M, N) complex
    params : instance of ``params_type`` or None
    params_type : frozen dataclass with a ``dtype`` field

    Returns
    -------
    gram : Gram of ``[A_m, B_m]`` (dense products) in ``params.dtype``
    K : int
    y : (n, M, N) complex128
    params : params_type
    """
    A, B, y, _ = check_problem(A, B, y)
    params = _common.check_params(params, params_type)
    A, B, y = (np.asarray(v.detach().cpu() if hasattr(v, "detach") else v) for v in (A, B, y))
    gram = Gram(np.concatenate([A, B], axis=2), dtype=resolve_dtype(params.dtype)[1])
    return gram, A.shape[2], np.asarray(y, dtype=np.complex128), params


def scenario_gram(scenario: Any, y: Any, params: Any, params_type: type) -> tuple[Gram, int, np.ndarray, Any]:
    """Checked inputs of a solver for a scenario (VB, MM ``solve_scenario``): as :func:`problem_gram`,
    with the scenario's cached ULA :class:`Gram` (:func:`ula_gram`) and ``K = scenario.n_grid``."""
    scenario = _common.check_scenario(scenario)
    y = _common.check_y(scenario, y)
    params = _common.check_params(params, params_type)
    return ula_gram(scenario, resolve_dtype(params.dtype)[1]), scenario.n_grid, y, params


@dataclass(frozen=True)
class GramLocalizer(MapLocalizer):
    """Map estimator of the reweighted ridge solvers (VB, MM): X (n, K, M) on the scenario's ULA
    :class:`Gram`, then the readout.

    Subclasses set ``params_type``, a field ``params`` and ``solver``, their
    ``_solve_gram(gram, K, y, params, flag)`` returning a result with ``X``.
    """

    solver: ClassVar[Callable[..., Any]]

    def _map(self, scenario: Any, y: np.ndarray) -> Any:
        gram = ula_gram(scenario, resolve_dtype(self.params.dtype)[1])
        return self.solver(gram, scenario.n_grid, y, self.params, False).X
