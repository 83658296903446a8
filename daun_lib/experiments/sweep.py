r"""Accuracy sweep of Fig. 2 in three steps: plan, run the chunks, aggregate the rows.

For every SNR point ``j`` (value ``snr_db[j]``) and trial ``t = 0..n_trials-1``
the data of one trial are drawn with ``trial_seed(seed, j, t)`` (common random
numbers: every method sees the same data, independent of the chunking, of
``n_jobs`` and of the backend).  The steps:

1. :func:`plan_sweep` checks the arguments and fixes the chunks
   ``(t0, t1)`` and, with a cache, the folder and hashed parameters of every
   method: a :class:`SweepPlan`;
2. :func:`run_chunks` loads the cached chunks of the plan and computes the
   others (in parallel when asked), writing each one as it arrives:
   ``chunks[(method, j)][t0]`` = the arrays of one chunk;
3. :func:`aggregate` concatenates the chunks and builds one row per
   (method, SNR point) with :mod:`daun_lib.metrics`:

   * ``mse = mean(err^2)`` (m^2, Fig. 2(a)),
   * ``p_submeter = mean(err < radius_m)`` (Fig. 2(b), ``radius_m = 1``),
   * ``median_error`` (m) and ``n_trials``.

:func:`accuracy_sweep` does all three.  Rows equal bit for bit across chunk
sizes, ``n_jobs`` and backends as long as each method treats the samples of
a batch independently.

Several users per snapshot (``n_users = U >= 2``, issue 14): every trial draws
U users superposed with one noise draw (``simulate(..., n_users=U)``), every
method is called as ``method(scenario, y, U) -> (n, U, 2)`` (users in any
order), the per-trial errors are the (n, U) distances after the optimal
assignment (:func:`daun_lib.metrics.assigned_errors`), and the rows
(:data:`MULTI_USER_ROW_FIELDS`) hold

* ``mse``: MSE per user, mean of ``err^2`` over users and trials (m^2),
* ``p_submeter``: per-user ``P(err < radius_m)``,
* ``p_all_submeter``: ``P(every user's err < radius_m)``,
* ``median_error`` over users and trials, ``n_trials`` and ``n_users``.

``n_users`` enters the cache key only when it is above 1, so single-user
sweeps keep their folder names, chunks and rows.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._json import canonical, jsonable
from .._validation import positive
from ..metrics import (
    fraction_all_within,
    fraction_within,
    fraction_within_per_user,
    mean_squared_error,
    median_error,
    median_error_per_user,
    mse_per_user,
)
from .arguments import (
    check_n_jobs,
    check_n_users,
    check_seed,
    check_snr_list,
    default_simulate,
    resolve_methods,
)
from .cache import check_cache_dir, check_writable, chunk_path, load_chunk, prepare_folder
from .keys import CACHE_FORMAT, callable_id, callable_key, library_version, sweep_folder
from .workers import BACKENDS, execute, require_dask_client

ROW_FIELDS = ("method", "snr_db", "n_trials", "mse", "p_submeter", "median_error")
"""Columns of the rows returned by :func:`accuracy_sweep` (one user per snapshot, the default)."""

MULTI_USER_ROW_FIELDS = (
    "method",
    "snr_db",
    "n_trials",
    "n_users",
    "mse",
    "p_submeter",
    "p_all_submeter",
    "median_error",
)
"""Columns of the rows of a sweep with ``n_users >= 2`` (issue 14): ``mse``, ``p_submeter`` and ``median_error``
per user (over users and trials), ``p_all_submeter`` = P(every user < ``radius_m``)."""


# ---------------------------------------------------------------------------
# 1. plan
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepPlan:
    """What a sweep computes and where its chunks live; made by :func:`plan_sweep`.

    ``methods`` maps the row names to ``localize(scenario, y) -> (n, 2)`` in
    row order; ``chunks`` are the trial ranges ``(t0, t1)`` of every SNR
    point; ``folders`` and ``params`` (empty without a cache) give each
    method's cache folder and the parameters hashed into its name.
    ``n_users`` is the number of users per snapshot (1: the single-user
    sweep; ``U >= 2``: methods ``localize(scenario, y, U) -> (n, U, 2)``).
    """

    methods: Mapping[str, Callable]
    scenario: Any
    snr_db: tuple[float, ...]
    n_trials: int
    seed: int
    chunks: tuple[tuple[int, int], ...]
    simulate: Callable
    radius_m: float
    force: bool
    cache_dir: Path | None
    folders: Mapping[str, Path]
    params: Mapping[str, Mapping[str, Any]]
    n_users: int = 1


def plan_sweep(
    methods: Mapping[str, Callable] | Sequence[str],
    scenario: Any,
    snr_db: Sequence[float],
    n_trials: int,
    seed: int,
    *,
    cache_dir: str | os.PathLike | None,
    chunk_size: int = 100,
    force: bool = False,
    extra: Mapping[str, Any] | None = None,
    simulate: Callable | None = None,
    radius_m: float = 1.0,
    n_users: int = 1,
) -> SweepPlan:
    """Check the arguments of a sweep and fix its chunks and cache folders (no data drawn, nothing written).

    The arguments are those of :func:`accuracy_sweep`.  With a cache every
    method is keyed here (``ValueError`` naming ``methods[name]`` or
    ``simulate`` when one cannot be keyed).

    Returns
    -------
    SweepPlan
    """
    n_users = check_n_users(n_users)
    fns = resolve_methods(methods, n_users)
    snrs = check_snr_list(snr_db)
    n_trials = positive(n_trials, "n_trials", integer=True)
    seed = check_seed(seed)
    chunk_size = positive(chunk_size, "chunk_size", integer=True)
    radius_m = positive(radius_m, "radius_m")
    if not isinstance(force, bool):
        raise ValueError(f"force: expected True or False, got {force!r}")
    if not is_dataclass(scenario) or isinstance(scenario, type):
        raise ValueError(f"scenario: expected a Scenario (dataclass), got {type(scenario).__name__}")
    if extra is not None and not isinstance(extra, Mapping):
        raise ValueError(f"extra: expected a dict of JSON-serialisable values, got {type(extra).__name__}")
    try:
        canonical(extra or {})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"extra: expected JSON-serialisable values ({exc})") from exc
    if simulate is None:
        simulate = default_simulate()
    elif not callable(simulate):
        raise ValueError(f"simulate: expected a callable, got {type(simulate).__name__}")
    cache_root = check_cache_dir(cache_dir)

    chunks = tuple((t0, min(t0 + chunk_size, n_trials)) for t0 in range(0, n_trials, chunk_size))
    folders: dict[str, Path] = {}
    params_of: dict[str, dict] = {}
    if cache_root is not None:
        base = {
            "scenario": {"type": callable_id(type(scenario)), **jsonable(asdict(scenario))},
            "snr_db": snrs,
            "n_trials": n_trials,
            "seed": seed,
            "simulate": callable_id(simulate),
            "simulate_key": callable_key(simulate, "simulate"),
            "daun_lib": library_version(),
            "cache_format": CACHE_FORMAT,
            "extra": jsonable(extra or {}),
        }
        if n_users > 1:
            base["n_users"] = n_users  # absent for one user: single-user folder names unchanged
        for name, fn in fns.items():
            params = {"method": name, "method_key": callable_key(fn, f"methods[{name!r}]"), **base}
            folders[name], params_of[name] = sweep_folder(cache_root, name, params), params
    return SweepPlan(
        methods=fns,
        scenario=scenario,
        snr_db=tuple(snrs),
        n_trials=n_trials,
        seed=seed,
        chunks=chunks,
        simulate=simulate,
        radius_m=radius_m,
        force=force,
        cache_dir=cache_root,
        folders=folders,
        params=params_of,
        n_users=n_users,
    )


# ---------------------------------------------------------------------------
# 2. run the chunks
# ---------------------------------------------------------------------------
def _check_plan(plan: Any) -> SweepPlan:
    if not isinstance(plan, SweepPlan):
        raise ValueError(f"plan: expected a SweepPlan from plan_sweep, got {type(plan).__name__}")
    return plan


def run_chunks(
    plan: SweepPlan, *, backend: str = "loky", n_jobs: int = 1, progress: bool = True
) -> dict[tuple[str, int], dict[int, dict[str, np.ndarray]]]:
    """The arrays of every chunk of ``plan``: loaded from the cache when valid, computed otherwise.

    Chunks that need computing run with ``backend`` and ``n_jobs`` (see
    :func:`accuracy_sweep`); each finished chunk is written to its method's
    cache folder as it arrives, and nothing is written when nothing needs
    computing.

    Returns
    -------
    dict ``(method, j) -> {t0: arrays}``
        ``arrays`` of the trials ``t0..t1-1`` at SNR point ``j``: ``trials``
        (n,) int64, ``errors`` (n,), ``estimates`` and ``positions`` (n, 2),
        ``snr_db`` (scalar) and ``los`` (n, M) when the generator gives it;
        with ``plan.n_users = U >= 2``: ``errors`` (n, U), ``estimates`` and
        ``positions`` (n, U, 2), ``los`` (n, U, M).
    """
    plan = _check_plan(plan)
    n_jobs = check_n_jobs(n_jobs)
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    if backend == "dask":
        require_dask_client()
    fns, snrs = plan.methods, plan.snr_db
    results: dict[tuple[str, int], dict[int, dict]] = {(m, j): {} for m in fns for j in range(len(snrs))}
    if plan.cache_dir is not None and not plan.force:
        n_bs = getattr(plan.scenario, "n_bs", None)
        for name, folder in plan.folders.items():
            if folder.is_dir():
                for j, snr in enumerate(snrs):
                    for t0, t1 in plan.chunks:
                        arrays = load_chunk(chunk_path(folder, j, t0, t1), t0, t1, snr, n_bs, plan.n_users)
                        if arrays is not None:
                            results[(name, j)][t0] = arrays

    tasks = []
    for j, snr in enumerate(snrs):
        for t0, t1 in plan.chunks:
            todo = [(name, fn) for name, fn in fns.items() if t0 not in results[(name, j)]]
            if todo:
                tasks.append((todo, j, snr, t0, t1))

    # write only what needs computing, and find out that it cannot be written before the first chunk runs
    writers = sorted({name for todo, *_ in tasks for name, _ in todo} & set(plan.folders), key=list(fns).index)
    if writers:
        check_writable(plan.cache_dir, "cache_dir", directory=True)
        for name in writers:
            prepare_folder(plan.folders[name], plan.params[name], force=plan.force)
    if tasks:
        execute(
            tasks,
            plan.scenario,
            plan.simulate,
            plan.seed,
            backend,
            n_jobs,
            progress,
            results,
            dict(plan.folders),
            plan.n_users,
        )
    return results


# ---------------------------------------------------------------------------
# 3. aggregate
# ---------------------------------------------------------------------------
def aggregate(
    plan: SweepPlan, chunks: Mapping[tuple[str, int], Mapping[int, Mapping[str, np.ndarray]]]
) -> tuple[list[dict], dict[tuple[str, int], dict[str, np.ndarray]]]:
    """Rows and per-trial arrays of a sweep from the chunks that :func:`run_chunks` returned.

    Returns
    -------
    rows : list of dict
        One row per (method, SNR point), methods in plan order, keys :data:`ROW_FIELDS`
        (:func:`daun_lib.metrics.mean_squared_error`, :func:`~daun_lib.metrics.fraction_within`
        with ``plan.radius_m``, :func:`~daun_lib.metrics.median_error`); with ``plan.n_users >= 2``
        keys :data:`MULTI_USER_ROW_FIELDS` (:func:`~daun_lib.metrics.mse_per_user`,
        :func:`~daun_lib.metrics.fraction_within_per_user`, :func:`~daun_lib.metrics.fraction_all_within`,
        :func:`~daun_lib.metrics.median_error_per_user`).
    trials : dict ``(method, j) ->`` dict of ``errors`` (n_trials,), ``estimates`` and
        ``positions`` (n_trials, 2) and ``los`` (n_trials, M) when every chunk has it; with
        ``n_users = U >= 2`` the shapes (n_trials, U), (n_trials, U, 2) and (n_trials, U, M).
    """
    plan = _check_plan(plan)
    if not isinstance(chunks, Mapping):
        raise ValueError(f"chunks: expected the dict that run_chunks returns, got {type(chunks).__name__}")
    rows: list[dict] = []
    trials: dict[tuple[str, int], dict] = {}
    for name in plan.methods:
        for j, snr in enumerate(plan.snr_db):
            try:
                parts = [chunks[(name, j)][t0] for t0, _ in plan.chunks]
            except KeyError as exc:
                raise ValueError(f"chunks: no chunk {exc} of method {name!r} at SNR point {j}") from exc
            merged = {k: np.concatenate([p[k] for p in parts]) for k in ("errors", "estimates", "positions")}
            if all("los" in p for p in parts):
                merged["los"] = np.concatenate([p["los"] for p in parts])
            err = merged["errors"]
            if plan.n_users > 1:
                rows.append(
                    {
                        "method": name,
                        "snr_db": snr,
                        "n_trials": plan.n_trials,
                        "n_users": plan.n_users,
                        "mse": mse_per_user(err),
                        "p_submeter": fraction_within_per_user(err, plan.radius_m),
                        "p_all_submeter": fraction_all_within(err, plan.radius_m),
                        "median_error": median_error_per_user(err),
                    }
                )
            else:
                rows.append(
                    {
                        "method": name,
                        "snr_db": snr,
                        "n_trials": plan.n_trials,
                        "mse": mean_squared_error(err),
                        "p_submeter": fraction_within(err, plan.radius_m),
                        "median_error": median_error(err),
                    }
                )
            trials[(name, j)] = merged
    return rows, trials


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
    n_users: int = 1,
) -> list[dict] | tuple[list[dict], dict]:
    """Monte Carlo accuracy of localisation methods against the SNR (Fig. 2).

    Parameters
    ----------
    methods : dict name -> callable, or list of names
        ``method(scenario, y (n, M, N) complex) -> positions (n, 2)``; names
        are looked up in :data:`daun_lib.methods.REGISTRY` (with ``n_users >= 2``:
        ``method(scenario, y, U) -> (n, U, 2)``, names in :data:`daun_lib.multiuser.MULTI_REGISTRY`).  With a cache,
        each method is keyed by what it computes (:mod:`daun_lib.experiments`); one
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
        Root of the cache (:mod:`daun_lib.experiments`); None computes without caching.
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
    n_users : int >= 1
        Users per snapshot (issue 14).  1 (the default): everything above.
        ``U >= 2``: the generator is called as ``simulate(scenario, 1, snr,
        seed=..., n_users=U)`` and must return ``y`` (1, M, N), ``positions``
        (1, U, 2) and optionally ``los`` (1, U, M); each method as
        ``method(scenario, y, U)`` and must return (n, U, 2) finite positions
        in any user order (another shape: ``RuntimeError`` naming the method);
        errors after the optimal assignment.  Part of the cache key.

    Returns
    -------
    rows : list of dict
        One row per (method, SNR point), methods in the given order, with keys
        :data:`ROW_FIELDS` (``n_users >= 2``: :data:`MULTI_USER_ROW_FIELDS`).
    trials : dict, only with ``return_trials``
        ``trials[(method, j)]`` = dict of ``errors`` (n_trials,),
        ``estimates`` and ``positions`` (n_trials, 2), and ``los``
        (n_trials, M) when the generator provides it; with ``n_users = U >= 2``
        ``errors`` (n_trials, U), ``estimates`` and ``positions`` (n_trials, U, 2),
        ``los`` (n_trials, U, M).
    """
    n_jobs = check_n_jobs(n_jobs)
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    plan = plan_sweep(
        methods,
        scenario,
        snr_db,
        n_trials,
        seed,
        cache_dir=cache_dir,
        chunk_size=chunk_size,
        force=force,
        extra=extra,
        simulate=simulate,
        radius_m=radius_m,
        n_users=n_users,
    )
    rows, trials = aggregate(plan, run_chunks(plan, backend=backend, n_jobs=n_jobs, progress=progress))
    return (rows, trials) if return_trials else rows


__all__ = [
    "MULTI_USER_ROW_FIELDS",
    "ROW_FIELDS",
    "SweepPlan",
    "accuracy_sweep",
    "aggregate",
    "plan_sweep",
    "run_chunks",
]
