"""Every figure of the Monte Carlo notebooks, and :func:`redraw` of them from the committed CSVs.

The style of every curve (:func:`~daun_lib.studies.plotting.style_of`: colour per estimator family,
line style and marker per readout, both read from the method's name) and the choice of the curves
(:func:`~daun_lib.studies.plotting.best_per_family`: per family the best entry by the panel's metric,
computed from the rows) are :mod:`daun_lib.studies.plotting`'s; they are re-exported here.

Figures
-------
``fig2_figure`` (Fig. 2(a), 2(b)), ``blockage_figure``, ``convergence_figure`` (Fig. 3), ``limits_figure``,
``multiuser_figure``, ``geometry_figure`` build a whole figure and return it, each docstring stating which
curves it draws; the notebooks and :func:`redraw` (every figure of the Monte Carlo studies from the committed CSVs,
no simulation) call the same functions and save with :func:`daun_lib.studies.plotting.save_figure`.
The panel functions ``plot_accuracy``, ``plot_limits``, ``plot_ratio``, ``plot_convergence`` draw on a given axis.
Notebook 01's figures (no estimators) are :mod:`daun_lib.studies.channel_stats`'s.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .accuracy import by_method
from .plotting import (
    DEFAULT_READOUT,
    FAMILY_COLORS,
    FAMILY_PREFIXES,
    MAX_CURVES,
    READOUT_STYLES,
    READOUT_SUFFIXES,
    REFERENCE_LINESTYLES,
    SPARE_COLORS,
    Style,
    best_per_family,
    curve,
    is_reference,
    panel_curves,
    parse_method,
    style_of,
)


def _check_ax(ax: Any) -> None:
    if not hasattr(ax, "errorbar") or not hasattr(ax, "plot"):
        raise ValueError(f"ax: expected a matplotlib Axes, got {type(ax).__name__}")


def _check_methods(methods: Sequence[str] | None) -> None:
    if methods is not None and (isinstance(methods, str) or not all(isinstance(m, str) for m in methods)):
        raise ValueError(f"methods: expected a list of method names, got {methods!r}")


def plot_accuracy(
    ax: Any,
    table: Sequence[Mapping[str, Any]],
    key: str,
    logy: bool,
    xticks: Sequence[float],
    methods: Sequence[str] | None = None,
) -> None:
    """One accuracy panel: ``key`` against the SNR, one curve per method (:func:`style_of`), +-2 s.e. bars.

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
    methods : list of str, optional
        The methods to draw, in this order (default: every method of ``table``); names not in ``table``
        are skipped.
    """
    _check_ax(ax)
    if key not in ("mse", "p_submeter", "p_all_submeter"):
        raise ValueError(f"key: expected 'mse', 'p_submeter' or 'p_all_submeter', got {key!r}")
    if not table:
        raise ValueError("table: expected at least one row")
    _check_methods(methods)
    groups = by_method(table)
    for m in groups if methods is None else [m for m in methods if m in groups]:
        rs = groups[m]
        curve(
            ax,
            [r["snr_db"] for r in rs],
            [r[key] for r in rs],
            [r.get(key + "_stderr", np.nan) for r in rs],
            style_of(m),
            m,
            logy,
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
        st = style_of(m)
        ax.plot([r["snr_db"] for r in rs], [r[key] for r in rs], color=st.color, ls=st.linestyle, lw=1.2, label=m)


def plot_ratio(
    ax: Any, rows: Sequence[Mapping[str, Any]], key: str, xticks: Sequence[float], methods: Sequence[str] | None = None
) -> None:
    """A ratio of :func:`daun_lib.studies.limits.distance_rows` (e.g. ``"mse_over_crb"``) against the SNR, log axis.

    Parameters
    ----------
    ax : matplotlib Axes
    rows : list of dict
        Rows with ``method``, ``snr_db`` and ``key``.
    key : str
    xticks : list of float
    methods : list of str, optional
        The methods to draw (default: all of ``rows``).
    """
    _check_ax(ax)
    if not isinstance(key, str):
        raise ValueError(f"key: expected a column name, got {key!r}")
    if not rows or not all(isinstance(r, Mapping) and key in r for r in rows):
        raise ValueError(f"rows: expected rows with the column {key!r}")
    _check_methods(methods)
    groups = by_method(rows)
    for m in groups if methods is None else [m for m in methods if m in groups]:
        rs = groups[m]
        ax.plot([r["snr_db"] for r in rs], [r[key] for r in rs], label=m, **style_of(m).kwargs())
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("SNR (dB)")
    ax.set_xticks(xticks)


def legend_above(ax: Any, ncol: int = 3) -> None:
    """The legend of a panel in ``ncol`` columns above the axes."""
    _check_ax(ax)
    ax.legend(
        ncol=ncol, loc="lower center", bbox_to_anchor=(0.5, 1.01), frameon=False, columnspacing=1.0, handlelength=2.6
    )


def legend_below(fig: Any, ax: Any, ncol: int) -> None:
    """One legend for the whole figure (the curves of ``ax``), below the panels; needs a constrained layout."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=ncol, frameon=False, handlelength=2.6)


def plot_convergence(ax: Any, curves: Mapping[str, np.ndarray], default_variant: str | None) -> None:
    """Fig. 3: NMSE against the layer (DAUN curves) and the iteration (P-ADMM), both axes logarithmic.

    Every DAUN network in the DAUN colour (:func:`style_of`): the default one with filled markers, the
    others as variants (open markers); P-ADMM in its own style, a marker every tenth of the axis (300 iterations).

    Parameters
    ----------
    ax : matplotlib Axes
    curves : dict method -> (n, 2) array of (iteration, NMSE)
        :func:`daun_lib.studies.convergence.convergence_curves`; must hold "P-ADMM".  Curves other than
        ``"DAUN (...)"`` and ``"P-ADMM"`` (the diverging literal setting) are not drawn.
    default_variant : str or None
        The default DAUN variant, marked "(default)" in the legend.
    """
    _check_ax(ax)
    if "P-ADMM" not in curves:
        raise ValueError(f"curves: expected a 'P-ADMM' curve, got {list(curves)}")
    for m, c in curves.items():
        if not m.startswith("DAUN"):
            continue
        default = m == f"DAUN ({default_variant})"
        st = style_of("DAUN" if default else m)
        ax.plot(
            c[:, 0],
            c[:, 1],
            label=m.replace("DAUN (", "DAUN, ").replace(")", "").replace("paper", "paper's loss (18)")
            + (" (default)" if default else ""),
            **st.kwargs(),
        )
    c = curves["P-ADMM"]
    # markevery=0.1: markers evenly spaced along the drawn (log-log) curve, not one per iteration
    ax.plot(c[:, 0], c[:, 1], label="P-ADMM", markevery=0.1, **style_of("P-ADMM").kwargs())
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("iteration / layer")
    ax.set_ylabel("NMSE")
    ax.legend()


# ---------------------------------------------------------------------------------------------------------------
# whole figures
# ---------------------------------------------------------------------------------------------------------------
def _snrs(rows: Sequence[Mapping[str, Any]]) -> list[float]:
    return sorted({float(r["snr_db"]) for r in rows})


def _check_rows(rows: Any, name: str, fields: Sequence[str]) -> None:
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence) or not rows:
        raise ValueError(f"{name}: expected a non-empty list of rows")
    missing = [f for f in fields if not all(isinstance(r, Mapping) and f in r for r in rows)]
    if missing:
        raise ValueError(f"{name}: rows lack {missing}")


def fig2_figure(table: Sequence[Mapping[str, Any]], key: str, limits: Sequence[Mapping[str, Any]] | None = None) -> Any:
    """Fig. 2(a) (``key="mse"``, log axis) or Fig. 2(b) (``key="p_submeter"``) from the rows of ``results/fig2.csv``.

    Curves: the paper's six methods (:data:`daun_lib.studies.claims.PAPER_FIG2_METHODS`: DAUN, DAUN-R, DPD,
    Stansfield, SRL, VB) that are in the rows, nothing else by default: this is the paper's figure.  The
    package's other pipelines (sub-grid, loss-(18) network, P-ADMM) stay in ``results/fig2.csv``; the limits
    (``results/fig2_limits.csv``) are drawn only when passed as ``limits`` (black, no markers; two more
    curves), and notebook 07's :func:`limits_figure` is where they are the point.
    """
    import matplotlib.pyplot as plt

    from .claims import PAPER_FIG2_METHODS

    _check_rows(table, "table", ("method", "snr_db", key))
    methods = [m for m in PAPER_FIG2_METHODS if any(r["method"] == m for r in table)]
    if not methods:
        raise ValueError(f"table: none of the paper's methods {PAPER_FIG2_METHODS}")
    fig, ax = plt.subplots(figsize=(3.5, 3.0), layout="constrained")
    logy = key == "mse"
    if limits:
        plot_limits(ax, limits, key)
    plot_accuracy(ax, table, key, logy=logy, xticks=_snrs(table), methods=methods)
    if logy:
        ax.set_ylabel(r"MSE (m$^2$)")
    else:
        ax.set_ylabel("P(error < 1 m)")
        ax.set_ylim(-0.02, 1.02)
    legend_above(ax)
    return fig


def blockage_figure(table: Sequence[Mapping[str, Any]], n_bs: int | None = None) -> Any:
    """MSE (left, log axis) and P(error < 1 m) (right) of the blockage sweep, ``results/fig2_blockage.csv``.

    Curves per panel: per family the best entry by that panel's metric (:func:`best_per_family` over all SNR
    points: the lowest mean log MSE on the left, the highest mean P(error < 1 m) on the right), plus DAUN-R
    (Algorithm 1, the paper's remedy for blockage, which this sweep tests), plus the LoS oracle (a reference:
    black dash-dot).  ``n_bs`` (the number of BSs) goes into the title.
    """
    import matplotlib.pyplot as plt

    from .claims import mean_los_links

    _check_rows(table, "table", ("method", "snr_db", "mse", "p_submeter"))
    methods = [r for r in table if not is_reference(r["method"])]
    refs = [r for r in table if is_reference(r["method"])]
    fig, axes = plt.subplots(1, 2, figsize=(7.16, 3.1), layout="constrained")
    for ax, key, logy in ((axes[0], "mse", True), (axes[1], "p_submeter", False)):
        chosen = best_per_family(methods, key, keep=("DAUN-R",))
        if refs:
            plot_limits(ax, refs, key)
        plot_accuracy(ax, methods, key, logy=logy, xticks=_snrs(table), methods=chosen)
        legend_above(ax)
    axes[0].set_ylabel(r"MSE (m$^2$)")
    axes[1].set_ylabel("P(error < 1 m)")
    axes[1].set_ylim(-0.02, 1.02)
    try:
        mean_los = f"{mean_los_links(methods):.2f}"
    except ValueError:
        mean_los = "?"
    of = f" of {n_bs}" if n_bs is not None else ""
    fig.suptitle(f"TR 38.901 LoS probability ({mean_los}{of} links LoS on average)", fontsize=8)
    return fig


def convergence_figure(curves: Mapping[str, np.ndarray], default_variant: str | None) -> Any:
    """Fig. 3 (:func:`plot_convergence`): every shipped DAUN network and P-ADMM, as in the paper."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(layout="constrained")
    plot_convergence(ax, curves, default_variant)
    return fig


def limits_figure(table: Sequence[Mapping[str, Any]], distance: Sequence[Mapping[str, Any]]) -> Any:
    """Notebook 07: the MSE with the CRB and the noiseless floor (left), the MSE / continuous ML's MSE (right).

    Parameters
    ----------
    table : list of dict
        ``results/limits.csv``: the methods' rows and the reference rows.
    distance : list of dict
        ``results/limits_distance.csv`` (:func:`daun_lib.studies.limits.distance_rows`).

    Curves: per family the entry with the lowest MSE averaged (in log10) over the SNR points
    (:func:`best_per_family`), the same in both panels, plus the two references on the left.
    """
    import matplotlib.pyplot as plt

    _check_rows(table, "table", ("method", "snr_db", "mse"))
    _check_rows(distance, "distance", ("method", "snr_db", "mse_over_ml"))
    method_rows = [r for r in table if not is_reference(r["method"])]
    refs = [r for r in table if is_reference(r["method"])]
    chosen = best_per_family(method_rows, "mse")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(7.2, 3.4), layout="constrained")
    if refs:
        plot_limits(ax1, refs)
    plot_accuracy(ax1, method_rows, "mse", logy=True, xticks=_snrs(table), methods=chosen)
    ax1.set_ylabel(r"MSE (m$^2$)")
    plot_ratio(ax2, distance, "mse_over_ml", xticks=_snrs(distance), methods=chosen)
    ax2.set_ylabel("MSE / MSE of the continuous ML (DPD-ML)")
    legend_below(fig, ax1, ncol=3)
    return fig


def multiuser_figure(table: Sequence[Mapping[str, Any]]) -> Any:
    """Notebook 08: P(every user within 1 m) against the SNR, one panel per U (``results/multiuser.csv``).

    Curves: per family the entry with the highest P(all users < 1 m) averaged over every (U, SNR) row
    (:func:`best_per_family`), the same in every panel so that the panels compare.
    """
    import matplotlib.pyplot as plt

    _check_rows(table, "table", ("method", "snr_db", "n_users", "p_all_submeter"))
    users = sorted({int(r["n_users"]) for r in table})
    chosen = best_per_family(table, "p_all_submeter")
    fig, axes = plt.subplots(
        1, len(users), figsize=(2.4 * len(users) + 0.4, 2.9), sharey=True, squeeze=False, layout="constrained"
    )
    for ax, U in zip(axes[0], users, strict=True):
        rows = [r for r in table if int(r["n_users"]) == U]
        plot_accuracy(ax, rows, "p_all_submeter", logy=False, xticks=_snrs(rows), methods=chosen)
        ax.set_title(f"U = {U}")
        ax.set_ylim(-0.02, 1.02)
    axes[0][0].set_ylabel("P(all users < 1 m)")
    legend_below(fig, axes[0][0], ncol=min(len(chosen), 3))
    return fig


def geometry_figure(table: Sequence[Mapping[str, Any]]) -> Any:
    """Notebook 06 (``results/fig_geometry.csv``): one column per data source, P(error < 1 m) on top, MSE below.

    Curves per panel (:func:`daun_lib.studies.geometry_study.plot_geometry`): per family the entry with the
    highest P(error < 1 m) averaged over the height-aware rows of every source (:func:`best_per_family`),
    each with the height-aware dictionaries (filled markers) and the paper's 2-D model (open markers).
    """
    import matplotlib.pyplot as plt

    from . import geometry_study

    _check_rows(table, "table", ("source", "dictionaries", "method", "snr_db", "mse", "p_submeter"))
    sources = list(dict.fromkeys(r["source"] for r in table))
    chosen = best_per_family([r for r in table if r["dictionaries"] == "height-aware"], "p_submeter")
    size = (3.5 * len(sources), 4.6)
    fig, axes = plt.subplots(
        2, len(sources), figsize=size, sharex=True, sharey="row", squeeze=False, layout="constrained"
    )
    names = {"package": "package channel", "sionna": "Sionna UMa"}
    for j, source in enumerate(sources):
        rows = [r for r in table if r["source"] == source]
        geometry_study.plot_geometry(axes[:, j], rows, xticks=_snrs(rows), methods=chosen)
        axes[0, j].set_title(names.get(source, source))
        if j:
            axes[0, j].set_ylabel("")
            axes[1, j].set_ylabel("")
        axes[0, j].set_xlabel("")
    legend_below(fig, axes[0, 0], ncol=3)
    return fig


# ---------------------------------------------------------------------------------------------------------------
# redraw from the committed CSVs
# ---------------------------------------------------------------------------------------------------------------
REDRAWN: tuple[str, ...] = ("fig2a", "fig2b", "fig2_blockage", "fig3", "fig_limits", "fig_multiuser", "fig_geometry")
"""The figures :func:`redraw` draws (from ``results/``; the others need a simulation or a trained network)."""


def build_figures(results_dir: str | os.PathLike = "results") -> dict[str, Any]:
    """Every figure of :data:`REDRAWN` whose CSVs are in ``results_dir``: name -> matplotlib Figure.

    Reads ``fig2.csv``, ``fig2_blockage.csv`` (and its sidecar for the number of BSs), ``fig3.csv`` (and its
    sidecar for the default variant), ``limits.csv`` with ``limits_distance.csv``, ``multiuser.csv`` and
    ``fig_geometry.csv`` with :func:`daun_lib.experiments.read_csv`; a figure whose CSV is missing is skipped.
    Nothing is simulated.  Close the figures when done (``matplotlib.pyplot.close``).
    """
    from .. import experiments
    from .convergence import convergence_curves

    res = Path(results_dir)
    if not res.is_dir():
        raise ValueError(f"results_dir: no folder {os.fspath(res)!r}")

    def rows(name: str) -> list[dict] | None:
        return experiments.read_csv(res / name) if (res / name).is_file() else None

    def params(name: str) -> dict:
        try:
            return experiments.read_params(res / name).get("params", {})
        except ValueError:
            return {}

    out: dict[str, Any] = {}
    if (t := rows("fig2.csv")) is not None:
        out["fig2a"] = fig2_figure(t, "mse")
        out["fig2b"] = fig2_figure(t, "p_submeter")
    if (t := rows("fig2_blockage.csv")) is not None:
        bs = params("fig2_blockage.csv").get("scenario", {}).get("bs_positions")
        out["fig2_blockage"] = blockage_figure(t, n_bs=len(bs) if isinstance(bs, list) else None)
    if (t := rows("fig3.csv")) is not None:
        out["fig3"] = convergence_figure(convergence_curves(t), params("fig3.csv").get("default_variant"))
    if (t := rows("limits.csv")) is not None and (d := rows("limits_distance.csv")) is not None:
        out["fig_limits"] = limits_figure(t, d)
    if (t := rows("multiuser.csv")) is not None:
        out["fig_multiuser"] = multiuser_figure(t)
    if (t := rows("fig_geometry.csv")) is not None:
        out["fig_geometry"] = geometry_figure(t)
    return out


def redraw(
    results_dir: str | os.PathLike = "results",
    figures_dir: str | os.PathLike = "figures",
    formats: tuple[str, ...] = ("pdf", "png"),
) -> list[Path]:
    """Redraw the figures of :data:`REDRAWN` from the CSVs in ``results_dir`` into ``figures_dir`` (no simulation).

    The same functions as the notebooks (:func:`build_figures`), in the package style
    (:func:`daun_lib.studies.plotting.style`), saved with :func:`daun_lib.studies.plotting.save_figure`.
    Returns the written paths.  ``python -m daun_lib.studies.figures [results_dir] [figures_dir]`` runs it.
    """
    import matplotlib.pyplot as plt

    from .plotting import save_figure, style

    paths: list[Path] = []
    with style():
        figs = build_figures(results_dir)
        try:
            for name, fig in figs.items():
                paths += save_figure(fig, name, figures_dir, formats)
        finally:
            for fig in figs.values():
                plt.close(fig)
    return paths


__all__ = [
    "DEFAULT_READOUT",
    "FAMILY_COLORS",
    "FAMILY_PREFIXES",
    "MAX_CURVES",
    "READOUT_STYLES",
    "READOUT_SUFFIXES",
    "REDRAWN",
    "REFERENCE_LINESTYLES",
    "SPARE_COLORS",
    "Style",
    "best_per_family",
    "blockage_figure",
    "build_figures",
    "convergence_figure",
    "curve",
    "fig2_figure",
    "geometry_figure",
    "is_reference",
    "legend_above",
    "legend_below",
    "limits_figure",
    "multiuser_figure",
    "panel_curves",
    "parse_method",
    "plot_accuracy",
    "plot_convergence",
    "plot_limits",
    "plot_ratio",
    "redraw",
    "style_of",
]


if __name__ == "__main__":  # pragma: no cover
    import sys

    for p in redraw(*sys.argv[1:3]):
        print(p)
