"""Figure helpers: the package matplotlib style and one ``save_figure`` for PDF + PNG."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import matplotlib

from .._io import atomic_write_bytes

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
