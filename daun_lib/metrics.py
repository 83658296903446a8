"""Accuracy measures of Sec. IV: MSE, probability of sub-metre error, their standard errors, NMSE.

Two entry points: from estimates and true positions (:func:`mse`,
:func:`p_within`), or from the per-trial errors ``||p_hat - p||_2`` that a
Monte Carlo sweep keeps (:func:`mean_squared_error`, :func:`fraction_within`,
:func:`median_error`, :func:`mse_stderr`, :func:`p_within_stderr`).

Several users in one snapshot (issue 14): :func:`assigned_errors` pairs the U
estimates of a sample with its U true positions by the optimal assignment
(minimum sum of distances, the linear assignment problem that
``scipy.optimize.linear_sum_assignment`` solves) and returns the (n, U) errors;
:func:`fraction_all_within` is P(every user < radius), :func:`fraction_within_per_user`
and :func:`mse_per_user` average over users and trials, each with its standard
error (the sample, not the user, is the independent unit: users of one
snapshot share the noise draw).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from ._validation import as_array, positive

__all__ = [
    "position_errors",
    "mse",
    "p_within",
    "mean_squared_error",
    "fraction_within",
    "median_error",
    "mse_stderr",
    "p_within_stderr",
    "nmse",
    "assigned_errors",
    "fraction_all_within",
    "fraction_all_within_stderr",
    "fraction_within_per_user",
    "fraction_within_per_user_stderr",
    "mse_per_user",
    "mse_per_user_stderr",
    "median_error_per_user",
    "ENUMERATE_MAX_USERS",
]


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


# --- several users per sample (issue 14) -------------------------------------------------------------------------

#: Largest U for which :func:`assigned_errors` enumerates all U! permutations at once (5! = 120 candidates per
#: sample); above it, ``scipy.optimize.linear_sum_assignment`` runs per sample.
ENUMERATE_MAX_USERS = 5


def _user_pair(estimate: Any, truth: Any) -> tuple[np.ndarray, np.ndarray]:
    est = np.asarray(as_array(estimate, "estimate", 3, complex_ok=False), dtype=float)
    tru = np.asarray(as_array(truth, "truth", 3, complex_ok=False), dtype=float)
    if est.shape != tru.shape or est.shape[-1] != 2 or est.shape[0] < 1 or est.shape[1] < 1:
        raise ValueError(
            f"estimate, truth: expected two (n, U, 2) arrays of equal shape with n, U >= 1, "
            f"got {est.shape} and {tru.shape}"
        )
    return est, tru


def assigned_errors(estimate: Any, truth: Any) -> np.ndarray:
    """Per-user errors after the optimal assignment of estimates to users, sample by sample.

    For each sample i the (U, U) matrix ``D[u, v] = ||truth[i, u] - estimate[i, v]||_2`` is formed and the
    permutation ``pi`` that minimises ``sum_u D[u, pi(u)]`` (the linear assignment problem,
    ``scipy.optimize.linear_sum_assignment``) is chosen; ``errors[i, u] = D[u, pi(u)]``. The order of the
    estimates is therefore irrelevant, and the errors are listed in the order of the true users. For U = 1
    this is the plain distance :func:`position_errors`. Up to ``ENUMERATE_MAX_USERS`` users every
    permutation is scored at once (vectorised; the first minimiser in ``itertools.permutations`` order wins
    a tie, the identity first); above, scipy solves each sample.

    Parameters
    ----------
    estimate : (n, U, 2) float, metres, estimated positions in any order per sample
    truth : (n, U, 2) float, metres, true positions

    Returns
    -------
    (n, U) float, metres
    """
    est, tru = _user_pair(estimate, truth)
    n, n_users, _ = est.shape
    dist = np.linalg.norm(tru[:, :, None, :] - est[:, None, :, :], axis=-1)  # (n, U_true, U_est)
    if n_users == 1:
        return dist[:, :, 0]
    rows = np.arange(n_users)
    if n_users <= ENUMERATE_MAX_USERS:
        perms = np.array(list(itertools.permutations(range(n_users))))  # (P, U)
        cand = dist[:, rows[None, :], perms]  # (n, P, U)
        best = np.argmin(cand.sum(axis=2), axis=1)  # (n,)
        return cand[np.arange(n), best]
    out = np.empty((n, n_users))
    for i in range(n):
        r, c = linear_sum_assignment(dist[i])
        out[i, r] = dist[i, r, c]
    return out


def _user_errors(errors: Any) -> np.ndarray:
    """``errors`` as a non-empty (n, U) float array of finite, non-negative values (ValueError naming ``errors``)."""
    err = np.asarray(as_array(errors, "errors", 2, complex_ok=False), dtype=float)
    if err.shape[0] < 1 or err.shape[1] < 1:
        raise ValueError(f"errors: expected an (n, U) array with n, U >= 1, got shape {err.shape}")
    if (err < 0).any():
        raise ValueError("errors: expected non-negative distances")
    return err


def fraction_all_within(errors: Any, radius_m: float = 1.0) -> float:
    """``P(every user's error < radius_m)``: the fraction of samples whose U errors are all below the radius.

    Parameters
    ----------
    errors : (n, U) float, metres, e.g. from :func:`assigned_errors`
    radius_m : float > 0
    """
    radius_m = positive(radius_m, "radius_m")
    return float(np.mean(np.all(_user_errors(errors) < radius_m, axis=1)))


def fraction_all_within_stderr(errors: Any, radius_m: float = 1.0) -> float:
    """Binomial standard error of :func:`fraction_all_within`: ``sqrt(p (1 - p) / n)``, n samples.

    Parameters
    ----------
    errors : (n, U) float, metres
    radius_m : float > 0
    """
    err = _user_errors(errors)
    p = fraction_all_within(err, radius_m)
    return float(np.sqrt(p * (1 - p) / err.shape[0]))


def fraction_within_per_user(errors: Any, radius_m: float = 1.0) -> float:
    """Per-user ``P(err < radius_m)``: the fraction of all (sample, user) errors below the radius.

    Parameters
    ----------
    errors : (n, U) float, metres
    radius_m : float > 0
    """
    radius_m = positive(radius_m, "radius_m")
    return float(np.mean(_user_errors(errors) < radius_m))


def fraction_within_per_user_stderr(errors: Any, radius_m: float = 1.0) -> float:
    """Standard error of :func:`fraction_within_per_user`, with the sample as the independent unit.

    ``std(f_i, ddof=1) / sqrt(n)`` where ``f_i`` is the fraction of sample i's users within the radius (users
    of one sample share the noise and interfere, so they are not independent); NaN for one sample.

    Parameters
    ----------
    errors : (n, U) float, metres
    radius_m : float > 0
    """
    radius_m = positive(radius_m, "radius_m")
    err = _user_errors(errors)
    if err.shape[0] < 2:
        return float("nan")
    frac = np.mean(err < radius_m, axis=1)
    return float(np.std(frac, ddof=1) / np.sqrt(err.shape[0]))


def mse_per_user(errors: Any) -> float:
    """MSE per user, ``mean over samples and users of err^2`` in m^2.

    Parameters
    ----------
    errors : (n, U) float, metres
    """
    return float(np.mean(np.square(_user_errors(errors))))


def mse_per_user_stderr(errors: Any) -> float:
    """Standard error of :func:`mse_per_user`: ``std(e_i, ddof=1) / sqrt(n)`` with ``e_i`` the mean squared
    error over sample i's users (the sample is the independent unit); NaN for one sample.

    Parameters
    ----------
    errors : (n, U) float, metres
    """
    err = _user_errors(errors)
    if err.shape[0] < 2:
        return float("nan")
    per_sample = np.mean(np.square(err), axis=1)
    return float(np.std(per_sample, ddof=1) / np.sqrt(err.shape[0]))


def median_error_per_user(errors: Any) -> float:
    """Median of all (sample, user) errors (m).

    Parameters
    ----------
    errors : (n, U) float, metres
    """
    return float(np.median(_user_errors(errors)))
