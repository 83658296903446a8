"""Baselines of Fig. 2 / Table I and the method registry (daun_lib.baselines, daun_lib.methods)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from daun_lib import Scenario, metrics
from daun_lib.baselines import (
    DPDParams,
    MMParams,
    SRLParams,
    StansfieldParams,
    VBParams,
    _gram,
    bearings,
    dpd,
    mm,
    srl,
    stansfield,
    vb,
)
from daun_lib.methods import REGISTRY, daun_unavailable, localize
from daun_lib.scenario import steering

SC = Scenario()
METHODS = list(REGISTRY)
#: On-grid methods must hit the grid point exactly; the two-step methods
#: estimate off-grid AoAs: Stansfield (Newton-refined beamscan) is exact for a
#: single noiseless plane wave, SRL is limited by its angle grid (0.008 in u by
#: default: half a step is ~0.006 rad at the area's angles, ~0.4 m at 70 m).
# Sub-grid readouts (-S): the beam pattern around a grid point is not exactly
# Gaussian, so the 3-point fit leaves a bias of ~1-2 cm (5 cm allowed, 4 % of a cell).
# The Bayesian entries (-MMSE, -Disk) pick among / average over the posterior's candidates, 0.25 m apart
# (daun_lib.posterior): up to half a diagonal, 0.18 m, from a point that is not a candidate.
NOISELESS_TOL = {
    "Stansfield": 1e-3,
    "SRL": 0.5,
    "DAUN-S": 0.05,
    "DPD-S": 0.05,
    "DPD-MMSE": 0.2,
    "DPD-Disk": 0.2,
    "Mixture-MMSE": 0.2,
}


@pytest.fixture(scope="module", autouse=True)
def _threads():
    # One intra-op thread: on a shared 2-core machine a 2-thread OpenMP pool
    # spin-waits under contention and can be many times slower.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _skip_daun(name: str) -> None:
    """The DAUN entries need the shipped weights: their absence is a failure, not a skip."""
    if name.startswith("DAUN"):
        why = daun_unavailable()
        assert why is None, f"{name}: pretrained DAUN cannot be loaded ({why})"


def _los_only(scenario: Scenario, pos: np.ndarray, snr_db: float, seed: int, noise: bool = True) -> np.ndarray:
    """All-LoS test signal: y_m = sqrt(N omega) e^{j phi_m} a(theta_m(p)) (+ CN(0, I))."""
    rng = np.random.default_rng(seed)
    th = scenario.los_angles(pos)
    N = scenario.n_antennas
    gain = np.sqrt(N * 10 ** (snr_db / 10)) * np.exp(1j * rng.uniform(0, 2 * np.pi, th.shape))
    y = gain[..., None] * steering(th, N, scenario.antenna_spacing)
    if noise:
        y = y + (rng.standard_normal(y.shape) + 1j * rng.standard_normal(y.shape)) / np.sqrt(2)
    return y


@pytest.fixture(scope="module")
def high_snr_batch():
    try:
        from daun_lib import channel
    except ImportError:  # pragma: no cover - channel.py is another module of the package
        pos = np.random.default_rng(5).uniform(-20, 20, (40, 2))
        return _los_only(SC, pos, 25.0, 6), pos
    b = channel.simulate(SC, 40, 25.0, seed=20240)
    return b.y, b.positions


# ---------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------
def test_registry_has_the_papers_methods():
    for name in ("DAUN", "DAUN-R", "P-ADMM", "DPD", "Stansfield", "SRL", "VB", "MM"):
        assert callable(REGISTRY[name])
    with pytest.raises(ValueError, match="method"):
        localize("CRLB", SC, np.zeros((1, 4, 50), complex))


@pytest.mark.parametrize("name", METHODS)
def test_noiseless_user_on_a_grid_point(name):
    _skip_daun(name)
    k = np.array([0, 137, 451, 899])
    pos = SC.grid[k]
    y = _los_only(SC, pos, 10.0, seed=3, noise=False)
    est = REGISTRY[name](SC, y)
    assert est.shape == (4, 2)
    err = np.linalg.norm(est - pos, axis=1)
    assert err.max() <= NOISELESS_TOL.get(name, 1e-5), err  # 1e-5 m: float32 positions (DAUN)


@pytest.mark.parametrize("name", METHODS)
def test_high_snr_users_within_a_metre(name, high_snr_batch):
    _skip_daun(name)
    y, pos = high_snr_batch
    est = REGISTRY[name](SC, y)
    assert est.shape == pos.shape and np.isfinite(est).all()
    assert metrics.p_within(est, pos, 1.0) >= 0.9


@pytest.mark.parametrize("name", METHODS)
def test_bad_input_raises_value_error_naming_the_argument(name):
    f = REGISTRY[name]
    y = np.zeros((2, SC.n_bs, SC.n_antennas), complex)
    with pytest.raises(ValueError, match="scenario"):
        f("paper", y)
    if name.startswith("DAUN"):  # checked before any weights are loaded
        with pytest.raises(ValueError, match="scenario"):
            f(Scenario(n_antennas=16), y[:, :, :16])
    _skip_daun(name)
    with pytest.raises(ValueError, match="y"):
        f(SC, y[:, :, :10])
    with pytest.raises(ValueError, match="y"):
        f(SC, y[:, :3])
    bad = y.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="y"):
        f(SC, bad)
    with pytest.raises(ValueError, match="y"):
        f(SC, np.zeros((0, SC.n_bs, SC.n_antennas), complex))
    with pytest.raises(ValueError, match="y"):
        f(SC, np.array([["a"]]))


@pytest.mark.parametrize("name", ["DAUN", "DAUN-R"])
def test_daun_accepts_a_scenario_with_the_same_dictionaries(name):
    _skip_daun(name)
    pos = SC.grid[[10, 500]]
    y = _los_only(SC, pos, 20.0, seed=4)
    est = REGISTRY[name](Scenario(los_model="3gpp"), y)
    np.testing.assert_allclose(est, REGISTRY[name](SC, y))


def test_single_sample_and_tensor_input():
    pos = SC.grid[[200]]
    y = _los_only(SC, pos, 10.0, seed=1, noise=False)
    for name in ("DPD", "Stansfield", "SRL", "VB", "MM"):
        np.testing.assert_allclose(REGISTRY[name](SC, y[0]), REGISTRY[name](SC, torch.as_tensor(y)), atol=1e-6)


@pytest.mark.parametrize(
    "cls, field, value",
    [
        (DPDParams, "points", 4),
        (DPDParams, "levels", 0),
        (DPDParams, "offgrid", "yes"),
        (StansfieldParams, "weights", "ml"),
        (StansfieldParams, "oversampling", 0),
        (StansfieldParams, "margin", -1.0),
        (SRLParams, "confidence", 1.0),
        (SRLParams, "relax", 2.0),
        (SRLParams, "dtype", "float16"),
        (VBParams, "iterations", 0),
        (VBParams, "noise_prior", -1.0),
        (VBParams, "a0", 0.0),
        (MMParams, "lam", 0.0),
        (MMParams, "eps_decay", 0.5),
    ],
)
def test_params_are_validated(cls, field, value):
    with pytest.raises(ValueError, match=field):
        cls(**{field: value})
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen


def test_params_of_the_wrong_type_are_rejected():
    y = _los_only(SC, SC.grid[[3]], 10.0, 0)
    for mod, other in ((dpd, MMParams()), (stansfield, DPDParams()), (srl, VBParams()), (vb, SRLParams()), (mm, {})):
        with pytest.raises(ValueError, match="params"):
            mod.localize(SC, y, other)


# ---------------------------------------------------------------------------
# DPD
# ---------------------------------------------------------------------------
def test_dpd_eigenvalue_form_equals_gain_form_for_one_snapshot():
    A, _ = SC.dictionaries()
    y = _los_only(SC, np.array([[3.0, -7.0]]), 0.0, seed=2)
    np.testing.assert_allclose(dpd.cost_eigen(A, y[..., None]), dpd.cost(A, y), rtol=1e-9)
    # two snapshots of a common signal: the eigenvalue form is at least the single-snapshot cost
    Y = np.stack([y, 0.5j * y], axis=-1)
    assert dpd.cost_eigen(A, Y).argmax() == dpd.cost(A, y).argmax()


def test_dpd_offgrid_finds_an_offgrid_user():
    pos = np.array([[0.31, -7.77], [12.0, 19.5]])
    y = _los_only(SC, pos, 20.0, seed=4, noise=False)
    on = dpd.localize(SC, y)
    off = dpd.localize(SC, y, DPDParams(offgrid=True))
    assert np.linalg.norm(on - pos, axis=1).max() < 1.0
    assert np.linalg.norm(off - pos, axis=1).max() < 1e-3


def test_dpd_cost_at_matches_grid_cost():
    A, _ = SC.dictionaries()
    y = _los_only(SC, np.array([[1.0, 2.0]]), 5.0, seed=8)
    g = SC.grid[None, :50]
    np.testing.assert_allclose(dpd.cost_at(SC, y, g), dpd.cost(A, y)[:, :50], rtol=1e-9)


# ---------------------------------------------------------------------------
# bearings, Stansfield, SRL
# ---------------------------------------------------------------------------
def test_stansfield_intersection_is_exact_for_exact_bearings():
    pos = np.array([[3.0, -4.0], [-19.0, 18.0]])
    phi = bearings.to_bearings(SC, SC.los_angles(pos))
    np.testing.assert_allclose(bearings.stansfield(SC.bs_array, phi), pos, atol=1e-6)
    var = np.array([[1.0, 2.0, 0.5, 3.0]] * 2)
    np.testing.assert_allclose(bearings.stansfield(SC.bs_array, phi, var, iterations=0), pos, atol=1e-6)
    with pytest.raises(ValueError, match="bearings"):
        bearings.stansfield(SC.bs_array, phi[:, :3])
    with pytest.raises(ValueError, match="bearing_var"):
        bearings.stansfield(SC.bs_array, phi, -var)


def test_stansfield_weights_downweight_a_bad_bearing():
    pos = np.array([[5.0, 5.0]])
    phi = bearings.to_bearings(SC, SC.los_angles(pos))
    phi[0, 2] += 0.05  # one wrong bearing
    var = np.array([[1.0, 1.0, 100.0, 1.0]])
    err_eq = np.linalg.norm(bearings.stansfield(SC.bs_array, phi) - pos)
    err_w = np.linalg.norm(bearings.stansfield(SC.bs_array, phi, var) - pos)
    assert err_w < 0.2 * err_eq


def test_beamscan_aoa_is_offgrid_accurate():
    pos = np.array([[0.123, 4.567]])
    y = _los_only(SC, pos, 30.0, seed=9)
    theta, _ = stansfield.beamscan_aoa(SC, y)
    assert np.abs(theta - SC.los_angles(pos)).max() < 2e-3


def _cvx_bpdn(Phi, y, beta):
    cp = pytest.importorskip("cvxpy")
    s = cp.Variable(Phi.shape[1], complex=True)
    prob = cp.Problem(cp.Minimize(cp.norm1(s)), [cp.norm(y - Phi @ s, 2) <= beta])
    prob.solve(solver="CLARABEL")
    return s.value, prob.value


@pytest.mark.parametrize("snr_db", [8.0, 25.0])
def test_srl_l1_solver_agrees_with_cvxpy(snr_db):
    small = Scenario(n_antennas=10)
    u, Phi = srl._grid(small, 6)
    rng = np.random.default_rng(int(snr_db) + 1)
    th = np.array([0.4, -0.9])
    y = np.sqrt(10 * 10 ** (snr_db / 10)) * (steering(th, 10) * np.array([[1.0], [0.4j]])).sum(0)
    y = y + (rng.standard_normal(10) + 1j * rng.standard_normal(10)) / np.sqrt(2)
    beta = srl.noise_bound(10)
    assert np.linalg.norm(y) > 1.5 * beta  # a non-trivial instance
    ref, val = _cvx_bpdn(Phi, y, beta)
    s = srl.l1_spectrum(Phi, y[None], beta, iterations=1500, dtype="float64")[0]
    assert np.linalg.norm(y - Phi @ s) <= beta * (1 + 1e-4)
    assert abs(np.abs(s).sum() - val) <= 1e-3 * val
    assert np.linalg.norm(s - ref) <= 0.05 * np.linalg.norm(ref)
    # inside the ball the solution is zero
    assert not srl.l1_spectrum(Phi, y[None] * 1e-3, beta).any()


def test_srl_grid_is_a_tight_frame_of_unit_columns():
    u, Phi = srl._grid(SC, 10)
    assert Phi.shape == (50, 500)
    np.testing.assert_allclose(np.linalg.norm(Phi, axis=0), 1.0)
    np.testing.assert_allclose(Phi @ Phi.conj().T, 10 * np.eye(50), atol=1e-9)


# ---------------------------------------------------------------------------
# VB and MM (shared Woodbury / Toeplitz algebra)
# ---------------------------------------------------------------------------
SMALL = Scenario(n_antennas=10, grid_shape=(4, 5), n_angles=12)


def test_ula_toeplitz_shortcut_equals_dense_algebra():
    g = _gram.ula_gram(SMALL)
    d = _gram.Gram(g.Phi.numpy())
    rng = np.random.default_rng(0)
    M, N, D = g.Phi.shape
    delta = torch.as_tensor(rng.exponential(size=(M, 3, D)))
    noise = torch.as_tensor(rng.exponential(size=3))
    y = torch.as_tensor(rng.standard_normal((M, 3, N)) + 1j * rng.standard_normal((M, 3, N)))
    for a, b in zip(_gram.ridge(g, y, delta, noise, True), _gram.ridge(d, y, delta, noise, True), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-10)


def _small_problem(seed: int, snr_db: float = 10.0):
    rng = np.random.default_rng(seed)
    A, B = SMALL.dictionaries()
    pos = rng.uniform(-15, 15, (2, 2))
    y = _los_only(SMALL, pos, snr_db, seed)
    nlos = steering(rng.uniform(-1.4, 1.4, y.shape[:2]), 10)
    y = y + 2.0 * nlos * np.exp(1j * rng.uniform(0, 6.3, y.shape[:2]))[..., None]
    return A, B, y


@pytest.mark.parametrize("noise_prior", [0.0, 1.0])
def test_vb_free_energy_never_decreases(noise_prior):
    A, B, y = _small_problem(1)
    p = VBParams(iterations=60, noise_prior=noise_prior, dtype="float64")
    res = vb.solve(A, B, y, p, elbo=True)
    d = np.diff(res.elbo, axis=0)
    assert (d >= -1e-9 * np.abs(res.elbo[1:])).all(), d.min()
    # the scenario path (ULA shortcut) gives the same iterates
    res2 = vb.solve_scenario(SMALL, y, p, elbo=True)
    np.testing.assert_allclose(res2.elbo, res.elbo, rtol=1e-9)
    np.testing.assert_allclose(res2.X, res.X, atol=1e-8 * np.abs(res.X).max())


def test_vb_learns_the_noise_level():
    pos = np.random.default_rng(2).uniform(-20, 20, (8, 2))
    y = _los_only(SC, pos, 0.0, seed=2)
    for npr in (1.0, 100.0):
        res = vb.solve_scenario(SC, 2.0 * y, VBParams(noise_prior=npr, noise_var=4.0))
        assert np.all((res.noise_var > 0.5 * 4.0) & (res.noise_var < 1.5 * 4.0)), res.noise_var


def _cvx_penalised(A, B, y, lam):
    cp = pytest.importorskip("cvxpy")
    M, N, K = A.shape
    L = B.shape[2]
    X = cp.Variable((K, M), complex=True)
    Z = cp.Variable((L, M), complex=True)
    fit = sum(cp.sum_squares(y[m] - A[m] @ X[:, m] - B[m] @ Z[:, m]) for m in range(M))
    prob = cp.Problem(cp.Minimize(0.5 * fit + lam * (cp.sum(cp.norm(X, 2, axis=1)) + cp.sum(cp.abs(Z)))))
    prob.solve(solver="CLARABEL")
    return X.value, prob.value


@pytest.mark.parametrize("seed", [0, 1])
def test_mm_agrees_with_cvxpy(seed):
    A, B, y = _small_problem(seed)
    lam = 2.0
    X_ref, val = _cvx_penalised(A, B, y[0], lam)
    res = mm.solve(A, B, y[0], MMParams(lam=lam, iterations=150, dtype="float64"), track=True)
    f = mm.penalised_objective(A, B, y[0], res.X, res.Z, lam)[0]
    assert abs(f - val) <= 1e-4 * val
    assert np.abs(res.X[0] - X_ref).max() <= 1e-2 * np.abs(X_ref).max()
    # MM: the (smoothed) objective decreases monotonically
    assert (np.diff(res.objective[:, 0]) <= 1e-9 * val).all()
    assert np.argmax(np.linalg.norm(res.X[0], axis=1)) == np.argmax(np.linalg.norm(X_ref, axis=1))


def test_mm_scenario_path_matches_general_path():
    A, B, y = _small_problem(3)
    p = MMParams(iterations=20, dtype="float64")
    a, b = mm.solve(A, B, y, p), mm.solve_scenario(SMALL, y, p)
    np.testing.assert_allclose(a.X, b.X, atol=1e-8 * np.abs(a.X).max())
