r"""Notebook 08: several users in one snapshot -- accuracy against SNR for U = 1, 2, 3, time, and the unknown-U rule.

The multi-user localisers are :data:`daun_lib.multiuser.MULTI_REGISTRY`
(``f(scenario, y, n_users) -> (n, U, 2)``); the Monte Carlo engine is
:func:`daun_lib.experiments.accuracy_sweep` with ``n_users`` (the same
seeding, caching and checks as Fig. 2).  This module adds what the notebook
writes:

* :func:`accuracy_rows`: the sweep's rows with standard errors
  (:func:`daun_lib.metrics.fraction_all_within_stderr`,
  :func:`daun_lib.metrics.mse_per_user_stderr`, both with the snapshot as the
  independent unit, since users of one snapshot share the noise).  For U = 1
  the same localisers run through the engine's single-user path
  (:class:`OneUser`), so the rows of every U come from the same code.
* :func:`count_rows`: the unknown-U rule (:func:`daun_lib.multiuser.estimate_n_users`)
  on the sweep's own snapshots: P(correct U), P(over), P(under).
* :func:`timing_rows`: seconds per sample of each localiser per U
  (:func:`daun_lib.experiments.time_methods`, one batch call), and of the user count.
* :func:`reference_rows`: the references of issue 23, labelled as such: the joint ML started at
  the true positions (a genie start: the likelihood's own ceiling, which no search can pass except
  by luck) on the sweep's snapshots, and on pure-LoS data (``multipath=False``) the per-snapshot
  ``error^2 / trace(CRB)`` of that estimate against the multi-user CRB
  (:func:`daun_lib.bounds.multiuser_crb_trace`, the snapshot's own gains).
* :func:`verdict`: the sentences of the README, from the rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import experiments
from .._validation import integer_at_least as _int
from ..experiments.keys import trial_seed
from ..metrics import fraction_all_within, fraction_all_within_stderr, mse_per_user_stderr, position_errors

__all__ = [
    "OneUser",
    "sweep_snapshots",
    "accuracy_rows",
    "count_rows",
    "timing_rows",
    "reference_rows",
    "reference_verdict",
    "verdict",
]


@dataclass(frozen=True)
class OneUser:
    """A multi-user localiser as a single-user one: ``localizer(scenario, y, 1)[:, 0]`` -> (n, 2).

    Attributes
    ----------
    localizer : callable ``(scenario, y, n_users) -> (n, U, 2)``
    """

    localizer: Any

    def __call__(self, scenario: Any, y: Any) -> np.ndarray:
        return np.asarray(self.localizer(scenario, y, 1))[:, 0, :]


def sweep_snapshots(
    scenario: Any, snr: float, j: int, n_trials: int, seed: int, n_users: int, **simulate_kwargs: Any
) -> tuple[list, np.ndarray, np.ndarray]:
    """The snapshots of SNR point ``j`` of a sweep: snapshot ``t`` is ``channel.simulate(scenario, 1, snr,
    seed=trial_seed(seed, j, t), n_users=n_users, **simulate_kwargs)`` (the seeding of
    :func:`daun_lib.experiments.accuracy_sweep`) -> (the batches, y (n, M, N), positions (n, U, 2))."""
    from .. import channel

    batches = [
        channel.simulate(scenario, 1, snr, seed=trial_seed(seed, j, t), n_users=n_users, **simulate_kwargs)
        for t in range(n_trials)
    ]
    y = np.concatenate([b.y for b in batches])
    return batches, y, np.concatenate([b.positions.reshape(1, n_users, 2) for b in batches])


def _methods(methods: Sequence[str]) -> dict[str, Any]:
    from ..multiuser import MULTI_REGISTRY

    if isinstance(methods, str) or not methods or not all(isinstance(m, str) for m in methods):
        raise ValueError(f"methods: expected a non-empty list of names of multiuser.MULTI_REGISTRY, got {methods!r}")
    unknown = [m for m in methods if m not in MULTI_REGISTRY]
    if unknown:
        raise ValueError(f"methods: unknown {unknown}; known: {sorted(MULTI_REGISTRY)}")
    return {m: MULTI_REGISTRY[m] for m in methods}


def accuracy_rows(
    methods: Sequence[str],
    scenario: Any,
    snr_db: Sequence[float],
    n_trials: int,
    seed: int,
    n_users: int,
    *,
    radius_m: float = 1.0,
    **sweep_kwargs: Any,
) -> list[dict]:
    """Rows (method, SNR) of a U-user sweep with standard errors.

    Parameters
    ----------
    methods : list of str
        Names in :data:`daun_lib.multiuser.MULTI_REGISTRY`.
    scenario, snr_db, n_trials, seed, radius_m, **sweep_kwargs
        As for :func:`daun_lib.experiments.accuracy_sweep`.
    n_users : int >= 1
        Users per snapshot.

    Returns
    -------
    list of dict
        ``method``, ``snr_db``, ``n_trials``, ``n_users``, ``p_all_submeter`` (P(every user within
        ``radius_m``)), ``p_submeter`` (per user), ``mse`` (per user, m^2), ``median_error`` and the
        standard errors ``p_all_submeter_stderr``, ``mse_stderr``.
    """
    fns = _methods(methods)
    n_users = _int(n_users, "n_users", 1)
    if isinstance(snr_db, (str, bytes)) or not isinstance(snr_db, Sequence) or not snr_db:
        raise ValueError(f"snr_db: expected a non-empty list of SNR values in dB, got {snr_db!r}")
    if "return_trials" in sweep_kwargs:
        raise ValueError("sweep_kwargs: return_trials is set by accuracy_rows")
    if n_users == 1:
        fns = {m: OneUser(f) for m, f in fns.items()}
    else:
        fns = dict(fns)
    rows, trials = experiments.accuracy_sweep(
        fns, scenario, snr_db, n_trials, seed, n_users=n_users, radius_m=radius_m, return_trials=True, **sweep_kwargs
    )
    keys = [(m, j) for m in fns for j in range(len(snr_db))]
    out = []
    for row, key in zip(rows, keys, strict=True):
        err = np.asarray(trials[key]["errors"], dtype=float)
        err = err[:, None] if err.ndim == 1 else err
        out.append(
            {
                "method": row["method"],
                "snr_db": row["snr_db"],
                "n_trials": row["n_trials"],
                "n_users": n_users,
                "p_all_submeter": fraction_all_within(err, radius_m),
                "p_all_submeter_stderr": fraction_all_within_stderr(err, radius_m),
                "p_submeter": row["p_submeter"],
                "mse": row["mse"],
                "mse_stderr": mse_per_user_stderr(err),
                "median_error": row["median_error"],
            }
        )
    return out


def count_rows(
    scenario: Any,
    snr_db: Sequence[float],
    n_trials: int,
    seed: int,
    n_users_list: Sequence[int],
    *,
    max_users: int = 4,
    rule: str = "min-bs",
    pfa: float = 0.01,
) -> list[dict]:
    """The unknown-U rule on the snapshots of the sweeps: P(estimated U = true U) per true U and SNR.

    Snapshot ``t`` of SNR point ``j`` with ``U`` users is
    ``channel.simulate(scenario, 1, snr_db[j], seed=trial_seed(seed, j, t), n_users=U)``, the data of
    :func:`accuracy_rows` with the same arguments.

    Returns
    -------
    list of dict
        ``n_users``, ``snr_db``, ``n_trials``, ``rule``, ``pfa``, ``p_correct``, ``p_over``,
        ``p_under``, ``mean_estimate``.
    """
    from .. import multiuser

    n_trials = _int(n_trials, "n_trials", 1)
    seed = _int(seed, "seed", 0)
    if isinstance(n_users_list, (str, bytes)) or not n_users_list:
        raise ValueError(f"n_users_list: expected a non-empty list of user counts, got {n_users_list!r}")
    max_users = _int(max_users, "max_users", 1)
    out = []
    for U in n_users_list:
        U = _int(U, "n_users_list", 1)
        if U > max_users:
            raise ValueError(f"n_users_list: {U} users exceed max_users = {max_users}")
        for j, snr in enumerate(snr_db):
            y = sweep_snapshots(scenario, snr, j, n_trials, seed, U)[1]
            est = multiuser.estimate_n_users(scenario, y, max_users, pfa=pfa, rule=rule)
            out.append(
                {
                    "n_users": U,
                    "snr_db": float(snr),
                    "n_trials": n_trials,
                    "rule": rule,
                    "pfa": pfa,
                    "p_correct": float(np.mean(est == U)),
                    "p_over": float(np.mean(est > U)),
                    "p_under": float(np.mean(est < U)),
                    "mean_estimate": float(np.mean(est)),
                }
            )
    return out


def timing_rows(
    scenario: Any,
    methods: Sequence[str],
    n_users_list: Sequence[int],
    *,
    n: int = 64,
    snr_db: float = 10.0,
    seed: int = 0,
    repeats: int = 3,
    count_rules: Sequence[str] = (),
    count_max_users: int = 4,
) -> list[dict]:
    """Seconds per sample of each localiser for each U: one batch call on ``n`` snapshots (median of ``repeats``).

    With ``count_rules``, also :func:`daun_lib.multiuser.estimate_n_users` with each rule and ``max_users =
    count_max_users`` on the same snapshots (method ``"count (<rule>)"``).

    Returns
    -------
    list of dict
        ``method``, ``n_users``, ``n_samples``, ``seconds_per_sample``.
    """
    from .. import channel, multiuser

    fns = _methods(methods)
    n = _int(n, "n", 1)
    max_users = _int(count_max_users, "count_max_users", 1)
    out = []
    for U in n_users_list:
        U = _int(U, "n_users_list", 1)
        y = channel.simulate(scenario, n, snr_db, seed=seed, n_users=U).y
        bound = {m: (lambda yy, f=f, U=U: f(scenario, yy, U)) for m, f in fns.items()}
        for rule in count_rules:  # the user count on the same snapshots, max_users = count_max_users
            bound[f"count ({rule})"] = lambda yy, r=rule: multiuser.estimate_n_users(scenario, yy, max_users, rule=r)
        t = experiments.time_methods(bound, y, repeats=repeats, batch=True)
        out.extend({"method": m, "n_users": U, "n_samples": n, "seconds_per_sample": s} for m, s in t.items())
    return out


def reference_rows(
    scenario: Any,
    snr_db: Sequence[float],
    n_trials: int,
    seed: int,
    n_users_list: Sequence[int],
    *,
    radius_m: float = 1.0,
) -> list[dict]:
    """The references of notebook 08 (module docstring): genie-start joint ML, and error^2 / trace(CRB) on pure LoS.

    Snapshot ``t`` of SNR point ``j`` is that of :func:`accuracy_rows` with the same arguments (for the
    pure-LoS rows the same seeds on ``dataclasses.replace(scenario, multipath=False)``).

    Returns
    -------
    list of dict
        ``reference`` ("genie-start ML" or "genie-start ML, pure LoS"), ``n_users``, ``snr_db``,
        ``n_trials``, ``p_all_submeter`` (+ ``_stderr``), ``mse`` (per user, m^2), and for the pure-LoS rows
        ``crb_ratio_mean`` / ``crb_ratio_median`` (per-snapshot ``sum_u |p_u - p_u_hat|^2 / trace(CRB)``, over
        the snapshots with a finite bound) and ``crb_trace_median`` (m^2); NaN where not defined.
    """
    import dataclasses

    from .. import bounds, joint_ml

    n_trials = _int(n_trials, "n_trials", 1)
    seed = _int(seed, "seed", 0)
    pure = dataclasses.replace(scenario, multipath=False)
    out = []
    for label, sc in (("genie-start ML", scenario), ("genie-start ML, pure LoS", pure)):
        for U in n_users_list:
            U = _int(U, "n_users_list", 1)
            for j, snr in enumerate(snr_db):
                batches, y, truth = sweep_snapshots(sc, snr, j, n_trials, seed, U)
                est = joint_ml.joint_newton(sc, y, truth)
                err = np.linalg.norm(est - truth, axis=-1)  # in the order of the start: no assignment needed
                row = {
                    "reference": label,
                    "n_users": U,
                    "snr_db": float(snr),
                    "n_trials": n_trials,
                    "p_all_submeter": fraction_all_within(err, radius_m),
                    "p_all_submeter_stderr": fraction_all_within_stderr(err, radius_m),
                    "mse": float(np.mean(err**2)),
                    "crb_ratio_mean": float("nan"),
                    "crb_ratio_median": float("nan"),
                    "crb_trace_median": float("nan"),
                }
                if sc is pure:
                    gains = np.concatenate([bounds.los_gains(sc, b) for b in batches])
                    crb = bounds.multiuser_crb_trace(sc, truth, gains)
                    regular = np.isfinite(crb)  # singular information (users on one bearing): no finite bound
                    ratio = np.sum(err[regular] ** 2, axis=1) / crb[regular]
                    row |= {
                        "crb_ratio_mean": float(np.mean(ratio)),
                        "crb_ratio_median": float(np.median(ratio)),
                        "crb_trace_median": float(np.median(crb)),
                    }
                out.append(row)
    return out


def verdict(rows: Sequence[Mapping[str, Any]], times: Sequence[Mapping[str, Any]], network: str = "DAUN-MU") -> str:
    """Per U and SNR: the best method by P(all users < 1 m), and the network against P-ADMM and SIC, from the rows.

    The network is compared with P-ADMM read out the same way (by the name's ending: ``DAUN-MU-S``
    or ``DAUN-peaks-S`` with ``P-ADMM-peaks-S``, ``DAUN-MU-AP`` with ``P-ADMM-peaks-AP``,
    ``DAUN-MU-APM`` with ``P-ADMM-peaks-APM``, a name without ``-S`` / ``-AP`` / ``-APM`` with
    ``P-ADMM-peaks``; accuracy and speed) and with the classical pipelines ``DPD-SIC``,
    ``DPD-SIC-ML``, ``DPD-AP`` and ``DPD-peaks-APM`` where they are in the rows.

    Parameters
    ----------
    rows : list of dict
        :func:`accuracy_rows` of all U.
    times : list of dict
        :func:`timing_rows`.
    network : str
        The learned localiser to compare ("DAUN-MU"); skipped when absent.
    """
    if not rows or not all(
        isinstance(r, Mapping) and {"method", "snr_db", "n_users", "p_all_submeter"} <= set(r) for r in rows
    ):
        raise ValueError("rows: expected the rows of accuracy_rows")
    # P-ADMM with the network's readout, read from the name's ending ("-APM", "-AP", "-S" or none)
    padmm = "P-ADMM-peaks" + next((x for x in ("-APM", "-AP", "-S") if network.endswith(x)), "")
    val = {(r["method"], int(r["n_users"]), float(r["snr_db"])): r for r in rows}
    sec = {(t["method"], int(t["n_users"])): float(t["seconds_per_sample"]) for t in times}
    lines = []
    for U in sorted({int(r["n_users"]) for r in rows}):
        for s in sorted({float(r["snr_db"]) for r in rows if int(r["n_users"]) == U}):
            here = sorted(
                (r for r in rows if int(r["n_users"]) == U and float(r["snr_db"]) == s),
                key=lambda r: -r["p_all_submeter"],
            )
            best = here[0]
            text = f"U = {U}, {s:g} dB: best {best['method']} (P(all < 1 m) {best['p_all_submeter']:.3f})"
            net = val.get((network, U, s))
            for ref in (padmm, "DPD-SIC", "DPD-SIC-ML", "DPD-AP", "DPD-peaks-APM"):
                other = val.get((ref, U, s))
                if net is not None and other is not None and ref != network:
                    text += f"; {network} {net['p_all_submeter'] - other['p_all_submeter']:+.3f} vs {ref}"
            if (network, U) in sec and (padmm, U) in sec and padmm != network:
                text += f"; {network} {sec[(padmm, U)] / sec[(network, U)]:.0f}x faster than {padmm}"
            lines.append(text)
    return "\n".join(lines)


def reference_verdict(rows: Sequence[Mapping[str, Any]], references: Sequence[Mapping[str, Any]]) -> str:
    """Per U and SNR: the best entry's P(all < 1 m) against the genie-start ceiling, and error^2 / trace(CRB) on pure LoS.

    Parameters
    ----------
    rows : list of dict
        :func:`accuracy_rows` of all U.
    references : list of dict
        :func:`reference_rows`.
    """
    if not rows or not all(
        isinstance(r, Mapping) and {"method", "n_users", "snr_db", "p_all_submeter"} <= set(r) for r in rows
    ):
        raise ValueError("rows: expected the rows of accuracy_rows")
    ref = {(r["reference"], int(r["n_users"]), float(r["snr_db"])): r for r in references}
    lines = []
    for U in sorted({int(r["n_users"]) for r in rows}):
        for s in sorted({float(r["snr_db"]) for r in rows if int(r["n_users"]) == U}):
            here = [r for r in rows if int(r["n_users"]) == U and float(r["snr_db"]) == s]
            best = max(here, key=lambda r: r["p_all_submeter"])
            text = f"U = {U}, {s:g} dB: best {best['method']} {best['p_all_submeter']:.3f}"
            genie = ref.get(("genie-start ML", U, s))
            if genie is not None:
                text += f", genie-start ceiling {genie['p_all_submeter']:.3f} (gap {genie['p_all_submeter'] - best['p_all_submeter']:+.3f})"
            pure = ref.get(("genie-start ML, pure LoS", U, s))
            if pure is not None:
                text += f"; pure LoS: error^2 / trace(CRB) {pure['crb_ratio_mean']:.2f}"
            lines.append(text)
    return "\n".join(lines)


def single_user_check(scenario: Any, n: int = 200, snr_db: float = 10.0, seed: int = 0) -> dict[str, float]:
    """Largest difference (m) between each multi-user entry at U = 1 and its single-user registry counterpart.

    ``DPD-peaks`` against ``REGISTRY["DPD"]``, ``P-ADMM-peaks`` against ``REGISTRY["P-ADMM"]``,
    ``DAUN-peaks`` against ``REGISTRY["DAUN"]``, ``DPD-peaks-S`` against ``REGISTRY["DPD-S"]``,
    ``DPD-SIC-ML`` and ``DPD-AP`` against ``REGISTRY["DPD-ML"]``: the
    multi-user code changes nothing for one user (all 0.0 when it holds).
    """
    from .. import channel
    from ..methods import REGISTRY
    from ..multiuser import MULTI_REGISTRY

    y = channel.simulate(scenario, _int(n, "n", 1), snr_db, seed=seed).y
    pairs = {
        "DPD-peaks": "DPD",
        "P-ADMM-peaks": "P-ADMM",
        "DAUN-peaks": "DAUN",
        "DPD-peaks-S": "DPD-S",
        "DPD-SIC-ML": "DPD-ML",
        "DPD-AP": "DPD-ML",
    }
    out = {}
    for mu_name, name in pairs.items():
        a = MULTI_REGISTRY[mu_name](scenario, y, 1)[:, 0]
        b = REGISTRY[name](scenario, y)
        out[f"{mu_name} vs {name}"] = float(np.max(position_errors(a, b)))
    return out
