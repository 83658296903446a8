r"""The DAUN module of Sec. III-B: ``I`` unrolled P-ADMM iterations with learnable parameters.

:class:`DAUN` is exactly ``I`` unrolled iterations of :func:`daun_lib.admm.solve`
(the same :func:`daun_lib.admm.admm_layer`, the same per-sample RMS
normalisation of ``y``), with untied per-layer ``rho^(i), tau1^(i), tau2^(i)``
of (9)-(17) and per-BS weights ``w_m`` of (3) shared by all layers:
``3 I + M`` trainable numbers.  All of them are kept positive by a log
parameterisation (``rho = exp(log_rho)``; ``w_m = w_min + exp(log_w_m)`` with an
optional lower bound ``w_min``, 0 by default).  The model is complex-valued
(torch complex autograd): the paper's "real equivalent form" would change the
complex l1 and l2,1 norms.  With every parameter set to a P-ADMM setting the
network reproduces ``admm.solve`` with that setting (tested in float64 to 1e-10).

Shapes: ``y`` (n, M, N) complex (or (M, N) for one sample); the position
estimate ``X`` (n, K, M) and the NLoS part ``Z`` (n, L, M); positions (n, 2) in
metres.  Inside, the layers work batch-last: ``yt`` (M, N, n).

Saving and loading live in :mod:`daun_lib.daun.checkpoints`; :meth:`DAUN.save`,
:meth:`DAUN.load` and :meth:`DAUN.load_weights` call them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import _checks, _validation, admm
from .._devices import check_device
from .._validation import is_tensor, nonnegative, positive
from ..operators import for_batch, split
from ..refine import argmax_rows
from ..refine import refine as refine_rows
from ..scenario import Scenario

__all__ = ["DAUN"]


class DAUN(nn.Module):
    """The unfolded P-ADMM network: ``n_layers`` iterations with learnable parameters.

    Parameters
    ----------
    n_layers : int >= 1
        Number of unrolled iterations ``I``.
    n_bs : int, optional
        Number of base stations ``M``, checked against the dictionaries
        (default: taken from them).
    scenario : Scenario, optional
        Builds the dictionaries and the position grid (default: the paper's
        :class:`Scenario`, unless ``A`` and ``B`` are given).
    A, B : array_like, optional
        Your own dictionaries ``A`` (M, N, K) and ``B`` (M, N, L), instead of a
        scenario (give both, and no scenario).
    grid : array_like, optional
        (K, 2) positions of the columns of ``A`` (with ``A``, ``B`` only; a
        scenario brings its own grid).  Needed by :meth:`localize` only.
    device : torch device, optional
        Where the network computes ("cpu", "cuda").  Default CPU.
    dtype : "float32" (default) or "float64"
        Working precision (complex64 / complex128) and parameter precision.
    w_min : float >= 0
        Lower bound of the NLoS weights, ``w_m = w_min + exp(log_w_m)``
        (0: unconstrained positive weights, the paper's model).
    init : admm.ADMMParams, optional
        Initial parameters of every layer (default
        :func:`daun_lib.admm.default_params` of the dictionaries).
    operators : "auto" (default), "dense" or "structured"
        How the layers compute the products with ``A`` and ``B`` (:mod:`daun_lib.operators`): "auto"
        picks per call by :func:`daun_lib.operators.choose` at the call's batch (dense at the paper's
        scale, see :mod:`daun_lib.operators`); "structured" needs a scenario or
        ``StructuredOperator`` dictionaries.  The dense dictionaries are kept as buffers either way.

    Notes
    -----
    :meth:`from_scenario` and :meth:`from_dictionaries` are the same
    constructor with the inputs named.  The dictionaries are (non-persistent)
    buffers, so ``.to(device)`` moves them too.
    """

    def __init__(
        self,
        n_layers: int,
        n_bs: int | None = None,
        *,
        scenario: Scenario | None = None,
        A: Any = None,
        B: Any = None,
        grid: Any = None,
        device: Any = None,
        dtype: str = "float32",
        w_min: float = 0.0,
        init: admm.ADMMParams | None = None,
        operators: str = "auto",
    ) -> None:
        super().__init__()
        device = check_device(device, "device")
        n_layers = positive(n_layers, "n_layers", integer=True)
        if (A is None) != (B is None):
            raise ValueError("A, B: give both dictionaries (or neither, to build them from a scenario)")
        if A is None:
            if grid is not None:
                raise ValueError("grid: only with your own dictionaries A, B (a scenario brings its own grid)")
            if scenario is None:
                scenario = Scenario()
            _checks.check_scenario(scenario)
            A, B = scenario.dictionaries()
            grid = scenario.grid
        elif scenario is not None:
            raise ValueError("scenario: give either a scenario or the dictionaries A, B, not both")
        A, B, self._fast = split(*admm._check_dictionaries(A, B), operators, scenario, dtype)
        self._operators = operators
        M = int(A.shape[0])
        if n_bs is not None:
            n_bs = positive(n_bs, "n_bs", integer=True)
            if n_bs != M:
                raise ValueError(f"n_bs: expected {M} (the number of BSs of the dictionaries/scenario), got {n_bs}")
        rdtype, cdtype = admm.resolve_dtype(dtype)
        self.scenario = scenario
        self.dtype_name = "float64" if rdtype == torch.float64 else "float32"
        ops = admm.make_operators(A, B, cdtype, device)
        self.register_buffer("A", ops.A, persistent=False)
        self.register_buffer("AH", ops.AH, persistent=False)
        self.register_buffer("B", ops.B, persistent=False)
        self.register_buffer("BH", ops.BH, persistent=False)
        if grid is not None:
            g = np.asarray(grid, dtype=float)
            if g.shape != (A.shape[2], 2) or not np.isfinite(g).all():
                raise ValueError(f"grid: expected a finite ({A.shape[2]}, 2) array of cell positions, got {g.shape}")
            self.register_buffer("grid", torch.as_tensor(g, dtype=rdtype, device=ops.A.device), persistent=False)
        else:
            self.grid = None
        w_min = nonnegative(w_min, "w_min")
        self.register_buffer("w_min", torch.tensor(w_min, dtype=rdtype, device=ops.A.device))
        if init is not None and not isinstance(init, admm.ADMMParams):
            raise ValueError(f"init: expected an admm.ADMMParams, got {type(init).__name__}")
        self._init_params = init
        init = self._init
        w0 = np.broadcast_to(np.asarray(init.w, dtype=float), (M,))
        if (w0 <= w_min).any():
            raise ValueError(f"init: initial weights w must exceed w_min = {w_min}, got {w0}")
        dev = ops.A.device
        self.log_rho = nn.Parameter(torch.full((n_layers,), math.log(init.rho), dtype=rdtype, device=dev))
        self.log_tau1 = nn.Parameter(torch.full((n_layers,), math.log(init.tau1), dtype=rdtype, device=dev))
        self.log_tau2 = nn.Parameter(torch.full((n_layers,), math.log(init.tau2), dtype=rdtype, device=dev))
        self.log_w = nn.Parameter(torch.as_tensor(np.log(w0 - w_min), dtype=rdtype, device=dev).clone())
        self.meta: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []

    @classmethod
    def from_scenario(
        cls,
        scenario: Scenario,
        n_layers: int,
        *,
        device: Any = None,
        dtype: str = "float32",
        w_min: float = 0.0,
        init: admm.ADMMParams | None = None,
        operators: str = "auto",
    ) -> DAUN:
        """A network for the dictionaries and grid of ``scenario`` (``operators``: see :class:`DAUN`)."""
        _checks.check_scenario(scenario)
        kw = {"device": device, "dtype": dtype, "w_min": w_min, "init": init, "operators": operators}
        return cls(n_layers, scenario=scenario, **kw)

    @classmethod
    def from_dictionaries(
        cls,
        A: Any,
        B: Any,
        n_layers: int,
        *,
        grid: Any = None,
        device: Any = None,
        dtype: str = "float32",
        w_min: float = 0.0,
        init: admm.ADMMParams | None = None,
    ) -> DAUN:
        """A network for your own dictionaries ``A`` (M, N, K), ``B`` (M, N, L).

        ``grid`` (K, 2), the positions of the columns of ``A``, is needed by
        :meth:`localize` only.
        """
        return cls(n_layers, A=A, B=B, grid=grid, device=device, dtype=dtype, w_min=w_min, init=init)

    @property
    def _init(self) -> admm.ADMMParams:
        """Initial parameters of new layers (default: :func:`daun_lib.admm.default_params`, computed once)."""
        if self._init_params is None:
            A, B = (f or D.detach().cpu().numpy() for f, D in zip(self._fast_for(None), (self.A, self.B), strict=True))
            self._init_params = admm.default_params(A, B, w=1.0 + float(self.w_min))
        return self._init_params

    @property
    def n_layers(self) -> int:
        """Number of layers ``I``."""
        return int(self.log_rho.shape[0])

    @property
    def n_bs(self) -> int:
        """Number of BSs ``M``."""
        return int(self.A.shape[0])

    @property
    def shape(self) -> dict[str, int]:
        """Problem sizes ``M, N, K, L``."""
        return {
            "M": int(self.A.shape[0]),
            "N": int(self.A.shape[1]),
            "K": int(self.A.shape[2]),
            "L": int(self.B.shape[2]),
        }

    @property
    def device(self) -> torch.device:
        return self.A.device

    @property
    def rho(self) -> torch.Tensor:
        """(I,) penalty parameters ``rho^(i)``."""
        return self.log_rho.exp()

    @property
    def tau1(self) -> torch.Tensor:
        """(I,) proximal parameters ``tau1^(i)``."""
        return self.log_tau1.exp()

    @property
    def tau2(self) -> torch.Tensor:
        """(I,) proximal parameters ``tau2^(i)``."""
        return self.log_tau2.exp()

    @property
    def w(self) -> torch.Tensor:
        """(M,) NLoS weights ``w_m``."""
        return self.w_min + self.log_w.exp()

    def parameters_dict(self) -> dict[str, np.ndarray]:
        """The learned parameters as numpy arrays: ``rho``, ``tau1``, ``tau2`` (I,) and ``w`` (M,)."""
        with torch.no_grad():
            return {k: getattr(self, k).detach().cpu().double().numpy().copy() for k in ("rho", "tau1", "tau2", "w")}

    def set_parameters(self, rho: Any = None, tau1: Any = None, tau2: Any = None, w: Any = None) -> DAUN:
        """Set parameters (scalars or per-layer / per-BS arrays) to given positive values."""
        with torch.no_grad():
            for name, val, n in (
                ("rho", rho, self.n_layers),
                ("tau1", tau1, self.n_layers),
                ("tau2", tau2, self.n_layers),
                ("w", w, self.n_bs),
            ):
                if val is None:
                    continue
                arr = (
                    np.broadcast_to(np.asarray(val, dtype=float), (n,))
                    if np.ndim(val) == 0
                    else np.asarray(val, dtype=float)
                )
                if arr.shape != (n,) or not np.isfinite(arr).all():
                    raise ValueError(f"{name}: expected a finite scalar or a length-{n} vector, got shape {arr.shape}")
                if name == "w":
                    wmin = float(self.w_min)
                    if (arr <= wmin).any():
                        raise ValueError(f"w: expected weights above w_min = {wmin}, got {arr}")
                    arr = arr - wmin
                elif (arr <= 0).any():
                    raise ValueError(f"{name}: expected positive values, got {arr}")
                getattr(self, f"log_{name}").copy_(torch.as_tensor(np.log(arr)))
        return self

    def append_layer(self, init: admm.ADMMParams | None = None) -> None:
        """Append one layer initialised at ``init`` (default: the P-ADMM setting); layers 1..I keep their values."""
        init = init or self._init
        with torch.no_grad():
            for name, v in (("log_rho", init.rho), ("log_tau1", init.tau1), ("log_tau2", init.tau2)):
                old = getattr(self, name)
                new = torch.cat([old.detach(), torch.full((1,), math.log(v), dtype=old.dtype, device=old.device)])
                setattr(self, name, nn.Parameter(new))

    def truncate(self, n_layers: int) -> None:
        """Keep only the first ``n_layers`` layers."""
        n_layers = positive(n_layers, "n_layers", integer=True)
        if n_layers > self.n_layers:
            raise ValueError(f"n_layers: expected at most {self.n_layers}, got {n_layers}")
        with torch.no_grad():
            for name in ("log_rho", "log_tau1", "log_tau2"):
                setattr(self, name, nn.Parameter(getattr(self, name).detach()[:n_layers].clone()))

    def _fast_for(self, batch: int | None) -> list:
        """The structured operators for a batch of ``batch`` samples (:func:`daun_lib.operators.for_batch`)."""
        self._fast = [None if f is None else f.to(self.A.dtype, self.A.device) for f in self._fast]
        return for_batch(self._fast, self._operators, self.A.shape[1], (self.A.shape[2], self.B.shape[2]), batch)

    def _ops(self, batch: int | None = None) -> admm.Operators:
        """The dictionaries for ``batch`` samples; a structured operator where :meth:`_fast_for` gives one."""
        (fa, fb), d = self._fast_for(batch), (self.A, self.AH, self.B, self.BH)
        return admm.Operators(*(d[:2] if fa is None else (fa, fa.H)), *(d[2:] if fb is None else (fb, fb.H)))

    def _block_ops(self, batch: int | None = None) -> admm.BlockOperators:
        """Real block dictionaries for :func:`admm.run_inference`, cached per device/dtype and operator choice."""
        fast = tuple(f is not None for f in self._fast_for(batch))
        A, B = self.A, self.B
        key = (A.device, A.dtype, A.data_ptr(), A._version, B.data_ptr(), B._version, fast)
        cache = self.__dict__.setdefault("_block_cache", {})
        if key not in cache:
            cache.clear()  # one choice cached: a sweep sees one batch size
            cache[key] = admm.block_operators(self._ops(batch))
        return cache[key]

    def _cached(self, name: str, compute: Callable[[], Any]) -> Any:
        """A value derived from the dictionaries, computed once per dictionary buffer."""
        # data_ptr and the in-place version counter: a new or edited buffer gets new values
        key = (
            name,
            self.A.device,
            self.A.dtype,
            self.A.data_ptr(),
            self.A._version,
            self.B.data_ptr(),
            self.B._version,
            None if self.grid is None else (self.grid.data_ptr(), self.grid._version),
        )
        cache = self.__dict__.setdefault("_derived_cache", {})
        if key not in cache:
            cache[key] = compute()
        return cache[key]

    def operator_norms(self) -> tuple[float, float]:
        """``max_m ||A_m||_2^2`` and ``max_m ||B_m||_2^2`` of this network's dictionaries
        (the step bounds are ``tau1 < 1 / ||A||^2``, ``tau2 < 1 / ||B||^2``)."""

        def compute() -> tuple[float, float]:
            A, B = (
                f or D.detach().cpu().numpy().astype(np.complex128)
                for f, D in zip(self._fast_for(None), (self.A, self.B), strict=True)
            )
            return admm._max_spectral_norm_sq(A), admm._max_spectral_norm_sq(B)

        return self._cached("norms", compute)

    def infer(self, yt: torch.Tensor, *, track_residual: bool = False) -> admm.InferenceResult:
        """Inference on a prepared, batch-last ``yt`` (M, N, n): :meth:`run` without autograd.

        The same layers computed by :func:`daun_lib.admm.run_inference` (real
        arithmetic, in place); call it under ``torch.inference_mode()`` or
        ``torch.no_grad()``.
        """
        if not isinstance(yt, torch.Tensor) or yt.device != self.device or yt.dtype != self.A.dtype:
            raise ValueError(
                f"yt: expected a {self.A.dtype} tensor on {self.device} (use prepare(y)), got "
                f"{type(yt).__name__} {getattr(yt, 'dtype', '')} {getattr(yt, 'device', '')}"
            )
        rho, tau1, tau2 = (v.tolist() for v in (self.rho, self.tau1, self.tau2))
        batch = int(yt.shape[-1])
        return admm.iterate(
            self._ops(batch),
            yt,
            rho,
            tau1,
            tau2,
            self.w.detach(),
            track_residual=track_residual,
            block_ops=self._block_ops(batch),
        )

    def run(
        self, yt: torch.Tensor, n_layers: int | None = None, on_layer: Callable[[int, admm.State], None] | None = None
    ) -> admm.State:
        """Run the layers on an already prepared, batch-last ``yt`` (M, N, n) (autograd-friendly).

        ``on_layer(i, state)`` is called after every layer (e.g. to record the NMSE of Fig. 3).
        Returns the final :class:`admm.State`.
        """
        ops = self._ops(int(yt.shape[-1]))
        n = self.n_layers if n_layers is None else n_layers
        rho, tau1, tau2, w = self.rho, self.tau1, self.tau2, self.w
        st = admm.init_state(ops, yt)
        for i in range(n):
            st = admm.admm_layer(ops, yt, st, rho[i], tau1[i], tau2[i], w)
            if on_layer is not None:
                on_layer(i, st)
        return st

    def prepare(self, y: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Validated ``y`` (n, M, N) -> RMS-normalised batch-last tensor (M, N, n) and scales (n,)."""
        y = self._check_y(y)
        return admm.prepare_y(y, self.A.dtype, self.device, True)

    def forward(self, y: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``X`` (n, K, M) and ``Z`` (n, L, M) as tensors (differentiable w.r.t. the parameters)."""
        yt, scale = self.prepare(y)
        return admm.unpack(self.run(yt), scale)

    def _check_y(self, y: Any) -> Any:
        return _validation.signals(y, self.shape["M"], self.shape["N"], expected=" (samples, BSs, antennas)")

    def solve(self, y: Any, *, batch_size: int = 256) -> admm.ADMMResult:
        """Run the network: ``X`` (n, K, M), ``Z`` (n, L, M) and the NMSE after every layer (Fig. 3).

        Parameters
        ----------
        y : (n, M, N) or (M, N) complex, numpy array or tensor
        batch_size : int
            Samples per chunk (memory bound); the NMSE is over all samples.

        Returns
        -------
        admm.ADMMResult
            numpy arrays for numpy input, tensors for tensor input.
        """
        y = self._check_y(y)
        batch_size = positive(batch_size, "batch_size", integer=True)
        want_tensor = is_tensor(y)
        Xs, Zs = [], []
        num = torch.zeros(self.n_layers, dtype=torch.float64)
        den = torch.zeros((), dtype=torch.float64)
        with torch.inference_mode():
            for lo in range(0, y.shape[0], batch_size):
                yt, scale = admm.prepare_y(y[lo : lo + batch_size], self.A.dtype, self.device, True)
                # sums in float64: the squared scale of a tiny or huge y leaves the float32 range
                s2 = scale.double().square()
                den += ((yt.real.square() + yt.imag.square()).sum(dim=(0, 1)).double() * s2).sum().cpu()
                out = self.infer(yt, track_residual=True)
                num += (out.residual.double() * s2).sum(dim=1).cpu()
                X, Z = admm.unpack_xz(out.x, out.z, scale)
                Xs.append(X.contiguous())
                Zs.append(Z.contiguous())
            X = torch.cat(Xs) if len(Xs) > 1 else Xs[0]
            Z = torch.cat(Zs) if len(Zs) > 1 else Zs[0]
            nmse = (num / den.clamp_min(1e-300)).to(self.A.real.dtype)
        if want_tensor:
            return admm.ADMMResult(X.clone(), Z.clone(), nmse.to(self.device))
        return admm.ADMMResult(X.cpu().numpy(), Z.cpu().numpy(), nmse.numpy())

    def _x_chunks(self, y: Any, batch_size: int) -> Any:
        """Yield the last layer's ``X`` (b, K, M) numpy array of every chunk of ``batch_size`` samples."""
        with torch.inference_mode():
            for lo in range(0, y.shape[0], batch_size):
                yt, scale = admm.prepare_y(y[lo : lo + batch_size], self.A.dtype, self.device, True)
                out = self.infer(yt)
                yield admm.unpack_xz(out.x, out.z, scale)[0].cpu().numpy()

    def estimate_x(self, y: Any, *, batch_size: int = 256) -> np.ndarray:
        """Only the last layer's ``X`` (n, K, M) as a numpy array: :meth:`solve` without the
        per-layer NMSE bookkeeping."""
        y = self._check_y(y)
        batch_size = positive(batch_size, "batch_size", integer=True)
        Xs = list(self._x_chunks(y, batch_size))
        return np.concatenate(Xs) if len(Xs) > 1 else Xs[0]

    def localize(self, y: Any, refine: bool = True, *, batch_size: int = 256) -> np.ndarray:
        """Position estimates (n, 2) in metres.

        Parameters
        ----------
        y : (n, M, N) or (M, N) complex, numpy array or tensor
            Of the dictionaries' geometry: another geometry of the same shape cannot be told (issue 22 plans a check).
        refine : bool
            True (default): DAUN-R, Algorithm 1 (:func:`daun_lib.refine.refine`)
            on the last layer's ``X``; False: plain DAUN, ``argmax_k ||X[k, :]||``.
        batch_size : int
            Samples per chunk, run chunk by chunk: memory does not grow with ``n`` (the result does not depend on it).
        """
        if not isinstance(refine, (bool, np.bool_)):
            raise ValueError(f"refine: expected True or False, got {refine!r}")
        if self.grid is None:
            raise ValueError("localize: this network has no position grid (pass grid= to DAUN.from_dictionaries)")
        y = self._check_y(y)
        batch_size = positive(batch_size, "batch_size", integer=True)
        readout = refine_rows if refine else argmax_rows
        k = np.concatenate([readout(X) for X in self._x_chunks(y, batch_size)])
        return self.grid.detach().cpu().double().numpy()[k]

    def save(self, path: str | os.PathLike, **extra_meta: Any) -> Path:
        """Write the checkpoint (state dict + metadata + digest) atomically; returns the path.

        ``extra_meta`` (plain Python values: numbers, strings, lists, dicts) is
        stored under ``meta``; it may not replace the keys the checkpoint
        writes itself.  See :func:`daun_lib.daun.checkpoints.save`.
        """
        from . import checkpoints

        return checkpoints.save(self, path, **extra_meta)

    def load_weights(self, path: str | os.PathLike) -> DAUN:
        """Load a checkpoint into this network (layer count adapted); returns self.

        Raises ValueError when the file is damaged or crafted, is no DAUN
        checkpoint, or was trained for other dictionaries (the message names
        what differs); see :mod:`daun_lib.daun.checkpoints`.
        """
        from . import checkpoints

        return checkpoints.load_weights(self, path)

    @classmethod
    def load(
        cls, path: str | os.PathLike, *, scenario: Scenario | None = None, device: Any = None, dtype: str = "float32"
    ) -> DAUN:
        """Build a network from a checkpoint (:func:`daun_lib.daun.checkpoints.build`).

        ``scenario`` (default: the one stored in the checkpoint) is where the
        weights are used: one with other dictionaries (M, N, K, L, geometry)
        raises ValueError naming the field that differs.  Everything the file
        declares is checked before the dictionaries are built.
        """
        from . import checkpoints

        return checkpoints.build(cls, path, scenario=scenario, device=device, dtype=dtype)

    def extra_repr(self) -> str:
        s = self.shape
        return f"n_layers={self.n_layers}, M={s['M']}, N={s['N']}, K={s['K']}, L={s['L']}, dtype={self.dtype_name}"
