"""The Monte Carlo engine under misuse and damage: no stale rows, no silent NaN, clear errors, no stray workers.

Each test calls the public API the way a user would and asserts either the
correct answer or a ValueError / RuntimeError / CacheWarning that names the
argument, the file or the method.
"""

from __future__ import annotations

import functools
import os
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import tracemalloc
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

from daun_lib import Scenario
from daun_lib import experiments as ex

SMALL = Scenario(n_antennas=8, grid_shape=(6, 6), n_angles=12)
SNR = [0.0, 10.0]
OFFSET_DB = 0.0  # read by a lambda generator below, as a notebook global would be


# ---------------------------------------------------------------------------
# a cheap generator whose data encode the position, and a method that reads it back
# ---------------------------------------------------------------------------
def coded_simulate(scenario, n, snr_db, seed=None, bias_m=0.0):
    """y[:, :, 0] / y[:, :, 1] hold x / y of the user plus noise of std 10^(-snr/20) (plus ``bias_m``)."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(-20.0, 20.0, size=(n, 2))
    std = 10 ** (-snr_db / 20)
    y = np.zeros((n, scenario.n_bs, scenario.n_antennas), complex)
    y[:, :, 0] = p[:, :1] + bias_m + std * rng.standard_normal((n, scenario.n_bs))
    y[:, :, 1] = p[:, 1:] + bias_m + std * rng.standard_normal((n, scenario.n_bs))
    return types.SimpleNamespace(y=y, positions=p, los=np.full((n, scenario.n_bs), bias_m == 0.0))


def read_back(scenario, y):
    return np.stack([y[:, :, 0].real.mean(axis=1), y[:, :, 1].real.mean(axis=1)], axis=1)


def read_back_half(scenario, y):
    return read_back(scenario, y) / 2


class Counted:
    """``read_back`` with a call counter; keyed explicitly (the counter is not part of the result)."""

    cache_key = "counted-read-back-v1"

    def __init__(self):
        self.calls = 0

    def __call__(self, scenario, y):
        self.calls += 1
        return read_back(scenario, y)


def sweep(methods, n_trials=10, seed=1, **kw):
    kw.setdefault("cache_dir", None)
    kw.setdefault("progress", False)
    kw.setdefault("simulate", coded_simulate)
    kw.setdefault("chunk_size", 5)
    return ex.accuracy_sweep(methods, SMALL, kw.pop("snr_db", SNR), n_trials, seed, **kw)


def chunk_files(root):
    return sorted(Path(root).rglob("snr*-t*.npz"))


def is_root():
    return hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def readonly_dir(tmp_path):
    """A folder this process cannot write to (chmod for a normal user; /sys when running as root)."""
    if not is_root():
        d = tmp_path / "ro"
        d.mkdir()
        d.chmod(stat.S_IRUSR | stat.S_IXUSR)
        yield d
        d.chmod(stat.S_IRWXU)
        return
    try:
        fd, probe = tempfile.mkstemp(dir="/sys")
    except OSError:
        yield Path("/sys")
        return
    os.close(fd)
    os.unlink(probe)
    pytest.skip("running as root with no read-only folder available")


# ---------------------------------------------------------------------------
# 1. every callable keyed by what it computes
# ---------------------------------------------------------------------------
def _offset_by_closure(offset):
    return lambda s, n, snr, seed=None: coded_simulate(s, n, snr + offset, seed)


def test_lambda_generator_with_another_offset_gets_its_own_rows(tmp_path):
    first = sweep({"M": read_back}, cache_dir=tmp_path, simulate=_offset_by_closure(0.0))
    second = sweep({"M": read_back}, cache_dir=tmp_path, simulate=_offset_by_closure(-20.0))
    assert second == sweep({"M": read_back}, simulate=_offset_by_closure(-20.0))
    assert second != first
    # the cached rows of the first generator are still served to it
    assert sweep({"M": read_back}, cache_dir=tmp_path, simulate=_offset_by_closure(0.0)) == first


def test_lambda_reading_a_changed_global_gets_its_own_rows(tmp_path, monkeypatch):
    gen = lambda s, n, snr, seed=None: coded_simulate(s, n, snr + OFFSET_DB, seed)  # noqa: E731
    first = sweep({"M": read_back}, cache_dir=tmp_path, simulate=gen)
    monkeypatch.setattr(sys.modules[__name__], "OFFSET_DB", -20.0)
    second = sweep({"M": read_back}, cache_dir=tmp_path, simulate=gen)
    assert second != first
    assert second == sweep({"M": read_back}, simulate=gen)


def test_partial_generator_with_other_arguments_gets_its_own_rows(tmp_path):
    los = sweep({"M": read_back}, cache_dir=tmp_path, simulate=functools.partial(coded_simulate, bias_m=0.0))
    nlos_gen = functools.partial(coded_simulate, bias_m=3.0)
    nlos, trials = sweep({"M": read_back}, cache_dir=tmp_path, simulate=nlos_gen, return_trials=True)
    assert nlos == sweep({"M": read_back}, simulate=nlos_gen)
    assert nlos != los
    assert not trials[("M", 0)]["los"].any()  # the all-NLoS generator's data, not the cached LoS ones


def test_another_function_under_the_same_method_name_gets_its_own_rows(tmp_path):
    first = sweep({"mine": read_back}, cache_dir=tmp_path)
    second = sweep({"mine": read_back_half}, cache_dir=tmp_path)
    assert second == sweep({"mine": read_back_half})
    assert [r["mse"] for r in second] != [r["mse"] for r in first]


def test_registry_closures_of_one_factory_are_keyed_apart(tmp_path):
    from daun_lib.methods import REGISTRY

    scenario = Scenario()
    args = dict(cache_dir=tmp_path, progress=False, chunk_size=2)
    ex.accuracy_sweep({"net": REGISTRY["DAUN"]}, scenario, [10.0], 2, 0, **args)
    rows, trials = ex.accuracy_sweep({"net": REGISTRY["DAUN-R"]}, scenario, [10.0], 2, 0, return_trials=True, **args)
    assert len(list(tmp_path.glob("net-*"))) == 2
    _, fresh = ex.accuracy_sweep(
        {"net": REGISTRY["DAUN-R"]}, scenario, [10.0], 2, 0, cache_dir=None, progress=False, return_trials=True
    )
    np.testing.assert_array_equal(trials[("net", 0)]["estimates"], fresh[("net", 0)]["estimates"])


def test_a_method_that_cannot_be_keyed_is_refused_with_the_fix(tmp_path):
    lock = threading.Lock()

    def mine(scenario, y):
        with lock:
            return read_back(scenario, y)

    with pytest.raises(ValueError, match=r"methods\['mine'\].*cache_key.*cache_dir=None"):
        sweep({"mine": mine}, cache_dir=tmp_path)
    assert not chunk_files(tmp_path)
    assert sweep({"mine": mine}) == sweep({"mine": read_back})  # no cache: runs
    mine.cache_key = "mine-v1"
    assert sweep({"mine": mine}, cache_dir=tmp_path) == sweep({"mine": read_back})
    assert len(chunk_files(tmp_path)) == 2 * 2


def test_a_generator_that_cannot_be_keyed_is_refused(tmp_path):
    lock = threading.Lock()

    def gen(s, n, snr, seed=None):
        with lock:
            return coded_simulate(s, n, snr, seed)

    with pytest.raises(ValueError, match=r"simulate.*cache_key"):
        sweep({"M": read_back}, cache_dir=tmp_path, simulate=gen)


# ---------------------------------------------------------------------------
# 2. damaged chunks are detected, reported and recomputed
# ---------------------------------------------------------------------------
def _load(path):
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _flip(path, where):
    data = bytearray(path.read_bytes())
    data[where] ^= 0xFF
    path.write_bytes(bytes(data))


def _resave(path, arrays, *, checksum=True):
    """Rewrite a chunk; with ``checksum`` the checksum matches the (damaged) arrays, so only the checks catch it."""
    arrays = {k: v for k, v in arrays.items() if k != "checksum"}
    if checksum:
        ex.save_chunk(path, arrays)
    else:
        np.savez(path, **arrays)


def _damage(kind, path):
    a = _load(path)
    if kind == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif kind == "flipped zip header":
        _flip(path, 0)
    elif kind == "flipped errors byte":
        _flip(path, path.read_bytes().find(a["errors"].tobytes()) + 3)
    elif kind == "flipped estimates byte":
        _flip(path, path.read_bytes().find(a["estimates"].tobytes()) + 7)
    elif kind == "NaN errors":
        a["errors"][1] = np.nan
        _resave(path, a)
    elif kind == "shortened":
        _resave(path, {k: (v[:-1] if v.ndim else v) for k, v in a.items()})
    elif kind == "zeroed errors":
        a["errors"][:] = 0.0
        _resave(path, a)
    elif kind == "zeroed errors, stale checksum":
        a["errors"][:] = 0.0
        _resave(path, {**a, "checksum": a["checksum"]}, checksum=False)
    elif kind == "other snr":
        a["snr_db"] = np.float64(a["snr_db"] + 1.0)
        _resave(path, a)
    elif kind == "other trials":
        a["trials"] = a["trials"] + 1
        _resave(path, a)
    elif kind == "missing estimates":
        del a["estimates"]
        _resave(path, a)
    elif kind == "float32 positions":
        a["positions"] = a["positions"].astype(np.float32)
        _resave(path, a)
    elif kind == "no checksum":
        _resave(path, a, checksum=False)
    else:  # pragma: no cover
        raise AssertionError(kind)


DAMAGE = [
    "truncated",
    "flipped zip header",
    "flipped errors byte",
    "flipped estimates byte",
    "NaN errors",
    "shortened",
    "zeroed errors",
    "zeroed errors, stale checksum",
    "other snr",
    "other trials",
    "missing estimates",
    "float32 positions",
    "no checksum",
]


@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_chunk_is_reported_recomputed_and_replaced(tmp_path, kind):
    ref = sweep({"M": Counted()}, cache_dir=tmp_path)
    victim = chunk_files(tmp_path)[1]
    _damage(kind, victim)
    m = Counted()
    with pytest.warns(ex.CacheWarning, match=victim.name) as record:
        rows = sweep({"M": m}, cache_dir=tmp_path)
    assert rows == ref
    assert m.calls == 1
    assert len(record) == 1
    # the file was replaced by a good one: the next run loads everything, silently
    again = Counted()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sweep({"M": again}, cache_dir=tmp_path) == ref
    assert again.calls == 0


def test_complete_cache_is_read_without_writing(tmp_path, monkeypatch):
    ref = sweep({"M": Counted()}, cache_dir=tmp_path)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}

    def no_write(*args, **kwargs):
        raise AssertionError("the engine wrote to a complete cache")

    monkeypatch.setattr(ex.cache, "atomic_write_bytes", no_write)  # every cache write goes through ex.cache
    monkeypatch.setattr(ex.cache, "atomic_write_text", no_write)
    if not is_root():
        for p in sorted(tmp_path.rglob("*"), reverse=True) + [tmp_path]:
            p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        m = Counted()
        assert sweep({"M": m}, cache_dir=tmp_path) == ref
        assert m.calls == 0
    finally:
        for p in [tmp_path] + sorted(tmp_path.rglob("*")):
            p.chmod(p.stat().st_mode | stat.S_IWUSR)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before


def test_params_json_is_kept_when_unchanged(tmp_path):
    sweep({"M": Counted()}, cache_dir=tmp_path, n_trials=10)
    params = next(tmp_path.glob("M-*/params.json"))
    stamp = params.stat().st_mtime_ns
    chunk_files(tmp_path)[0].unlink()  # something to compute in the same folder
    sweep({"M": Counted()}, cache_dir=tmp_path, n_trials=10)
    assert params.stat().st_mtime_ns == stamp


# ---------------------------------------------------------------------------
# 3. NaN / inf positions stop the sweep, naming the method, the point and the trials
# ---------------------------------------------------------------------------
def test_nan_positions_are_refused_and_not_cached(tmp_path):
    def lost(scenario, y):
        return np.full((y.shape[0], 2), np.nan)

    with pytest.raises(
        RuntimeError,
        match=r"method 'lost' failed at snr_db=0.0 \(point 0\), trials 0\.\.4.*"
        r"10 non-finite entries",
    ):
        sweep({"ok": read_back, "lost": lost}, cache_dir=tmp_path)
    assert not list(tmp_path.glob("lost-*/snr*.npz"))
    assert len(list(tmp_path.glob("ok-*/snr*.npz"))) == 1  # what finished before is kept


def test_one_inf_entry_in_a_later_chunk_is_counted():
    def sometimes_inf(scenario, y):
        out = read_back(scenario, y)
        if y.shape[0] == 3:  # the last, short chunk
            out[2, 1] = np.inf
        return out

    with pytest.raises(
        RuntimeError,
        match=r"'odd' failed at snr_db=0.0 \(point 0\), trials 10\.\.12.*"
        r"1 non-finite entries",
    ):
        sweep({"odd": sometimes_inf}, n_trials=13, snr_db=[0.0])


def test_generator_with_nan_positions_is_named():
    def broken(s, n, snr, seed=None):
        b = coded_simulate(s, n, snr, seed)
        b.positions[:] = np.nan
        return b

    with pytest.raises(ValueError, match=r"simulate: trial 0 at snr_db=0.0.*positions"):
        sweep({"M": read_back}, simulate=broken, snr_db=[0.0])


# ---------------------------------------------------------------------------
# 4. unusable folders fail first, with the argument's name
# ---------------------------------------------------------------------------
def test_cache_dir_that_is_a_file(tmp_path):
    f = tmp_path / "cache"
    f.write_text("not a folder")
    m = Counted()
    with pytest.raises(ValueError, match="cache_dir: .*existing file"):
        sweep({"M": m}, cache_dir=f)
    with pytest.raises(ValueError, match="cache_dir: cannot create .*is a file"):
        sweep({"M": m}, cache_dir=f / "sub")
    with pytest.raises(ValueError, match="cache_dir: expected a folder path"):
        sweep({"M": m}, cache_dir=3)
    assert m.calls == 0


def test_unwritable_cache_dir_fails_before_the_sweep(readonly_dir):
    m = Counted()
    with pytest.raises(ValueError, match="cache_dir: .*not writable"):
        sweep({"M": m}, cache_dir=readonly_dir)
    assert m.calls == 0
    with pytest.raises(ValueError, match="cache_dir: .*not writable"):
        sweep({"M": m}, cache_dir=readonly_dir / "new" / "cache")
    assert m.calls == 0


def test_write_csv_to_unusable_places(tmp_path, readonly_dir):
    rows = [{"method": "M", "mse": 1.0}]
    with pytest.raises(ValueError, match="path: .*not writable"):
        ex.write_csv(rows, readonly_dir / "fig2.csv")
    blocker = tmp_path / "results"
    blocker.write_text("a file, not a folder")
    with pytest.raises(ValueError, match="path: cannot create .*is a file"):
        ex.write_csv(rows, blocker / "fig2.csv")
    with pytest.raises(ValueError, match="path: expected a .csv file name"):
        ex.write_csv(rows, None)
    assert ex.read_csv(ex.write_csv(rows, tmp_path / "new" / "fig2.csv")) == rows


def test_check_writable_before_a_long_sweep(tmp_path, readonly_dir):
    assert ex.check_writable(tmp_path, "results_dir") == tmp_path
    assert ex.check_writable(tmp_path / "a" / "b.csv", "path") == tmp_path / "a" / "b.csv"
    assert not (tmp_path / "a").exists() and not list(tmp_path.iterdir())  # nothing created or left behind
    with pytest.raises(ValueError, match="results_dir: .*not writable"):
        ex.check_writable(readonly_dir, "results_dir")
    f = tmp_path / "f.csv"
    f.write_text("x")
    assert ex.check_writable(f, "path", directory=False) == f
    with pytest.raises(ValueError, match="results_dir: .*existing file, expected a folder"):
        ex.check_writable(f, "results_dir", directory=True)
    with pytest.raises(ValueError, match="path: .*is a folder, expected a file name"):
        ex.check_writable(tmp_path, "path", directory=False)
    with pytest.raises(ValueError, match="out: expected a non-empty path"):
        ex.check_writable("", "out")


# ---------------------------------------------------------------------------
# 5. one thread per chunk in workers; the caller's threads elsewhere
# ---------------------------------------------------------------------------
def needs_one_thread(scenario, y):
    """Fails unless torch runs one thread, then leaves torch at three threads (as a careless library would)."""
    import torch

    if torch.get_num_threads() != 1:
        raise RuntimeError(f"chunk ran with {torch.get_num_threads()} torch threads")
    torch.set_num_threads(3)
    return read_back(scenario, y)


def test_loky_workers_run_every_chunk_with_one_thread():
    # 2 x 4 chunks on two workers: each worker runs several, so the first one's leftover threads would show
    rows = sweep({"M": needs_one_thread}, n_trials=8, chunk_size=2, n_jobs=2, backend="loky")
    assert rows == sweep({"M": read_back}, n_trials=8)


def test_sequential_run_keeps_the_callers_threads():
    import torch

    seen = []
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        sweep({"M": lambda s, y: seen.append(torch.get_num_threads()) or read_back(s, y)}, backend="sequential")
        sweep({"M": lambda s, y: seen.append(torch.get_num_threads()) or read_back(s, y)}, n_jobs=1)
        assert seen == [2] * 8
    finally:
        torch.set_num_threads(saved)


def test_dask_in_process_worker_uses_one_thread_and_restores_the_callers():
    distributed = pytest.importorskip("distributed")
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with distributed.Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None):
            rows = sweep({"M": needs_one_thread}, backend="dask")
        assert rows == sweep({"M": read_back})
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(saved)


# ---------------------------------------------------------------------------
# 6. no worker outlives the sweep or its killed parent
# ---------------------------------------------------------------------------
def _alive(pid):
    """True while ``pid`` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def record_pid(scenario, y, folder=""):
    Path(folder, str(os.getpid())).write_text(str(os.getppid()))
    return read_back(scenario, y)


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")


@needs_proc
def test_loky_workers_started_by_a_sweep_are_shut_down(tmp_path):
    rows = sweep({"M": functools.partial(record_pid, folder=str(tmp_path))}, n_jobs=2, backend="loky")
    assert rows == sweep({"M": read_back})
    pids = [int(p.name) for p in tmp_path.iterdir()]
    assert pids and all(int(p.read_text()) == os.getpid() for p in tmp_path.iterdir())
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in pids if _alive(pid)]


KILLED_PARENT = """
import os, sys, time, types
import numpy as np
from daun_lib import Scenario, experiments as ex

def slow(scenario, y):
    with open(os.path.join(sys.argv[1], str(os.getpid())), "w") as fh:
        fh.write(str(os.getppid()))
    time.sleep(120)
    return np.zeros((y.shape[0], 2))

def gen(scenario, n, snr_db, seed=None):
    y = np.ones((n, scenario.n_bs, scenario.n_antennas), complex)
    return types.SimpleNamespace(y=y, positions=np.zeros((n, 2)))

ex.accuracy_sweep({"slow": slow}, Scenario(n_antennas=8, grid_shape=(6, 6), n_angles=12), [0.0], 4, 0,
                  cache_dir=None, chunk_size=1, n_jobs=2, backend="loky", progress=False, simulate=gen)
"""


@needs_proc
def test_workers_exit_when_the_sweeping_process_is_killed(tmp_path):
    script = tmp_path / "sweep.py"
    script.write_text(textwrap.dedent(KILLED_PARENT))
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(pid_dir)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while len(list(pid_dir.iterdir())) < 2:
            assert proc.poll() is None, proc.communicate()[0].decode(errors="replace")
            assert time.monotonic() < deadline, "the workers did not start within 120 s"
            time.sleep(0.2)
        time.sleep(0.2)  # let both files be written completely
        pids = [int(p.name) for p in pid_dir.iterdir()]
        assert all(int(p.read_text()) == proc.pid for p in pid_dir.iterdir())  # children of the sweep
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in pids if _alive(pid)], "workers outlived their killed parent"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------------------
# 7. one chunk of data in memory at a time
# ---------------------------------------------------------------------------
def test_a_chunk_is_drawn_into_one_buffer():
    scenario = Scenario(n_antennas=256, grid_shape=(6, 6), n_angles=12)
    n = 200
    chunk_bytes = n * scenario.n_bs * scenario.n_antennas * 16

    def gen(s, k, snr, seed=None):
        return types.SimpleNamespace(y=np.ones((k, s.n_bs, s.n_antennas), complex), positions=np.zeros((k, 2)))

    tracemalloc.start()
    try:
        ex.accuracy_sweep(
            {"origin": lambda s, y: np.zeros((y.shape[0], 2))},
            scenario,
            [0.0],
            n,
            0,
            cache_dir=None,
            chunk_size=n,
            progress=False,
            simulate=gen,
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1.5 * chunk_bytes, (peak, chunk_bytes)  # a list of trials plus their concatenation is 2x


def test_arrays_checksum_covers_names_dtypes_shapes_and_bytes(tmp_path):
    from daun_lib.experiments.cache import arrays_checksum, save_chunk

    a = {"x": np.arange(6, dtype=np.int64), "y": np.ones((2, 3))}
    base = arrays_checksum(a)
    assert base == arrays_checksum({**a, "checksum": np.str_("ignored")})
    for changed in ({**a, "x": a["x"].astype(np.int32)}, {**a, "y": a["y"].reshape(3, 2)},
                    {"z": a["x"], "y": a["y"]}, {**a, "y": a["y"] * (1 + 2**-52)}):  # fmt: skip
        assert arrays_checksum(changed) != base
    save_chunk(tmp_path / "c.npz", a)
    with np.load(tmp_path / "c.npz", allow_pickle=False) as z:
        assert str(z["checksum"]) == base
