"""Accuracy measures of Sec. IV: MSE, probability of sub-metre error, their standard errors, NMSE.

Two entry points: from estimates and true positions (:func:`mse`,
:func:`p_within`), or from the per-trial errors ``||p_hat - p||_2`` that a
Monte Carlo sweep keeps (:func:`mean_squared_error`, :func:`fraction_within`,
:func:`median_error`, :func:`mse_stderr`, :func:`p_within_stderr`).
"""

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
    return mean_squared_error(position_errors(estimate, truth))


def p_within(estimate: Any, truth: Any, radius_m: float = 1.0) -> float:
    """Probability that the error is below ``radius_m`` (sub-metre precision, Fig. 2(b)).

    Parameters
    ----------
    estimate, truth : (n, 2) float
    radius_m : float > 0
    """
    return fraction_within(position_errors(estimate, truth), radius_m)


def _errors(errors: Any) -> np.ndarray:
    """``errors`` as a non-empty 1-D float array of finite, non-negative values (ValueError naming ``errors``)."""
    err = np.asarray(as_array(errors, "errors", 1, complex_ok=False), dtype=float)
    if err.size < 1:
        raise ValueError("errors: expected at least one error")
    if (err < 0).any():
        raise ValueError("errors: expected non-negative distances")
    return err


def mean_squared_error(errors: Any) -> float:
    """``MSE = mean(err^2)`` in m^2 from per-trial errors (Fig. 2(a)).

    Parameters
    ----------
    errors : (n,) float, metres, ``||p_hat - p||_2`` per trial
    """
    return float(np.mean(np.square(_errors(errors))))


def fraction_within(errors: Any, radius_m: float = 1.0) -> float:
    """``P(err < radius_m)`` estimated as the fraction of trials (Fig. 2(b)).

    Parameters
    ----------
    errors : (n,) float, metres
    radius_m : float > 0
    """
    radius_m = positive(radius_m, "radius_m")
    return float(np.mean(_errors(errors) < radius_m))


def median_error(errors: Any) -> float:
    """Median of the per-trial errors (m).

    Parameters
    ----------
    errors : (n,) float, metres
    """
    return float(np.median(_errors(errors)))


def mse_stderr(errors: Any) -> float:
    """Standard error of :func:`mean_squared_error`: ``std(err^2, ddof=1) / sqrt(n)``; NaN for one trial.

    Parameters
    ----------
    errors : (n,) float, metres
    """
    err = _errors(errors)
    return float(np.std(err**2, ddof=1) / np.sqrt(err.size)) if err.size > 1 else float("nan")


def p_within_stderr(errors: Any, radius_m: float = 1.0) -> float:
    """Binomial standard error of :func:`fraction_within`: ``sqrt(p (1 - p) / n)``.

    Parameters
    ----------
    errors : (n,) float, metres
    radius_m : float > 0
    """
    err = _errors(errors)
    p = fraction_within(err, radius_m)
    return float(np.sqrt(p * (1 - p) / err.size))


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
