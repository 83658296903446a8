"""Wall-clock timing of localisers (Table I): one warm-up call, then the median of timed runs."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

from .._validation import positive


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
                fn(y[i : i + 1])
        return time.perf_counter() - start

    out: dict[str, float] = {}
    for name, fn in callables.items():
        fn(y if batch else y[:1])  # warm-up: imports, caches, torch kernels
        runs = [once(fn) for _ in range(repeats)]
        sec = statistics.median(runs)
        out[name] = sec / n if per_sample else sec
    return out


__all__ = ["time_methods"]
