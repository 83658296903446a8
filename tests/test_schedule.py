"""The notebook runner's scheduler: order, run-alone, up-to-date stamps, failures (no kernel: fake executors)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from daun_lib.studies import _schedule
from daun_lib.studies._schedule import NotebookError, Task


def _task(tmp: Path, stem: str, *, estimate=1.0, run_alone=False, after=(), reads=()) -> Task:
    nb = tmp / "nbs" / f"{stem}.ipynb"
    nb.parent.mkdir(parents=True, exist_ok=True)
    nb.write_text(json.dumps({"cells": [], "metadata": {}, "stem": stem}))
    res = tmp / "res" / stem
    res.mkdir(parents=True, exist_ok=True)
    return Task(
        path=nb,
        target=tmp / "out" / f"{stem}.ipynb",
        params={"p": stem},
        out_dirs=(res,),
        run_alone=run_alone,
        after=tuple(after),
        reads=tuple(reads),
        estimate=estimate,
    )


class Recorder:
    """A fake executor: writes the executed copy and one result file, records start and end order."""

    def __init__(self, seconds=0.05, fail=()):
        self.seconds, self.fail = seconds, set(fail)
        self.events, self.env = [], {}
        self.lock = threading.Lock()
        self.active, self.max_active, self.alone_beside = 0, 0, []

    def __call__(self, task: Task, cancel: threading.Event) -> None:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            if task.run_alone and self.active > 1:
                self.alone_beside.append(task.stem)
            self.events.append(("start", task.stem))
            self.env[task.stem] = dict(task.env)
        try:
            if task.stem in self.fail:
                raise NotebookError(f"{task.stem} failed")
            cancel.wait(self.seconds)
            task.target.parent.mkdir(parents=True, exist_ok=True)
            task.target.write_text(f"executed {task.stem}")
            (task.out_dirs[0] / "result.csv").write_text(f"{task.stem},{time.time_ns()}")
        finally:
            with self.lock:
                self.active -= 1
                self.events.append(("end", task.stem))

    def order(self, kind):
        return [s for k, s in self.events if k == kind]


def _run(tasks, out, rec, jobs=2, force=False):
    lines = []
    times = _schedule.run_tasks(
        tasks,
        out,
        jobs,
        rec,
        digest=lambda t: _schedule.input_digest(t, {"quick": False}, {"env": 1}),
        log=lines.append,
        force=force,
    )
    return times, lines


def test_parallel_streams_run_alone_last_and_after_order(tmp_path):
    tasks = [
        _task(tmp_path, "01", estimate=1),
        _task(tmp_path, "03", estimate=50),
        _task(tmp_path, "05", estimate=10, run_alone=True),
        _task(tmp_path, "07", estimate=20, after=("01",)),
        _task(tmp_path, "08", estimate=90),
    ]
    rec = Recorder()
    times, lines = _run(tasks, tmp_path / "out", rec)
    assert set(times) == {"01", "03", "05", "07", "08"}
    assert rec.max_active == 2
    assert rec.alone_beside == []
    starts = rec.order("start")
    assert starts[:2] == ["08", "03"]  # longest first
    assert starts[-1] == "05"  # the run-alone one after everything else
    assert rec.events.index(("end", "01")) < rec.events.index(("start", "07"))
    # one BLAS/OpenMP thread beside others; the machine's defaults for the run-alone notebook
    assert rec.env["08"] == _schedule.SINGLE_THREAD_ENV
    assert rec.env["05"] == {}
    assert any("left" in line and "start 08" in line for line in lines)
    assert "finished: 5 run, 0 up to date" in lines[-1]
    stored = json.loads((tmp_path / "out" / "timings.json").read_text())
    assert set(stored) == set(times)


def test_one_stream_pins_threads_too(tmp_path):
    """Results and costs must not depend on -j: one stream also runs its notebooks on one BLAS thread."""
    tasks = [_task(tmp_path, "01"), _task(tmp_path, "02"), _task(tmp_path, "05", run_alone=True)]
    rec = Recorder()
    _run(tasks, tmp_path / "out", rec, jobs=1)
    assert rec.max_active == 1
    assert rec.env == {"01": _schedule.SINGLE_THREAD_ENV, "02": _schedule.SINGLE_THREAD_ENV, "05": {}}


def test_second_run_skips_what_is_up_to_date_and_reruns_what_changed(tmp_path):
    out = tmp_path / "out"
    tasks = [_task(tmp_path, "01"), _task(tmp_path, "02"), _task(tmp_path, "03")]
    _run(tasks, out, Recorder())
    rec = Recorder()
    times, lines = _run(tasks, out, rec)
    assert times == {} and rec.events == []
    assert "finished: 0 run, 3 up to date" in lines[-1]
    # an output edited by hand, a changed notebook, a changed parameter: each reruns its notebook only
    (tasks[0].out_dirs[0] / "result.csv").write_text("edited")
    tasks[1].path.write_text(tasks[1].path.read_text() + " ")
    tasks[2].params = {"p": "other"}
    rec = Recorder()
    times, _ = _run(tasks, out, rec)
    assert set(times) == {"01", "02", "03"}
    rec = Recorder()
    tasks[0].target.unlink()  # the executed copy removed
    times, _ = _run(tasks, out, rec)
    assert set(times) == {"01"}
    rec = Recorder()
    times, _ = _run(tasks, out, rec, force=True)
    assert set(times) == {"01", "02", "03"}


def test_a_file_read_enters_the_digest(tmp_path):
    bench = tmp_path / "benchmark.csv"
    bench.write_text("a")
    task = _task(tmp_path, "05", reads=(bench,))
    d1 = _schedule.input_digest(task, {}, {})
    bench.write_text("b")
    assert _schedule.input_digest(task, {}, {}) != d1
    assert _schedule.input_digest(task, {"quick": True}, {}) != _schedule.input_digest(task, {}, {})
    assert _schedule.input_digest(task, {}, {"source": "x"}) != _schedule.input_digest(task, {}, {})


def test_failure_cancels_the_rest_and_keeps_finished_stamps(tmp_path):
    out = tmp_path / "out"
    tasks = [_task(tmp_path, "01", estimate=5), _task(tmp_path, "02", estimate=100), _task(tmp_path, "03")]
    rec = Recorder(seconds=0.02, fail=("01",))
    rec_slow = Recorder(seconds=30)

    def executor(task, cancel):
        (rec_slow if task.stem == "02" else rec)(task, cancel)

    start = time.perf_counter()
    with pytest.raises(NotebookError, match="01 failed"):
        _run(tasks, out, executor)
    assert time.perf_counter() - start < 20  # the long one was cancelled, not waited for
    assert "03" not in rec.order("start")  # nothing new starts after a failure
    assert not _schedule.stamp_path(out, tasks[0]).exists()


def test_stamps_of_a_notebook_beside_a_running_one_wait(tmp_path):
    """A notebook that finished beside one still running gets its stamp only when that one ends too."""
    out = tmp_path / "out"
    tasks = [_task(tmp_path, "01", estimate=100), _task(tmp_path, "02", estimate=1)]
    seen = {}

    def executor(task, cancel):
        if task.stem == "01":
            time.sleep(0.4)
            seen["02 stamped while 01 ran"] = _schedule.stamp_path(out, tasks[1]).exists()
        Recorder(seconds=0.01)(task, cancel)

    _run(tasks, out, executor)
    assert seen["02 stamped while 01 ran"] is False
    assert _schedule.stamp_path(out, tasks[1]).exists()


def test_marks_are_checked(tmp_path):
    nb = tmp_path / "x.ipynb"
    for meta, match in (
        ({"daun": {"run_alone": "yes"}}, "run_alone"),
        ({"daun": {"after": "01"}}, "after"),
        ({"daun": {"colour": 1}}, "unknown keys"),
        ({"daun": []}, "must be an object"),
    ):
        nb.write_text(json.dumps({"cells": [], "metadata": meta}))
        with pytest.raises(ValueError, match=match):
            _schedule.notebook_marks(nb)
    a = _task(tmp_path, "a", after=("b",))
    b = _task(tmp_path, "b", after=("a",))
    with pytest.raises(ValueError, match="cycle"):
        _schedule.check_order([a, b])


def test_time_left_longest_first_then_alone(tmp_path):
    tasks = [_task(tmp_path, "a", estimate=6), _task(tmp_path, "b", estimate=4), _task(tmp_path, "c", estimate=3)]
    tasks.append(_task(tmp_path, "d", estimate=10, run_alone=True))
    # two free streams: a | b + c -> 7, then d alone
    assert _schedule.time_left(tasks, [], 2) == pytest.approx(17)
    # one stream busy for 5 more seconds: [5, 0] -> a on the free one (6), b on the other (9), c (9) -> 9 + 10
    assert _schedule.time_left(tasks, [5.0], 2) == pytest.approx(19)


def test_estimates_come_from_the_stored_timings(tmp_path):
    assert _schedule.estimate("08_multiuser", {}) == _schedule.DEFAULT_SECONDS["08"]
    assert _schedule.estimate("08_multiuser", {"08_multiuser": 12.5}) == 12.5
    assert _schedule.estimate("99_new", {}) == _schedule.FALLBACK_SECONDS
    bad = tmp_path / "timings.json"
    bad.write_text("{not json")
    assert _schedule.load_timings(bad) == {}


def test_the_repository_marks_notebook_05_to_run_alone():
    root = Path(__file__).resolve().parents[1]
    marks = {p.stem: _schedule.notebook_marks(p) for p in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))}
    alone = [s for s, m in marks.items() if m["run_alone"]]
    assert alone == ["05_table1_runtime"]
    assert marks["05_table1_runtime"]["reads"] == ["benchmark.csv"]
