r"""The Bayesian position posterior: posterior mean (MMSE), disk MAP, MAP and a LoS/NLoS mixture.

The posterior of the position given ``y`` over a regular grid of candidates: signal model (1),
a LoS likelihood with known gain modulus and unknown phase, a diffuse NLoS likelihood, the SNR
estimated from ``y``, a uniform position prior and the LoS prior of ``scenario.los_model``.  The
derivation, and the functions that compute it on checked inputs, are in
:mod:`daun_lib._posterior_grid` (:data:`MAX_CANDIDATES_PER_AXIS` is re-exported here).  This module checks the
inputs, holds the settings (:class:`PosteriorParams`) and gives the posterior
(:func:`log_posterior`, :func:`los_posterior`, :func:`state_log_posterior`) and the positions read
out of it block by block of samples (:func:`posterior_mean`, :func:`map_position`,
:func:`disk_map`).  Shapes: ``y`` (n, M, N) or (M, N) complex, positions (n, 2) metres, the log
posterior (n, K_fine).

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
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._checks import check_noise_floor, check_params, check_scenario, check_y
from ._fingerprint import fingerprint
from ._memo import active, shared
from ._posterior_grid import (
    MAX_CANDIDATES_PER_AXIS,
    candidate_positions,
    candidate_shape,
    link_terms,
    log_los,
    log_posterior_blocks,
    los_prior,
    mix,
    omega_hat,
)
from .arrays import array_phase
from .channel import SNR_DB_RANGE
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


@dataclass(frozen=True)
class PosteriorParams:
    """Settings of the position posterior (see :mod:`daun_lib._posterior_grid` for the derivations).

    Parameters
    ----------
    resolution_m : float > 0
        Largest candidate spacing, metres (the actual spacing is
        ``area_size / ceil(area_size / resolution_m)``).  Default 0.25.
    k_factor_db : float or +inf
        Ricean K-factor of the LoS model, dB; default 9.0 (TR 38.901 Table
        7.5-6, UMa LoS mean); ``math.inf`` gives the pure-LoS model.
    disk_radius_m : float > 0
        Radius of the disk of :func:`disk_map`, metres (default 1.0).
    snr_db : float or None
        ``None`` (default): estimate ``omega`` from ``y`` per sample
        (:func:`estimate_omega`).  A number: use this known SNR (an oracle), within
        :data:`daun_lib.channel.SNR_DB_RANGE` ([-150, 150] dB, as :func:`daun_lib.channel.simulate`).
    evaluation : "line" or "dense"
        How ``log L_LoS`` reaches the K_fine candidates: ``"line"`` (default) evaluates it on a line of
        spatial frequencies per BS (one FFT) and interpolates (:func:`daun_lib._posterior_grid._l_los_line`,
        several times faster); ``"dense"`` computes ``|a^H y|`` at every candidate by a matrix product (the
        reference).
    """

    resolution_m: float = 0.25
    k_factor_db: float = 9.0
    disk_radius_m: float = 1.0
    snr_db: float | None = None
    evaluation: str = "line"

    def __post_init__(self) -> None:
        for name in ("resolution_m", "disk_radius_m"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name}: expected a finite number > 0, got {v!r}")
        k = self.k_factor_db
        if isinstance(k, bool) or not isinstance(k, numbers.Real) or math.isnan(k) or k == -math.inf:
            raise ValueError(f"k_factor_db: expected a real number in dB or +inf, got {k!r}")
        s = self.snr_db
        lo, hi = SNR_DB_RANGE
        if s is not None and (isinstance(s, bool) or not isinstance(s, numbers.Real) or not lo <= s <= hi):
            raise ValueError(f"snr_db: expected None or a number in [{lo:g}, {hi:g}] dB (SNR_DB_RANGE), got {s!r}")
        if self.evaluation not in ("line", "dense"):
            raise ValueError(f"evaluation: expected 'line' or 'dense', got {self.evaluation!r}")


def _check_resolution(resolution_m: Any) -> float:
    if isinstance(resolution_m, bool) or not isinstance(resolution_m, numbers.Real):
        raise ValueError(f"resolution_m: expected a finite number > 0, got {resolution_m!r}")
    if not (math.isfinite(resolution_m) and resolution_m > 0):
        raise ValueError(f"resolution_m: expected a finite number > 0, got {resolution_m!r}")
    return float(resolution_m)


def candidates(scenario: Scenario, resolution_m: float = 0.25) -> np.ndarray:
    """Candidate positions of the posterior: cell centres of a regular grid over the area.

    Parameters
    ----------
    scenario : Scenario
    resolution_m : float > 0
        Largest spacing, metres; the spacing is ``h = area_size / nx`` with
        ``nx = ceil(area_size / resolution_m)``.

    Returns
    -------
    (K_fine, 2) float, read-only
        ``K_fine = nx^2`` centres, flat index ``ix * nx + iy`` (x-major, like
        :attr:`Scenario.grid`).
    """
    scenario = check_scenario(scenario)
    return candidate_positions(scenario, _check_resolution(resolution_m))


def estimate_omega(scenario: Scenario, y: Any) -> np.ndarray:
    """Per-sample linear SNR estimate ``max(mean_m ||y_m||^2 / N - 1, 1 / sqrt(M N))``.

    Parameters
    ----------
    scenario : Scenario
    y : (n, M, N) or (M, N) complex

    Returns
    -------
    (n,) float > 0
        ``omega_hat`` (:mod:`daun_lib._posterior_grid`: unit noise power, the floor is the
        estimator's standard deviation at ``omega = 0``).
    """
    scenario, y, _ = _prepare(scenario, y, None)
    return omega_hat(y)


def _prepare(scenario: Any, y: Any, params: Any) -> tuple[Scenario, np.ndarray, PosteriorParams]:
    # imported here: daun_lib.readouts (imported by daun_lib.localizers) imports this module's PosteriorParams

    scenario = check_scenario(scenario)
    y = check_y(scenario, y)
    params = check_params(params, PosteriorParams)
    check_noise_floor(
        y,
        1.0,
        "the unit noise power of the package's model (1) that the posterior assumes",
        "divide y by the noise amplitude",
    )
    return scenario, y, params


def log_posterior(scenario: Scenario, y: Any, params: PosteriorParams | None = None) -> np.ndarray:
    """Normalised log posterior of the position over :func:`candidates`.

    Parameters
    ----------
    scenario : Scenario
        Geometry and ``los_model`` (the LoS prior).
    y : (n, M, N) or (M, N) complex
        Received signals of model (1).
    params : PosteriorParams or None

    Returns
    -------
    (n, K_fine) float
        ``log P(c_k | y_i)``, finite, ``logsumexp`` over k equal to 0.  Memory
        ``8 n K_fine`` bytes: for many samples prefer the readouts, which work
        block by block.
    """
    scenario, y, params = _prepare(scenario, y, params)
    K = candidate_positions(scenario, params.resolution_m).shape[0]
    out = np.empty((y.shape[0], K))
    for sl, lp in log_posterior_blocks(scenario, y, params):
        out[sl] = lp
    return out


def _terms_at(scenario: Any, y: Any, positions: Any, params: Any):
    """Inputs checked; per sample and BS at ``positions`` (n, 2): ``pi``, ``log pi``, ``log(1 - pi)``,
    ``log L_LoS`` and ``log L_NLoS``, each (n, M) (:mod:`daun_lib._posterior_grid`)."""
    scenario, y, params = _prepare(scenario, y, params)
    p = np.asarray(positions)
    if p.ndim != 2 or p.shape != (y.shape[0], 2) or not np.isrealobj(p):
        raise ValueError(f"positions: expected a real ({y.shape[0]}, 2) array (one per sample), got shape {p.shape}")
    p = p.astype(float)
    if not np.isfinite(p).all():
        raise ValueError("positions: contains NaN or inf")
    N = scenario.n_antennas
    u = scenario.los_sines(p)  # (n, M)
    a_conj = np.exp(-1j * array_phase(u, N, scenario.antenna_spacing)) / np.sqrt(N)  # (n, M, N)
    ahy = np.abs((a_conj * y).sum(axis=2))
    beta, s2, yy, l_nlos = link_terms(y, params)
    l_los = log_los(ahy, beta, s2, yy, N)
    pi = los_prior(scenario, p)
    with np.errstate(divide="ignore"):
        log_pi, log_q = np.log(pi), np.log1p(-pi)
    return pi, log_pi, log_q, l_los, l_nlos


def los_posterior(scenario: Scenario, y: Any, positions: Any, params: PosteriorParams | None = None) -> np.ndarray:
    """Posterior probability that each link is LoS, given the user at ``positions``.

    Parameters
    ----------
    scenario : Scenario
    y : (n, M, N) or (M, N) complex
    positions : (n, 2) float
        One position per sample (e.g. an estimate), metres, finite.
    params : PosteriorParams or None

    Returns
    -------
    (n, M) float in [0, 1]
        ``pi L_LoS / (pi L_LoS + (1 - pi) L_NLoS)`` at ``p`` (:mod:`daun_lib._posterior_grid`);
        all ones for ``los_model="always"``.
    """
    pi, log_pi, log_q, l_los, l_nlos = _terms_at(scenario, y, positions, params)
    num = log_pi + l_los
    out = np.exp(num - mix(l_los, l_nlos, log_pi, log_q))
    return np.where(pi >= 1.0, 1.0, np.where(pi <= 0.0, 0.0, np.clip(out, 0.0, 1.0)))


def state_log_posterior(
    scenario: Scenario, y: Any, positions: Any, states: Any, params: PosteriorParams | None = None
) -> np.ndarray:
    """Joint log posterior of a position and the LoS states of all links, up to a constant per sample.

    ``log p(p, s | y) = sum_m [s_m (log pi_m(p) + log L_LoS(y_m | p)) + (1 - s_m) (log(1 - pi_m(p)) + log L_NLoS(y_m))]
    + const`` (:mod:`daun_lib._posterior_grid`; uniform prior on ``p``).  Comparing its values for
    different states and positions of the same sample is the joint MAP of
    (position, LoS states) that :class:`daun_lib.blockage.SubsetMAPLocalizer` maximises.

    Parameters
    ----------
    scenario : Scenario
        Its ``los_model`` sets the prior ``pi_m``.
    y : (n, M, N) or (M, N) complex
    positions : (n, 2) float
        One position per sample, metres, finite.
    states : (n, M) bool
        True for a link taken as LoS.
    params : PosteriorParams or None

    Returns
    -------
    (n,) float
        ``-inf`` where a state has prior probability 0 (e.g. an NLoS link under ``los_model="always"``).
    """
    _, log_pi, log_q, l_los, l_nlos = _terms_at(scenario, y, positions, params)
    st = np.asarray(states)
    if st.shape != l_los.shape or st.dtype != bool:
        raise ValueError(f"states: expected a bool {l_los.shape} array, got {st.dtype} {st.shape}")
    terms = np.where(st, log_pi + l_los, log_q + l_nlos)
    return terms.sum(axis=1)


def _lp_blocks(scenario: Scenario, y: np.ndarray, params: PosteriorParams):
    """``log_posterior_blocks``, computed once per ``(scenario, params, y)`` inside a :func:`daun_lib._memo.sharing`
    block (so DPD-MMSE and DPD-Disk of one sweep chunk share it); the shared blocks are read-only."""
    if not active():
        return log_posterior_blocks(scenario, y, params)
    key = ("posterior.log_posterior_blocks", fingerprint(scenario), fingerprint(params))
    return shared(key, y, lambda: tuple(log_posterior_blocks(scenario, y, params)))


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
    scenario, y, params = _prepare(scenario, y, params)
    cand = candidate_positions(scenario, params.resolution_m)
    out = np.empty((y.shape[0], 2))
    for sl, lp in _lp_blocks(scenario, y, params):
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
    scenario, y, params = _prepare(scenario, y, params)
    cand = candidate_positions(scenario, params.resolution_m)
    out = np.empty((y.shape[0], 2))
    for sl, lp in _lp_blocks(scenario, y, params):
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
    scenario, y, params = _prepare(scenario, y, params)
    cand = candidate_positions(scenario, params.resolution_m)
    nx, h = candidate_shape(scenario, params.resolution_m)
    out = np.empty((y.shape[0], 2))
    for sl, lp in _lp_blocks(scenario, y, params):
        mass = disk_mass(np.exp(lp).reshape(-1, nx, nx), h, params.disk_radius_m).reshape(lp.shape)
        tie = mass >= mass.max(axis=1, keepdims=True) * (1.0 - _TIE_RTOL)
        out[sl] = cand[np.argmax(np.where(tie, lp, -np.inf), axis=1)]
    return out
