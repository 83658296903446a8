"""Tests of daun_lib.posterior (the Bayesian position posterior)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage
from scipy.special import logsumexp

from daun_lib import Scenario
from daun_lib import posterior as P
from daun_lib._posterior_grid import candidate_shape
from daun_lib.scenario import array_phase


def _pure_los(scenario: Scenario, positions: np.ndarray, snr_db: float, seed: int, los=None) -> np.ndarray:
    """y_m = sqrt(omega N) exp(j phi) a_m(p) + n_m; links with ``los[i, m] = False`` get CN(0, (1 + omega) I)."""
    rng = np.random.default_rng(seed)
    n, M, N = positions.shape[0], scenario.n_bs, scenario.n_antennas
    omega = 10.0 ** (snr_db / 10.0)
    a = np.exp(1j * array_phase(scenario.los_sines(positions), N, scenario.antenna_spacing)) / np.sqrt(N)
    phase = np.exp(2j * np.pi * rng.random((n, M)))[..., None]
    noise = (rng.standard_normal((n, M, N)) + 1j * rng.standard_normal((n, M, N))) / np.sqrt(2.0)
    y = np.sqrt(omega * N) * phase * a + noise
    if los is not None:
        diffuse = (rng.standard_normal((n, M, N)) + 1j * rng.standard_normal((n, M, N))) * np.sqrt((1 + omega) / 2)
        y = np.where(los[..., None], y, diffuse)
    return y


def _users(n: int, seed: int, half: float = 18.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-half, half, (n, 2))


def test_candidates_regular_grid_inside_area():
    s = Scenario()
    c = P.candidates(s, 0.25)
    assert c.shape == (160 * 160, 2)
    assert not c.flags.writeable
    assert np.abs(c).max() < s.area_size / 2
    np.testing.assert_allclose(np.diff(np.unique(c[:, 0])), 0.25)
    np.testing.assert_allclose(c[1] - c[0], [0.0, 0.25])  # x-major, like Scenario.grid
    assert P.candidates(s, 0.3).shape == (134 * 134, 2)  # ceil(40 / 0.3) = 134, spacing <= 0.3


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(resolution_m=0.0),
        dict(resolution_m=math.nan),
        dict(disk_radius_m=-1.0),
        dict(k_factor_db=-math.inf),
        dict(k_factor_db=math.nan),
        dict(k_factor_db="9"),
        dict(snr_db=math.inf),
        dict(evaluation="fft"),
    ],
)
def test_params_validated(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        P.PosteriorParams(**kwargs)


def test_inputs_validated():
    s = Scenario()
    y = _pure_los(s, _users(2, 0), 10.0, 0)
    with pytest.raises(ValueError):
        P.posterior_mean(s, y[:, :3])
    with pytest.raises(ValueError, match="params"):
        P.disk_map(s, y, params=0.25)
    with pytest.raises(ValueError, match="scenario"):
        P.map_position("Scenario()", y)
    with pytest.raises(ValueError, match="positions"):
        P.los_posterior(s, y, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="resolution_m"):
        P.candidates(s, -1.0)


def test_posterior_normalised_and_concentrates_at_truth_high_snr():
    s = Scenario()
    p = _users(4, 1)
    y = _pure_los(s, p, 20.0, 1)
    prm = P.PosteriorParams(k_factor_db=math.inf)
    lp = P.log_posterior(s, y, prm)
    assert lp.shape == (4, 160 * 160) and np.isfinite(lp).all()
    np.testing.assert_allclose(logsumexp(lp, axis=1), 0.0, atol=1e-10)
    for est in (P.posterior_mean(s, y, prm), P.map_position(s, y, prm), P.disk_map(s, y, prm)):
        assert np.isfinite(est).all()
        assert np.linalg.norm(est - p, axis=1).max() < 0.25  # one candidate spacing
    # the 9 dB model, on the same data, also concentrates at the truth
    assert np.linalg.norm(P.posterior_mean(s, y) - p, axis=1).max() < 0.25


def test_single_sample_and_known_snr():
    s = Scenario()
    p = _users(1, 2)
    y = _pure_los(s, p, 10.0, 2)
    a = P.map_position(s, y[0], P.PosteriorParams(snr_db=10.0))
    b = P.map_position(s, y, P.PosteriorParams(snr_db=10.0))
    np.testing.assert_array_equal(a, b)
    assert np.linalg.norm(a - p) < 0.5


def test_estimate_omega():
    s = Scenario()
    y = _pure_los(s, _users(400, 3), 0.0, 3)
    w = P.estimate_omega(s, y)
    assert w.shape == (400,)
    # std of the estimator at omega = 1: sqrt(3 / (M N)) = 0.12; the mean of 400 is within 0.02 of 1
    assert abs(w.mean() - 1.0) < 0.03
    noise = _pure_los(s, _users(50, 4), -150.0, 4)
    np.testing.assert_allclose(P.estimate_omega(s, noise).min(), 1.0 / math.sqrt(200))


def test_disk_mass_matches_correlation_with_disk_kernel():
    rng = np.random.default_rng(5)
    prob = rng.random((3, 17, 17))
    h, r = 0.25, 1.0
    R = 4
    ii, jj = np.mgrid[-R : R + 1, -R : R + 1]
    kernel = ((ii**2 + jj**2) * h * h <= r * r + 1e-12).astype(float)
    assert kernel.sum() == 49  # lattice points within radius 4
    ref = ndimage.correlate(prob, kernel[None], mode="constant", cval=0.0)
    np.testing.assert_allclose(P.disk_mass(prob, h, r), ref, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="prob"):
        P.disk_mass(prob[0], h, r)


def test_disk_map_prefers_mass_over_peak():
    # a tall isolated spike against a broad plateau holding more mass within 1 m: disk MAP takes the plateau
    s = Scenario()
    nx, h = candidate_shape(s, 0.25)
    prob = np.zeros((1, nx, nx))
    prob[0, 10, 10] = 0.2
    prob[0, 100:103, 100:103] = 0.8 / 9
    mass = P.disk_mass(prob, h, 1.0)
    assert mass[0, 10, 10] == pytest.approx(0.2)
    assert mass.max() == pytest.approx(0.8)
    k = np.argmax(mass.reshape(1, -1), axis=1)[0]
    assert np.hypot(k // nx - 101, k % nx - 101) <= 4


def test_los_posterior():
    s = Scenario(los_model=0.5)
    p = _users(20, 6)
    los = np.ones((20, 4), dtype=bool)
    los[:, 0] = False  # BS 0: diffuse, NLoS-like link
    y = _pure_los(s, p, 20.0, 6, los=los)
    q = P.los_posterior(s, y, p, P.PosteriorParams(k_factor_db=math.inf))
    assert q.shape == (20, 4) and np.isfinite(q).all()
    assert q[:, 1:].min() > 0.99
    assert q[:, 0].max() < 0.01
    # the mixture posterior still finds the users from the three LoS links
    est = P.posterior_mean(s, y, P.PosteriorParams(k_factor_db=math.inf))
    assert np.median(np.linalg.norm(est - p, axis=1)) < 0.25
    # "always": every link LoS with prior 1
    np.testing.assert_array_equal(P.los_posterior(Scenario(), y, p), 1.0)
    # "3gpp": finite, within [0, 1]
    g = P.los_posterior(Scenario(los_model="3gpp"), y, p)
    assert ((g >= 0) & (g <= 1)).all()


def test_3d_geometry_and_low_snr_finite():
    s = Scenario(geometry="3d", los_model="3gpp")
    p = _users(3, 7)
    y = _pure_los(s, p, 20.0, 7)
    prm = P.PosteriorParams(resolution_m=0.5, k_factor_db=math.inf)
    assert np.linalg.norm(P.map_position(s, y, prm) - p, axis=1).max() < 0.5
    y_low = _pure_los(s, p, -20.0, 8)
    for f in (P.posterior_mean, P.disk_map, P.map_position):
        assert np.isfinite(f(s, y_low, prm)).all()


@pytest.mark.parametrize("los_model", ["always", "3gpp"])
@pytest.mark.parametrize("snr_db", [-10.0, 10.0, 30.0])
def test_line_evaluation_matches_dense(los_model, snr_db):
    """The default ``evaluation="line"`` (FFT line + 8-point Lagrange) against the dense product: the log
    posterior where it holds mass and every readout.  Measured on 60 snapshots per point (seeds 9090..9130,
    not the sweeps'): |d log p| <= 2.2e-5 where log p > -30 (at -10 dB, 5e-9 elsewhere), posterior means
    within 2e-11 m, the disk map identical; the bounds below leave a factor of about 10."""
    from daun_lib import channel
    from daun_lib._posterior_grid import log_posterior_blocks

    s = Scenario(los_model=los_model)
    y = channel.simulate(s, 12, snr_db, seed=41).y
    line, dense = P.PosteriorParams(), P.PosteriorParams(evaluation="dense")
    assert line.evaluation == "line"
    lpl = np.concatenate([lp for _, lp in log_posterior_blocks(s, y, line)])
    lpd = np.concatenate([lp for _, lp in log_posterior_blocks(s, y, dense)])
    mass = lpd > -30
    assert np.abs(lpl - lpd)[mass].max() < (3e-4 if snr_db < 0 else 1e-7)
    assert np.abs(P.posterior_mean(s, y, line) - P.posterior_mean(s, y, dense)).max() < 1e-9
    np.testing.assert_array_equal(P.disk_map(s, y, line), P.disk_map(s, y, dense))
    np.testing.assert_array_equal(P.map_position(s, y, line), P.map_position(s, y, dense))
