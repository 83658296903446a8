r"""P-ADMM: the linearised ADMM of Sec. III-A for problem (3).

Problem (3), for one sample::

    min_{X, z}  ||X||_{2,1} + sum_m w_m ||z_m||_1   s.t.  y_m = A_m x_m + B_m z_m,  m = 1..M

One iteration (5)-(7), with the quadratic terms linearised as in (9) and (15)::

    g1  = A^H (A x + B z - y + s / rho)                       (9)
    C   = X - tau1 * g1,     X <- rowshrink(C, tau1 / rho)     (11)-(12)
    g2  = B^H (A x_new + B z - y + s / rho)                    (15)
    d   = z - tau2 * g2,     z <- softshrink(d, tau2 w_m / rho) (16)-(17)
    s  <- s + rho (A x_new + B z_new - y)                      (7)

``rowshrink`` is the group soft threshold of each row of X (K x M), (12);
``softshrink`` is the complex soft threshold, which shrinks the modulus and
keeps the phase (the complex form of (17)).  The products ``A x`` and ``B z``
are kept between steps, so an iteration costs two products with ``A`` and two
with ``B``.

Scaling.  The dictionaries have unit-norm columns (see
:mod:`daun_lib.scenario`).  The linearisation is a majoriser, and the iteration
converges, for ``tau1 < 1 / ||A||_2^2`` and ``tau2 < 1 / ||B||_2^2``
(spectral norms, max over BSs).  With ``normalize=True`` (default) each sample
is divided by its RMS value ``c = ||y|| / sqrt(M N)`` before the iterations and
the estimates are multiplied back: problem (3) is positively homogeneous, so
the optimum is unchanged, and the iteration equals the un-normalised one with a
per-sample ``rho / c``.  This makes one parameter setting (and the learned
parameters of DAUN) valid at every SNR.  The normalisation is scale-free over
the whole float range: each sample is first multiplied by a power of two (an
exact operation) that brings its largest entry into [0.5, 1), in its own
precision, and only then converted to the working precision and divided by its
RMS, so ``c * y`` gives the same estimates (times ``c``) as ``y`` for any ``c``
whose product stays in range (y x 1e30 no longer overflows float32 and y x 1e-30
no longer underflows).  An all-zero sample has no information and is rejected.

Robustness.  :func:`solve` checks its step parameters up front: ``rho`` must lie
in ``[RHO_MIN, RHO_MAX]``, ``tau1`` and ``tau2`` be finite and positive, and a
step above its convergence bound gives a :class:`UserWarning` (the bound is
sufficient, not necessary, so the run goes on).  All inference iterations
(also DAUN's) check the iterate for NaN/inf every ``FINITE_CHECK_EVERY``
iterations and at the end, and raise :class:`DivergenceError` (a
``ValueError``) instead of returning a non-finite estimate.

The iteration itself lives in :mod:`daun_lib._admm_kernels` and is re-exported
here: :func:`admm_layer` (torch, differentiable) is shared by :func:`solve` and
:class:`daun_lib.daun.DAUN`, so the unfolded network is exactly this algorithm
with per-layer parameters.  Two inference-only implementations of the same
updates, tested equal to :func:`admm_layer`, do the work when no gradient is
needed (:func:`iterate` picks one): :func:`run_inference` (real block products,
in place; batches) and :func:`run_small_batch_numpy` (numpy; a handful of
samples on CPU).  This module adds the setting (:class:`ADMMParams`,
:func:`default_params`), the input checks, the per-sample normalisation
(:func:`prepare_y`) and the solver :func:`solve`.  ``__all__`` lists the
public names: the user API first, then the building blocks of DAUN.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from ._admm_kernels import (
    FINITE_CHECK_EVERY,
    RHO_MAX,
    RHO_MIN,
    SMALL_BATCH,
    TINY,
    BlockOperators,
    DivergenceError,
    InferenceResult,
    Operators,
    State,
    admm_layer,
    block_operators,
    init_state,
    iterate,
    make_operators,
    real_block,
    row_shrink,
    run_inference,
    run_small_batch_numpy,
    soft_shrink,
    to_tensor,
)
from ._devices import check_device
from ._validation import as_array, is_tensor, positive, reject_zero_samples, signals, weights
from .operators import is_operator, max_spectral_norm_sq

__all__ = [
    # the solver and its setting: what a user of P-ADMM needs
    "ADMMParams",
    "ADMMResult",
    "DEFAULT_RHO",
    "DEFAULT_STEP_FRACTION",
    "DivergenceError",
    "MAX_ITERATIONS",
    "RHO_MAX",
    "RHO_MIN",
    "check_problem",
    "default_params",
    "objective",
    "resolve_dtype",
    "solve",
    # the pieces daun_lib.daun builds the unfolded network from: the data plumbing of this
    # module and the iteration of daun_lib._admm_kernels (re-exported here)
    "FINITE_CHECK_EVERY",
    "SMALL_BATCH",
    "BlockOperators",
    "InferenceResult",
    "Operators",
    "State",
    "admm_layer",
    "block_operators",
    "energy",
    "init_state",
    "iterate",
    "make_operators",
    "prepare_y",
    "real_block",
    "row_shrink",
    "run_inference",
    "run_small_batch_numpy",
    "soft_shrink",
    "unpack",
    "unpack_xz",
]

#: Largest iteration count :func:`solve` accepts (the per-iteration residual
#: history is stored; 1e6 iterations of a 256-sample batch take 1 GB).
MAX_ITERATIONS = 1_000_000


# ---------------------------------------------------------------------------
# parameters and results
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ADMMParams:
    """A P-ADMM setting in this package's units (unit-norm dictionary columns).

    Attributes
    ----------
    rho : float
        Penalty parameter of (4).
    tau1, tau2 : float
        Proximal (step) parameters of (9) and (15).
    w : tuple of float, length M
        Weights w_m of the NLoS l1 terms in (3).
    """

    rho: float
    tau1: float
    tau2: float
    w: tuple[float, ...]

    def as_kwargs(self) -> dict[str, Any]:
        """The setting as keyword arguments of :func:`solve` (a new dict)."""
        return {"rho": self.rho, "tau1": self.tau1, "tau2": self.tau2, "w": self.w}

    # ``solve(A, B, y, iterations=..., **params)``: ``**`` needs ``keys()`` and ``__getitem__``.
    def keys(self) -> tuple[str, ...]:
        """The names of :func:`solve`'s keyword arguments that this setting supplies."""
        return ("rho", "tau1", "tau2", "w")

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)


class ADMMResult(NamedTuple):
    """Output of :func:`solve`.

    Attributes
    ----------
    X : (n, K, M) complex
        LoS gains; row k is the candidate position k, column m the BS.
    Z : (n, L, M) complex
        NLoS gains on the angle grid.
    nmse : (iterations,) float
        ``E||y - A x - B z||^2 / E||y||^2`` over the batch after every
        iteration (Fig. 3).
    """

    X: Any
    Z: Any
    nmse: Any


#: The documented default P-ADMM setting: steps at 99 % of the convergence bound.
DEFAULT_STEP_FRACTION = 0.99
#: Default penalty for RMS-normalised y: of the penalties tried at paper scale it
#: reached the cvxpy optimum in the fewest iterations (the study is summarised in
#: docs/design.md; tests/test_admm.py checks convergence with this default).
DEFAULT_RHO = 0.1


def _max_spectral_norm_sq(D: Any) -> float:
    """``max_m ||D_m||_2^2`` for D (M, N, P) or an operator (:meth:`norm_sq`: O(N P) for a structured one)."""
    return D.norm_sq() if is_operator(D) else max_spectral_norm_sq(D)


def default_params(A: Any, B: Any, *, w: float = 1.0) -> ADMMParams:
    """The package's default P-ADMM setting for dictionaries ``A`` and ``B``.

    ``tau1 = 0.99 / max_m ||A_m||_2^2``, ``tau2 = 0.99 / max_m ||B_m||_2^2``
    (the convergence bound of the linearised steps), ``rho = 0.1`` (for
    RMS-normalised ``y``, the fastest of 0.03-10 to reach the cvxpy optimum) and ``w_m = w``.  This is this package's counterpart
    of the paper's ``tau1 = tau2 = 0.5, rho = 5``, whose dictionary scaling the
    paper does not state.

    Parameters
    ----------
    A : (M, N, K) complex, or a :mod:`daun_lib.operators` operator
    B : (M, N, L) complex, or an operator (a structured one's norm: its Toeplitz Gram, O(N P))
    w : float
        Common NLoS weight w_m.

    Returns
    -------
    ADMMParams
    """
    A_, B_ = _check_dictionaries(A, B)
    positive(w, "w")
    a, b = (D if is_operator(D) else np.asarray(D.detach().cpu() if is_tensor(D) else D) for D in (A_, B_))
    na = _max_spectral_norm_sq(a)
    nb = _max_spectral_norm_sq(b)
    if na == 0.0 or nb == 0.0:
        raise ValueError("A, B: dictionaries must not be all zero")
    return ADMMParams(
        rho=DEFAULT_RHO,
        tau1=DEFAULT_STEP_FRACTION / na,
        tau2=DEFAULT_STEP_FRACTION / nb,
        w=tuple([float(w)] * a.shape[0]),
    )


# ---------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------
def _check_dictionaries(A: Any, B: Any) -> tuple[Any, Any]:
    A, B = (D if is_operator(D) else as_array(D, name, 3) for D, name in ((A, "A"), (B, "B")))
    if A.shape[0] != B.shape[0] or A.shape[1] != B.shape[1]:
        raise ValueError(
            f"A, B: expected A (M, N, K) and B (M, N, L) with the same M and N, "
            f"got A {tuple(A.shape)} and B {tuple(B.shape)}"
        )
    if min(A.shape) < 1 or min(B.shape) < 1:
        raise ValueError(f"A, B: empty dictionary, got A {tuple(A.shape)} and B {tuple(B.shape)}")
    return A, B


def check_problem(A: Any, B: Any, y: Any, w: Any | None = None) -> tuple[Any, Any, Any, np.ndarray | None]:
    """Validate the data of problem (3): shapes, finiteness, weights.

    Parameters
    ----------
    A : (M, N, K), B : (M, N, L), y : (n, M, N) or (M, N), w : (M,) or scalar

    Returns
    -------
    A, B, y (with a leading batch axis), w as (M,) float array (or None).
    """
    A, B = _check_dictionaries(A, B)
    M, N = A.shape[0], A.shape[1]
    y = signals(y, M, N, expected=" to match A (M, N, K)")
    w_arr = None if w is None else weights(w, M)
    return A, B, y, w_arr


def resolve_dtype(dtype: Any) -> tuple[torch.dtype, torch.dtype]:
    """Map ``"float32"``/``"float64"`` (or torch/numpy dtypes) to (real, complex) torch dtypes."""
    key = str(dtype).replace("torch.", "")
    if key in ("float32", "complex64"):
        return torch.float32, torch.complex64
    if key in ("float64", "complex128"):
        return torch.float64, torch.complex128
    raise ValueError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")


def prepare_y(y: Any, cdtype: torch.dtype, device: Any, normalize: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, M, N) input -> batch-last (M, N, n) tensor and per-sample scales (n,).

    With ``normalize`` the samples are divided by their RMS value; otherwise
    the scales are ones.  The normalisation is exact over the whole float range
    of the input: each sample is first multiplied, in the input's precision, by
    the power of two ``2^-e`` that puts its largest real or imaginary part in
    [0.5, 1) (an exact operation), then converted to ``cdtype`` and divided by
    its RMS; the returned scale is that RMS times ``2^e``.  For inputs that
    need no rescaling this is bit for bit the plain RMS division.

    Raises
    ------
    ValueError
        When a sample is all zero (it carries no information), or when ``y``
        or its scale does not fit the working precision.
    """
    if device is not None:
        device = check_device(device)
    yt = to_tensor(y)
    if not yt.is_complex():
        yt = yt.to(torch.complex128 if yt.dtype == torch.float64 else cdtype)
    if device is not None:
        yt = yt.to(device=device)
    n, M, N = yt.shape
    absmax = torch.maximum(yt.real.abs().amax(dim=(1, 2)), yt.imag.abs().amax(dim=(1, 2)))
    reject_zero_samples(torch.nonzero(absmax == 0).flatten().tolist())
    rdtype = torch.float32 if cdtype == torch.complex64 else torch.float64
    if normalize:
        _, e = torch.frexp(absmax)  # absmax = mant * 2^e, mant in [0.5, 1)
        e = e.to(torch.int32)
        yt = torch.ldexp(yt, (-e).to(yt.real.dtype).reshape(n, 1, 1)) if bool((e != 0).any()) else yt
        yt = yt.to(dtype=cdtype)
        rms = torch.sqrt((yt.real.square() + yt.imag.square()).sum(dim=(1, 2)) / (M * N))
        scale = torch.ldexp(rms, e.to(rms.dtype))
        if not bool(torch.isfinite(scale).all()) or not bool((scale > torch.finfo(rdtype).tiny).all()):
            raise ValueError(
                f"y: a sample's RMS ({float(absmax.max()):.3g} at most) does not fit {rdtype} "
                f"estimates; use dtype='float64'"
            )
    else:
        yt = yt.to(dtype=cdtype)
        if not bool(torch.isfinite(yt).all()):
            raise ValueError(
                f"y: values exceed the range of {cdtype} (largest {float(absmax.max()):.3g}); "
                f"use normalize=True or dtype='float64'"
            )
        scale = torch.ones(n, dtype=rdtype, device=yt.device)
    yt = (yt / scale.reshape(n, 1, 1) if not normalize else yt / rms.reshape(n, 1, 1)).permute(1, 2, 0).contiguous()
    return yt, scale


def energy(v: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``sum_b ||v_b||^2`` in the original scale: v (M, N, n) batch-last, scale (n,)."""
    return ((v.real.square() + v.imag.square()).sum(dim=(0, 1)) * scale.square()).sum()


def unpack(st: State, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Internal iterate -> ``X`` (n, K, M) and ``Z`` (n, L, M) in the original scale."""
    return unpack_xz(st.x, st.z, scale)


def unpack_xz(x: torch.Tensor, z: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch-last ``x`` (M, K, n), ``z`` (M, L, n) -> ``X`` (n, K, M), ``Z`` (n, L, M) in the original scale."""
    sc = scale.reshape(1, 1, -1)
    return (x * sc).permute(2, 1, 0), (z * sc).permute(2, 1, 0)


# ---------------------------------------------------------------------------
# public solver
# ---------------------------------------------------------------------------
def solve(
    A: Any,
    B: Any,
    y: Any,
    rho: float,
    tau1: float,
    tau2: float,
    w: Any,
    iterations: int,
    *,
    dtype: str = "float32",
    normalize: bool = True,
    device: Any = None,
) -> ADMMResult:
    """Run P-ADMM, (5)-(17), on a batch of samples.

    Parameters
    ----------
    A : (M, N, K) complex, numpy array or tensor, or a :mod:`daun_lib.operators` operator
        LoS dictionaries, ``A[m]`` is ``A_m`` (e.g. ``Scenario.operators()``: FFT-based products).
    B : (M, N, L) complex, or an operator
        NLoS dictionaries.
    y : (n, M, N) or (M, N) complex
        Received signals, of the geometry ``A`` and ``B`` model: signals of another geometry of the same
        shape cannot be told and give a wrong map (a model-fit diagnostic is planned, issue 22).
    rho, tau1, tau2 : float > 0
        Penalty and proximal parameters.  See :func:`default_params`.
        ``rho`` must lie in [``RHO_MIN``, ``RHO_MAX``] = [1e-12, 1e12].
        A step above its convergence bound (``tau1 >= 1 / max_m ||A_m||_2^2``,
        ``tau2 >= 1 / max_m ||B_m||_2^2``) gives a :class:`UserWarning`
        and the run goes on (the bound is sufficient, not necessary); if the
        iterate then diverges, :class:`DivergenceError` is raised.
    w : float or (M,) float > 0
        NLoS weights w_m of (3).
    iterations : int, 1 <= iterations <= ``MAX_ITERATIONS``
    dtype : "float32" (default) or "float64"
        Working precision (complex64 / complex128).
    normalize : bool
        Divide each sample by its RMS before iterating (see module docs).
    device : torch device, optional
        Where to compute (e.g. "cuda").  Default: CPU.

    Returns
    -------
    ADMMResult
        ``X`` (n, K, M), ``Z`` (n, L, M) and ``nmse`` (iterations,), numpy
        arrays when ``y`` is a numpy array, tensors when it is a tensor.

    Raises
    ------
    ValueError
        For invalid arguments (naming the argument), an all-zero sample of ``y``
        or a ``device`` this machine does not have.
    DivergenceError
        (a ``ValueError``) when the iterate becomes NaN or inf.
    """
    if w is None:
        raise ValueError("w: expected a scalar or a length-M vector of positive weights, got None")
    if not isinstance(normalize, (bool, np.bool_)):
        raise ValueError(f"normalize: expected True or False, got {normalize!r}")
    A, B, y_arr, w_arr = check_problem(A, B, y, w)
    rho = positive(rho, "rho")
    if not RHO_MIN <= rho <= RHO_MAX:
        raise ValueError(f"rho: expected a penalty in [{RHO_MIN:g}, {RHO_MAX:g}], got {rho!r}")
    tau1 = positive(tau1, "tau1")
    tau2 = positive(tau2, "tau2")
    iterations = positive(iterations, "iterations", integer=True)
    if iterations > MAX_ITERATIONS:
        raise ValueError(f"iterations: expected at most MAX_ITERATIONS = {MAX_ITERATIONS}, got {iterations}")
    _, cdtype = resolve_dtype(dtype)
    device = check_device(device) if device is not None else None
    bounds = _step_bounds(A, B)
    for name, tau, bound in (("tau1", tau1, bounds[0]), ("tau2", tau2, bounds[1])):
        if tau >= bound:
            warnings.warn(
                f"{name}={tau:g} is not below the convergence bound {bound:.4g} of the linearised step "
                f"(1/max_m ||{'A' if name == 'tau1' else 'B'}_m||_2^2); P-ADMM may diverge",
                UserWarning,
                stacklevel=2,
            )
    ops = make_operators(A, B, cdtype, device)
    want_tensor = is_tensor(y)
    with torch.inference_mode():
        yt, scale = prepare_y(y_arr, cdtype, ops.A.device, normalize)
        try:
            out = iterate(
                ops, yt, [rho] * iterations, [tau1] * iterations, [tau2] * iterations, w_arr, track_residual=True
            )
        except DivergenceError as exc:
            raise DivergenceError(
                f"{exc}; here 1/max_m ||A_m||^2 = {bounds[0]:.4g}, 1/max_m ||B_m||^2 = {bounds[1]:.4g}"
            ) from None
        # the ratio only needs relative scales: dividing them by a power of two (exact) keeps their
        # squares in range at any scale of y
        rel = torch.ldexp(scale, -torch.frexp(scale.max())[1].to(scale.dtype))
        nmse = (out.residual * rel.square()).sum(dim=1) / energy(yt, rel).clamp_min(TINY)
        X, Z = unpack_xz(out.x, out.z, scale)
        X, Z = X.contiguous(), Z.contiguous()
    if want_tensor:
        return ADMMResult(X.clone(), Z.clone(), nmse.clone())
    return ADMMResult(X.cpu().numpy(), Z.cpu().numpy(), nmse.cpu().numpy())


def _step_bounds(A: Any, B: Any) -> tuple[float, float]:
    """``(1 / max_m ||A_m||_2^2, 1 / max_m ||B_m||_2^2)``: the convergence bounds of tau1 and tau2."""
    out = []
    for D in (A, B):
        na = _max_spectral_norm_sq(D if is_operator(D) else np.asarray(D.detach().cpu() if is_tensor(D) else D))
        out.append(math.inf if na == 0.0 else 1.0 / na)
    return out[0], out[1]


def objective(X: np.ndarray, Z: np.ndarray, w: Any) -> np.ndarray:
    """Objective of (3): ``||X||_{2,1} + sum_m w_m ||z_m||_1``.

    Parameters
    ----------
    X : (n, K, M) or (K, M) complex
    Z : (n, L, M) or (L, M) complex
    w : float or (M,) float, finite and >= 0

    Returns
    -------
    (n,) float, or a float for unbatched input.
    """
    X = np.asarray(as_array(X, "X", (2, 3)))
    Z = np.asarray(as_array(Z, "Z", (2, 3)))
    if X.ndim != Z.ndim or X.shape[-1] != Z.shape[-1] or X.shape[:-2] != Z.shape[:-2]:
        raise ValueError(f"X, Z: expected (n, K, M) and (n, L, M) with the same n and M, got {X.shape} and {Z.shape}")
    w = np.asarray(w, dtype=float)
    if w.ndim == 0:
        w = np.full(X.shape[-1], float(w))
    if w.shape != (X.shape[-1],) or not np.isfinite(w).all() or (w < 0).any():
        raise ValueError(f"w: expected a finite scalar or length-{X.shape[-1]} vector >= 0, got {w!r}")
    val = np.linalg.norm(X, axis=-1).sum(axis=-1) + (np.abs(Z) * w).sum(axis=(-2, -1))
    return val
