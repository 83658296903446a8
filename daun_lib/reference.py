r"""Problem (3) solved exactly with cvxpy: the reference optimum for one sample.

Problem (3) of the paper (Sec. II-B, "Problem Formulation"), for one sample::

    min_{X, z}  ||X||_{2,1} + sum_m w_m ||z_m||_1
    s.t.        y_m = A_m x_m + B_m z_m,   m = 1..M

with ``X = [x_1, ..., x_M]`` (K x M), ``||X||_{2,1}`` the sum of the l2 norms
of the rows of ``X`` and ``||z_m||_1`` the sum of the complex moduli of the
entries of ``z_m``.  This is the problem that P-ADMM (:mod:`daun_lib.admm`,
Sec. III-A) and DAUN solve approximately; this module gives its exact
optimum, e.g. to measure the convergence of P-ADMM, or as the slow
"convex solver" baseline of the paper's Remark 1/2 (MOSEK in the paper).

Noise-aware variant.  The equality constraint of (3) fits the noise.  With
``eps`` given, the constraint is relaxed as in Garcia et al. 2017 (the
paper's reference [9])::

    || y - A x - B z ||_2 <= eps        (all BSs stacked, A, B block diagonal)

Formulation.  cvxpy's complex support splits every complex entry into its real
and imaginary part and writes ``|x|`` as a 3-dimensional second-order cone,
then the row norm as another cone.  This module writes the real-equivalent
problem directly: one second-order cone of dimension ``2M + 1`` per row of
``X`` and one of dimension 3 per entry of ``z``.  It is the same problem
(the complex moduli and row norms are kept, not replaced by real l1 norms) and
gives Clarabel a smaller conic program (fewer cone constraints and variables
than cvxpy's complex splitting).

Reuse (DPP).  The problem is built once per dictionary pair and variant with
``y``, ``w`` (and ``eps``) as :class:`cvxpy.Parameter`, so cvxpy compiles it
once and later solves only substitute the new values.  The module-level
:func:`solve` keeps the built problems in a small LRU cache keyed on the
contents of ``A`` and ``B`` (see :func:`get_problem`).

Scaling.  Problem (3) is positively homogeneous in ``y`` (and ``eps``): each
sample is divided by its RMS value before the solve and the solution is
multiplied back, so the solver's tolerances act on an O(1) problem at every
SNR.  The returned ``X``, ``Z`` and ``value`` are in the original scale.

Cost.  Interior-point cost grows quickly with ``K`` and ``L``: at paper scale a
solve takes seconds (compilation only on the first solve of a problem; the
noise-aware variant is slower), orders of magnitude more than P-ADMM or DAUN
for one sample (the measured times are in ``results/table1.csv`` and the README).
"""

from __future__ import annotations

import functools
import hashlib
import time
import warnings
from collections import OrderedDict
from typing import Any, NamedTuple

import numpy as np

from . import admm
from ._validation import is_tensor, nonnegative

try:
    import cvxpy as cp
except ImportError:  # pragma: no cover - cvxpy is an optional dependency
    cp = None  # type: ignore[assignment]

__all__ = [
    "ReferenceResult",
    "ReferenceProblem",
    "solve",
    "get_problem",
    "clear_cache",
    "default_solver",
    "available_solvers",
]

#: Statuses accepted as a solution (anything else raises RuntimeError).
_OK_STATUSES = ("optimal", "optimal_inaccurate")
#: Number of built problems kept by :func:`get_problem`.
CACHE_SIZE = 8


class ReferenceResult(NamedTuple):
    """Output of :func:`solve`.

    Attributes
    ----------
    X : (K, M) complex128
        Optimal LoS gains of (3); row k is the candidate position k.
    Z : (L, M) complex128
        Optimal NLoS gains, column m is ``z_m``.
    value : float
        Optimal value of (3), ``||X||_{2,1} + sum_m w_m ||z_m||_1``, evaluated
        at the returned ``X`` and ``Z``.
    seconds : float
        Wall time of the cvxpy call (compilation included on the first solve
        of a problem, solver time only afterwards).
    status : str
        cvxpy status, ``"optimal"`` or ``"optimal_inaccurate"``.
    """

    X: np.ndarray
    Z: np.ndarray
    value: float
    seconds: float
    status: str


# ---------------------------------------------------------------------------
# solvers
# ---------------------------------------------------------------------------
def _require_cvxpy() -> None:
    if cp is None:  # pragma: no cover
        raise ImportError("daun_lib.reference needs cvxpy (pip install cvxpy clarabel)")


def available_solvers() -> list[str]:
    """Installed cvxpy solvers that handle second-order cones (usable for (3))."""
    _require_cvxpy()
    try:
        from cvxpy.reductions.solvers.defines import SOLVER_MAP_CONIC
    except ImportError:  # pragma: no cover - layout of older/newer cvxpy
        return list(cp.installed_solvers())
    out = []
    for name in cp.installed_solvers():
        cls = SOLVER_MAP_CONIC.get(name)
        if cls is not None and cp.constraints.SOC in getattr(cls, "SUPPORTED_CONSTRAINTS", ()):
            out.append(name)
    return out


@functools.lru_cache(maxsize=1)
def default_solver() -> str:
    """The default solver: MOSEK when it is installed and licensed, else Clarabel.

    MOSEK (the solver of the paper's reference [9]) is tried on a tiny
    second-order-cone problem once per process; a missing licence or any other
    failure falls back silently to Clarabel.
    """
    _require_cvxpy()
    if "MOSEK" in cp.installed_solvers():
        try:
            v = cp.Variable(2)
            p = cp.Problem(cp.Minimize(cp.norm(v, 2)), [cp.sum(v) == 1])
            p.solve(solver="MOSEK")
            if p.status == "optimal":
                return "MOSEK"
        except Exception:  # noqa: BLE001 - licence errors come in many types
            pass
    return "CLARABEL"


def _resolve_solver(solver: Any) -> str:
    if solver is None:
        return default_solver()
    if not isinstance(solver, str):
        raise ValueError(f"solver: expected a cvxpy solver name (str) or None, got {solver!r}")
    name = solver.upper()
    usable = available_solvers()
    if name not in usable:
        raise ValueError(
            f"solver: {solver!r} is not an installed cvxpy solver that handles second-order cones; "
            f"installed and usable: {usable}"
        )
    return name


# ---------------------------------------------------------------------------
# the problem
# ---------------------------------------------------------------------------
def _to_numpy(x: Any) -> np.ndarray:
    if is_tensor(x):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _check_sample(A: Any, B: Any, y: Any, w: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate one sample: returns ``y`` (M, N) complex128 and ``w`` (M,) float."""
    A, B, y_chk, w_arr = admm.check_problem(A, B, y, w)
    M, N = A.shape[0], A.shape[1]
    if w_arr is None:
        raise ValueError(f"w: expected a positive scalar or a length-{M} vector, got None")
    if y_chk.shape[0] != 1:
        raise ValueError(
            f"y: expected one sample of shape ({M}, {N}) or (1, {M}, {N}), got shape {tuple(y_chk.shape)}; "
            "solve each sample separately"
        )
    return _to_numpy(y_chk)[0].astype(np.complex128), w_arr


class ReferenceProblem:
    """Problem (3) for fixed dictionaries, built once and re-solved for new ``y``.

    Parameters
    ----------
    A : (M, N, K) complex
        LoS dictionaries, ``A[m]`` is ``A_m`` of (2)-(3).
    B : (M, N, L) complex
        NLoS dictionaries, ``B[m]`` is ``B_m``.
    noise_aware : bool
        False (default): the equality constraints of (3).  True: the
        constraint ``||y - A x - B z||_2 <= eps`` of the noise-aware variant
        (Garcia et al. 2017), ``eps`` given at each solve.

    Attributes
    ----------
    problem : cvxpy.Problem
        The parametrised (DPP) problem in RMS-normalised units.
    n_solves : int
        Number of completed calls of :meth:`solve`.
    compile_seconds : float or None
        cvxpy's compilation time of the last solve (small once the problem has
        been compiled for the solver in use).
    """

    def __init__(self, A: Any, B: Any, *, noise_aware: bool = False) -> None:
        _require_cvxpy()
        A, B = admm._check_dictionaries(A, B)
        self.A = np.ascontiguousarray(_to_numpy(A), dtype=np.complex128)
        self.B = np.ascontiguousarray(_to_numpy(B), dtype=np.complex128)
        self.noise_aware = bool(noise_aware)
        self.n_solves = 0
        self.compile_seconds: float | None = None
        self._build()

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(M, N, K, L)."""
        M, N, K = self.A.shape
        return M, N, K, self.B.shape[2]

    def _build(self) -> None:
        M, N, K, L = self.shape
        A, B = self.A, self.B
        self._Xr = cp.Variable((K, M), name="X_re")
        self._Xi = cp.Variable((K, M), name="X_im")
        self._Zr = cp.Variable((L, M), name="Z_re")
        self._Zi = cp.Variable((L, M), name="Z_im")
        self._yr = cp.Parameter((M, N), name="y_re")
        self._yi = cp.Parameter((M, N), name="y_im")
        self._w = cp.Parameter(M, nonneg=True, name="w")
        Xr, Xi, Zr, Zi = self._Xr, self._Xi, self._Zr, self._Zi

        # residual r_m = y_m - A_m x_m - B_m z_m, real and imaginary parts
        res = []
        for m in range(M):
            Ar, Ai, Br, Bi = A[m].real, A[m].imag, B[m].real, B[m].imag
            fit_re = Ar @ Xr[:, m] - Ai @ Xi[:, m] + Br @ Zr[:, m] - Bi @ Zi[:, m]
            fit_im = Ai @ Xr[:, m] + Ar @ Xi[:, m] + Bi @ Zr[:, m] + Br @ Zi[:, m]
            res.append((self._yr[m] - fit_re, self._yi[m] - fit_im))

        # ||X||_{2,1}: one cone of dimension 2M + 1 per row (complex row norm)
        x_term = cp.sum(cp.norm(cp.hstack([Xr, Xi]), 2, axis=1))
        # sum_m w_m ||z_m||_1 with complex moduli: cones of dimension 3
        z_abs = [cp.norm(cp.vstack([Zr[:, m], Zi[:, m]]), 2, axis=0) for m in range(M)]
        z_term = self._w @ cp.hstack([cp.sum(a) for a in z_abs])

        if self.noise_aware:
            self._eps = cp.Parameter(nonneg=True, name="eps")
            r = cp.hstack([part for pair in res for part in pair])
            constraints = [cp.norm(r, 2) <= self._eps]
        else:
            self._eps = None
            constraints = [part == 0 for pair in res for part in pair]
        self.problem = cp.Problem(cp.Minimize(x_term + z_term), constraints)

    def solve(self, y: Any, w: Any = 1.0, solver: str | None = None, *, eps: float | None = None) -> ReferenceResult:
        """Solve (3) (or its noise-aware variant) for one received signal.

        Parameters
        ----------
        y : (M, N) or (1, M, N) complex
            Received signals ``y_m`` of (2), one sample.
        w : float or (M,) float > 0
            NLoS weights ``w_m`` of (3).
        solver : str, optional
            Any installed cvxpy solver that handles second-order cones
            (:func:`available_solvers`); default :func:`default_solver`
            (MOSEK when licensed, else Clarabel).
        eps : float >= 0
            Noise bound of the noise-aware variant; required when the problem
            was built with ``noise_aware=True`` and not allowed otherwise.

        Returns
        -------
        ReferenceResult

        Raises
        ------
        ValueError
            Bad arguments (the message names the argument).
        RuntimeError
            The solver did not reach an optimal (or optimal-inaccurate) point.
        """
        M, N, K, L = self.shape
        y_arr, w_arr = _check_sample(self.A, self.B, y, w)
        if self.noise_aware:
            if eps is None:
                raise ValueError("eps: the noise-aware problem needs a noise bound eps >= 0")
            eps = nonnegative(eps, "eps")
        elif eps is not None:
            raise ValueError("eps: this problem has the equality constraints of (3); build it with noise_aware=True")
        name = _resolve_solver(solver)

        rms = float(np.linalg.norm(y_arr)) / np.sqrt(M * N)
        scale = rms if rms > 0 else 1.0
        yn = y_arr / scale
        self._yr.value = yn.real
        self._yi.value = yn.imag
        self._w.value = w_arr
        if self._eps is not None:
            self._eps.value = eps / scale

        t0 = time.perf_counter()
        try:
            self.problem.solve(solver=name)
        except cp.error.SolverError as exc:
            raise RuntimeError(f"reference.solve: solver {name} failed (status 'solver_error'): {exc}") from exc
        seconds = time.perf_counter() - t0
        self.compile_seconds = self.problem.compilation_time
        status = str(self.problem.status)
        if status not in _OK_STATUSES or self._Xr.value is None:
            raise RuntimeError(f"reference.solve: solver {name} returned status {status!r} (no optimal point)")
        if status != "optimal":
            warnings.warn(f"reference.solve: solver {name} returned status {status!r}", RuntimeWarning, stacklevel=2)
        X = (self._Xr.value + 1j * self._Xi.value) * scale
        Z = (self._Zr.value + 1j * self._Zi.value) * scale
        value = float(admm.objective(X, Z, w_arr))
        self.n_solves += 1
        return ReferenceResult(X, Z, value, seconds, status)


# ---------------------------------------------------------------------------
# cached module-level interface
# ---------------------------------------------------------------------------
_CACHE: OrderedDict[tuple, ReferenceProblem] = OrderedDict()


def _digest(a: np.ndarray) -> tuple:
    a = np.ascontiguousarray(a)
    return (a.shape, str(a.dtype), hashlib.blake2b(a.view(np.uint8).reshape(-1), digest_size=16).hexdigest())


def get_problem(A: Any, B: Any, *, noise_aware: bool = False) -> ReferenceProblem:
    """The built :class:`ReferenceProblem` for ``A``, ``B`` (cached).

    Problems are kept in an LRU cache of :data:`CACHE_SIZE` entries keyed on
    the contents (a hash) of ``A`` and ``B`` and on the variant, so repeated
    calls with the same dictionaries reuse the compiled cvxpy problem.

    Parameters
    ----------
    A : (M, N, K) complex
    B : (M, N, L) complex
    noise_aware : bool
        Which variant (see :class:`ReferenceProblem`).

    Returns
    -------
    ReferenceProblem
    """
    _require_cvxpy()
    A, B = admm._check_dictionaries(A, B)
    a = _to_numpy(A)
    b = _to_numpy(B)
    key = (_digest(a), _digest(b), bool(noise_aware))
    prob = _CACHE.get(key)
    if prob is None:
        prob = ReferenceProblem(a, b, noise_aware=noise_aware)
        _CACHE[key] = prob
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    return prob


def clear_cache() -> None:
    """Forget all problems built by :func:`get_problem`."""
    _CACHE.clear()


def solve(A: Any, B: Any, y: Any, w: Any, solver: str | None = None, *, eps: float | None = None) -> ReferenceResult:
    """Solve problem (3) for one sample with cvxpy (exact reference optimum).

    ``min ||X||_{2,1} + sum_m w_m ||z_m||_1  s.t.  y_m = A_m x_m + B_m z_m``
    (Sec. II-B, (3)); with ``eps`` the noise-aware variant
    ``||y - A x - B z||_2 <= eps`` (Garcia et al. 2017, the paper's [9]).

    Parameters
    ----------
    A : (M, N, K) complex, numpy array or tensor
        LoS dictionaries, ``A[m]`` is ``A_m``.
    B : (M, N, L) complex
        NLoS dictionaries, ``B[m]`` is ``B_m``.
    y : (M, N) or (1, M, N) complex
        Received signals of one sample.
    w : float or (M,) float > 0
        NLoS weights ``w_m``.
    solver : str, optional
        cvxpy solver name; default MOSEK when installed and licensed, else
        Clarabel.  Unknown or unsuitable names raise ``ValueError``.
    eps : float >= 0, optional
        Noise bound; selects the noise-aware variant.

    Returns
    -------
    ReferenceResult
        ``X`` (K, M), ``Z`` (L, M), optimal ``value``, wall ``seconds`` and
        solver ``status``.

    Raises
    ------
    ValueError
        Bad arguments: non-finite ``y``, mismatched shapes, bad ``w``,
        negative ``eps``, more than one sample, unknown ``solver``.
    RuntimeError
        The solver failed (status not optimal / optimal_inaccurate).

    Notes
    -----
    The cvxpy problem is built and compiled once per ``(A, B, variant)`` and
    reused (cvxpy DPP) by later calls; see :func:`get_problem`.
    """
    _check_sample(A, B, y, w)  # fail fast, before building a problem
    if eps is not None:
        eps = nonnegative(eps, "eps")
    _resolve_solver(solver)
    prob = get_problem(A, B, noise_aware=eps is not None)
    return prob.solve(y, w, solver, eps=eps)
