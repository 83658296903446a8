"""The notebook runner's scheduler, up-to-date stamps and timings (used by :mod:`daun_lib.studies.run_notebooks`).

Marks: a notebook may carry, in its notebook-level metadata, ``"daun": {"run_alone": true, "after": [...],
"reads": [...]}``: ``run_alone`` runs it after every other notebook of the run has finished, with nothing
beside it and the machine's default threads (notebook 05, a timing table); ``after`` names notebooks (file
stems) of the same run that must finish first; ``reads`` names files under its ``results_dir`` written by
something else (an earlier notebook, a benchmark) whose bytes determine its outputs.

Stamps: ``BUILD/stamps/<stem>.json``, written atomically after a notebook succeeded, holds the digest of
what determines its outputs (:func:`input_digest`) and the SHA-256 of every output: the executed copy and
each file in its ``results_dir``/``figures_dir`` that changed while it ran (a file that changed while
another notebook ran beside it is counted for both, so a stamp errs towards a rerun).  A notebook is up to
date when the digest is equal and every recorded output still has its recorded bytes.

Timings: ``BUILD/timings.json`` (notebook stem -> wall seconds of its last successful run, written
atomically) orders the streams longest first and gives the estimate of what is left; notebooks never run
there take :data:`DEFAULT_SECONDS`.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._io import atomic_write_text
from .._json import canonical

STAMP_FORMAT = 1
"""Version of the stamp layout; part of every digest."""

DEFAULT_SECONDS: dict[str, float] = {
    "01": 13.0,
    "02": 10.0,
    "03": 340.0,
    "04": 24.0,
    "05": 58.0,
    "06": 114.0,
    "07": 85.0,
    "08": 316.0,
    "09": 121.0,
}
"""Wall seconds per notebook number at paper scale, two streams on 2 cores (issue 23's fresh-clone runs); used until ``timings.json`` holds a run of this build folder."""

FALLBACK_SECONDS = 60.0
"""Estimate for a notebook with neither a stored timing nor a default."""

SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
"""Set in the kernel's environment of every notebook but the run-alone ones, whatever ``jobs`` (torch follows
OMP_NUM_THREADS): the package's kernels are single-threaded, a second BLAS thread only spins, and the results
and their cost then do not depend on how many streams run."""

VERSIONED = ("numpy", "scipy", "torch", "cvxpy", "clarabel", "matplotlib", "papermill", "sionna")
"""Distributions whose versions enter every digest."""


class NotebookError(RuntimeError):
    """A notebook failed; the message names it and the executed copy."""


@dataclass
class Task:
    """One notebook of a run."""

    path: Path
    target: Path  # the executed copy
    params: dict[str, Any]
    out_dirs: tuple[Path, ...] = ()  # its results_dir and figures_dir
    run_alone: bool = False
    after: tuple[str, ...] = ()
    reads: tuple[Path, ...] = ()
    estimate: float = FALLBACK_SECONDS
    env: dict[str, str] = field(default_factory=dict)  # set by the scheduler: the kernel's extra environment

    @property
    def stem(self) -> str:
        return self.path.stem


def notebook_marks(path: Path) -> dict[str, Any]:
    """The ``"daun"`` metadata of a notebook, checked: ``run_alone`` (bool), ``after`` and ``reads`` (lists of str)."""
    meta = json.loads(Path(path).read_text(encoding="utf-8")).get("metadata", {}).get("daun", {})
    if not isinstance(meta, dict):
        raise ValueError(f"notebooks: {Path(path).name}: metadata 'daun' must be an object, got {meta!r}")
    unknown = sorted(set(meta) - {"run_alone", "after", "reads"})
    if unknown:
        raise ValueError(f"notebooks: {Path(path).name}: unknown keys {unknown} in metadata 'daun'")
    if not isinstance(meta.get("run_alone", False), bool):
        raise ValueError(f"notebooks: {Path(path).name}: metadata daun.run_alone must be true or false")
    for key in ("after", "reads"):
        value = meta.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ValueError(f"notebooks: {Path(path).name}: metadata daun.{key} must be a list of names")
    return {"run_alone": meta.get("run_alone", False), "after": meta.get("after", []), "reads": meta.get("reads", [])}


def check_order(tasks: Sequence[Task]) -> None:
    """ValueError when ``after`` names the notebook itself or the marks form a cycle."""
    names = {t.stem for t in tasks}
    deps = {t.stem: {d for d in t.after if d in names} for t in tasks}
    done: set[str] = set()
    while len(done) < len(deps):
        free = [n for n, d in deps.items() if n not in done and d <= done]
        if not free:
            raise ValueError(f"notebooks: the 'after' marks form a cycle among {sorted(set(deps) - done)}")
        done.update(free)


# ---------------------------------------------------------------------------------------------------------------
# timings
# ---------------------------------------------------------------------------------------------------------------
def load_timings(path: Path) -> dict[str, float]:
    """``timings.json`` as stem -> seconds; empty when missing or unreadable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: float(v) for k, v in data.items() if isinstance(v, (int, float)) and v >= 0}


def estimate(stem: str, timings: Mapping[str, float]) -> float:
    """Stored seconds of ``stem``, else the default of its number, else :data:`FALLBACK_SECONDS`."""
    if stem in timings:
        return float(timings[stem])
    return DEFAULT_SECONDS.get(stem[:2], FALLBACK_SECONDS)


def time_left(pending: Iterable[Task], running: Iterable[float], jobs: int) -> float:
    """Seconds until the run ends: the longest-first schedule of ``pending`` on ``jobs`` streams, which are
    busy for ``running`` more seconds, then the run-alone notebooks one after another."""
    busy = list(running)
    streams = sorted(busy + [0.0] * max(0, jobs - len(busy)))[: max(jobs, 1)] or [0.0]
    alone = 0.0
    for t in sorted(pending, key=lambda t: -t.estimate):
        if t.run_alone:
            alone += t.estimate
        else:
            streams[streams.index(min(streams))] += t.estimate
    return max(streams) + alone


# ---------------------------------------------------------------------------------------------------------------
# digests and stamps
# ---------------------------------------------------------------------------------------------------------------
def file_digest(path: Path) -> str | None:
    """SHA-256 of a file's bytes, None when it is missing."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    return h.hexdigest()


def environment_digest() -> dict[str, Any]:
    """What every notebook depends on beyond its own inputs: the package source and weights, the versions."""
    from importlib import metadata

    from ..experiments.keys import source_digest

    versions = {}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"source": source_digest(), "python": sys.version.split()[0], "versions": versions}


def input_digest(task: Task, flags: Mapping[str, Any], environment: Mapping[str, Any]) -> str:
    """SHA-256 of what determines ``task``'s outputs: the notebook's bytes, the injected parameters, the runner
    flags, ``environment`` (:func:`environment_digest`) and the bytes of the files it reads."""
    record = {
        "format": STAMP_FORMAT,
        "notebook": file_digest(task.path),
        "params": task.params,
        "flags": dict(flags),
        "environment": dict(environment),
        "reads": {os.fspath(p): file_digest(p) for p in task.reads},
    }
    return hashlib.sha256(canonical(record).encode()).hexdigest()


def stamp_path(out: Path, task: Task) -> Path:
    return Path(out) / "stamps" / f"{task.stem}.json"


def up_to_date(out: Path, task: Task, digest: str) -> bool:
    """The stamp holds ``digest`` and every output it records still has its recorded bytes."""
    try:
        stamp = json.loads(stamp_path(out, task).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(stamp, dict) or stamp.get("digest") != digest or not isinstance(stamp.get("outputs"), dict):
        return False
    outputs = stamp["outputs"]
    return os.fspath(task.target) in outputs and all(file_digest(Path(p)) == d for p, d in outputs.items())


def write_stamp(out: Path, task: Task, digest: str, outputs: Iterable[Path], wall_s: float) -> Path:
    """Record ``digest`` and the SHA-256 of ``outputs`` (the executed copy always among them), atomically."""
    files = {os.fspath(p) for p in outputs} | {os.fspath(task.target)}
    record = {
        "notebook": task.path.name,
        "digest": digest,
        "outputs": {p: file_digest(Path(p)) for p in sorted(files)},
        "wall_s": round(wall_s, 3),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return atomic_write_text(stamp_path(out, task), json.dumps(record, indent=1) + "\n")


def snapshot(folders: Iterable[Path]) -> dict[str, tuple[int, int, int]]:
    """path -> (mtime_ns, size, inode) of every file under ``folders`` (hidden temporary files aside)."""
    out: dict[str, tuple[int, int, int]] = {}
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in files:
                if name.startswith("."):
                    continue
                p = os.path.join(root, name)
                try:
                    st = os.stat(p)
                except OSError:
                    continue
                out[p] = (st.st_mtime_ns, st.st_size, st.st_ino)
    return out


# ---------------------------------------------------------------------------------------------------------------
# the scheduler
# ---------------------------------------------------------------------------------------------------------------
Executor = Callable[[Task, threading.Event], None]
"""``executor(task, cancel)`` runs one notebook (raises on failure; should stop soon after ``cancel`` is set)."""


def _ready(task: Task, done: set[str], names: set[str]) -> bool:
    return all(d in done for d in task.after if d in names)


def next_task(pending: Sequence[Task], done: set[str], running: int, names: set[str]) -> Task | None:
    """The task to start now: the longest ready one beside others; a run-alone one only when nothing runs and
    no other task is ready."""
    ready = sorted((t for t in pending if _ready(t, done, names)), key=lambda t: (-t.estimate, t.stem))
    for t in ready:
        if not t.run_alone:
            return t
    return ready[0] if ready and running == 0 else None


@dataclass
class _Running:
    task: Task
    stream: int
    start: float
    before: dict[str, tuple[int, int, int]]
    digest: str | None
    beside: set[str] = field(default_factory=set)


def run_tasks(
    tasks: Sequence[Task],
    out: Path,
    jobs: int,
    executor: Executor,
    *,
    digest: Callable[[Task], str | None],
    log: Callable[[str], None] = print,
    force: bool = False,
) -> dict[str, float]:
    """Run ``tasks`` on ``jobs`` streams (see the module docstring); returns stem -> wall seconds of those run.

    ``digest(task)`` gives the input digest (None: no stamps).  The first failure cancels what runs and is
    re-raised once every stream has stopped; the notebooks that succeeded keep their stamps and timings.
    """
    check_order(tasks)
    out = Path(out)
    names = {t.stem for t in tasks}
    timings_file = out / "timings.json"
    pending, done = list(tasks), set()
    running: dict[Any, _Running] = {}
    finished: list[tuple[_Running, list[str], float]] = []  # succeeded, stamp not yet written
    times: dict[str, float] = {}
    free = list(range(1, max(jobs, 1) + 1))
    cancel, failure = threading.Event(), None
    t0 = time.perf_counter()

    def say(text: str) -> None:
        now = time.perf_counter()
        left = time_left(pending, [max(0.0, r.task.estimate - (now - r.start)) for r in running.values()], jobs)
        log(f"[{_clock(now - t0)}] {text}; about {_clock(left)} left")

    def stamp_ready() -> None:
        busy = {r.task.stem for r in running.values()}
        for item in list(finished):
            r, changed, wall = item
            if r.digest is not None and not (r.beside & busy):
                write_stamp(out, r.task, r.digest, [Path(p) for p in changed], wall)
                finished.remove(item)

    with ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
        try:
            while True:
                while failure is None and free:
                    task = next_task(pending, done, len(running), names)
                    if task is None:
                        break
                    pending.remove(task)
                    d = digest(task)
                    if not force and d is not None and up_to_date(out, task, d):
                        done.add(task.stem)
                        say(f"up to date {task.stem}")
                        continue
                    pinned = not task.run_alone
                    task.env = dict(SINGLE_THREAD_ENV) if pinned else {}
                    stream = free.pop(0)
                    r = _Running(task, stream, time.perf_counter(), snapshot(task.out_dirs), d)
                    for other in running.values():
                        other.beside.add(task.stem)
                        r.beside.add(other.task.stem)
                    running[pool.submit(executor, task, cancel)] = r
                    threads = "1 thread" if pinned else "default threads"
                    say(f"start {task.stem} on stream {stream} ({threads}, estimate {_clock(task.estimate)})")
                if not running:
                    break
                ended, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in ended:
                    r = running.pop(fut)
                    free.append(r.stream)
                    free.sort()
                    wall = time.perf_counter() - r.start
                    exc = fut.exception()
                    if exc is not None:
                        if failure is None:
                            failure = exc
                            cancel.set()
                        say(f"FAILED {r.task.stem} on stream {r.stream} after {_clock(wall)}")
                        continue
                    after = snapshot(r.task.out_dirs)
                    changed = [p for p, s in after.items() if r.before.get(p) != s]
                    finished.append((r, changed, wall))
                    done.add(r.task.stem)
                    times[r.task.stem] = wall
                    stored = load_timings(timings_file)
                    stored[r.task.stem] = round(wall, 3)
                    atomic_write_text(timings_file, json.dumps(stored, indent=1, sort_keys=True) + "\n")
                    say(f"done {r.task.stem} on stream {r.stream} in {_clock(wall)} ({len(done)}/{len(tasks)})")
                stamp_ready()
        finally:  # an interrupt or a failure: the streams still running stop their notebooks
            cancel.set()
    stamp_ready()
    if failure is not None:
        raise failure
    log(f"[{_clock(time.perf_counter() - t0)}] finished: {len(times)} run, {len(tasks) - len(times)} up to date")
    return times


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 60:d}:{s % 60:02d}"


# ---------------------------------------------------------------------------------------------------------------
# the default executor: papermill in a child process (its own kernel, its own environment)
# ---------------------------------------------------------------------------------------------------------------
def subprocess_executor(kernel_name: str, log_output: bool, progress_bar: bool, pythonpath: str) -> Executor:
    """An :data:`Executor` that runs ``python -m daun_lib.studies._schedule SPEC`` per notebook, with the task's
    extra environment and ``pythonpath`` first on ``PYTHONPATH``; the child (its own session) and its kernel are
    terminated when ``cancel`` is set."""

    def execute(task: Task, cancel: threading.Event) -> None:
        work = task.target.parent / ".runner"
        work.mkdir(parents=True, exist_ok=True)
        spec, error = work / f"{task.stem}.spec.json", work / f"{task.stem}.error.txt"
        error.unlink(missing_ok=True)
        spec_data = {
            "notebook": os.fspath(task.path),
            "target": os.fspath(task.target),
            "parameters": task.params,
            "kernel_name": kernel_name,
            "log_output": log_output,
            "progress_bar": progress_bar,
            "error": os.fspath(error),
        }
        atomic_write_text(spec, json.dumps(spec_data))
        env = {**os.environ, **task.env}
        old = env.get("PYTHONPATH")
        env["PYTHONPATH"] = pythonpath + (os.pathsep + old if old else "")
        cmd = [sys.executable, "-m", "daun_lib.studies._schedule", os.fspath(spec)]
        proc = subprocess.Popen(
            cmd, env=env, start_new_session=True, stderr=subprocess.PIPE, text=True, errors="replace"
        )
        relay = threading.Thread(target=_relay_stderr, args=(proc.stderr,), daemon=True)
        relay.start()
        try:
            while proc.poll() is None:
                if cancel.wait(0.5) and proc.poll() is None:
                    _stop(proc)
        finally:
            if proc.poll() is None:
                _stop(proc)
            relay.join(5)
        if proc.returncode != 0:
            text = error.read_text(encoding="utf-8") if error.is_file() else ""
            if cancel.is_set() and not text:
                raise NotebookError(f"{task.path.name} stopped (another notebook failed)")
            raise NotebookError(text or f"{task.path.name} failed (exit status {proc.returncode})")

    return execute


QUIET_STDERR = ("Kernel is running over TCP without encryption",)
"""Kernel start-up notices that say nothing about the notebook; left out of the relayed stderr."""


def _relay_stderr(stream: Any) -> None:
    """Copy a child's stderr to ours line by line, without the :data:`QUIET_STDERR` notices."""
    for line in stream:
        if not any(q in line for q in QUIET_STDERR):
            sys.stderr.write(line)
            sys.stderr.flush()


def _stop(proc: subprocess.Popen) -> None:
    import signal

    for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


def child_main(spec_path: str) -> int:
    """Run one notebook from a spec file (see :func:`subprocess_executor`); the error message goes to its file."""
    import papermill as pm

    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    nb, target = Path(spec["notebook"]), spec["target"]
    try:
        pm.execute_notebook(
            str(nb),
            target,
            parameters=spec["parameters"],
            kernel_name=spec["kernel_name"],
            cwd=str(nb.resolve().parent),
            progress_bar=spec["progress_bar"],
            log_output=spec["log_output"],
            start_timeout=180,
        )
    except pm.PapermillExecutionError as exc:
        message = f"{nb.name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}; executed copy: {target}"
    except Exception as exc:  # kernel died, timeout, bad notebook ...
        message = f"{nb.name} failed: {type(exc).__name__}: {exc}; executed copy: {target}"
    else:
        return 0
    atomic_write_text(spec["error"], message)
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(child_main(sys.argv[1]))
