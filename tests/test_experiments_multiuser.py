"""Several users per snapshot (issue 14): assignment metrics and the Monte Carlo engine with ``n_users``."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from daun_lib import metrics


def _scipy_assigned(est: np.ndarray, tru: np.ndarray) -> np.ndarray:
    out = np.empty(tru.shape[:2])
    for i in range(tru.shape[0]):
        d = np.linalg.norm(tru[i][:, None, :] - est[i][None, :, :], axis=-1)
        r, c = linear_sum_assignment(d)
        out[i, r] = d[r, c]
    return out


@pytest.mark.parametrize("n_users", [1, 2, 3, 4, 5, 6])
def test_assigned_errors_equal_scipy(n_users):
    rng = np.random.default_rng(n_users)
    tru = rng.uniform(-20, 20, (200, n_users, 2))
    est = tru + rng.normal(0, 8, tru.shape)
    got = metrics.assigned_errors(est, tru)
    assert got.shape == (200, n_users)
    np.testing.assert_allclose(got, _scipy_assigned(est, tru), rtol=0, atol=1e-12)
    # estimates in any order give the same errors
    perm = rng.permutation(n_users)
    np.testing.assert_array_equal(metrics.assigned_errors(est[:, perm], tru), got)


def test_assigned_errors_one_user_is_the_plain_distance():
    rng = np.random.default_rng(0)
    tru, est = rng.normal(size=(2, 50, 2))
    np.testing.assert_array_equal(
        metrics.assigned_errors(est[:, None], tru[:, None])[:, 0], metrics.position_errors(est, tru)
    )


def test_user_metrics_values():
    err = np.array([[0.1, 0.5], [0.2, 3.0], [2.0, 4.0], [0.0, 0.9]])
    assert metrics.fraction_all_within(err) == 0.5
    assert metrics.fraction_within_per_user(err) == 5 / 8
    assert metrics.fraction_all_within(err, radius_m=5.0) == 1.0
    assert metrics.mse_per_user(err) == pytest.approx(np.mean(err**2))
    assert metrics.median_error_per_user(err) == pytest.approx(np.median(err))
    assert metrics.fraction_all_within_stderr(err) == pytest.approx(np.sqrt(0.25 / 4))
    frac = np.array([1.0, 0.5, 0.0, 1.0])
    assert metrics.fraction_within_per_user_stderr(err) == pytest.approx(np.std(frac, ddof=1) / 2)
    assert metrics.mse_per_user_stderr(err) == pytest.approx(np.std(np.mean(err**2, axis=1), ddof=1) / 2)
    assert np.isnan(metrics.mse_per_user_stderr(err[:1]))


def test_user_metrics_bad_input():
    with pytest.raises(ValueError, match="estimate, truth"):
        metrics.assigned_errors(np.zeros((3, 2, 2)), np.zeros((3, 3, 2)))
    with pytest.raises(ValueError, match="estimate"):
        metrics.assigned_errors(np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="truth"):
        metrics.assigned_errors(np.zeros((3, 2, 2)), np.full((3, 2, 2), np.nan))
    with pytest.raises(ValueError, match="errors"):
        metrics.fraction_all_within(np.zeros(3))
    with pytest.raises(ValueError, match="errors"):
        metrics.mse_per_user(-np.ones((3, 2)))
    with pytest.raises(ValueError, match="radius_m"):
        metrics.fraction_all_within(np.zeros((3, 2)), radius_m=0.0)
