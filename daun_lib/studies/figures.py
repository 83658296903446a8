"""The plots of Fig. 2 and Fig. 3, drawn from the rows of ``results/fig2*.csv`` and ``results/fig3.csv``.

Each function draws on a given matplotlib axis and returns nothing; the
notebooks create the figures and save them with :func:`daun_lib.studies.plotting.save_figure`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .accuracy import by_method

STYLES: dict[str, tuple[str, str, str]] = {
    "DAUN": ("C0", "o", "-"),
    "DAUN-R": ("C3", "s", "-"),
    "DPD": ("C1", "^", "-"),
    "Stansfield": ("C2", "v", "-"),
    "SRL": ("C4", "D", "-"),
    "VB": ("C5", "x", "-"),
    "MM": ("C8", "*", "-"),
    "P-ADMM": ("C7", "+", ":"),
    "DAUN-S": ("C9", "p", "-."),
    "DPD-S": ("C6", "h", "-."),
    "DAUN (loss 18)": ("C0", "o", "--"),
    "DAUN-R (loss 18)": ("C3", "s", "--"),
    "DAUN-ML": ("C0", "<", ":"),
    "DAUN-MLB": ("C0", ">", ":"),
    "DPD-ML": ("C1", "<", ":"),
    "DPD-MLB": ("C1", ">", ":"),
    "DPD-MMSE": ("C4", "P", "--"),
    "DPD-Disk": ("C5", "X", "--"),
    "Subset-MAP": ("C8", "d", "--"),
    "Mixture-MMSE": ("C7", "P", "--"),
    "CRB (LoS model)": ("k", "", "--"),
    "ML, noiseless channel": ("k", "", ":"),
    "LoS oracle (ML)": ("k", "", "-."),
    "DPD-peaks": ("C1", "^", "-"),
    "DPD-peaks-S": ("C1", "^", "-."),
    "DPD-SIC": ("C6", "h", "-"),
    "DPD-SIC-ML": ("C6", "h", ":"),
    "DPD-AP": ("C6", "h", "--"),
    "DPD-peaks-APM": ("C1", "^", ":"),
    "OMP": ("C2", "v", "-"),
    "P-ADMM-peaks": ("C7", "+", "-"),
    "P-ADMM-peaks-S": ("C7", "+", "-."),
    "P-ADMM-peaks-AP": ("C7", "+", "--"),
    "P-ADMM-peaks-APM": ("C7", "+", ":"),
    "DAUN-peaks": ("C0", "o", "-"),
    "DAUN-peaks-S": ("C0", "o", "-."),
    "DAUN-MU": ("C3", "s", "-"),
    "DAUN-MU-S": ("C3", "s", "-."),
    "DAUN-MU-AP": ("C3", "s", "--"),
    "DAUN-MU-APM": ("C3", "s", ":"),
}
"""Method -> (colour, marker, line style) of Fig. 2; the loss-(18) network dashed with open markers.
Several users (notebook 08): one colour per map, solid for the grid pick, dash-dot for the sub-grid
readout, dotted for the per-user ML and the multi-start joint ML ("-APM"), dashed for the joint ML
("-AP")."""


def _check_ax(ax: Any) -> None:
    if not hasattr(ax, "errorbar") or not hasattr(ax, "plot"):
        raise ValueError(f"ax: expected a matplotlib Axes, got {type(ax).__name__}")


def plot_accuracy(ax: Any, table: Sequence[Mapping[str, Any]], key: str, logy: bool, xticks: Sequence[float]) -> None:
    """One panel of Fig. 2: ``key`` ("mse" or "p_submeter") against the SNR, one curve per method, +-2 s.e. bars.

    Parameters
    ----------
    ax : matplotlib Axes
    table : list of dict
        Rows with ``method``, ``snr_db``, ``key`` and ``key + "_stderr"``
        (:func:`daun_lib.studies.accuracy.accuracy_rows`, read back with :func:`daun_lib.experiments.read_csv`).
    key : "mse", "p_submeter" or "p_all_submeter" (several users: P(every user within 1 m))
    logy : bool
        Logarithmic y axis (the lower bar is then capped at 0.9 of the value).
    xticks : list of float
        The SNR points (dB) to mark.
    """
    _check_ax(ax)
    if key not in ("mse", "p_submeter", "p_all_submeter"):
        raise ValueError(f"key: expected 'mse', 'p_submeter' or 'p_all_submeter', got {key!r}")
    if not table:
        raise ValueError("table: expected at least one row")
    for i, (m, rs) in enumerate(by_method(table).items()):
        color, marker, ls = STYLES.get(m, (f"C{i % 10}", ".", "-"))
        x = np.array([r["snr_db"] for r in rs], dtype=float)
        v = np.array([r[key] for r in rs], dtype=float)
        se = np.array([r[key + "_stderr"] for r in rs], dtype=float)
        open_marker = "loss 18" in m
        se2 = 2 * np.nan_to_num(se)
        yerr = np.vstack([np.minimum(se2, 0.9 * v), se2]) if logy else se2  # a log axis cannot show v - 2 s.e. < 0
        ax.errorbar(
            x,
            v,
            yerr=yerr,
            color=color,
            marker=marker,
            ls=ls,
            capsize=1.5,
            elinewidth=0.5,
            mfc="none" if open_marker else color,
            label=m,
        )
    ax.set_xlabel("SNR (dB)")
    ax.set_xticks(xticks)
    if logy:
        ax.set_yscale("log")


def plot_limits(ax: Any, limits: Sequence[Mapping[str, Any]], key: str = "mse") -> None:
    """Reference curves (:func:`daun_lib.studies.limits.reference_rows`): black lines without markers, one per reference.

    Parameters
    ----------
    ax : matplotlib Axes
    limits : list of dict
        Rows with ``method`` (a label of :data:`daun_lib.studies.limits.REFERENCE_LABELS`), ``snr_db`` and ``key``;
        rows whose ``key`` is empty (the CRB has no sub-metre probability) are skipped.
    key : "mse" or "p_submeter"
    """
    _check_ax(ax)
    if key not in ("mse", "p_submeter"):
        raise ValueError(f"key: expected 'mse' or 'p_submeter', got {key!r}")
    if not limits:
        raise ValueError("limits: expected at least one row")
    for m, rs in by_method(limits).items():
        rs = [r for r in rs if isinstance(r.get(key), (int, float)) and np.isfinite(r[key])]
        if not rs:
            continue
        color, _, ls = STYLES.get(m, ("k", "", "--"))
        ax.plot([r["snr_db"] for r in rs], [r[key] for r in rs], color=color, ls=ls, lw=1.2, label=m)


def plot_ratio(ax: Any, rows: Sequence[Mapping[str, Any]], key: str, xticks: Sequence[float]) -> None:
    """A ratio of :func:`daun_lib.studies.limits.distance_rows` (e.g. ``"mse_over_crb"``) against the SNR, log axis.

    Parameters
    ----------
    ax : matplotlib Axes
    rows : list of dict
        Rows with ``method``, ``snr_db`` and ``key``.
    key : str
    xticks : list of float
    """
    _check_ax(ax)
    if not isinstance(key, str):
        raise ValueError(f"key: expected a column name, got {key!r}")
    if not rows or not all(isinstance(r, Mapping) and key in r for r in rows):
        raise ValueError(f"rows: expected rows with the column {key!r}")
    for i, (m, rs) in enumerate(by_method(rows).items()):
        color, marker, ls = STYLES.get(m, (f"C{i % 10}", ".", "-"))
        ax.plot([r["snr_db"] for r in rs], [r[key] for r in rs], color=color, marker=marker, ls=ls, label=m)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("SNR (dB)")
    ax.set_xticks(xticks)


def legend_above(ax: Any) -> None:
    """The legend of a Fig. 2 panel in three columns above the axes."""
    _check_ax(ax)
    ax.legend(
        ncol=3, loc="lower center", bbox_to_anchor=(0.5, 1.01), frameon=False, columnspacing=1.0, handlelength=2.2
    )


def plot_convergence(ax: Any, curves: Mapping[str, np.ndarray], default_variant: str | None) -> None:
    """Fig. 3: NMSE against the layer (DAUN curves) and the iteration (P-ADMM), both axes logarithmic.

    Parameters
    ----------
    ax : matplotlib Axes
    curves : dict method -> (n, 2) array of (iteration, NMSE)
        :func:`daun_lib.studies.convergence.convergence_curves`; must hold "P-ADMM".
    default_variant : str or None
        The default DAUN variant, marked "(default)" in the legend.
    """
    _check_ax(ax)
    if "P-ADMM" not in curves:
        raise ValueError(f"curves: expected a 'P-ADMM' curve, got {list(curves)}")
    markers = "osD^v"
    for i, (m, c) in enumerate((m, c) for m, c in curves.items() if m.startswith("DAUN")):
        ax.plot(
            c[:, 0],
            c[:, 1],
            marker=markers[i % len(markers)],
            color=f"C{[0, 3, 2, 4, 5][i % 5]}",
            label=m.replace("DAUN (", "DAUN, ").replace(")", "").replace("paper", "paper's loss (18)")
            + (" (default)" if m == f"DAUN ({default_variant})" else ""),
        )
    c = curves["P-ADMM"]
    ax.plot(c[:, 0], c[:, 1], color="k", lw=1.0, label="P-ADMM")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("iteration / layer")
    ax.set_ylabel("NMSE")
    ax.legend()


__all__ = ["STYLES", "legend_above", "plot_accuracy", "plot_convergence", "plot_limits", "plot_ratio"]
