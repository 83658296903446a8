"""Notebook 09's study code (count_study) and notebook 08's references (issue 23)."""

import warnings

import numpy as np
import pytest

from daun_lib import Scenario, channel, experiments, joint_ml, metrics, multiuser
from daun_lib.studies import count_study, multiuser_study

SC = Scenario()


def test_count_rows_match_locate_unknown_on_the_same_snapshots(tmp_path):
    kw = {"rules": ["lrt"], "max_users": 3, "localizer": "DPD-peaks-APM", "cache_dir": tmp_path}
    rows = count_study.count_rows(SC, [10.0], 6, 4, [2], power_spreads_db=[0.0, 10.0], **kw)
    assert [(r["power_spread_db"], r["n_users"]) for r in rows] == [(0.0, 2), (10.0, 2)]
    for r, spread in zip(rows, (0.0, 10.0), strict=True):
        bs = [channel.simulate(SC, 1, 10.0, seed=experiments.trial_seed(4, 0, t), n_users=2, power_spread_db=spread)
              for t in range(6)]  # fmt: skip
        y, truth = np.concatenate([b.y for b in bs]), np.concatenate([b.positions for b in bs])
        out = multiuser.locate_unknown(SC, y, 3, localizer="DPD-peaks-APM")
        assert r["p_correct"] == np.mean(out.n_users == 2)
        right = out.n_users == 2
        ok = (metrics.assigned_errors(out.positions[right, :2], truth[right]) < 1.0).all(axis=1)
        assert r["p_all_submeter"] == ok.sum() / 6
        assert np.isclose(r["p_correct"] + r["p_over"] + r["p_under"], 1.0) and r["seconds_per_snapshot"] > 0
    # the cells were cached: a second call reads them (same rows), a corrupted file is recomputed with a warning
    again = count_study.count_rows(SC, [10.0], 6, 4, [2], power_spreads_db=[0.0, 10.0], **kw)
    assert again == rows
    files = sorted((tmp_path / "unknown_users").glob("*.npz"))
    assert len(files) == 2
    files[0].write_bytes(files[0].read_bytes()[:-40])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        third = count_study.count_rows(SC, [10.0], 6, 4, [2], power_spreads_db=[0.0, 10.0], **kw)
    assert [r["p_correct"] for r in third] == [r["p_correct"] for r in rows]
    assert any("recomputed" in str(w.message) for w in caught)


def test_rules_outside_locate_are_counted_only_and_one_user_ignores_the_spread(tmp_path):
    kw = {"rules": ["min-bs"], "max_users": 3, "cache_dir": tmp_path}
    rows = count_study.count_rows(SC, [10.0], 5, 2, [1, 2], power_spreads_db=[0.0, 6.0], **kw)
    assert all(np.isnan(r["p_all_submeter"]) for r in rows)
    bs = [channel.simulate(SC, 1, 10.0, seed=experiments.trial_seed(2, 0, t), n_users=2) for t in range(5)]
    est = multiuser.estimate_n_users(SC, np.concatenate([b.y for b in bs]), 3, rule="min-bs")
    assert rows[1]["p_correct"] == np.mean(est == 2)
    one = [r for r in rows if r["n_users"] == 1]
    assert one[0]["p_correct"] == one[1]["p_correct"] and len(list((tmp_path / "unknown_users").glob("*.npz"))) == 3


def test_count_rows_check_arguments():
    for kw, name in (
        ({"rules": ["bic"]}, "rules"),
        ({"power_spreads_db": [-1.0]}, "power_spreads_db"),
        ({"max_users": 2}, "n_users_list"),
        ({"locate": "lrt"}, "locate"),
    ):
        with pytest.raises(ValueError, match=f"^{name}: "):
            count_study.count_rows(SC, [10.0], 2, 1, [3], **kw)


def test_sweep_snapshots_are_the_sweeps_per_trial_draws():
    batches, y, truth = multiuser_study.sweep_snapshots(SC, 10.0, 1, 3, 5, 2, power_spread_db=4.0)
    for t in range(3):
        b = channel.simulate(SC, 1, 10.0, seed=experiments.trial_seed(5, 1, t), n_users=2, power_spread_db=4.0)
        assert np.array_equal(y[t], b.y[0]) and np.array_equal(truth[t], b.positions[0])
        assert np.array_equal(batches[t].h, b.h)
    assert multiuser_study.sweep_snapshots(SC, 10.0, 0, 2, 5, 1)[2].shape == (2, 1, 2)


def test_count_figure_and_verdict():
    rows = [
        {"rule": r, "power_spread_db": s, "n_users": U, "snr_db": snr, "p_correct": p, "p_correct_stderr": 0.01,
         "p_all_submeter": p - 0.1}
        for r, p in (("lrt", 0.95), ("min-bs", 0.7)) for s in (0.0, 10.0) for U in (1, 2) for snr in (0.0, 10.0)
    ]  # fmt: skip
    fig = count_study.count_figure(rows)
    assert len(fig.axes) == 2
    text = count_study.verdict(rows)
    assert "lrt: mean P(correct U) 0.950" in text and "min-bs: mean P(correct U) 0.700" in text
    with pytest.raises(ValueError, match="^rows: "):
        count_study.count_figure([{"rule": "lrt"}])


def test_reference_rows_are_the_genie_start_ml_on_the_sweep_snapshots():
    refs = multiuser_study.reference_rows(SC, [20.0], 5, 7, [2])
    assert [r["reference"] for r in refs] == ["genie-start ML", "genie-start ML, pure LoS"]
    bs = [channel.simulate(SC, 1, 20.0, seed=experiments.trial_seed(7, 0, t), n_users=2) for t in range(5)]
    y, truth = np.concatenate([b.y for b in bs]), np.concatenate([b.positions for b in bs])
    err = np.linalg.norm(joint_ml.joint_newton(SC, y, truth) - truth, axis=-1)
    assert refs[0]["p_all_submeter"] == metrics.fraction_all_within(err) and np.isnan(refs[0]["crb_ratio_mean"])
    assert 0.2 < refs[1]["crb_ratio_mean"] < 5.0 and refs[1]["crb_trace_median"] > 0  # near 1 (the bound is attained)
    table = [{"method": "DPD-AP", "n_users": 2, "snr_db": 20.0, "p_all_submeter": refs[0]["p_all_submeter"] - 0.05}]
    text = multiuser_study.reference_verdict(table, refs)
    assert "gap +0.050" in text and "trace(CRB)" in text


def test_timing_rows_time_the_count():
    times = multiuser_study.timing_rows(
        SC, ["DPD-peaks"], [2], n=3, repeats=1, count_rules=["min-bs"], count_max_users=3
    )
    assert {t["method"] for t in times} == {"DPD-peaks", "count (min-bs)"} and all(
        t["seconds_per_sample"] > 0 for t in times
    )
