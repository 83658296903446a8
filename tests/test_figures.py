"""daun_lib.studies.figures: the (family, readout) style rule, the curve selection, every figure function, redraw."""

from __future__ import annotations

import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from daun_lib import experiments  # noqa: E402
from daun_lib.studies import claims, figures, limits  # noqa: E402

RESULTS = Path(__file__).resolve().parent.parent / "results"
SNR = [0.0, 10.0, 20.0]

FIG2_METHODS = ["DAUN", "DAUN-R", "DAUN-S", "DPD", "DPD-S", "Stansfield", "SRL", "VB", "P-ADMM", "DAUN (loss 18)"]
BLOCKAGE_METHODS = ["DAUN", "DAUN-R", "DAUN-S", "DPD", "DPD-ML", "Subset-MAP", "Mixture-MMSE"]
LIMITS_METHODS = ["DAUN", "DAUN-S", "DAUN-ML", "DAUN-MLB", "DPD", "DPD-S", "DPD-ML", "DPD-MLB", "DPD-MMSE"]
LIMITS_METHODS += ["DPD-Disk", "Stansfield", "Subset-MAP"]
MU_METHODS = ["DPD-peaks", "DPD-peaks-S", "DPD-SIC", "DPD-SIC-ML", "DPD-AP", "DPD-peaks-APM", "OMP", "P-ADMM-peaks"]
MU_METHODS += ["P-ADMM-peaks-S", "P-ADMM-peaks-AP", "P-ADMM-peaks-APM", "DAUN-peaks", "DAUN-peaks-S", "DAUN-MU"]
MU_METHODS += ["DAUN-MU-S", "DAUN-MU-AP", "DAUN-MU-APM"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def rows_of(methods, snrs=SNR, **extra):
    """Synthetic accuracy rows: method i has P(< 1 m) 0.9 - 0.03 i and MSE 0.1 (1 + i) at every SNR."""
    return [
        {
            "method": m,
            "snr_db": s,
            "n_trials": 10,
            "mse": 0.1 * (1 + i) / (1 + s),
            "mse_stderr": 0.01,
            "p_submeter": 0.9 - 0.03 * i,
            "p_submeter_stderr": 0.01,
            "median_error": 0.5,
            "mean_los_links": 2.0,
            **extra,
        }
        for i, m in enumerate(methods)
        for s in snrs
    ]


def curves(ax):
    """The labelled lines of a panel (what the brief counts: ``ax.get_lines()`` without a leading '_')."""
    return [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]


def check_panels(fig, max_curves=figures.MAX_CURVES):
    """Every panel at most ``max_curves`` curves; within the figure one colour per family, one style per readout."""
    colour, style = {}, {}
    for ax in fig.axes:
        assert len(curves(ax)) <= max_curves, [ln.get_label() for ln in curves(ax)]
        for ln in curves(ax):
            name = ln.get_label().split(", 2-D model")[0]
            if name.startswith("DAUN, "):  # Fig. 3's labels
                name = "DAUN"
            family, readout, _ = figures.parse_method(name)
            if family == "reference":
                continue
            assert colour.setdefault(family, ln.get_color()) == ln.get_color(), name
            assert style.setdefault(readout, (ln.get_linestyle(), ln.get_marker())) == (
                ln.get_linestyle(),
                ln.get_marker(),
            ), name
    return [[ln.get_label() for ln in curves(ax)] for ax in fig.axes]


# ---------------------------------------------------------------------------------------------------------------
# the style rule
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, family, readout, variant",
    [
        ("DAUN", "DAUN", "grid argmax", None),
        ("DAUN-R", "DAUN", "Algorithm 1", None),
        ("DAUN-S", "DAUN", "sub-grid", None),
        ("DAUN-MLB", "DAUN", "continuous ML, per-BS noise", None),
        ("DAUN-R (loss 18)", "DAUN", "Algorithm 1", "loss 18"),
        ("DAUN-MU", "DAUN-MU", "grid argmax", None),
        ("DAUN-MU-APM", "DAUN-MU", "multi-start joint ML", None),
        ("DAUN-peaks-S", "DAUN", "sub-grid", None),
        ("P-ADMM", "P-ADMM", "grid argmax", None),
        ("P-ADMM-peaks-AP", "P-ADMM", "joint ML", None),
        ("DPD-ML", "DPD", "continuous ML", None),
        ("DPD-MMSE", "DPD", "posterior mean", None),
        ("DPD-Disk", "DPD", "posterior 1 m disk", None),
        ("DPD-SIC", "DPD", "grid argmax", None),
        ("DPD-SIC-ML", "DPD", "continuous ML", None),
        ("Stansfield", "Stansfield", "grid argmax", None),
        ("MM", "MM", "grid argmax", None),
        ("OMP", "OMP", "grid argmax", None),
        ("Subset-MAP", "blockage-aware", "joint MAP", None),
        ("Mixture-MMSE", "blockage-aware", "posterior mean", None),
        ("CRB (LoS model)", "reference", "CRB (LoS model)", None),
        ("New-thing-S", "New-thing", "sub-grid", None),
    ],
)
def test_parse_method(name, family, readout, variant):
    assert figures.parse_method(name) == (family, readout, variant)


def test_same_family_same_colour_same_readout_same_line():
    s = figures.style_of
    assert s("DPD").color == s("DPD-S").color == s("DPD-peaks-APM").color == s("DPD-MMSE").color
    assert s("DAUN").color == s("DAUN-R").color == s("DAUN (loss 18)").color == s("DAUN-peaks-S").color
    assert s("Subset-MAP").color == s("Mixture-MMSE").color
    for a, b in [("DAUN-S", "DPD-S"), ("DAUN-MU-S", "P-ADMM-peaks-S"), ("DPD-AP", "DAUN-MU-AP"), ("DAUN", "OMP")]:
        assert (s(a).linestyle, s(a).marker) == (s(b).linestyle, s(b).marker)
    known = [f for f in figures.FAMILY_COLORS if f != "reference"]
    assert len({figures.FAMILY_COLORS[f] for f in known}) == len(known)  # one colour per family
    assert len(set(figures.READOUT_STYLES.values())) == len(figures.READOUT_STYLES)  # one (line, marker) per readout
    assert {r for _, r in figures.READOUT_SUFFIXES} | {figures.DEFAULT_READOUT} == set(figures.READOUT_STYLES)
    # a variant keeps colour and line, with open markers
    assert s("DAUN-R (loss 18)").kwargs()["mfc"] == "none" and s("DAUN-R").kwargs()["mfc"] == s("DAUN-R").color
    assert s("DPD-S", variant="2-D model").kwargs()["mfc"] == "none"
    # references: black, no marker, one line each
    refs = [figures.style_of(v) for v in limits.REFERENCE_LABELS.values()]
    assert all(r.color == "k" and r.marker == "" for r in refs) and len({r.linestyle for r in refs}) == len(refs)
    # a family without a table entry: its own colour, the same for every readout and every call
    assert s("Foo").color == s("Foo-ML").color == s("Foo-S").color in figures.SPARE_COLORS
    with pytest.raises(ValueError, match="name"):
        figures.style_of("")


def test_best_per_family():
    rows = rows_of(["DPD", "DPD-S", "DAUN", "DAUN-S", "Stansfield"])
    rows += [{"method": "CRB (LoS model)", "snr_db": 0.0, "mse": 1e-9, "p_submeter": ""}]
    assert figures.best_per_family(rows, "p_submeter") == ["DPD", "DAUN", "Stansfield"]
    assert figures.best_per_family(rows, "mse") == ["DPD", "DAUN", "Stansfield"]
    assert figures.best_per_family(rows, "p_submeter", keep=["DAUN-S", "absent"]) == [
        "DPD",
        "DAUN",
        "DAUN-S",
        "Stansfield",
    ]
    assert figures.best_per_family(rows, "mse", lower_is_better=False) == ["DPD-S", "DAUN-S", "Stansfield"]
    # MSEs are compared in log10: one huge value does not outweigh better values elsewhere
    log = [{"method": "A", "snr_db": s, "mse": v} for s, v in ((0, 100.0), (1, 0.001))]
    log += [{"method": "A-S", "snr_db": s, "mse": v} for s, v in ((0, 10.0), (1, 1.0))]
    assert figures.best_per_family(log, "mse") == ["A"]
    with pytest.raises(ValueError, match="keep"):
        figures.best_per_family(rows, "mse", keep="DPD")


# ---------------------------------------------------------------------------------------------------------------
# every figure function: at most six curves per panel, consistent styles
# ---------------------------------------------------------------------------------------------------------------
def test_fig2_figure_shows_the_papers_methods():
    for key in ("mse", "p_submeter"):
        labels = check_panels(figures.fig2_figure(rows_of(FIG2_METHODS), key))
        assert labels == [list(claims.PAPER_FIG2_METHODS)]
    limit_rows = [{"method": limits.REFERENCE_LABELS["crb"], "snr_db": s, "mse": 0.01} for s in SNR]
    labels = check_panels(figures.fig2_figure(rows_of(FIG2_METHODS), "mse", limits=limit_rows), max_curves=7)
    assert labels[0][0] == limits.REFERENCE_LABELS["crb"]
    with pytest.raises(ValueError, match="paper"):
        figures.fig2_figure(rows_of(["DAUN-S"]), "mse")


def test_blockage_figure():
    oracle = limits.REFERENCE_LABELS["oracle"]
    table = rows_of(BLOCKAGE_METHODS) + rows_of([oracle])
    fig = figures.blockage_figure(table, n_bs=4)
    labels = check_panels(fig)
    assert all(oracle in panel and "DAUN-R" in panel for panel in labels)  # the reference and Algorithm 1 stay
    assert "of 4 links LoS" in fig.get_suptitle()


def test_convergence_figure():
    c = np.array([[1, 1.0], [2, 0.1]])
    fig = figures.convergence_figure(
        {"DAUN (paper)": c, "DAUN (supervised)": c, "P-ADMM": c, "P-ADMM (x)": c}, "supervised"
    )
    (labels,) = check_panels(fig)
    assert labels == ["DAUN, paper's loss (18)", "DAUN, supervised (default)", "P-ADMM"]
    paper, default, padmm = curves(fig.axes[0])
    assert paper.get_color() == default.get_color() == figures.style_of("DAUN").color
    assert paper.get_markerfacecolor() == "none" and padmm.get_color() == figures.style_of("P-ADMM").color


def test_limits_figure():
    refs = [{"method": v, "snr_db": s, "mse": 0.01} for v in list(limits.REFERENCE_LABELS.values())[:2] for s in SNR]
    table = rows_of(LIMITS_METHODS) + refs
    dist = limits.distance_rows(rows_of(LIMITS_METHODS), refs, ml_method="DPD-ML")
    labels = check_panels(figures.limits_figure(table, dist))
    assert labels[0][2:] == labels[1] == ["DAUN", "DPD", "Stansfield", "Subset-MAP"]


def test_multiuser_figure():
    table = [dict(r, n_users=U, p_all_submeter=r["p_submeter"] ** U) for U in (1, 2, 3) for r in rows_of(MU_METHODS)]
    labels = check_panels(figures.multiuser_figure(table))
    assert labels[0] == labels[1] == labels[2] == ["DPD-peaks", "OMP", "P-ADMM-peaks", "DAUN-peaks", "DAUN-MU"]


def test_geometry_figure():
    table = [
        dict(r, source=src, dictionaries=kind, geometry="3d")
        for src in ("package", "sionna")
        for kind in ("height-aware", "2-D model")
        for r in rows_of(["DPD-S", "DAUN-S", "DPD", "Stansfield"])
    ]
    fig = figures.geometry_figure(table)
    labels = check_panels(fig)
    assert len(fig.axes) == 4 and all(len(p) == 6 for p in labels)


def test_scenario_spectra_and_channel_stats_figures():
    from daun_lib import Scenario, channel
    from daun_lib.studies import channel_stats

    sc = Scenario()
    assert channel_stats.scenario_figure(sc).axes
    assert len(channel_stats.spectra_figure(sc, channel.simulate(sc, 1, 10.0, seed=0), 10.0).axes) == 2 * sc.n_bs
    st = channel_stats.channel_statistics(60, 0)
    fig = channel_stats.plot_channel_stats(st.los_rows or [], st.stat_rows, st.spreads, sc.ut_height_m)
    assert len(fig.axes) == 3


# ---------------------------------------------------------------------------------------------------------------
# the committed CSVs: every figure readable, redraw writes them
# ---------------------------------------------------------------------------------------------------------------
def test_build_figures_on_the_committed_csvs():
    figs = figures.build_figures(RESULTS)
    assert set(figs) == set(figures.REDRAWN)
    colours: dict[str, str] = {}
    for name, fig in figs.items():
        check_panels(fig)
        for ax in fig.axes:  # one colour per family across all figures
            for ln in curves(ax):
                family = figures.parse_method(ln.get_label().split(", ")[0])[0]
                if family not in ("reference", "DAUN"):  # Fig. 3 labels its DAUN curves "DAUN, <variant>"
                    assert colours.setdefault(family, ln.get_color()) == ln.get_color(), (name, ln.get_label())


def test_redraw_writes_the_figures_of_the_csvs_present(tmp_path):
    res = tmp_path / "results"
    res.mkdir()
    for f in ("multiuser.csv", "multiuser.json"):
        shutil.copy(RESULTS / f, res / f)
    paths = figures.redraw(res, tmp_path / "figures", formats=("png",))
    assert [p.name for p in paths] == ["fig_multiuser.png"] and paths[0].read_bytes().startswith(b"\x89PNG")
    assert experiments.read_csv(res / "multiuser.csv") == experiments.read_csv(RESULTS / "multiuser.csv")
    with pytest.raises(ValueError, match="results_dir"):
        figures.redraw(tmp_path / "nowhere", tmp_path / "figures")
