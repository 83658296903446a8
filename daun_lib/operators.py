r"""Dictionary operators: the products ``A x``, ``A^H r``, ``B z``, ``B^H r`` of (2), (9) and (15).

A dictionary of this package (``A`` (M, N, K), ``B`` (M, N, L); :meth:`daun_lib.Scenario.dictionaries`)
has, per BS, ULA steering vectors as columns, so its products are non-uniform DFTs.  Two
implementations, accepted wherever a dense dictionary is (``admm.solve``, ``admm.default_params``,
:class:`daun_lib.daun.DAUN`, :func:`daun_lib.baselines.dpd.cost`):

* :class:`DenseOperator`: the dense array (block GEMMs); the reference.
* :class:`StructuredOperator`: per BS an FFT of length ``G ~ 2N`` and a real ``taps``-tap
  interpolation to each column's spatial frequency (:mod:`daun_lib._structured`):
  ``O(G log G + taps P)`` per sample instead of ``O(N P)``; its adjoint is its exact transpose.

Approximation error (relative 2-norm of ``D x`` and ``D^H r`` against the dense product for random
complex ``x``, ``r``; N = 256, 100 x 100 grid, complex128 arithmetic, tests/test_operators.py)::

    oversampling  taps   rel. error          oversampling  taps   rel. error
    2             8      1.1e-7 (complex64)  4             6      7.6e-7
    2             12     1.6e-11             4             8      3.9e-9
    2             16     8.1e-14 (complex128) 4            10     1.8e-11

In complex64 the float32 round-off (~1e-7) adds to these.  The defaults (:data:`DEFAULT_TAPS`) are
8 taps for complex64 and 16 for complex128, with ``oversampling = 2``.

Choice (:func:`choose`, ``kind="auto"``), per dictionary: structured when ``N * P >= AUTO_MIN_NP``
(2^17) at a batch of at least :data:`AUTO_SMALL_BATCH` (16) samples, or ``N * P >= AUTO_MIN_NP_SMALL_BATCH``
(2^18) below it; dense otherwise.  The thresholds come from benchmarks/scaling.py
(results/scaling.csv, rendered on docs/results/operators.md): at batch 1 dense is faster up to
N K of about 2e5, batched the structured products win from about N K = 5e4 on.  At the paper's
scale (N K = 45,000, N L = 5,000) both stay dense at every batch although the structured ``A``
would make a batched P-ADMM iteration 1.3-1.9x faster on one thread (DAUN's layers 1.2-2x): its
float32 iterates differ from the dense ones by about 1e-6 relative, and the subgrid readouts carry
that into the paper's committed results (DAUN-S and P-ADMM-peaks-S median errors moved by up to
8e-6 relative in a full ``make reproduce``), beyond the 1e-6 to which those results are kept.
``kind="structured"`` gives the faster products at the paper's scale to whoever wants them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from . import _structured
from ._validation import as_array, positive

__all__ = [
    "AUTO_MIN_NP",
    "AUTO_MIN_NP_SMALL_BATCH",
    "AUTO_SMALL_BATCH",
    "DEFAULT_OVERSAMPLING",
    "DEFAULT_TAPS",
    "KINDS",
    "DenseOperator",
    "StructuredOperator",
    "available",
    "choose",
    "for_batch",
    "for_scenario",
    "is_operator",
    "max_spectral_norm_sq",
    "split",
]

#: Operator kinds; ``"auto"`` picks one of them (:func:`choose`).
KINDS: tuple[str, ...] = ("dense", "structured")
#: ``kind="auto"`` is structured from this dense cost ``N * P`` per BS on, at batches of
#: :data:`AUTO_SMALL_BATCH` samples or more; see the module notes.
AUTO_MIN_NP = 2**17
#: Batches below this size (dense P-ADMM's numpy path, admm.SMALL_BATCH) use :data:`AUTO_MIN_NP_SMALL_BATCH`.
AUTO_SMALL_BATCH = 16
#: The threshold of ``kind="auto"`` below :data:`AUTO_SMALL_BATCH` samples.
AUTO_MIN_NP_SMALL_BATCH = 2**18
#: Interpolation taps by working precision: relative error ~1e-7 (complex64), ~1e-13 (complex128).
DEFAULT_TAPS: dict[torch.dtype, int] = {torch.complex64: 8, torch.complex128: 16}
#: FFT length over N.
DEFAULT_OVERSAMPLING = 2.0


def max_spectral_norm_sq(D: np.ndarray) -> float:
    """``max_m ||D_m||_2^2`` of a dense (M, N, P) array, from the smaller Gram matrices."""
    D = np.asarray(as_array(D, "D", 3))
    gram = D @ np.conj(np.swapaxes(D, 1, 2)) if D.shape[1] <= D.shape[2] else np.conj(np.swapaxes(D, 1, 2)) @ D
    return float(np.linalg.eigvalsh(gram.astype(np.complex128)).max())


def is_operator(D: Any) -> bool:
    """Whether ``D`` is a :class:`DenseOperator` or :class:`StructuredOperator`."""
    return isinstance(D, (DenseOperator, StructuredOperator))


def choose(n_antennas: int, n_columns: int, batch: int = 256) -> str:
    """The kind ``"auto"`` picks for a dictionary of ``n_columns`` (P) columns per BS and ``N`` antennas.

    ``"structured"`` when ``N * P >= AUTO_MIN_NP`` (2^17) at ``batch >= AUTO_SMALL_BATCH`` (16), or
    ``N * P >= AUTO_MIN_NP_SMALL_BATCH`` (2^18) below it (where dense P-ADMM runs on its lean numpy
    path), else ``"dense"``; benchmarks/scaling.py, see the module notes.
    """
    N = positive(n_antennas, "n_antennas", integer=True)
    P = positive(n_columns, "n_columns", integer=True)
    B = positive(batch, "batch", integer=True)
    return "structured" if N * P >= (AUTO_MIN_NP if B >= AUTO_SMALL_BATCH else AUTO_MIN_NP_SMALL_BATCH) else "dense"


class DenseOperator:
    """A dense dictionary ``D`` (M, N, P) as an operator (the reference implementation).

    Parameters
    ----------
    D : (M, N, P) complex array
    """

    kind = "dense"

    def __init__(self, D: Any) -> None:
        D = np.asarray(D.detach().cpu() if isinstance(D, torch.Tensor) else D)
        if D.ndim != 3 or min(D.shape) < 1:
            raise ValueError(f"D: expected a non-empty (M, N, P) array, got shape {D.shape}")
        if not np.isfinite(D).all():
            raise ValueError("D: expected finite entries")
        self.D = D
        self.shape = tuple(int(s) for s in D.shape)

    def dense(self) -> np.ndarray:
        """The (M, N, P) array."""
        return self.D

    def norm_sq(self) -> float:
        """``max_m ||D_m||_2^2`` (exact, from the Gram matrices)."""
        if not hasattr(self, "_norm"):
            self._norm = max_spectral_norm_sq(self.D)
        return self._norm

    def column_norms_sq(self) -> np.ndarray:
        """(M, P) squared column norms."""
        return np.sum(np.abs(self.D) ** 2, axis=1)

    def matvec(self, x: torch.Tensor) -> torch.Tensor:
        """``D_m x_m``: (M, P, n) -> (M, N, n)."""
        return torch.matmul(torch.as_tensor(self.D, dtype=x.dtype, device=x.device), x)

    def rmatvec(self, r: torch.Tensor) -> torch.Tensor:
        """``D_m^H r_m``: (M, N, n) -> (M, P, n)."""
        return torch.matmul(torch.as_tensor(self.D, dtype=r.dtype, device=r.device).mH, r)


class _Apply(torch.autograd.Function):
    """``D x`` (``adjoint=False``) or ``D^H x`` with the exact adjoint as its vector-Jacobian product."""

    @staticmethod
    def forward(ctx, plan, adjoint, x):  # noqa: ANN001, ANN205
        ctx.plan, ctx.adjoint = plan, adjoint
        return plan.adjoint(x) if adjoint else plan.forward(x)

    @staticmethod
    def backward(ctx, g):  # noqa: ANN001, ANN205
        return None, None, (ctx.plan.forward(g) if ctx.adjoint else ctx.plan.adjoint(g))


class StructuredOperator:
    """A ULA dictionary given by its columns' spatial frequencies: FFT plus interpolation.

    ``D[m][:, k] = exp(j 2 pi s (n - (N-1)/2) u[m, k]) / sqrt(N)``, n = 0..N-1 (the columns of
    :meth:`daun_lib.Scenario.dictionaries`).  ``op @ x`` is ``D x`` and ``op.H @ r`` is ``D^H r``
    for complex batch-last tensors (M, P, n) and (M, N, n), differentiable (autograd).

    Parameters
    ----------
    u : (M, P) float
        ``sin(theta)`` of every column, finite, in [-1, 1].
    n_antennas : int >= 2
        N.
    spacing : float > 0
        Element spacing in wavelengths.
    taps : int >= 2 or None
        Interpolation taps (None: :data:`DEFAULT_TAPS` of the dtype).
    oversampling : float >= 1.5
        FFT length over N.
    dtype : torch complex dtype (complex64 default); device : torch device
    """

    kind = "structured"

    def __init__(
        self,
        u: Any,
        n_antennas: int,
        spacing: float = 0.5,
        *,
        taps: int | None = None,
        oversampling: float = DEFAULT_OVERSAMPLING,
        dtype: torch.dtype = torch.complex64,
        device: Any = "cpu",
    ) -> None:
        u = np.asarray(u, dtype=float) if not isinstance(u, np.ndarray) else u.astype(float)
        if u.ndim != 2 or min(u.shape) < 1 or not np.isfinite(u).all() or np.abs(u).max() > 1.0:
            raise ValueError(f"u: expected a finite (M, P) array of sines in [-1, 1], got shape {u.shape}")
        self.n_antennas = positive(n_antennas, "n_antennas", integer=True)
        if self.n_antennas < 2:
            raise ValueError(f"n_antennas: expected an integer >= 2, got {n_antennas!r}")
        self.spacing = positive(spacing, "spacing")
        if dtype not in DEFAULT_TAPS:
            raise ValueError(f"dtype: expected torch.complex64 or torch.complex128, got {dtype!r}")
        self.taps = DEFAULT_TAPS[dtype] if taps is None else positive(taps, "taps", integer=True)
        if self.taps < 2 or self.taps > 32:
            raise ValueError(f"taps: expected an integer in [2, 32], got {taps!r}")
        self.oversampling = positive(oversampling, "oversampling")
        if self.oversampling < 1.5:
            raise ValueError(f"oversampling: expected at least 1.5, got {oversampling!r}")
        self.u = u
        self.dtype = dtype
        self.device = torch.device(device)
        self.shape = (u.shape[0], self.n_antennas, u.shape[1])
        self.plan = _structured.Plan(u, self.n_antennas, self.spacing, self.taps, self.oversampling, dtype, device)
        self.H = _Adjoint(self)

    def to(self, dtype: torch.dtype, device: Any = None) -> StructuredOperator:
        """This operator in another precision or on another device (self when nothing changes; the
        taps follow the precision's default unless they were set)."""
        device = self.device if device is None else torch.device(device)
        if dtype == self.dtype and device == self.device:
            return self
        taps = self.taps if self.taps != DEFAULT_TAPS[self.dtype] else None
        return StructuredOperator(
            self.u, self.n_antennas, self.spacing, taps=taps, oversampling=self.oversampling, dtype=dtype, device=device
        )

    def dense(self) -> np.ndarray:
        """The exact (M, N, P) complex128 dictionary of these frequencies."""
        n = np.arange(self.n_antennas) - (self.n_antennas - 1) / 2.0
        return np.exp(2j * np.pi * self.spacing * n[None, :, None] * self.u[:, None, :]) / np.sqrt(self.n_antennas)

    def norm_sq(self) -> float:
        """``max_m ||D_m||_2^2`` of the exact dictionary, from its Toeplitz Gram matrices (O(N P))."""
        if not hasattr(self, "_norm"):
            self._norm = _structured.toeplitz_norm_sq(self.u, self.n_antennas, self.spacing)
        return self._norm

    def column_norms_sq(self) -> np.ndarray:
        """(M, P) squared column norms: ones (unit-norm steering vectors)."""
        return np.ones((self.shape[0], self.shape[2]))

    def _check(self, v: torch.Tensor, rows: int, name: str) -> torch.Tensor:
        if not isinstance(v, torch.Tensor) or v.ndim != 3 or tuple(v.shape[:2]) != (self.shape[0], rows):
            raise ValueError(
                f"{name}: expected a ({self.shape[0]}, {rows}, n) tensor, got {tuple(getattr(v, 'shape', ()))}"
            )
        return v.to(dtype=self.dtype, device=self.device)

    def matvec(self, x: torch.Tensor) -> torch.Tensor:
        """``D_m x_m``: (M, P, n) complex -> (M, N, n)."""
        return _Apply.apply(self.plan, False, self._check(x, self.shape[2], "x"))

    def rmatvec(self, r: torch.Tensor) -> torch.Tensor:
        """``D_m^H r_m``: (M, N, n) complex -> (M, P, n)."""
        return _Apply.apply(self.plan, True, self._check(r, self.shape[1], "r"))

    def __matmul__(self, x: torch.Tensor) -> torch.Tensor:
        return self.matvec(x)

    def block(self) -> _BlockForward:
        """The real-block, in-place form used by :func:`daun_lib.admm.run_inference`."""
        return _BlockForward(self)


class _Adjoint:
    """``op.H``: ``op.H @ r`` is ``D^H r``; ``shape`` (M, P, N)."""

    def __init__(self, op: StructuredOperator) -> None:
        self.op = op
        self.shape = (op.shape[0], op.shape[2], op.shape[1])
        self.dtype, self.device = op.dtype, op.device

    def __matmul__(self, r: torch.Tensor) -> torch.Tensor:
        return self.op.rmatvec(r)

    def block(self) -> _BlockAdjoint:
        return _BlockAdjoint(self.op)


class _BlockForward:
    """Real block ``[[Re D, -Im D], [Im D, Re D]]`` (M, 2N, 2P): ``bmm_into(x, out)`` sets ``out = D x``."""

    def __init__(self, op: StructuredOperator) -> None:
        self.plan = op.plan
        self.shape = (op.shape[0], 2 * op.shape[1], 2 * op.shape[2])

    def bmm_into(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return self.plan.block_forward_into(x, out)


class _BlockAdjoint:
    """Real block of ``D^H`` (M, 2P, 2N): ``baddbmm_(x, r, alpha)`` does ``x += alpha D^H r``."""

    def __init__(self, op: StructuredOperator) -> None:
        self.plan = op.plan
        self.shape = (op.shape[0], 2 * op.shape[2], 2 * op.shape[1])

    def baddbmm_(self, x: torch.Tensor, r: torch.Tensor, alpha: float) -> torch.Tensor:
        return self.plan.block_adjoint_add_(x, r, alpha)


def available(scenario: Any) -> tuple[str, ...]:
    """The operator kinds ``scenario`` can offer: both of :data:`KINDS` (its arrays are ULAs, and
    each cell's spatial frequency per BS is :meth:`Scenario.los_sines` of its grid, any grid)."""
    _check_scenario(scenario)
    return KINDS


def _check_scenario(scenario: Any) -> None:
    if not all(hasattr(scenario, a) for a in ("los_sines", "dictionaries", "grid", "angles", "antenna_spacing")):
        raise ValueError(f"scenario: expected a daun_lib.Scenario, got {type(scenario).__name__}")


def for_scenario(
    scenario: Any, kind: str = "auto", batch: int = 256, *, dtype: Any = "float32", taps: int | None = None
) -> tuple[Any, Any]:
    """The operators of ``scenario``'s dictionaries ``A`` (M, N, K) and ``B`` (M, N, L).

    Parameters
    ----------
    scenario : Scenario
    kind : "auto" (default), "dense" or "structured"
        ``"auto"``: :func:`choose` for each dictionary at ``batch`` samples.
    batch : int >= 1
        The batch size the operators will mostly see (``"auto"`` only).
    dtype : "float32" or "float64"
        Precision of the structured operators (the dense ones keep the complex128 arrays).
    taps : int or None
        Interpolation taps of the structured operators (None: :data:`DEFAULT_TAPS`).

    Returns
    -------
    (A, B) : DenseOperator or StructuredOperator each
    """
    _check_scenario(scenario)
    if kind not in KINDS + ("auto",):
        raise ValueError(f"kind: expected 'auto', 'dense' or 'structured', got {kind!r}")
    key = str(dtype).replace("torch.", "")
    if key not in ("float32", "float64", "complex64", "complex128"):
        raise ValueError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")
    cdtype = torch.complex64 if key in ("float32", "complex64") else torch.complex128
    N, M = scenario.n_antennas, scenario.n_bs
    kinds = [kind if kind != "auto" else choose(N, P, batch) for P in (scenario.n_grid, scenario.n_angles)]
    dense = scenario.dictionaries() if "dense" in kinds else (None, None)
    sines = (scenario.los_sines(scenario.grid).T, np.broadcast_to(np.sin(scenario.angles), (M, scenario.n_angles)))
    return tuple(
        DenseOperator(D)
        if k == "dense"
        else StructuredOperator(u, N, scenario.antenna_spacing, taps=taps, dtype=cdtype)
        for k, D, u in zip(kinds, dense, sines, strict=True)
    )


def for_batch(fast: list, kind: str, n_antennas: int, sizes: tuple[int, int], batch: int | None) -> list:
    """Of the structured operators ``fast`` (``[opA or None, opB or None]``, :func:`split`), those to use for a
    batch of ``batch`` samples: with ``kind="auto"`` where :func:`choose` picks structured at that batch
    (``batch=None``: at batch 1, e.g. for the step bounds), otherwise all of them."""
    if kind != "auto":
        return list(fast)
    b = 1 if batch is None else int(batch)
    return [
        f if f is not None and choose(n_antennas, P, b) == "structured" else None
        for f, P in zip(fast, sizes, strict=True)
    ]


def split(A: Any, B: Any, kind: str = "auto", scenario: Any = None, dtype: Any = "float32") -> tuple[Any, Any, list]:
    """Dense arrays of ``A``, ``B`` and their structured operators where ``kind`` asks for them.

    For :class:`daun_lib.daun.DAUN`, which keeps the dense dictionaries (its checkpoints sketch them)
    and computes with the structured operators.  ``A``, ``B``: arrays or operators (of ``scenario``
    when given); ``kind``: "auto" (:func:`choose` at batch 256), "dense" or "structured" (needs a
    scenario or structured operators).

    Returns
    -------
    A (M, N, K), B (M, N, L) dense, and ``[opA or None, opB or None]`` (the structured ones).
    """
    if kind not in KINDS + ("auto",):
        raise ValueError(f"operators: expected 'auto', 'dense' or 'structured', got {kind!r}")
    ops = [A, B]
    if scenario is not None and kind != "dense":
        ops = list(for_scenario(scenario, kind, 256, dtype=dtype))
    elif kind == "structured" and not any(getattr(D, "kind", "") == "structured" for D in ops):
        raise ValueError("operators: 'structured' needs a scenario (or StructuredOperator dictionaries A, B)")
    fast = [D if getattr(D, "kind", "") == "structured" and kind != "dense" else None for D in ops]
    return (*(D.dense() if is_operator(D) else D for D in (A, B)), fast)
