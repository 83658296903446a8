"""Table I: rows of ``results/table1.csv`` and the markdown table ``figures/table1.md``.

The timings come from :func:`daun_lib.experiments.time_methods` and
:func:`time_reference`; this module puts them next to the paper's values
(:data:`PAPER_SECONDS`) as ratios to DAUN, and writes the markdown table
that names both machines.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

PAPER_SECONDS = {"DAUN": 0.017, "P-ADMM": 0.102, "reference": 4.27, "MM": 3.81, "VB": 1.36, "DPD": 2.15}
"""Table I of the paper: seconds per sample."""

PAPER_MACHINE = "Intel Core i7-8700K @ 4.2 GHz, 12 threads"
"""The machine of the paper's Table I."""

ORDER = (
    "DAUN",
    "DAUN-R",
    "P-ADMM",
    "reference",
    "MM",
    "VB",
    "DPD",
    "DAUN-S",
    "DAUN-ML",
    "DAUN-MLB",
    "DPD-S",
    "DPD-ML",
    "DPD-MLB",
    "DPD-MMSE",
    "DPD-Disk",
    "Stansfield",
    "Subset-MAP",
    "Mixture-MMSE",
)
"""Row order of Table I (the reference row's method name starts with "reference"); the paper's methods first,
then the pipelines of this package that are not in the paper."""


def method_notes(padmm_iterations: int) -> dict[str, str]:
    """The ``notes`` column of every registry method of Table I."""
    return {
        "DAUN": "pretrained network (load_pretrained()), plain argmax readout",
        "DAUN-R": "DAUN + Algorithm 1 refinement (not in the paper's table)",
        "P-ADMM": f"{padmm_iterations} iterations, admm.default_params",
        "MM": "baselines.mm, default MMParams",
        "VB": "baselines.vb, default VBParams",
        "DPD": "baselines.dpd, default DPDParams",
        "DAUN-S": "DAUN + sub-grid readout (not in the paper)",
        "DAUN-ML": "DAUN + continuous ML readout (not in the paper)",
        "DAUN-MLB": "DAUN + continuous ML, unknown noise per BS (not in the paper)",
        "DPD-S": "grid DPD + sub-grid readout (not in the paper)",
        "DPD-ML": "grid DPD + continuous ML readout (not in the paper)",
        "DPD-MLB": "grid DPD + continuous ML, unknown noise per BS (not in the paper)",
        "DPD-MMSE": "posterior mean on a 0.25 m grid (not in the paper)",
        "DPD-Disk": "disk MAP on a 0.25 m grid (not in the paper)",
        "Stansfield": "beamscan AoA + Stansfield intersection",
        "Subset-MAP": "blockage-robust: 11 LoS subsets, continuous ML each (not in the paper)",
        "Mixture-MMSE": "blockage-robust: mixture posterior mean (not in the paper)",
    }


def bind_scenario(scenario: Any, names: Sequence[str]) -> dict[str, Callable[[Any], Any]]:
    """``{name: lambda y: REGISTRY[name](scenario, y)}``: registry localisers as ``f(y)`` for timing."""
    from ..methods import REGISTRY

    unknown = [n for n in names if n not in REGISTRY]
    if isinstance(names, str) or unknown:
        raise ValueError(f"names: expected names in methods.REGISTRY, got {names!r}")

    def bound(fn: Callable) -> Callable[[Any], Any]:
        return lambda yy: fn(scenario, yy)

    return {n: bound(REGISTRY[n]) for n in names}


def time_reference(problem: Any, y: Any, w: Any, solver: str, n: int) -> tuple[list[float], list[str], float | None]:
    """Seconds of ``n`` reference solves of ``y[0..n-1]``, one at a time, without the one-off compilation.

    Parameters
    ----------
    problem : reference problem (``reference.get_problem(A, B)``)
    y : (>= n, M, N) complex
    w : (M,) weights
    solver : cvxpy solver name
    n : int >= 1

    Returns
    -------
    seconds : list of float, per solve (the first minus ``problem.compile_seconds``)
    statuses : list of str
    compile_seconds : float or None
    """
    from .._validation import positive

    n = positive(n, "n", integer=True)
    if getattr(y, "shape", (0,))[0] < n:
        raise ValueError(f"y: expected at least n = {n} samples, got shape {getattr(y, 'shape', None)}")
    seconds, statuses, compile_s = [], [], None
    for i in range(n):
        r = problem.solve(y[i], w, solver)
        s = r.seconds
        if i == 0:  # the first solve also compiles the cvxpy problem: a one-off cost, excluded
            compile_s = problem.compile_seconds
            s -= compile_s
        seconds.append(s)
        statuses.append(r.status)
    return seconds, statuses, compile_s


def read_benchmark(path: str | os.PathLike) -> dict[str, float]:
    """Per-method seconds per sample of ``results/benchmark.csv`` (empty when the file is missing)."""
    from ..experiments import read_csv

    path = Path(path)
    bench: dict[str, float] = {}
    if path.is_file():
        for r in read_csv(path):
            sec = r.get("seconds_per_sample")
            if sec in (None, "") and r.get("ms_per_sample") not in (None, ""):
                sec = float(r["ms_per_sample"]) / 1e3
            if "method" in r and isinstance(sec, (int, float)):
                bench[r["method"]] = float(sec)
    return bench


def table1_rows(
    seconds: Mapping[tuple[str, str], tuple[float, int]],
    notes: Mapping[str, str],
    reference_note: str,
    bench: Mapping[str, float],
) -> list[dict]:
    """Rows of ``table1.csv`` in :data:`ORDER`, single before batch.

    Parameters
    ----------
    seconds : dict (method, mode) -> (seconds per sample, samples); mode "batch" or "single";
        must hold ("DAUN", mode) for every mode used.
    notes : dict method -> note (:func:`method_notes`)
    reference_note : str
        Note of the reference row (solver statuses, compilation time).
    bench : dict method -> seconds (:func:`read_benchmark`); adds ``benchmark_seconds`` when not empty.
    """
    if not isinstance(seconds, Mapping) or not seconds:
        raise ValueError("seconds: expected a non-empty dict (method, mode) -> (seconds, samples)")
    rows = []
    for (m, mode), (s, n) in seconds.items():
        key = "reference" if m.startswith("reference") else m
        if ("DAUN", mode) not in seconds:
            raise ValueError(f"seconds: no DAUN time in mode {mode!r} to divide by")
        daun_s = seconds[("DAUN", mode)][0]
        paper = PAPER_SECONDS.get(key)
        note = notes.get(key, reference_note)
        if mode == "batch":
            note += f"; one call on {n} samples"
        row = {
            "method": m,
            "mode": mode,
            "n_samples": n,
            "seconds_per_sample": s,
            "paper_seconds": paper,
            "ratio_to_daun": s / daun_s,
            "paper_ratio_to_daun": None if paper is None else paper / PAPER_SECONDS["DAUN"],
            "notes": note,
        }
        if bench:  # the benchmark script times one batch: shown on the batch rows
            row["benchmark_seconds"] = bench.get(m) if mode == "batch" else None
        rows.append(row)
    rows.sort(
        key=lambda r: (
            ORDER.index("reference" if r["method"].startswith("reference") else r["method"]),
            r["mode"] != "single",
        )
    )
    return rows


def _fmt(v: Any, spec: str) -> str:
    return "" if v in (None, "") else format(v, spec)


def table1_markdown(
    table: Sequence[Mapping[str, Any]],
    *,
    machine: str,
    version: str,
    date: str,
    solver: str,
    padmm_iterations: int,
    compile_seconds: float,
    bench: bool,
) -> str:
    """``figures/table1.md``: Table I with our times, ratios to DAUN and the paper's, naming both machines.

    Parameters
    ----------
    table : rows of ``table1.csv`` as read back by :func:`daun_lib.experiments.read_csv`
    machine, version, date, solver : str
        Our machine, the daun_lib version, the run's date and the reference's cvxpy solver.
    padmm_iterations : int
    compile_seconds : float
        The reference's one-off compilation time.
    bench : bool
        Add the ``benchmark.csv`` column.
    """
    if not table:
        raise ValueError("table: expected the rows of table1.csv")
    lines = [
        "# Table I: average computation time per sample",
        "",
        f"Ours: {machine}; daun_lib {version}, {date}.  Paper: {PAPER_MACHINE}.",
        "",
        "| method | mode | samples | ours (s) | ours / DAUN | paper (s) | paper / DAUN |"
        + (" benchmark.csv (s) |" if bench else ""),
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |" + (" ---: |" if bench else ""),
    ]
    for r in table:
        name = r["method"] if not r["method"].startswith("reference") else r["method"] + " [paper: MOSEK]"
        lines.append(
            f"| {name} | {r['mode']} | {r['n_samples']} | {_fmt(r['seconds_per_sample'], '.3g')} | "
            f"{_fmt(r['ratio_to_daun'], '.3g')} | {_fmt(r['paper_seconds'], 'g')} | "
            f"{_fmt(r['paper_ratio_to_daun'], '.3g')} |"
            + (f" {_fmt(r.get('benchmark_seconds'), '.3g')} |" if bench else "")
        )
    lines += [
        "",
        "batch: one call on the samples, time / samples; single: one call per sample.  ours / DAUN: ratio to DAUN in "
        "the same mode (the reference, solved one sample at a time, to DAUN single).",
        f"P-ADMM: {padmm_iterations} iterations of admm.default_params.  Reference: cvxpy + {solver}, one-off "
        f"compilation ({compile_seconds:.2f} s) excluded; the paper used MOSEK.",
    ]
    return "\n".join(lines) + "\n"


def machine_description(env: Mapping[str, Any], threads: int) -> str:
    """``"<cpu>, <n> logical CPUs, torch <version> with <threads> threads"`` from :func:`~daun_lib.experiments.environment_info`."""
    if not isinstance(env, Mapping):
        raise ValueError(f"env: expected environment_info(), got {type(env).__name__}")
    cpu = env.get("cpu_model") or env.get("processor") or env.get("machine") or "unknown CPU"
    return f"{cpu}, {env.get('cpu_count')} logical CPUs, torch {env.get('torch')} with {threads} threads"


__all__ = [
    "ORDER",
    "PAPER_MACHINE",
    "PAPER_SECONDS",
    "bind_scenario",
    "machine_description",
    "method_notes",
    "read_benchmark",
    "table1_markdown",
    "table1_rows",
    "time_reference",
]
