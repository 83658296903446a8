"""The limits of a sweep (CRB, noiseless floor, LoS oracle) and the distance-to-the-limit table (daun_lib.studies.limits)."""

import math

import numpy as np
import pytest

from daun_lib import Scenario, bounds, continuous
from daun_lib.baselines import dpd
from daun_lib.experiments import accuracy_sweep
from daun_lib.metrics import position_errors
from daun_lib.studies import limits

SNRS = [0.0, 20.0]
N_TRIALS = 12
SEED = 5


def test_draw_trials_are_the_sweeps_trials():
    sc = Scenario(los_model="3gpp")
    rows, trials = accuracy_sweep(["DPD"], sc, SNRS, N_TRIALS, SEED, cache_dir=None, progress=False, return_trials=True)
    for j, snr in enumerate(SNRS):
        d = limits.draw_trials(sc, snr, j, N_TRIALS, SEED)
        assert d["y"].shape == (N_TRIALS, 4, 50) and d["h"].shape == d["y"].shape
        assert d["los"].dtype == bool and d["los"].shape == (N_TRIALS, 4)
        t = trials[("DPD", j)]
        np.testing.assert_array_equal(d["positions"], t["positions"])
        np.testing.assert_array_equal(d["los"], t["los"])
        # the same y: DPD on the redrawn signals gives the sweep's estimates
        np.testing.assert_array_equal(dpd.DPDLocalizer()(sc, d["y"]), t["estimates"])
    # another point index or seed draws other users
    d0 = limits.draw_trials(sc, 0.0, 0, N_TRIALS, SEED)
    assert not np.array_equal(d0["positions"], limits.draw_trials(sc, 0.0, 1, N_TRIALS, SEED)["positions"])
    assert not np.array_equal(d0["positions"], limits.draw_trials(sc, 0.0, 0, N_TRIALS, SEED + 1)["positions"])


def test_draw_trials_validation():
    for kwargs, name in (({"j": -1}, "j"), ({"n_trials": 0}, "n_trials"), ({"seed": -2}, "seed")):
        args = {"scenario": Scenario(), "snr": 0.0, "j": 0, "n_trials": 2, "seed": 0} | kwargs
        with pytest.raises(ValueError, match=name):
            limits.draw_trials(**args)
    with pytest.raises(ValueError, match="simulate"):
        limits.draw_trials(Scenario(), 0.0, 0, 2, 0, simulate=3)


def test_reference_rows_labels_and_crb():
    sc = Scenario(los_model="3gpp")
    rows = limits.reference_rows(sc, SNRS, N_TRIALS, SEED, references=("crb", "floor", "oracle"))
    assert [r["method"] for r in rows] == [limits.REFERENCE_LABELS[r] for r in ("crb", "floor", "oracle") for _ in SNRS]
    assert set(limits.REFERENCE_LABELS) == set(limits.REFERENCES) == {"crb", "floor", "oracle"}
    assert [r["snr_db"] for r in rows] == SNRS * 3
    assert all(r["n_trials"] == N_TRIALS for r in rows)
    for j, snr in enumerate(SNRS):
        d = limits.draw_trials(sc, snr, j, N_TRIALS, SEED)
        tr = bounds.crb_trace(sc, d["positions"], snr)
        crb = rows[j]
        assert crb["mse"] == pytest.approx(float(np.mean(tr)), rel=1e-12)
        assert crb["mse_stderr"] == pytest.approx(float(np.std(tr, ddof=1) / math.sqrt(N_TRIALS)), rel=1e-12)
        assert "p_submeter" not in crb
        floor, oracle = rows[len(SNRS) + j], rows[2 * len(SNRS) + j]
        for r in (floor, oracle):
            assert {"mse", "p_submeter", "median_error", "mse_stderr", "p_submeter_stderr"} <= set(r)
            assert r["los_model"] == "3gpp"
            assert r["mean_los_links"] == pytest.approx(d["los"].sum(axis=1).mean())
        e_floor = position_errors(continuous.ml_localize(sc, d["h"]), d["positions"])
        assert floor["mse"] == pytest.approx(float(np.mean(e_floor**2)), rel=1e-12)
        e_or = position_errors(continuous.los_oracle(sc, d["y"], d["los"]), d["positions"])
        assert oracle["mse"] == pytest.approx(float(np.mean(e_or**2)), rel=1e-12)
        assert oracle["p_submeter"] == pytest.approx(float(np.mean(e_or < 1.0)))
    # the CRB scales as 1 / omega: 20 dB apart is a factor 100 on the same kind of users (different users here)
    assert rows[1]["mse"] < rows[0]["mse"] / 30


def test_floor_vanishes_on_pure_los():
    rows = limits.reference_rows(Scenario(multipath=False), [10.0], 10, 3, references=["floor"])
    assert len(rows) == 1 and rows[0]["method"] == limits.REFERENCE_LABELS["floor"]
    assert rows[0]["mse"] < 1e-8
    assert rows[0]["p_submeter"] == 1.0


def test_oracle_with_all_los_is_ml_on_all_links():
    sc = Scenario()  # los_model "always": every link LoS
    rows = limits.reference_rows(sc, [0.0], 15, 9, references=["oracle"], los_label="all-LoS")
    d = limits.draw_trials(sc, 0.0, 0, 15, 9)
    assert d["los"].all()
    e = position_errors(continuous.ml_localize(sc, d["y"]), d["positions"])
    assert rows[0]["mse"] == float(np.mean(e**2))
    assert rows[0]["median_error"] == pytest.approx(float(np.median(e)))
    assert rows[0]["los_model"] == "all-LoS" and rows[0]["mean_los_links"] == 4.0


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"references": ["crb", "bound"]}, "references"),
        ({"references": ["crb", "crb"]}, "references"),
        ({"references": []}, "references"),
        ({"references": "crb"}, "references"),
        ({"n_trials": 0}, "n_trials"),
        ({"snr_db": []}, "snr_db"),
        ({"snr_db": [0.0, float("nan")]}, "snr_db"),
        ({"snr_db": 10.0}, "snr_db"),
        ({"radius_m": 0.0}, "radius_m"),
        ({"radius_m": -1.0}, "radius_m"),
        ({"seed": -1}, "seed"),
        ({"progress": "yes"}, "progress"),
    ],
)
def test_reference_rows_validation(kwargs, name):
    args = {"snr_db": [0.0], "n_trials": 2, "seed": 0} | kwargs
    with pytest.raises(ValueError, match=name):
        limits.reference_rows(Scenario(), **args)


# ---------------------------------------------------------------- the distance table, on toy rows

CRB = limits.REFERENCE_LABELS["crb"]
FLOOR = limits.REFERENCE_LABELS["floor"]
TABLE = [
    {"method": "DPD-ML", "snr_db": 0.0, "mse": 4.0, "p_submeter": 0.5},
    {"method": "A", "snr_db": 0.0, "mse": 2.0, "p_submeter": 0.75},
    {"method": "DPD-ML", "snr_db": 10.0, "mse": 0.5, "p_submeter": 0.9},
    {"method": "A", "snr_db": 10.0, "mse": 1.0, "p_submeter": 0.8},
]
LIMITS = [
    {"method": CRB, "snr_db": 0.0, "mse": 0.5},
    {"method": CRB, "snr_db": 10.0, "mse": 0.05},
    {"method": FLOOR, "snr_db": 0.0, "mse": 0.25},
]


def test_distance_rows_by_hand():
    rows = limits.distance_rows(TABLE, LIMITS)
    assert len(rows) == 4
    a0 = next(r for r in rows if r["method"] == "A" and r["snr_db"] == 0.0)
    assert a0["crb"] == 0.5 and a0["ml_mse"] == 4.0
    assert a0["mse_over_crb"] == pytest.approx(4.0)
    assert a0["mse_over_ml"] == pytest.approx(0.5)
    assert a0["floor_mse"] == 0.25 and a0["mse_over_floor"] == pytest.approx(8.0)
    assert a0["p_submeter"] == 0.75
    a10 = next(r for r in rows if r["method"] == "A" and r["snr_db"] == 10.0)
    assert a10["mse_over_crb"] == pytest.approx(20.0) and a10["mse_over_ml"] == pytest.approx(2.0)
    assert "mse_over_floor" not in a10  # no floor row at 10 dB
    ml10 = next(r for r in rows if r["method"] == "DPD-ML" and r["snr_db"] == 10.0)
    assert ml10["mse_over_ml"] == 1.0
    # another ML method name
    rows_a = limits.distance_rows(TABLE, LIMITS, ml_method="A")
    ml0 = next(r for r in rows_a if r["method"] == "DPD-ML" and r["snr_db"] == 0.0)
    assert ml0["mse_over_ml"] == pytest.approx(2.0)


def test_distance_rows_missing_partners():
    with pytest.raises(ValueError, match="ml_method"):
        limits.distance_rows(TABLE, LIMITS, ml_method="DAUN-ML")
    with pytest.raises(ValueError, match="limits"):
        limits.distance_rows(TABLE, LIMITS[1:])  # no CRB at 0 dB
    with pytest.raises(ValueError, match="limits"):
        limits.distance_rows(TABLE, [LIMITS[2]])  # no CRB at all
    with pytest.raises(ValueError, match="table: no 'DPD-ML'"):
        limits.distance_rows([TABLE[0], TABLE[1], TABLE[3]], LIMITS)  # the ML row is missing at 10 dB
    zero = [dict(r) for r in LIMITS]
    zero[0]["mse"] = 0.0
    with pytest.raises(ValueError, match="limits"):
        limits.distance_rows(TABLE, zero)  # a CRB of 0: no ratio, a clear error instead of ZeroDivisionError
    with pytest.raises(ValueError, match="table"):
        limits.distance_rows([], LIMITS)
    with pytest.raises(ValueError, match="limits"):
        limits.distance_rows(TABLE, [{"method": CRB, "snr_db": 0.0}])


def test_distance_markdown_text():
    rows = limits.distance_rows(TABLE, LIMITS)
    assert limits.distance_markdown(rows) == (
        "| method | 0 dB | 10 dB |\n|---|---:|---:|\n| DPD-ML | 8 | 10 |\n| A | 4 | 20 |\n"
    )
    assert limits.distance_markdown(rows, key="mse_over_ml", fmt="{:.2f}") == (
        "| method | 0 dB | 10 dB |\n|---|---:|---:|\n| DPD-ML | 1.00 | 1.00 |\n| A | 0.50 | 2.00 |\n"
    )
    # a method without a row at some SNR point gets an empty cell there
    assert limits.distance_markdown(rows[:3]) == (
        "| method | 0 dB | 10 dB |\n|---|---:|---:|\n| DPD-ML | 8 | 10 |\n| A | 4 |  |\n"
    )
    with pytest.raises(ValueError, match="key"):
        limits.distance_markdown(rows, key="nope")
    with pytest.raises(ValueError, match="rows"):
        limits.distance_markdown([{"mse": 1.0}])
    # a column that only some rows have: the others stay empty
    some = [dict(r) for r in rows]
    for r in some:
        if r["snr_db"] == 10.0:
            r.pop("mse_over_floor", None)
    some[0]["mse_over_floor"] = 3.0
    assert "|  |" in limits.distance_markdown(some, key="mse_over_floor")


def test_closest_report_text():
    rows = limits.distance_rows(TABLE, LIMITS)
    assert limits.closest_report(rows) == (
        "0 dB: A (MSE 2 m^2 = 4.00 x CRB, 0.50 x continuous ML, 8.00 x noiseless floor); next DPD-ML (2.00 x its MSE)\n"
        "10 dB: DPD-ML (MSE 0.5 m^2 = 10.00 x CRB, 1.00 x continuous ML); next A (2.00 x its MSE)"
    )
    assert limits.closest_report(rows, exclude=["DPD-ML"]) == (
        "0 dB: A (MSE 2 m^2 = 4.00 x CRB, 0.50 x continuous ML, 8.00 x noiseless floor)\n"
        "10 dB: A (MSE 1 m^2 = 20.00 x CRB, 2.00 x continuous ML)"
    )
    with pytest.raises(ValueError, match="rows"):
        limits.closest_report([])


def test_duplicate_rows_excludes_and_heights_are_refused():
    with pytest.raises(ValueError, match="two rows"):
        limits.distance_rows(TABLE + [TABLE[0]], LIMITS)
    rows = limits.distance_rows(TABLE, LIMITS)
    with pytest.raises(ValueError, match="exclude"):
        limits.closest_report(rows, exclude="DPD-ML")
    assert "DPD-ML" not in limits.closest_report(rows, exclude=["DPD-ML"]).split(";")[0]
    sc = Scenario(geometry="3d", ut_height_range_m=(1.5, 10.0))
    with pytest.raises(ValueError, match="references"):
        limits.reference_rows(sc, [10.0], 2, 1, references=("crb",))
