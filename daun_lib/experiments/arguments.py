"""The argument checks of an accuracy sweep (:mod:`daun_lib.experiments.sweep`).

Each raises ``ValueError`` naming the argument.  :func:`resolve_methods` turns a list of names
into callables through the registries (``methods.REGISTRY`` for one user,
``multiuser.MULTI_REGISTRY`` for several), imported lazily because they pull in every solver.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np


def resolve_methods(methods: Any, n_users: int = 1) -> dict[str, Callable]:
    """Name -> callable; names are looked up in ``methods.REGISTRY`` (one user) or ``multiuser.MULTI_REGISTRY``."""
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
            if registry is None and n_users > 1:
                from ..multiuser import MULTI_REGISTRY as registry  # noqa: N811 - lazy, like REGISTRY below
            elif registry is None:
                from ..methods import REGISTRY as registry  # noqa: N811 - lazy: methods imports the heavy solvers
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


def check_snr_list(snr_db: Any) -> list[float]:
    """``snr_db`` (one number or a non-empty 1-D sequence of finite numbers, dB) as a list of floats."""
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


def check_seed(seed: Any) -> int:
    """The master seed: a non-negative int."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed: expected a non-negative int (the master seed of the sweep), got {seed!r}")
    return int(seed)


def check_n_users(n_users: Any) -> int:
    """Users per snapshot: a positive int."""
    if isinstance(n_users, bool) or not isinstance(n_users, numbers.Integral) or n_users < 1:
        raise ValueError(f"n_users: expected a positive int (users per snapshot), got {n_users!r}")
    return int(n_users)


def check_n_jobs(n_jobs: Any) -> int:
    """Worker count: a non-zero int (-1 for all cores)."""
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0:
        raise ValueError(f"n_jobs: expected a non-zero int (-1 for all cores), got {n_jobs!r}")
    return int(n_jobs)


def default_simulate() -> Callable:
    """The package's channel generator, :func:`daun_lib.channel.simulate`."""
    from ..channel import simulate

    return simulate


__all__ = ["check_n_jobs", "check_n_users", "check_seed", "check_snr_list", "default_simulate", "resolve_methods"]
