"""Tests of daun_lib.admm: the proximal steps (12), (17) and P-ADMM, (5)-(17)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from daun_lib import admm
from daun_lib.scenario import Scenario

#: A penalty that converges within a test budget on the small instances below
#: (the optimum of (3) does not depend on rho; see the rho study in the report).
TEST_RHO = 0.3


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def crandn(rng, *shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def gaussian_instance(seed: int, M: int = 3, N: int = 8, K: int = 15, L: int = 8):
    rng = np.random.default_rng(seed)
    A = crandn(rng, M, N, K)
    B = crandn(rng, M, N, L)
    A /= np.linalg.norm(A, axis=1, keepdims=True)
    B /= np.linalg.norm(B, axis=1, keepdims=True)
    return A, B, crandn(rng, M, N), rng.uniform(0.5, 2.0, M)


def scenario_instance(seed: int):
    sc = Scenario(n_antennas=8, grid_shape=(4, 4), n_angles=12)
    A, B = sc.dictionaries()
    rng = np.random.default_rng(seed)
    return A, B, crandn(rng, *A.shape[:2]), 1.0


def residual(A, B, y, X, Z):
    return np.linalg.norm(y - np.einsum("mnk,km->mn", A, X) - np.einsum("mnl,lm->mn", B, Z))


# ---------------------------------------------------------------------------
# (12): group soft threshold of the rows of X
# ---------------------------------------------------------------------------
def _rows_with_both_cases(seed, M=4, K=40, n=3):
    """Random complex C (M, K, n) whose row norms straddle lam = 1."""
    rng = np.random.default_rng(seed)
    C = crandn(rng, M, K, n)
    C *= rng.uniform(0.1, 2.5, (1, K, n)) / np.linalg.norm(C, axis=0, keepdims=True)
    return C, 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_row_shrink_closed_form(seed):
    C, lam = _rows_with_both_cases(seed)
    X = admm.row_shrink(torch.as_tensor(C), lam).numpy()
    norms = np.linalg.norm(C, axis=0, keepdims=True)  # a "row" of X is C[:, k, b]
    expect = np.maximum(norms - lam, 0.0) / norms * C
    np.testing.assert_allclose(X, expect, rtol=0, atol=1e-14)
    # lam as a 0-d tensor (as DAUN passes it)
    X2 = admm.row_shrink(torch.as_tensor(C), torch.tensor(lam, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(X2, expect, rtol=0, atol=1e-14)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_row_shrink_optimality(seed):
    """0 in x - c + lam d||x||: x - c + lam x/||x|| = 0 (x != 0), ||c|| <= lam (x = 0)."""
    C, lam = _rows_with_both_cases(seed)
    X = admm.row_shrink(torch.as_tensor(C), lam).numpy()
    cn = np.linalg.norm(C, axis=0)
    xn = np.linalg.norm(X, axis=0)
    active = cn > lam
    assert active.any() and (~active).any()
    g = X - C + lam * X / np.where(xn > 0, xn, 1.0)
    assert np.abs(g[:, active]).max() < 1e-13
    assert np.all(X[:, ~active] == 0)
    assert np.all(cn[~active] <= lam)
    # the prox value is not beaten by random nearby points
    rng = np.random.default_rng(seed)
    f = lambda x: 0.5 * np.sum(np.abs(x - C) ** 2, axis=0) + lam * np.linalg.norm(x, axis=0)  # noqa: E731
    for _ in range(20):
        P = X + 1e-3 * crandn(rng, *X.shape)
        assert np.all(f(P) >= f(X) - 1e-12)


def test_row_shrink_zero_rows_are_finite():
    C = torch.zeros(3, 5, 2, dtype=torch.complex128)
    C[:, 0, 0] = torch.tensor([1e-20, 0, 0])
    X = admm.row_shrink(C, 0.5)
    assert torch.isfinite(X.real).all() and torch.isfinite(X.imag).all()
    assert (X == 0).all()


# ---------------------------------------------------------------------------
# (17): complex soft threshold of the entries of z
# ---------------------------------------------------------------------------
def _entries_with_both_cases(seed, M=4, L=30, n=3):
    rng = np.random.default_rng(seed)
    D = crandn(rng, M, L, n)
    D *= rng.uniform(0.05, 3.0, D.shape) / np.abs(D)
    lam = rng.uniform(0.5, 1.5, (M, 1, 1))  # lambda2 * w_m, one per BS
    return D, lam


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_soft_shrink_closed_form(seed):
    D, lam = _entries_with_both_cases(seed)
    Zt = admm.soft_shrink(torch.as_tensor(D), torch.as_tensor(lam)).numpy()
    mag = np.abs(D)
    expect = np.maximum(mag - lam, 0.0) * D / mag
    np.testing.assert_allclose(Zt, expect, rtol=0, atol=1e-14)
    nz = Zt != 0
    # the complex shrink keeps the phase and reduces the modulus by lam
    np.testing.assert_allclose(np.angle(Zt[nz]), np.angle(D[nz]), atol=1e-12)
    np.testing.assert_allclose(np.abs(Zt)[nz], (mag - lam * np.ones_like(mag))[nz], atol=1e-13)


def test_soft_shrink_real_input_is_the_real_soft_threshold():
    d = np.array([-3.0, -1.0, -0.2, 0.0, 0.4, 0.9, 2.5])
    z = admm.soft_shrink(torch.as_tensor(d + 0j).reshape(1, -1, 1), 0.5).numpy().ravel()
    np.testing.assert_allclose(z, np.sign(d) * np.maximum(np.abs(d) - 0.5, 0.0), atol=1e-15)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_soft_shrink_optimality(seed):
    """Per entry: x - d + lam x/|x| = 0 (x != 0), else x = 0 and |d| <= lam."""
    D, lam = _entries_with_both_cases(seed)
    Zt = admm.soft_shrink(torch.as_tensor(D), torch.as_tensor(lam)).numpy()
    lam_full = np.broadcast_to(lam, D.shape)
    active = np.abs(D) > lam_full
    assert active.any() and (~active).any()
    g = Zt - D + lam_full * Zt / np.where(Zt != 0, np.abs(Zt), 1.0)
    assert np.abs(g[active]).max() < 1e-13
    assert np.all(Zt[~active] == 0)


def test_soft_shrink_against_numeric_minimisation():
    """Brute force: argmin_x lam |x| + |x - d|^2 / 2 over complex x, by scipy."""
    scipy_optimize = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(7)
    cases = [(1.3 - 0.4j, 0.5), (-0.2 + 0.1j, 0.5), (0.0 + 2.0j, 1.7), (-2.0 - 2.0j, 0.3), (0.6 + 0.0j, 0.6 + 1e-3)]
    opts = {"xatol": 1e-10, "fatol": 1e-14, "maxiter": 4000}
    for d, lam in cases:

        def f(v, d=d, lam=lam):
            return lam * np.hypot(v[0], v[1]) + 0.5 * ((v[0] - d.real) ** 2 + (v[1] - d.imag) ** 2)

        best = None
        for x0 in ([d.real, d.imag], [0.0, 0.0], rng.standard_normal(2)):
            r = scipy_optimize.minimize(f, x0, method="Nelder-Mead", options=opts)
            best = r if best is None or r.fun < best.fun else best
        z = admm.soft_shrink(torch.tensor([[[d]]], dtype=torch.complex128), lam).item()
        assert abs(z - complex(best.x[0], best.x[1])) < 1e-6
        assert f([z.real, z.imag]) <= best.fun + 1e-12


# ---------------------------------------------------------------------------
# P-ADMM reaches the optimum of (3)
# ---------------------------------------------------------------------------
def _reference_value(A, B, y, w):
    reference = pytest.importorskip("daun_lib.reference")
    pytest.importorskip("cvxpy")
    return reference.solve(A, B, y, w).value


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize(
    "make, seed",
    [(scenario_instance, 0), (scenario_instance, 1), (gaussian_instance, 0), (gaussian_instance, 1)],
)
def test_admm_reaches_cvxpy_optimum(make, seed, normalize):
    A, B, y, w = make(seed)
    ref = _reference_value(A, B, y, w)
    p = admm.default_params(A, B)
    res = admm.solve(A, B, y, TEST_RHO, p.tau1, p.tau2, w, 3000, dtype="float64", normalize=normalize)
    X, Z = res.X[0], res.Z[0]
    gap = abs(float(admm.objective(X, Z, w)) - ref) / ref
    assert gap < 1e-4
    assert residual(A, B, y, X, Z) / np.linalg.norm(y) < 1e-5


def test_admm_default_params_converge_on_small_instance():
    """The package defaults (whatever rho they use) also reach the optimum, given enough iterations."""
    A, B, y, w = scenario_instance(2)
    ref = _reference_value(A, B, y, w)
    p = admm.default_params(A, B, w=w)
    res = admm.solve(A, B, y, **p.as_kwargs(), iterations=6000, dtype="float64")
    gap = abs(float(admm.objective(res.X[0], res.Z[0], w)) - ref) / ref
    assert gap < 1e-4
    assert residual(A, B, y, res.X[0], res.Z[0]) / np.linalg.norm(y) < 1e-5


def test_default_params_follow_the_convergence_bound():
    A, B, _, _ = gaussian_instance(3)
    p = admm.default_params(A, B, w=2.0)
    na = max(np.linalg.norm(A[m], 2) ** 2 for m in range(A.shape[0]))
    nb = max(np.linalg.norm(B[m], 2) ** 2 for m in range(B.shape[0]))
    assert p.tau1 == pytest.approx(admm.DEFAULT_STEP_FRACTION / na)
    assert p.tau2 == pytest.approx(admm.DEFAULT_STEP_FRACTION / nb)
    assert p.rho == admm.DEFAULT_RHO and p.w == (2.0,) * A.shape[0]


def test_default_params_unpack_with_double_star_and_as_kwargs():
    A, B, _, _ = gaussian_instance(4)
    p = admm.default_params(A, B)
    Y = crandn(np.random.default_rng(4), 3, *A.shape[:2])
    assert dict(**p) == p.as_kwargs() == {"rho": p.rho, "tau1": p.tau1, "tau2": p.tau2, "w": p.w}
    assert list(p.keys()) == ["rho", "tau1", "tau2", "w"] and p["tau1"] == p.tau1
    with pytest.raises(KeyError):
        p["iterations"]
    r1 = admm.solve(A, B, Y, iterations=20, **p)
    r2 = admm.solve(A, B, Y, iterations=20, **p.as_kwargs())
    for a, b in zip(r1, r2, strict=True):
        np.testing.assert_array_equal(a, b)


def test_public_names():
    for name in admm.__all__:
        assert hasattr(admm, name), name
    for name in (
        "prepare_y",
        "iterate",
        "run_inference",
        "admm_layer",
        "init_state",
        "unpack",
        "unpack_xz",
        "make_operators",
        "block_operators",
        "default_params",
        "resolve_dtype",
        "energy",
        "_check_dictionaries",
        "_max_spectral_norm_sq",
        "DivergenceError",
    ):
        assert hasattr(admm, name), name


# ---------------------------------------------------------------------------
# batching, array types, precision, nmse
# ---------------------------------------------------------------------------
def _batch(seed=0, n=4):
    A, B, _, w = gaussian_instance(seed)
    rng = np.random.default_rng(seed + 100)
    Y = crandn(rng, n, *A.shape[:2]) * rng.uniform(0.1, 10.0, (n, 1, 1))  # very different scales
    return A, B, Y, w


@pytest.mark.parametrize("seed, n", [(0, 1), (1, 5), (2, 40)])
def test_run_inference_equals_admm_layer(seed, n):
    """The in-place real-block iteration equals the autograd complex one, layer by layer (float64)."""
    A, B, _, w = gaussian_instance(seed)
    rng = np.random.default_rng(seed + 50)
    Y = crandn(rng, n, *A.shape[:2])
    p = admm.default_params(A, B)
    layers = 7
    rho = list(rng.uniform(0.05, 3.0, layers))  # a different setting in every layer, as in DAUN
    tau1 = list(p.tau1 * rng.uniform(0.3, 1.0, layers))
    tau2 = list(p.tau2 * rng.uniform(0.3, 1.0, layers))
    ops = admm.make_operators(A, B, torch.complex128)
    yt, _ = admm.prepare_y(Y, torch.complex128, "cpu", normalize=True)
    wt = torch.as_tensor(w)
    st = admm.init_state(ops, yt)
    res = []
    for i in range(layers):
        st = admm.admm_layer(ops, yt, st, rho[i], tau1[i], tau2[i], wt)
        r = yt - st.Ax - st.Bz
        res.append((r.real.square() + r.imag.square()).sum(dim=(0, 1)))
    out = admm.run_inference(admm.block_operators(ops), yt, rho, tau1, tau2, w, track_residual=True)
    assert out.x.shape == st.x.shape and out.z.shape == st.z.shape
    assert torch.count_nonzero(st.x) > 0 and torch.count_nonzero(st.z) > 0  # nothing trivially zero
    assert (out.x - st.x).abs().max() < 1e-12 * st.x.abs().max()
    assert (out.z - st.z).abs().max() < 1e-12 * st.z.abs().max()
    np.testing.assert_allclose(out.residual.numpy(), torch.stack(res).numpy(), rtol=1e-10)
    assert admm.run_inference(admm.block_operators(ops), yt, rho, tau1, tau2, w).residual is None


@pytest.mark.parametrize(
    "change, name",
    [
        (dict(yt="real"), "yt"),
        (dict(yt="shape"), "yt"),
        (dict(rho=[]), "rho"),
        (dict(tau1=[0.1, -1.0]), "tau1"),
        (dict(tau2=[0.1]), "rho, tau1, tau2"),
        (dict(w=[1.0]), "w"),
        (dict(w=[1.0, float("nan"), 1.0]), "w"),
        (dict(rho=0.5), "rho"),
    ],
)
@pytest.mark.parametrize("runner", ["run_inference", "run_small_batch_numpy"])
def test_inference_bad_inputs(change, name, runner):
    A, B, Y, w = gaussian_instance(0)
    ops = admm.make_operators(A, B, torch.complex128)
    yt, _ = admm.prepare_y(Y[None], torch.complex128, "cpu", normalize=True)
    kw = dict(yt=yt, rho=[0.5, 0.5], tau1=[0.01, 0.01], tau2=[0.05, 0.05], w=w)
    kw.update(change)
    if kw["yt"] == "real":
        kw["yt"] = yt.real
    elif kw["yt"] == "shape":
        kw["yt"] = yt[:, :-1]
    first = admm.block_operators(ops) if runner == "run_inference" else ops
    with pytest.raises(ValueError, match=name):
        getattr(admm, runner)(first, kw.pop("yt"), kw.pop("rho"), kw.pop("tau1"), kw.pop("tau2"), kw.pop("w"))


def test_real_block_maps_real_imag_stacks():
    rng = np.random.default_rng(9)
    D = torch.as_tensor(crandn(rng, 2, 3, 5))
    v = torch.as_tensor(crandn(rng, 2, 5, 4))
    Db = admm.real_block(D)
    assert Db.shape == (2, 6, 10) and not Db.is_complex()
    out = Db @ torch.cat([v.real, v.imag], dim=1)
    ref = D @ v
    assert torch.allclose(out, torch.cat([ref.real, ref.imag], dim=1), atol=1e-12)


@pytest.mark.parametrize("normalize", [True, False])
def test_batch_equals_single_samples(normalize):
    A, B, Y, w = _batch()
    p = admm.default_params(A, B)
    kw = dict(rho=TEST_RHO, tau1=p.tau1, tau2=p.tau2, w=w, iterations=50, dtype="float64", normalize=normalize)
    full = admm.solve(A, B, Y, **kw)
    assert full.X.shape == (Y.shape[0], A.shape[2], A.shape[0])
    assert full.Z.shape == (Y.shape[0], B.shape[2], A.shape[0])
    for i in range(Y.shape[0]):
        one = admm.solve(A, B, Y[i], **kw)  # (M, N) input: a batch of one
        assert one.X.shape == (1,) + full.X.shape[1:]
        np.testing.assert_allclose(one.X[0], full.X[i], rtol=1e-10, atol=1e-12 * np.abs(full.X[i]).max())
        np.testing.assert_allclose(one.Z[0], full.Z[i], rtol=1e-10, atol=1e-12 * np.abs(full.Z[i]).max())


def test_numpy_in_numpy_out_torch_in_torch_out():
    A, B, Y, w = _batch(1, n=2)
    p = admm.default_params(A, B)
    kw = dict(rho=TEST_RHO, tau1=p.tau1, tau2=p.tau2, w=w, iterations=20, dtype="float64")
    r_np = admm.solve(A, B, Y, **kw)
    assert all(isinstance(a, np.ndarray) for a in r_np)
    assert r_np.X.dtype == np.complex128 and r_np.nmse.dtype == np.float64
    r_t = admm.solve(torch.as_tensor(A), torch.as_tensor(B), torch.as_tensor(Y), **kw)
    assert all(isinstance(a, torch.Tensor) for a in r_t)
    np.testing.assert_allclose(r_t.X.numpy(), r_np.X, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(r_t.nmse.numpy(), r_np.nmse, rtol=1e-12)
    # numpy y with tensor dictionaries still gives numpy out; float32 gives complex64
    r_mix = admm.solve(torch.as_tensor(A), B, Y, **{**kw, "dtype": "float32"})
    assert isinstance(r_mix.X, np.ndarray) and r_mix.X.dtype == np.complex64


def test_float32_matches_float64_roughly():
    A, B, Y, w = _batch(2, n=3)
    p = admm.default_params(A, B)
    kw = dict(rho=TEST_RHO, tau1=p.tau1, tau2=p.tau2, w=w, iterations=300)
    r32 = admm.solve(A, B, Y, dtype="float32", **kw)
    r64 = admm.solve(A, B, Y, dtype="float64", **kw)
    scale = np.abs(r64.X).max()
    assert np.abs(r32.X - r64.X).max() < 1e-3 * scale
    assert np.abs(r32.Z - r64.Z).max() < 1e-3 * np.abs(r64.Z).max()
    np.testing.assert_allclose(r32.nmse, r64.nmse, rtol=1e-2, atol=1e-6)


@pytest.mark.parametrize("normalize", [True, False])
def test_nmse_length_and_eventual_decrease(normalize):
    A, B, Y, w = _batch(3, n=3)
    p = admm.default_params(A, B)
    its = 800
    res = admm.solve(A, B, Y, TEST_RHO, p.tau1, p.tau2, w, its, dtype="float64", normalize=normalize)
    nmse = res.nmse
    assert nmse.shape == (its,)
    assert np.all(np.isfinite(nmse)) and np.all(nmse >= 0)
    # the nmse reported is the batch residual of the returned estimate
    r = Y - np.einsum("mnk,bkm->bmn", A, res.X) - np.einsum("mnl,blm->bmn", B, res.Z)
    assert nmse[-1] == pytest.approx(np.sum(np.abs(r) ** 2) / np.sum(np.abs(Y) ** 2), rel=1e-8, abs=1e-20)
    # eventually (non-strictly) decreasing, and far below the first iterations.  Not from
    # the start: ADMM's residual is not monotone, and without normalisation the samples of
    # this batch (scales 0.1..10) run with very different effective rho, so the batch
    # nmse has bursts of increase up to iteration ~290 here.
    tail = nmse[its // 2 :]
    assert np.all(np.diff(tail) <= 1e-12 + 1e-6 * tail[:-1])
    assert nmse[-1] < 1e-3 * nmse[0]


# ---------------------------------------------------------------------------
# bad inputs
# ---------------------------------------------------------------------------
def _good():
    A, B, y, w = gaussian_instance(9, M=2, N=6, K=10, L=8)
    return dict(A=A, B=B, y=y, rho=1.0, tau1=0.01, tau2=0.05, w=w, iterations=5)


def _bad_cases():
    g = _good()
    y_nan = g["y"].copy()
    y_nan[0, 0] = np.nan
    y_inf = g["y"].copy()
    y_inf[1, 2] = np.inf
    A_nan = g["A"].copy()
    A_nan[0, 0, 0] = np.nan
    return [
        ("y", dict(y=y_nan)),
        ("y", dict(y=y_inf)),
        ("y", dict(y=torch.as_tensor(y_nan))),
        ("y", dict(y=g["y"][:, :5])),  # N differs from A, B
        ("y", dict(y=np.stack([g["y"]] * 3)[:, :1])),  # M differs
        ("y", dict(y=g["y"][0])),  # 1-D
        ("y", dict(y=np.zeros((0, 2, 6), complex))),  # no samples
        ("A", dict(A=A_nan)),
        ("A", dict(A=g["A"][0])),  # 2-D
        ("A, B", dict(B=g["B"][:1])),  # M mismatch between A and B
        ("A, B", dict(B=g["B"][:, :4])),  # N mismatch between A and B
        ("w", dict(w=np.ones(3))),
        ("w", dict(w=np.ones((2, 1)))),
        ("w", dict(w=0.0)),
        ("w", dict(w=np.array([1.0, -1.0]))),
        ("w", dict(w=np.array([1.0, np.nan]))),
        ("w", dict(w=None)),
        ("normalize", dict(normalize="no")),
        ("rho", dict(rho=0.0)),
        ("rho", dict(rho=-1.0)),
        ("rho", dict(rho=float("nan"))),
        ("rho", dict(rho=float("inf"))),
        ("tau1", dict(tau1=0.0)),
        ("tau1", dict(tau1=-0.1)),
        ("tau2", dict(tau2=0.0)),
        ("tau2", dict(tau2=-3)),
        ("iterations", dict(iterations=0)),
        ("iterations", dict(iterations=-2)),
        ("iterations", dict(iterations=2.5)),
        ("iterations", dict(iterations=3.0)),
        ("iterations", dict(iterations=True)),
    ]


@pytest.mark.parametrize("name, change", _bad_cases())
def test_bad_inputs(name, change):
    kw = _good()
    kw.update(change)
    with pytest.raises(ValueError, match=name.split(",")[0]):
        admm.solve(**kw)


def test_bad_dtype():
    with pytest.raises(ValueError, match="dtype"):
        admm.solve(**_good(), dtype="float16")


def test_good_inputs_accepted():
    kw = _good()
    res = admm.solve(**{**kw, "iterations": np.int64(3), "rho": np.float64(2.0), "w": 1.5})
    assert res.nmse.shape == (3,)
