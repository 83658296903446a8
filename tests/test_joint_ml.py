"""The joint ML readout of several users (daun_lib.joint_ml and its _alternating_projection): derivatives, ascent."""

import numpy as np
import pytest

from daun_lib import Scenario, channel
from daun_lib import _alternating_projection as ap
from daun_lib import joint_ml as jml
from daun_lib.continuous import unit_scale_y

SMALL = Scenario(n_antennas=16, grid_shape=(8, 8), n_angles=16)


def _case(s, n_others, seed, zero_column=False):
    rng = np.random.default_rng(seed)
    y = rng.standard_normal((6, s.n_bs, s.n_antennas)) + 1j * rng.standard_normal((6, s.n_bs, s.n_antennas))
    others = rng.uniform(-15, 15, (6, n_others, 2))
    V = np.stack([s.los_steering(others[:, j]) for j in range(n_others)], axis=-1)
    if zero_column:  # a rank-deficient basis: the second user on the first one
        V[..., -1] = V[..., 0]
    Q = jml.orthonormal_basis(V)
    return jml.project_out(y, Q), Q, rng.uniform(-15, 15, (6, 2))


@pytest.mark.parametrize("geometry", ["2d", "3d"])
@pytest.mark.parametrize(("n_others", "zero_column"), [(1, False), (2, False), (2, True)])
def test_analytic_derivatives_match_the_definition(geometry, n_others, zero_column):
    s = Scenario(n_antennas=16, grid_shape=(8, 8), n_angles=16, geometry=geometry)
    r, Q, p = _case(s, n_others, 3 + n_others, zero_column)
    W = ap._moments(s, r, Q)
    F, g, H = ap._conditional_derivatives(s, W, p)
    np.testing.assert_allclose(F, ap._conditional_value(s, r, Q, p), rtol=1e-10)
    # finite differences where no BS sees p near the others' span (1 - ||Q^H a||^2 > 0.01: there the
    # cost is smooth on the scale of the step; nearer the span round-off dominates the differences)
    clear = jml.conditional_terms(s.los_steering(p), r, Q)[1].min(axis=1) > 0.01
    assert clear.sum() >= 3
    h = 1e-4
    for i, e in enumerate(np.eye(2) * h):
        fd_g = (ap._conditional_value(s, r, Q, p + e) - ap._conditional_value(s, r, Q, p - e)) / (2 * h)
        np.testing.assert_allclose(g[clear, i], fd_g[clear], rtol=1e-6, atol=1e-7 * np.abs(g).max())
        fd_h = (ap._conditional_derivatives(s, W, p + e)[1] - ap._conditional_derivatives(s, W, p - e)[1]) / (2 * h)
        np.testing.assert_allclose(H[clear, i], fd_h[clear], rtol=1e-5, atol=1e-6 * np.abs(H).max())


@pytest.mark.parametrize("n_antennas", [16, 50, 7])
def test_phase_product_equals_the_steering_vector(n_antennas):
    s = Scenario(n_antennas=n_antennas, grid_shape=(8, 8), n_angles=16)
    p = np.random.default_rng(0).uniform(-20, 20, (30, 2))
    got = ap.conj_steering(s, s.los_sines(p))
    np.testing.assert_allclose(got, s.los_steering(p).conj(), rtol=0, atol=1e-14)


def test_ascent_never_decreases_the_conditional_cost():
    r, Q, p = _case(SMALL, 1, 7)  # noise only: a rugged cost, the ascent stops where it stops
    W = ap._moments(SMALL, r, Q)
    q = ap._newton(SMALL, W, p)
    before, after = ap._conditional_value(SMALL, r, Q, p), ap._conditional_value(SMALL, r, Q, q)
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
    Q = jml.orthonormal_basis(s.los_steering(p1)[..., None])
    start = p2 + 0.3 * np.stack([np.cos(rng.uniform(0, 2 * np.pi, 8)), np.sin(rng.uniform(0, 2 * np.pi, 8))], axis=1)
    got = ap._newton(s, ap._moments(s, jml.project_out(y, Q), Q), start)
    np.testing.assert_allclose(got, p2, atol=1e-3)


def test_multistart_keeps_the_best_start():
    y = channel.simulate(SMALL, 6, 10.0, seed=3, n_users=2).y
    cand = np.random.default_rng(1).uniform(-18, 18, (6, 3, 2))
    got = jml.multistart(SMALL, y, cand, 2)
    runs = [jml.joint_newton(SMALL, y, cand[:, list(c)]) for c in ((0, 1), (0, 2), (1, 2))]
    fits = np.stack([jml.joint_fit(SMALL, y, p) for p in runs])
    best = np.argmax(fits, axis=0)
    np.testing.assert_array_equal(got, np.stack(runs)[best, np.arange(6)])
    assert len(set(best.tolist())) > 1  # the case is not trivial: different starts win


def _two_sources(s, n, seed, n_users=2, noise=0.0):
    """``n_users`` LoS sources with random gains per BS (well apart), plus optional white noise."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(-15, 15, (n, n_users, 2))
    for i in range(1, n_users):  # keep them apart: a clear joint maximum at the truth
        while True:
            close = (np.linalg.norm(p[:, i, None] - p[:, :i], axis=-1) < 5.0).any(axis=1)
            if not close.any():
                break
            p[close, i] = rng.uniform(-15, 15, (close.sum(), 2))
    gains = rng.standard_normal((n_users, n, s.n_bs, 1)) + 1j * rng.standard_normal((n_users, n, s.n_bs, 1))
    y = sum(gains[u] * s.los_steering(p[:, u]) for u in range(n_users))
    y = y + noise * (rng.standard_normal(y.shape) + 1j * rng.standard_normal(y.shape))
    return y, p


@pytest.mark.parametrize("geometry", ["2d", "3d"])
@pytest.mark.parametrize("n_users", [2, 3])
def test_joint_derivatives_match_the_joint_fit(geometry, n_users):
    s = Scenario(n_antennas=16, grid_shape=(8, 8), n_angles=16, geometry=geometry)
    y, truth = _two_sources(s, 6, 20 + n_users, n_users, noise=0.3)
    p = truth + np.random.default_rng(5).normal(0.0, 0.5, truth.shape)
    J, g, H = jml._joint_derivatives(s, y, p)
    np.testing.assert_allclose(J, ap.explained_energy(s, y, p), rtol=1e-10)
    assert np.allclose(H, np.swapaxes(H, 1, 2), rtol=1e-10, atol=1e-12 * np.abs(H).max())
    h = 1e-5
    for i in range(2 * n_users):
        e = np.zeros(2 * n_users)
        e[i] = h
        e = e.reshape(n_users, 2)
        fd = (ap.explained_energy(s, y, p + e) - ap.explained_energy(s, y, p - e)) / (2 * h)
        np.testing.assert_allclose(g[:, i], fd, rtol=1e-6, atol=1e-7 * np.abs(g).max())
    # at a noiseless exact fit the Gauss-Newton curvature is the exact Hessian (the residual is 0)
    y0, t0 = _two_sources(s, 6, 30 + n_users, n_users)
    J0, g0, H0 = jml._joint_derivatives(s, y0, t0)
    assert np.abs(g0).max() < 1e-8 * np.abs(H0).max()
    for i in range(2 * n_users):
        e = np.zeros(2 * n_users)
        e[i] = h
        e = e.reshape(n_users, 2)
        fd = (jml._joint_derivatives(s, y0, t0 + e)[1] - jml._joint_derivatives(s, y0, t0 - e)[1]) / (2 * h)
        np.testing.assert_allclose(H0[:, i], fd, rtol=1e-5, atol=1e-6 * np.abs(H0).max())


@pytest.mark.parametrize("geometry", ["2d", "3d"])
@pytest.mark.parametrize("n_users", [2, 3])
def test_joint_newton_reaches_noiseless_sources(geometry, n_users):
    s = Scenario(n_antennas=16, grid_shape=(8, 8), n_angles=16, geometry=geometry)
    y, truth = _two_sources(s, 8, 40 + n_users, n_users)
    start = truth + 0.3 * np.random.default_rng(2).uniform(-1, 1, truth.shape)
    np.testing.assert_allclose(jml.joint_newton(s, y, start), truth, atol=1e-3)


@pytest.mark.parametrize("ascent", ["joint_newton", "alternating_projection"])
def test_ascents_never_decrease_the_joint_fit(ascent):
    # noise only (a rugged cost, many rejected steps): the fit after is never below the fit before
    rng = np.random.default_rng(8)
    y = rng.standard_normal((400, SMALL.n_bs, 16)) + 1j * rng.standard_normal((400, SMALL.n_bs, 16))
    start = rng.uniform(-19, 19, (400, 2, 2))
    p = getattr(jml, ascent)(SMALL, y, start)
    before, after = jml.joint_fit(SMALL, y, start), jml.joint_fit(SMALL, y, p)
    assert (after >= before * (1 - 1e-12)).all()
    assert (after > before * (1 + 1e-3)).mean() > 0.9  # and they do move uphill


def test_public_functions_check_their_arguments():
    y = channel.simulate(SMALL, 4, 10.0, seed=2, n_users=2).y
    start = np.random.default_rng(0).uniform(-15, 15, (4, 2, 2))
    with pytest.raises(ValueError, match="^positions:"):
        jml.joint_fit(SMALL, y, np.zeros((3, 2, 2)))
    for fn in (jml.alternating_projection, jml.joint_newton):
        with pytest.raises(ValueError, match="^start:"):
            fn(SMALL, y, np.zeros((4, 2)))
        with pytest.raises(ValueError, match="^start:"):
            fn(SMALL, y, np.full((4, 2, 2), np.nan))
        with pytest.raises(ValueError, match="^start: expected points inside the user area"):
            fn(SMALL, y, start + 10.0)
        with pytest.raises(ValueError, match="^start: expected distinct points"):
            fn(SMALL, y, np.repeat(start[:, :1], 2, axis=1))
    with pytest.raises(ValueError, match="^sweeps:"):
        jml.alternating_projection(SMALL, y, start, sweeps=-1)
    with pytest.raises(ValueError, match="^n_users:"):
        jml.multistart(SMALL, y, start, 3)
    with pytest.raises(ValueError, match="^candidates: C"):
        jml.multistart(SMALL, y, np.random.default_rng(1).uniform(-15, 15, (4, 12, 2)), 4)
    with pytest.raises(ValueError, match="^scenario:"):
        jml.joint_fit("scenario", y, start)
    with pytest.raises(ValueError, match="^y:"):
        jml.joint_fit(SMALL, y[..., :3], start)
    # one user and no sweep: the start, as for two users
    assert np.array_equal(jml.alternating_projection(SMALL, y, start[:, :1], sweeps=0), start[:, :1])


def _recorded(monkeypatch, module, name):
    """Record every value the evaluation ``module.<name>`` returns (it returns value, gradient, Hessian)."""
    seen = []
    inner = getattr(module, name)

    def spy(*args):
        out = inner(*args)
        seen.extend(out[0].tolist())
        return out

    monkeypatch.setattr(module, name, spy)
    return seen


def test_joint_newton_keeps_the_best_point_it_evaluated(monkeypatch):
    # one sample at a time: only increases are accepted, so the point returned is the best evaluated
    rng = np.random.default_rng(9)
    for _ in range(40):
        y = rng.standard_normal((1, SMALL.n_bs, 16)) + 1j * rng.standard_normal((1, SMALL.n_bs, 16))
        start = rng.uniform(-19, 19, (1, 2, 2))
        seen = _recorded(monkeypatch, jml, "_joint_derivatives")
        p = jml.joint_ascent(SMALL, y, start)[0]
        monkeypatch.undo()
        assert len(seen) > 2
        assert jml._joint_derivatives(SMALL, unit_scale_y(y), p)[0][0] == max(seen)  # the ascent's own scaling


def test_one_user_ascent_keeps_the_best_point_it_evaluated(monkeypatch):
    rng = np.random.default_rng(10)
    for i in range(60):
        r, Q, _ = _case(SMALL, 1, 100 + i)
        W = ap._moments(SMALL, r[:1], Q[:1])
        seen = _recorded(monkeypatch, ap, "_conditional_derivatives")
        q = ap._newton(SMALL, W, rng.uniform(-19, 19, (1, 2)))
        monkeypatch.undo()
        assert len(seen) > 2
        assert ap._conditional_derivatives(SMALL, W, q)[0][0] == max(seen)


def test_complex_tensor_positions_are_refused():
    # a complex tensor would lose its imaginary part in the float conversion: refused like a complex array
    torch = pytest.importorskip("torch")
    y = channel.simulate(SMALL, 2, 10.0, seed=2, n_users=2).y
    start = np.random.default_rng(0).uniform(-15, 15, (2, 2, 2))
    with pytest.raises(ValueError, match="^start: expected a real array"):
        jml.joint_newton(SMALL, y, torch.tensor(start + 1j))
    with pytest.raises(ValueError, match="^start: expected a real array"):
        jml.joint_newton(SMALL, y, start + 1j)
    np.testing.assert_array_equal(jml.joint_newton(SMALL, y, torch.tensor(start)), jml.joint_newton(SMALL, y, start))
