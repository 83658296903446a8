"""Accuracy measures of Sec. IV: MSE, probability of sub-metre error, NMSE."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import as_array, positive


def _pair(estimate: Any, truth: Any) -> tuple[np.ndarray, np.ndarray]:
    est = np.asarray(as_array(estimate, "estimate", 2, complex_ok=False), dtype=float)
    tru = np.asarray(as_array(truth, "truth", 2, complex_ok=False), dtype=float)
    if est.shape != tru.shape or est.shape[-1] != 2 or est.shape[0] < 1:
        raise ValueError(f"estimate, truth: expected two (n, 2) arrays of equal shape, got {est.shape} and {tru.shape}")
    return est, tru


def position_errors(estimate: Any, truth: Any) -> np.ndarray:
    """Euclidean errors ``||p_hat - p||_2``.

    Parameters
    ----------
    estimate, truth : (n, 2) float, metres

    Returns
    -------
    (n,) float, metres
    """
    est, tru = _pair(estimate, truth)
    return np.linalg.norm(est - tru, axis=1)


def mse(estimate: Any, truth: Any) -> float:
    """``MSE = E ||p_hat - p||_2^2`` in m^2 (Fig. 2(a)).

    Parameters
    ----------
    estimate, truth : (n, 2) float
    """
    return float(np.mean(np.square(position_errors(estimate, truth))))


def p_within(estimate: Any, truth: Any, radius_m: float = 1.0) -> float:
    """Probability that the error is below ``radius_m`` (sub-metre precision, Fig. 2(b)).

    Parameters
    ----------
    estimate, truth : (n, 2) float
    radius_m : float > 0
    """
    radius_m = positive(radius_m, "radius_m")
    return float(np.mean(position_errors(estimate, truth) < radius_m))


def nmse(y: Any, residual: Any) -> float:
    """``NMSE = E||y - A x - B z||^2 / E||y||^2`` (Fig. 3), from ``y`` and the residual.

    Parameters
    ----------
    y : (n, M, N) complex
    residual : (n, M, N) complex, ``y - A x - B z``
    """
    y = np.asarray(as_array(y, "y", 3))
    r = np.asarray(as_array(residual, "residual", 3))
    if y.shape != r.shape:
        raise ValueError(f"residual: expected the shape of y {y.shape}, got {r.shape}")
    den = float(np.sum(np.abs(y) ** 2))
    if den == 0.0:
        raise ValueError("y: all zero, NMSE undefined")
    return float(np.sum(np.abs(r) ** 2)) / den
