"""Keys of a sweep: per-trial seeds, parameter hashes, callable keys and cache folder names.

Trial seeds: ``trial_seed(seed, j, t) = SeedSequence(seed, spawn_key=(j, t))``
reduced to one 64-bit integer, so the data of trial ``t`` at SNR point ``j``
depend on the master seed, ``j`` and ``t`` only (common random numbers).

Folder names: ``cache_dir/<method>-<hash>``, where ``hash`` is the first 16
hex digits of the SHA-256 of the canonical JSON of the hashed parameters
(:func:`params_hash`).  How a callable is keyed: :func:`daun_lib._fingerprint.fingerprint`
(the package docstring of :mod:`daun_lib.experiments` says what that covers).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._fingerprint import fingerprint
from .._json import canonical, jsonable
from .._validation import integer_at_least

CACHE_FORMAT = 2
"""Version of the chunk-file layout and of the callable keys; part of the hash.

2: callables keyed by fingerprint, chunks with a checksum (1: keyed by name)."""


def trial_seed(seed: int, snr_index: int, trial: int) -> int:
    """Seed of the data of trial ``trial`` at SNR point ``snr_index``.

    ``SeedSequence(seed, spawn_key=(snr_index, trial))`` reduced to one 64-bit
    integer; pass it to ``channel.simulate(scenario, 1, snr_db, seed=...)`` to
    regenerate exactly the data the sweep used.  Each argument is an integer >= 0 (else
    ``ValueError`` naming it).
    """
    seed, snr_index, trial = (
        integer_at_least(v, name, 0) for v, name in ((seed, "seed"), (snr_index, "snr_index"), (trial, "trial"))
    )
    ss = np.random.SeedSequence(seed, spawn_key=(snr_index, trial))
    return int(ss.generate_state(1, dtype=np.uint64)[0])


def params_hash(params: Mapping[str, Any]) -> str:
    """First 16 hex digits of the SHA-256 of the canonical JSON of ``params``.

    ``params`` is a mapping of JSON values (numpy values, tuples, paths and dataclasses converted,
    :func:`daun_lib._json.jsonable`); anything else raises ``ValueError`` naming its key path.
    """
    if not isinstance(params, Mapping):
        raise ValueError(f"params: expected a mapping of parameter names to JSON values, got {type(params).__name__}")
    try:
        text = canonical(params)
    except TypeError as exc:
        raise ValueError(f"{_unjsonable_path(params, 'params')}: {exc} (a parameter must be a JSON value)") from None
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _unjsonable_path(obj: Any, path: str) -> str:
    """The key path (``params['a'][0]``) of the first value in ``obj`` that :func:`jsonable` refuses."""
    if is_dataclass(obj) and not isinstance(obj, type):
        obj = asdict(obj)
    items = obj.items() if isinstance(obj, Mapping) else enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    for key, value in items:
        try:
            jsonable(value)
        except TypeError:
            return _unjsonable_path(value, f"{path}[{key!r}]")
    return path


def source_digest() -> str:
    """SHA-256 (16 hex digits) of every ``daun_lib`` module and shipped weights file.

    The cache hash holds the ``daun_lib`` version, which an edit of the code
    does not change.  Pass ``extra={"code": source_digest()}`` to
    :func:`accuracy_sweep` to recompute whenever any module changes (also
    after edits that cannot change the results, such as docstrings).
    """
    h = hashlib.sha256()
    root = Path(__file__).resolve().parent.parent  # the daun_lib package folder
    files = list(root.rglob("*.py")) + list(root.glob("weights/*.pt"))
    for path in sorted(files):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "method"


def library_version() -> str:
    from .. import __version__

    return __version__


def callable_id(fn: Callable) -> str:
    """``module.qualname`` of a callable: a readable label, not a key (see :func:`callable_key`)."""
    mod = getattr(fn, "__module__", None) or type(fn).__module__
    qual = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{mod}.{qual}"


def callable_key(fn: Callable, name: str) -> str:
    """The cache key of a method or generator: :func:`daun_lib._fingerprint.fingerprint` (:mod:`daun_lib.experiments`).

    Raises ``ValueError`` naming ``name`` when ``fn`` cannot be keyed.
    """
    return fingerprint(fn, name=name)


def sweep_folder(cache_dir: str | os.PathLike, method: str, params: Mapping[str, Any]) -> Path:
    """``cache_dir/<method>-<hash>`` for the hashed ``params`` of one method."""
    if not isinstance(cache_dir, (str, os.PathLike)):
        raise ValueError(f"cache_dir: expected a path (str or os.PathLike), got {type(cache_dir).__name__}")
    if not isinstance(method, str):
        raise ValueError(f"method: expected a method name (str), got {type(method).__name__}")
    return Path(cache_dir) / f"{_slug(method)}-{params_hash(params)}"


__all__ = ["CACHE_FORMAT", "params_hash", "source_digest", "sweep_folder", "trial_seed"]
