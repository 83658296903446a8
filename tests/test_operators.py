"""Tests of daun_lib.operators: the structured (FFT plus interpolation) products against the dense ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from daun_lib import Scenario, admm, operators
from daun_lib.baselines import dpd
from daun_lib.channel import simulate
from daun_lib.daun import DAUN

#: A scenario beyond the paper's (structured wins there): N = 128, 24 x 24 grid, 96 angles.
BIG = Scenario(n_antennas=128, grid_shape=(24, 24), n_angles=96)
#: Error bounds at the default taps (measured 1.1e-7 / 8e-14 before the margin).
BOUND = {torch.complex64: 1e-6, torch.complex128: 1e-12}


def crandn(rng, *shape, dtype=torch.complex128):
    return torch.as_tensor(rng.standard_normal(shape) + 1j * rng.standard_normal(shape), dtype=dtype)


def rel(a, b):
    return float(torch.linalg.vector_norm((a - b).to(torch.complex128)) / torch.linalg.vector_norm(b))


@pytest.fixture(scope="module")
def big():
    A, B = BIG.dictionaries()
    return A, B, BIG.operators("structured")


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize("n", [1, 5])
def test_products_match_dense_within_the_documented_error(big, dtype, n):
    A, B, (Ao, Bo) = big
    rng = np.random.default_rng(n)
    for D, op in ((A, Ao.to(dtype)), (B, Bo.to(dtype))):
        Dt = torch.as_tensor(D)
        x = crandn(rng, D.shape[0], D.shape[2], n)
        r = crandn(rng, D.shape[0], D.shape[1], n)
        fx, ar = op @ x.to(dtype), op.H @ r.to(dtype)
        assert fx.shape == (D.shape[0], D.shape[1], n) and ar.shape == (D.shape[0], D.shape[2], n)
        assert fx.dtype == dtype and ar.dtype == dtype
        assert rel(fx, Dt @ x) < BOUND[dtype]
        assert rel(ar, Dt.mH @ r) < BOUND[dtype]


def test_structured_products_are_exact_adjoints(big):
    _, _, (Ao, _) = big
    op = Ao.to(torch.complex128)
    rng = np.random.default_rng(3)
    x, r = crandn(rng, 4, BIG.n_grid, 3), crandn(rng, 4, BIG.n_antennas, 3)
    lhs = torch.vdot(r.flatten(), (op @ x).flatten())  # <r, A x>
    rhs = torch.vdot((op.H @ r).flatten(), x.flatten())  # <A^H r, x>
    assert abs(lhs - rhs) <= 1e-12 * abs(lhs)


def test_block_products_equal_complex_products(big):
    _, _, (Ao, _) = big
    rng = np.random.default_rng(4)
    M, N, K = Ao.shape
    x, r = crandn(rng, M, K, 7, dtype=torch.complex64), crandn(rng, M, N, 7, dtype=torch.complex64)
    xb = torch.cat([x.real, x.imag], dim=1)
    out = torch.empty(M, 2 * N, 7)
    Ao.block().bmm_into(xb, out)
    assert rel(torch.complex(out[:, :N], out[:, N:]), Ao @ x) < 1e-6
    acc = torch.zeros(M, 2 * K, 7)
    Ao.H.block().baddbmm_(acc, torch.cat([r.real, r.imag], dim=1), -0.5)
    assert rel(torch.complex(acc[:, :K], acc[:, K:]), -0.5 * (Ao.H @ r)) < 1e-6


@pytest.mark.parametrize("taps, bound", [(6, 2e-5), (8, 5e-7), (12, 1e-10)])
def test_error_falls_with_the_taps(big, taps, bound):
    A, _, _ = big
    op = operators.StructuredOperator(BIG.los_sines(BIG.grid).T, 128, taps=taps, dtype=torch.complex128)
    x = crandn(np.random.default_rng(5), 4, BIG.n_grid, 2)
    assert rel(op @ x, torch.as_tensor(A) @ x) < bound


def test_norms_and_columns_match_dense(big):
    A, B, (Ao, Bo) = big
    assert Ao.norm_sq() == pytest.approx(operators.max_spectral_norm_sq(A), rel=1e-10)
    assert Bo.norm_sq() == pytest.approx(operators.max_spectral_norm_sq(B), rel=1e-10)
    assert np.abs(Ao.dense() - A).max() < 1e-12
    p_dense, p_op = admm.default_params(A, B), admm.default_params(Ao, Bo)
    assert p_op.tau1 == pytest.approx(p_dense.tau1, rel=1e-10) and p_op.tau2 == pytest.approx(p_dense.tau2, rel=1e-10)


def test_auto_by_size_and_batch():
    """Dense at the paper's scale at every batch (its committed results); structured above, by batch."""
    assert [op.kind for op in Scenario().operators()] == ["dense", "dense"]
    assert [op.kind for op in Scenario().operators(batch=1)] == ["dense", "dense"]
    big = Scenario(n_antennas=256, grid_shape=(100, 100), n_angles=512)
    assert operators.choose(256, big.n_grid) == "structured" and operators.choose(256, big.n_grid, 1) == "structured"
    assert operators.choose(96, 2025, 16) == "structured" and operators.choose(96, 2025, 15) == "dense"
    assert operators.choose(50, 900, 256) == "dense" and operators.choose(256, 512, 256) == "structured"
    assert operators.available(Scenario()) == ("dense", "structured")
    fast = ["opA", "opB"]
    assert operators.for_batch(fast, "auto", 96, (2025, 192), 256) == ["opA", None]
    assert operators.for_batch(fast, "auto", 96, (2025, 192), None) == [None, None]
    assert operators.for_batch(fast, "structured", 50, (900, 100), 1) == fast


def test_bad_input_raises_value_error_naming_the_argument(big):
    _, _, (Ao, _) = big
    with pytest.raises(ValueError, match="u:"):
        operators.StructuredOperator(np.full((2, 3), 1.5), 8)
    with pytest.raises(ValueError, match="n_antennas"):
        operators.StructuredOperator(np.zeros((2, 3)), 1)
    with pytest.raises(ValueError, match="taps"):
        operators.StructuredOperator(np.zeros((2, 3)), 8, taps=1)
    with pytest.raises(ValueError, match="dtype"):
        operators.StructuredOperator(np.zeros((2, 3)), 8, dtype=torch.float32)
    with pytest.raises(ValueError, match="kind"):
        operators.for_scenario(Scenario(), "fft")
    with pytest.raises(ValueError, match="scenario"):
        operators.for_scenario("paper")
    with pytest.raises(ValueError, match="x:"):
        Ao @ torch.zeros(4, 3, 1, dtype=torch.complex64)
    with pytest.raises(ValueError, match="n_columns"):
        operators.choose(50, 0)
    with pytest.raises(ValueError, match="operators"):
        DAUN(2, A=np.ones((2, 4, 5), complex), B=np.ones((2, 4, 3), complex), operators="structured")


@pytest.fixture(scope="module")
def snapshots():
    return simulate(BIG, 6, snr_db=10.0, seed=11).y


def test_padmm_with_structured_operators_gives_the_dense_argmax(big, snapshots):
    A, B, (Ao, Bo) = big
    p = admm.default_params(A, B).as_kwargs()
    for n in (1, 6):  # the numpy path (dense) and the batched one
        X_d = admm.solve(A, B, snapshots[:n], iterations=60, **p).X
        X_s = admm.solve(Ao, Bo, snapshots[:n], iterations=60, **p).X
        assert X_s.shape == X_d.shape and X_s.dtype == X_d.dtype
        assert np.array_equal(np.linalg.norm(X_s, axis=-1).argmax(1), np.linalg.norm(X_d, axis=-1).argmax(1))
        assert np.linalg.norm(X_s - X_d) < 1e-4 * np.linalg.norm(X_d)


def test_daun_with_structured_operators_gives_the_dense_argmax(snapshots):
    nets = {k: DAUN.from_scenario(BIG, 15, operators=k) for k in ("dense", "structured")}
    assert nets["structured"]._fast[0] is not None and nets["dense"]._fast == [None, None]
    X = {k: net.estimate_x(snapshots) for k, net in nets.items()}
    assert np.array_equal(
        np.linalg.norm(X["dense"], axis=-1).argmax(1), np.linalg.norm(X["structured"], axis=-1).argmax(1)
    )
    Xf, _ = nets["structured"](snapshots[:2])  # autograd path (training)
    Xf.abs().sum().backward()
    assert torch.isfinite(nets["structured"].log_tau1.grad).all()


def test_dpd_cost_with_an_operator_matches_dense(big, snapshots):
    A, _, (Ao, _) = big
    c_d, c_s = dpd.cost(A, snapshots), dpd.cost(Ao.to(torch.complex128), snapshots)
    assert c_s.shape == c_d.shape and np.abs(c_s - c_d).max() < 1e-10 * c_d.max()
    assert np.array_equal(dpd.cost(operators.DenseOperator(A), snapshots), c_d)


def test_registry_padmm_picks_structured_where_faster_with_the_same_cells():
    """The ``P-ADMM`` entry keeps the dense arrays at the paper's scale and takes the FFT products where
    ``operators.choose`` does (here A at N K = 96 x 2025, batch 16), with the argmax cells of the dense run."""
    from daun_lib import admm, channel
    from daun_lib._checks import dictionaries
    from daun_lib.methods import PADMM_ITERATIONS, REGISTRY, _padmm_problem

    paper = Scenario()
    for small in (True, False):
        A, B, _ = _padmm_problem(paper, small)
        assert A is dictionaries(paper)[0] and B is dictionaries(paper)[1]
    sc = Scenario(n_antennas=96, grid_shape=(45, 45), n_angles=192)
    assert _padmm_problem(sc, True)[0] is dictionaries(sc)[0]
    A, B, params = _padmm_problem(sc, False)
    assert (A.kind, B.kind) == ("structured", "dense")
    y = channel.simulate(sc, 16, 10.0, seed=5).y
    X = REGISTRY["P-ADMM"]._map(sc, y)
    Ad, Bd = dictionaries(sc)
    Xd = admm.solve(Ad, Bd, y, iterations=PADMM_ITERATIONS, **admm.default_params(Ad, Bd).as_kwargs()).X
    np.testing.assert_array_equal(np.linalg.norm(X, axis=-1).argmax(axis=1), np.linalg.norm(Xd, axis=-1).argmax(axis=1))
    assert np.abs(X - Xd).max() < 1e-4 * np.abs(Xd).max()


def test_daun_auto_picks_per_batch():
    """DAUN with ``operators="auto"`` chooses per call: at N K = 96 x 2025 dense below 16 samples (bit-identical to
    ``operators="dense"``), the structured A from 16 on with the dense network's argmax cells; at the paper's
    scale dense at every batch."""
    from daun_lib import channel

    sc = Scenario(n_antennas=96, grid_shape=(45, 45), n_angles=192)
    auto, dense = DAUN(2, scenario=sc), DAUN(2, scenario=sc, operators="dense")
    y = channel.simulate(sc, 32, 10.0, seed=8).y
    np.testing.assert_array_equal(auto.estimate_x(y[:15]), dense.estimate_x(y[:15]))
    Xa, Xd = auto.estimate_x(y), dense.estimate_x(y)
    assert not np.array_equal(Xa, Xd) and np.abs(Xa - Xd).max() < 1e-4 * np.abs(Xd).max()
    np.testing.assert_array_equal(np.linalg.norm(Xa, axis=-1).argmax(1), np.linalg.norm(Xd, axis=-1).argmax(1))
    assert auto.operator_norms() == dense.operator_norms()
    paper = Scenario()
    yp = channel.simulate(paper, 32, 10.0, seed=8).y
    np.testing.assert_array_equal(
        DAUN(2, scenario=paper).estimate_x(yp), DAUN(2, scenario=paper, operators="dense").estimate_x(yp)
    )
