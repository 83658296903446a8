"""Tests of daun_lib.continuous: analytic derivatives, the safeguarded Newton ML and its CRB efficiency."""

from __future__ import annotations

import numpy as np
import pytest

import daun_lib  # noqa: F401  (package import order: localizers before continuous)
from daun_lib import Scenario, bounds
from daun_lib import continuous as C
from daun_lib.scenario import array_phase

GEOMETRIES = ("2d", "3d")


def _pure_los(s: Scenario, n: int, snr_db: float, seed: int):
    """Users uniform in the area; y_m = sqrt(omega N) exp(j phi_m) a_m(u_m(p)) + CN(0, I)."""
    rng = np.random.default_rng(seed)
    half = s.area_size / 2.0
    p = rng.uniform(-half, half, (n, 2))
    a = np.exp(1j * array_phase(s.los_sines(p), s.n_antennas, s.antenna_spacing)) / np.sqrt(s.n_antennas)
    phase = np.exp(1j * rng.uniform(0.0, 2.0 * np.pi, (n, s.n_bs)))[..., None]
    noise = (rng.normal(size=a.shape) + 1j * rng.normal(size=a.shape)) / np.sqrt(2.0)
    return p, np.sqrt(10 ** (snr_db / 10) * s.n_antennas) * phase * a + noise


def _random_y(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4, 50)) + 1j * rng.normal(size=(n, 4, 50))


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("cost", C.COSTS)
def test_derivatives_match_finite_differences(geometry, cost):
    s = Scenario(geometry=geometry)
    rng = np.random.default_rng(1)
    n = 8
    _, y = _pure_los(s, n, 10.0, 3)
    y = y + _random_y(n)  # off the peak too
    p = rng.uniform(-20, 20, (n, 2))
    w = rng.uniform(0.0, 2.0, (n, 4))
    F, g, H = C.cost_derivatives(s, y, p, w, cost)
    assert F.shape == (n,) and g.shape == (n, 2) and H.shape == (n, 2, 2)
    np.testing.assert_array_equal(F, C.cost_values(s, y, p, w, cost))
    h = 1e-5
    g_fd, H_fd = np.zeros_like(g), np.zeros_like(H)
    for i in range(2):
        e = np.zeros(2)
        e[i] = h
        Fp, gp, _ = C.cost_derivatives(s, y, p + e, w, cost)
        Fm, gm, _ = C.cost_derivatives(s, y, p - e, w, cost)
        g_fd[:, i] = (Fp - Fm) / (2 * h)
        H_fd[:, :, i] = (gp - gm) / (2 * h)
    assert np.abs(g_fd - g).max() <= 1e-6 * np.abs(g).max()
    assert np.abs(H_fd - H).max() <= 1e-6 * np.abs(H).max()
    np.testing.assert_allclose(H, np.swapaxes(H, 1, 2), rtol=0, atol=1e-12 * np.abs(H).max())


def test_dpd_cost_is_the_grid_dpd_cost():
    from daun_lib.baselines import dpd

    s = Scenario()
    y = _random_y(5)
    k = np.array([0, 17, 450, 899, 123])
    F = C.cost_values(s, y, s.grid[k])
    np.testing.assert_allclose(F, dpd.cost(s.dictionaries()[0], y)[np.arange(5), k], rtol=1e-10)
    np.testing.assert_array_equal(C.grid_start(s, y), dpd.localize(s, y))


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("cost", C.COSTS)
def test_newton_is_monotone_and_stays_in_the_area(geometry, cost):
    s = Scenario(geometry=geometry)
    n = 60
    rng = np.random.default_rng(5)
    _, y = _pure_los(s, n, 0.0, 7)
    start = rng.uniform(-20, 20, (n, 2))  # a start outside the area is refused (issue 24)
    w = rng.integers(0, 2, (n, 4)).astype(float)
    out = C.newton_ml(s, y, start, weights=w, cost=cost)
    assert out.shape == (n, 2) and np.isfinite(out).all()
    assert np.abs(out).max() <= s.area_size / 2
    we = C.effective_weights(s, w, n)
    F0 = C.cost_values(s, y, start, we, cost)
    F1 = C.cost_values(s, y, out, we, cost)
    assert (F1 >= F0).all()


def test_stationary_point_and_boundary():
    s = Scenario()
    _, y = _pure_los(s, 40, 20.0, 11)
    p = C.ml_localize(s, y)
    _, g, H = C.cost_derivatives(s, y, p)
    inside = (np.abs(p) < 20 - 1e-9).all(axis=1)
    scale = np.abs(H).max(axis=(1, 2)) * 1e-5  # gradient of a step of 1e-5 m
    assert (np.abs(g[inside]).max(axis=1) <= scale[inside]).all()
    # a noiseless user half a metre outside the area: the estimate is on the boundary, never outside
    u = s.los_sines(np.array([[20.5, 3.0]]))
    y_out = np.sqrt(100 * 50) * np.exp(1j * array_phase(u, 50, 0.5)) / np.sqrt(50)
    est = C.ml_localize(s, y_out)
    assert est[0, 0] == 20.0 and abs(est[0, 1] - 3.0) < 0.5


@pytest.mark.parametrize("snr_db", [10.0, 20.0])
def test_pure_los_mse_attains_the_crb(snr_db):
    s = Scenario()
    p, y = _pure_los(s, 300, snr_db, 1000 + int(snr_db))
    est = C.ml_localize(s, y)
    ratio = np.mean(((est - p) ** 2).sum(axis=1)) / np.mean(bounds.crb_trace(s, p, snr_db))
    assert 0.8 <= ratio <= 1.3, ratio


def test_weights_subsets_and_oracle():
    s = Scenario()
    n = 30
    p, y = _pure_los(s, n, 10.0, 21)
    full = C.ml_localize(s, y)
    one = np.zeros((n, 4))
    one[:, 2] = 1.0  # a single BS: localised with all BSs
    np.testing.assert_array_equal(C.ml_localize(s, y, weights=one), full)
    np.testing.assert_array_equal(C.los_oracle(s, y, np.ones((n, 4), bool)), full)
    # a blocked BS whose data is unrelated noise: the oracle drops it
    y2 = y.copy()
    y2[:, 0] = _random_y(n, 3)[:, 0] * 10
    los = np.ones((n, 4), bool)
    los[:, 0] = False
    est = C.los_oracle(s, y2, los)
    assert np.isfinite(est).all()
    assert np.mean(((est - p) ** 2).sum(1)) < 0.1 * np.mean(((C.ml_localize(s, y2) - p) ** 2).sum(1))
    both = C.ml_localize(s, y2, cost="per_bs_noise")
    assert np.isfinite(both).all()
    # a BS that received nothing, and a noiseless LoS signal: finite costs and estimates
    y3 = y.copy()
    y3[:, 1] = 0.0
    u = s.los_sines(p)
    y3[:, 3] = np.exp(1j * array_phase(u[:, 3], 50, 0.5)) * 30
    for cost in C.COSTS:
        F, g, H = C.cost_derivatives(s, y3, p, cost=cost)
        assert np.isfinite(F).all() and np.isfinite(g).all() and np.isfinite(H).all()
        assert np.isfinite(C.ml_localize(s, y3, cost=cost)).all()


def test_start_is_used():
    s = Scenario()
    p, y = _pure_los(s, 10, 20.0, 31)
    start = s.grid[s.nearest_grid(p)]
    np.testing.assert_allclose(C.ml_localize(s, y, start=start), C.ml_localize(s, y), atol=1e-5)


def test_trust_radius_default():
    s = Scenario()
    assert C.trust_radius(s) == pytest.approx(40 / 30)
    assert C.trust_radius(Scenario(n_antennas=64, grid_shape=(10, 10))) == pytest.approx(30 * np.sqrt(2) / 32)


def test_validation():
    s = Scenario()
    y = _random_y(3)
    p = np.zeros((3, 2))
    with pytest.raises(ValueError, match="cost"):
        C.cost_derivatives(s, y, p, cost="mle")
    with pytest.raises(ValueError, match="weights"):
        C.cost_derivatives(s, y, p, weights=np.ones((3, 3)))
    with pytest.raises(ValueError, match="weights"):
        C.ml_localize(s, y, weights=-np.ones((3, 4)))
    with pytest.raises(ValueError, match="weights"):
        C.ml_localize(s, y, weights=np.full((3, 4), np.nan))
    with pytest.raises(ValueError, match="start"):
        C.newton_ml(s, y, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="start"):
        C.newton_ml(s, y, np.full((3, 2), np.inf))
    with pytest.raises(ValueError, match="p"):
        C.cost_derivatives(s, y, np.array([[50.0, 50.0]] * 3))
    with pytest.raises(ValueError, match="y"):
        C.ml_localize(s, y[:, :, :10])
    with pytest.raises(ValueError, match="scenario"):
        C.grid_start("paper", y)
    with pytest.raises(ValueError, match="los"):
        C.los_oracle(s, y, np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="params"):
        C.ml_localize(s, y, params={"max_iter": 3})
    for bad in ({"max_iter": 0}, {"tol_m": -1.0}, {"trust_radius_m": 0.0}, {"max_halvings": 1.5}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            C.MLParams(**bad)
