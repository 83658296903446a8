r"""The iteration of P-ADMM, (9)-(12), (15)-(17), (7), in three tested-equal implementations.

* :func:`admm_layer`: torch, differentiable (autograd); :func:`daun_lib.admm.solve`
  and :class:`daun_lib.daun.DAUN` are built from it, so the unfolded network is
  exactly this iteration with per-layer parameters.
* :func:`run_inference`: the same updates for inference, with complex products as
  real GEMMs of :class:`BlockOperators` and every array updated in place.
* :func:`run_small_batch_numpy`: the same updates in numpy, for a handful of
  samples on CPU (where torch's per-operator overhead dominates).

:func:`iterate` picks the fastest of the last two for a batch.  Layout: batch
last, ``x`` (M, K, n), ``z`` (M, L, n), ``y``, ``s``, ``Ax``, ``Bz`` (M, N, n).
The inference paths check the iterate for NaN/inf every
:data:`FINITE_CHECK_EVERY` iterations and at the end and raise
:class:`DivergenceError`.  The public names are re-exported by
:mod:`daun_lib.admm`; import them from there.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from ._devices import check_device
from ._validation import is_tensor
from .operators import is_operator

__all__ = [
    "FINITE_CHECK_EVERY",
    "RHO_MAX",
    "RHO_MIN",
    "SMALL_BATCH",
    "BlockOperators",
    "DivergenceError",
    "InferenceResult",
    "Operators",
    "State",
    "admm_layer",
    "block_operators",
    "init_state",
    "iterate",
    "make_operators",
    "real_block",
    "row_shrink",
    "run_inference",
    "run_small_batch_numpy",
    "soft_shrink",
]

TINY = 1e-30

#: Accepted range of the penalty ``rho`` (of :func:`solve` and of the per-iteration
#: lists of :func:`run_inference`): outside it ``s / rho`` or ``tau / rho`` leave
#: the float range or every estimate is shrunk to zero within any practical
#: iteration count.
RHO_MIN, RHO_MAX = 1e-12, 1e12
#: The inference iterations test the iterate for NaN/inf this often (and after the last one).
FINITE_CHECK_EVERY = 25


class DivergenceError(ValueError):
    """The ADMM iterate became NaN or inf (steps above the convergence bound, or values out of range)."""


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


def to_tensor(x: Any) -> torch.Tensor:
    """``torch.as_tensor`` that copies read-only numpy arrays (torch cannot share them)."""
    if isinstance(x, np.ndarray) and not x.flags.writeable:
        x = np.array(x)
    return torch.as_tensor(x)


def make_operators(A: Any, B: Any, cdtype: torch.dtype, device: Any = None) -> Operators:
    """Build :class:`Operators` from numpy arrays, tensors or :mod:`daun_lib.operators` objects
    (``device`` None: where ``A`` is).  A structured operator is kept (its fields are then the
    operator and its adjoint ``op.H``, with ``shape``; products ``op @ v``)."""
    if device is not None:
        device = check_device(device)
    if is_operator(A) or is_operator(B):  # a StructuredOperator stays one (op @ v, op.H @ v); a dense one is its array
        A, B = (D.dense() if getattr(D, "kind", "") == "dense" else D for D in (A, B))
        if is_operator(A) or is_operator(B):
            A, B = (
                D.to(cdtype, device) if is_operator(D) else to_tensor(D).to(device=device, dtype=cdtype) for D in (A, B)
            )
            conj = (D.H if is_operator(D) else D.conj().transpose(1, 2).contiguous() for D in (A, B))
            return Operators(A, next(conj), B, next(conj))
    At = to_tensor(A).to(device=device, dtype=cdtype).contiguous()
    Bt = to_tensor(B).to(device=device, dtype=cdtype).contiguous()
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
    return torch.sqrt(sq.clamp_min(TINY))


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
#: matmuls (on CPU, torch's batched complex matmul is much slower per sample
#: for a handful of columns); :func:`iterate` sends such batches to numpy.
SMALL_BATCH = 16


def _bmm(op: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Per-BS product ``op[m] @ v[m]``: op (M, P, Q), v (M, Q, n) -> (M, P, n)."""
    if not isinstance(op, torch.Tensor):  # a structured operator (or its adjoint)
        return op @ v
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
    g1 = _bmm(ops.AH, st.Ax + st.Bz + u)  # (9)
    x = row_shrink(st.x - tau1 * g1, tau1 / rho)  # (11)-(12)
    Ax = _bmm(ops.A, x)
    g2 = _bmm(ops.BH, Ax + st.Bz + u)  # (15)
    z = soft_shrink(st.z - tau2 * g2, (tau2 / rho) * w.reshape(-1, 1, 1))  # (16)-(17)
    Bz = _bmm(ops.B, z)
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
    return BlockOperators(*(real_block(t) if isinstance(t, torch.Tensor) else t.block() for t in ops))


def _badd(x: torch.Tensor, op: Any, r: torch.Tensor, alpha: float) -> None:
    """``x += alpha op r`` (in place): a dense block GEMM or a structured operator's own product."""
    x.baddbmm_(op, r, alpha=alpha) if isinstance(op, torch.Tensor) else op.baddbmm_(x, r, alpha)


def _bmm_into(op: Any, x: torch.Tensor, out: torch.Tensor) -> None:
    """``out = op x``: a dense block GEMM or a structured operator's own product."""
    torch.bmm(op, x, out=out) if isinstance(op, torch.Tensor) else op.bmm_into(x, out)


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


def _check_inference_args(
    ops: Operators | BlockOperators, yt: Any, rho: Any, tau1: Any, tau2: Any, w: Any, block: bool
) -> tuple[list[float], list[float], list[float], np.ndarray]:
    """Validate the arguments of :func:`run_inference` / :func:`run_small_batch_numpy`; returns the
    parameter lists as floats and ``w`` as an (M,) float array."""
    if not isinstance(yt, torch.Tensor) or yt.ndim != 3 or not yt.is_complex():
        raise ValueError(
            f"yt: expected a complex (M, N, n) tensor (batch last, see prepare_y), got "
            f"{type(yt).__name__} {tuple(getattr(yt, 'shape', ()))}"
        )
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
        raise ValueError(
            f"rho, tau1, tau2: expected one value per iteration each, got lengths "
            f"{len(lists[0])}, {len(lists[1])}, {len(lists[2])}"
        )
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


def run_inference(
    bops: BlockOperators,
    yt: torch.Tensor,
    rho: list[float],
    tau1: list[float],
    tau2: list[float],
    w: Any,
    *,
    track_residual: bool = False,
) -> InferenceResult:
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
    for i, (r_i, t1, t2) in enumerate(zip(rho, tau1, tau2, strict=True)):
        torch.mul(s, 1.0 / r_i, out=u).sub_(y)  # s / rho - y
        torch.add(Ax, Bz, out=r).add_(u)
        _badd(x, bops.AH, r, -t1)  # c = x - tau1 A^H (...), (9), (11)
        _sum_squares(x_planes, row).clamp_min_(TINY).rsqrt_()  # 1 / ||c_k||
        row.mul_(-t1 / r_i).add_(1.0).relu_()  # (12): max(1 - lambda1 / ||c_k||, 0)
        x.view(M, 2, K, n).mul_(row)
        _bmm_into(bops.A, x, Ax)
        torch.add(Ax, Bz, out=r).add_(u)
        _badd(z, bops.BH, r, -t2)  # d = z - tau2 B^H (...), (15), (16)
        _sum_squares(z_pairs.transpose(0, 1), mag).clamp_min_(TINY).rsqrt_()  # 1 / |d|
        mag.mul_(wcol).mul_(-t2 / r_i).add_(1.0).relu_()  # (17)
        z_pairs.mul_(mag.unsqueeze(1))
        _bmm_into(bops.B, z, Bz)
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
def run_small_batch_numpy(
    ops: Operators,
    yt: torch.Tensor,
    rho: list[float],
    tau1: list[float],
    tau2: list[float],
    w: Any,
    *,
    track_residual: bool = False,
) -> InferenceResult:
    """The iterations of :func:`admm_layer` in numpy, for small CPU batches (inference only).

    The same updates (9)-(12), (15)-(17), (7) in the same order; torch's
    per-operator overhead dominates for a handful of samples, numpy's is smaller.
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
    for i, (r, t1, t2) in enumerate(zip(rho, tau1, tau2, strict=True)):
        u = s / real(r) - y
        c = x - real(t1) * np.matmul(AH, Ax + Bz + u)  # (9), (11)
        norm = np.sqrt(np.maximum((c.real**2 + c.imag**2).sum(axis=0, keepdims=True), TINY))
        x = c * np.maximum(1 - real(t1 / r) / norm, 0)  # (12)
        Ax = np.matmul(A, x)
        d = z - real(t2) * np.matmul(BH, Ax + Bz + u)  # (15), (16)
        mag = np.sqrt(np.maximum(d.real**2 + d.imag**2, TINY))
        z = d * np.maximum(1 - real(t2 / r) * wcol / mag, 0)  # (17)
        Bz = np.matmul(B, z)
        res = Ax + Bz - y
        s = s + real(r) * res  # (7)
        if residual is not None:
            residual[i] = (res.real**2 + res.imag**2).sum(axis=(0, 1))
        if (i + 1) % FINITE_CHECK_EVERY == 0 or i + 1 == len(rho):
            if not np.isfinite(s).all() or (residual is not None and not np.isfinite(residual[i]).all()):
                raise _divergence(i + 1, len(rho), r, t1, t2)
    return InferenceResult(
        torch.from_numpy(x), torch.from_numpy(z), None if residual is None else torch.from_numpy(residual)
    )


def iterate(
    ops: Operators,
    yt: torch.Tensor,
    rho: list[float],
    tau1: list[float],
    tau2: list[float],
    w: Any,
    *,
    track_residual: bool = False,
    block_ops: BlockOperators | None = None,
) -> InferenceResult:
    """Inference iterations, on the fastest path for the batch: :func:`run_small_batch_numpy`
    for CPU batches under :data:`SMALL_BATCH` samples, :func:`run_inference` otherwise (always with a
    structured operator, whose products are its own FFT-plus-interpolation ones).

    ``block_ops`` (optional) are the :class:`BlockOperators` of ``ops``, when cached by the caller
    (otherwise built here, and only for the torch path).
    Shapes as in :func:`run_inference`.
    """
    dense = all(isinstance(t, torch.Tensor) for t in ops)  # structured operators run on the torch path
    if dense and yt.device.type == "cpu" and yt.shape[-1] < SMALL_BATCH:
        return run_small_batch_numpy(ops, yt, rho, tau1, tau2, w, track_residual=track_residual)
    bops = block_operators(ops) if block_ops is None else block_ops
    return run_inference(bops, yt, rho, tau1, tau2, w, track_residual=track_residual)
