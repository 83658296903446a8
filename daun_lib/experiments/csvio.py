"""Result files: CSV rows with a JSON sidecar of the parameters and the machine, read back as dicts.

:func:`write_csv` writes ``name.csv`` and ``name.json`` atomically;
:func:`read_csv` and :func:`read_params` read them back;
:func:`reuse_or_write_csv` recomputes a result only when the sidecar of the
existing file holds other parameters; :func:`environment_info` describes the
machine for the sidecar.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import numbers
import os
import platform
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_text
from .._json import jsonable
from .cache import check_writable
from .keys import library_version


# ---------------------------------------------------------------------------
def _cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (Linux), else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment_info() -> dict[str, Any]:
    """Versions, platform, CPU count and the UTC date, for result sidecars."""
    info: dict[str, Any] = {
        "daun_lib": library_version(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:  # pragma: no cover
        info["torch"] = None
    info.update(_source_revision())
    return info


def _source_revision() -> dict[str, Any]:
    """``git_commit`` and ``git_dirty`` of the checkout that holds :mod:`daun_lib`, or ``{}`` when it is not
    a git checkout (an installed package) or git is missing.  ``git_dirty``: uncommitted changes to the code
    that makes results (``daun_lib``, ``notebooks``, ``benchmarks``; the results themselves do not count)."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return {}
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "daun_lib", "notebooks", "benchmarks"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    if head.returncode != 0:
        return {}
    return {"git_commit": head.stdout.strip(), "git_dirty": bool(dirty.stdout.strip())}


def _format_cell(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (numbers.Integral, np.integer)):
        return str(int(v))
    if isinstance(v, (numbers.Real, np.floating)):
        return repr(float(v))  # shortest round-trip form
    return "" if v is None else str(v)


def write_csv(
    rows: Iterable[Mapping[str, Any]], path: str | os.PathLike, params: Mapping[str, Any] | None = None
) -> Path:
    """Write ``rows`` to ``path`` (CSV) and ``path.with_suffix('.json')`` (sidecar).

    The columns are the keys of the rows in order of first appearance; floats
    are written in their shortest round-trip form.  The sidecar holds
    ``params`` (what produced the rows) and :func:`environment_info`.  Both
    files are written atomically; missing folders are created.  A path that
    cannot be written (read-only folder, a file where a folder should be)
    raises ``ValueError`` naming ``path`` before anything is written; call
    :func:`check_writable` before a long sweep to find out earlier.

    Returns
    -------
    Path of the CSV file.
    """
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path: expected a .csv file name (str or os.PathLike), got {path!r}")
    path = Path(path)
    if path.suffix.lower() != ".csv":
        raise ValueError(f"path: expected a .csv file name, got {os.fspath(path)!r}")
    rows = list(rows)
    if not rows or not all(isinstance(r, Mapping) for r in rows):
        raise ValueError("rows: expected a non-empty list of dicts")
    if params is not None and not isinstance(params, Mapping):
        raise ValueError(f"params: expected a dict, got {type(params).__name__}")
    try:
        params_json = jsonable(dict(params or {}))
    except TypeError as exc:
        raise ValueError(f"params: expected JSON-serialisable values ({exc})") from exc
    fields: list[str] = []
    for r in rows:
        fields.extend(k for k in r if k not in fields)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(fields)
    for r in rows:
        writer.writerow([_format_cell(r.get(k)) for k in fields])
    sidecar = {
        "file": path.name,
        "columns": fields,
        "n_rows": len(rows),
        "params": params_json,
        "environment": environment_info(),
    }
    check_writable(path, "path", directory=False)
    check_writable(path.with_suffix(".json"), "path", directory=False)
    try:
        atomic_write_text(path, buf.getvalue())
        atomic_write_text(
            path.with_suffix(".json"), json.dumps(sidecar, indent=1, sort_keys=True, allow_nan=True) + "\n"
        )
    except OSError as exc:
        raise ValueError(f"path: cannot write {os.fspath(path)!r} or its sidecar ({exc})") from exc
    return path


def _parse_cell(s: str) -> Any:
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return s


def read_csv(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of a CSV written by :func:`write_csv`; ints and floats converted, the rest kept as str."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path: no such file {os.fspath(path)!r}")
    with open(path, newline="", encoding="utf-8") as fh:
        return [{k: _parse_cell(v) for k, v in r.items()} for r in csv.DictReader(fh)]


def read_params(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON sidecar of a CSV written by :func:`write_csv`."""
    side = Path(path).with_suffix(".json")
    if not side.is_file():
        raise ValueError(f"path: no sidecar {os.fspath(side)!r}")
    return json.loads(side.read_text(encoding="utf-8"))


def reuse_or_write_csv(
    path: str | os.PathLike,
    params: Mapping[str, Any],
    compute: Callable[[], Iterable[Mapping[str, Any]]],
    *,
    force: bool = False,
) -> tuple[list[dict[str, Any]], bool]:
    """The rows of ``path``, recomputed with ``compute()`` only when its sidecar holds other ``params``.

    The existing file is reused when its JSON sidecar (:func:`read_params`)
    holds exactly ``params`` (compared as plain JSON) and ``force`` is False;
    otherwise ``compute()`` returns the rows, which :func:`write_csv` writes
    with ``params``.  Either way the rows are read back from the file.

    Parameters
    ----------
    path : path of a .csv file
    params : dict
        JSON-serialisable description of everything the rows depend on.
    compute : callable () -> list of dict
    force : bool
        Recompute even when the sidecar matches.

    Returns
    -------
    (rows, reused) : list of dict as :func:`read_csv` returns it, and whether the file was reused.
    """
    if not callable(compute):
        raise ValueError(f"compute: expected a callable returning the rows, got {type(compute).__name__}")
    if not isinstance(force, bool):
        raise ValueError(f"force: expected True or False, got {force!r}")
    if not isinstance(params, Mapping):
        raise ValueError(f"params: expected a dict, got {type(params).__name__}")
    try:
        plain = json.loads(json.dumps(jsonable(dict(params)), allow_nan=True))
    except TypeError as exc:
        raise ValueError(f"params: expected JSON-serialisable values ({exc})") from exc
    path = Path(path) if isinstance(path, (str, os.PathLike)) and not isinstance(path, bytes) else path
    reused = False
    if isinstance(path, Path) and path.is_file() and not force:
        try:
            reused = read_params(path).get("params") == plain
        except (ValueError, OSError):
            reused = False
    if not reused:
        write_csv(compute(), path, plain)
    return read_csv(path), reused


__all__ = ["environment_info", "read_csv", "read_params", "reuse_or_write_csv", "write_csv"]
