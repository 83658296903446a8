"""The continuous and Bayesian readouts "ml", "ml-bs", "mmse", "disk" (daun_lib.readouts)."""

import numpy as np
import pytest

from daun_lib import Scenario, bounds, channel, continuous, methods, posterior
from daun_lib.baselines import dpd
from daun_lib.readouts import READOUTS, get_readout
from daun_lib.refine import argmax_rows
from daun_lib.scenario import array_phase

NEW = ("ml", "ml-bs", "mmse", "disk")


@pytest.fixture(scope="module")
def data():
    return channel.simulate(Scenario(), 40, 5.0, seed=11)


def _dpd_score(sc, y):
    return dpd.cost(sc.dictionaries()[0], y)


def test_registered():
    for name in NEW:
        assert name in READOUTS and get_readout(name) is READOUTS[name]


def test_ml_from_dpd_map_is_newton_from_the_argmax(data):
    sc, y = Scenario(), data.y
    start = sc.grid[np.argmax(_dpd_score(sc, y), axis=1)]
    want = continuous.newton_ml(sc, y, start)
    np.testing.assert_array_equal(READOUTS["ml"](_dpd_score(sc, y), sc, y), want)
    np.testing.assert_array_equal(dpd.DPDLocalizer(readout="ml")(sc, y), want)
    np.testing.assert_array_equal(methods.REGISTRY["DPD-ML"](sc, y), want)
    # the map only picks the start: it moved off the grid, and the cost did not decrease
    assert not np.isin(want[:, 0], sc.grid[:, 0]).all()
    assert (continuous.cost_values(sc, y, want) >= continuous.cost_values(sc, y, start) - 1e-9).all()
    # ml-bs: a "dpd" ascent first, then the per-BS cost from there (continuous.ml_localize)
    want_bs = continuous.newton_ml(sc, y, want, cost="per_bs_noise")
    np.testing.assert_array_equal(dpd.DPDLocalizer(readout="ml-bs")(sc, y), want_bs)


def test_ml_recovers_off_grid_positions_on_noiseless_pure_los():
    sc = Scenario(multipath=False)
    b = channel.simulate(sc, 30, 150.0, seed=4)
    est = dpd.DPDLocalizer(readout="ml")(sc, b.y)
    # the users are off the grid: the grid pick alone is far from them
    grid_pick = dpd.DPDLocalizer(readout="argmax")(sc, b.y)
    assert np.linalg.norm(grid_pick - b.positions, axis=1).max() > 1e-2
    assert np.linalg.norm(est - b.positions, axis=1).max() < 1e-6


def test_ml_recovers_positions_from_hand_built_signals():
    """y_m = exp(j phi_m) sqrt(N) a_m(u_m(p)), built from the steering vectors alone (no simulator)."""
    sc = Scenario()
    rng = np.random.default_rng(2)
    p = rng.uniform(-19.0, 19.0, size=(15, 2))
    u = sc.los_sines(p)  # (n, M)
    a = np.exp(1j * array_phase(u, sc.n_antennas, sc.antenna_spacing)) / np.sqrt(sc.n_antennas)  # (n, M, N)
    y = np.exp(1j * rng.uniform(0, 2 * np.pi, size=(15, sc.n_bs, 1))) * np.sqrt(sc.n_antennas) * a
    est = dpd.DPDLocalizer(readout="ml")(sc, y)
    assert np.linalg.norm(est - p, axis=1).max() < 1e-6


def test_ml_bs_finite_in_area():
    b = channel.simulate(Scenario(los_model="3gpp"), 40, 0.0, seed=5)
    est = dpd.DPDLocalizer(readout="ml-bs")(Scenario(), b.y)
    assert est.shape == (40, 2) and np.isfinite(est).all()
    assert (np.abs(est) <= Scenario().area_size / 2).all()


def test_bayesian_readouts_are_the_posterior_functions(data):
    sc, y = Scenario(), data.y[:15]
    score = _dpd_score(sc, y)
    mmse = posterior.posterior_mean(sc, y)
    disk = posterior.disk_map(sc, y)
    np.testing.assert_array_equal(READOUTS["mmse"](score, sc, y), mmse)
    np.testing.assert_array_equal(READOUTS["disk"](score, sc, y), disk)
    np.testing.assert_array_equal(dpd.DPDLocalizer(readout="mmse")(sc, y), mmse)
    np.testing.assert_array_equal(dpd.DPDLocalizer(readout="disk")(sc, y), disk)
    # they ignore the map: any other valid map gives the same positions
    np.testing.assert_array_equal(READOUTS["mmse"](np.zeros_like(score), sc, y), mmse)


def test_daun_ml_readout_starts_at_the_networks_peak(data):
    sc, y = Scenario(), data.y[:6]
    X = methods._pretrained("2d").estimate_x(y)
    start = sc.grid[argmax_rows(X)]
    want = continuous.newton_ml(sc, y, start)
    got = methods.DAUNLocalizer(readout="ml")(sc, y)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    np.testing.assert_allclose(READOUTS["ml"](X, sc, y), want, rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", NEW)
def test_malformed_map_names_score(name, data):
    sc, y = Scenario(), data.y[:3]
    for bad in (np.zeros((3, 7)), np.zeros((3, 7, 4)), np.zeros(sc.n_grid)):
        with pytest.raises(ValueError, match="score"):
            READOUTS[name](bad, sc, y)


@pytest.mark.parametrize("c", [2.0**-64, 2.0**64])
def test_dpd_ml_scale_invariant_exactly_for_powers_of_two(c, data):
    """Scaling by a power of two is exact in floating point, so every comparison of the Newton path is the same."""
    sc, y = Scenario(), data.y[:20]
    loc = dpd.DPDLocalizer(readout="ml")
    np.testing.assert_array_equal(loc(sc, c * y), loc(sc, y))


@pytest.mark.parametrize("c", [1e-20, 1e20])
def test_dpd_ml_scale_invariant(c, data):
    """Any scale: the same positions up to the float resolution of the maximiser.

    The Newton steps are accepted by comparing cost values, which are known to a
    relative ``eps = 2.2e-16``; near the peak ``F(p + d) - F(p) = H d^2 / 2`` with
    ``H ~ 2 F var(k) |g|^2`` (continuous module docstring; ``var(k) = pi^2 (N^2 - 1) / 12``,
    ``|g| ~ 1 / 70 m``), so positions within ``sqrt(2 eps F / H) ~ 2e-8 m`` of the
    peak have equal costs.  The tolerance is a few times that.
    """
    sc, y = Scenario(), data.y[:20]
    loc = dpd.DPDLocalizer(readout="ml")
    np.testing.assert_allclose(loc(sc, c * y), loc(sc, y), rtol=0, atol=1e-7)


@pytest.mark.parametrize("snr", [40.0, 60.0, 150.0])
def test_ml_bs_reaches_the_crb_on_pure_los_at_very_high_snr(snr):
    # the per-BS cost has narrow ridges along each bearing line at high SNR; the readout must not stall on one
    sc = Scenario(multipath=False)
    b = channel.simulate(sc, 40, snr, seed=4)
    est = dpd.DPDLocalizer(readout="ml-bs")(sc, b.y)
    mse = np.mean(np.sum((est - b.positions) ** 2, axis=1))
    assert mse < 10 * bounds.crb_trace(sc, b.positions, snr).mean()


def test_bayesian_readouts_ignore_the_scenarios_los_model_and_check_the_sample_count(data):
    sc, y = Scenario(), data.y[:20]
    three = Scenario(los_model="3gpp")
    np.testing.assert_array_equal(methods.REGISTRY["DPD-MMSE"](three, y), methods.REGISTRY["DPD-MMSE"](sc, y))
    np.testing.assert_array_equal(methods.REGISTRY["DPD-Disk"](three, y), methods.REGISTRY["DPD-Disk"](sc, y))
    score = _dpd_score(sc, y)
    for name in ("mmse", "disk"):
        with pytest.raises(ValueError, match="y"):
            READOUTS[name](score[:3], sc, y[:5])


def test_bayesian_entries_refuse_samples_far_below_the_noise(data):
    y = data.y[:10] * 1e-12
    for name in ("DPD-MMSE", "DPD-Disk", "Subset-MAP", "Mixture-MMSE"):
        with pytest.raises(ValueError, match="noise"):
            methods.REGISTRY[name](Scenario(), y)


def test_continuous_ml_is_invariant_to_extreme_scales_of_y_and_weights(data):
    sc, y = Scenario(), data.y[:30]
    ref = continuous.ml_localize(sc, y)
    for c in (1e100, 1e-100, 1e150):
        np.testing.assert_allclose(continuous.ml_localize(sc, y * c), ref, atol=1e-6)
    w = np.array([1.0, 1.0, 0.0, 1.0])
    ref_w = continuous.ml_localize(sc, y, weights=w)
    for c in (1e300, 1e-300):
        np.testing.assert_allclose(continuous.ml_localize(sc, y, weights=w * c), ref_w, atol=1e-6)
