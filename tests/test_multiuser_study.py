"""Notebook 08's study code: rows with standard errors, the unknown-U rows, timing, the verdict."""

import numpy as np
import pytest

from daun_lib import Scenario, channel, experiments, metrics, multiuser
from daun_lib.studies import multiuser_study

SC = Scenario()


def test_one_user_rows_equal_the_single_user_registry_entries():
    # U = 1 runs the multi-user entries through the single-user engine path; DPD-peaks is DPD there
    rows = multiuser_study.accuracy_rows(["DPD-peaks"], SC, [10.0], 12, 3, 1, cache_dir=None, progress=False)
    ref = experiments.accuracy_sweep(["DPD"], SC, [10.0], 12, 3, cache_dir=None, progress=False)
    assert rows[0]["mse"] == ref[0]["mse"] and rows[0]["p_submeter"] == ref[0]["p_submeter"]
    assert rows[0]["p_all_submeter"] == rows[0]["p_submeter"] and rows[0]["n_users"] == 1
    assert all(v == 0.0 for v in multiuser_study.single_user_check(SC, n=10).values())


def test_two_user_rows_match_the_metrics_on_the_same_snapshots():
    rows = multiuser_study.accuracy_rows(["DPD-SIC"], SC, [20.0], 10, 5, 2, cache_dir=None, progress=False)
    y, truth = [], []
    for t in range(10):
        b = channel.simulate(SC, 1, 20.0, seed=experiments.trial_seed(5, 0, t), n_users=2)
        y.append(b.y)
        truth.append(b.positions)
    est = multiuser.MULTI_REGISTRY["DPD-SIC"](SC, np.concatenate(y), 2)
    err = metrics.assigned_errors(est, np.concatenate(truth))
    assert rows[0]["p_all_submeter"] == metrics.fraction_all_within(err)
    assert rows[0]["p_all_submeter_stderr"] == metrics.fraction_all_within_stderr(err)
    assert np.isclose(rows[0]["mse"], np.mean(err**2))


def test_count_rows_and_timing_and_verdict():
    counts = multiuser_study.count_rows(SC, [20.0], 6, 1, [1, 2], max_users=3)
    assert [c["n_users"] for c in counts] == [1, 2]
    for c in counts:
        assert np.isclose(c["p_correct"] + c["p_over"] + c["p_under"], 1.0)
    times = multiuser_study.timing_rows(SC, ["DPD-peaks"], [2], n=4, repeats=1)
    assert times[0]["seconds_per_sample"] > 0 and times[0]["n_users"] == 2
    rows = [
        {"method": "DAUN-MU", "snr_db": 10.0, "n_users": 2, "p_all_submeter": 0.8},
        {"method": "P-ADMM-peaks", "snr_db": 10.0, "n_users": 2, "p_all_submeter": 0.82},
        {"method": "DPD-SIC", "snr_db": 10.0, "n_users": 2, "p_all_submeter": 0.7},
    ]
    t = [
        {"method": "DAUN-MU", "n_users": 2, "seconds_per_sample": 0.001},
        {"method": "P-ADMM-peaks", "n_users": 2, "seconds_per_sample": 0.02},
    ]
    text = multiuser_study.verdict(rows, t)
    assert "best P-ADMM-peaks" in text and "-0.020 vs P-ADMM-peaks" in text and "+0.100 vs DPD-SIC" in text
    assert "20x faster" in text
    # a network read out by alternating projection is compared with P-ADMM read out the same way
    rows_ap = rows + [
        {"method": "DAUN-MU-AP", "snr_db": 10.0, "n_users": 2, "p_all_submeter": 0.85},
        {"method": "P-ADMM-peaks-AP", "snr_db": 10.0, "n_users": 2, "p_all_submeter": 0.9},
        {"method": "DPD-AP", "snr_db": 10.0, "n_users": 2, "p_all_submeter": 0.88},
    ]
    t_ap = t + [
        {"method": "DAUN-MU-AP", "n_users": 2, "seconds_per_sample": 0.005},
        {"method": "P-ADMM-peaks-AP", "n_users": 2, "seconds_per_sample": 0.02},
    ]
    text = multiuser_study.verdict(rows_ap, t_ap, network="DAUN-MU-AP")
    assert "-0.050 vs P-ADMM-peaks-AP" in text and "-0.030 vs DPD-AP" in text and "+0.150 vs DPD-SIC" in text
    assert "4x faster than P-ADMM-peaks-AP" in text and "vs P-ADMM-peaks;" not in text
    # the readout is read from the name's ending, for any network; a method is not compared with itself
    rows_s = rows + [
        {"method": "DAUN-peaks-S", "snr_db": 10.0, "n_users": 2, "p_all_submeter": 0.7},
        {"method": "P-ADMM-peaks-S", "snr_db": 10.0, "n_users": 2, "p_all_submeter": 0.75},
    ]
    assert "-0.050 vs P-ADMM-peaks-S" in multiuser_study.verdict(rows_s, t, network="DAUN-peaks-S")
    assert "vs DPD-AP" not in multiuser_study.verdict(rows_ap, t_ap, network="DPD-AP")
    rows_apm = rows_ap + [
        {"method": "DAUN-MU-APM", "snr_db": 10.0, "n_users": 2, "p_all_submeter": 0.93},
        {"method": "P-ADMM-peaks-APM", "snr_db": 10.0, "n_users": 2, "p_all_submeter": 0.92},
    ]
    text = multiuser_study.verdict(rows_apm, t_ap, network="DAUN-MU-APM")
    assert "+0.010 vs P-ADMM-peaks-APM" in text and "vs P-ADMM-peaks-AP;" not in text


def test_validation():
    with pytest.raises(ValueError, match="methods"):
        multiuser_study.accuracy_rows(["DPD"], SC, [10.0], 2, 1, 2, cache_dir=None)
    with pytest.raises(ValueError, match="n_users"):
        multiuser_study.accuracy_rows(["DPD-peaks"], SC, [10.0], 2, 1, 0, cache_dir=None)
    with pytest.raises(ValueError, match="n_users_list"):
        multiuser_study.count_rows(SC, [10.0], 2, 1, [5], max_users=4)
    with pytest.raises(ValueError, match="rows"):
        multiuser_study.verdict([], [])
