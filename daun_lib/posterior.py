r"""The Bayesian position posterior: posterior mean (MMSE), disk MAP, MAP and a LoS/NLoS mixture.

The posterior itself (signal model (1), the LoS likelihood with known gain modulus and unknown
phase, the NLoS likelihood, the SNR estimate, the LoS prior and the grid of candidates) is
derived and computed in :mod:`daun_lib._posterior_grid`, whose public names are re-exported
here (:class:`PosteriorParams`, :func:`candidates`, :func:`estimate_omega`,
:func:`log_posterior`, :func:`los_posterior`, :func:`state_log_posterior`).  This module reads
positions out of it, block by block of samples: :func:`posterior_mean`, :func:`map_position`
and :func:`disk_map`.  Shapes: ``y`` (n, M, N) or (M, N) complex, positions (n, 2) metres.

Disk MAP
--------
``disk_map`` returns the candidate ``c`` maximising the posterior mass
``sum_{k: ||c_k - c|| <= r} P(c_k | y)``, which targets ``P(error < r)``
(the estimate that maximises the posterior probability of an error below
``r``, restricted to candidate centres).  On the regular grid the disk is a
fixed stencil (offsets ``(i, j)`` with ``(i^2 + j^2) h^2 <= r^2``), applied as
row sums of prefix sums; outside the area the mass is zero.  When the
posterior is concentrated within less than ``r`` (high SNR) every centre
within ``r`` of the concentration holds (nearly) all the mass; such ties
(masses within a relative ``_TIE_RTOL`` of the largest) go to the candidate of
highest posterior among them, so at high SNR the disk MAP equals the MAP.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from ._posterior_grid import (
    MAX_CANDIDATES_PER_AXIS,
    PosteriorParams,
    candidate_positions,
    candidate_shape,
    candidates,
    estimate_omega,
    log_posterior,
    log_posterior_blocks,
    los_posterior,
    prepare_inputs,
    state_log_posterior,
)
from .scenario import Scenario

__all__ = [
    "MAX_CANDIDATES_PER_AXIS",
    "PosteriorParams",
    "candidates",
    "disk_map",
    "disk_mass",
    "estimate_omega",
    "log_posterior",
    "los_posterior",
    "map_position",
    "posterior_mean",
    "state_log_posterior",
]

_TIE_RTOL = 1e-9
"""Disk masses within this relative distance of the largest are ties (prefix-sum rounding is ~1e-16)."""


def posterior_mean(scenario: Scenario, y: Any, params: PosteriorParams | None = None) -> np.ndarray:
    """Posterior mean of the position (the MMSE estimate over the candidates).

    Parameters
    ----------
    scenario : Scenario
    y : (n, M, N) or (M, N) complex
    params : PosteriorParams or None

    Returns
    -------
    (n, 2) float
        ``sum_k P(c_k | y) c_k``, inside the area.
    """
    scenario, y, params = prepare_inputs(scenario, y, params)
    cand = candidate_positions(scenario, params.resolution_m)
    out = np.empty((y.shape[0], 2))
    for sl, lp in log_posterior_blocks(scenario, y, params):
        out[sl] = np.exp(lp) @ cand
    return out


def map_position(scenario: Scenario, y: Any, params: PosteriorParams | None = None) -> np.ndarray:
    """The candidate of highest posterior (MAP).

    Parameters
    ----------
    scenario : Scenario
    y : (n, M, N) or (M, N) complex
    params : PosteriorParams or None

    Returns
    -------
    (n, 2) float
        ``c_{argmax_k P(c_k | y)}``.
    """
    scenario, y, params = prepare_inputs(scenario, y, params)
    cand = candidate_positions(scenario, params.resolution_m)
    out = np.empty((y.shape[0], 2))
    for sl, lp in log_posterior_blocks(scenario, y, params):
        out[sl] = cand[np.argmax(lp, axis=1)]
    return out


def _disk_offsets(spacing: float, radius_m: float) -> list[tuple[int, int]]:
    """``(di, half-width w)`` per row: offsets ``(di, dj)`` with ``|dj| <= w`` satisfy ``(di^2 + dj^2) h^2 <= r^2``."""
    rr = (radius_m / spacing) ** 2 * (1.0 + 1e-12)
    R = int(math.floor(math.sqrt(rr)))
    return [(di, int(math.floor(math.sqrt(rr - di * di)))) for di in range(-R, R + 1)]


def disk_mass(prob: Any, spacing: float, radius_m: float) -> np.ndarray:
    """Mass within a disk around every cell of a regular grid (zero outside the grid).

    Parameters
    ----------
    prob : (n, nx, ny) float
        Probabilities (or any weights) on a regular grid of spacing ``spacing``.
    spacing : float > 0
        Grid spacing h, metres (equal along both axes).
    radius_m : float > 0
        Disk radius r, metres.

    Returns
    -------
    (n, nx, ny) float
        ``out[s, i, j] = sum prob[s, i + di, j + dj]`` over
        ``(di^2 + dj^2) h^2 <= r^2`` and in-range indices (a correlation with
        the disk stencil, ``mode="constant"``, ``cval=0``).
    """
    p = np.asarray(prob)
    if p.ndim != 3 or not np.isrealobj(p) or not np.isfinite(p).all():
        raise ValueError(f"prob: expected a finite real (n, nx, ny) array, got shape {p.shape}")
    for name, v in (("spacing", spacing), ("radius_m", radius_m)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (math.isfinite(v) and v > 0):
            raise ValueError(f"{name}: expected a finite number > 0, got {v!r}")
    p = p.astype(float, copy=False)
    n, nx, ny = p.shape
    csum = np.zeros((n, nx, ny + 1))
    np.cumsum(p, axis=2, out=csum[:, :, 1:])
    j = np.arange(ny)
    out = np.zeros_like(p)
    for di, w in _disk_offsets(float(spacing), float(radius_m)):
        hi = np.minimum(j + w + 1, ny)
        lo = np.maximum(j - w, 0)
        i0, i1 = max(0, -di), min(nx, nx - di)  # out rows i with i + di in range
        if i1 <= i0:
            continue
        rows = csum[:, i0 + di : i1 + di, :]
        out[:, i0:i1, :] += rows[:, :, hi] - rows[:, :, lo]
    return out


def disk_map(scenario: Scenario, y: Any, params: PosteriorParams | None = None) -> np.ndarray:
    """The candidate maximising the posterior mass within ``params.disk_radius_m``.

    Parameters
    ----------
    scenario : Scenario
    y : (n, M, N) or (M, N) complex
    params : PosteriorParams or None

    Returns
    -------
    (n, 2) float
        ``argmax_c sum_{||c_k - c|| <= r} P(c_k | y)`` over the candidates
        (:func:`disk_mass`); targets ``P(error < r)``.  Ties (relative
        ``_TIE_RTOL``) go to the candidate of highest posterior.
    """
    scenario, y, params = prepare_inputs(scenario, y, params)
    cand = candidate_positions(scenario, params.resolution_m)
    nx, h = candidate_shape(scenario, params.resolution_m)
    out = np.empty((y.shape[0], 2))
    for sl, lp in log_posterior_blocks(scenario, y, params):
        mass = disk_mass(np.exp(lp).reshape(-1, nx, nx), h, params.disk_radius_m).reshape(lp.shape)
        tie = mass >= mass.max(axis=1, keepdims=True) * (1.0 - _TIE_RTOL)
        out[sl] = cand[np.argmax(np.where(tie, lp, -np.inf), axis=1)]
    return out
