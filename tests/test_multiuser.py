"""Multi-user localisers (issue 14): single-user equivalence, exact recovery of on-grid LoS users,
greedy suppression, metrics against scipy, the unknown-U rule, input checks."""

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.stats import gamma

from daun_lib import Scenario, channel, methods, metrics
from daun_lib import _alternating_projection as ap
from daun_lib import joint_ml as jml
from daun_lib import multiuser as mu
from daun_lib.baselines import dpd
from daun_lib.joint_ml import orthonormal_basis, project_out
from daun_lib.multiuser.search import sic_cells
from daun_lib.peaks import found_atoms

SMALL = Scenario(n_antennas=16, grid_shape=(8, 8), n_angles=16)
CLASSICAL = ("DPD-peaks", "DPD-SIC", "OMP")


def _on_grid_users(scenario, cells, gains):
    """y (n, M, N): LoS users exactly at grid cells ``cells`` (n, U), gains (n, U, M) complex."""
    A = scenario.dictionaries()[0]  # (M, N, K)
    atoms = np.transpose(A[:, :, cells], (2, 0, 1, 3))  # (n, M, N, U)
    return np.einsum("bmnu,bum->bmn", atoms, gains)


@pytest.fixture(scope="module")
def single():
    return channel.simulate(SMALL, 12, 5.0, seed=3)


@pytest.mark.parametrize("name", CLASSICAL)
def test_one_user_equals_grid_dpd(single, name):
    p = mu.MULTI_REGISTRY[name](SMALL, single.y, 1)
    assert p.shape == (12, 1, 2)
    assert np.array_equal(p[:, 0], methods.REGISTRY["DPD"](SMALL, single.y))


def test_one_user_registry_variants(single):
    for name, ref in (("DPD-peaks-S", "DPD-S"), ("DPD-SIC-ML", "DPD-ML")):
        p = mu.MULTI_REGISTRY[name](SMALL, single.y, 1)
        assert np.array_equal(p[:, 0], methods.REGISTRY[ref](SMALL, single.y)), name


def test_one_user_subgrid_equals_dpd_s(single):
    p = mu.PeaksLocalizer("dpd", readout="subgrid")(SMALL, single.y, 1)
    assert np.array_equal(p[:, 0], methods.REGISTRY["DPD-S"](SMALL, single.y))


def test_one_user_ml_equals_dpd_ml(single):
    p = mu.PeaksLocalizer("dpd", readout="ml")(SMALL, single.y, 1)
    assert np.array_equal(p[:, 0], methods.REGISTRY["DPD-ML"](SMALL, single.y))
    assert np.array_equal(mu.SICLocalizer(readout="ml")(SMALL, single.y, 1), p)


def test_ml_readout_off_grid_users():
    # two pure-LoS users off the grid, noiseless: the per-user ML after cancelling the other lands
    # closer than the grid pick (the other's residue after a grid-cell projection is small here)
    s = Scenario(n_antennas=32, grid_shape=(8, 8), n_angles=16, multipath=False)
    b1, b2 = channel.simulate(s, 6, 30.0, seed=21), channel.simulate(s, 6, 30.0, seed=22)
    y = b1.y + np.sqrt(1e3) * b2.h
    truth = np.stack([b1.positions, b2.positions], axis=1)
    grid = metrics.assigned_errors(mu.SICLocalizer()(s, y, 2), truth)
    ml = metrics.assigned_errors(mu.SICLocalizer(readout="ml")(s, y, 2), truth)
    ok = grid < 3.6  # users the grid pick found (the 5 m cells: half diagonal 3.54 m)
    assert ok.sum() >= 6 and np.median(ml[ok]) < np.median(grid[ok])


def test_one_user_ap_equals_dpd_ml(single):
    want = methods.REGISTRY["DPD-ML"](SMALL, single.y)
    assert np.array_equal(mu.MULTI_REGISTRY["DPD-AP"](SMALL, single.y, 1)[:, 0], want)
    assert np.array_equal(mu.PeaksLocalizer("dpd", readout="ap")(SMALL, single.y, 1)[:, 0], want)


@pytest.mark.parametrize("geometry", ["2d", "3d"])
def test_los_steering_on_the_grid_equals_dictionary_columns(geometry):
    s = Scenario(n_antennas=16, grid_shape=(8, 8), n_angles=16, geometry=geometry)
    A = s.dictionaries()[0]  # (M, N, K)
    got = s.los_steering(s.grid)  # (K, M, N)
    np.testing.assert_allclose(np.transpose(got, (1, 2, 0)), A, rtol=0, atol=1e-12)


def test_ap_readout_reaches_the_joint_ml_of_off_grid_users():
    # two pure-LoS users off the grid, noiseless: the joint ML is the truth (joint fit = energy).
    # The one-pass ML readout cancels the other user at its grid cell and keeps a residue of it;
    # the alternating projection cancels it at its refined position and converges to the truth.
    s = Scenario(n_antennas=32, grid_shape=(8, 8), n_angles=16, multipath=False)
    b1, b2 = channel.simulate(s, 6, 30.0, seed=21), channel.simulate(s, 6, 30.0, seed=22)
    y = b1.h + b2.h
    truth = np.stack([b1.positions, b2.positions], axis=1)
    start = s.grid[sic_cells(s, y, 2, 3.0)[0]]
    ml = metrics.assigned_errors(mu.SICLocalizer(readout="ml")(s, y, 2), truth).max(axis=1)
    p = jml.alternating_projection(s, y, start, sweeps=16)
    ap = metrics.assigned_errors(p, truth).max(axis=1)
    energy = np.sum(np.abs(y) ** 2, axis=(1, 2))
    np.testing.assert_allclose(mu.joint_fit(s, y, truth), energy, rtol=1e-12)
    at_truth = ap < 1e-3
    assert at_truth.sum() >= 5 and (ml[at_truth] > 0.01).all()
    # sub-millimetre (a sample stops sweeping once no user moved more than 1 mm): fit to 1e-8
    np.testing.assert_allclose(mu.joint_fit(s, y, p)[at_truth], energy[at_truth], rtol=1e-8)
    # the joint fit never decreases along the sweeps
    fits = [mu.joint_fit(s, y, jml.alternating_projection(s, y, start, sweeps=k)) for k in (0, 1, 2, 4)]
    assert all((b >= a - 1e-9 * energy).all() for a, b in zip(fits[:-1], fits[1:], strict=True))
    # the readout is the joint Newton ascent: it reaches the truth where the sweeps do, to 0.1 mm
    joint = jml.joint_newton(s, y, start)
    assert np.array_equal(mu.SICLocalizer(readout="ap")(s, y, 2), joint)
    np.testing.assert_allclose(joint[at_truth], p[at_truth], atol=1e-3)
    assert (mu.joint_fit(s, y, joint) >= mu.joint_fit(s, y, start)).all()


@pytest.mark.parametrize("geometry", ["2d", "3d"])
def test_conditional_value_is_the_increase_of_the_joint_fit(geometry):
    s = Scenario(n_antennas=16, grid_shape=(8, 8), n_angles=16, geometry=geometry)
    rng = np.random.default_rng(4)
    y = rng.standard_normal((5, s.n_bs, 16)) + 1j * rng.standard_normal((5, s.n_bs, 16))
    others = rng.uniform(-15, 15, (5, 2, 2))
    p = rng.uniform(-15, 15, (5, 2))
    Q = orthonormal_basis(np.stack([s.los_steering(others[:, j]) for j in range(2)], axis=-1))
    gain = mu.joint_fit(s, y, np.concatenate([others, p[:, None]], axis=1)) - mu.joint_fit(s, y, others)
    np.testing.assert_allclose(ap._conditional_value(s, jml.project_out(y, Q), Q, p), gain, rtol=1e-9)


def test_ap_readout_in_3d_and_at_the_shipped_sweeps():
    # 3-D pure-LoS users, noiseless: the shipped sweeps end at a joint fit no lower than the
    # one-pass ML readout's (the ML keeps a residue of the other user) and near the truth
    s = Scenario(n_antennas=32, grid_shape=(8, 8), n_angles=16, multipath=False, geometry="3d")
    b1, b2 = channel.simulate(s, 6, 30.0, seed=31), channel.simulate(s, 6, 30.0, seed=32)
    y = b1.h + b2.h
    truth = np.stack([b1.positions, b2.positions], axis=1)
    ap = mu.SICLocalizer(readout="ap")(s, y, 2)
    ml = mu.SICLocalizer(readout="ml")(s, y, 2)
    assert (mu.joint_fit(s, y, ap) >= mu.joint_fit(s, y, ml) - 1e-9).all()
    assert np.median(metrics.assigned_errors(ap, truth)) < np.median(metrics.assigned_errors(ml, truth))


@pytest.mark.parametrize("ascent", ["alternating_projection", "joint_newton", "multistart"])
def test_ap_readout_is_scale_free(ascent):
    # the ascents themselves, from fixed picks (the SIC picks square y in the DPD cost)
    y = channel.simulate(SMALL, 8, 10.0, seed=9, n_users=2).y
    k = sic_cells(SMALL, y, 3, 3.0)[0]
    if ascent == "multistart":

        def run(yy):
            return jml.multistart(SMALL, yy, SMALL.grid[k], 2)
    else:

        def run(yy):
            return getattr(jml, ascent)(SMALL, yy, SMALL.grid[k[:, :2]])

    ref = run(y)
    assert np.array_equal(run(2.0**40 * y), ref)  # powers of two: exact
    for c in (1e-170, 1e-150, 1e-60, 1e100, 1e160, 1e170):
        np.testing.assert_allclose(run(c * y), ref, atol=1e-6, err_msg=str(c))


def test_multistart_ap_fits_at_least_as_well_as_single_start(single):
    y = channel.simulate(SMALL, 10, 10.0, seed=12, n_users=2).y
    one = mu.PeaksLocalizer("dpd", readout="ap")(SMALL, y, 2)
    multi = mu.PeaksLocalizer("dpd", readout="ap-multi")(SMALL, y, 2)
    f1, fm = mu.joint_fit(SMALL, y, one), mu.joint_fit(SMALL, y, multi)
    assert (fm >= f1).all()  # the U strongest peaks are one of the starts
    same = fm == f1  # where no other start fits better, the position is the single-start one
    assert np.array_equal(multi[same], one[same])
    # the kept start is the best of the U + 1 subsets of the three best peaks
    score = mu.PeaksLocalizer("dpd").scores(SMALL, y)
    k = mu.greedy_peaks(score, SMALL.grid, 3, 3.0)
    fits = [
        mu.joint_fit(SMALL, y, jml.joint_newton(SMALL, y, SMALL.grid[k[:, list(c)]])) for c in ((0, 1), (0, 2), (1, 2))
    ]
    np.testing.assert_array_equal(fm, np.max(fits, axis=0))
    assert mu.MULTI_REGISTRY["DPD-peaks-APM"] == mu.PeaksLocalizer("dpd", readout="ap-multi")


def test_ap_readout_with_nothing_left_keeps_the_pick():
    y = _on_grid_users(SMALL, np.array([[9]]), np.full((1, 1, SMALL.n_bs), 5.0 + 0j))  # one user, asked for two
    p = mu.SICLocalizer(readout="ap")(SMALL, y, 2)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p[0, 0], SMALL.grid[9], atol=1e-4)  # the user found stays (to the 0.1 mm step tolerance)


def test_one_user_padmm_peaks_equals_padmm(single):
    p = mu.PeaksLocalizer("p-admm")(SMALL, single.y[:4], 1)
    assert np.array_equal(p[:, 0], methods.REGISTRY["P-ADMM"](SMALL, single.y[:4]))


@pytest.mark.skipif(not methods.daun_available(), reason="shipped DAUN weights not loadable")
def test_one_user_daun_peaks_equals_daun():
    s = Scenario()
    y = channel.simulate(s, 4, 10.0, seed=5).y
    assert np.array_equal(mu.MULTI_REGISTRY["DAUN-peaks"](s, y, 1)[:, 0], methods.REGISTRY["DAUN"](s, y))
    assert np.array_equal(mu.MULTI_REGISTRY["DAUN-peaks-S"](s, y, 1)[:, 0], methods.REGISTRY["DAUN-S"](s, y))
    # a named shipped variant through DAUNVariantLocalizer (the way "DAUN-MU" loads its network)
    f = mu.PeaksLocalizer(mu.DAUNVariantLocalizer(variant="supervised"))
    assert np.array_equal(f(s, y, 1)[:, 0], methods.REGISTRY["DAUN"](s, y))


def test_daun_mu_entry_iff_weights_shipped():
    assert ("DAUN-MU" in mu.MULTI_REGISTRY) == mu.DAUN_MU_FILE.is_file()


def test_sic_recovers_noiseless_on_grid_users():
    # After exact cancellation of the first user, |a_k^H P y|^2 / ||P a_k||^2 <= |g|^2 ||P a_2||^2 per BS
    # (Cauchy-Schwarz), with equality at the second user's cell: SIC's second pick is exact.
    rng = np.random.default_rng(0)
    n, U = 6, 2
    cells = np.stack([np.full(n, 9), np.full(n, 54)], axis=1)  # far apart (> 3 m)
    cells[:, 1] -= np.arange(n)  # different second users
    # a strong and a weaker user: the first pick is the strong one, the second must survive its cancellation
    gains = np.array([10.0, 4.0])[None, :, None] * np.exp(2j * np.pi * rng.uniform(size=(n, U, SMALL.n_bs)))
    y = _on_grid_users(SMALL, cells, gains)
    p = mu.MULTI_REGISTRY["DPD-SIC"](SMALL, y, U)
    e = metrics.assigned_errors(p, SMALL.grid[cells])
    assert np.allclose(e, 0.0)


def _somp_reference(scenario, y, U):
    """Simultaneous OMP written out per sample with np.linalg.lstsq (the definition)."""
    A = scenario.dictionaries()[0]
    out = []
    for yi in y:
        S, r = [], yi.copy()
        for _ in range(U):
            c = sum(np.abs(A[m].conj().T @ r[m]) ** 2 for m in range(scenario.n_bs))
            c[S] = -np.inf
            S.append(int(np.argmax(c)))
            for m in range(scenario.n_bs):
                g = np.linalg.lstsq(A[m][:, S], yi[m], rcond=None)[0]
                r[m] = yi[m] - A[m][:, S] @ g
        out.append(S)
    return np.array(out)


def test_omp_matches_reference():
    b1, b2 = channel.simulate(SMALL, 8, 10.0, seed=7), channel.simulate(SMALL, 8, 10.0, seed=8)
    y = b1.y + np.sqrt(10.0) * b2.h
    cells = _somp_reference(SMALL, y, 3)
    assert np.array_equal(mu.MULTI_REGISTRY["OMP"](SMALL, y, 3), SMALL.grid[cells])


def test_ml_readout_with_nothing_left_keeps_the_pick():
    y = _on_grid_users(SMALL, np.array([[9]]), np.full((1, 1, SMALL.n_bs), 5.0 + 0j))  # one user, asked for two
    k = sic_cells(SMALL, y, 2, 3.0)[0]
    p = mu.SICLocalizer(readout="ml")(SMALL, y, 2)
    assert np.isfinite(p).all()
    assert np.array_equal(p[0, 1], SMALL.grid[k[0, 1]])  # the second pick: round-off left after cancelling user 1


def test_omp_residual_cancels_picked_cells():
    rng = np.random.default_rng(1)
    cells = np.array([[3, 40, 60]])
    gains = rng.normal(size=(1, 3, SMALL.n_bs)) + 1j * rng.normal(size=(1, 3, SMALL.n_bs))
    y = _on_grid_users(SMALL, cells, gains)
    A = SMALL.dictionaries()[0]
    Q = orthonormal_basis(found_atoms(A, cells))
    assert np.allclose(project_out(y, Q), 0.0, atol=1e-10)
    assert np.allclose(mu.conditional_cost(A, y, Q), 0.0, atol=1e-10)


def test_conditional_cost_without_found_users_is_dpd(single):
    A = SMALL.dictionaries()[0]
    Q = np.zeros(single.y.shape + (1,), dtype=complex)
    assert np.allclose(mu.conditional_cost(A, single.y, Q), dpd.cost(A, single.y))


def test_greedy_peaks_suppression():
    s = Scenario(grid_shape=(10, 10), n_antennas=8, n_angles=8)  # 4 m cells
    cells = s.grid
    score = np.zeros((1, 100))
    score[0, 0], score[0, 1], score[0, 99] = 3.0, 2.0, 1.0  # cells 0 and 1 are 4 m apart
    assert mu.greedy_peaks(score, cells, 2, 3.0).tolist() == [[0, 1]]
    assert mu.greedy_peaks(score, cells, 2, 4.0).tolist() == [[0, 99]]
    # everything suppressed: the best cell not yet picked
    assert mu.greedy_peaks(score, cells, 3, 100.0).tolist() == [[0, 1, 99]]


@pytest.mark.parametrize("U", [1, 2, 3, 4, 5])
def test_assigned_errors_match_scipy(U):
    rng = np.random.default_rng(U)
    est, truth = rng.normal(size=(40, U, 2)), rng.normal(size=(40, U, 2))
    e = metrics.assigned_errors(est, truth)
    assert e.shape == (40, U)
    for i in range(40):
        D = np.linalg.norm(truth[i][:, None] - est[i][None], axis=-1)
        r, c = linear_sum_assignment(D)
        assert np.allclose(e[i, r], D[r, c])
    perm = est[:, rng.permutation(U)]
    assert np.allclose(metrics.assigned_errors(perm, truth), e)


def test_probabilities_and_mse():
    e = np.array([[0.5, 0.2], [0.5, 1.5], [2.0, 0.1], [0.0, 0.9]])
    assert metrics.fraction_all_within(e, 1.0) == 0.5
    assert metrics.fraction_within_per_user(e, 1.0) == 0.75
    assert np.isclose(metrics.mse_per_user(e), np.mean(e**2))


@pytest.mark.parametrize("rule", ["min-bs", "sum"])
def test_estimate_n_users(rule):
    rng = np.random.default_rng(2)
    n = 200
    noise = (rng.normal(size=(n, SMALL.n_bs, 16)) + 1j * rng.normal(size=(n, SMALL.n_bs, 16))) / np.sqrt(2)
    u_noise = mu.estimate_n_users(SMALL, noise, 3, rule=rule)
    assert np.mean(u_noise > 0) <= 0.05  # pfa 0.01 per map (Bonferroni: at most)
    cells = np.stack([np.full(5, 9), np.full(5, 54)], axis=1)  # on a diagonal: collinear with two BSs
    y = _on_grid_users(SMALL, cells, np.full((5, 2, SMALL.n_bs), 30.0 + 0j))
    assert (mu.estimate_n_users(SMALL, y, 3, rule=rule) == 2).all()  # the third step's residual is exactly 0


def test_estimate_n_users_min_bs_is_scale_free(single):
    u = mu.estimate_n_users(SMALL, single.y, 3, rule="min-bs")
    assert np.array_equal(mu.estimate_n_users(SMALL, single.y * 1e6, 3, rule="min-bs"), u)


def test_noise_thresholds():
    K, M = SMALL.n_grid, SMALL.n_bs
    assert np.isclose(mu.noise_threshold(SMALL, 0.01, "min-bs"), np.log(K / 0.01) / M)
    t = mu.noise_threshold(SMALL, 0.01, "sum")
    assert np.isclose(gamma.sf(t, M), 0.01 / K)
    with pytest.raises(ValueError, match="rule"):
        mu.noise_threshold(SMALL, 0.01, "max")


def test_input_checks(single):
    f = mu.MULTI_REGISTRY["DPD-peaks"]
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="n_users"):
            f(SMALL, single.y, bad)
    with pytest.raises(ValueError, match="n_users"):
        f(SMALL, single.y, SMALL.n_grid + 1)
    with pytest.raises(ValueError, match="scenario"):
        f("not a scenario", single.y, 2)
    with pytest.raises(ValueError, match="y"):
        f(SMALL, single.y[:, :, :3], 2)
    with pytest.raises(ValueError, match="source"):
        mu.PeaksLocalizer("music")
    with pytest.raises(ValueError, match="suppression_m"):
        mu.PeaksLocalizer(suppression_m=-1.0)
    with pytest.raises(ValueError, match="suppression_m"):
        mu.SICLocalizer(suppression_m=float("nan"))
    with pytest.raises(ValueError, match="readout"):
        mu.PeaksLocalizer(readout="alg1")
    with pytest.raises(ValueError, match="readout"):
        mu.SICLocalizer(readout="subgrid")
    with pytest.raises(ValueError, match="estimate"):
        metrics.assigned_errors(np.zeros((3, 2, 2)), np.zeros((3, 3, 2)))
    with pytest.raises(ValueError, match="radius_m"):
        metrics.fraction_all_within(np.zeros((3, 2)), 0.0)
    with pytest.raises(ValueError, match="errors"):
        metrics.fraction_all_within(-np.ones((3, 2)))
    with pytest.raises(ValueError, match="pfa"):
        mu.estimate_n_users(SMALL, single.y, 2, pfa=1.5)
    with pytest.raises(ValueError, match="max_users"):
        mu.estimate_n_users(SMALL, single.y, 0)


def test_registry_entries_are_hashable_and_equal_by_config():
    assert mu.PeaksLocalizer("dpd") == mu.MULTI_REGISTRY["DPD-peaks"]
    assert hash(mu.MULTI_REGISTRY["P-ADMM-peaks"]) == hash(mu.PeaksLocalizer("p-admm"))
    assert set(mu.MULTI_REGISTRY) >= {"DPD-peaks", "DPD-SIC", "OMP", "P-ADMM-peaks", "DAUN-peaks"}


def test_cancellation_and_omp_refuse_more_users_than_antennas():
    y = np.zeros((1, SMALL.n_bs, SMALL.n_antennas), complex) + 1.0
    for f in (mu.SICLocalizer(), mu.OMPLocalizer()):
        with pytest.raises(ValueError, match="n_users"):
            f(SMALL, y, SMALL.n_antennas + 1)


def test_sum_rule_refuses_data_far_below_the_noise():
    y = channel.simulate(Scenario(), 3, 10.0, seed=2, n_users=2).y * 1e-6
    with pytest.raises(ValueError, match="noise"):
        mu.estimate_n_users(Scenario(), y, 3, rule="sum")
    assert mu.estimate_n_users(Scenario(), y, 3, rule="min-bs").shape == (3,)  # "min-bs" is scale-free
