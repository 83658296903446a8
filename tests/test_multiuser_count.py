"""Issue 23: counting users on the joint fits ("lrt", "ic"), localising an unknown number of users, the
ap-relax readout, one user-count rule for every multi-user entry, and memory flat in n."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from daun_lib import Scenario, channel, joint_ml, peaks
from daun_lib import multiuser as mu
from daun_lib.metrics import assigned_errors

SC = Scenario()
SMALL = Scenario(n_antennas=16, grid_shape=(8, 8), n_angles=16)


@pytest.fixture(scope="module")
def batches():
    """All-LoS snapshots of the default scenario at 10 dB with users at least 8 m apart (easy to count;
    from 20 dB up "ic" over-counts one user's NLoS clusters, the reason for "lrt")."""
    return {U: channel.simulate(SC, 8, 10.0, seed=40 + U, n_users=U, min_separation_m=8.0) for U in (1, 2, 3)}


@pytest.mark.parametrize("rule", ["lrt", "ic"])
def test_fit_rules_count_well_separated_users(batches, rule):
    for U, b in batches.items():
        est = mu.estimate_n_users(SC, b.y, 4, rule=rule, localizer="DPD-peaks-APR")
        assert est.shape == (8,) and est.dtype.kind == "i"
        assert np.mean(est == U) >= 0.75, (U, est)  # measured: 8 of 8 for U = 1, 2 and 3


@pytest.mark.parametrize("rule", ["lrt", "ic"])
def test_fit_rules_are_scale_free_and_at_least_one(batches, rule):
    y = batches[2].y
    u = mu.estimate_n_users(SC, y, 3, rule=rule, localizer="DPD-peaks-APR")
    assert np.array_equal(mu.estimate_n_users(SC, y * 1e-5, 3, rule=rule, localizer="DPD-peaks-APR"), u)
    noise = channel.simulate(SC, 4, -150.0, seed=1).y  # noise only: the fit rules still give one user
    assert (mu.estimate_n_users(SC, noise, 3, rule=rule, localizer="DPD-peaks-APR") >= 1).all()


def test_lrt_statistic_by_hand(batches):
    """The rule's arithmetic on the documented residuals: user U' accepted while T > p ln(2MN) + c E."""
    y = batches[2].y
    loc = mu.MULTI_REGISTRY["DPD-peaks-APR"]
    M, N = SC.n_bs, SC.n_antennas
    R = [np.sum(np.abs(y) ** 2, axis=-1)] + [mu.residual_energy(SC, y, loc.locate(SC, y, U)) for U in (1, 2, 3)]
    expect = np.ones(len(y), dtype=int)
    alive = np.ones(len(y), dtype=bool)
    for U in (2, 3):
        T = 2 * N * np.log(R[U - 1] / R[U]).sum(axis=1)
        thr = (2 + 2 * M) * np.log(2 * M * N) + mu.count.LRT_GROWTH * 2 * N * np.log(R[0] / R[U - 1]).sum(axis=1)
        alive &= T > thr
        expect[alive] = U
    assert np.array_equal(mu.estimate_n_users(SC, y, 3, localizer="DPD-peaks-APR"), expect)


def test_residual_energy_is_zero_for_exact_fits_and_total_without_users():
    b = channel.simulate(Scenario(multipath=False), 3, 20.0, seed=5, n_users=2)
    p = b.positions
    y = np.stack([SC.los_steering(p[:, j]) for j in range(2)], axis=-1).sum(axis=-1) * 7.0  # noiseless LoS
    R = mu.residual_energy(SC, y, p)
    assert R.shape == (3, SC.n_bs) and (R <= 1e-9 * np.sum(np.abs(y) ** 2, axis=-1)).all()
    far = mu.residual_energy(SC, y, p[:, :1])
    assert (far > 1e-3 * np.sum(np.abs(y) ** 2, axis=-1)).all()
    with pytest.raises(ValueError, match="^positions: "):
        mu.residual_energy(SC, y, p[:2])


def test_locate_unknown_returns_the_fit_of_the_count(batches):
    y = np.concatenate([batches[1].y[:3], batches[2].y[:3], batches[3].y[:3]])
    loc = mu.MULTI_REGISTRY["DPD-peaks-APR"]
    out = mu.locate_unknown(SC, y, 4, localizer=loc)
    assert out.positions.shape == (9, 4, 2) and out.mask.shape == (9, 4)
    assert np.array_equal(out.n_users, mu.estimate_n_users(SC, y, 4, localizer=loc))
    assert np.array_equal(out.mask, np.arange(4)[None] < out.n_users[:, None])
    assert np.isfinite(out.positions[out.mask]).all() and np.isnan(out.positions[~out.mask]).all()
    for U in np.unique(out.n_users):
        rows = out.n_users == U
        assert np.array_equal(out.positions[rows, :U], loc.locate(SC, y[rows], int(U)))
    old = mu.locate_unknown(SC, y, 4, rule="min-bs", localizer=loc)
    assert np.array_equal(old.n_users, mu.estimate_n_users(SC, y, 4, rule="min-bs"))


def test_count_checks_its_arguments(batches):
    y = batches[1].y
    with pytest.raises(ValueError, match="^max_users: "):
        mu.estimate_n_users(SMALL, np.ones((1, SMALL.n_bs, 16), complex), 17, rule="min-bs")
    with pytest.raises(ValueError, match="^rule: "):
        mu.estimate_n_users(SC, y, 2, rule="bic")
    with pytest.raises(ValueError, match="^localizer: "):
        mu.estimate_n_users(SC, y, 2, localizer="nope")
    with pytest.raises(ValueError, match="^localizer: "):
        mu.estimate_n_users(SC, y, 2, localizer=mu.MULTI_REGISTRY["DPD-peaks"].readout_fn)
    with pytest.raises(ValueError, match="^max_users: "):
        mu.locate_unknown(SC, y, 0)


@pytest.mark.parametrize("name", sorted(mu.MULTI_REGISTRY))
def test_every_multi_user_entry_refuses_more_users_than_antennas(name):
    y = np.ones((1, SC.n_bs, SC.n_antennas), complex)
    with pytest.raises(ValueError, match="^n_users: "):
        mu.MULTI_REGISTRY[name].locate(SC, y, SC.n_antennas + 1)  # 51 users, fewer than the 900 cells


def test_relax_never_lowers_the_fit_and_keeps_one_user(batches):
    b = batches[3]
    start = peaks.multistart_from_peaks(SC, b.y, np.zeros((8, SC.n_grid)) + np.arange(SC.n_grid), SC.grid, 3, 3.0)
    out = peaks.relax(SC, b.y, start, 3.0)
    J0, J1 = joint_ml.joint_fit(SC, b.y, start), joint_ml.joint_fit(SC, b.y, out)
    assert (J1 >= J0 * (1 - 1e-12)).all() and (J1 > J0 * 1.01).any()  # a poor start (the last cells) is repaired
    assert np.mean((assigned_errors(out, b.positions) < 1.0).all(axis=1)) >= 0.75
    one = np.array([[[1.0, 2.0]]] * 2)
    assert np.array_equal(peaks.relax(SC, b.y[:2], one, 3.0), one)


def _peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("what", ["DPD-peaks-APM", "DPD-peaks-APR", "count"])
def test_multi_user_working_memory_is_flat_in_n(what):
    """Doubling n from 512 to 1024 snapshots adds at most 30 % to the peak memory (both are past the blocks);
    before issue 23 the multi-start readouts held about 150 KB per snapshot, 136-146 MB at n = 1024."""
    y = channel.simulate(SC, 1024, 10.0, seed=3, n_users=2).y

    def run(n):
        if what == "count":
            return lambda: mu.estimate_n_users(SC, y[:n], 2, localizer="DPD-peaks-APM")
        return lambda: mu.MULTI_REGISTRY[what].locate(SC, y[:n], 2)

    half, full = _peak_bytes(run(512)), _peak_bytes(run(1024))
    assert full < 1.3 * half and full / 1024 < 60e3, (half, full)
