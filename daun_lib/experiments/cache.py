r"""The on-disk cache of an accuracy sweep: chunk files, checksums, validation, writability checks.

Layout
------
One folder per method and parameter set, ``cache_dir/<method>-<hash>/``
(:func:`daun_lib.experiments.keys.sweep_folder`).  The folder holds
``params.json`` (what was hashed) and one ``snr<j>-t<t0>-<t1>.npz`` per SNR
point and trial range with the arrays ``trials`` (n,) int64, ``errors`` (n,),
``estimates`` and ``positions`` (n, 2) float64, ``snr_db`` (a float64
scalar), ``los`` (n, M) bool when the generator returns it, and
``checksum``: the SHA-256 of the names, dtypes, shapes and bytes of all the
other arrays.

Files are written to a temporary name and renamed (``os.replace``), so an
interrupted run leaves only complete chunks; a rerun loads them and computes
the rest.  Every chunk is checked on load: readable
(``allow_pickle=False``), all arrays present with the shapes and dtypes
above, the checksum, finite values, the trial range and SNR value of its
file name, and ``errors == ||estimates - positions||`` recomputed.  A chunk
that fails any check is treated as missing: a :class:`CacheWarning` names
the file and the reason, the chunk is recomputed and the file replaced.

A sweep with ``n_users = U >= 2`` (issue 14) stores ``errors`` (n, U),
``estimates`` and ``positions`` (n, U, 2) and ``los`` (n, U, M) in the same
files, checked the same way, with ``errors`` recomputed by the optimal
assignment (:func:`daun_lib.metrics.assigned_errors`); its folder name hashes
``n_users``, so it never shares chunks with a single-user sweep.

Nothing is written when nothing needs computing, so a complete cache can be
read from a read-only folder; ``params.json`` is written only when missing
or different.  When chunks do need computing, ``cache_dir`` must be a
writable folder (or creatable below one): :func:`check_writable` tests that
before the first chunk runs, and does the same for a results path.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_bytes, atomic_write_text
from .._json import jsonable
from ..metrics import assigned_errors


class CacheWarning(UserWarning):
    """A cached chunk was unreadable or failed a check and is recomputed."""


def _save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def check_writable(path_or_dir: str | os.PathLike, name: str = "path", *, directory: bool | None = None) -> Path:
    """Fail now, with a clear message, if files cannot be written at ``path_or_dir``.

    Call it in a notebook before a long sweep on the folder or file the
    results go to, so that a read-only results folder fails before the
    sweep and not after it.  An existing folder must accept a new file; an
    existing file must sit in a folder that accepts one (it is replaced
    atomically); a path that does not exist yet must lie below a writable
    folder, with no file in the way.  The test writes and deletes an empty
    temporary file and creates no folders.

    Parameters
    ----------
    path_or_dir : str or path
        A folder (e.g. ``cache_dir``) or a file to be written (e.g. a CSV).
    name : str
        The argument's name, used in the error message.
    directory : bool, optional
        True: the path must be a folder (an existing file there is an error);
        False: it must be a file name (an existing folder there is an error);
        None: either.

    Returns
    -------
    Path
        ``Path(path_or_dir)``.

    Raises
    ------
    ValueError
        Naming ``name`` and the reason.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name: expected a non-empty str, got {name!r}")
    if directory is not None and not isinstance(directory, bool):
        raise ValueError(f"directory: expected True, False or None, got {directory!r}")
    if isinstance(path_or_dir, bytes) or not isinstance(path_or_dir, (str, os.PathLike)) or not os.fspath(path_or_dir):
        raise ValueError(f"{name}: expected a non-empty path (str or os.PathLike), got {path_or_dir!r}")
    path = Path(path_or_dir)
    shown = os.fspath(path)
    if path.is_dir():
        if directory is False:
            raise ValueError(f"{name}: {shown!r} is a folder, expected a file name")
        folder = path
    elif path.exists():
        if directory is True:
            raise ValueError(f"{name}: {shown!r} is an existing file, expected a folder")
        folder = path.parent
    else:
        folder = path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"{name}: cannot create {shown!r}: {os.fspath(folder)!r} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".daun-write-test-", dir=folder)
    except OSError as exc:
        raise ValueError(
            f"{name}: cannot write below {shown!r}: folder {os.fspath(folder)!r} is not writable "
            f"({exc.strerror or exc}); choose a writable location"
        ) from exc
    os.close(fd)
    os.unlink(probe)
    return path


def check_cache_dir(cache_dir: Any) -> Path | None:
    """``Path(cache_dir)``; ValueError when it is not a path or a file is in the way."""
    if cache_dir is None:
        return None
    if isinstance(cache_dir, bytes) or not isinstance(cache_dir, (str, os.PathLike)) or not os.fspath(cache_dir):
        raise ValueError(f"cache_dir: expected a folder path (str or os.PathLike) or None, got {cache_dir!r}")
    path = Path(cache_dir)
    if path.exists() and not path.is_dir():
        raise ValueError(f"cache_dir: {os.fspath(path)!r} is an existing file, expected a folder (or None: no cache)")
    if not path.exists():
        above = path.parent
        while not above.exists() and above != above.parent:
            above = above.parent
        if above.exists() and not above.is_dir():
            raise ValueError(
                f"cache_dir: cannot create {os.fspath(path)!r}: {os.fspath(above)!r} is a file, not a folder"
            )
    return path


def chunk_path(folder: Path, j: int, t0: int, t1: int) -> Path:
    return folder / f"snr{j:03d}-t{t0:07d}-{t1:07d}.npz"


_CHUNK_REQUIRED = ("trials", "errors", "estimates", "positions", "snr_db", "checksum")
_CHUNK_OPTIONAL = ("los",)


def arrays_checksum(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of every array but ``checksum``."""
    h = hashlib.sha256()
    for key in sorted(k for k in arrays if k != "checksum"):
        a = np.ascontiguousarray(arrays[key])
        h.update(f"{key}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_chunk(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` with their checksum (:func:`arrays_checksum`, as array ``checksum``) to ``path``, atomically."""
    _save_npz(path, {**arrays, "checksum": np.array(arrays_checksum(arrays))})


def _chunk_problem(
    arrays: Mapping[str, np.ndarray], t0: int, t1: int, snr: float, n_bs: int | None, n_users: int = 1
) -> str | None:
    """Why the arrays of a chunk cannot be used (None when they can); ``n_users`` users per trial."""
    missing = [k for k in _CHUNK_REQUIRED if k not in arrays]
    if missing:
        return f"arrays {missing} missing"
    unknown = sorted(set(arrays) - set(_CHUNK_REQUIRED) - set(_CHUNK_OPTIONAL))
    if unknown:
        return f"unexpected arrays {unknown}"
    checksum = arrays["checksum"]
    if checksum.shape != () or checksum.dtype.kind != "U" or str(checksum) != arrays_checksum(arrays):
        return "checksum mismatch"
    n = t1 - t0
    users = (n_users,) if n_users > 1 else ()
    expected = {
        "trials": ((n,), np.int64),
        "errors": ((n, *users), np.float64),
        "estimates": ((n, *users, 2), np.float64),
        "positions": ((n, *users, 2), np.float64),
        "snr_db": ((), np.float64),
    }
    if "los" in arrays:
        ndim = 2 + len(users)
        m = n_bs if n_bs is not None else (arrays["los"].shape[-1] if arrays["los"].ndim == ndim else -1)
        expected["los"] = ((n, *users, m), np.bool_)
    for key, (shape, dtype) in expected.items():
        a = arrays[key]
        if a.shape != shape or a.dtype != dtype:
            return f"{key} has shape {a.shape} and dtype {a.dtype}, expected {shape} and {np.dtype(dtype)}"
    for key in ("errors", "estimates", "positions", "snr_db"):
        bad = int(np.size(arrays[key]) - np.isfinite(arrays[key]).sum())
        if bad:
            return f"{key} has {bad} non-finite entries"
    if not np.array_equal(arrays["trials"], np.arange(t0, t1)):
        return f"trials are not {t0}..{t1 - 1}"
    if float(arrays["snr_db"]) != snr:
        return f"snr_db is {float(arrays['snr_db'])}, expected {snr}"
    if n_users > 1:
        recomputed = assigned_errors(arrays["estimates"], arrays["positions"])
        if not np.allclose(arrays["errors"], recomputed, rtol=1e-12, atol=1e-12):
            return "errors differ from the assigned errors of estimates and positions"
        return None
    recomputed = np.linalg.norm(arrays["estimates"] - arrays["positions"], axis=1)
    if not np.allclose(arrays["errors"], recomputed, rtol=1e-12, atol=1e-12):
        return "errors differ from ||estimates - positions||"
    return None


def load_chunk(path: Path, t0: int, t1: int, snr: float, n_bs: int | None, n_users: int = 1) -> dict | None:
    """The checked arrays of a cached chunk (without ``checksum``), or None when missing or damaged.

    ``n_users``: users per trial (the shapes of :func:`_chunk_problem`).

    A damaged chunk (unreadable, or failing a check of :func:`_chunk_problem`)
    gives a :class:`CacheWarning` naming the file and the reason.
    """
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as f:  # our handle: closed also on errors
            arrays = {k: f[k] for k in f.files}
    except Exception as exc:  # noqa: BLE001 - BadZipFile, zlib/CRC errors, ValueError, OSError ...: all "damaged"
        problem = f"unreadable: {type(exc).__name__}: {exc}"
    else:
        problem = _chunk_problem(arrays, t0, t1, snr, n_bs, n_users)
    if problem is not None:
        warnings.warn(
            f"cache chunk {os.fspath(path)!r} is damaged ({problem}); recomputing it", CacheWarning, stacklevel=3
        )
        return None
    arrays.pop("checksum")
    return arrays


def prepare_folder(folder: Path, params: Mapping[str, Any], *, force: bool) -> None:
    """Create ``folder`` (below a checked ``cache_dir``), check it is writable, write its ``params.json``.

    With ``force`` the chunk files of the folder are deleted first.
    ``params.json`` is written only when missing or different.  ValueError
    naming ``cache_dir`` when the folder cannot be created or written.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cache_dir: cannot create the folder {os.fspath(folder)!r} ({exc})") from exc
    check_writable(folder, "cache_dir", directory=True)
    if force:
        for old in folder.glob("snr*-t*.npz"):
            old.unlink()
    text = json.dumps(jsonable(params), indent=1, sort_keys=True) + "\n"
    target = folder / "params.json"
    try:
        current = target.read_text(encoding="utf-8") if target.is_file() else None
    except (OSError, UnicodeDecodeError):
        current = None
    if current != text:
        atomic_write_text(target, text)


__all__ = ["CacheWarning", "arrays_checksum", "check_writable", "prepare_folder", "save_chunk"]
