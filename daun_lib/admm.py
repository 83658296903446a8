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

The iteration itself (:func:`admm_layer`) is written in torch and shared by
:func:`solve` and :class:`daun_lib.daun.DAUN`, so the unfolded network is
exactly this algorithm with per-layer parameters.  Two inference-only
implementations of the same updates, tested equal to :func:`admm_layer`, do
the work when no gradient is needed (:func:`iterate` picks one):
:func:`run_inference` (real block products, in place; batches) and
:func:`run_small_batch_numpy` (numpy; a handful of samples on CPU).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import math
import warnings

import numpy as np
import torch

from ._devices import check_device
from ._validation import as_array, is_tensor, positive

_TINY = 1e-30

#: Accepted range of the penalty ``rho`` (of :func:`solve` and of the per-iteration
#: lists of :func:`run_inference`): outside it ``s / rho`` or ``tau / rho`` leave
#: the float range or every estimate is shrunk to zero within any practical
#: iteration count.
RHO_MIN, RHO_MAX = 1e-12, 1e12
#: Largest iteration count :func:`solve` accepts (the per-iteration residual
#: history is stored; 1e6 iterations of a 256-sample batch take 1 GB).
MAX_ITERATIONS = 1_000_000
#: The inference iterations test the iterate for NaN/inf this often (and after the last one).
FINITE_CHECK_EVERY = 25


class DivergenceError(ValueError):
    """The ADMM iterate became NaN or inf (steps above the convergence bound, or values out of range)."""


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
        """The setting as keyword arguments of :func:`solve`."""
        return {"rho": self.rho, "tau1": self.tau1, "tau2": self.tau2, "w": self.w}


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
#: Default penalty for RMS-normalised y.  Measured on five paper-scale instances
#: (0 to 20 dB, LoS and LoS + NLoS): iterations to a 1e-3 relative gap to the cvxpy
#: optimum were 90-670 for rho = 0.1, 200-1520 for 0.05, 370-1370 for 0.2 and
#: 1800-6950 for 1 (tests/test_admm.py checks convergence with this default).
DEFAULT_RHO = 0.1


def _max_spectral_norm_sq(D: np.ndarray) -> float:
    """``max_m ||D_m||_2^2`` for D (M, N, P), from the N x N Gram matrices (cheaper than an SVD when N < P)."""
    gram = D @ np.conj(np.swapaxes(D, 1, 2)) if D.shape[1] <= D.shape[2] else np.conj(np.swapaxes(D, 1, 2)) @ D
    return float(np.linalg.eigvalsh(gram.astype(np.complex128)).max())


def default_params(A: Any, B: Any, *, w: float = 1.0) -> ADMMParams:
    """The package's default P-ADMM setting for dictionaries ``A`` and ``B``.

    ``tau1 = 0.99 / max_m ||A_m||_2^2``, ``tau2 = 0.99 / max_m ||B_m||_2^2``
    (the convergence bound of the linearised steps), ``rho = 0.1`` (for
    RMS-normalised ``y``, the fastest of 0.03-10 to reach the cvxpy optimum) and ``w_m = w``.  This is this package's counterpart
    of the paper's ``tau1 = tau2 = 0.5, rho = 5``, whose dictionary scaling the
    paper does not state.

    Parameters
    ----------
    A : (M, N, K) complex
    B : (M, N, L) complex
    w : float
        Common NLoS weight w_m.

    Returns
    -------
    ADMMParams
    """
    A_, B_ = _check_dictionaries(A, B)
    positive(w, "w")
    a = np.asarray(A_.detach().cpu() if is_tensor(A_) else A_)
    b = np.asarray(B_.detach().cpu() if is_tensor(B_) else B_)
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
    A = as_array(A, "A", 3)
    B = as_array(B, "B", 3)
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
    y = as_array(y, "y", (2, 3))
    if y.ndim == 2:
        y = y[None]
    M, N = A.shape[0], A.shape[1]
    if tuple(y.shape[1:]) != (M, N):
        raise ValueError(f"y: expected shape (n, {M}, {N}) to match A (M, N, K), got {tuple(y.shape)}")
    if y.shape[0] < 1:
        raise ValueError("y: expected at least one sample, got n = 0")
    w_arr = None
    if w is not None:
        try:
            w_arr = np.asarray(w.detach().cpu() if is_tensor(w) else w, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"w: expected a positive number or a length-{M} vector of positive weights, "
                             f"got {w!r}") from None
        if w_arr.ndim == 0:
            w_arr = np.full(M, float(w_arr))
        if w_arr.shape != (M,):
            raise ValueError(f"w: expected a scalar or a length-{M} vector (one weight per BS), got shape {w_arr.shape}")
        if not np.isfinite(w_arr).all() or (w_arr <= 0).any():
            raise ValueError(f"w: expected finite positive weights, got {w_arr}")
    return A, B, y, w_arr


def resolve_dtype(dtype: Any) -> tuple[torch.dtype, torch.dtype]:
    """Map ``"float32"``/``"float64"`` (or torch/numpy dtypes) to (real, complex) torch dtypes."""
    key = str(dtype).replace("torch.", "")
    if key in ("float32", "complex64"):
        return torch.float32, torch.complex64
    if key in ("float64", "complex128"):
        return torch.float64, torch.complex128
    raise ValueError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")


# ---------------------------------------------------------------------------
# the iteration (torch), shared with DAUN
# ---------------------------------------------------------------------------
class Operators(NamedTuple):
    """Dictionaries as contiguous complex tensors, with their conjugate transposes.

    A : (M, N, K), AH : (M, K, N), B : (M, N, L), BH : (M, L, N)
    """

    A: torch.Tensor
    AH: torch.Tensor
    B: torch.Tensor
    BH: torch.Tensor


def _tensor(x: Any) -> torch.Tensor:
    """``torch.as_tensor`` that copies read-only numpy arrays (torch cannot share them)."""
    if isinstance(x, np.ndarray) and not x.flags.writeable:
        x = np.array(x)
    return torch.as_tensor(x)


def make_operators(A: Any, B: Any, cdtype: torch.dtype, device: Any = None) -> Operators:
    """Build :class:`Operators` from numpy arrays or tensors (``device`` None: where ``A`` is)."""
    if device is not None:
        device = check_device(device)
    At = _tensor(A).to(device=device, dtype=cdtype).contiguous()
    Bt = _tensor(B).to(device=device, dtype=cdtype).contiguous()
    return Operators(At, At.conj().transpose(1, 2).contiguous(), Bt, Bt.conj().transpose(1, 2).contiguous())


class State(NamedTuple):
    """ADMM iterate in the internal batch-last layout.

    x : (M, K, n), z : (M, L, n), s : (M, N, n), Ax : (M, N, n), Bz : (M, N, n)
    """

    x: torch.Tensor
    z: torch.Tensor
    s: torch.Tensor
    Ax: torch.Tensor
    Bz: torch.Tensor


def init_state(ops: Operators, yt: torch.Tensor) -> State:
    """Zero initial iterate for ``yt`` (M, N, n)."""
    M, N, n = yt.shape
    K, L = ops.A.shape[2], ops.B.shape[2]
    zeros = lambda *s: torch.zeros(*s, dtype=yt.dtype, device=yt.device)  # noqa: E731
    return State(zeros(M, K, n), zeros(M, L, n), zeros(M, N, n), zeros(M, N, n), zeros(M, N, n))


def _modulus(v: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """|v| (elementwise) or the l2 norm along ``dim``, with a safe gradient at 0."""
    sq = v.real.square() + v.imag.square()
    if dim is not None:
        sq = sq.sum(dim=dim, keepdim=True)
    return torch.sqrt(sq.clamp_min(_TINY))


def row_shrink(C: torch.Tensor, lam: Any) -> torch.Tensor:
    """Group soft threshold (12) of every row of X.

    Parameters
    ----------
    C : (M, K, n) complex
        The point ``c`` of (11) in batch-last layout; a "row" of X is the
        length-M vector ``C[:, k, b]``.
    lam : float or 0-d tensor
        lambda1 = tau1 / rho.

    Returns
    -------
    (M, K, n) complex: ``max(||C_k|| - lam, 0) / ||C_k|| * C_k``.
    """
    norm = _modulus(C, dim=0)
    return C * torch.relu(1.0 - lam / norm)


def soft_shrink(D: torch.Tensor, lam: Any) -> torch.Tensor:
    """Complex soft threshold, the complex form of (17).

    Parameters
    ----------
    D : (M, L, n) complex
    lam : (M, 1, 1) or scalar
        lambda2 * w_m = tau2 * w_m / rho.

    Returns
    -------
    (M, L, n) complex: ``max(|D| - lam, 0) * D / |D|``.
    """
    return D * torch.relu(1.0 - lam / _modulus(D))


#: Below this batch size the products are done one BS at a time with 2-D
#: matmuls: torch's batched complex matmul is 10-20x slower per sample for a
#: handful of columns on CPU (measured: 334 us vs 4 x 18 us for one sample).
SMALL_BATCH = 16


def bmm(op: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Per-BS product ``op[m] @ v[m]``: op (M, P, Q), v (M, Q, n) -> (M, P, n)."""
    if v.shape[-1] < SMALL_BATCH and v.device.type == "cpu":
        return torch.stack([torch.mm(op[m], v[m]) for m in range(op.shape[0])])
    return torch.matmul(op, v)


def admm_layer(ops: Operators, yt: torch.Tensor, st: State, rho: Any, tau1: Any, tau2: Any, w: Any) -> State:
    """One P-ADMM iteration (9)-(12), (15)-(17), (7).

    Parameters
    ----------
    ops : Operators
    yt : (M, N, n) complex
        Received signals, batch last.
    st : State
        Current iterate.
    rho, tau1, tau2 : float or 0-d real tensor
    w : (M,) real tensor

    Returns
    -------
    State
        The next iterate.
    """
    u = st.s / rho - yt  # s / rho - y, shared by both gradients
    g1 = bmm(ops.AH, st.Ax + st.Bz + u)  # (9)
    x = row_shrink(st.x - tau1 * g1, tau1 / rho)  # (11)-(12)
    Ax = bmm(ops.A, x)
    g2 = bmm(ops.BH, Ax + st.Bz + u)  # (15)
    z = soft_shrink(st.z - tau2 * g2, (tau2 / rho) * w.reshape(-1, 1, 1))  # (16)-(17)
    Bz = bmm(ops.B, z)
    s = st.s + rho * (Ax + Bz - yt)  # (7)
    return State(x, z, s, Ax, Bz)


# ---------------------------------------------------------------------------
# the same iteration for inference: real block layout, in place (no autograd)
# ---------------------------------------------------------------------------
class BlockOperators(NamedTuple):
    """Dictionaries in real block form, for :func:`run_inference`.

    A complex ``D`` (M, P, Q) becomes the real ``[[Re D, -Im D], [Im D, Re D]]``
    (M, 2P, 2Q), which maps ``[Re v; Im v]`` to ``[Re Dv; Im Dv]``.

    A : (M, 2N, 2K), AH : (M, 2K, 2N), B : (M, 2N, 2L), BH : (M, 2L, 2N), all real.
    """

    A: torch.Tensor
    AH: torch.Tensor
    B: torch.Tensor
    BH: torch.Tensor


def real_block(D: torch.Tensor) -> torch.Tensor:
    """Complex (M, P, Q) -> real (M, 2P, 2Q) ``[[Re D, -Im D], [Im D, Re D]]`` (contiguous)."""
    re, im = D.real, D.imag
    return torch.cat([torch.cat([re, -im], dim=2), torch.cat([im, re], dim=2)], dim=1).contiguous()


def block_operators(ops: Operators) -> BlockOperators:
    """:class:`BlockOperators` of complex :class:`Operators` (same device, matching real dtype)."""
    return BlockOperators(*(real_block(t) for t in ops))


class InferenceResult(NamedTuple):
    """Output of :func:`run_inference` (batch-last, the normalised scale of ``yt``).

    Attributes
    ----------
    x : (M, K, n) complex
    z : (M, L, n) complex
    residual : (iterations, n) real or None
        ``||y_b - A x_b - B z_b||^2`` of every sample after every iteration.
    """

    x: torch.Tensor
    z: torch.Tensor
    residual: torch.Tensor | None


def _check_inference_args(ops: Operators | BlockOperators, yt: Any, rho: Any, tau1: Any, tau2: Any, w: Any,
                          block: bool) -> tuple[list[float], list[float], list[float], np.ndarray]:
    """Validate the arguments of :func:`run_inference` / :func:`run_small_batch_numpy`; returns the
    parameter lists as floats and ``w`` as an (M,) float array."""
    if not isinstance(yt, torch.Tensor) or yt.ndim != 3 or not yt.is_complex():
        raise ValueError(f"yt: expected a complex (M, N, n) tensor (batch last, see prepare_y), got "
                         f"{type(yt).__name__} {tuple(getattr(yt, 'shape', ()))}")
    M, N = (ops.A.shape[0], ops.A.shape[1] // 2) if block else (ops.A.shape[0], ops.A.shape[1])
    if tuple(yt.shape[:2]) != (M, N) or yt.shape[2] < 1:
        raise ValueError(f"yt: expected shape ({M}, {N}, n >= 1) to match the dictionaries, got {tuple(yt.shape)}")
    lists = []
    for name, v in (("rho", rho), ("tau1", tau1), ("tau2", tau2)):
        try:
            vals = [float(t) for t in v]
        except TypeError:
            raise ValueError(f"{name}: expected a list with one value per iteration, got {v!r}") from None
        if not vals or not all(np.isfinite(t) and t > 0 for t in vals):
            raise ValueError(f"{name}: expected a non-empty list of finite positive values, got {vals}")
        if name == "rho" and not all(RHO_MIN <= t <= RHO_MAX for t in vals):
            raise ValueError(f"rho: expected values in [{RHO_MIN:g}, {RHO_MAX:g}], got {vals}")
        lists.append(vals)
    if not len(lists[0]) == len(lists[1]) == len(lists[2]):
        raise ValueError(f"rho, tau1, tau2: expected one value per iteration each, got lengths "
                         f"{len(lists[0])}, {len(lists[1])}, {len(lists[2])}")
    w_arr = np.asarray(w.detach().cpu() if is_tensor(w) else w, dtype=float)
    if w_arr.shape != (M,) or not np.isfinite(w_arr).all() or (w_arr <= 0).any():
        raise ValueError(f"w: expected {M} finite positive weights (one per BS), got {w_arr}")
    return lists[0], lists[1], lists[2], w_arr


def _divergence(i: int, total: int, rho: float, tau1: float, tau2: float) -> DivergenceError:
    return DivergenceError(
        f"the P-ADMM iterate (or its residual) became NaN or inf by iteration {i} of {total} (rho={rho:g}, tau1={tau1:g}, "
        f"tau2={tau2:g}): the steps must satisfy tau1 < 1/max_m ||A_m||_2^2 and tau2 < 1/max_m ||B_m||_2^2 "
        f"(see admm.default_params), or the input is out of the working precision's range"
    )


def _sum_squares(planes: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out = sum_j planes[j]**2`` over the first axis without a temporary (planes (J, ...), out (...))."""
    torch.mul(planes[0], planes[0], out=out)
    for j in range(1, planes.shape[0]):
        out.addcmul_(planes[j], planes[j])
    return out


def run_inference(bops: BlockOperators, yt: torch.Tensor, rho: list[float], tau1: list[float],
                  tau2: list[float], w: Any, *, track_residual: bool = False) -> InferenceResult:
    """The iterations of :func:`admm_layer`, for inference: real arithmetic, updated in place.

    The same updates (9)-(12), (15)-(17), (7) in the same order as
    :func:`admm_layer` (tested equal to float round-off), written for speed:

    * complex products as real GEMMs with the :class:`BlockOperators`;
    * ``x - tau1 * g1`` and ``z - tau2 * g2`` fused into the GEMM
      (``baddbmm_`` with ``alpha = -tau``), so the big iterate ``x`` (M, 2K, n)
      is read and written by the GEMM, one squared-norm pass and one scaling
      pass per iteration, and nothing of its size is allocated in the loop
      (fresh allocations of that size cost page faults on every iteration).

    There is no autograd (the tensors are overwritten); train with :func:`admm_layer`.

    Parameters
    ----------
    bops : BlockOperators
    yt : (M, N, n) complex
        Received signals, batch last.
    rho, tau1, tau2 : lists of float, one entry per iteration
    w : (M,) real tensor or array
    track_residual : bool
        Also return the residual energy of every sample after every iteration.

    Returns
    -------
    InferenceResult
    """
    rho, tau1, tau2, w_arr = _check_inference_args(bops, yt, rho, tau1, tau2, w, block=True)
    M, N, n = yt.shape
    K, L = bops.AH.shape[1] // 2, bops.BH.shape[1] // 2
    y = torch.cat([yt.real, yt.imag], dim=1)  # (M, 2N, n)
    x = y.new_zeros(M, 2 * K, n)
    z = y.new_zeros(M, 2 * L, n)
    s, Ax, Bz = y.new_zeros(M, 2 * N, n), y.new_zeros(M, 2 * N, n), y.new_zeros(M, 2 * N, n)
    u, r = torch.empty_like(y), torch.empty_like(y)
    x_planes = x.view(2 * M, K, n)  # [Re x_1; Im x_1; Re x_2; ...]: a row of X is (x_planes[:, k, b])
    z_pairs = z.view(M, 2, L, n)
    row = y.new_empty(K, n)
    mag = y.new_empty(M, L, n)
    wcol = torch.as_tensor(w_arr, dtype=y.dtype, device=y.device).reshape(M, 1, 1)
    residual = y.new_empty(len(rho), n) if track_residual else None
    for i, (r_i, t1, t2) in enumerate(zip(rho, tau1, tau2)):
        torch.mul(s, 1.0 / r_i, out=u).sub_(y)  # s / rho - y
        torch.add(Ax, Bz, out=r).add_(u)
        x.baddbmm_(bops.AH, r, alpha=-t1)  # c = x - tau1 A^H (...), (9), (11)
        _sum_squares(x_planes, row).clamp_min_(_TINY).rsqrt_()  # 1 / ||c_k||
        row.mul_(-t1 / r_i).add_(1.0).relu_()  # (12): max(1 - lambda1 / ||c_k||, 0)
        x.view(M, 2, K, n).mul_(row)
        torch.bmm(bops.A, x, out=Ax)
        torch.add(Ax, Bz, out=r).add_(u)
        z.baddbmm_(bops.BH, r, alpha=-t2)  # d = z - tau2 B^H (...), (15), (16)
        _sum_squares(z_pairs.transpose(0, 1), mag).clamp_min_(_TINY).rsqrt_()  # 1 / |d|
        mag.mul_(wcol).mul_(-t2 / r_i).add_(1.0).relu_()  # (17)
        z_pairs.mul_(mag.unsqueeze(1))
        torch.bmm(bops.B, z, out=Bz)
        torch.add(Ax, Bz, out=r).sub_(y)  # A x + B z - y
        s.add_(r, alpha=r_i)  # (7)
        if residual is not None:
            residual[i] = r.reshape(2 * M * N, n).square().sum(dim=0)
        if (i + 1) % FINITE_CHECK_EVERY == 0 or i + 1 == len(rho):
            # a non-finite x or z reaches s (through A x, B z) within the iteration; s is small (M, 2N, n);
            # the squared residual leaves the float range first
            bad = not bool(torch.isfinite(s).all())
            if bad or (residual is not None and not bool(torch.isfinite(residual[i]).all())):
                raise _divergence(i + 1, len(rho), r_i, t1, t2)
    return InferenceResult(torch.complex(x[:, :K], x[:, K:]), torch.complex(z[:, :L], z[:, L:]), residual)


@np.errstate(over="ignore", invalid="ignore")  # divergence is detected and reported below
def run_small_batch_numpy(ops: Operators, yt: torch.Tensor, rho: list[float], tau1: list[float],
                          tau2: list[float], w: Any, *, track_residual: bool = False) -> InferenceResult:
    """The iterations of :func:`admm_layer` in numpy, for small CPU batches (inference only).

    The same updates (9)-(12), (15)-(17), (7) in the same order; torch's
    per-operator overhead dominates for a handful of samples (measured at paper
    scale, 15 layers, one sample: 11 ms in torch, 3 ms here), numpy's is smaller.
    Results agree with :func:`admm_layer` to float round-off (tested).

    Parameters
    ----------
    ops : Operators (CPU tensors; their memory is shared, not copied)
    yt : (M, N, n) complex CPU tensor, batch last
    rho, tau1, tau2 : lists of floats, one per iteration
    w : (M,) weights
    track_residual : bool
        Also return the residual energy of every sample after every iteration.

    Returns
    -------
    InferenceResult (tensors)
    """
    rho, tau1, tau2, w_arr = _check_inference_args(ops, yt, rho, tau1, tau2, w, block=False)
    if yt.device.type != "cpu":
        raise ValueError(f"yt: expected a CPU tensor for the numpy path, got one on {yt.device}")
    A, AH, B, BH = (t.numpy() for t in ops)
    y = yt.numpy()
    real = y.real.dtype.type
    wcol = w_arr.astype(real).reshape(-1, 1, 1)
    M, N, n = y.shape
    x = np.zeros((M, A.shape[2], n), y.dtype)
    z = np.zeros((M, B.shape[2], n), y.dtype)
    s = np.zeros_like(y)
    Ax = np.zeros_like(y)
    Bz = np.zeros_like(y)
    residual = np.empty((len(rho), n), dtype=real) if track_residual else None
    for i, (r, t1, t2) in enumerate(zip(rho, tau1, tau2)):
        u = s / real(r) - y
        c = x - real(t1) * np.matmul(AH, Ax + Bz + u)  # (9), (11)
        norm = np.sqrt(np.maximum((c.real ** 2 + c.imag ** 2).sum(axis=0, keepdims=True), _TINY))
        x = c * np.maximum(1 - real(t1 / r) / norm, 0)  # (12)
        Ax = np.matmul(A, x)
        d = z - real(t2) * np.matmul(BH, Ax + Bz + u)  # (15), (16)
        mag = np.sqrt(np.maximum(d.real ** 2 + d.imag ** 2, _TINY))
        z = d * np.maximum(1 - real(t2 / r) * wcol / mag, 0)  # (17)
        Bz = np.matmul(B, z)
        res = Ax + Bz - y
        s = s + real(r) * res  # (7)
        if residual is not None:
            residual[i] = (res.real ** 2 + res.imag ** 2).sum(axis=(0, 1))
        if (i + 1) % FINITE_CHECK_EVERY == 0 or i + 1 == len(rho):
            if not np.isfinite(s).all() or (residual is not None and not np.isfinite(residual[i]).all()):
                raise _divergence(i + 1, len(rho), r, t1, t2)
    return InferenceResult(torch.from_numpy(x), torch.from_numpy(z),
                           None if residual is None else torch.from_numpy(residual))


def iterate(ops: Operators, yt: torch.Tensor, rho: list[float], tau1: list[float], tau2: list[float], w: Any, *,
            track_residual: bool = False, block_ops: BlockOperators | None = None) -> InferenceResult:
    """Inference iterations, on the fastest path for the batch: :func:`run_small_batch_numpy`
    for CPU batches under :data:`SMALL_BATCH` samples, :func:`run_inference` otherwise.

    ``block_ops`` (optional) are the :class:`BlockOperators` of ``ops``, when cached by the caller
    (otherwise built here, and only for the torch path).
    Shapes as in :func:`run_inference`.
    """
    if yt.device.type == "cpu" and yt.shape[-1] < SMALL_BATCH:
        return run_small_batch_numpy(ops, yt, rho, tau1, tau2, w, track_residual=track_residual)
    bops = block_operators(ops) if block_ops is None else block_ops
    return run_inference(bops, yt, rho, tau1, tau2, w, track_residual=track_residual)


def _zero_samples(absmax: torch.Tensor) -> list[int]:
    return torch.nonzero(absmax == 0).flatten().tolist()


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
    yt = _tensor(y)
    if not yt.is_complex():
        yt = yt.to(torch.complex128 if yt.dtype == torch.float64 else cdtype)
    if device is not None:
        yt = yt.to(device=device)
    n, M, N = yt.shape
    absmax = torch.maximum(yt.real.abs().amax(dim=(1, 2)), yt.imag.abs().amax(dim=(1, 2)))
    zero = _zero_samples(absmax)
    if zero:
        raise ValueError(f"y: sample(s) {zero[:10]} are all zero: a zero signal carries no information "
                         f"about the position")
    rdtype = torch.float32 if cdtype == torch.complex64 else torch.float64
    if normalize:
        _, e = torch.frexp(absmax)  # absmax = mant * 2^e, mant in [0.5, 1)
        e = e.to(torch.int32)
        yt = torch.ldexp(yt, (-e).to(yt.real.dtype).reshape(n, 1, 1)) if bool((e != 0).any()) else yt
        yt = yt.to(dtype=cdtype)
        rms = torch.sqrt((yt.real.square() + yt.imag.square()).sum(dim=(1, 2)) / (M * N))
        scale = torch.ldexp(rms, e.to(rms.dtype))
        if not bool(torch.isfinite(scale).all()) or not bool((scale > torch.finfo(rdtype).tiny).all()):
            raise ValueError(f"y: a sample's RMS ({float(absmax.max()):.3g} at most) does not fit {rdtype} "
                             f"estimates; use dtype='float64'")
    else:
        yt = yt.to(dtype=cdtype)
        if not bool(torch.isfinite(yt).all()):
            raise ValueError(f"y: values exceed the range of {cdtype} (largest {float(absmax.max()):.3g}); "
                             f"use normalize=True or dtype='float64'")
        scale = torch.ones(n, dtype=rdtype, device=yt.device)
    yt = (yt / scale.reshape(n, 1, 1) if not normalize else yt / rms.reshape(n, 1, 1)).permute(1, 2, 0).contiguous()
    return yt, scale


def energy(v: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``sum_b ||v_b||^2`` in the original scale: v (M, N, n) batch-last, scale (n,)."""
    return ((v.real.square() + v.imag.square()).sum(dim=(0, 1)) * scale.square()).sum()


def residual_nmse(yt: torch.Tensor, st: State, scale: torch.Tensor) -> torch.Tensor:
    """Batch NMSE ``sum_b ||y_b - A x_b - B z_b||^2 / sum_b ||y_b||^2`` in the original scale."""
    return energy(yt - st.Ax - st.Bz, scale) / energy(yt, scale).clamp_min(_TINY)


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
    A : (M, N, K) complex, numpy array or tensor
        LoS dictionaries, ``A[m]`` is ``A_m``.
    B : (M, N, L) complex
        NLoS dictionaries.
    y : (n, M, N) or (M, N) complex
        Received signals.
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
            warnings.warn(f"{name}={tau:g} is not below the convergence bound {bound:.4g} of the linearised step "
                          f"(1/max_m ||{'A' if name == 'tau1' else 'B'}_m||_2^2); P-ADMM may diverge",
                          UserWarning, stacklevel=2)
    ops = make_operators(A, B, cdtype, device)
    want_tensor = is_tensor(y)
    with torch.inference_mode():
        yt, scale = prepare_y(y_arr, cdtype, ops.A.device, normalize)
        try:
            out = iterate(ops, yt, [rho] * iterations, [tau1] * iterations, [tau2] * iterations, w_arr,
                          track_residual=True)
        except DivergenceError as exc:
            raise DivergenceError(f"{exc}; here 1/max_m ||A_m||^2 = {bounds[0]:.4g}, "
                                  f"1/max_m ||B_m||^2 = {bounds[1]:.4g}") from None
        # the ratio only needs relative scales: dividing them by a power of two (exact) keeps their
        # squares in range at any scale of y
        rel = torch.ldexp(scale, -torch.frexp(scale.max())[1].to(scale.dtype))
        nmse = (out.residual * rel.square()).sum(dim=1) / energy(yt, rel).clamp_min(_TINY)
        X, Z = unpack_xz(out.x, out.z, scale)
        X, Z = X.contiguous(), Z.contiguous()
    if want_tensor:
        return ADMMResult(X.clone(), Z.clone(), nmse.clone())
    return ADMMResult(X.cpu().numpy(), Z.cpu().numpy(), nmse.cpu().numpy())


def _step_bounds(A: Any, B: Any) -> tuple[float, float]:
    """``(1 / max_m ||A_m||_2^2, 1 / max_m ||B_m||_2^2)``: the convergence bounds of tau1 and tau2."""
    out = []
    for D in (A, B):
        d = np.asarray(D.detach().cpu() if is_tensor(D) else D)
        na = _max_spectral_norm_sq(d)
        out.append(math.inf if na == 0.0 else 1.0 / na)
    return out[0], out[1]


def objective(X: np.ndarray, Z: np.ndarray, w: Any) -> np.ndarray:
    """Objective of (3): ``||X||_{2,1} + sum_m w_m ||z_m||_1``.

    Parameters
    ----------
    X : (n, K, M) or (K, M) complex
    Z : (n, L, M) or (L, M) complex
    w : float or (M,) float

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
    if w.shape != (X.shape[-1],) or not np.isfinite(w).all():
        raise ValueError(f"w: expected a scalar or a length-{X.shape[-1]} vector, got shape {w.shape}")
    val = np.linalg.norm(X, axis=-1).sum(axis=-1) + (np.abs(Z) * w).sum(axis=(-2, -1))
    return val
