"""Tests of daun_lib.reference: problem (3) in cvxpy for one sample."""

from __future__ import annotations

import numpy as np
import pytest

cp = pytest.importorskip("cvxpy")
import scipy.linalg  # noqa: E402

from daun_lib import admm, reference  # noqa: E402
from daun_lib.scenario import Scenario  # noqa: E402


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def random_instance(seed: int, M: int, N: int, K: int, L: int):
    """Random complex Gaussian dictionaries with unit-norm columns, random y and w."""
    rng = np.random.default_rng(seed)

    def dic(cols):
        D = rng.standard_normal((M, N, cols)) + 1j * rng.standard_normal((M, N, cols))
        return D / np.linalg.norm(D, axis=1, keepdims=True)

    A, B = dic(K), dic(L)
    y = rng.standard_normal((M, N)) + 1j * rng.standard_normal((M, N))
    w = rng.uniform(0.5, 2.0, M)
    return A, B, y, w


def scenario_instance(seed: int):
    """A small paper-like scenario: LoS at a random position plus noise."""
    sc = Scenario(n_antennas=8, grid_shape=(4, 4), n_angles=12)
    A, B = sc.dictionaries()
    rng = np.random.default_rng(seed)
    k = rng.integers(sc.n_grid)
    g = np.exp(2j * np.pi * rng.random(sc.n_bs))
    y = 3.0 * g[:, None] * A[:, :, k] + (rng.standard_normal(A.shape[:2]) + 1j * rng.standard_normal(A.shape[:2])) / 2
    return A, B, y, 1.0


def independent_value(A, B, y, w, eps=None):
    """Problem (3) stated independently: complex variables, block-diagonal operators of (4)."""
    M, N, K = A.shape
    L = B.shape[2]
    w = np.broadcast_to(np.asarray(w, dtype=float), (M,))
    Abig = scipy.linalg.block_diag(*A)  # (M N, M K), acts on x = vec(X)
    Bbig = scipy.linalg.block_diag(*B)  # (M N, M L), acts on z = [z_1; ...; z_M]
    x = cp.Variable(M * K, complex=True)
    z = cp.Variable(M * L, complex=True)
    X = cp.reshape(x, (K, M), order="F")
    Zm = cp.reshape(z, (L, M), order="F")
    obj = cp.sum(cp.norm(X, 2, axis=1)) + cp.sum(cp.abs(Zm) @ w)
    r = y.reshape(-1) - Abig @ x - Bbig @ z
    cons = [r == 0] if eps is None else [cp.norm(r, 2) <= eps]
    prob = cp.Problem(cp.Minimize(obj), cons)
    prob.solve(solver="CLARABEL")
    assert prob.status == "optimal"
    return prob.value


def residual(A, B, y, X, Z):
    return np.linalg.norm(y - np.einsum("mnk,km->mn", A, X) - np.einsum("mnl,lm->mn", B, Z))


# ---------------------------------------------------------------------------
# correctness
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "seed, M, N, K, L",
    [(0, 2, 6, 10, 8), (1, 3, 8, 15, 8), (2, 3, 7, 12, 8), (3, 2, 8, 14, 8)],
)
def test_matches_independent_formulation(seed, M, N, K, L):
    A, B, y, w = random_instance(seed, M, N, K, L)
    res = reference.solve(A, B, y, w)
    assert res.status == "optimal"
    assert res.X.shape == (K, M) and res.Z.shape == (L, M)
    assert np.iscomplexobj(res.X) and np.iscomplexobj(res.Z)
    ref = independent_value(A, B, y, w)
    assert res.value == pytest.approx(ref, rel=1e-6)
    # the returned point is feasible and attains the returned value
    assert residual(A, B, y, res.X, res.Z) <= 1e-6 * np.linalg.norm(y)
    assert res.value == pytest.approx(float(admm.objective(res.X, res.Z, w)), rel=1e-12)
    assert res.seconds > 0


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_on_scenario(seed):
    A, B, y, w = scenario_instance(seed)
    res = reference.solve(A, B, y, w)
    assert res.value == pytest.approx(independent_value(A, B, y, w), rel=1e-6)
    assert residual(A, B, y, res.X, res.Z) <= 1e-6 * np.linalg.norm(y)


def test_batched_single_sample_and_torch_inputs():
    torch = pytest.importorskip("torch")
    A, B, y, w = random_instance(5, 2, 6, 10, 8)
    r0 = reference.solve(A, B, y, w)
    r1 = reference.solve(A, B, y[None], w)
    r2 = reference.solve(torch.as_tensor(A), torch.as_tensor(B), torch.as_tensor(y), torch.as_tensor(w))
    assert r1.value == pytest.approx(r0.value, rel=1e-9)
    assert r2.value == pytest.approx(r0.value, rel=1e-9)
    assert isinstance(r2.X, np.ndarray)


def test_scalar_w_equals_vector_w_and_homogeneity():
    A, B, y, _ = random_instance(6, 3, 6, 10, 8)
    a = reference.solve(A, B, y, 1.5)
    b = reference.solve(A, B, y, np.full(3, 1.5))
    assert a.value == pytest.approx(b.value, rel=1e-9)
    # (3) is positively homogeneous in y
    c = reference.solve(A, B, 1e3 * y, 1.5)
    assert c.value == pytest.approx(1e3 * a.value, rel=1e-6)


def test_zero_signal_gives_zero_solution():
    A, B, y, w = random_instance(7, 2, 6, 10, 8)
    res = reference.solve(A, B, np.zeros_like(y), w)
    assert abs(res.value) < 1e-8
    assert np.abs(res.X).max() < 1e-8 and np.abs(res.Z).max() < 1e-8


# ---------------------------------------------------------------------------
# noise-aware variant
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noise_aware_variant(seed):
    A, B, y, w = random_instance(seed, 3, 8, 12, 8)
    eq = reference.solve(A, B, y, w)
    eps = 0.3 * np.linalg.norm(y)
    na = reference.solve(A, B, y, w, eps=eps)
    assert residual(A, B, y, na.X, na.Z) <= eps * (1 + 1e-6)
    assert na.value <= eq.value * (1 + 1e-8)
    assert na.value < eq.value  # the constraint is active: strictly better
    assert na.value == pytest.approx(independent_value(A, B, y, w, eps=eps), rel=1e-6)


def test_noise_aware_limits():
    A, B, y, w = random_instance(3, 2, 6, 10, 8)
    eq = reference.solve(A, B, y, w)
    # eps = 0 is the equality-constrained problem
    assert reference.solve(A, B, y, w, eps=0.0).value == pytest.approx(eq.value, rel=1e-5)
    # eps >= ||y||: X = 0, z = 0 is feasible and optimal
    big = reference.solve(A, B, y, w, eps=1.01 * np.linalg.norm(y))
    assert abs(big.value) < 1e-6 * eq.value


# ---------------------------------------------------------------------------
# DPP reuse
# ---------------------------------------------------------------------------
def test_problem_is_built_once_and_reused():
    A, B, y, w = random_instance(11, 3, 7, 13, 8)  # fresh dictionaries: not in the cache yet
    rng = np.random.default_rng(0)
    rp = reference.get_problem(A, B)
    assert reference.get_problem(A.copy(), B.copy()) is rp  # keyed on contents, not identity
    cvx_problem = rp.problem
    r1 = reference.solve(A, B, y, w)
    first_compile = rp.compile_seconds
    y2 = rng.standard_normal(y.shape) + 1j * rng.standard_normal(y.shape)
    r2 = reference.solve(A, B, y2, w)
    assert reference.get_problem(A, B) is rp
    assert rp.problem is cvx_problem
    assert rp.n_solves == 2
    assert r2.value != pytest.approx(r1.value, rel=1e-3)  # the new y was used ...
    assert r2.value == pytest.approx(independent_value(A, B, y2, w), rel=1e-6)  # ... correctly
    # the second solve took cvxpy's cached (DPP) path: no recompilation
    assert rp.compile_seconds < 0.5 * first_compile
    # the noise-aware variant is a different problem
    assert reference.get_problem(A, B, noise_aware=True) is not rp


def test_problem_class_direct_use():
    A, B, y, w = random_instance(12, 2, 6, 10, 8)
    rp = reference.ReferenceProblem(A, B, noise_aware=True)
    assert rp.shape == (2, 6, 10, 8)
    res = rp.solve(y, w, eps=0.5)
    assert residual(A, B, y, res.X, res.Z) <= 0.5 * (1 + 1e-6)
    with pytest.raises(ValueError, match="eps"):
        rp.solve(y, w)  # noise-aware needs eps
    with pytest.raises(ValueError, match="eps"):
        reference.ReferenceProblem(A, B).solve(y, w, eps=0.5)


# ---------------------------------------------------------------------------
# solvers and failures
# ---------------------------------------------------------------------------
def test_solver_choice():
    A, B, y, w = random_instance(13, 2, 6, 10, 8)
    assert reference.default_solver() in reference.available_solvers()
    clar = reference.solve(A, B, y, w, solver="clarabel")
    if "SCS" in reference.available_solvers():
        scs = reference.solve(A, B, y, w, solver="SCS")
        assert scs.value == pytest.approx(clar.value, rel=1e-3)


@pytest.mark.parametrize("solver", ["NOT_A_SOLVER", 3, "OSQP"])
def test_bad_solver(solver):
    A, B, y, w = random_instance(13, 2, 6, 10, 8)
    with pytest.raises(ValueError, match="solver"):
        reference.solve(A, B, y, w, solver=solver)


def test_solver_failure_raises():
    # both dictionaries miss the last antenna, y does not: (3) is infeasible
    A, B, y, w = random_instance(14, 2, 6, 10, 8)
    A[:, -1, :] = 0
    B[:, -1, :] = 0
    with pytest.raises(RuntimeError, match="infeasible|solver"):
        reference.solve(A, B, y, w)


# ---------------------------------------------------------------------------
# bad inputs
# ---------------------------------------------------------------------------
def _bad_cases():
    A, B, y, w = random_instance(20, 2, 6, 10, 8)
    y_nan = y.copy()
    y_nan[0, 1] = np.nan
    y_inf = y.copy()
    y_inf[1, 0] = np.inf
    return [
        ("y", dict(y=y_nan)),
        ("y", dict(y=y_inf)),
        ("y", dict(y=y[:, :5])),  # N mismatch
        ("y", dict(y=np.stack([y, y]))),  # two samples
        ("y", dict(y=y[0])),  # 1-D
        ("A, B", dict(B=B[:1])),  # M mismatch
        ("A, B", dict(B=B[:, :5])),  # N mismatch
        ("A", dict(A=A[0])),  # 2-D
        ("w", dict(w=np.ones(3))),
        ("w", dict(w=-1.0)),
        ("w", dict(w=np.array([1.0, np.nan]))),
        ("w", dict(w=None)),
        ("eps", dict(eps=-0.1)),
        ("eps", dict(eps=float("nan"))),
    ]


@pytest.mark.parametrize("name, change", _bad_cases())
def test_bad_inputs(name, change):
    A, B, y, w = random_instance(20, 2, 6, 10, 8)
    kw = dict(A=A, B=B, y=y, w=w)
    kw.update(change)
    with pytest.raises(ValueError, match=name.split(",")[0]):
        reference.solve(**kw)
