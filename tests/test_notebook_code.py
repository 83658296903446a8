"""The library code that the notebooks call: accuracy rows, claims, figures, Table I, Fig. 3 rows, channel statistics,
the sweep's plan / run / aggregate steps and the CSV reuse."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from daun_lib import Scenario, experiments, metrics
from daun_lib.studies import accuracy, claims, convergence, figures, tables  # noqa: E402

SNR = [0.0, 20.0]


def grid_dpd(scenario, y):
    """Argmax of the DPD spectrum on the grid (cheap, deterministic)."""
    A, _ = scenario.dictionaries()
    spec = np.abs(np.einsum("mnk,imn->ikm", A.conj(), y)) ** 2
    return scenario.grid[np.argmax(spec.sum(axis=2), axis=1)]


def origin(scenario, y):
    return np.zeros((y.shape[0], 2))


METHODS = {"DPD": grid_dpd, "origin": origin}


# ---------------------------------------------------------------------------
# metrics on per-trial errors
# ---------------------------------------------------------------------------
def test_error_metrics_match_the_estimate_based_ones():
    rng = np.random.default_rng(0)
    est, tru = rng.normal(size=(50, 2)), rng.normal(size=(50, 2))
    err = metrics.position_errors(est, tru)
    assert metrics.mean_squared_error(err) == metrics.mse(est, tru)
    assert metrics.fraction_within(err, 1.5) == metrics.p_within(est, tru, 1.5)
    assert metrics.median_error(err) == float(np.median(err))
    assert metrics.mse_stderr(err) == float(np.std(err**2, ddof=1) / np.sqrt(err.size))
    p = metrics.fraction_within(err)
    assert metrics.p_within_stderr(err) == float(np.sqrt(p * (1 - p) / err.size))
    assert np.isnan(metrics.mse_stderr(err[:1]))


@pytest.mark.parametrize("bad", [[], [[1.0]], [np.nan], [-1.0]])
def test_error_metrics_reject_bad_errors(bad):
    with pytest.raises(ValueError, match="errors"):
        metrics.mse_stderr(np.array(bad, dtype=float))


# ---------------------------------------------------------------------------
# plan / run / aggregate
# ---------------------------------------------------------------------------
def test_three_steps_equal_the_sweep(tmp_path):
    plan = experiments.plan_sweep(METHODS, Scenario(), SNR, 5, 3, cache_dir=tmp_path, chunk_size=2)
    assert plan.chunks == ((0, 2), (2, 4), (4, 5)) and set(plan.folders) == set(METHODS)
    assert not any(f.exists() for f in plan.folders.values())  # planning writes nothing
    chunks = experiments.run_chunks(plan, progress=False)
    assert set(chunks) == {(m, j) for m in METHODS for j in range(len(SNR))}
    rows, trials = experiments.aggregate(plan, chunks)
    ref_rows, ref_trials = experiments.accuracy_sweep(
        METHODS, Scenario(), SNR, 5, 3, cache_dir=None, chunk_size=5, progress=False, return_trials=True
    )
    assert rows == ref_rows
    for key, arrays in ref_trials.items():
        for k, v in arrays.items():
            assert np.array_equal(trials[key][k], v)


def test_steps_validate_their_inputs():
    with pytest.raises(ValueError, match="plan"):
        experiments.run_chunks({"not": "a plan"})
    plan = experiments.plan_sweep(METHODS, Scenario(), SNR, 2, 0, cache_dir=None)
    with pytest.raises(ValueError, match="chunks"):
        experiments.aggregate(plan, {})
    with pytest.raises(ValueError, match="backend"):
        experiments.run_chunks(plan, backend="threads")
    with pytest.raises(ValueError, match="force"):
        experiments.plan_sweep(METHODS, Scenario(), SNR, 2, 0, cache_dir=None, force="yes")


# ---------------------------------------------------------------------------
# accuracy rows (Fig. 2 CSV) and claims
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fig2_table():
    rows = accuracy.accuracy_rows(METHODS, Scenario(), SNR, 6, 1, los_label="always", cache_dir=None, progress=False)
    return rows


def test_accuracy_rows_add_standard_errors(fig2_table):
    rows, trials = experiments.accuracy_sweep(
        METHODS, Scenario(), SNR, 6, 1, cache_dir=None, progress=False, return_trials=True
    )
    assert [r["method"] for r in fig2_table] == [r["method"] for r in rows]
    for row, base, key in zip(fig2_table, rows, [(m, j) for m in METHODS for j in range(2)], strict=True):
        assert list(row) == list(experiments.ROW_FIELDS) + list(accuracy.ROW_EXTRA_FIELDS)
        err = trials[key]["errors"]
        assert row["mse_stderr"] == float(np.std(err**2, ddof=1) / np.sqrt(err.size))
        assert row["p_submeter_stderr"] == float(np.sqrt(base["p_submeter"] * (1 - base["p_submeter"]) / err.size))
        assert row["mean_los_links"] == 4.0 and row["los_model"] == "always"
    with pytest.raises(ValueError, match="los_label"):
        accuracy.accuracy_rows(METHODS, Scenario(), SNR, 2, 1, los_label=3, cache_dir=None)


def test_on_dictionaries_passes_the_all_los_twin():
    seen = []
    fn = accuracy.on_dictionaries(lambda s, y: seen.append(s.los_model) or np.zeros((len(y), 2)))
    fn(Scenario(los_model="3gpp"), np.zeros((1, 4, 50), complex))
    assert seen == ["always"]
    with pytest.raises(ValueError, match="fn"):
        accuracy.on_dictionaries(3)


def test_fig2_report_and_blockage_report(fig2_table):
    text = claims.fig2_report(fig2_table)
    assert text.startswith("mse (n_trials = 6 per point)")
    assert "extra curve origin" in text and "claim 2" in text
    assert "blockage sweep, 6 trials per point" in claims.blockage_report(fig2_table)
    assert claims.mean_los_links(fig2_table) == 4.0
    with pytest.raises(ValueError, match="table"):
        claims.fig2_report([])


def test_fig2_plot_draws_one_curve_per_method(fig2_table):
    fig, ax = plt.subplots()
    figures.plot_accuracy(ax, fig2_table, "mse", logy=True, xticks=SNR)
    figures.legend_above(ax)
    assert len(ax.containers) == len(METHODS) and ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="key"):
        figures.plot_accuracy(ax, fig2_table, "median", logy=False, xticks=SNR)
    plt.close(fig)


# ---------------------------------------------------------------------------
# Fig. 3
# ---------------------------------------------------------------------------
def test_convergence_curves_and_report():
    table = [{"method": "P-ADMM", "iteration": i, "nmse": 10.0**-i} for i in (2, 1, 3)]
    table += [{"method": "DAUN (x)", "iteration": i, "nmse": 10.0 ** -(2 * i)} for i in (1, 2)]
    curves = convergence.convergence_curves(table)
    assert curves["P-ADMM"][:, 0].tolist() == [1, 2, 3]
    text = claims.fig3_report(curves)
    assert "DAUN (x): NMSE 0.0001 after 2 layers; P-ADMM does not reach it within 3 iterations" in text
    fig, ax = plt.subplots()
    figures.plot_convergence(ax, curves, "x")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["DAUN, x (default)", "P-ADMM"]
    plt.close(fig)
    with pytest.raises(ValueError, match="curves"):
        claims.fig3_report({})


def test_reuse_or_write_csv(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return [{"a": 1, "b": 0.5}]

    path = tmp_path / "r.csv"
    rows, reused = experiments.reuse_or_write_csv(path, {"n": np.int64(3)}, compute)
    assert rows == [{"a": 1, "b": 0.5}] and not reused
    assert experiments.reuse_or_write_csv(path, {"n": 3}, compute) == (rows, True)
    assert experiments.reuse_or_write_csv(path, {"n": 4}, compute)[1] is False
    assert experiments.reuse_or_write_csv(path, {"n": 4}, compute, force=True)[1] is False
    assert len(calls) == 3
    with pytest.raises(ValueError, match="compute"):
        experiments.reuse_or_write_csv(path, {}, None)


# ---------------------------------------------------------------------------
# Table I
# ---------------------------------------------------------------------------
def test_table1_rows_and_markdown():
    seconds = {
        ("DAUN", "batch"): (0.001, 8),
        ("DAUN", "single"): (0.002, 4),
        ("MM", "single"): (0.2, 4),
        ("reference (CLARABEL)", "single"): (2.0, 1),
    }
    rows = tables.table1_rows(seconds, tables.method_notes(300), "cvxpy note", {"DAUN": 0.0015})
    assert [(r["method"], r["mode"]) for r in rows] == [
        ("DAUN", "single"),
        ("DAUN", "batch"),
        ("reference (CLARABEL)", "single"),
        ("MM", "single"),
    ]
    assert rows[2]["ratio_to_daun"] == 2.0 / 0.002 and rows[2]["notes"] == "cvxpy note"
    assert rows[1]["benchmark_seconds"] == 0.0015 and rows[0]["benchmark_seconds"] is None
    assert rows[3]["paper_ratio_to_daun"] == 3.81 / 0.017
    text = tables.table1_markdown(
        rows,
        machine="m",
        version="v",
        date="d",
        solver="CLARABEL",
        padmm_iterations=300,
        compile_seconds=1.0,
        bench=True,
    )
    assert text.startswith("# Table I") and "| reference (CLARABEL) [paper: MOSEK] | single | 1 |" in text
    with pytest.raises(ValueError, match="seconds"):
        tables.table1_rows({("MM", "single"): (1.0, 1)}, {}, "", {})


def test_bind_scenario_and_machine_description():
    with pytest.raises(ValueError, match="names"):
        tables.bind_scenario(Scenario(), ["nope"])
    env = experiments.environment_info()
    assert tables.machine_description(env, 1).endswith("with 1 threads")
    assert tables.read_benchmark("/nonexistent/benchmark.csv") == {}


# ---------------------------------------------------------------------------
# channel statistics (notebook 01)
# ---------------------------------------------------------------------------
def test_channel_statistics_rows():
    from daun_lib.studies import channel_stats

    stats = channel_stats.channel_statistics(30, 0)
    assert stats.links.positions.shape == (30, 2)
    assert {r["quantity"] for r in stats.stat_rows} == {"lg_asd_drawn", "lg_rms_spread", "k_factor_db"}
    assert all(r["n_links"] >= 5 for r in stats.los_rows)
    assert sum(r["n"] for r in stats.stat_rows if r["links"] == "all-LoS" and r["quantity"] == "k_factor_db") == 120
    with pytest.raises(ValueError, match="n_users"):
        channel_stats.channel_statistics(0, 0)
