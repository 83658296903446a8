"""Figure helpers: the package matplotlib style and one ``save_figure`` for PDF + PNG."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import matplotlib

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


def save_figure(fig: "matplotlib.figure.Figure", name: str, directory: str | os.PathLike = "figures",
                formats: tuple[str, ...] = ("pdf", "png")) -> list[Path]:
    """Save ``fig`` as ``directory/name.<fmt>`` for every format; returns the paths.

    Files are written to a temporary name first and renamed, so an interrupted
    run never leaves a half-written figure.
    """
    if not isinstance(name, str) or not name or os.sep in name:
        raise ValueError(f"name: expected a plain file stem such as 'fig2a', got {name!r}")
    if not formats:
        raise ValueError("formats: expected at least one format")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out / f"{name}.{fmt}"
        tmp = out / f".{name}.tmp.{fmt}"
        meta = {"CreationDate": None} if fmt == "pdf" else ({"Software": None} if fmt == "png" else None)
        fig.savefig(tmp, format=fmt, metadata=meta)
        os.replace(tmp, path)
        paths.append(path)
    return paths
