r"""MM: majorization-minimization for the penalised form of (3) (ref. [11], Table I).

Source.  Zheng, Liu & Lau, "Joint channel and location estimation of massive
MIMO system with phase noise", IEEE TSP 68, 2020, estimate sparse location
and channel parameters with majorization-minimization: the non-smooth or
non-convex terms of their objective are replaced at every iteration by
quadratic surrogates that touch them at the current point, so that each
iteration is a (weighted) least-squares problem with a closed form and the
objective decreases monotonically.  The paper's Table I times an MM solver
of the direct-localisation problem; it does not give its details.

This implementation.  The penalised (Lagrangian) form of (3),

.. math::

    \min_{X, Z}\ F(X, Z) = \tfrac12 \sum_m \|y_m - A_m x_m - B_m z_m\|_2^2
        + \lambda \Big(\sum_k \|[X]_{k,:}\|_2 + \sum_m w_m \|z_m\|_1\Big),

with the smoothed norms ``||v|| -> sqrt(||v||^2 + eps^2)`` (the same for ``|z|``)
majorised at the current point ``v^t`` by the quadratic
``(||v||^2 + c^2) / (2 c)``, ``c = sqrt(||v^t||^2 + eps^2)`` (the concave
square root lies below its tangent).  The surrogate separates over BSs; for
BS m it is the ridge problem

.. math::

    \min_{w_m} \tfrac12 \|y_m - \Phi_m w_m\|^2 + \tfrac{\lambda}{2} w_m^H \mathrm{diag}(1/c_m) w_m,
    \quad w_m = \Delta_m \Phi_m^H (I + \Phi_m \Delta_m \Phi_m^H)^{-1} y_m,\ \Delta_m = \mathrm{diag}(c_m)/\lambda

(``Phi_m = [A_m, B_m]``, ``c`` of a ``z`` entry divided by ``w_m``), solved
through the N x N Woodbury system with the ULA Toeplitz shortcut of
:mod:`daun_lib.baselines._gram`: iteratively reweighted least squares.
``eps`` starts at ``eps0`` times the RMS of ``y`` and is divided by
``eps_decay`` every iteration down to ``eps_min`` times the RMS; since the smoothed
objective grows with ``eps``, the sequence ``F_eps_t`` still decreases
monotonically, and the iterates approach the minimiser of the exact
penalised problem (a test compares with cvxpy).

* ``lambda = lam * noise_std``: with unit-norm columns ``|a^H n|`` has the noise
  scale, so ``lam`` is in units of the noise standard deviation (the paper's
  unit noise power: ``noise_std = 1``).  The default ``lam`` was tuned on a
  separate seed (``benchmarks/bench_methods.py --tune``).
* Readout as DAUN's: ``argmax_k ||[X]_{k,:}||_2`` (:func:`daun_lib.refine.argmax_rows`).
* Scale: the problem is positively homogeneous in ``(y, lambda)``; every
  sample is multiplied by the power of two that puts its largest entry in
  [0.5, 1) (exact in floating point, so it changes no bit of the result) and
  ``lambda`` with it, so that data at any scale neither overflow nor
  underflow the float32 algebra.  ``lambda`` is kept at least
  ``LAM_FLOOR`` times the RMS of the sample (active only above ~130 dB SNR,
  where the float32 covariance would otherwise be singular).  Samples far
  below the noise power ``noise_std^2`` are rejected
  (:func:`daun_lib.baselines._common.check_noise_floor`): MM's penalty is set
  in noise units, so it is not invariant to the scale of ``y`` alone.
* Deviation: the penalised rather than the equality-constrained form of (3)
  (an MM for (3) itself would need the limit ``lambda -> 0``, i.e. it would fit
  the noise exactly); a fixed iteration count for batching.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch

from .._validation import as_array, nonnegative, positive
from ..admm import check_problem, resolve_dtype
from ..scenario import Scenario
from . import _common, _gram

__all__ = [
    "MMParams",
    "MMResult",
    "MMLocalizer",
    "localize",
    "solve",
    "solve_scenario",
    "penalised_objective",
    "LAM_FLOOR",
]

#: Smallest ``lambda`` relative to a sample's RMS (see the module notes).
LAM_FLOOR = 1e-6


@dataclass(frozen=True)
class MMParams:
    """Settings of :func:`solve` / :func:`localize`.

    Attributes
    ----------
    lam : float
        Penalty in units of the noise standard deviation (default 4.0, about
        the universal threshold of a row: ``max_k ||A_k^H n||`` over K = 900
        rows of M = 4 noise correlations is ~ 3.9 sigma).  A larger lam
        zeroes the LoS rows at low SNR and leaves only the smoothing's
        correlation-like readout, so it is not preferred; the tuning runs are
        in ``docs/design.md`` (``benchmarks/bench_methods.py --tune``).
    noise_std : float
        Noise standard deviation per antenna (the paper's unit noise, 1.0).
    w : float
        NLoS weight w_m of (3), the same for every BS (default 1.0, as P-ADMM).
    iterations : int
        MM iterations (default 30).
    eps0, eps_decay, eps_min : float
        Smoothing schedule, relative to the RMS of ``y`` (defaults 1, 2, 1e-6).
    dtype : "float32" or "float64"
        Working precision (default "float32").
    chunk : int
        Samples processed at once (default 256).
    """

    lam: float = 4.0
    noise_std: float = 1.0
    w: float = 1.0
    iterations: int = 30
    eps0: float = 1.0
    eps_decay: float = 2.0
    eps_min: float = 1e-6
    dtype: str = "float32"
    chunk: int = 256

    def __post_init__(self) -> None:
        for name in ("lam", "noise_std", "w", "eps0", "eps_min"):
            positive(getattr(self, name), name)
        positive(self.iterations, "iterations", integer=True)
        positive(self.chunk, "chunk", integer=True)
        if not isinstance(self.eps_decay, (int, float)) or not self.eps_decay >= 1.0:
            raise ValueError(f"eps_decay: expected a number >= 1, got {self.eps_decay!r}")
        resolve_dtype(self.dtype)


class MMResult(NamedTuple):
    """Output of :func:`solve`.

    X : (n, K, M) complex
    Z : (n, L, M) complex
    objective : (iterations + 1, n) float, the smoothed objective ``F_eps`` of
        the iterate after each iteration (row 0: the initial point), or None.
    """

    X: np.ndarray
    Z: np.ndarray
    objective: np.ndarray | None


def penalised_objective(A: Any, B: Any, y: Any, X: Any, Z: Any, lam: float, w: Any = 1.0) -> np.ndarray:
    """``F(X, Z)`` of the module notes (no smoothing).

    Parameters
    ----------
    A : (M, N, K), B : (M, N, L), y : (n, M, N)
    X : (n, K, M), Z : (n, L, M)
        Finite; (K, M) and (L, M) when ``n = 1``.  Another shape raises ``ValueError`` naming ``X`` or ``Z``.
    lam : float >= 0
        The penalty ``lambda`` itself (not in noise units); negative or not finite raises ``ValueError`` naming ``lam``.
    w : float or (M,)

    Returns
    -------
    (n,) float
    """
    lam = nonnegative(lam, "lam")
    A, B, y, w_arr = check_problem(A, B, y, w)
    A, B, y = (np.asarray(v) for v in (A, B, y))
    X = _check_gains(X, "X", (y.shape[0], A.shape[2], A.shape[0]), "(n, K, M)")
    Z = _check_gains(Z, "Z", (y.shape[0], B.shape[2], B.shape[0]), "(n, L, M)")
    r = y - np.einsum("mnk,bkm->bmn", A, X) - np.einsum("mnl,blm->bmn", B, Z)
    fit = 0.5 * np.sum(np.abs(r) ** 2, axis=(1, 2))
    return fit + lam * (np.linalg.norm(X, axis=2).sum(axis=1) + (np.abs(Z) * w_arr).sum(axis=(1, 2)))


def _check_gains(v: Any, name: str, shape: tuple[int, int, int], what: str) -> np.ndarray:
    """``v`` as a finite ``shape`` array ((K, M) accepted for one sample), else ``ValueError`` naming ``name``."""
    arr = np.asarray(as_array(v, name, (2, 3)))
    if arr.ndim == 2 and shape[0] == 1:
        arr = arr[None]
    if arr.shape != shape:
        raise ValueError(
            f"{name}: expected shape {what} = {shape} (n from y, K or L and M from the dictionaries), got {arr.shape}"
        )
    return arr


def _run(gram: _gram.Gram, K: int, y: torch.Tensor, lam: torch.Tensor, w: float, p: MMParams, track: bool) -> tuple:
    """MM iterations for one chunk, ``y`` (M, n, N); ``lam`` (n,) in the units of ``y``."""
    M, n, N = y.shape
    D = gram.D
    rd = gram.rdtype
    f64 = torch.float64
    rms = torch.sqrt((y.real.square() + y.imag.square()).to(f64).mean(dim=(0, 2)))  # (n,)
    rms = torch.where(rms > 0, rms, torch.ones_like(rms))
    lam = lam.to(f64)
    ones = torch.ones(n, dtype=rd)
    # initial point: the ridge solution with unit weights (Delta = I)
    mu = _gram.ridge(gram, y, torch.ones(M, n, D, dtype=rd), ones, need_q=False).mu
    eps = p.eps0 * rms
    objective = []

    def smoothed(mu: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        res = y - gram.forward(mu)
        fit = 0.5 * (res.real.square() + res.imag.square()).to(f64).sum(dim=(0, 2))
        m2 = (mu.real.square() + mu.imag.square()).to(f64)
        e2 = eps.square()[:, None]
        rows = torch.sqrt(m2[:, :, :K].sum(dim=0) + e2).sum(dim=1)
        zs = (w * torch.sqrt(m2[:, :, K:] + e2[None])).sum(dim=(0, 2))
        return fit + lam * (rows + zs)

    for _ in range(p.iterations):
        if track:
            objective.append(smoothed(mu, eps))
        eps = torch.maximum(eps / p.eps_decay, p.eps_min * rms)
        m2 = (mu.real.square() + mu.imag.square()).to(f64)
        c_x = torch.sqrt(m2[:, :, :K].sum(dim=0) + eps.square()[:, None])  # (n, K), shared by the BSs
        c_z = torch.sqrt(m2[:, :, K:] + eps.square()[None, :, None]) / w  # (M, n, L)
        delta = torch.cat([c_x.expand(M, n, K), c_z], dim=2) / lam[None, :, None]
        mu = _gram.ridge(gram, y, delta.to(rd), ones, need_q=False).mu
    if track:
        objective.append(smoothed(mu, eps))
    return mu, (torch.stack(objective) if track else None)


def _solve_gram(gram: _gram.Gram, K: int, y: np.ndarray, p: MMParams, track: bool) -> MMResult:
    n, M, N = y.shape
    X = np.empty((n, K, M), dtype=np.complex128)
    Z = np.empty((n, gram.D - K, M), dtype=np.complex128)
    obj = np.empty((p.iterations + 1, n)) if track else None
    _common.check_noise_floor(y, p.noise_std**2, "MMParams.noise_std^2")
    # exact power-of-two scaling per sample: largest |Re|, |Im| in [0.5, 1)
    _, e = np.frexp(np.maximum(np.abs(y.real), np.abs(y.imag)).max(axis=(1, 2)))
    y = np.ldexp(y.real, -e[:, None, None]) + 1j * np.ldexp(y.imag, -e[:, None, None])
    lam_all = np.ldexp(np.full(n, p.lam * p.noise_std), -e)
    rms = np.sqrt(np.mean(np.abs(y) ** 2, axis=(1, 2)))
    lam_all = np.maximum(lam_all, LAM_FLOOR * rms)
    with torch.inference_mode():
        for s in range(0, n, p.chunk):
            sl = slice(s, s + p.chunk)
            yt = torch.as_tensor(y[sl]).permute(1, 0, 2).to(gram.dtype).contiguous()
            lam = torch.as_tensor(lam_all[sl], dtype=torch.float64)
            mu, ob = _run(gram, K, yt, lam, p.w, p, track)
            mu = mu.permute(1, 2, 0).to(torch.complex128).numpy()
            mu = np.ldexp(mu.real, e[sl, None, None]) + 1j * np.ldexp(mu.imag, e[sl, None, None])
            X[sl], Z[sl] = mu[:, :K], mu[:, K:]
            if track:
                obj[:, sl] = np.ldexp(ob.numpy(), 2 * e[sl])
    return MMResult(X, Z, obj)


def solve(A: Any, B: Any, y: Any, params: MMParams | None = None, *, track: bool = False) -> MMResult:
    """MM (IRLS) for the penalised form of (3), general dictionaries.

    Parameters
    ----------
    A : (M, N, K) complex
    B : (M, N, L) complex
    y : (n, M, N) or (M, N) complex
    params : MMParams, optional
        ``lambda = params.lam * params.noise_std``.
    track : bool
        Also return the smoothed objective per iteration.

    Returns
    -------
    MMResult
    """
    return _solve_gram(*_gram.problem_gram(A, B, y, params, MMParams), track)


def solve_scenario(scenario: Scenario, y: Any, params: MMParams | None = None, *, track: bool = False) -> MMResult:
    """:func:`solve` with the scenario's dictionaries and the exact ULA shortcut."""
    return _solve_gram(*_gram.scenario_gram(scenario, y, params, MMParams), track)


@dataclass(frozen=True)
class MMLocalizer(_gram.GramLocalizer):
    """MM map estimator: the MM iterate X (n, K, M) of :func:`solve_scenario`, then ``readout`` (default "argmax")."""

    params: MMParams | None = None
    params_type: ClassVar[type] = MMParams
    map_scale_invariant: ClassVar[bool] = False  # in units of the noise power
    solver: ClassVar[Callable] = staticmethod(_solve_gram)


def localize(scenario: Scenario, y: Any, params: MMParams | None = None) -> np.ndarray:
    """``MMLocalizer(params=params)(scenario, y)``: grid positions (n, 2), plain argmax readout."""
    return MMLocalizer(params=params)(scenario, y)
