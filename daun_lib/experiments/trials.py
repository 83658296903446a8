"""The work of one chunk of an accuracy sweep: draw its trials, run every method on them.

For SNR point ``j`` and trials ``t0..t1-1`` the data of trial ``t`` come from
one generator call ``simulate(scenario, 1, snr_db[j], seed=trial_seed(seed, j, t))``;
the trials are stacked into ``y`` (n, M, N) and each method is called once,
``positions = method(scenario, y)`` (n, 2).  Per trial the chunk keeps the
error ``||p_hat - p||_2`` (:func:`daun_lib.metrics.position_errors`).

Several users per snapshot (``n_users = U >= 2``, issue 14): the generator is
called as ``simulate(scenario, 1, snr_db[j], seed=trial_seed(seed, j, t), n_users=U)``
and returns ``y`` (1, M, N) (the users superposed, one noise draw), ``positions``
(1, U, 2) and optionally ``los`` (1, U, M); each method is called as
``method(scenario, y, U)`` and must return (n, U, 2) in any user order; the
chunk keeps the (n, U) errors after the optimal assignment
(:func:`daun_lib.metrics.assigned_errors`).  With ``U = 1`` nothing changes: the
generator and the methods are called exactly as above, without ``n_users``.
The methods of a chunk run inside :func:`daun_lib._memo.sharing`, so map
estimators that differ only in their readout (``P-ADMM-peaks`` and its ``-S``,
``-AP``, ``-APM`` variants; ``DAUN``, ``DAUN-ML``, ...) compute the map of the
chunk's ``y`` once; each method's positions are bit-identical to those it
computes alone, so nothing in the cache keys changes.
These functions run in the worker processes.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from .._memo import sharing
from ..metrics import assigned_errors, position_errors
from .keys import trial_seed


def _stack_trials(
    simulate: Callable, scenario: Any, snr: float, seed: int, j: int, t0: int, t1: int, n_users: int = 1
) -> dict:
    """Draw the trials t0..t1-1 of SNR point j, one generator call per trial.

    Returns ``y`` (n, M, N), ``positions`` (n, 2) float64 and, when every
    trial has it, ``los`` (n, M) bool; with ``n_users = U >= 2`` the
    generator gets ``n_users=U`` and ``positions`` are (n, U, 2), ``los``
    (n, U, M).  The outputs are allocated once from
    the first trial and filled in place, so at most one chunk (plus one
    trial) is held.  ``ValueError`` naming ``simulate`` for a malformed batch.
    """
    n = t1 - t0
    n_bs = getattr(scenario, "n_bs", None)
    multi = n_users > 1
    pos_shape = (1, n_users, 2) if multi else (1, 2)
    y = pos = los = None
    for i, t in enumerate(range(t0, t1)):
        if multi:
            b = simulate(scenario, 1, snr, seed=trial_seed(seed, j, t), n_users=n_users)
        else:
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
        if pi.shape != pos_shape or not np.isfinite(pi).all():
            raise ValueError(f"{where}: expected finite positions of shape {pos_shape}, got {pi.tolist()}")
        if li is not None:
            li = np.asarray(li)
            lead = (1, n_users) if multi else (1,)
            if li.ndim != len(lead) + 1 or li.shape[:-1] != lead or (n_bs is not None and li.shape[-1] != n_bs):
                want = ", ".join(str(d) for d in lead + (n_bs if n_bs is not None else "M",))
                raise ValueError(f"{where}: expected los of shape ({want}), got {li.shape}")
        if i == 0:
            y = np.empty((n,) + yi.shape[1:], dtype=yi.dtype)
            pos = np.empty((n,) + pos_shape[1:], dtype=float)
            los = None if li is None else np.empty((n,) + li.shape[1:], dtype=bool)
        elif yi.shape[1:] != y.shape[1:] or yi.dtype != y.dtype:
            raise ValueError(
                f"{where}: y has shape {yi.shape} and dtype {yi.dtype}, but the first trial of the "
                f"chunk had {(1,) + y.shape[1:]} and {y.dtype}"
            )
        y[i] = yi[0]
        pos[i] = pi[0]
        if los is not None:
            if li is None or li.shape[1:] != los.shape[1:]:
                los = None  # kept only when every trial of the chunk has it
            else:
                los[i] = li[0].astype(bool)
        del b, yi, pi, li
    data = {"y": y, "positions": pos}
    if los is not None:
        data["los"] = los
    return data


def run_chunk(
    scenario: Any,
    simulate: Callable,
    methods: list[tuple[str, Callable]],
    seed: int,
    j: int,
    snr: float,
    t0: int,
    t1: int,
    n_users: int = 1,
) -> tuple:
    """Draw the trials t0..t1-1 of SNR point j and run every method on them.

    With ``n_users = U >= 2`` each method is called as ``method(scenario, y, U)``
    and must return (n, U, 2); its errors are the (n, U) assigned errors.

    Returns ``(j, t0, done, failure)``: the finished (name, arrays) pairs and,
    when a method raised or returned a wrong shape or non-finite positions,
    ``(name, exception, traceback text)``, so that the caller can still store
    what was finished before re-raising.
    """
    data = _stack_trials(simulate, scenario, snr, seed, j, t0, t1, n_users)
    truth = data["positions"]
    n = t1 - t0
    multi = n_users > 1
    shape = (n, n_users, 2) if multi else (n, 2)
    done: list[tuple[str, dict]] = []
    with sharing():  # the methods of the chunk compute each shared map once (daun_lib._memo)
        for name, fn in methods:
            try:
                est = np.asarray(fn(scenario, data["y"], n_users) if multi else fn(scenario, data["y"]), dtype=float)
                if est.shape != shape:
                    raise ValueError(f"method {name!r} returned shape {est.shape}, expected {shape}")
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
                "errors": assigned_errors(est, truth) if multi else position_errors(est, truth),
                "estimates": est,
                "positions": truth,
                "snr_db": np.float64(snr),
            }
            if "los" in data:
                arrays["los"] = data["los"]
            done.append((name, arrays))
    return j, t0, done, None


__all__: list[str] = []
