"""Input checks shared by the public functions.

Every public function of :mod:`daun_lib` validates its arguments at the edge and
raises :class:`ValueError` with a message that names the argument and what was
expected.  Inner helpers trust their inputs.

This module is the one home of the checks that more than one module needs:
numbers (:func:`positive`, :func:`nonnegative`, :func:`finite_real`), arrays
(:func:`as_array`, :func:`real_array`), seeds (:func:`rng_from_seed`), and the
package's own objects: the scenario (:func:`check_scenario`), user positions
(:func:`positions`), received signals ``y`` (:func:`signals`,
:func:`reject_zero_samples`) and the NLoS weights of (3) (:func:`weights`).
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
        if not complex_ok and arr.is_complex():  # np.asarray(...).astype(float) would drop the imaginary part
            raise ValueError(f"{name}: expected a real array, got dtype {arr.dtype}")
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


def integer_at_least(value: Any, name: str, low: int) -> int:
    """Check that ``value`` is an int (not a bool) ``>= low``; returns it as ``int``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    return int(value)


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


def real_array(values: Any, name: str, expected: str) -> np.ndarray:
    """``values`` as a float64 numpy array; ValueError naming ``name`` for complex or non-numeric input.

    ``expected`` completes the message "``name``: expected ...".  No shape or finiteness check.
    """
    if np.iscomplexobj(values):
        raise ValueError(f"{name}: expected {expected}, got a complex array")
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected {expected}, got {type(values).__name__}") from exc


def positions(values: Any, name: str = "positions", *, allow_empty: bool = False) -> np.ndarray:
    """Check user positions: a finite real (n, 2) array, metres -> float64 numpy array.

    ``n = 0`` raises unless ``allow_empty``.
    """
    p = np.asarray(as_array(values, name, 2, complex_ok=False), dtype=float)
    if p.shape[1] != 2:
        raise ValueError(f"{name}: expected a finite (n, 2) array, got shape {p.shape}")
    if p.shape[0] < 1 and not allow_empty:
        raise ValueError(f"{name}: expected at least one position (n >= 1), got an empty (0, 2) batch")
    return p


def signals(y: Any, M: int, N: int, *, expected: str = "") -> Any:
    """Check received signals ``y`` (n, M, N) or (M, N) (numpy or torch) -> with a batch axis.

    Finite numeric values, the trailing shape ``(M, N)`` and ``n >= 1``.
    ``expected`` follows the expected shape in the message (e.g. " to match A (M, N, K)").
    The all-zero check is :func:`reject_zero_samples` (callers compute the sample norms anyway).
    """
    y = as_array(y, "y", (2, 3))
    if y.ndim == 2:
        y = y[None]
    if tuple(y.shape[1:]) != (M, N):
        raise ValueError(f"y: expected shape (n, {M}, {N}){expected}, got {tuple(y.shape)}")
    if y.shape[0] < 1:
        raise ValueError("y: expected at least one sample, got n = 0")
    return y


def reject_zero_samples(zero: Any) -> None:
    """Raise ``ValueError`` naming ``y`` when ``zero`` (indices of all-zero samples) is not empty."""
    zero = [int(i) for i in zero]
    if zero:
        raise ValueError(
            f"y: sample(s) {zero[:10]} are all zero: a zero signal carries no information about the position"
        )


def weights(w: Any, M: int) -> np.ndarray:
    """Check the NLoS weights ``w_m`` of (3): a positive number or M positive numbers -> (M,) float64."""
    try:
        w_arr = np.asarray(w.detach().cpu() if is_tensor(w) else w, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(
            f"w: expected a positive number or a length-{M} vector of positive weights, got {w!r}"
        ) from None
    if w_arr.ndim == 0:
        w_arr = np.full(M, float(w_arr))
    if w_arr.shape != (M,):
        raise ValueError(f"w: expected a scalar or a length-{M} vector (one weight per BS), got shape {w_arr.shape}")
    if not np.isfinite(w_arr).all() or (w_arr <= 0).any():
        raise ValueError(f"w: expected finite positive weights, got {w_arr}")
    return w_arr


def snr_db_per_sample(snr_db: Any, n: int, *, valid_range: tuple[float, float] | None = None) -> np.ndarray:
    """A finite real SNR in dB, one number or one per sample (n,) -> (n,) float64 (ValueError naming snr_db).

    ``valid_range`` (lo, hi) dB, optional: values outside it are refused.
    """
    if isinstance(snr_db, (bool, np.bool_)):
        raise ValueError(f"snr_db: expected a finite number or a length-{n} array (dB), got {snr_db!r}")
    s = np.asarray(as_array(snr_db, "snr_db", (0, 1), complex_ok=False), dtype=float)
    if s.ndim == 1 and s.shape[0] != n:
        raise ValueError(f"snr_db: expected a number or a length-{n} array (dB), got length {s.shape[0]}")
    if valid_range is not None:
        lo, hi = valid_range
        if s.size and ((s < lo).any() or (s > hi).any()):
            raise ValueError(
                f"snr_db: expected values in [{lo:g}, {hi:g}] dB (SNR_DB_RANGE), got min {s.min():g}, max {s.max():g}"
            )
    return np.broadcast_to(s, (n,)).copy()
