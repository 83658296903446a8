r"""Parallel execution of the chunks of an accuracy sweep: sequential, loky processes or Dask.

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
several processes do not oversubscribe the cores.  Dask workers in other
processes keep the BLAS threads their own start-up gave them (start them with
``OMP_NUM_THREADS=1`` to limit those too).  ``backend="sequential"`` and
``n_jobs=1`` run in this process with the caller's thread settings.

Workers: the loky workers that a sweep started are shut down when it returns
or fails (an executor that existed before the call is left alone), and a
worker whose parent process died (killed, say) exits within about a second
instead of finishing its chunk and idling for minutes.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .cache import chunk_path, save_chunk
from .trials import run_chunk

BACKENDS = ("loky", "dask", "sequential")
"""Accepted values of ``backend``."""

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
        threading.Thread(target=_watch_parent, args=(parent_pid, 1.0), name="daun-parent-watchdog", daemon=True).start()


def _run_chunk_in_worker(parent_pid: int, *args: Any) -> tuple:
    """:func:`run_chunk` in a worker: one torch thread for the chunk, exit with the parent."""
    _start_watchdog(parent_pid)
    _single_thread_enter()
    try:
        return run_chunk(*args)
    finally:
        _single_thread_exit()


# ---------------------------------------------------------------------------
# the sweep


def require_dask_client() -> None:
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


def execute(
    tasks: list,
    scenario: Any,
    simulate: Callable,
    seed: int,
    backend: str,
    n_jobs: int,
    progress: bool,
    results: dict,
    folders: dict[str, Path],
    n_users: int = 1,
) -> None:
    """Run the chunk tasks, storing every finished (method, chunk) as soon as it arrives.

    ``n_users`` (users per snapshot) is passed to every :func:`run_chunk`.
    """
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
                save_chunk(chunk_path(folders[name], j, t0, t1), arrays)
        if failure is not None:
            name, exc, tb = failure
            where = f"method {name!r} failed at snr_db={snrs[j]} (point {j}), trials {t0}..{t1 - 1}: {exc!r}"
            raise RuntimeError(where + (f"\nworker traceback:\n{tb}" if remote else "")) from exc
        bar.update(1)

    try:
        if backend == "sequential" or (backend == "loky" and n_jobs == 1):
            for todo, j, snr, t0, t1 in tasks:
                store(run_chunk(scenario, simulate, todo, seed, j, snr, t0, t1, n_users), remote=False)
            return
        import joblib

        pid = os.getpid()
        calls = (
            joblib.delayed(_run_chunk_in_worker)(pid, scenario, simulate, todo, seed, j, snr, t0, t1, n_users)
            for todo, j, snr, t0, t1 in tasks
        )
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


__all__ = ["BACKENDS"]
