"""Share a map among the estimators that read the same snapshots (issue 21).

A sweep calls every method of a chunk on one array ``y`` (n, M, N).  Several
methods compute the same intermediate from it: the four readouts of
``P-ADMM-peaks`` each ran P-ADMM's 300 iterations, ``DPD-MMSE`` and
``DPD-Disk`` the same posterior.  Inside :func:`sharing` such an intermediate
is computed once and handed to every later caller with the same key::

    with sharing():
        a = shared(("map", fingerprint_of_the_map), y, lambda: expensive(y))
        b = shared(("map", fingerprint_of_the_map), y, lambda: expensive(y))  # a, not recomputed

Correctness rests on the key, which the caller builds from everything that
determines the value apart from ``y`` (the estimator's fields other than its
readout, the scenario); ``y`` enters by its content: shape, dtype and a
BLAKE2b digest of its bytes (validation may hand each method its own copy of
the same snapshots, so identity would not do).  Outside :func:`sharing`
:func:`shared` just computes.  The memo lives for one ``with`` block (one
chunk) and no cache key on disk changes: a method's results are
bit-identical with and without sharing, because the shared value is what it
would have computed itself.  Shared numpy arrays are made read-only, so a
caller that writes into one fails instead of corrupting the next reader.

Values above ``max_bytes`` in all (default 1 GiB) are computed but not kept.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
from collections.abc import Callable, Hashable, Iterator
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

MAX_BYTES = 1 << 30
"""Default bound on the bytes the memo of one :func:`sharing` block keeps."""


class _Memo:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.values: dict[Hashable, Any] = {}
        self.digests: dict[int, tuple[np.ndarray, str]] = {}  # id -> (the array, kept alive; its digest)
        self.hits = 0
        self.misses = 0


_ACTIVE: contextvars.ContextVar[_Memo | None] = contextvars.ContextVar("daun_lib_memo", default=None)


def _nbytes(value: Any) -> int:
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, (tuple, list)):
        return sum(_nbytes(v) for v in value)
    if isinstance(value, dict):
        return sum(_nbytes(v) for v in value.values())
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    numel = getattr(value, "numel", None)  # torch tensors
    if callable(numel):
        return int(numel()) * int(getattr(value, "element_size", lambda: 8)())
    return 64


def _digest(memo: _Memo, y: np.ndarray) -> str:
    seen = memo.digests.get(id(y))
    if seen is not None and seen[0] is y and not y.flags.writeable:
        return seen[1]  # a read-only array seen before: its bytes cannot have changed
    digest = hashlib.blake2b(np.ascontiguousarray(y).view(np.uint8).data, digest_size=20).hexdigest()
    memo.digests[id(y)] = (y, digest)
    return digest


def _freeze(value: Any) -> None:
    """Make shared numpy arrays read-only, so that a caller writing into one fails loudly."""
    if isinstance(value, np.ndarray):
        value.setflags(write=False)
    elif isinstance(value, (tuple, list)):
        for v in value:
            _freeze(v)


@contextlib.contextmanager
def sharing(max_bytes: int = MAX_BYTES) -> Iterator[_Memo]:
    """Within the block, :func:`shared` computes each keyed value once; yields the memo (hits, misses)."""
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
        raise ValueError(f"max_bytes: expected a non-negative integer, got {max_bytes!r}")
    memo = _Memo(max_bytes)
    token = _ACTIVE.set(memo)
    try:
        yield memo
    finally:
        _ACTIVE.reset(token)
        memo.values.clear()
        memo.digests.clear()


def active() -> bool:
    """Whether a :func:`sharing` block is open in this context."""
    return _ACTIVE.get() is not None


def shared(key: Hashable, y: np.ndarray, compute: Callable[[], T]) -> T:
    """``compute()``, or the value already computed for ``(key, y)`` in the open :func:`sharing` block.

    ``key`` must hold everything except ``y`` that determines the value; ``y`` is matched by
    shape, dtype and a digest of its bytes.  Returned numpy arrays are read-only.
    """
    memo = _ACTIVE.get()
    if memo is None:
        return compute()
    if not isinstance(y, np.ndarray):
        raise ValueError(f"y: expected a numpy array to key the shared value on, got {type(y).__name__}")
    full = (key, y.shape, y.dtype.str, _digest(memo, y))
    if full in memo.values:
        memo.hits += 1
        return memo.values[full]
    memo.misses += 1
    value = compute()
    size = _nbytes(value)
    if memo.bytes + size <= memo.max_bytes:
        _freeze(value)
        memo.values[full] = value
        memo.bytes += size
    return value


__all__ = ["MAX_BYTES", "active", "shared", "sharing"]
