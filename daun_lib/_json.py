"""Plain JSON values for hashing and sidecars: one converter for numpy, paths, tuples and dataclasses."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from typing import Any

import numpy as np


def jsonable(obj: Any) -> Any:
    """``obj`` with plain JSON types: numpy scalars/arrays, tuples, paths and dataclass instances converted.

    Mappings become dicts with ``str`` keys, tuples and arrays become lists,
    numpy scalars their Python value, ``os.PathLike`` its path string, a
    dataclass instance the dict of its fields.  Anything else raises
    ``TypeError`` naming the type.
    """
    if is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def canonical(obj: Any) -> str:
    """Canonical JSON text of ``obj`` (sorted keys, no spaces, NaN allowed): the input of every hash."""
    return json.dumps(jsonable(obj), sort_keys=True, separators=(",", ":"), allow_nan=True)


__all__ = ["canonical", "jsonable"]
