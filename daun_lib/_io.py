"""Atomic file writes shared by every module that saves something (results, cache chunks, checkpoints, figures).

A file is written to a hidden temporary name in its own folder and renamed onto the target (``os.replace``,
atomic on POSIX and Windows), so a reader sees the old file or the new one, never half of one.  The temporary
file is removed on any exception, ``KeyboardInterrupt`` included; its name ``.<name>.<random>.tmp`` is ignored
by the repository's ``.gitignore`` as a second line of defence (a ``SIGKILL`` cannot be caught).  New files get
the usual permissions (``0o666`` less the umask).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["TMP_SUFFIX", "atomic_write_bytes", "atomic_write_text"]

TMP_SUFFIX = ".tmp"
"""Suffix of the temporary files (``.<name>.<8 hex digits>.tmp``)."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (the folder is created if needed); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{TMP_SUFFIX}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write_bytes` of ``text`` encoded as UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"))
