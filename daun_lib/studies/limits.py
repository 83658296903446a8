r"""How close each method gets to what is possible: the limits of a sweep and the "distance to the limit" table.

Three reference curves, computed on the **same users and channels** as an
accuracy sweep (:func:`daun_lib.experiments.accuracy_sweep` draws trial ``t``
of SNR point ``j`` with ``trial_seed(seed, j, t)``; :func:`reference_rows`
redraws exactly those trials):

``"crb"``
    The position CRB of the LoS model (:func:`daun_lib.bounds.crb_trace`),
    averaged over the sweep's users at their SNR: the MSE no unbiased
    estimator can beat on data that follow the LoS model (pure-LoS data,
    ``Scenario(multipath=False)``).  On the 38.901 channels the NLoS clusters
    add a bias the bound does not know, so there it is a lower reference, not
    an attainable target.
``"floor"``
    The continuous ML (:func:`daun_lib.continuous.ml_localize`) run on the
    **noiseless** channels ``h`` (``ChannelBatch.h``): the error that the
    multipath alone causes to that estimator (the DPD-cost ML), whatever the
    SNR.  It is not a bound: another estimator (e.g. the per-BS-noise ML,
    ``DPD-MLB``) can go slightly below it.
``"oracle"``
    The **LoS oracle**: the continuous ML on the links that truly have a LoS
    path (:func:`daun_lib.continuous.los_oracle`, it reads the true LoS
    states ``ChannelBatch.los``, which no real localiser knows): a reference
    for the sub-metre probability of blockage-robust localisers, clearly not
    a method.  It is not a bound on the MSE (a posterior mean, which shrinks
    towards the area's centre when it cannot decide, has a lower MSE).

The rows have the columns of :func:`daun_lib.studies.accuracy.accuracy_rows`, with
``method`` one of :data:`REFERENCE_LABELS`' values, so they can be written
next to the sweep's rows and drawn by the same plotting code; the CRB rows
have no sub-metre probability or median (empty cells).

:func:`distance_rows` divides every method's MSE by the CRB and by the
continuous ML's MSE (a registry entry of the same sweep, ``"DPD-ML"`` by
default) at each SNR, and :func:`distance_markdown` / :func:`closest_report`
print that table and the per-SNR verdict ("which pipeline is closest to the
limit, by how much") that the README quotes.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .. import bounds
from .._checks import check_scenario
from .._validation import integer_at_least as _int
from .._validation import positive
from ..experiments.keys import trial_seed
from ..metrics import fraction_within, mean_squared_error, median_error, mse_stderr, p_within_stderr, position_errors

__all__ = [
    "REFERENCES",
    "REFERENCE_LABELS",
    "closest_report",
    "distance_markdown",
    "distance_rows",
    "draw_trials",
    "reference_rows",
]

REFERENCE_LABELS: dict[str, str] = {
    "crb": "CRB (LoS model)",
    "floor": "ML, noiseless channel",
    "oracle": "LoS oracle (ML)",
}
"""Reference name -> the ``method`` label of its rows (and its curve)."""

REFERENCES: tuple[str, ...] = tuple(REFERENCE_LABELS)


def _check_snr_list(snr_db: Any) -> list[float]:
    if isinstance(snr_db, (str, bytes)) or not isinstance(snr_db, Sequence) or len(snr_db) == 0:
        raise ValueError(f"snr_db: expected a non-empty list of SNR values in dB, got {snr_db!r}")
    out = []
    for s in snr_db:
        if isinstance(s, bool) or not isinstance(s, numbers.Real) or not np.isfinite(s):
            raise ValueError(f"snr_db: expected finite numbers (dB), got {snr_db!r}")
        out.append(float(s))
    return out


def draw_trials(
    scenario: Any, snr: float, j: int, n_trials: int, seed: int, simulate: Callable | None = None
) -> dict[str, np.ndarray]:
    """The trials of SNR point ``j`` of an accuracy sweep, drawn as the sweep draws them.

    Trial ``t`` is ``simulate(scenario, 1, snr, seed=trial_seed(seed, j, t))``
    (:mod:`daun_lib.experiments`), so the users, channels and noise are those
    the sweep's methods saw.

    Parameters
    ----------
    scenario : Scenario
    snr : float
        The SNR of point ``j`` (dB).
    j : int >= 0
        Index of the SNR point in the sweep.
    n_trials : int >= 1
    seed : int >= 0
        The sweep's master seed.
    simulate : callable, optional
        The sweep's generator (default :func:`daun_lib.channel.simulate`).

    Returns
    -------
    dict with ``y`` (n, M, N) complex, ``h`` (n, M, N) complex (the noiseless
    channels), ``positions`` (n, 2), ``los`` (n, M) bool.
    """
    check_scenario(scenario)
    j = _int(j, "j", 0)
    n_trials = _int(n_trials, "n_trials", 1)
    seed = _int(seed, "seed", 0)
    if simulate is None:
        from ..channel import simulate
    if not callable(simulate):
        raise ValueError(f"simulate: expected a callable simulate(scenario, n, snr_db, seed), got {simulate!r}")
    parts: dict[str, list[np.ndarray]] = {"y": [], "h": [], "positions": [], "los": []}
    for t in range(n_trials):
        b = simulate(scenario, 1, snr, seed=trial_seed(seed, j, t))
        for key in parts:
            v = getattr(b, key, None)
            if v is None:
                raise ValueError(f"simulate: its batches have no {key!r}; the references need y, h, positions, los")
            parts[key].append(np.asarray(v))
    return {key: np.concatenate(v, axis=0) for key, v in parts.items()}


def _row(label: str, snr: float, n: int, errors: np.ndarray | None, radius_m: float, los_label: str, los) -> dict:
    row: dict[str, Any] = {"method": label, "snr_db": snr, "n_trials": n}
    if errors is None:
        return row
    row.update(
        mse=mean_squared_error(errors),
        p_submeter=fraction_within(errors, radius_m),
        median_error=median_error(errors),
        mse_stderr=mse_stderr(errors),
        p_submeter_stderr=p_within_stderr(errors, radius_m),
    )
    row["los_model"] = los_label
    row["mean_los_links"] = float(np.asarray(los).sum(axis=1).mean())
    return row


def reference_rows(
    scenario: Any,
    snr_db: Sequence[float],
    n_trials: int,
    seed: int,
    *,
    references: Sequence[str] = ("crb", "floor"),
    radius_m: float = 1.0,
    simulate: Callable | None = None,
    los_label: str | None = None,
    cost: str = "dpd",
    progress: bool = False,
) -> list[dict]:
    """The reference curves of :data:`REFERENCES` on the users of an accuracy sweep.

    Parameters
    ----------
    scenario, snr_db, n_trials, seed, simulate, radius_m
        As for :func:`daun_lib.experiments.accuracy_sweep` (the same values
        give the same users).
    references : list of "crb", "floor", "oracle"
        Which curves (module docstring).
    los_label : str, optional
        The ``los_model`` column (default ``str(scenario.los_model)``).
    cost : str
        Cost of the continuous ML of "floor" and "oracle"
        (:func:`daun_lib.continuous.ml_localize`).
    progress : bool
        A ``tqdm`` bar over the SNR points.

    Returns
    -------
    list of dict
        One row per (reference, SNR point), references in the given order:
        ``method`` (:data:`REFERENCE_LABELS`), ``snr_db``, ``n_trials``, and
        ``mse`` (m^2), ``mse_stderr``; for "floor" and "oracle" also
        ``p_submeter``, ``median_error``, ``p_submeter_stderr``, ``los_model``
        and ``mean_los_links``.  The CRB row's ``mse`` is the mean CRB trace
        over the users and ``mse_stderr`` its standard error.
    """
    from .. import continuous

    check_scenario(scenario)
    snrs = _check_snr_list(snr_db)
    n_trials = _int(n_trials, "n_trials", 1)
    seed = _int(seed, "seed", 0)
    if isinstance(references, str) or not isinstance(references, Sequence) or not references:
        raise ValueError(f"references: expected a non-empty list of names from {REFERENCES}, got {references!r}")
    bad = [r for r in references if r not in REFERENCES]
    if bad or len(set(references)) != len(references):
        raise ValueError(f"references: expected distinct names from {REFERENCES}, got {list(references)!r}")
    radius_m = positive(radius_m, "radius_m")
    if "crb" in references and scenario.geometry == "3d" and scenario.ut_height_range_m is not None:
        raise ValueError(
            "references: the CRB of daun_lib.bounds assumes users at the known height ut_height_m; this scenario "
            "draws heights in ut_height_range_m (leave 'crb' out, or use a scenario without the range)"
        )
    label = str(scenario.los_model) if los_label is None else los_label
    if not isinstance(label, str):
        raise ValueError(f"los_label: expected a str, got {type(los_label).__name__}")
    if not isinstance(progress, bool):
        raise ValueError(f"progress: expected True or False, got {progress!r}")

    per_ref: dict[str, list[dict]] = {r: [] for r in references}
    points = list(enumerate(snrs))
    if progress:
        from tqdm.auto import tqdm

        points = tqdm(points, desc="references", unit="SNR point")
    for j, snr in points:
        data = draw_trials(scenario, snr, j, n_trials, seed, simulate)
        truth = data["positions"]
        for ref in references:
            if ref == "crb":
                tr = bounds.crb_trace(scenario, truth, snr)
                row = _row(REFERENCE_LABELS[ref], snr, n_trials, None, radius_m, label, data["los"])
                row["mse"] = float(np.mean(tr))
                row["mse_stderr"] = float(np.std(tr, ddof=1) / np.sqrt(tr.size)) if tr.size > 1 else float("nan")
            else:
                if ref == "floor":
                    est = continuous.ml_localize(scenario, data["h"], cost=cost)
                else:
                    est = continuous.los_oracle(scenario, data["y"], data["los"], cost=cost)
                err = position_errors(est, truth)
                row = _row(REFERENCE_LABELS[ref], snr, n_trials, err, radius_m, label, data["los"])
            per_ref[ref].append(row)
    return [row for ref in references for row in per_ref[ref]]


def _index(table: Sequence[Mapping[str, Any]], name: str) -> dict[tuple[str, float], Mapping[str, Any]]:
    if not table or not all(isinstance(r, Mapping) and {"method", "snr_db", "mse"} <= set(r) for r in table):
        raise ValueError(f"{name}: expected a non-empty list of rows with 'method', 'snr_db' and 'mse'")
    out: dict[tuple[str, float], Mapping[str, Any]] = {}
    for r in table:
        key = (r["method"], float(r["snr_db"]))
        if key in out:
            raise ValueError(f"{name}: two rows for method {key[0]!r} at snr_db={key[1]:g}")
        out[key] = r
    return out


def distance_rows(
    table: Sequence[Mapping[str, Any]],
    limits: Sequence[Mapping[str, Any]],
    *,
    ml_method: str = "DPD-ML",
) -> list[dict]:
    """MSE / CRB and MSE / (continuous ML's MSE) for every method and SNR point of an accuracy table.

    Parameters
    ----------
    table : list of dict
        Rows of an accuracy sweep (``method``, ``snr_db``, ``mse``, ``p_submeter``).
    limits : list of dict
        Rows of :func:`reference_rows` on the same sweep (must hold the CRB; the
        noiseless-channel floor is used when present).
    ml_method : str
        The method of ``table`` that is the continuous ML.

    Returns
    -------
    list of dict
        Per (method, SNR): ``method``, ``snr_db``, ``mse``, ``p_submeter``,
        ``crb``, ``mse_over_crb``, ``ml_mse``, ``mse_over_ml`` and, with the
        floor, ``floor_mse``, ``mse_over_floor``.  Missing partners raise
        ``ValueError``.
    """
    tab = _index(table, "table")
    lim = _index(limits, "limits")
    if not isinstance(ml_method, str) or not any(m == ml_method for m, _ in tab):
        raise ValueError(f"ml_method: expected a method of table, got {ml_method!r}")
    out = []
    for (m, s), r in tab.items():
        crb = lim.get((REFERENCE_LABELS["crb"], s))
        ml = tab.get((ml_method, s))
        if crb is None:
            raise ValueError(f"limits: no CRB row at snr_db={s}")
        if ml is None:
            raise ValueError(f"table: no {ml_method!r} row at snr_db={s}")
        if not float(crb["mse"]) > 0:
            raise ValueError(f"limits: the CRB row at snr_db={s} has mse {crb['mse']!r}; expected > 0")
        if not float(ml["mse"]) > 0:
            raise ValueError(f"table: the {ml_method!r} row at snr_db={s} has mse {ml['mse']!r}; expected > 0")
        row = {
            "method": m,
            "snr_db": s,
            "mse": float(r["mse"]),
            "p_submeter": r.get("p_submeter", ""),
            "crb": float(crb["mse"]),
            "mse_over_crb": float(r["mse"]) / float(crb["mse"]),
            "ml_mse": float(ml["mse"]),
            "mse_over_ml": float(r["mse"]) / float(ml["mse"]),
        }
        floor = lim.get((REFERENCE_LABELS["floor"], s))
        if floor is not None and float(floor["mse"]) > 0:
            row["floor_mse"] = float(floor["mse"])
            row["mse_over_floor"] = float(r["mse"]) / float(floor["mse"])
        out.append(row)
    return out


def distance_markdown(rows: Sequence[Mapping[str, Any]], key: str = "mse_over_crb", fmt: str = "{:.3g}") -> str:
    """A markdown table of ``key`` (rows: methods, columns: SNR points) from :func:`distance_rows`.

    Cells without ``key`` (e.g. ``mse_over_floor`` where no floor was computed) stay empty.
    """
    if not rows or not all(isinstance(r, Mapping) and {"method", "snr_db"} <= set(r) for r in rows):
        raise ValueError("rows: expected rows of distance_rows (with 'method' and 'snr_db')")
    if not any(key in r and r[key] != "" for r in rows):
        raise ValueError(f"key: no row has the column {key!r}")
    snrs = sorted({float(r["snr_db"]) for r in rows})
    methods = list(dict.fromkeys(r["method"] for r in rows))
    val = {(r["method"], float(r["snr_db"])): r[key] for r in rows if key in r and r[key] != ""}
    head = "| method | " + " | ".join(f"{s:g} dB" for s in snrs) + " |"
    sep = "|---|" + "---:|" * len(snrs)
    body = [
        f"| {m} | " + " | ".join(fmt.format(val[(m, s)]) if (m, s) in val else "" for s in snrs) + " |" for m in methods
    ]
    return "\n".join([head, sep, *body]) + "\n"


def closest_report(rows: Sequence[Mapping[str, Any]], exclude: Sequence[str] = ()) -> str:
    """Per SNR point: the method with the lowest MSE, its MSE / CRB and MSE / ML, and the runner-up.

    Methods with the same MSE (to 1e-9 relative; e.g. the same readout after two map estimators
    that picked the same start cells) are named together as tied; the runner-up is the best of the
    others.  Methods whose MSE is NaN or infinite are not ranked (the verdict does not depend on the
    row order); they are named after the verdict as having no finite MSE.

    Parameters
    ----------
    rows : list of dict
        :func:`distance_rows`.
    exclude : list of str
        Methods left out of the verdict (e.g. references).
    """
    if not rows or not all(isinstance(r, Mapping) and {"method", "snr_db", "mse_over_crb"} <= set(r) for r in rows):
        raise ValueError("rows: expected the rows of distance_rows")
    if isinstance(exclude, str) or not all(isinstance(m, str) for m in exclude):
        raise ValueError(f"exclude: expected a list of method names, got {exclude!r}")
    lines = []
    for s in sorted({float(r["snr_db"]) for r in rows}):
        at = [r for r in rows if float(r["snr_db"]) == s and r["method"] not in exclude]
        # a NaN MSE has no rank (sorting it would make the verdict depend on the row order): named apart
        unranked = [r["method"] for r in at if not np.isfinite(float(r["mse"]))]
        here = sorted((r for r in at if np.isfinite(float(r["mse"]))), key=lambda r: r["mse"])
        if not here:
            if unranked:
                lines.append(f"{s:g} dB: no method with a finite MSE ({', '.join(unranked)})")
            continue
        best = here[0]
        ties = [r["method"] for r in here[1:] if abs(r["mse"] - best["mse"]) <= 1e-9 * abs(best["mse"])]
        rest = [r for r in here[1:] if r["method"] not in ties]
        name = best["method"] + (f" (tied: {', '.join(ties)})" if ties else "")
        text = (
            f"{s:g} dB: {name} (MSE {best['mse']:.3g} m^2 = {best['mse_over_crb']:.2f} x CRB, "
            f"{best['mse_over_ml']:.2f} x continuous ML"
        )
        if "mse_over_floor" in best:
            text += f", {best['mse_over_floor']:.2f} x noiseless floor"
        text += ")"
        if rest:
            text += f"; next {rest[0]['method']} ({rest[0]['mse'] / best['mse']:.2f} x its MSE)"
        if unranked:
            text += f"; no finite MSE: {', '.join(unranked)}"
        lines.append(text)
    return "\n".join(lines)
