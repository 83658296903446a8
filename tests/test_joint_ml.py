"""The joint ML readout of several users (daun_lib.joint_ml): analytic derivatives, ascent, checks."""

import numpy as np
import pytest

from daun_lib import Scenario, channel
from daun_lib import joint_ml as jml

SMALL = Scenario(n_antennas=16, grid_shape=(8, 8), n_angles=16)


def _case(s, n_others, seed, zero_column=False):
    rng = np.random.default_rng(seed)
    y = rng.standard_normal((6, s.n_bs, s.n_antennas)) + 1j * rng.standard_normal((6, s.n_bs, s.n_antennas))
    others = rng.uniform(-15, 15, (6, n_others, 2))
    V = np.stack([s.los_steering(others[:, j]) for j in range(n_others)], axis=-1)
    if zero_column:  # a rank-deficient basis: the second user on the first one
        V[..., -1] = V[..., 0]
    Q = jml._basis(V)
    return jml._project_out(y, Q), Q, rng.uniform(-15, 15, (6, 2))


@pytest.mark.parametrize("geometry", ["2d", "3d"])
@pytest.mark.parametrize(("n_others", "zero_column"), [(1, False), (2, False), (2, True)])
def test_analytic_derivatives_match_the_definition(geometry, n_others, zero_column):
    s = Scenario(n_antennas=16, grid_shape=(8, 8), n_angles=16, geometry=geometry)
    r, Q, p = _case(s, n_others, 3 + n_others, zero_column)
    W = jml._moments(s, r, Q)
    F, g, H = jml._conditional_derivatives(s, W, p)
    np.testing.assert_allclose(F, jml._conditional_value(s, r, Q, p), rtol=1e-10)
    # finite differences where no BS sees p near the others' span (1 - ||Q^H a||^2 > 0.01: there the
    # cost is smooth on the scale of the step; nearer the span round-off dominates the differences)
    clear = jml._conditional_terms(s.los_steering(p), r, Q)[1].min(axis=1) > 0.01
    assert clear.sum() >= 3
    h = 1e-4
    for i, e in enumerate(np.eye(2) * h):
        fd_g = (jml._conditional_value(s, r, Q, p + e) - jml._conditional_value(s, r, Q, p - e)) / (2 * h)
        np.testing.assert_allclose(g[clear, i], fd_g[clear], rtol=1e-6, atol=1e-7 * np.abs(g).max())
        fd_h = (jml._conditional_derivatives(s, W, p + e)[1] - jml._conditional_derivatives(s, W, p - e)[1]) / (2 * h)
        np.testing.assert_allclose(H[clear, i], fd_h[clear], rtol=1e-5, atol=1e-6 * np.abs(H).max())


@pytest.mark.parametrize("n_antennas", [16, 50, 7])
def test_phase_product_equals_the_steering_vector(n_antennas):
    s = Scenario(n_antennas=n_antennas, grid_shape=(8, 8), n_angles=16)
    p = np.random.default_rng(0).uniform(-20, 20, (30, 2))
    got = jml._conj_steering(s, s.los_sines(p))
    np.testing.assert_allclose(got, s.los_steering(p).conj(), rtol=0, atol=1e-14)


def test_ascent_never_decreases_the_conditional_cost():
    r, Q, p = _case(SMALL, 1, 7)  # noise only: a rugged cost, the ascent stops where it stops
    W = jml._moments(SMALL, r, Q)
    q = jml._newton(SMALL, W, p)
    before, after = jml._conditional_value(SMALL, r, Q, p), jml._conditional_value(SMALL, r, Q, q)
    assert (after >= before).all() and (after > before).any()


@pytest.mark.parametrize("geometry", ["2d", "3d"])
def test_ascent_reaches_a_noiseless_source(geometry):
    # two LoS sources with random gains per BS, no noise: given the first at its true position, the
    # conditional cost of the second peaks at its true position; the ascent from 0.3 m off gets there
    s = Scenario(n_antennas=16, grid_shape=(8, 8), n_angles=16, geometry=geometry)
    rng = np.random.default_rng(11)
    p1, p2 = rng.uniform(-15, 15, (8, 2)), rng.uniform(-15, 15, (8, 2))
    p2[np.linalg.norm(p2 - p1, axis=1) < 4.0] += 8.0  # well separated
    gains = rng.standard_normal((2, 8, s.n_bs, 1)) + 1j * rng.standard_normal((2, 8, s.n_bs, 1))
    y = gains[0] * s.los_steering(p1) + gains[1] * s.los_steering(p2)
    Q = jml._basis(s.los_steering(p1)[..., None])
    start = p2 + 0.3 * np.stack([np.cos(rng.uniform(0, 2 * np.pi, 8)), np.sin(rng.uniform(0, 2 * np.pi, 8))], axis=1)
    got = jml._newton(s, jml._moments(s, jml._project_out(y, Q), Q), start)
    np.testing.assert_allclose(got, p2, atol=1e-3)


def test_multistart_keeps_the_best_start():
    y = channel.simulate(SMALL, 6, 10.0, seed=3, n_users=2).y
    cand = np.random.default_rng(1).uniform(-18, 18, (6, 3, 2))
    got = jml.multistart(SMALL, y, cand, 2)
    runs = [jml.alternating_projection(SMALL, y, cand[:, list(c)]) for c in ((0, 1), (0, 2), (1, 2))]
    fits = np.stack([jml.joint_fit(SMALL, y, p) for p in runs])
    best = np.argmax(fits, axis=0)
    np.testing.assert_array_equal(got, np.stack(runs)[best, np.arange(6)])


def test_public_functions_check_their_arguments():
    y = channel.simulate(SMALL, 4, 10.0, seed=2, n_users=2).y
    start = np.zeros((4, 2, 2))
    with pytest.raises(ValueError, match="positions"):
        jml.joint_fit(SMALL, y, np.zeros((3, 2, 2)))
    with pytest.raises(ValueError, match="start"):
        jml.alternating_projection(SMALL, y, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="start"):
        jml.alternating_projection(SMALL, y, np.full((4, 2, 2), np.nan))
    with pytest.raises(ValueError, match="sweeps"):
        jml.alternating_projection(SMALL, y, start, sweeps=-1)
    with pytest.raises(ValueError, match="n_users"):
        jml.multistart(SMALL, y, start, 3)
    with pytest.raises(ValueError, match="scenario"):
        jml.joint_fit("scenario", y, start)
    with pytest.raises(ValueError, match="y"):
        jml.joint_fit(SMALL, y[..., :3], start)
