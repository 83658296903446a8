r"""The position posterior over a grid of candidates: LoS/NLoS likelihoods, SNR estimate, prior.

The model of :mod:`daun_lib.posterior`, which reads positions out of this posterior (mean, MAP,
disk MAP) and re-exports the public names of this module (import them from there).  Shapes:
``y`` (n, M, N) complex, candidates (K_fine, 2) metres, the log posterior (n, K_fine), per-link
terms (n, M).

Signal model
------------
The package's model (:mod:`daun_lib.channel`, paper (1)) is, per BS ``m``::

    y_m = sqrt(omega) h_m + n_m,   n_m ~ CN(0, I_N),   ||h_m||^2 = N,   omega = 10^(snr_db / 10),

with ``h_m`` the TR 38.901 clustered channel.  On a LoS link the LoS ray is
``exp(j phi) sqrt(N) a_m(u_m(p))`` scaled by the LoS power fraction
``kappa / (1 + kappa)`` (TR 38.901 (7.5-7); ``kappa`` the Ricean K-factor
``K_R``), ``a_m`` the unit-norm centred ULA steering vector
(:func:`daun_lib.scenario.array_phase`) and ``u_m(p)`` the measured direction
cosine :meth:`daun_lib.scenario.Scenario.los_sines` (``"2d"`` and ``"3d"``;
in ``"3d"`` the users sit at ``scenario.ut_height_m``).

LoS likelihood (known gain modulus, unknown phase)
--------------------------------------------------
We approximate the scattered clusters (power fraction ``1 / (1 + kappa)`` of
``||h||^2 = N``) as white, i.e. as extra noise of power ``omega / (1 + kappa)``
per antenna (a stated approximation: in the simulator they are angularly
concentrated around the cluster angles).  Then, under "LoS"::

    y_m = beta_m a_m(p) + w_m,   |beta_m|^2 = omega N kappa / (1 + kappa),
    w_m ~ CN(0, s2 I_N),         s2 = 1 + omega / (1 + kappa),

and ``arg beta_m`` uniform on ``[0, 2 pi)`` (the LoS phase of (7.5-22) is
uniform).  With ``||a_m|| = 1``,
``||y - beta a||^2 = ||y||^2 + |beta|^2 - 2 |beta| |a^H y| cos(phi - arg(a^H y))``,
and ``(1/2pi) int exp(x cos t) dt = I0(x)`` (modified Bessel function), so::

    log L_LoS(p) = -N log(pi s2) - (||y||^2 + |beta|^2) / s2 + log I0(2 |beta| |a_m(p)^H y| / s2).

``log I0(x) = log(i0e(x)) + x`` (:func:`scipy.special.i0e`) is finite for every
``x >= 0``.  ``kappa`` is the setting ``k_factor_db`` (default 9 dB, the mean
of ``K_R`` for UMa LoS, TR 38.901 Table 7.5-6); ``k_factor_db = +inf`` is the
pure-LoS model ``s2 = 1``, ``|beta|^2 = omega N``.

NLoS likelihood
---------------
On an NLoS link the whole channel is diffuse; in the same white approximation
``y_m ~ CN(0, (1 + omega) I_N)``::

    log L_NLoS = -N log(pi (1 + omega)) - ||y||^2 / (1 + omega),

which does not depend on ``p``.

The SNR is estimated, not given
-------------------------------
A localiser is not told ``omega``.  With the model's unit noise power,
``E ||y_m||^2 = N (1 + omega)`` at every BS (model (1) has one SNR for all M
BSs), so the pooled moment estimator is::

    omega_hat = max(mean_m ||y_m||^2 / N - 1, omega_floor).

Its variance: ``||y_m||^2 = omega N + 2 sqrt(omega) Re(h^H n) + ||n||^2``,
``var(2 sqrt(omega) Re(h^H n)) = 2 omega N`` and ``var(||n||^2) = N``
(a sum of N unit exponentials), so
``std(omega_hat) = sqrt((1 + 2 omega) / (M N))``.  We take
``omega_floor = 1 / sqrt(M N)``, the estimator's standard deviation at
``omega = 0``: an estimate below it is indistinguishable from "no signal",
and the floor keeps ``|beta| > 0`` so the posterior stays a proper
(if flat) distribution.  Because of this estimate the posterior, like SRL, VB
and MM of the package, is defined in units of the noise power (the unit noise
power of model (1) is assumed known).  ``PosteriorParams(snr_db=...)`` gives
the true SNR instead (an oracle, for checks).

Prior and posterior
-------------------
The position prior is uniform over the user area (the users of
:func:`daun_lib.channel.simulate` are).  Per BS the LoS prior ``pi_m(p)``
follows ``scenario.los_model``: ``"always"`` -> 1 (only ``log L_LoS`` is used;
the posterior is then the pure known-modulus posterior), a probability ``q`` ->
``q``, ``"3gpp"`` -> :func:`daun_lib.channel.los_probability` of the 2-D
BS-user distance at ``scenario.ut_height_m`` (TR 38.901 Table 7.4.2-1).  The
links are independent given ``p``, so::

    log p(p | y) = sum_m log(pi_m(p) L_LoS,m(p) + (1 - pi_m(p)) L_NLoS,m) + const,

evaluated with :func:`numpy.logaddexp` (``pi = 0`` or ``1`` select one term)
and normalised over the candidates (a softmax).  The temperature is 1, the
model's own; nothing is tuned.  The per-BS LoS posterior at ``p`` is
``pi L_LoS / (pi L_LoS + (1 - pi) L_NLoS)`` (:func:`los_posterior`).

Candidates and the choice of resolution
---------------------------------------
The posterior is evaluated on a regular grid of cell centres over the area,
``nx = ceil(area_size / resolution_m)`` per axis, spacing
``h = area_size / nx <= resolution_m`` (:func:`candidates`).  The default
``resolution_m = 0.25`` follows from three requirements:

* The posterior should be sampled finely enough that sums over candidates
  equal integrals.  Near its mode the posterior is approximately Gaussian with
  per-axis standard deviation ``sigma`` of the order of the CRB
  (:mod:`daun_lib.bounds`): per BS ``std(u) = sqrt(6 / (omega N pi^2 (N^2 - 1)))``
  (half-wavelength), i.e. ``2.2e-3`` at ``omega = 1``, ``N = 50``; at a range of
  about 70 m (BSs at (+-50, +-50) m) that is ``0.15 m`` across the bearing,
  ``~0.11 m`` per axis with four BSs, scaling as ``omega^(-1/2)``.  By the
  Poisson summation formula the grid mean of a Gaussian of std ``sigma``
  differs from its integral mean by a relative term of order
  ``exp(-2 pi^2 sigma^2 / h^2)``: below 1e-8 for ``h <= sigma``, about
  0.02 at 0 dB (``sigma ~ 0.11 m``, ``h = 0.25 m``) and negligible from about
  -7 dB down -- the low-SNR regime these readouts are for.  At high SNR the posterior collapses onto a few cells and its
  readouts inherit the grid's quantisation; use a continuous readout there.
* The grid's own MSE floor (uniform quantisation, ``2 h^2 / 12 = h^2 / 6``)
  is then ``0.0104 m^2``, far below the outlier-dominated errors at low SNR.
* A disk of radius 1 m (:func:`daun_lib.posterior.disk_map`) holds about ``pi / h^2 = 50`` cells,
  so the disk mass is a smooth function of the centre.

The steering matrices of all candidates, (M, N, K_fine) complex, are built once
per (scenario, spacing) and cached read-only; ``|a^H y|`` for all candidates is
one batched matrix product per block of samples (bounded memory, about
``_BLOCK_BYTES``).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.special import i0e

from ._checks import check_noise_floor, check_params, check_scenario, check_y
from .arrays import array_phase
from .channel import los_probability
from .scenario import Scenario

__all__ = [
    "MAX_CANDIDATES_PER_AXIS",
    "PosteriorParams",
    "candidate_positions",
    "candidate_shape",
    "candidates",
    "estimate_omega",
    "log_posterior",
    "log_posterior_blocks",
    "los_posterior",
    "prepare_inputs",
    "state_log_posterior",
]

_BLOCK_BYTES = 64 * 2**20
"""Memory target of one block of ``a^H y`` products (complex (M, B, K_fine))."""


@dataclass(frozen=True)
class PosteriorParams:
    """Settings of the position posterior (see the module docstring for the derivations).

    Parameters
    ----------
    resolution_m : float > 0
        Largest candidate spacing, metres (the actual spacing is
        ``area_size / ceil(area_size / resolution_m)``).  Default 0.25.
    k_factor_db : float or +inf
        Ricean K-factor of the LoS model, dB; default 9.0 (TR 38.901 Table
        7.5-6, UMa LoS mean); ``math.inf`` gives the pure-LoS model.
    disk_radius_m : float > 0
        Radius of the disk of :func:`daun_lib.posterior.disk_map`, metres (default 1.0).
    snr_db : float or None
        ``None`` (default): estimate ``omega`` from ``y`` per sample
        (:func:`estimate_omega`).  A number: use this known SNR (an oracle).
    """

    resolution_m: float = 0.25
    k_factor_db: float = 9.0
    disk_radius_m: float = 1.0
    snr_db: float | None = None

    def __post_init__(self) -> None:
        for name in ("resolution_m", "disk_radius_m"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name}: expected a finite number > 0, got {v!r}")
        k = self.k_factor_db
        if isinstance(k, bool) or not isinstance(k, numbers.Real) or math.isnan(k) or k == -math.inf:
            raise ValueError(f"k_factor_db: expected a real number in dB or +inf, got {k!r}")
        s = self.snr_db
        if s is not None and (isinstance(s, bool) or not isinstance(s, numbers.Real) or not math.isfinite(s)):
            raise ValueError(f"snr_db: expected None or a finite number in dB, got {s!r}")


MAX_CANDIDATES_PER_AXIS = 1000
"""Largest candidate grid per axis (1000 x 1000 candidates; a finer ``resolution_m`` raises ``ValueError``)."""


def candidate_shape(scenario: Scenario, resolution_m: float) -> tuple[int, float]:
    """``(nx, h)``: candidates per axis and their spacing, metres, for ``resolution_m`` (checked); ``ValueError`` above :data:`MAX_CANDIDATES_PER_AXIS`."""
    n = int(math.ceil(scenario.area_size / resolution_m - 1e-9))
    if n > MAX_CANDIDATES_PER_AXIS:
        raise ValueError(
            f"resolution_m: {resolution_m!r} m gives {n} x {n} candidates over the {scenario.area_size:g} m area, "
            f"more than {MAX_CANDIDATES_PER_AXIS} per axis; expected at least "
            f"{scenario.area_size / MAX_CANDIDATES_PER_AXIS:g} m"
        )
    return max(n, 1), scenario.area_size / max(n, 1)


def _check_resolution(resolution_m: Any) -> float:
    if isinstance(resolution_m, bool) or not isinstance(resolution_m, numbers.Real):
        raise ValueError(f"resolution_m: expected a finite number > 0, got {resolution_m!r}")
    if not (math.isfinite(resolution_m) and resolution_m > 0):
        raise ValueError(f"resolution_m: expected a finite number > 0, got {resolution_m!r}")
    return float(resolution_m)


@lru_cache(maxsize=8)
def candidate_positions(scenario: Scenario, resolution_m: float) -> np.ndarray:
    """(K_fine, 2) float, read-only and cached: :func:`candidates` on checked inputs."""
    n, h = candidate_shape(scenario, resolution_m)
    c = -scenario.area_size / 2.0 + h * (np.arange(n) + 0.5)
    g = np.stack(np.meshgrid(c, c, indexing="ij"), axis=-1).reshape(-1, 2)  # x-major, as Scenario.grid
    g.setflags(write=False)
    return g


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


@lru_cache(maxsize=4)
def _conj_steering(scenario: Scenario, resolution_m: float) -> np.ndarray:
    """(M, N, K_fine) complex128, read-only: ``conj(a_m(c_k))``, so ``y_m @ it = a^H y``."""
    u = scenario.los_sines(candidate_positions(scenario, resolution_m)).T  # (M, K)
    a = np.exp(-1j * array_phase(u, scenario.n_antennas, scenario.antenna_spacing)) / np.sqrt(scenario.n_antennas)
    a = np.ascontiguousarray(np.swapaxes(a, 1, 2))
    a.setflags(write=False)
    return a


def _los_prior(scenario: Scenario, positions: np.ndarray) -> np.ndarray:
    """(n, M) LoS prior ``pi_m(p)`` of ``scenario.los_model``."""
    model = scenario.los_model
    shape = (positions.shape[0], scenario.n_bs)
    if model == "always":
        return np.ones(shape)
    if model == "3gpp":
        d2d = np.linalg.norm(positions[:, None, :] - scenario.bs_array[None, :, :], axis=-1)
        return los_probability(d2d, scenario.ut_height_m)
    return np.full(shape, float(model))


@lru_cache(maxsize=4)
def _candidate_prior(scenario: Scenario, resolution_m: float) -> tuple[np.ndarray, np.ndarray]:
    """(log pi, log(1 - pi)), each (M, K_fine), -inf where the probability is 0."""
    pi = _los_prior(scenario, candidate_positions(scenario, resolution_m)).T
    with np.errstate(divide="ignore"):
        lp, lq = np.log(pi), np.log1p(-pi)
    lp.setflags(write=False)
    lq.setflags(write=False)
    return lp, lq


def estimate_omega(scenario: Scenario, y: Any) -> np.ndarray:
    """Per-sample linear SNR estimate ``max(mean_m ||y_m||^2 / N - 1, 1 / sqrt(M N))``.

    Parameters
    ----------
    scenario : Scenario
    y : (n, M, N) or (M, N) complex

    Returns
    -------
    (n,) float > 0
        ``omega_hat`` (module docstring: unit noise power, the floor is the
        estimator's standard deviation at ``omega = 0``).
    """
    scenario, y, _ = prepare_inputs(scenario, y, None)
    return _omega_hat(y)


def _omega_hat(y: np.ndarray) -> np.ndarray:
    _, M, N = y.shape
    power = (y.real**2 + y.imag**2).sum(axis=(1, 2)) / (M * N)
    return np.maximum(power - 1.0, 1.0 / math.sqrt(M * N))


def _omega(y: np.ndarray, params: PosteriorParams) -> np.ndarray:
    if params.snr_db is None:
        return _omega_hat(y)
    return np.full(y.shape[0], 10.0 ** (params.snr_db / 10.0))


def _link_terms(y: np.ndarray, params: PosteriorParams):
    """Per sample and BS: ``|beta|`` (n, 1), ``s2`` (n, 1), ``||y_m||^2`` (n, M), ``log L_NLoS`` (n, M)."""
    N = y.shape[2]
    omega = _omega(y, params)
    if params.k_factor_db == math.inf:
        frac, diffuse = 1.0, 0.0
    else:
        kappa = 10.0 ** (params.k_factor_db / 10.0)
        frac, diffuse = kappa / (1.0 + kappa), 1.0 / (1.0 + kappa)
    beta = np.sqrt(omega * N * frac)[:, None]
    s2 = (1.0 + omega * diffuse)[:, None]
    yy = (y.real**2 + y.imag**2).sum(axis=2)
    tot = (1.0 + omega)[:, None]
    l_nlos = -N * np.log(np.pi * tot) - yy / tot
    return beta, s2, yy, l_nlos


def _log_los(ahy_abs: np.ndarray, beta: np.ndarray, s2: np.ndarray, yy: np.ndarray, N: int) -> np.ndarray:
    """``log L_LoS`` of the module docstring; ``ahy_abs`` (n, M, ...) ``|a^H y|``, others (n, M) or (n, 1)."""
    extra = (slice(None), slice(None)) + (None,) * (ahy_abs.ndim - 2)
    b, s, yy_ = beta[extra], s2[extra], yy[extra]
    x = 2.0 * b * ahy_abs / s
    return -N * np.log(np.pi * s) - (yy_ + b**2) / s + np.log(i0e(x)) + x


def _mix(l_los: np.ndarray, l_nlos: np.ndarray, log_pi: np.ndarray, log_q: np.ndarray) -> np.ndarray:
    """``log(pi L_LoS + (1 - pi) L_NLoS)``; ``log_pi``/``log_q`` may be -inf (pi = 0 or 1)."""
    return np.logaddexp(log_pi + l_los, log_q + l_nlos)


def _blocks(n: int, per_sample_bytes: int):
    b = max(1, _BLOCK_BYTES // max(per_sample_bytes, 1))
    return [slice(s, min(s + b, n)) for s in range(0, n, b)]


def log_posterior_blocks(scenario: Scenario, y: np.ndarray, params: PosteriorParams):
    """Yield ``(slice, normalised log posterior (b, K_fine))`` over blocks of samples (checked inputs)."""
    res = params.resolution_m
    ah = _conj_steering(scenario, res)  # (M, N, K)
    M, N, K = ah.shape
    always = scenario.los_model == "always"
    if not always:
        log_pi, log_q = _candidate_prior(scenario, res)
    beta, s2, yy, l_nlos = _link_terms(y, params)
    for sl in _blocks(y.shape[0], M * K * 16 * 2):
        ahy = np.abs(np.matmul(np.swapaxes(y[sl], 0, 1), ah))  # (M, b, K)
        l_los = _log_los(np.swapaxes(ahy, 0, 1), beta[sl], s2[sl], yy[sl], N)  # (b, M, K)
        if always:
            lp = l_los.sum(axis=1)
        else:
            lp = _mix(l_los, l_nlos[sl][:, :, None], log_pi[None], log_q[None]).sum(axis=1)
        lp -= lp.max(axis=1, keepdims=True)
        lp -= np.log(np.exp(lp).sum(axis=1, keepdims=True))
        yield sl, lp


def prepare_inputs(scenario: Any, y: Any, params: Any) -> tuple[Scenario, np.ndarray, PosteriorParams]:
    """``scenario``, ``y`` (n, M, N) and ``params`` checked, and ``y`` against the unit noise floor of the model."""
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
    scenario, y, params = prepare_inputs(scenario, y, params)
    K = candidate_positions(scenario, params.resolution_m).shape[0]
    out = np.empty((y.shape[0], K))
    for sl, lp in log_posterior_blocks(scenario, y, params):
        out[sl] = lp
    return out


def _terms_at(scenario: Any, y: Any, positions: Any, params: Any):
    """Inputs checked; per sample and BS at ``positions`` (n, 2): ``pi``, ``log pi``, ``log(1 - pi)``,
    ``log L_LoS`` and ``log L_NLoS``, each (n, M) (module docstring)."""
    scenario, y, params = prepare_inputs(scenario, y, params)
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
    beta, s2, yy, l_nlos = _link_terms(y, params)
    l_los = _log_los(ahy, beta, s2, yy, N)
    pi = _los_prior(scenario, p)
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
        ``pi L_LoS / (pi L_LoS + (1 - pi) L_NLoS)`` at ``p`` (module docstring);
        all ones for ``los_model="always"``.
    """
    pi, log_pi, log_q, l_los, l_nlos = _terms_at(scenario, y, positions, params)
    num = log_pi + l_los
    out = np.exp(num - _mix(l_los, l_nlos, log_pi, log_q))
    return np.where(pi >= 1.0, 1.0, np.where(pi <= 0.0, 0.0, np.clip(out, 0.0, 1.0)))


def state_log_posterior(
    scenario: Scenario, y: Any, positions: Any, states: Any, params: PosteriorParams | None = None
) -> np.ndarray:
    """Joint log posterior of a position and the LoS states of all links, up to a constant per sample.

    ``log p(p, s | y) = sum_m [s_m (log pi_m(p) + log L_LoS(y_m | p)) + (1 - s_m) (log(1 - pi_m(p)) + log L_NLoS(y_m))]
    + const`` (module docstring; uniform prior on ``p``).  Comparing its values for
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
