"""Position CRB of the LoS model (daun_lib.bounds)."""

import numpy as np
import pytest

from daun_lib import Scenario
from daun_lib.bounds import (
    crb_trace,
    mean_crb_trace,
    position_crb,
    position_fim,
    sine_information,
)
from daun_lib.scenario import steering


def _fd_crb_trace(scenario, p, snr_db, h=1e-5):
    """CRB trace from a finite-difference Fisher information of the full model.

    Real parameters (p_x, p_y, Re beta_1, Im beta_1, ..., Re beta_M, Im beta_M),
    mean ``mu = concat_m beta_m steering(arcsin u_m(p))``, unit-variance complex
    noise: ``J = 2 Re[D^H D]``, then the Schur complement eliminating the gains.
    """
    M, N = scenario.n_bs, scenario.n_antennas
    omega = 10.0 ** (snr_db / 10.0)
    phases = np.random.default_rng(7).uniform(0, 2 * np.pi, M)
    beta = np.sqrt(omega * N) * np.exp(1j * phases)

    def mu(theta):
        pos = theta[:2][None, :]
        b = theta[2::2] + 1j * theta[3::2]
        u = scenario.los_sines(pos)[0]
        a = steering(np.arcsin(u), N, scenario.antenna_spacing)  # (M, N)
        return (b[:, None] * a).ravel()

    theta0 = np.concatenate([p, np.column_stack([beta.real, beta.imag]).ravel()])
    cols = []
    for i in range(theta0.size):
        step = np.zeros_like(theta0)
        step[i] = h
        cols.append((mu(theta0 + step) - mu(theta0 - step)) / (2 * h))
    D = np.stack(cols, axis=1)
    J = 2.0 * np.real(D.conj().T @ D)
    Jpp, Jpb, Jbb = J[:2, :2], J[:2, 2:], J[2:, 2:]
    schur = Jpp - Jpb @ np.linalg.solve(Jbb, Jpb.T)
    return float(np.trace(np.linalg.inv(schur)))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"geometry": "3d"},
        {"n_antennas": 16, "antenna_spacing": 0.4},
        {"n_antennas": 9, "antenna_spacing": 0.3, "geometry": "3d", "bs_height_m": 10.0},
    ],
)
def test_trace_matches_finite_difference_fisher(kwargs):
    s = Scenario(**kwargs)
    pts = np.array([[0.0, 0.0], [7.3, -12.1], [-18.0, 15.5], [19.0, 19.0]])
    for snr in (0.0, 13.0):
        ours = crb_trace(s, pts, snr)
        for k, p in enumerate(pts):
            ref = _fd_crb_trace(s, p, snr)
            assert ours[k] == pytest.approx(ref, rel=1e-6)


def test_sine_information_closed_form():
    s = Scenario()
    N = s.n_antennas
    assert sine_information(s, 0.0) == pytest.approx(N * np.pi**2 * (N**2 - 1) / 6, rel=1e-12)
    s2 = Scenario(n_antennas=8, antenna_spacing=0.25)
    assert sine_information(s2, 10.0) == pytest.approx(10 * 8 * (np.pi / 2) ** 2 * 63 / 6, rel=1e-12)


def test_scaling_with_snr_and_per_user_snr():
    s = Scenario(geometry="3d")
    pts = np.array([[1.0, 2.0], [-5.0, 9.0], [12.0, -3.0]])
    j0 = position_fim(s, pts, 0.0)
    j20 = position_fim(s, pts, 20.0)
    np.testing.assert_allclose(j20, 100.0 * j0, rtol=1e-12)
    np.testing.assert_allclose(position_crb(s, pts, 20.0), position_crb(s, pts, 0.0) / 100.0, rtol=1e-10)
    per = crb_trace(s, pts, np.array([0.0, 10.0, 20.0]))
    np.testing.assert_allclose(per, crb_trace(s, pts, 0.0) / np.array([1.0, 10.0, 100.0]), rtol=1e-10)
    crb = position_crb(s, pts, 5.0)
    np.testing.assert_allclose(crb @ position_fim(s, pts, 5.0), np.broadcast_to(np.eye(2), (3, 2, 2)), atol=1e-9)


def test_mean_trace_default_scenario_and_3d_ratio():
    m2 = mean_crb_trace(Scenario(), 0.0)
    m3 = mean_crb_trace(Scenario(geometry="3d"), 0.0)
    assert m2 == pytest.approx(0.048, rel=0.10)
    assert mean_crb_trace(Scenario(), 20.0) == pytest.approx(m2 / 100.0, rel=1e-10)
    assert 1.1 <= m3 / m2 <= 1.3


def test_singular_geometry_gives_inf_not_nan():
    s = Scenario(bs_positions=((-50.0, -50.0), (50.0, 50.0)))
    pts = np.array([[3.0, 3.0], [-10.0, -10.0], [1.0, 2.0]])
    tr = crb_trace(s, pts, 0.0)
    assert np.isinf(tr[:2]).all() and np.isfinite(tr[2])
    crb = position_crb(s, pts, 0.0)
    assert np.isinf(crb[:2]).all() and not np.isnan(crb).any()
    # 3-D: the elevation tilts the gradients; singular only at the centre
    tr3 = crb_trace(Scenario(bs_positions=((-50.0, -50.0), (50.0, 50.0)), geometry="3d"), pts, 0.0)
    assert np.isfinite(tr3).all()


@pytest.mark.parametrize(
    "positions, snr, name",
    [
        (np.zeros((3,)), 0.0, "positions"),
        (np.zeros((2, 3)), 0.0, "positions"),
        (np.array([[0.0, np.nan]]), 0.0, "positions"),
        (np.zeros((0, 2)), 0.0, "positions"),
        (np.array([[-50.0, -50.0]]), 0.0, "positions"),
        (np.zeros((2, 2)), np.inf, "snr_db"),
        (np.zeros((2, 2)), np.zeros(3), "snr_db"),
        (np.zeros((2, 2)), "high", "snr_db"),
        (np.zeros((2, 2)), True, "snr_db"),
        (np.zeros((2, 2)), 1j, "snr_db"),
    ],
)
def test_input_errors(positions, snr, name):
    with pytest.raises(ValueError, match=name):
        crb_trace(Scenario(), positions, snr)


def test_input_errors_scenario_and_mean():
    with pytest.raises(ValueError, match="scenario"):
        position_fim("not a scenario", np.zeros((1, 2)), 0.0)
    with pytest.raises(ValueError, match="snr_db"):
        mean_crb_trace(Scenario(), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="n:"):
        mean_crb_trace(Scenario(), 0.0, n=0)
    with pytest.raises(ValueError, match="seed"):
        mean_crb_trace(Scenario(), 0.0, seed=-1)
