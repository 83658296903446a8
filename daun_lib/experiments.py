r"""Monte Carlo engine of Sec. IV: cached, resumable accuracy sweeps and timing.

Accuracy sweep (Fig. 2)
-----------------------
For every SNR point ``j`` (value ``snr_db[j]``) and trial ``t = 0..n_trials-1``
the data ``(y, p)`` of one trial is drawn by one call::

    simulate(scenario, 1, snr_db[j], seed=trial_seed(seed, j, t))
    trial_seed(seed, j, t) = SeedSequence(seed, spawn_key=(j, t)) -> 64-bit int

so it depends on the master ``seed``, ``j`` and ``t`` only: every method sees
the same data (common random numbers), and the data do not depend on how the
trials are cut into chunks, on ``n_jobs`` or on the joblib backend.  The
trials of one chunk are stacked into ``y`` (n, M, N) and every method is
called once per chunk, ``positions = method(scenario, y)`` (n, 2).  Per trial
the engine keeps the error ``||p_hat - p||_2``; the rows are

* ``mse = mean(err^2)`` (m^2, Fig. 2(a)),
* ``p_submeter = mean(err < radius_m)`` (Fig. 2(b), ``radius_m = 1``),
* ``median_error`` (m) and ``n_trials``.

Rows equal bit for bit across chunk sizes, ``n_jobs`` and backends as long as
each method treats the samples of a batch independently (e.g. a batched torch
solver may differ in the last bits between batch sizes; positions read off a
grid are unaffected).

Cache layout
------------
One folder per method and parameter set, ``cache_dir/<method>-<hash>/``, where
``hash`` is the SHA-256 (first 16 hex digits) of the canonical JSON of the
scenario fields, the method name and key, the SNR list, ``n_trials``,
``seed``, the data generator's key, the ``daun_lib`` version, the cache format
and the user's ``extra`` dict (put the hash of pretrained weights or anything
else the keys below cannot see there; :func:`source_digest` fingerprints the
library's own code).

How a callable is keyed: by :func:`daun_lib._fingerprint.fingerprint`.

* library code (``daun_lib`` itself, such as the registry entries and the
  default generator :func:`daun_lib.channel.simulate`, the standard library
  and installed packages): module, qualified name and the fingerprint of
  closure values and defaults (so ``DAUN`` and ``DAUN-R``, two closures of
  one factory, differ); the code is covered by the ``daun_lib`` version in
  the key (``extra={"code": source_digest()}`` keys the source itself);
* user code (lambdas, :func:`functools.partial`, functions and classes of a
  notebook, a script or the user's own modules, callable objects): the hash
  of their code, constants, closure values, defaults, partial arguments,
  attributes and the globals they refer to, recursively.  Two lambdas with
  other SNR offsets, two partials with other arguments, another function
  under the same method name or an edited constant in the user's module
  therefore select other folders;
* a callable with a string attribute ``cache_key`` is keyed by that string
  alone (``my_method.cache_key = "mine-v2"``): the way out for a callable
  whose state cannot be fingerprinted (open files, clients, locks), which
  otherwise makes the sweep refuse to cache it with a ``ValueError`` naming
  the argument (``methods['mine']`` or ``simulate``); ``cache_dir=None``
  runs it without a cache.

Cache format 2 introduced these keys (format 1 keyed callables by module and
qualified name only, which returned stale rows for lambdas and partials), so
every folder name changed with it; the chunk arrays of a given sweep did not.

The folder holds ``params.json`` (what was hashed) and one
``snr<j>-t<t0>-<t1>.npz`` per SNR point and trial range with the arrays
``trials`` (n,) int64, ``errors`` (n,), ``estimates`` and ``positions``
(n, 2) float64, ``snr_db`` (a float64 scalar), ``los`` (n, M) bool when the
generator returns it, and ``checksum``: the SHA-256 of the names, dtypes,
shapes and bytes of all the other arrays.  Files are written to a temporary
name and renamed (``os.replace``), so an interrupted run leaves only complete
chunks; a rerun loads them and computes the rest.  Every chunk is checked on
load: readable (``allow_pickle=False``), all arrays present with the shapes
and dtypes above, the checksum, finite values, the trial range and SNR value
of its file name, and ``errors == ||estimates - positions||`` recomputed.  A
chunk that fails any check is treated as missing: a :class:`CacheWarning`
names the file and the reason, the chunk is recomputed and the file replaced.
A change of any hashed parameter selects a new folder, so stale results are
never reused; ``force=True`` deletes the chunk files of the folder and
recomputes.

Nothing is written when nothing needs computing, so a complete cache can be
read from a read-only folder; ``params.json`` is written only when missing or
different.  When chunks do need computing, ``cache_dir`` must be a writable
folder (or creatable below one): this is checked before the first chunk
runs, and :func:`check_writable` does the same for a results path, so a long
sweep does not end in a permission error.

A method that returns NaN or inf positions stops the sweep with a
``RuntimeError`` naming the method, the SNR point, the trial range and the
number of non-finite entries; nothing of that method's chunk is cached.

Parallel execution
------------------
Chunks are independent tasks run with joblib: ``backend="loky"`` (processes on
this machine, ``n_jobs`` of them), ``"sequential"`` (a plain loop, no joblib),
or ``"dask"``: joblib's Dask backend, which sends the tasks to the workers of
the running ``distributed.Client``, e.g.::

    from distributed import Client
    client = Client("tcp://scheduler:8786")   # or Client(n_workers=4) locally
    rows = accuracy_sweep(["DAUN", "DPD"], scenario, snr, 1000, 0,
                          cache_dir="cache", backend="dask")

The workers must be able to import :mod:`daun_lib` and the methods (registry
functions are pickled by reference, other callables with cloudpickle).  Chunk
files are written by this process as results arrive, so the workers need no
access to ``cache_dir``.

Threads: in the worker path (loky with ``n_jobs != 1``, and Dask) every chunk
runs with one thread: loky starts its workers with one OpenMP/BLAS thread
(joblib's ``inner_max_num_threads=1``), and around each chunk torch is set to
one thread (``torch.set_num_threads(1)``) and set back afterwards, so that
several processes do not oversubscribe the cores (four processes with
default threads on two cores ran 13 times slower).  Dask workers in other
processes keep the BLAS threads their own start-up gave them (start them with
``OMP_NUM_THREADS=1`` to limit those too).  ``backend="sequential"`` and
``n_jobs=1`` run in this process with the caller's thread settings.

Workers: the loky workers that a sweep started are shut down when it returns
or fails (an executor that existed before the call is left alone), and a
worker whose parent process died (killed, say) exits within about a second
instead of finishing its chunk and idling for minutes.

Timing (Table I)
----------------
:func:`time_methods` times callables ``f(y)`` with :func:`time.perf_counter`
after one warm-up call, on the whole batch or sample by sample.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import io
import json
import numbers
import os
import platform
import re
import statistics
import sys
import tempfile
import threading
import time
import traceback
import warnings
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ._fingerprint import fingerprint
from ._io import atomic_write_bytes, atomic_write_text
from ._validation import positive

BACKENDS = ("loky", "dask", "sequential")
"""Accepted values of ``backend``."""

CACHE_FORMAT = 2
"""Version of the chunk-file layout and of the callable keys; part of the hash.

2: callables keyed by fingerprint, chunks with a checksum (1: keyed by name)."""


class CacheWarning(UserWarning):
    """A cached chunk was unreadable or failed a check and is recomputed."""

ROW_FIELDS = ("method", "snr_db", "n_trials", "mse", "p_submeter", "median_error")
"""Columns of the rows returned by :func:`accuracy_sweep`."""


# ---------------------------------------------------------------------------
# seeds, hashing, atomic files
# ---------------------------------------------------------------------------
def trial_seed(seed: int, snr_index: int, trial: int) -> int:
    """Seed of the data of trial ``trial`` at SNR point ``snr_index``.

    ``SeedSequence(seed, spawn_key=(snr_index, trial))`` reduced to one 64-bit
    integer; pass it to ``channel.simulate(scenario, 1, snr_db, seed=...)`` to
    regenerate exactly the data the sweep used.
    """
    ss = np.random.SeedSequence(int(seed), spawn_key=(int(snr_index), int(trial)))
    return int(ss.generate_state(1, dtype=np.uint64)[0])


def _jsonable(obj: Any) -> Any:
    """Plain JSON types for numpy scalars/arrays, tuples, paths and dataclasses."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def _canonical(obj: Any) -> str:
    return json.dumps(_jsonable(obj), sort_keys=True, separators=(",", ":"), allow_nan=True)


def params_hash(params: Mapping[str, Any]) -> str:
    """First 16 hex digits of the SHA-256 of the canonical JSON of ``params``."""
    return hashlib.sha256(_canonical(params).encode()).hexdigest()[:16]


def source_digest() -> str:
    """SHA-256 (16 hex digits) of every ``daun_lib`` module and shipped weights file.

    The cache hash holds the ``daun_lib`` version, which an edit of the code
    does not change.  Pass ``extra={"code": source_digest()}`` to
    :func:`accuracy_sweep` to recompute whenever any module changes (also
    after edits that cannot change the results, such as docstrings).
    """
    h = hashlib.sha256()
    root = Path(__file__).resolve().parent
    files = list(root.rglob("*.py")) + list(root.glob("weights/*.pt"))
    for path in sorted(files):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _atomic_write_text(path: Path, text: str) -> None:
    atomic_write_text(path, text)


def _save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def check_writable(path_or_dir: str | os.PathLike, name: str = "path", *, directory: bool | None = None) -> Path:
    """Fail now, with a clear message, if files cannot be written at ``path_or_dir``.

    Call it in a notebook before a long sweep on the folder or file the
    results go to, so that a read-only results folder fails before the
    sweep and not after it.  An existing folder must accept a new file; an
    existing file must sit in a folder that accepts one (it is replaced
    atomically); a path that does not exist yet must lie below a writable
    folder, with no file in the way.  The test writes and deletes an empty
    temporary file and creates no folders.

    Parameters
    ----------
    path_or_dir : str or path
        A folder (e.g. ``cache_dir``) or a file to be written (e.g. a CSV).
    name : str
        The argument's name, used in the error message.
    directory : bool, optional
        True: the path must be a folder (an existing file there is an error);
        False: it must be a file name (an existing folder there is an error);
        None: either.

    Returns
    -------
    Path
        ``Path(path_or_dir)``.

    Raises
    ------
    ValueError
        Naming ``name`` and the reason.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name: expected a non-empty str, got {name!r}")
    if directory is not None and not isinstance(directory, bool):
        raise ValueError(f"directory: expected True, False or None, got {directory!r}")
    if isinstance(path_or_dir, bytes) or not isinstance(path_or_dir, (str, os.PathLike)) or not os.fspath(path_or_dir):
        raise ValueError(f"{name}: expected a non-empty path (str or os.PathLike), got {path_or_dir!r}")
    path = Path(path_or_dir)
    shown = os.fspath(path)
    if path.is_dir():
        if directory is False:
            raise ValueError(f"{name}: {shown!r} is a folder, expected a file name")
        folder = path
    elif path.exists():
        if directory is True:
            raise ValueError(f"{name}: {shown!r} is an existing file, expected a folder")
        folder = path.parent
    else:
        folder = path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"{name}: cannot create {shown!r}: {os.fspath(folder)!r} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".daun-write-test-", dir=folder)
    except OSError as exc:
        raise ValueError(
            f"{name}: cannot write below {shown!r}: folder {os.fspath(folder)!r} is not writable "
            f"({exc.strerror or exc}); choose a writable location"
        ) from exc
    os.close(fd)
    os.unlink(probe)
    return path


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "method"


def _library_version() -> str:
    from . import __version__

    return __version__


# ---------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------
def _resolve_methods(methods: Any) -> dict[str, Callable]:
    if isinstance(methods, str):
        methods = [methods]
    if isinstance(methods, Mapping):
        items = list(methods.items())
    else:
        try:
            names = list(methods)
        except TypeError as exc:
            raise ValueError(f"methods: expected a dict name -> callable or a list of names, got {methods!r}") from exc
        items = []
        registry = None
        for name in names:
            if not isinstance(name, str):
                raise ValueError(f"methods: expected method names (str), got {name!r}")
            if registry is None:
                from .methods import REGISTRY as registry  # noqa: N811 - lazy: methods imports the heavy solvers
            if name not in registry:
                raise ValueError(f"methods: unknown method {name!r}; known: {sorted(registry)}")
            items.append((name, registry[name]))
    if not items:
        raise ValueError("methods: expected at least one method")
    out: dict[str, Callable] = {}
    for name, fn in items:
        if not isinstance(name, str) or not name:
            raise ValueError(f"methods: expected non-empty string names, got {name!r}")
        if not callable(fn):
            raise ValueError(f"methods: {name!r} is not callable ({type(fn).__name__})")
        if name in out:
            raise ValueError(f"methods: duplicate method name {name!r}")
        out[name] = fn
    return out


def _check_snr(snr_db: Any) -> list[float]:
    if isinstance(snr_db, numbers.Real) and not isinstance(snr_db, bool):
        snr_db = [snr_db]
    try:
        arr = np.asarray(snr_db, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"snr_db: expected a sequence of numbers (dB), got {snr_db!r}") from exc
    if arr.ndim != 1 or arr.size < 1:
        raise ValueError(f"snr_db: expected a non-empty 1-D sequence of numbers, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"snr_db: contains NaN or inf: {arr.tolist()}")
    return [float(s) for s in arr]


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed: expected a non-negative int (the master seed of the sweep), got {seed!r}")
    return int(seed)


def _check_n_jobs(n_jobs: Any) -> int:
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0:
        raise ValueError(f"n_jobs: expected a non-zero int (-1 for all cores), got {n_jobs!r}")
    return int(n_jobs)


def _default_simulate() -> Callable:
    from .channel import simulate

    return simulate


def _callable_id(fn: Callable) -> str:
    """``module.qualname`` of a callable: a readable label, not a key (see :func:`_callable_key`)."""
    mod = getattr(fn, "__module__", None) or type(fn).__module__
    qual = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{mod}.{qual}"


def _callable_key(fn: Callable, name: str) -> str:
    """The cache key of a method or generator: :func:`daun_lib._fingerprint.fingerprint` (module docstring).

    Raises ``ValueError`` naming ``name`` when ``fn`` cannot be keyed.
    """
    return fingerprint(fn, name=name)


def _check_cache_dir(cache_dir: Any) -> Path | None:
    """``Path(cache_dir)``; ValueError when it is not a path or a file is in the way."""
    if cache_dir is None:
        return None
    if isinstance(cache_dir, bytes) or not isinstance(cache_dir, (str, os.PathLike)) or not os.fspath(cache_dir):
        raise ValueError(f"cache_dir: expected a folder path (str or os.PathLike) or None, got {cache_dir!r}")
    path = Path(cache_dir)
    if path.exists() and not path.is_dir():
        raise ValueError(f"cache_dir: {os.fspath(path)!r} is an existing file, expected a folder (or None: no cache)")
    if not path.exists():
        above = path.parent
        while not above.exists() and above != above.parent:
            above = above.parent
        if above.exists() and not above.is_dir():
            raise ValueError(
                f"cache_dir: cannot create {os.fspath(path)!r}: {os.fspath(above)!r} is a file, not a folder"
            )
    return path


# ---------------------------------------------------------------------------
# the work of one chunk (runs in a worker)
# ---------------------------------------------------------------------------
def _stack_trials(simulate: Callable, scenario: Any, snr: float, seed: int, j: int, t0: int, t1: int) -> dict:
    """Draw the trials t0..t1-1 of SNR point j, one generator call per trial.

    Returns ``y`` (n, M, N), ``positions`` (n, 2) float64 and, when every
    trial has it, ``los`` (n, M) bool.  The outputs are allocated once from
    the first trial and filled in place, so at most one chunk (plus one
    trial) is held.  ``ValueError`` naming ``simulate`` for a malformed batch.
    """
    n = t1 - t0
    n_bs = getattr(scenario, "n_bs", None)
    y = pos = los = None
    for i, t in enumerate(range(t0, t1)):
        b = simulate(scenario, 1, snr, seed=trial_seed(seed, j, t))
        where = f"simulate: trial {t} at snr_db={snr} (point {j})"
        if not hasattr(b, "y") or not hasattr(b, "positions"):
            raise ValueError(f"{where}: expected a batch with attributes y and positions, got {type(b).__name__}")
        yi = np.asarray(b.y)
        pi = np.asarray(b.positions, dtype=float)
        li = getattr(b, "los", None)
        if yi.ndim != 3 or yi.shape[0] != 1:
            raise ValueError(f"{where}: expected y of shape (1, M, N) for one trial, got {yi.shape}")
        if not np.issubdtype(yi.dtype, np.number):
            raise ValueError(f"{where}: expected numeric y, got dtype {yi.dtype}")
        if not np.isfinite(yi).all():
            raise ValueError(f"{where}: y has {int(yi.size - np.isfinite(yi).sum())} non-finite entries (NaN or inf)")
        if pi.shape != (1, 2) or not np.isfinite(pi).all():
            raise ValueError(f"{where}: expected finite positions of shape (1, 2), got {pi.tolist()}")
        if li is not None:
            li = np.asarray(li)
            if li.ndim != 2 or li.shape[0] != 1 or (n_bs is not None and li.shape[1] != n_bs):
                raise ValueError(f"{where}: expected los of shape (1, {n_bs if n_bs is not None else 'M'}), "
                                 f"got {li.shape}")
        if i == 0:
            y = np.empty((n,) + yi.shape[1:], dtype=yi.dtype)
            pos = np.empty((n, 2), dtype=float)
            los = None if li is None else np.empty((n, li.shape[1]), dtype=bool)
        elif yi.shape[1:] != y.shape[1:] or yi.dtype != y.dtype:
            raise ValueError(f"{where}: y has shape {yi.shape} and dtype {yi.dtype}, but the first trial of the "
                             f"chunk had {(1,) + y.shape[1:]} and {y.dtype}")
        y[i] = yi[0]
        pos[i] = pi[0]
        if los is not None:
            if li is None or li.shape[1] != los.shape[1]:
                los = None  # kept only when every trial of the chunk has it
            else:
                los[i] = li[0].astype(bool)
        del b, yi, pi, li
    data = {"y": y, "positions": pos}
    if los is not None:
        data["los"] = los
    return data


def _run_chunk(scenario: Any, simulate: Callable, methods: list[tuple[str, Callable]], seed: int, j: int,
               snr: float, t0: int, t1: int) -> tuple:
    """Draw the trials t0..t1-1 of SNR point j and run every method on them.

    Returns ``(j, t0, done, failure)``: the finished (name, arrays) pairs and,
    when a method raised or returned a wrong shape or non-finite positions,
    ``(name, exception, traceback text)``, so that the caller can still store
    what was finished before re-raising.
    """
    data = _stack_trials(simulate, scenario, snr, seed, j, t0, t1)
    truth = data["positions"]
    n = t1 - t0
    done: list[tuple[str, dict]] = []
    for name, fn in methods:
        try:
            est = np.asarray(fn(scenario, data["y"]), dtype=float)
            if est.shape != (n, 2):
                raise ValueError(f"method {name!r} returned shape {est.shape}, expected ({n}, 2)")
            bad = int(est.size - np.isfinite(est).sum())
            if bad:
                raise ValueError(
                    f"method {name!r} returned {bad} non-finite entries (NaN or inf) among its {est.size} position "
                    f"coordinates; nothing of this chunk was cached for it"
                )
        except Exception as exc:  # noqa: BLE001 - re-raised by the caller with the method's name
            return j, t0, done, (name, exc, traceback.format_exc())
        arrays = {
            "trials": np.arange(t0, t1, dtype=np.int64),
            "errors": np.linalg.norm(est - truth, axis=1),
            "estimates": est,
            "positions": truth,
            "snr_db": np.float64(snr),
        }
        if "los" in data:
            arrays["los"] = data["los"]
        done.append((name, arrays))
    return j, t0, done, None


# one thread per chunk in the worker path; a count so that concurrent chunks in
# threads of one process (Dask in-process) restore the setting only once
_THREADS_LOCK = threading.Lock()
_THREADS_USERS = 0
_THREADS_SAVED: int | None = None
_WATCHDOG_LOCK = threading.Lock()
_WATCHDOG_PARENT: int | None = None


def _torch_or_none() -> Any:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        return None
    return torch


def _single_thread_enter() -> None:
    global _THREADS_USERS, _THREADS_SAVED
    torch = _torch_or_none()
    with _THREADS_LOCK:
        if _THREADS_USERS == 0 and torch is not None:
            _THREADS_SAVED = torch.get_num_threads()
            torch.set_num_threads(1)
        _THREADS_USERS += 1


def _single_thread_exit() -> None:
    global _THREADS_USERS, _THREADS_SAVED
    torch = _torch_or_none()
    with _THREADS_LOCK:
        _THREADS_USERS -= 1
        if _THREADS_USERS == 0 and torch is not None and _THREADS_SAVED is not None:
            torch.set_num_threads(_THREADS_SAVED)
            _THREADS_SAVED = None


def _watch_parent(parent_pid: int, interval_s: float) -> None:
    while True:
        time.sleep(interval_s)
        if os.getppid() != parent_pid:
            os._exit(1)  # the sweep's process died: drop the chunk instead of idling for minutes


def _start_watchdog(parent_pid: int) -> None:
    """In a worker process whose parent is the sweep's process, exit when that parent dies (once per process)."""
    global _WATCHDOG_PARENT
    if os.getpid() == parent_pid or os.getppid() != parent_pid:
        return  # this process itself (Dask threads) or a worker started by someone else (a Dask nanny)
    with _WATCHDOG_LOCK:
        if _WATCHDOG_PARENT == parent_pid:
            return
        _WATCHDOG_PARENT = parent_pid
        threading.Thread(target=_watch_parent, args=(parent_pid, 1.0), name="daun-parent-watchdog",
                         daemon=True).start()


def _run_chunk_in_worker(parent_pid: int, *args: Any) -> tuple:
    """:func:`_run_chunk` in a worker: one torch thread for the chunk, exit with the parent."""
    _start_watchdog(parent_pid)
    _single_thread_enter()
    try:
        return _run_chunk(*args)
    finally:
        _single_thread_exit()


# ---------------------------------------------------------------------------
# the sweep
# ---------------------------------------------------------------------------
def _chunk_path(folder: Path, j: int, t0: int, t1: int) -> Path:
    return folder / f"snr{j:03d}-t{t0:07d}-{t1:07d}.npz"


_CHUNK_REQUIRED = ("trials", "errors", "estimates", "positions", "snr_db", "checksum")
_CHUNK_OPTIONAL = ("los",)


def _chunk_checksum(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of every array but ``checksum``."""
    h = hashlib.sha256()
    for key in sorted(k for k in arrays if k != "checksum"):
        a = np.ascontiguousarray(arrays[key])
        h.update(f"{key}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _save_chunk(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write a chunk with its checksum, atomically."""
    _save_npz(path, {**arrays, "checksum": np.array(_chunk_checksum(arrays))})


def _chunk_problem(arrays: Mapping[str, np.ndarray], t0: int, t1: int, snr: float, n_bs: int | None) -> str | None:
    """Why the arrays of a chunk cannot be used (None when they can)."""
    missing = [k for k in _CHUNK_REQUIRED if k not in arrays]
    if missing:
        return f"arrays {missing} missing"
    unknown = sorted(set(arrays) - set(_CHUNK_REQUIRED) - set(_CHUNK_OPTIONAL))
    if unknown:
        return f"unexpected arrays {unknown}"
    checksum = arrays["checksum"]
    if checksum.shape != () or checksum.dtype.kind != "U" or str(checksum) != _chunk_checksum(arrays):
        return "checksum mismatch"
    n = t1 - t0
    expected = {"trials": ((n,), np.int64), "errors": ((n,), np.float64), "estimates": ((n, 2), np.float64),
                "positions": ((n, 2), np.float64), "snr_db": ((), np.float64)}
    if "los" in arrays:
        m = n_bs if n_bs is not None else (arrays["los"].shape[-1] if arrays["los"].ndim == 2 else -1)
        expected["los"] = ((n, m), np.bool_)
    for key, (shape, dtype) in expected.items():
        a = arrays[key]
        if a.shape != shape or a.dtype != dtype:
            return f"{key} has shape {a.shape} and dtype {a.dtype}, expected {shape} and {np.dtype(dtype)}"
    for key in ("errors", "estimates", "positions", "snr_db"):
        bad = int(np.size(arrays[key]) - np.isfinite(arrays[key]).sum())
        if bad:
            return f"{key} has {bad} non-finite entries"
    if not np.array_equal(arrays["trials"], np.arange(t0, t1)):
        return f"trials are not {t0}..{t1 - 1}"
    if float(arrays["snr_db"]) != snr:
        return f"snr_db is {float(arrays['snr_db'])}, expected {snr}"
    recomputed = np.linalg.norm(arrays["estimates"] - arrays["positions"], axis=1)
    if not np.allclose(arrays["errors"], recomputed, rtol=1e-12, atol=1e-12):
        return "errors differ from ||estimates - positions||"
    return None


def _load_chunk(path: Path, t0: int, t1: int, snr: float, n_bs: int | None) -> dict | None:
    """The checked arrays of a cached chunk (without ``checksum``), or None when missing or damaged.

    A damaged chunk (unreadable, or failing a check of :func:`_chunk_problem`)
    gives a :class:`CacheWarning` naming the file and the reason.
    """
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as f:  # our handle: closed also on errors
            arrays = {k: f[k] for k in f.files}
    except Exception as exc:  # noqa: BLE001 - BadZipFile, zlib/CRC errors, ValueError, OSError ...: all "damaged"
        problem = f"unreadable: {type(exc).__name__}: {exc}"
    else:
        problem = _chunk_problem(arrays, t0, t1, snr, n_bs)
    if problem is not None:
        warnings.warn(f"cache chunk {os.fspath(path)!r} is damaged ({problem}); recomputing it",
                      CacheWarning, stacklevel=3)
        return None
    arrays.pop("checksum")
    return arrays


def sweep_folder(cache_dir: str | os.PathLike, method: str, params: Mapping[str, Any]) -> Path:
    """``cache_dir/<method>-<hash>`` for the hashed ``params`` of one method."""
    return Path(cache_dir) / f"{_slug(method)}-{params_hash(params)}"


def accuracy_sweep(
    methods: Mapping[str, Callable] | Sequence[str],
    scenario: Any,
    snr_db: Sequence[float],
    n_trials: int,
    seed: int,
    *,
    cache_dir: str | os.PathLike | None,
    chunk_size: int = 100,
    n_jobs: int = 1,
    backend: str = "loky",
    force: bool = False,
    progress: bool = True,
    extra: Mapping[str, Any] | None = None,
    simulate: Callable | None = None,
    radius_m: float = 1.0,
    return_trials: bool = False,
) -> list[dict] | tuple[list[dict], dict]:
    """Monte Carlo accuracy of localisation methods against the SNR (Fig. 2).

    Parameters
    ----------
    methods : dict name -> callable, or list of names
        ``method(scenario, y (n, M, N) complex) -> positions (n, 2)``; names
        are looked up in :data:`daun_lib.methods.REGISTRY`.  With a cache,
        each method is keyed by what it computes (module docstring); one
        that cannot be keyed raises ``ValueError`` unless it has a
        ``cache_key`` string.  Non-finite positions raise ``RuntimeError``.
    scenario : Scenario
    snr_db : sequence of float
        SNR points (dB); point ``j`` is ``snr_db[j]``.
    n_trials : int >= 1
        Trials per SNR point.
    seed : int >= 0
        Master seed; trial ``t`` of point ``j`` uses ``trial_seed(seed, j, t)``.
    cache_dir : path or None
        Root of the cache (module docstring); None computes without caching.
        Must be a folder (or creatable); when anything needs computing it
        must be writable, which is checked before the first chunk runs.
        A complete cache is only read.
    chunk_size : int >= 1
        Trials per task and per cache file.
    n_jobs : int
        Parallel jobs for ``backend="loky"`` (-1: all cores); 1 runs in this
        process with the caller's thread settings.  Ignored by ``"dask"``
        (the cluster decides) and ``"sequential"``.  Worker chunks run with
        one thread each; loky workers started here are shut down on return.
    backend : "loky", "dask" or "sequential"
        ``"dask"`` needs a running ``distributed.Client`` in this process.
    force : bool
        Recompute and overwrite the cached chunks (damaged chunks are
        recomputed without it, with a :class:`CacheWarning`).
    progress : bool
        Show a ``tqdm.auto`` bar over the chunks.
    extra : dict, optional
        JSON-serialisable values that identify the methods' settings (e.g. the
        hash of pretrained weights); part of the cache hash.
    simulate : callable, optional
        Data generator ``simulate(scenario, n, snr_db, seed) -> batch`` with
        ``batch.y`` (n, M, N) and ``batch.positions`` (n, 2) (optionally
        ``batch.los`` (n, M) bool); default :func:`daun_lib.channel.simulate`.
        Called with ``n = 1`` per trial; a batch of another shape, a non-finite
        ``y`` or non-finite positions raise ``ValueError`` naming ``simulate``.
        Keyed like the methods.
    radius_m : float > 0
        Radius of the "sub-metre" probability (1 m).
    return_trials : bool
        Also return the per-trial arrays.

    Returns
    -------
    rows : list of dict
        One row per (method, SNR point), methods in the given order, with keys
        :data:`ROW_FIELDS`.
    trials : dict, only with ``return_trials``
        ``trials[(method, j)]`` = dict of ``errors`` (n_trials,),
        ``estimates`` and ``positions`` (n_trials, 2), and ``los``
        (n_trials, M) when the generator provides it.
    """
    fns = _resolve_methods(methods)
    snrs = _check_snr(snr_db)
    n_trials = positive(n_trials, "n_trials", integer=True)
    seed = _check_seed(seed)
    chunk_size = positive(chunk_size, "chunk_size", integer=True)
    n_jobs = _check_n_jobs(n_jobs)
    radius_m = positive(radius_m, "radius_m")
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    if not is_dataclass(scenario) or isinstance(scenario, type):
        raise ValueError(f"scenario: expected a Scenario (dataclass), got {type(scenario).__name__}")
    if extra is not None and not isinstance(extra, Mapping):
        raise ValueError(f"extra: expected a dict of JSON-serialisable values, got {type(extra).__name__}")
    try:
        _canonical(extra or {})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"extra: expected JSON-serialisable values ({exc})") from exc
    if simulate is None:
        simulate = _default_simulate()
    elif not callable(simulate):
        raise ValueError(f"simulate: expected a callable, got {type(simulate).__name__}")
    cache_root = _check_cache_dir(cache_dir)
    if backend == "dask":
        _require_dask_client()

    chunks = [(t0, min(t0 + chunk_size, n_trials)) for t0 in range(0, n_trials, chunk_size)]
    results: dict[tuple[str, int], dict[int, dict]] = {(m, j): {} for m in fns for j in range(len(snrs))}

    folders: dict[str, Path] = {}
    params_of: dict[str, dict] = {}
    if cache_root is not None:
        base = {
            "scenario": {"type": _callable_id(type(scenario)), **_jsonable(asdict(scenario))},
            "snr_db": snrs,
            "n_trials": n_trials,
            "seed": seed,
            "simulate": _callable_id(simulate),
            "simulate_key": _callable_key(simulate, "simulate"),
            "daun_lib": _library_version(),
            "cache_format": CACHE_FORMAT,
            "extra": _jsonable(extra or {}),
        }
        n_bs = getattr(scenario, "n_bs", None)
        for name, fn in fns.items():
            params = {"method": name, "method_key": _callable_key(fn, f"methods[{name!r}]"), **base}
            folder = sweep_folder(cache_root, name, params)
            folders[name], params_of[name] = folder, params
            if not force and folder.is_dir():
                for j, snr in enumerate(snrs):
                    for t0, t1 in chunks:
                        arrays = _load_chunk(_chunk_path(folder, j, t0, t1), t0, t1, snr, n_bs)
                        if arrays is not None:
                            results[(name, j)][t0] = arrays

    tasks = []
    for j, snr in enumerate(snrs):
        for t0, t1 in chunks:
            todo = [(name, fn) for name, fn in fns.items() if t0 not in results[(name, j)]]
            if todo:
                tasks.append((todo, j, snr, t0, t1))

    # write only what needs computing, and find out that it cannot be written before the first chunk runs
    writers = sorted({name for todo, *_ in tasks for name, _ in todo} & set(folders), key=list(fns).index)
    if writers:
        check_writable(cache_root, "cache_dir", directory=True)
        for name in writers:
            folder = folders[name]
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ValueError(f"cache_dir: cannot create the folder {os.fspath(folder)!r} ({exc})") from exc
            check_writable(folder, "cache_dir", directory=True)
            if force:
                for old in folder.glob("snr*-t*.npz"):
                    old.unlink()
            text = json.dumps(_jsonable(params_of[name]), indent=1, sort_keys=True) + "\n"
            target = folder / "params.json"
            try:
                current = target.read_text(encoding="utf-8") if target.is_file() else None
            except (OSError, UnicodeDecodeError):
                current = None
            if current != text:
                _atomic_write_text(target, text)

    if tasks:
        _execute(tasks, scenario, simulate, seed, backend, n_jobs, progress, results, folders)

    rows: list[dict] = []
    trials: dict[tuple[str, int], dict] = {}
    for name in fns:
        for j, snr in enumerate(snrs):
            parts = [results[(name, j)][t0] for t0, _ in chunks]
            merged = {k: np.concatenate([p[k] for p in parts]) for k in ("errors", "estimates", "positions")}
            if all("los" in p for p in parts):
                merged["los"] = np.concatenate([p["los"] for p in parts])
            err = merged["errors"]
            rows.append({
                "method": name,
                "snr_db": snr,
                "n_trials": n_trials,
                "mse": float(np.mean(np.square(err))),
                "p_submeter": float(np.mean(err < radius_m)),
                "median_error": float(np.median(err)),
            })
            trials[(name, j)] = merged
    return (rows, trials) if return_trials else rows


def _require_dask_client() -> None:
    try:
        from distributed import get_client
    except ImportError as exc:
        raise ValueError(
            "backend: 'dask' needs the packages dask and distributed (pip install 'daun_lib[dask]')"
        ) from exc
    try:
        get_client()
    except ValueError as exc:
        raise ValueError(
            "backend: 'dask' needs a running distributed.Client in this process, e.g. "
            "`from distributed import Client; client = Client()` (local) or Client('tcp://scheduler:8786')"
        ) from exc


def _execute(tasks: list, scenario: Any, simulate: Callable, seed: int, backend: str, n_jobs: int, progress: bool,
             results: dict, folders: dict[str, Path]) -> None:
    """Run the chunk tasks, storing every finished (method, chunk) as soon as it arrives."""
    from tqdm.auto import tqdm

    snrs = {j: snr for _, j, snr, _, _ in tasks}
    ends = {(j, t0): t1 for _, j, _, t0, t1 in tasks}
    bar = tqdm(total=len(tasks), desc="Monte Carlo chunks", unit="chunk", disable=not progress, leave=False)

    def store(out: tuple, remote: bool) -> None:
        j, t0, done, failure = out
        t1 = ends[(j, t0)]
        for name, arrays in done:
            results[(name, j)][t0] = arrays
            if name in folders:
                _save_chunk(_chunk_path(folders[name], j, t0, t1), arrays)
        if failure is not None:
            name, exc, tb = failure
            where = f"method {name!r} failed at snr_db={snrs[j]} (point {j}), trials {t0}..{t1 - 1}: {exc!r}"
            raise RuntimeError(where + (f"\nworker traceback:\n{tb}" if remote else "")) from exc
        bar.update(1)

    try:
        if backend == "sequential" or (backend == "loky" and n_jobs == 1):
            for todo, j, snr, t0, t1 in tasks:
                store(_run_chunk(scenario, simulate, todo, seed, j, snr, t0, t1), remote=False)
            return
        import joblib

        pid = os.getpid()
        calls = (joblib.delayed(_run_chunk_in_worker)(pid, scenario, simulate, todo, seed, j, snr, t0, t1)
                 for todo, j, snr, t0, t1 in tasks)
        if backend == "dask":
            with joblib.parallel_config(backend="dask"):
                for out in joblib.Parallel(n_jobs=-1, batch_size=1, return_as="generator_unordered")(calls):
                    store(out, remote=True)
        else:
            before = _loky_executor()
            try:
                with joblib.parallel_config(backend="loky", inner_max_num_threads=1):
                    parallel = joblib.Parallel(n_jobs=n_jobs, batch_size=1, return_as="generator_unordered")
                    for out in parallel(calls):
                        store(out, remote=True)
            finally:
                after = _loky_executor()
                if after is not None and after is not before:
                    after.shutdown(wait=True, kill_workers=True)  # the workers this call started
    finally:
        bar.close()


def _loky_executor() -> Any:
    """joblib's reusable loky executor of this process, or None."""
    try:
        from joblib.externals.loky import reusable_executor
    except ImportError:  # pragma: no cover - joblib is a dependency
        return None
    return getattr(reusable_executor, "_executor", None)


# ---------------------------------------------------------------------------
# CSV with a JSON sidecar
# ---------------------------------------------------------------------------
def _cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (Linux), else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment_info() -> dict[str, Any]:
    """Versions, platform, CPU count and the UTC date, for result sidecars."""
    info: dict[str, Any] = {
        "daun_lib": _library_version(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:  # pragma: no cover
        info["torch"] = None
    return info


def _format_cell(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (numbers.Integral, np.integer)):
        return str(int(v))
    if isinstance(v, (numbers.Real, np.floating)):
        return repr(float(v))  # shortest round-trip form
    return "" if v is None else str(v)


def write_csv(rows: Iterable[Mapping[str, Any]], path: str | os.PathLike,
              params: Mapping[str, Any] | None = None) -> Path:
    """Write ``rows`` to ``path`` (CSV) and ``path.with_suffix('.json')`` (sidecar).

    The columns are the keys of the rows in order of first appearance; floats
    are written in their shortest round-trip form.  The sidecar holds
    ``params`` (what produced the rows) and :func:`environment_info`.  Both
    files are written atomically; missing folders are created.  A path that
    cannot be written (read-only folder, a file where a folder should be)
    raises ``ValueError`` naming ``path`` before anything is written; call
    :func:`check_writable` before a long sweep to find out earlier.

    Returns
    -------
    Path of the CSV file.
    """
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path: expected a .csv file name (str or os.PathLike), got {path!r}")
    path = Path(path)
    if path.suffix.lower() != ".csv":
        raise ValueError(f"path: expected a .csv file name, got {os.fspath(path)!r}")
    rows = list(rows)
    if not rows or not all(isinstance(r, Mapping) for r in rows):
        raise ValueError("rows: expected a non-empty list of dicts")
    if params is not None and not isinstance(params, Mapping):
        raise ValueError(f"params: expected a dict, got {type(params).__name__}")
    try:
        params_json = _jsonable(dict(params or {}))
    except TypeError as exc:
        raise ValueError(f"params: expected JSON-serialisable values ({exc})") from exc
    fields: list[str] = []
    for r in rows:
        fields.extend(k for k in r if k not in fields)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(fields)
    for r in rows:
        writer.writerow([_format_cell(r.get(k)) for k in fields])
    sidecar = {"file": path.name, "columns": fields, "n_rows": len(rows), "params": params_json,
               "environment": environment_info()}
    check_writable(path, "path", directory=False)
    check_writable(path.with_suffix(".json"), "path", directory=False)
    try:
        _atomic_write_text(path, buf.getvalue())
        _atomic_write_text(path.with_suffix(".json"),
                           json.dumps(sidecar, indent=1, sort_keys=True, allow_nan=True) + "\n")
    except OSError as exc:
        raise ValueError(f"path: cannot write {os.fspath(path)!r} or its sidecar ({exc})") from exc
    return path


def _parse_cell(s: str) -> Any:
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return s


def read_csv(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of a CSV written by :func:`write_csv`; ints and floats converted, the rest kept as str."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path: no such file {os.fspath(path)!r}")
    with open(path, newline="", encoding="utf-8") as fh:
        return [{k: _parse_cell(v) for k, v in r.items()} for r in csv.DictReader(fh)]


def read_params(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON sidecar of a CSV written by :func:`write_csv`."""
    side = Path(path).with_suffix(".json")
    if not side.is_file():
        raise ValueError(f"path: no sidecar {os.fspath(side)!r}")
    return json.loads(side.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------
# timing (Table I)
# ---------------------------------------------------------------------------
def time_methods(
    callables: Mapping[str, Callable[[Any], Any]],
    y: Any,
    *,
    repeats: int = 3,
    per_sample: bool = True,
    batch: bool = True,
) -> dict[str, float]:
    """Wall-clock time of each callable on the signals ``y`` (Table I).

    Each callable gets one untimed warm-up call, then ``repeats`` timed runs
    (:func:`time.perf_counter`).  A run is one call ``f(y)`` with
    ``batch=True``, or one call ``f(y[i:i+1])`` per sample with
    ``batch=False`` (the single-sample latency of a solver that takes one
    sample at a time, e.g. cvxpy).

    Parameters
    ----------
    callables : dict name -> callable
        ``f(y) -> anything``; the output is discarded.
    y : (n, ...) array or tensor
        The signals, samples along the first axis (n >= 1).
    repeats : int >= 1
    per_sample : bool
        Divide by n (seconds per sample) instead of seconds per run.
    batch : bool
        Whole batch per call (True) or one sample per call (False).

    Returns
    -------
    dict name -> float
        Median over the repeats of the seconds per run (or per sample).
    """
    if not isinstance(callables, Mapping) or not callables:
        raise ValueError("callables: expected a non-empty dict name -> callable")
    for name, fn in callables.items():
        if not callable(fn):
            raise ValueError(f"callables: {name!r} is not callable ({type(fn).__name__})")
    repeats = positive(repeats, "repeats", integer=True)
    shape = getattr(y, "shape", None)
    if shape is None or len(shape) < 1 or shape[0] < 1:
        raise ValueError(f"y: expected an array with at least one sample along axis 0, got shape {shape}")
    n = int(shape[0])

    def once(fn: Callable) -> float:
        start = time.perf_counter()
        if batch:
            fn(y)
        else:
            for i in range(n):
                fn(y[i:i + 1])
        return time.perf_counter() - start

    out: dict[str, float] = {}
    for name, fn in callables.items():
        fn(y if batch else y[:1])  # warm-up: imports, caches, torch kernels
        runs = [once(fn) for _ in range(repeats)]
        sec = statistics.median(runs)
        out[name] = sec / n if per_sample else sec
    return out


__all__ = [
    "BACKENDS",
    "CACHE_FORMAT",
    "CacheWarning",
    "ROW_FIELDS",
    "accuracy_sweep",
    "check_writable",
    "environment_info",
    "params_hash",
    "read_csv",
    "read_params",
    "source_digest",
    "sweep_folder",
    "time_methods",
    "trial_seed",
    "write_csv",
]
