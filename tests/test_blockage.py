"""Blockage-robust localisers (daun_lib.blockage) and the joint state posterior (posterior.state_log_posterior)."""

import numpy as np
import pytest

from daun_lib import Scenario, channel, continuous, posterior
from daun_lib.blockage import MixtureMeanLocalizer, SubsetMAPLocalizer, subsets
from daun_lib.scenario import array_phase


@pytest.fixture(scope="module")
def blocked():
    """Clustered 3GPP-blockage data at 20 dB (about half of the links NLoS)."""
    return channel.simulate(Scenario(los_model="3gpp"), 200, 20.0, seed=3)


def _errors(est, truth):
    return np.linalg.norm(est - truth, axis=1)


# ---------------------------------------------------------------- subsets


def test_subsets_counts_and_members():
    s = subsets(4, 2)
    assert len(s) == 11 == len(set(s))
    assert all(len(S) >= 2 and len(set(S)) == len(S) and set(S) <= {0, 1, 2, 3} for S in s)
    assert [len(S) for S in s] == sorted(len(S) for S in s)  # smallest first
    assert s[-1] == (0, 1, 2, 3)
    assert subsets(4, 4) == [(0, 1, 2, 3)]
    assert len(subsets(5, 1)) == 31


@pytest.mark.parametrize(
    "args, name",
    [((0, 1), "n_bs"), ((4, 0), "min_bs"), ((4, 5), "min_bs"), ((4.0, 2), "n_bs"), ((4, True), "min_bs")],
)
def test_subsets_validation(args, name):
    with pytest.raises(ValueError, match=name):
        subsets(*args)


# ---------------------------------------------------------------- Subset-MAP


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"los_prior": "sometimes"}, "los_prior"),
        ({"los_prior": 1.5}, "los_prior"),
        ({"los_prior": True}, "los_prior"),
        ({"min_bs": 1}, "min_bs"),
        ({"min_bs": 2.0}, "min_bs"),
        ({"cost": "l1"}, "cost"),
        ({"params": {"k_factor_db": 9.0}}, "params"),
    ],
)
def test_subset_map_validation(kwargs, name):
    with pytest.raises(ValueError, match=name):
        SubsetMAPLocalizer(**kwargs)


def test_mixture_mean_validation():
    with pytest.raises(ValueError, match="los_prior"):
        MixtureMeanLocalizer(los_prior="never")
    with pytest.raises(ValueError, match="params"):
        MixtureMeanLocalizer(params=3)


def test_subset_map_min_bs_above_scenario_bs(blocked):
    with pytest.raises(ValueError, match="scenario"):
        SubsetMAPLocalizer(min_bs=5)(Scenario(), blocked.y[:2])


def test_subset_map_always_is_ml_on_all_links(blocked):
    y = blocked.y[:60]
    got = SubsetMAPLocalizer(los_prior="always")(Scenario(), y)
    want = continuous.ml_localize(Scenario(), y)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    got_bs = SubsetMAPLocalizer(los_prior="always", cost="per_bs_noise")(Scenario(), y)
    np.testing.assert_allclose(got_bs, continuous.ml_localize(Scenario(), y, cost="per_bs_noise"), rtol=0, atol=1e-9)


def test_subset_map_ignores_scenario_los_model(blocked):
    y = blocked.y[:40]
    loc = SubsetMAPLocalizer()
    np.testing.assert_array_equal(loc(Scenario(), y), loc(Scenario(los_model="3gpp"), y))
    np.testing.assert_array_equal(loc(Scenario(), y), loc(Scenario(los_model=0.2), y))


def test_subset_map_not_worse_than_ml_under_blockage(blocked):
    """Paired users: P(error < 1 m) of Subset-MAP >= that of the all-link ML, up to the paired noise.

    The margin is two standard deviations of the paired count difference under
    "no difference" (sqrt of the number of discordant users).
    """
    est = SubsetMAPLocalizer()(Scenario(), blocked.y)
    ml = continuous.ml_localize(Scenario(), blocked.y)
    ok_s = _errors(est, blocked.positions) < 1.0
    ok_m = _errors(ml, blocked.positions) < 1.0
    discordant = int((ok_s != ok_m).sum())
    assert ok_s.sum() >= ok_m.sum() - 2.0 * np.sqrt(discordant)
    assert np.isfinite(est).all() and (np.abs(est) <= Scenario().area_size / 2).all()


def test_subset_map_rejects_a_strong_wrong_link():
    """Pure-LoS data at 30 dB, BS 0 replaced by a plane wave 10 dB stronger from a direction 0.1 off in u.

    The all-link ML is pulled onto BS 0's false bearing; the subset {1, 2, 3}
    explains the data and Subset-MAP finds every user within 1 m.
    """
    sc = Scenario(multipath=False)
    n, N = 30, sc.n_antennas
    b = channel.simulate(sc, n, 30.0, seed=7)
    u0 = sc.los_sines(b.positions)[:, 0]
    u_wrong = u0 + 0.1 * np.where(u0 < 0, 1.0, -1.0)
    a = np.exp(1j * array_phase(u_wrong, N, sc.antenna_spacing))  # (n, N), |a_n| = 1
    rng = np.random.default_rng(0)
    y = b.y.copy()
    y[:, 0, :] = np.sqrt(10.0 * 10**3.0) * a + (
        rng.standard_normal((n, N)) + 1j * rng.standard_normal((n, N))
    ) / np.sqrt(2)
    e_subset = _errors(SubsetMAPLocalizer()(Scenario(), y), b.positions)
    e_ml = _errors(continuous.ml_localize(Scenario(), y), b.positions)
    assert (e_subset < 1.0).all(), e_subset.max()
    assert (e_ml < 1.0).mean() <= 0.1


# ---------------------------------------------------------------- Mixture-MMSE


def test_mixture_mean_in_area_and_always_is_posterior_mean(blocked):
    y = blocked.y[:20]
    est = MixtureMeanLocalizer()(Scenario(), y)
    assert est.shape == (20, 2) and np.isfinite(est).all()
    assert (np.abs(est) <= Scenario().area_size / 2).all()
    np.testing.assert_array_equal(est, MixtureMeanLocalizer()(Scenario(los_model="3gpp"), y))
    np.testing.assert_array_equal(
        est, posterior.posterior_mean(Scenario(los_model="3gpp"), y)
    )  # default prior: the 38.901 one
    np.testing.assert_allclose(
        MixtureMeanLocalizer(los_prior="always")(Scenario(), y), posterior.posterior_mean(Scenario(), y), atol=1e-12
    )


# ---------------------------------------------------------------- state_log_posterior


def test_state_log_posterior_prior_support(blocked):
    y, p = blocked.y[:10], blocked.positions[:10]
    all_los = np.ones((10, 4), dtype=bool)
    one_nlos = all_los.copy()
    one_nlos[:, 2] = False
    always = posterior.state_log_posterior(Scenario(), y, p, one_nlos)
    assert always.shape == (10,) and (always == -np.inf).all()
    assert np.isfinite(posterior.state_log_posterior(Scenario(), y, p, all_los)).all()
    assert np.isfinite(posterior.state_log_posterior(Scenario(los_model="3gpp"), y, p, one_nlos)).all()
    assert np.isfinite(posterior.state_log_posterior(Scenario(los_model="3gpp"), y, p, ~all_los)).all()
    # a probability 0 prior forbids LoS, not NLoS
    never = Scenario(los_model=0.0)
    assert (posterior.state_log_posterior(never, y, p, all_los) == -np.inf).all()
    assert np.isfinite(posterior.state_log_posterior(never, y, p, ~all_los)).all()


def test_state_log_posterior_prefers_true_states(blocked):
    """At 20 dB and the true positions the true LoS states beat every single flip, and all flips, on average."""
    sc = Scenario(los_model="3gpp")
    y, p, s = blocked.y, blocked.positions, blocked.los
    true = posterior.state_log_posterior(sc, y, p, s)
    assert np.isfinite(true).all()
    assert (true > posterior.state_log_posterior(sc, y, p, ~s)).mean() > 0.9
    for m in range(4):
        flip = s.copy()
        flip[:, m] = ~flip[:, m]
        other = posterior.state_log_posterior(sc, y, p, flip)
        assert np.mean(true - other) > 0
        assert (true > other).mean() > 0.8


def test_state_log_posterior_validation(blocked):
    y, p = blocked.y[:3], blocked.positions[:3]
    s = np.ones((3, 4), dtype=bool)
    with pytest.raises(ValueError, match="states"):
        posterior.state_log_posterior(Scenario(), y, p, s.astype(int))
    with pytest.raises(ValueError, match="states"):
        posterior.state_log_posterior(Scenario(), y, p, s[:, :3])
    with pytest.raises(ValueError, match="positions"):
        posterior.state_log_posterior(Scenario(), y, p[:2], s)
    with pytest.raises(ValueError, match="positions"):
        posterior.state_log_posterior(Scenario(), y, np.full((3, 2), np.nan), s)


def test_subset_map_refuses_a_zero_los_prior():
    with pytest.raises(ValueError, match="los_prior"):
        SubsetMAPLocalizer(los_prior=0.0)
