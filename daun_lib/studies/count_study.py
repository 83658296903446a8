r"""Notebook 09: an unknown number of users -- how often the count is right, and the whole count-and-locate pipeline.

Per true ``U``, SNR point, power spread and rule, ``n_trials`` snapshots
(snapshot ``t`` of SNR point ``j``: ``channel.simulate(scenario, 1, snr_db[j],
seed=trial_seed(seed, j, t), n_users=U, power_spread_db=...)``, the seeding of
the sweeps) are counted and localised by
:func:`daun_lib.multiuser.locate_unknown` with ``max_users``:

* ``p_correct``, ``p_over``, ``p_under``: the estimated count against ``U``;
* ``p_all_submeter``: the pipeline's P(the count is right and every user is
  within ``radius_m`` after the optimal assignment), the number a user of the
  package gets without knowing ``U``;
* ``seconds_per_snapshot``: CPU seconds of the count (and localisation, for
  the rules in ``locate``) per snapshot (one thread, measured when the cell
  was computed).

Cells are cached one file per cell (``cache_dir/unknown_users/<key>.npz``,
written atomically; the key is a fingerprint of everything that determines
the cell, the code digest included); a file whose checksum, shapes or key do
not match is recomputed.  So an interrupted notebook resumes.
"""

from __future__ import annotations

import time
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._fingerprint import fingerprint
from .._validation import integer_at_least as _int
from ..experiments.arguments import check_seed, check_snr_list
from ..experiments.cache import arrays_checksum, save_chunk
from ..metrics import assigned_errors
from .multiuser_study import sweep_snapshots

__all__ = ["count_rows", "count_figure", "verdict"]


def _load(path: Path, key: str, n: int) -> dict | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        stored = str(arrays["checksum"])
        ok = (
            stored == arrays_checksum(arrays)
            and str(arrays["key"]) == key
            and arrays["counts"].shape == (n,)
            and arrays["ok"].shape == (n,)
            and arrays["ok"].dtype == bool
            and arrays["located"].shape == ()
            and np.isfinite(arrays["seconds"]).all()
        )
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        warnings.warn(f"{path}: unreadable ({exc}); recomputed", stacklevel=3)
        return None
    if not ok:
        warnings.warn(f"{path}: checksum, key or shapes do not match; recomputed", stacklevel=3)
        return None
    return arrays


def _cell(
    scenario: Any, snr: float, j: int, n_trials: int, seed: int, U: int, spread: float, rule: str, cfg: dict
) -> dict:
    from .. import multiuser
    from ..experiments import source_digest

    located = rule in cfg["locate"]
    key = fingerprint((scenario, snr, j, n_trials, seed, U, spread, rule, cfg["max_users"], cfg["radius_m"],
                       cfg["localizer"], located, source_digest()), name="cell")  # fmt: skip
    path = None if cfg["cache_dir"] is None else Path(cfg["cache_dir"]) / "unknown_users" / f"{key[:32]}.npz"
    if path is not None and not cfg["force"]:
        got = _load(path, key, n_trials)
        if got is not None:
            return got
    data_key = (snr, j, U, spread)
    if data_key not in cfg["data"]:  # the rules of one cell count the same snapshots: simulated once
        kw = {"power_spread_db": spread} if U > 1 else {}
        cfg["data"][data_key] = sweep_snapshots(scenario, snr, j, n_trials, seed, U, **kw)[1:]
    y, truth = cfg["data"][data_key]
    t0 = time.process_time()
    ok = np.zeros(n_trials, dtype=bool)
    if rule in cfg["locate"]:
        out = multiuser.locate_unknown(scenario, y, cfg["max_users"], rule=rule, localizer=cfg["localizer"])
        counts = out.n_users
        right = counts == U
        if right.any():
            err = assigned_errors(out.positions[right, :U], truth[right])
            ok[right] = (err < cfg["radius_m"]).all(axis=1)
    else:
        counts = multiuser.estimate_n_users(scenario, y, cfg["max_users"], rule=rule, localizer=cfg["localizer"])
    seconds = (time.process_time() - t0) / n_trials
    arrays = {"counts": counts.astype(np.int64), "ok": ok, "located": np.bool_(rule in cfg["locate"]),
              "seconds": np.float64(seconds), "key": np.str_(key)}  # fmt: skip
    if path is not None:
        save_chunk(path, arrays)
    return arrays


def _stderr(p: float, n: int) -> float:
    return float(np.sqrt(p * (1.0 - p) / n)) if n > 1 else float("nan")


def count_rows(
    scenario: Any,
    snr_db: Sequence[float],
    n_trials: int,
    seed: int,
    n_users_list: Sequence[int],
    *,
    rules: Sequence[str] = ("lrt", "min-bs"),
    power_spreads_db: Sequence[float] = (0.0,),
    max_users: int = 4,
    localizer: str | None = None,
    locate: Sequence[str] = ("lrt", "ic"),
    radius_m: float = 1.0,
    cache_dir: Any = None,
    force: bool = False,
    progress: bool = False,
) -> list[dict]:
    """Rows (rule, power spread, true U, SNR) of the unknown-U pipeline (module docstring).

    Returns
    -------
    list of dict
        ``rule``, ``power_spread_db``, ``n_users``, ``snr_db``, ``n_trials``, ``max_users``,
        ``p_correct`` (+ ``_stderr``), ``p_over``, ``p_under``, ``mean_estimate``,
        ``p_all_submeter`` (+ ``_stderr``), ``seconds_per_snapshot``.  ``p_all_submeter`` is NaN for the rules
        not in ``locate`` (counted only: their localisation would cost as much as the count itself).
    """
    from ..multiuser.count import RULES

    n_trials = _int(n_trials, "n_trials", 1)
    seed = check_seed(seed)
    max_users = _int(max_users, "max_users", 1)
    snr_db = check_snr_list(snr_db)
    if isinstance(n_users_list, (str, bytes)) or not n_users_list:
        raise ValueError(f"n_users_list: expected a non-empty list of user counts, got {n_users_list!r}")
    users = [_int(U, "n_users_list", 1) for U in n_users_list]
    if max(users) > max_users:
        raise ValueError(f"n_users_list: {max(users)} users exceed max_users = {max_users}")
    if isinstance(rules, str) or not rules or any(r not in RULES for r in rules):
        raise ValueError(f"rules: expected a non-empty list of names in {RULES}, got {rules!r}")
    spreads = [float(s) for s in power_spreads_db]
    if not spreads or any(not np.isfinite(s) or s < 0 for s in spreads):
        raise ValueError(
            f"power_spreads_db: expected a non-empty list of finite spreads >= 0 dB, got {power_spreads_db!r}"
        )
    if isinstance(locate, str) or any(r not in RULES for r in locate):
        raise ValueError(f"locate: expected a list of names in {RULES}, got {locate!r}")
    cfg = {"max_users": max_users, "radius_m": float(radius_m), "localizer": localizer, "cache_dir": cache_dir,
           "force": bool(force), "locate": tuple(locate), "data": {}}  # fmt: skip
    cells = [(r, s, U, j, snr) for r in rules for s in spreads for U in users for j, snr in enumerate(snr_db)]
    out = []
    for i, (rule, spread, U, j, snr) in enumerate(cells):
        t0 = time.perf_counter()
        # one user has no power spread: its data are those of spread 0, computed once
        a = _cell(scenario, snr, j, n_trials, seed, U, spread if U > 1 else 0.0, rule, cfg)
        counts, ok = a["counts"], a["ok"]
        pc = float(np.mean(counts == U))
        pa = float(np.mean(ok)) if bool(a["located"]) else float("nan")
        out.append(
            {
                "rule": rule,
                "power_spread_db": spread,
                "n_users": U,
                "snr_db": snr,
                "n_trials": n_trials,
                "max_users": max_users,
                "p_correct": pc,
                "p_correct_stderr": _stderr(pc, n_trials),
                "p_over": float(np.mean(counts > U)),
                "p_under": float(np.mean(counts < U)),
                "mean_estimate": float(np.mean(counts)),
                "p_all_submeter": pa,
                "p_all_submeter_stderr": _stderr(pa, n_trials),
                "seconds_per_snapshot": float(a["seconds"]),
            }
        )
        if progress:
            print(f"[{i + 1}/{len(cells)}] {rule}, spread {spread:g} dB, U = {U}, {snr:g} dB: P(correct U) {pc:.3f} "
                  f"({time.perf_counter() - t0:.1f} s)", flush=True)  # fmt: skip
    return out


def count_figure(rows: Sequence[Mapping[str, Any]]) -> Any:
    """P(correct U) against the SNR, one panel per true U; a line per rule, dashed with a power spread."""
    import matplotlib.pyplot as plt

    if not rows or not all(
        isinstance(r, Mapping) and {"rule", "n_users", "snr_db", "p_correct"} <= set(r) for r in rows
    ):
        raise ValueError("rows: expected the rows of count_rows")
    users = sorted({int(r["n_users"]) for r in rows})
    fig, axes = plt.subplots(1, len(users), figsize=(2.4 * len(users) + 0.4, 2.9), sharey=True, squeeze=False,
                             layout="constrained")  # fmt: skip
    rules = list(dict.fromkeys(r["rule"] for r in rows))
    spreads = sorted({float(r["power_spread_db"]) for r in rows})
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, U in zip(axes[0], users, strict=True):
        for c, rule in enumerate(rules):
            for s in spreads:
                sel = sorted((r for r in rows if r["rule"] == rule and int(r["n_users"]) == U
                              and float(r["power_spread_db"]) == s), key=lambda r: r["snr_db"])  # fmt: skip
                if not sel:
                    continue
                x = [r["snr_db"] for r in sel]
                yv = [r["p_correct"] for r in sel]
                err = [2 * r.get("p_correct_stderr", 0.0) for r in sel]
                label = rule + (f", {s:g} dB spread" if s else "")
                ax.errorbar(x, yv, yerr=err, color=colours[c % len(colours)], ls="--" if s else "-", marker="o",
                            ms=3, capsize=2, label=label)  # fmt: skip
        ax.set_title(f"true U = {U}")
        ax.set_xlabel("SNR (dB)")
        ax.set_ylim(-0.02, 1.02)
    axes[0][0].set_ylabel("P(estimated U = true U)")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    return fig


def verdict(rows: Sequence[Mapping[str, Any]], rule: str = "lrt", baseline: str = "min-bs") -> str:
    """Sentences from the rows: the mean P(correct U) of ``rule`` and ``baseline`` per power spread, the worst cell
    from 10 dB up, and the pipeline's P(all < 1 m)."""
    lines = []
    for s in sorted({float(r["power_spread_db"]) for r in rows}):
        parts = []
        for name in (rule, baseline):
            sel = [r for r in rows if r["rule"] == name and float(r["power_spread_db"]) == s]
            if not sel:
                continue
            hi = [r for r in sel if r["snr_db"] >= 10]
            worst = min(hi, key=lambda r: r["p_correct"]) if hi else None
            text = f"{name}: mean P(correct U) {np.mean([r['p_correct'] for r in sel]):.3f}"
            if worst is not None:
                text += f", worst from 10 dB {worst['p_correct']:.3f} (U = {worst['n_users']}, {worst['snr_db']:g} dB)"
            pipeline = [r["p_all_submeter"] for r in sel]
            if np.isfinite(pipeline).all():
                text += f", pipeline P(all < 1 m) {np.mean(pipeline):.3f} on average"
            parts.append(text)
        lines.append(f"power spread {s:g} dB -- " + "; ".join(parts))
    return "\n".join(lines)
