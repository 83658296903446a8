"""The paper's claims about Fig. 2 and Fig. 3 checked against our result rows, as printable text.

Every number in the text comes from the rows passed in (read back from
``results/*.csv``); nothing is typed in by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .accuracy import by_method

PAPER_FIG2_METHODS = ("DAUN", "DAUN-R", "DPD", "Stansfield", "SRL", "VB")
"""The methods of the paper's Fig. 2."""


def _check_table(table: Any, name: str, keys: Sequence[str]) -> None:
    if not table or not all(isinstance(r, Mapping) and set(keys) <= set(r) for r in table):
        raise ValueError(f"{name}: expected a non-empty list of rows with {list(keys)}")


def fig2_report(table: Sequence[Mapping[str, Any]]) -> str:
    """Fig. 2 against the paper's two claims (Sec. IV), from the rows of ``fig2.csv``.

    The text holds the MSE and P(error < 1 m) tables; claim 1 (DAUN-R has the
    lowest MSE and the highest sub-metre probability of the paper's methods)
    at every SNR point; claim 2 (P(error < 1 m) of DAUN and DAUN-R approaches
    1) at the highest SNR, with the trend over the SNR points; and the range
    of every extra curve.
    """
    _check_table(table, "table", ("method", "snr_db", "n_trials", "mse", "p_submeter", "p_submeter_stderr"))
    out: list[str] = []
    tab = by_method(table)
    names = list(tab)
    snrs = sorted({r["snr_db"] for r in table})
    val = {(r["method"], r["snr_db"]): r for r in table}
    width = max(len(m) for m in names) + 2

    def metric(key: str, fmt: str) -> None:
        out.append(f"{key} (n_trials = {table[0]['n_trials']} per point)")
        out.append(f"{'method':<{width}}" + "".join(f"{s:>10g}" for s in snrs))
        for m in names:
            out.append(f"{m:<{width}}" + "".join(fmt.format(val[(m, s)][key]) for s in snrs))
        out.append("")

    metric("mse", "{:>10.3g}")
    metric("p_submeter", "{:>10.3f}")

    paper_methods = [m for m in PAPER_FIG2_METHODS if m in tab]
    if "DAUN-R" in tab and len(paper_methods) > 1:
        others = [m for m in paper_methods if m != "DAUN-R"]
        wins_mse = wins_p = 0
        out.append(
            f"claim 1: DAUN-R has a lower MSE and a higher P(error < 1 m) than the other methods of the paper "
            f"({', '.join(others)})"
        )
        for s in snrs:
            r = val[("DAUN-R", s)]
            best_mse = min(others, key=lambda m: val[(m, s)]["mse"])
            best_p = max(others, key=lambda m: val[(m, s)]["p_submeter"])
            ok_mse = r["mse"] <= val[(best_mse, s)]["mse"]
            ok_p = r["p_submeter"] >= val[(best_p, s)]["p_submeter"]
            wins_mse += ok_mse
            wins_p += ok_p
            out.append(
                f"  {s:>5g} dB: DAUN-R MSE {r['mse']:.3g} vs best other {best_mse} "
                f"{val[(best_mse, s)]['mse']:.3g} ({'holds' if ok_mse else 'fails'}); P {r['p_submeter']:.3f} "
                f"vs best other {best_p} {val[(best_p, s)]['p_submeter']:.3f} ({'holds' if ok_p else 'fails'})"
            )
        out.append(
            f"  -> lowest MSE at {wins_mse} of {len(snrs)} SNR points, highest P(<1 m) at {wins_p} of {len(snrs)}"
        )
    out.append("claim 2: P(error < 1 m) of DAUN and DAUN-R approaches 1 as the SNR grows")
    for m in ("DAUN", "DAUN-R", "DAUN (loss 18)", "DAUN-R (loss 18)"):
        if m in tab:
            p = [val[(m, s)]["p_submeter"] for s in snrs]
            se = val[(m, snrs[-1])]["p_submeter_stderr"]
            trend = "non-decreasing" if all(b >= a - 1e-12 for a, b in zip(p, p[1:], strict=False)) else "not monotone"
            out.append(f"  {m:<18} at {snrs[-1]:g} dB: {p[-1]:.3f} +- {se:.3f} (1 s.e.); over the SNR points: {trend}")
    for extra_m in [m for m in names if m not in paper_methods]:
        out.append(
            f"extra curve {extra_m}: P(<1 m) from {val[(extra_m, snrs[0])]['p_submeter']:.3f} at "
            f"{snrs[0]:g} dB to {val[(extra_m, snrs[-1])]['p_submeter']:.3f} at {snrs[-1]:g} dB"
        )
    return "\n".join(out)


def blockage_report(table: Sequence[Mapping[str, Any]]) -> str:
    """P(error < 1 m) and MSE per method and SNR point of the blockage sweep (``fig2_blockage.csv``)."""
    _check_table(table, "table", ("method", "snr_db", "n_trials", "mse", "p_submeter"))
    snrs = sorted({r["snr_db"] for r in table})
    val = {(r["method"], r["snr_db"]): r for r in table}
    out = [
        f"blockage sweep, {table[0]['n_trials']} trials per point: P(error < 1 m) / MSE (m^2)",
        f"{'method':<10}" + "".join(f"{s:>16g}" for s in snrs),
    ]
    for m in by_method(table):
        out.append(f"{m:<10}" + "".join(f"{val[(m, s)]['p_submeter']:>8.3f}{val[(m, s)]['mse']:>8.3g}" for s in snrs))
    return "\n".join(out)


def mean_los_links(table: Sequence[Mapping[str, Any]]) -> float:
    """Mean of the ``mean_los_links`` column over the rows that have it (a float)."""
    _check_table(table, "table", ("method",))
    values = [r["mean_los_links"] for r in table if isinstance(r.get("mean_los_links"), float)]
    if not values:
        raise ValueError("table: no row has a float mean_los_links")
    return float(np.mean(values))


def fig3_report(curves: Mapping[str, np.ndarray]) -> str:
    """Fig. 3 against the paper's claim that DAUN converges much faster than P-ADMM.

    For every curve: monotone or not, first and last NMSE; for every DAUN
    curve: the first P-ADMM iteration whose NMSE is at or below DAUN's last
    layer, and P-ADMM's NMSE after as many iterations as DAUN has layers;
    the diverging literal setting when present.
    """
    if not isinstance(curves, Mapping) or "P-ADMM" not in curves:
        raise ValueError("curves: expected a dict method -> (n, 2) array with a 'P-ADMM' curve")
    out: list[str] = []
    padmm = curves["P-ADMM"]
    for m, c in curves.items():
        rises = int(np.sum(np.diff(c[:, 1]) > 0))
        out.append(
            f"{m:<28} {len(c):>4} points, NMSE {c[0, 1]:.3g} -> {c[-1, 1]:.3g}; "
            + ("monotone decreasing" if rises == 0 else f"increases at {rises} steps")
        )
    out.append("")
    for m, c in curves.items():
        if not m.startswith("DAUN"):
            continue
        layers, target = int(c[-1, 0]), c[-1, 1]
        hit = np.nonzero(padmm[:, 1] <= target)[0]
        if hit.size:
            it = int(padmm[hit[0], 0])
            out.append(
                f"{m}: NMSE {target:.3g} after {layers} layers; P-ADMM first reaches it at iteration {it} "
                f"({it / layers:.1f}x the layers)"
            )
        else:
            out.append(
                f"{m}: NMSE {target:.3g} after {layers} layers; P-ADMM does not reach it within "
                f"{len(padmm)} iterations (its NMSE there: {padmm[-1, 1]:.3g})"
            )
        at = padmm[min(layers, len(padmm)) - 1, 1]
        out.append(f"    P-ADMM after the same {layers} iterations: NMSE {at:.3g} ({at / target:.3g}x DAUN's)")
    lit = curves.get("P-ADMM (paper's tau, rho)")
    if lit is not None:
        out.append(
            "P-ADMM with the paper's literal tau1 = tau2 = 0.5, rho = 5 in our units: NMSE "
            + ", ".join(f"{v:.3g}" for v in lit[:, 1])
            + " (diverges: steps far above 1/||A||^2, 1/||B||^2)"
        )
    return "\n".join(out)


__all__ = ["PAPER_FIG2_METHODS", "blockage_report", "fig2_report", "fig3_report", "mean_los_links"]
