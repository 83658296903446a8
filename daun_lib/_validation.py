"""Input checks shared by the public functions.

Every public function of :mod:`daun_lib` validates its arguments at the edge and
raises :class:`ValueError` with a message that names the argument and what was
expected.  Inner helpers trust their inputs.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

try:  # torch is a core dependency, but keep the checks importable without it
    import torch
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment]


def is_tensor(x: Any) -> bool:
    """True when ``x`` is a torch tensor."""
    return torch is not None and isinstance(x, torch.Tensor)


def as_array(x: Any, name: str, ndim: int | tuple[int, ...], *, complex_ok: bool = True) -> Any:
    """Check that ``x`` is a finite numeric array (numpy or torch) of ``ndim`` dims.

    Returns ``x`` unchanged when it is a tensor, else ``np.asarray(x)``.
    """
    dims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if is_tensor(x):
        arr = x
        if not (arr.is_floating_point() or arr.is_complex()):
            raise ValueError(f"{name}: expected a floating or complex tensor, got dtype {arr.dtype}")
        finite = bool(torch.isfinite(arr).all()) if arr.numel() else True
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # noqa: BLE001 - report any conversion failure the same way
            raise ValueError(f"{name}: expected an array, got {type(x).__name__}") from exc
        if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
            raise ValueError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
        if not complex_ok and np.iscomplexobj(arr):
            raise ValueError(f"{name}: expected a real array, got dtype {arr.dtype}")
        finite = bool(np.isfinite(arr).all()) if arr.size else True
    if arr.ndim not in dims:
        want = " or ".join(str(d) for d in dims)
        raise ValueError(f"{name}: expected a {want}-D array, got shape {tuple(arr.shape)}")
    if not finite:
        raise ValueError(f"{name}: contains NaN or inf")
    return arr


def positive(value: Any, name: str, *, integer: bool = False) -> Any:
    """Check that ``value`` is a finite positive number (an int when ``integer``)."""
    if integer:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        return int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: expected a finite positive number, got {value!r}")
    return float(value)


def nonnegative(value: Any, name: str) -> float:
    """Check that ``value`` is a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    return float(value)


def finite_real(value: Any, name: str) -> float:
    """Check that ``value`` is a finite real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name}: expected a finite real number, got {value!r}")
    return float(value)


def rng_from_seed(seed: Any) -> np.random.Generator:
    """Turn ``seed`` (int, None or a Generator) into a numpy Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0):
        return np.random.default_rng(seed)
    raise ValueError(f"seed: expected a non-negative int, None or numpy.random.Generator, got {seed!r}")
