"""Figure helpers: the package matplotlib style, the style of a curve from its method name, the curve
selection, and one ``save_figure`` for PDF + PNG.  Every figure function of ``daun_lib.studies`` takes its
colours, line styles and markers from :func:`style_of` and its curves from :func:`best_per_family`.

Style: a function of the method's name
--------------------------------------
:func:`style_of` derives a curve's look from its name by one rule, so a new registry entry gets a
consistent style without editing a table:

1. A name of :data:`daun_lib.studies.limits.REFERENCE_LABELS` is a **reference** (not a method): black,
   no marker, one line style each (:data:`REFERENCE_LINESTYLES`).
2. A trailing ``" (...)"`` names a **variant** of the entry (another network, e.g. ``"DAUN (loss 18)"``, or
   other dictionaries, ``"2-D model"`` in notebook 06): same colour and line as the entry, **open markers**.
3. The **readout** is read from the end of the name (:data:`READOUT_SUFFIXES`, first match):
   ``-APM`` multi-start joint ML, ``-AP`` joint ML, ``-MLB`` continuous ML with a noise level per BS,
   ``-ML`` continuous ML, ``-MMSE`` posterior mean, ``-Disk`` most posterior mass within 1 m, ``-MAP``
   joint MAP, ``-R`` Algorithm 1, ``-S`` sub-grid; no suffix: the grid argmax (or the estimator's own
   output: Stansfield, SRL, OMP, SIC picks).  The readout sets the **line style and the marker**
   (:data:`READOUT_STYLES`; the two continuous ML readouts share the dotted line, the two Bayesian ones
   the dash-dot-dot line, each with its own marker).
4. The **family** is read from the start of the name (:data:`FAMILY_PREFIXES`, first prefix equal to the
   name or followed by ``-``): DAUN-MU (the network trained on two users), DAUN, P-ADMM, DPD,
   Stansfield, SRL, VB, MM, OMP, and the blockage-aware ``Subset-*`` / ``Mixture-*``.  The family sets
   the **colour** (:data:`FAMILY_COLORS`).  A name with no known prefix is its own family (the name
   without its readout suffix), coloured from :data:`SPARE_COLORS` by a hash of that family: the same
   colour in every figure.

So ``DPD-peaks-APM`` is (DPD, multi-start joint ML): orange, long dash-dot, right triangles, in every
figure; ``DAUN-R (loss 18)`` is (DAUN, Algorithm 1, variant "loss 18"): blue, dashed, open squares.

Curves: at most about six per panel
-----------------------------------
:func:`best_per_family` keeps, per family, the entry with the best mean of the panel's metric over the
rows the figure draws (higher for probabilities; lower for MSEs, averaged in log10 since they span decades),
plus the entries a figure names for a reason stated in its docstring (the paper's methods of Fig. 2, the
Algorithm 1 curve of the blockage figure).  It is computed from the rows each time, so it never goes stale;
the full set of numbers stays in ``results/*.csv``.
"""

from __future__ import annotations

import io
import os
import re
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

from .._io import atomic_write_bytes
from .limits import REFERENCE_LABELS

STYLE_PATH = Path(__file__).with_name("daun.mplstyle")
"""Path of the package style: IEEE column width 3.5 in, embedded fonts, no LaTeX."""


@contextmanager
def style() -> Iterator[None]:
    """Context manager applying the package matplotlib style."""
    import matplotlib.pyplot as plt

    with plt.style.context(str(STYLE_PATH)):
        yield


def use_style() -> None:
    """Apply the package style globally (for notebooks)."""
    import matplotlib.pyplot as plt

    plt.style.use(str(STYLE_PATH))


def save_figure(
    fig: matplotlib.figure.Figure,
    name: str,
    directory: str | os.PathLike = "figures",
    formats: tuple[str, ...] = ("pdf", "png"),
) -> list[Path]:
    """Save ``fig`` as ``directory/name.<fmt>`` for every format; returns the paths.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure to save.
    name : str
        Plain file stem such as ``"fig2a"`` (no folder part, no extension).
    directory : path
        Target folder; created when missing.  Must not be an existing file.
    formats : tuple of str
        Formats that the figure's canvas supports (``"pdf"``, ``"png"``, ``"svg"`` ...).  PDF and PNG are written
        without creation date and software metadata, so the same figure gives the same bytes.

    Returns
    -------
    list of Path, one per format, in the order of ``formats``.

    Every format is first rendered in memory; only then are the files written, each through a temporary file
    that is renamed (see :data:`TMP_SUFFIX`).  An interrupted call (Ctrl-C included) therefore never leaves a
    half-written figure or a temporary file in ``directory``.

    Raises
    ------
    ValueError
        ``fig`` is not a matplotlib figure, ``name`` is not a plain file stem, ``formats`` is empty, not a
        sequence of format names or holds an unsupported one, or ``directory`` is a file or cannot be created.
    """
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise ValueError(f"fig: expected a matplotlib Figure, got {type(fig).__name__}")
    seps = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
    if not isinstance(name, str) or not name.strip() or any(s in name for s in seps) or name in (".", ".."):
        raise ValueError(f"name: expected a plain file stem such as 'fig2a', got {name!r}")
    if isinstance(formats, str) or not isinstance(formats, (tuple, list)):
        raise ValueError(f"formats: expected a tuple of format names such as ('pdf', 'png'), got {formats!r}")
    if not formats:
        raise ValueError("formats: expected at least one format")
    supported = fig.canvas.get_supported_filetypes()
    for fmt in formats:
        if not isinstance(fmt, str) or fmt not in supported:
            raise ValueError(f"formats: unsupported format {fmt!r}; supported: {sorted(supported)}")
    if not isinstance(directory, (str, os.PathLike)) or not os.fspath(directory):
        raise ValueError(f"directory: expected a folder path, got {directory!r}")
    out = Path(directory)
    if out.exists() and not out.is_dir():
        raise ValueError(f"directory: {os.fspath(out)!r} is a file, expected a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"directory: cannot create the folder {os.fspath(out)!r}: {exc}") from exc
    rendered = []
    for fmt in formats:
        meta = {"CreationDate": None} if fmt == "pdf" else ({"Software": None} if fmt == "png" else None)
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, metadata=meta)
        rendered.append((out / f"{name}.{fmt}", buf.getvalue()))
    for path, data in rendered:
        try:
            atomic_write_bytes(path, data)
        except OSError as exc:
            raise ValueError(f"directory: cannot write {os.fspath(path)!r}: {exc}") from exc
    return [path for path, _ in rendered]


FAMILY_PREFIXES: tuple[tuple[str, str], ...] = (
    ("DAUN-MU", "DAUN-MU"),
    ("DAUN", "DAUN"),
    ("P-ADMM", "P-ADMM"),
    ("DPD", "DPD"),
    ("Stansfield", "Stansfield"),
    ("SRL", "SRL"),
    ("VB", "VB"),
    ("MM", "MM"),
    ("OMP", "OMP"),
    ("Subset", "blockage-aware"),
    ("Mixture", "blockage-aware"),
)
"""(name prefix, family), first match wins: a prefix matches the name itself or the name followed by ``-``."""

FAMILY_COLORS: dict[str, str] = {
    "DAUN": "C0",
    "DPD": "C1",
    "Stansfield": "C2",
    "DAUN-MU": "C3",
    "SRL": "C4",
    "VB": "C5",
    "blockage-aware": "C6",
    "P-ADMM": "C7",
    "OMP": "C8",
    "MM": "C9",
    "reference": "k",
}
"""Family -> colour (matplotlib's tab10 cycle, one colour per family; references black)."""

SPARE_COLORS: tuple[str, ...] = ("#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#31a354")
"""Colours of families without an entry in :data:`FAMILY_COLORS`, picked by ``crc32(family)``."""

DEFAULT_READOUT = "grid argmax"
"""The readout of a name without a readout suffix (the grid argmax, or the estimator's own output)."""

READOUT_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("-APM", "multi-start joint ML"),
    ("-AP", "joint ML"),
    ("-MLB", "continuous ML, per-BS noise"),
    ("-ML", "continuous ML"),
    ("-MMSE", "posterior mean"),
    ("-Disk", "posterior 1 m disk"),
    ("-MAP", "joint MAP"),
    ("-R", "Algorithm 1"),
    ("-S", "sub-grid"),
)
"""(name suffix, readout), first match wins."""

_DASH_DOT_DOT = (0, (5, 1.5, 1, 1.5, 1, 1.5))
READOUT_STYLES: dict[str, tuple[Any, str]] = {
    DEFAULT_READOUT: ("-", "o"),
    "Algorithm 1": ("--", "s"),
    "sub-grid": ("-.", "D"),
    "continuous ML": (":", "^"),
    "continuous ML, per-BS noise": (":", "v"),
    "posterior mean": (_DASH_DOT_DOT, "P"),
    "posterior 1 m disk": (_DASH_DOT_DOT, "X"),
    "joint MAP": ((0, (3, 1)), "d"),
    "joint ML": ((0, (7, 2)), "<"),
    "multi-start joint ML": ((0, (7, 2, 1.5, 2)), ">"),
}
"""Readout -> (line style, marker)."""

REFERENCE_LINESTYLES: dict[str, Any] = {
    REFERENCE_LABELS["crb"]: "--",
    REFERENCE_LABELS["floor"]: ":",
    REFERENCE_LABELS["oracle"]: "-.",
}
"""Reference label -> line style (black, no marker)."""

MAX_CURVES = 6
"""The most method and reference curves a panel of :func:`daun_lib.studies.figures.redraw`'s figures draws."""

_VARIANT = re.compile(r"^(.+?) \((.+)\)$")


@dataclass(frozen=True)
class Style:
    """The look of one curve (:func:`style_of`)."""

    family: str
    readout: str
    variant: str | None
    color: str
    linestyle: Any
    marker: str

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``Axes.plot``: colour, line style, marker (open for a variant)."""
        return {
            "color": self.color,
            "ls": self.linestyle,
            "marker": self.marker,
            "mfc": "none" if self.variant is not None else self.color,
        }


def parse_method(name: str) -> tuple[str, str, str | None]:
    """``(family, readout, variant)`` of a method name by the rule of the module docstring.

    >>> parse_method("DAUN-R (loss 18)")
    ('DAUN', 'Algorithm 1', 'loss 18')
    >>> parse_method("DPD-peaks-APM")
    ('DPD', 'multi-start joint ML', None)
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name: expected a method name, got {name!r}")
    if name in REFERENCE_LINESTYLES:
        return "reference", name, None
    m = _VARIANT.match(name)
    base, variant = (m.group(1), m.group(2)) if m else (name, None)
    readout, stem = DEFAULT_READOUT, base
    for suffix, r in READOUT_SUFFIXES:
        if base.endswith(suffix) and len(base) > len(suffix):
            readout, stem = r, base[: -len(suffix)]
            break
    family = next((f for p, f in FAMILY_PREFIXES if base == p or base.startswith(p + "-")), stem)
    return family, readout, variant


def style_of(name: str, variant: str | None = None) -> Style:
    """The :class:`Style` of the curve of method ``name`` (module docstring); ``variant`` overrides the name's.

    Parameters
    ----------
    name : str
        A method name (``"DPD-S"``, ``"DAUN-MU-APM"``, ``"DAUN (loss 18)"``) or a reference label.
    variant : str, optional
        A variant that is not in the name (notebook 06 passes ``"2-D model"``).
    """
    family, readout, own = parse_method(name)
    if family == "reference":
        return Style(family, readout, None, FAMILY_COLORS["reference"], REFERENCE_LINESTYLES[name], "")
    color = FAMILY_COLORS.get(family) or SPARE_COLORS[zlib.crc32(family.encode()) % len(SPARE_COLORS)]
    ls, marker = READOUT_STYLES[readout]
    return Style(family, readout, variant if variant is not None else own, color, ls, marker)


def is_reference(name: str) -> bool:
    """True for the labels of :data:`daun_lib.studies.limits.REFERENCE_LABELS` (curves that are not methods)."""
    return name in REFERENCE_LINESTYLES


def _lower_is_better(key: str) -> bool:
    return not key.startswith("p_")


def best_per_family(
    rows: Sequence[Mapping[str, Any]], key: str, *, keep: Sequence[str] = (), lower_is_better: bool | None = None
) -> list[str]:
    """Per family (:func:`parse_method`), the method with the best mean of ``key`` over its rows, plus ``keep``.

    Parameters
    ----------
    rows : list of dict
        Rows with ``method`` and ``key`` (every row counts: all SNR points, all U ...).  References
        (:func:`is_reference`) and rows whose ``key`` is not a finite number are left out.
    key : str
        The metric, e.g. ``"p_submeter"``, ``"p_all_submeter"``, ``"mse"``.
    keep : list of str
        Methods always returned when present in ``rows`` (a figure states why).
    lower_is_better : bool, optional
        Default: higher is better for ``p_*`` keys, lower for the others.  Lower-is-better metrics are
        averaged in log10 (MSEs span decades) when all their values are positive.

    Returns
    -------
    list of str, in the order of first appearance in ``rows``; ties go to the first method.
    """
    if not isinstance(key, str):
        raise ValueError(f"key: expected a column name, got {key!r}")
    if isinstance(keep, str) or not all(isinstance(m, str) for m in keep):
        raise ValueError(f"keep: expected a list of method names, got {keep!r}")
    lower = _lower_is_better(key) if lower_is_better is None else bool(lower_is_better)
    values: dict[str, list[float]] = {}
    for r in rows:
        if not isinstance(r, Mapping) or "method" not in r:
            raise ValueError("rows: expected rows with a 'method'")
        v = r.get(key)
        if is_reference(r["method"]) or isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            continue
        values.setdefault(r["method"], []).append(float(v))
    best: dict[str, tuple[float, str]] = {}
    for m, vs in values.items():
        v = np.asarray(vs)
        score = float(np.mean(np.log10(v) if lower and np.all(v > 0) else v))
        score = score if lower else -score
        fam = parse_method(m)[0]
        if fam not in best or score < best[fam][0]:
            best[fam] = (score, m)
    chosen = {m for _, m in best.values()} | {m for m in keep if m in values}
    return [m for m in values if m in chosen]


def curve(
    ax: Any,
    x: Any,
    v: Any,
    se: Any,
    style: Style,
    label: str,
    logy: bool,
) -> None:
    """One curve in ``style`` with +-2 standard-error bars (``se`` may hold NaN: no bar).

    The line carries the label (so the legend shows line and marker, and ``ax.get_lines()`` counts the
    curve); the bars are an unlabelled ``errorbar`` in the same colour.  On a log axis the lower bar
    is capped at 0.9 of the value.
    """
    x, v = np.asarray(x, dtype=float), np.asarray(v, dtype=float)
    se2 = 2 * np.nan_to_num(np.asarray(se, dtype=float))
    ax.plot(x, v, label=label, **style.kwargs())
    if np.any(se2 > 0):
        yerr = np.vstack([np.minimum(se2, 0.9 * v), se2]) if logy else se2
        ax.errorbar(x, v, yerr=yerr, fmt="none", ecolor=style.color, capsize=1.5, elinewidth=0.5, label="_bars")


def panel_curves(ax: Any) -> list[str]:
    """Labels of the curves of a panel: its lines whose label does not start with ``"_"``."""
    return [ln.get_label() for ln in ax.get_lines() if not ln.get_label().startswith("_")]
