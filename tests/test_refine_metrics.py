"""Algorithm 1 (position refinement), the plain readout, and the metrics of Sec. IV."""

import numpy as np
import pytest
import torch

from daun_lib import metrics
from daun_lib.refine import argmax_rows, refine, two_means


def _rows(*rows, K=6):
    X = np.zeros((K, 4), dtype=complex)
    for k, r in rows:
        X[k] = r
    return X


def test_refinement_beats_argmax_where_it_fails():
    # Row 1: true cell, LoS at three BSs, a small noise gain at the fourth.
    # Row 3: a wrong cell whose two large entries (one from an inactive LoS link)
    # give it the larger full row norm, so the plain argmax picks it.
    X = _rows((1, [1.6, 1.5, 1.7, 0.1]), (3, [0.3, 0.2, 2.0, 1.9]))
    assert np.linalg.norm(X[3]) > np.linalg.norm(X[1])
    assert argmax_rows(X)[0] == 3
    assert refine(X)[0] == 1


def test_papers_example_does_not_fail_argmax():
    # the paper's own worked example: plain argmax is already right (row norms 2.777 vs 2.731).
    X = _rows((1, [1.6, 1.5, 1.7, 0.1]), (2, [1.55, 1.45, 1.7, 0.25]))
    assert argmax_rows(X)[0] == 1 and refine(X)[0] == 1


def test_phase_is_ignored_and_batched_and_torch():
    X = _rows((1, [1.6, 1.5j, -1.7, 0.1]), (3, [0.3, 0.2, 2.0j, -1.9]))
    batch = np.stack([X, X[::-1]])
    assert list(refine(batch)) == [1, 6 - 1 - 1]
    assert list(refine(torch.as_tensor(batch))) == [1, 4]


def test_fallback_to_argmax_when_no_row_has_three_large_entries():
    X = _rows((0, [2.0, 0.0, 0.0, 0.0]), (2, [0.0, 1.0, 1.0, 0.0]))
    assert refine(X)[0] == argmax_rows(X)[0] == 0


def test_two_means_split():
    mag = np.array([[[3.0, 2.9, 0.2, 0.1], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]])
    member = two_means(mag)
    assert member[0, 0].tolist() == [True, True, False, False]
    assert member[0, 1].all()  # equal entries: all join the large cluster
    assert not member[0, 2].any()  # an all-zero row has no large entries


def test_min_active_parameter():
    X = _rows((1, [1.6, 1.5, 0.0, 0.0]), (3, [0.3, 0.2, 0.1, 1.9]))
    assert refine(X, min_active=2)[0] == 1
    with pytest.raises(ValueError, match="min_active"):
        refine(X, min_active=5)


def test_refine_bad_input():
    with pytest.raises(ValueError, match="X"):
        refine(np.full((3, 4), np.nan))
    with pytest.raises(ValueError, match="X"):
        refine(np.zeros(4))


def test_metrics_values():
    est = np.array([[0.0, 0.0], [3.0, 4.0], [0.5, 0.0]])
    tru = np.zeros((3, 2))
    assert metrics.mse(est, tru) == pytest.approx((0 + 25 + 0.25) / 3)
    assert metrics.p_within(est, tru) == pytest.approx(2 / 3)
    assert metrics.p_within(est, tru, radius_m=6.0) == 1.0
    y = np.ones((2, 2, 3), dtype=complex)
    assert metrics.nmse(y, 0.5 * y) == pytest.approx(0.25)


def test_metrics_bad_input():
    with pytest.raises(ValueError, match="estimate"):
        metrics.mse(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="truth"):
        metrics.mse(np.zeros((3, 2)), np.full((3, 2), np.inf))
    with pytest.raises(ValueError, match="radius_m"):
        metrics.p_within(np.zeros((3, 2)), np.zeros((3, 2)), radius_m=0.0)
    with pytest.raises(ValueError, match="residual"):
        metrics.nmse(np.ones((1, 2, 3)), np.ones((1, 2, 2)))


def test_subgrid_recovers_the_peak_of_a_gaussian_map():
    from daun_lib import Scenario
    from daun_lib.refine import row_power, subgrid

    s = Scenario()
    truth = np.array([[3.1, -7.45], [-12.0, 0.2], [19.5, 19.5]])  # the last one sits in an edge cell
    g = s.grid
    d2 = ((g[None, :, :] - truth[:, None, :]) ** 2).sum(-1)
    power = np.exp(-d2 / (2 * 1.5**2))  # log power is exactly quadratic: the 3-point fit is exact
    est = subgrid(power, s)
    assert np.allclose(est[:2], truth[:2], atol=1e-9)
    # at the area edge the outer coordinate stays at the cell centre
    k_edge = np.argmax(power[2])
    assert np.allclose(est[2], g[k_edge])
    # refining around a given peak and reading X's row powers
    X = np.sqrt(power)[:, :, None] * np.ones((1, 1, 4)) / 2
    assert np.allclose(row_power(X), power)
    assert np.allclose(subgrid(row_power(X), s, k=np.argmax(power, 1)), est)


def test_subgrid_bad_input():
    from daun_lib import Scenario
    from daun_lib.refine import subgrid

    s = Scenario(grid_shape=(4, 4), area_size=8.0)
    with pytest.raises(ValueError, match="power"):
        subgrid(np.ones((2, 15)), s)
    with pytest.raises(ValueError, match="power"):
        subgrid(-np.ones((2, 16)), s)
    with pytest.raises(ValueError, match="k"):
        subgrid(np.ones((2, 16)), s, k=np.array([0, 16]))
    with pytest.raises(ValueError, match="scenario"):
        subgrid(np.ones((2, 16)), None)
