"""The Monte Carlo engine: determinism, chunking/backend invariance, cache, CSV, timing, input checks."""

from __future__ import annotations

import json
import sys
import types
from typing import NamedTuple

import numpy as np
import pytest

from daun_lib import Scenario
from daun_lib import experiments as ex
from daun_lib.scenario import steering

SMALL = Scenario(n_antennas=8, grid_shape=(6, 6), n_angles=12)
SNR = [-5.0, 10.0]


# ---------------------------------------------------------------------------
# stand-ins: a LoS-only data generator and methods (module level: picklable)
# ---------------------------------------------------------------------------
class Batch(NamedTuple):
    y: np.ndarray
    positions: np.ndarray
    los: np.ndarray


def los_simulate(scenario, n, snr_db, seed=None):
    """y_m = sqrt(omega) sqrt(N) a(theta_m(p)) e^{j phi} + CN(0, I)."""
    rng = np.random.default_rng(seed)
    half = scenario.area_size / 2
    p = rng.uniform(-half, half, size=(n, 2))
    a = steering(scenario.los_angles(p), scenario.n_antennas, scenario.antenna_spacing)  # (n, M, N)
    phase = np.exp(2j * np.pi * rng.random((n, scenario.n_bs, 1)))
    noise = (rng.standard_normal(a.shape) + 1j * rng.standard_normal(a.shape)) / np.sqrt(2)
    y = np.sqrt(10 ** (snr_db / 10) * scenario.n_antennas) * a * phase + noise
    return Batch(y=y, positions=p, los=np.ones((n, scenario.n_bs), bool))


def grid_dpd(scenario, y):
    """argmax_k sum_m |a_mk^H y_m|^2 over the position grid."""
    A, _ = scenario.dictionaries()
    score = np.abs(np.einsum("mnk,imn->imk", A.conj(), y)) ** 2
    return scenario.grid[np.argmax(score.sum(axis=1), axis=1)]


def origin(scenario, y):
    return np.zeros((y.shape[0], 2))


class Counting:
    """A method that counts its calls and raises on call number ``fail_at`` (1-based)."""

    def __init__(self, inner=grid_dpd, fail_at=None, error=None):
        self.inner, self.fail_at, self.calls = inner, fail_at, 0
        self.error = error or SimulatedInterruption("simulated interruption")

    @property
    def cache_key(self):
        # the call counter changes, the results do not: key by the wrapped method only
        return f"counting:{self.inner.__qualname__}"

    def __call__(self, scenario, y):
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at:
            raise self.error
        return self.inner(scenario, y)


class SimulatedInterruption(RuntimeError):
    pass


def sweep(methods, n_trials=12, seed=3, **kw):
    kw.setdefault("cache_dir", None)
    kw.setdefault("progress", False)
    kw.setdefault("simulate", los_simulate)
    kw.setdefault("chunk_size", 5)
    return ex.accuracy_sweep(methods, SMALL, kw.pop("snr_db", SNR), n_trials, seed, **kw)


def chunk_files(root):
    return sorted(p for p in root.rglob("snr*-t*.npz"))


# ---------------------------------------------------------------------------
# results and determinism
# ---------------------------------------------------------------------------
def test_rows_match_independent_regeneration_of_the_data():
    rows, trials = sweep({"DPD": grid_dpd, "origin": origin}, return_trials=True)
    expected = [("DPD", -5.0), ("DPD", 10.0), ("origin", -5.0), ("origin", 10.0)]
    assert [(r["method"], r["snr_db"]) for r in rows] == expected
    assert set(rows[0]) == set(ex.ROW_FIELDS)
    for j, snr in enumerate(SNR):
        truth = np.concatenate([los_simulate(SMALL, 1, snr, ex.trial_seed(3, j, t)).positions for t in range(12)])
        # common random numbers: both methods saw the same users
        np.testing.assert_array_equal(trials[("DPD", j)]["positions"], truth)
        np.testing.assert_array_equal(trials[("origin", j)]["positions"], truth)
        err = np.linalg.norm(truth, axis=1)
        row = rows[2 + j]
        assert row["n_trials"] == 12
        assert row["mse"] == pytest.approx(np.mean(err**2))
        assert row["p_submeter"] == pytest.approx(np.mean(err < 1.0))
        assert row["median_error"] == pytest.approx(np.median(err))
    # at 10 dB the grid DPD finds the cell of every user (error <= half diagonal 4.71 m)
    assert max(trials[("DPD", 1)]["errors"]) < 4.72
    assert trials[("DPD", 0)]["los"].shape == (12, SMALL.n_bs)


def test_trial_seed_depends_on_master_seed_point_and_trial_only():
    seeds = {ex.trial_seed(s, j, t) for s in (0, 1) for j in (0, 1) for t in (0, 1)}
    assert len(seeds) == 8
    assert ex.trial_seed(5, 2, 7) == ex.trial_seed(5, 2, 7)


def test_source_digest_is_stable():
    d = ex.source_digest()
    assert d == ex.source_digest() and len(d) == 16 and int(d, 16) >= 0


def test_deterministic_and_invariant_to_chunking(tmp_path):
    ref = sweep({"DPD": grid_dpd}, chunk_size=12)
    for cs in (1, 5, 7, 100):
        assert sweep({"DPD": grid_dpd}, chunk_size=cs) == ref
    assert sweep({"DPD": grid_dpd}, chunk_size=5, cache_dir=tmp_path, backend="sequential") == ref
    assert sweep({"DPD": grid_dpd}, seed=4) != ref


def test_loky_jobs_give_identical_rows(tmp_path):
    ref = sweep({"DPD": grid_dpd, "origin": origin}, chunk_size=4)
    par = sweep({"DPD": grid_dpd, "origin": origin}, chunk_size=3, n_jobs=2, backend="loky", cache_dir=tmp_path)
    assert par == ref
    assert len(chunk_files(tmp_path)) == 2 * 2 * 4  # methods x SNR points x chunks
    # the cached chunks are read back
    assert sweep({"DPD": grid_dpd, "origin": origin}, chunk_size=3, cache_dir=tmp_path) == ref


def test_dask_backend_with_local_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    ref = sweep({"DPD": grid_dpd, "origin": origin})
    with pytest.raises(ValueError, match="distributed.Client"):
        sweep({"DPD": grid_dpd}, backend="dask")
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None):
        rows = sweep({"DPD": grid_dpd, "origin": origin}, backend="dask", cache_dir=tmp_path)
    assert rows == ref
    assert len(chunk_files(tmp_path)) == 2 * 2 * 3


def test_default_generator_is_channel_simulate():
    from daun_lib.channel import simulate

    rows, trials = ex.accuracy_sweep(
        {"DPD": grid_dpd}, SMALL, [20.0], 3, 1, cache_dir=None, progress=False, chunk_size=2, return_trials=True
    )
    b = simulate(SMALL, 1, 20.0, seed=ex.trial_seed(1, 0, 2))
    np.testing.assert_array_equal(trials[("DPD", 0)]["positions"][2], b.positions[0])
    np.testing.assert_array_equal(trials[("DPD", 0)]["estimates"][2], grid_dpd(SMALL, b.y)[0])
    assert rows[0]["n_trials"] == 3


# ---------------------------------------------------------------------------
# cache
# ---------------------------------------------------------------------------
def test_interrupted_run_resumes_without_recomputing(tmp_path):
    n_chunks = 2 * 3  # SNR points x chunks of 5 in 12 trials
    first = Counting(fail_at=4)
    other = Counting(origin)
    with pytest.raises(RuntimeError, match="'M' failed"):
        sweep({"O": other, "M": first}, cache_dir=tmp_path)
    # three chunks of M finished; in the failing chunk the other method's result was still stored
    assert len(list(tmp_path.glob("M-*/snr*.npz"))) == 3
    assert len(list(tmp_path.glob("O-*/snr*.npz"))) == 4
    folder = next(tmp_path.glob("M-*"))
    params = json.loads((folder / "params.json").read_text())
    assert params["method"] == "M" and params["seed"] == 3 and params["snr_db"] == SNR
    assert params["scenario"]["n_antennas"] == 8 and params["simulate"].endswith("los_simulate")
    assert folder.name == f"M-{ex.params_hash(params)}"
    assert not list(tmp_path.rglob("*.tmp"))

    again, other2 = Counting(), Counting(origin)
    rows = sweep({"O": other2, "M": again}, cache_dir=tmp_path)
    assert again.calls == n_chunks - 3 and other2.calls == n_chunks - 4
    assert rows == sweep({"O": origin, "M": grid_dpd})

    third = Counting()
    assert sweep({"O": origin, "M": third}, cache_dir=tmp_path) == rows
    assert third.calls == 0


def test_ctrl_c_keeps_finished_chunks(tmp_path):
    m = Counting(fail_at=3, error=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        sweep({"M": m}, cache_dir=tmp_path)
    assert len(chunk_files(tmp_path)) == 2
    again = Counting()
    assert sweep({"M": again}, cache_dir=tmp_path) == sweep({"M": grid_dpd})
    assert again.calls == 2 * 3 - 2


def test_parameter_change_never_reuses_results(tmp_path):
    sweep({"M": Counting()}, cache_dir=tmp_path)
    changes = [
        dict(seed=4),
        dict(n_trials=13),
        dict(snr_db=[-5.0, 11.0]),
        dict(extra={"weights": "abc"}),
        dict(simulate=lambda s, n, snr, seed=None: los_simulate(s, n, snr, seed)),
    ]
    for change in changes:
        m = Counting()
        sweep({"M": m}, cache_dir=tmp_path, **change)
        assert m.calls > 0, change
    m = Counting()
    ex.accuracy_sweep(
        {"M": m},
        Scenario(n_antennas=8, grid_shape=(6, 6), n_angles=13),
        SNR,
        12,
        3,
        cache_dir=tmp_path,
        progress=False,
        simulate=los_simulate,
        chunk_size=5,
    )
    assert m.calls == 2 * 3
    assert len(list(tmp_path.glob("M-*"))) == 1 + len(changes) + 1
    # the original parameters still hit the cache, also with another chunk size once computed
    m = Counting()
    sweep({"M": m}, cache_dir=tmp_path)
    assert m.calls == 0


def test_chunk_size_change_recomputes_and_agrees(tmp_path):
    ref = sweep({"M": grid_dpd}, cache_dir=tmp_path, chunk_size=5)
    m = Counting()
    assert sweep({"M": m}, cache_dir=tmp_path, chunk_size=4) == ref
    assert m.calls == 2 * 3


def test_force_recomputes_everything(tmp_path):
    ref = sweep({"M": Counting()}, cache_dir=tmp_path)
    m = Counting()
    assert sweep({"M": m}, cache_dir=tmp_path, force=True) == ref
    assert m.calls == 2 * 3
    assert len(chunk_files(tmp_path)) == 2 * 3


def test_corrupt_chunk_is_recomputed_and_files_need_no_pickle(tmp_path):
    ref = sweep({"M": Counting()}, cache_dir=tmp_path)
    files = chunk_files(tmp_path)
    with np.load(files[0], allow_pickle=False) as f:
        assert {"trials", "errors", "estimates", "positions"} <= set(f.files)
    files[0].write_bytes(b"not an npz")
    m = Counting()
    with pytest.warns(ex.CacheWarning, match=files[0].name):
        assert sweep({"M": m}, cache_dir=tmp_path) == ref
    assert m.calls == 1


# ---------------------------------------------------------------------------
# registry names
# ---------------------------------------------------------------------------
def test_names_are_looked_up_in_the_registry(monkeypatch):
    fake = types.ModuleType("daun_lib.methods")
    fake.REGISTRY = {"DPD": grid_dpd, "origin": origin}
    monkeypatch.setitem(sys.modules, "daun_lib.methods", fake)
    assert sweep(["DPD", "origin"]) == sweep({"DPD": grid_dpd, "origin": origin})
    with pytest.raises(ValueError, match="methods: unknown method 'MUSIC'"):
        sweep(["DPD", "MUSIC"])


# ---------------------------------------------------------------------------
# CSV and sidecar
# ---------------------------------------------------------------------------
def test_csv_and_sidecar_round_trip(tmp_path):
    rows = sweep({"DPD": grid_dpd, "origin": origin})
    rows[0]["note"] = "first"
    path = ex.write_csv(rows, tmp_path / "sub" / "fig2.csv", {"n_trials": 12, "snr_db": np.array(SNR)})
    back = ex.read_csv(path)
    assert [r["method"] for r in back] == [r["method"] for r in rows]
    for a, b in zip(rows, back, strict=True):
        for key in ex.ROW_FIELDS:
            assert b[key] == a[key], key  # floats are written in round-trip form
        assert isinstance(b["n_trials"], int)
    assert back[0]["note"] == "first" and back[1]["note"] == ""
    side = ex.read_params(path)
    assert side["params"] == {"n_trials": 12, "snr_db": SNR}
    env = side["environment"]
    for key in ("daun_lib", "numpy", "torch", "platform", "cpu_count", "date", "python"):
        assert key in env
    assert (tmp_path / "sub" / "fig2.json").is_file()
    assert not list((tmp_path / "sub").glob("*.tmp"))


def test_csv_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="rows"):
        ex.write_csv([], tmp_path / "a.csv")
    with pytest.raises(ValueError, match="path"):
        ex.write_csv([{"a": 1}], tmp_path / "a.txt")
    with pytest.raises(ValueError, match="params"):
        ex.write_csv([{"a": 1}], tmp_path / "a.csv", {"f": object()})
    with pytest.raises(ValueError, match="path"):
        ex.read_csv(tmp_path / "missing.csv")


# ---------------------------------------------------------------------------
# timing
# ---------------------------------------------------------------------------
def test_time_methods_counts_calls_and_scales():
    y = np.zeros((4, 2, 3), complex)
    calls = {"batch": [], "single": []}

    def f(v):
        calls["cur"].append(v.shape[0])

    calls["cur"] = calls["batch"]
    out = ex.time_methods({"f": f}, y, repeats=3)
    assert calls["batch"] == [4] * 4  # warm-up + 3 repeats
    assert out["f"] >= 0.0
    calls["cur"] = calls["single"]
    ex.time_methods({"f": f}, y, repeats=2, batch=False)
    assert calls["single"] == [1] * (1 + 2 * 4)

    import time

    per_run = ex.time_methods({"s": lambda v: time.sleep(0.01)}, y, repeats=2, per_sample=False)["s"]
    per_sample = ex.time_methods({"s": lambda v: time.sleep(0.01)}, y, repeats=2)["s"]
    assert per_run >= 0.009 and per_sample == pytest.approx(per_run / 4, rel=0.5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(callables={}), "callables"),
        (dict(callables={"a": 1}), "callables"),
        (dict(repeats=0), "repeats"),
        (dict(y=np.zeros((0, 2))), "y"),
        (dict(y=3.0), "y"),
    ],
)
def test_time_methods_bad_inputs(kwargs, match):
    args = dict(callables={"f": lambda v: None}, y=np.zeros((2, 2)), repeats=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        ex.time_methods(args.pop("callables"), args.pop("y"), **args)


# ---------------------------------------------------------------------------
# input validation of the sweep
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(methods={}), "methods"),
        (dict(methods=[]), "methods"),
        (dict(methods={"a": 3}), "methods"),
        (dict(n_trials=0), "n_trials"),
        (dict(n_trials=2.5), "n_trials"),
        (dict(snr_db=[0.0, float("nan")]), "snr_db"),
        (dict(snr_db=[]), "snr_db"),
        (dict(chunk_size=0), "chunk_size"),
        (dict(backend="spark"), "backend"),
        (dict(n_jobs=0), "n_jobs"),
        (dict(seed=-1), "seed"),
        (dict(seed=1.5), "seed"),
        (dict(extra={"x": object()}), "extra"),
        (dict(extra=[1]), "extra"),
        (dict(simulate=3), "simulate"),
        (dict(radius_m=0.0), "radius_m"),
        (dict(scenario="paper"), "scenario"),
    ],
)
def test_sweep_bad_inputs(kwargs, match):
    args = dict(methods={"DPD": grid_dpd}, scenario=SMALL, snr_db=[0.0], n_trials=2, seed=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        ex.accuracy_sweep(
            args.pop("methods"),
            args.pop("scenario"),
            args.pop("snr_db"),
            args.pop("n_trials"),
            args.pop("seed"),
            cache_dir=None,
            progress=False,
            simulate=args.pop("simulate", los_simulate),
            **args,
        )


def test_method_returning_wrong_shape_is_reported():
    with pytest.raises(RuntimeError, match=r"method 'bad' failed .*shape"):
        sweep({"bad": lambda s, y: np.zeros((y.shape[0], 3))})


def test_sidecars_record_the_source_revision():
    """Result sidecars name the commit of the code that made them (here: a git checkout)."""
    from pathlib import Path

    root = Path(ex.__file__).resolve().parents[2]
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    info = ex.environment_info()
    assert len(info["git_commit"]) == 40 and isinstance(info["git_dirty"], bool)
