r"""The position posterior over a grid of candidates: the maths, on checked inputs.

The derivation of the posterior of :mod:`daun_lib.posterior` (signal model (1), LoS and NLoS
likelihoods, SNR estimate, LoS prior, candidate grid) and the functions that compute it:
candidate grid and steering matrices (cached), LoS prior, per-link likelihood terms, and the
normalised log posterior block by block (:func:`log_posterior_blocks`).  :mod:`daun_lib.posterior`
checks the inputs, defines :class:`~daun_lib.posterior.PosteriorParams` (the ``params`` taken
here) and reads positions out of the posterior; it re-exports the public names of this module.
Shapes: ``y`` (n, M, N) complex, candidates (K_fine, 2) metres, steering matrices
(M, N, K_fine), the log posterior (b, K_fine) per block, per-link terms (n, M).

Signal model
------------
The package's model (:mod:`daun_lib.channel`, paper (1)) is, per BS ``m``::

    y_m = sqrt(omega) h_m + n_m,   n_m ~ CN(0, I_N),   ||h_m||^2 = N,   omega = 10^(snr_db / 10),

with ``h_m`` the TR 38.901 clustered channel.  On a LoS link the LoS ray is
``exp(j phi) sqrt(N) a_m(u_m(p))`` scaled by the LoS power fraction
``kappa / (1 + kappa)`` (TR 38.901 (7.5-7); ``kappa`` the Ricean K-factor
``K_R``), ``a_m`` the unit-norm centred ULA steering vector
(:func:`daun_lib.arrays.array_phase`) and ``u_m(p)`` the measured direction
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
power of model (1) is assumed known).  ``daun_lib.posterior.PosteriorParams(snr_db=...)`` gives
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
``pi L_LoS / (pi L_LoS + (1 - pi) L_NLoS)`` (:func:`daun_lib.posterior.los_posterior`).

Candidates and the choice of resolution
---------------------------------------
The posterior is evaluated on a regular grid of cell centres over the area,
``nx = ceil(area_size / resolution_m)`` per axis, spacing
``h = area_size / nx <= resolution_m`` (:func:`daun_lib.posterior.candidates`).  The default
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
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.special import i0e

from .arrays import array_phase
from .channel import los_probability
from .scenario import Scenario

__all__ = [
    "MAX_CANDIDATES_PER_AXIS",
    "candidate_positions",
    "candidate_shape",
    "link_terms",
    "log_los",
    "log_posterior_blocks",
    "los_prior",
    "mix",
    "omega_hat",
]

_BLOCK_BYTES = 64 * 2**20
"""Memory target of one block of ``a^H y`` products (complex (M, B, K_fine))."""

LINE_POINTS = 4096
"""Spatial frequencies per BS at which ``params.evaluation = "line"`` evaluates ``log L_LoS`` (one period of
``v = d u``; about 80 per main lobe of a 50-element array)."""

LINE_TAPS = 8
"""Points of the Lagrange interpolation from that line to the candidates (see ``tests/test_posterior.py`` for the
measured difference from ``evaluation = "dense"``)."""

MAX_CANDIDATES_PER_AXIS = 1000
"""Largest candidate grid per axis (1000 x 1000 candidates; a finer ``resolution_m`` raises ``ValueError``)."""


def candidate_shape(scenario: Scenario, resolution_m: float) -> tuple[int, float]:
    """``(nx, h)``: candidates per axis and their spacing (metres) for a checked ``resolution_m``; ``ValueError`` above :data:`MAX_CANDIDATES_PER_AXIS`."""
    n = int(math.ceil(scenario.area_size / resolution_m - 1e-9))
    if n > MAX_CANDIDATES_PER_AXIS:
        raise ValueError(
            f"resolution_m: {resolution_m!r} m gives {n} x {n} candidates over the {scenario.area_size:g} m area, "
            f"more than {MAX_CANDIDATES_PER_AXIS} per axis; expected at least "
            f"{scenario.area_size / MAX_CANDIDATES_PER_AXIS:g} m"
        )
    return max(n, 1), scenario.area_size / max(n, 1)


@lru_cache(maxsize=8)
def candidate_positions(scenario: Scenario, resolution_m: float) -> np.ndarray:
    """(K_fine, 2) float, read-only, cached: :func:`daun_lib.posterior.candidates` on checked inputs."""
    n, h = candidate_shape(scenario, resolution_m)
    c = -scenario.area_size / 2.0 + h * (np.arange(n) + 0.5)
    g = np.stack(np.meshgrid(c, c, indexing="ij"), axis=-1).reshape(-1, 2)  # x-major, as Scenario.grid
    g.setflags(write=False)
    return g


@lru_cache(maxsize=4)
def _conj_steering(scenario: Scenario, resolution_m: float) -> np.ndarray:
    """(M, N, K_fine) complex128, read-only: ``conj(a_m(c_k))``, so ``y_m @ it = a^H y``."""
    u = scenario.los_sines(candidate_positions(scenario, resolution_m)).T  # (M, K)
    a = np.exp(-1j * array_phase(u, scenario.n_antennas, scenario.antenna_spacing)) / np.sqrt(scenario.n_antennas)
    a = np.ascontiguousarray(np.swapaxes(a, 1, 2))
    a.setflags(write=False)
    return a


def los_prior(scenario: Scenario, positions: np.ndarray) -> np.ndarray:
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
    pi = los_prior(scenario, candidate_positions(scenario, resolution_m)).T
    with np.errstate(divide="ignore"):
        lp, lq = np.log(pi), np.log1p(-pi)
    lp.setflags(write=False)
    lq.setflags(write=False)
    return lp, lq


def omega_hat(y: np.ndarray) -> np.ndarray:
    """(n,) float: the pooled SNR estimate ``omega_hat`` of ``y`` (n, M, N) (module docstring)."""
    _, M, N = y.shape
    power = (y.real**2 + y.imag**2).sum(axis=(1, 2)) / (M * N)
    return np.maximum(power - 1.0, 1.0 / math.sqrt(M * N))


def _omega(y: np.ndarray, params: Any) -> np.ndarray:
    if params.snr_db is None:
        return omega_hat(y)
    return np.full(y.shape[0], 10.0 ** (params.snr_db / 10.0))


def link_terms(y: np.ndarray, params: Any):
    """Per sample and BS (``params`` a :class:`~daun_lib.posterior.PosteriorParams`): ``|beta|`` (n, 1), ``s2`` (n, 1), ``||y_m||^2`` (n, M), ``log L_NLoS`` (n, M)."""
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


def log_los(ahy_abs: np.ndarray, beta: np.ndarray, s2: np.ndarray, yy: np.ndarray, N: int) -> np.ndarray:
    """``log L_LoS`` of the module docstring; ``ahy_abs`` (n, M, ...) ``|a^H y|``, others (n, M) or (n, 1)."""
    extra = (slice(None), slice(None)) + (None,) * (ahy_abs.ndim - 2)
    b, s, yy_ = beta[extra], s2[extra], yy[extra]
    x = 2.0 * b * ahy_abs / s
    return -N * np.log(np.pi * s) - (yy_ + b**2) / s + np.log(i0e(x)) + x


def mix(l_los: np.ndarray, l_nlos: np.ndarray, log_pi: np.ndarray, log_q: np.ndarray) -> np.ndarray:
    """``log(pi L_LoS + (1 - pi) L_NLoS)``; ``log_pi``/``log_q`` may be -inf (pi = 0 or 1)."""
    return np.logaddexp(log_pi + l_los, log_q + l_nlos)


def _blocks(n: int, per_sample_bytes: int):
    b = max(1, _BLOCK_BYTES // max(per_sample_bytes, 1))
    return [slice(s, min(s + b, n)) for s in range(0, n, b)]


def _lagrange_weights(t: np.ndarray, taps: int) -> np.ndarray:
    """(..., taps) weights of Lagrange interpolation at the nodes ``-(taps/2 - 1) .. taps/2`` evaluated at
    ``t`` in [0, 1) (an even ``taps``)."""
    nodes = np.arange(taps) - (taps // 2 - 1)
    w = np.ones(t.shape + (taps,))
    for i in range(taps):
        for j in range(taps):
            if i != j:
                w[..., i] *= (t - nodes[j]) / (nodes[i] - nodes[j])
    return w


@lru_cache(maxsize=4)
def _line_weights(scenario: Scenario, resolution_m: float, points: int, taps: int) -> tuple:
    """Per BS a sparse (K_fine, points) matrix that interpolates a function of the spatial frequency
    ``v = d u`` (period 1, sampled at ``v_j = j / points``) to every candidate's ``v``."""
    from scipy.sparse import csr_matrix

    u = scenario.los_sines(candidate_positions(scenario, resolution_m)).T  # (M, K)
    pos = scenario.antenna_spacing * u * points  # in grid steps
    base = np.floor(pos)
    w = _lagrange_weights(pos - base, taps)  # (M, K, taps)
    offsets = np.arange(taps) - (taps // 2 - 1)
    idx = np.mod(base[..., None].astype(np.int64) + offsets, points)
    K = u.shape[1]
    indptr = np.arange(K + 1) * taps
    return tuple(csr_matrix((w[m].ravel(), idx[m].ravel(), indptr), shape=(K, points)) for m in range(scenario.n_bs))


def _l_los_dense(scenario: Scenario, y: np.ndarray, beta, s2, yy, res: float) -> np.ndarray:
    """(b, M, K_fine) ``log L_LoS`` at every candidate: ``|a^H y|`` by the dense product."""
    ah = _conj_steering(scenario, res)  # (M, N, K)
    ahy = np.abs(np.matmul(np.swapaxes(y, 0, 1), ah))  # (M, b, K)
    return log_los(np.swapaxes(ahy, 0, 1), beta, s2, yy, y.shape[2])


def _l_los_line(scenario: Scenario, y: np.ndarray, beta, s2, yy, res: float) -> np.ndarray:
    """(b, M, K_fine) ``log L_LoS`` from its values on a line of spatial frequencies per BS.

    ``|a_m(v)^H y_m| = |sum_n y_mn exp(-2 pi j v n)| / sqrt(N)`` (the centring of the array only adds a
    phase) is a trigonometric polynomial of ``v = d u`` with period 1: one FFT of length
    :data:`LINE_POINTS` gives it at ``v_j = j / LINE_POINTS``, ``log L_LoS`` is evaluated there, and
    :data:`LINE_TAPS`-point Lagrange interpolation carries it to each candidate's ``v``.
    """
    b, M, N = y.shape
    g = np.abs(np.fft.fft(y, n=LINE_POINTS, axis=2)) / math.sqrt(N)  # (b, M, L)
    line = log_los(g, beta, s2, yy, N)  # (b, M, L)
    W = _line_weights(scenario, res, LINE_POINTS, LINE_TAPS)
    out = np.empty((b, M, W[0].shape[0]))
    for m in range(M):
        out[:, m, :] = (W[m] @ line[:, m, :].T).T
    return out


def log_posterior_blocks(scenario: Scenario, y: np.ndarray, params: Any):
    """Yield ``(slice, normalised log posterior (b, K_fine))`` over blocks of samples (checked inputs,
    ``params`` a :class:`~daun_lib.posterior.PosteriorParams`; ``params.evaluation`` picks
    :func:`_l_los_line` or :func:`_l_los_dense` for ``log L_LoS``)."""
    res = params.resolution_m
    K = candidate_positions(scenario, res).shape[0]
    M = scenario.n_bs
    l_los_of = _l_los_line if params.evaluation == "line" else _l_los_dense
    always = scenario.los_model == "always"
    if not always:
        log_pi, log_q = _candidate_prior(scenario, res)
    beta, s2, yy, l_nlos = link_terms(y, params)
    for sl in _blocks(y.shape[0], M * K * 16 * 2):
        l_los = l_los_of(scenario, y[sl], beta[sl], s2[sl], yy[sl], res)  # (b, M, K)
        if always:
            lp = l_los.sum(axis=1)
        else:
            lp = mix(l_los, l_nlos[sl][:, :, None], log_pi[None], log_q[None]).sum(axis=1)
        lp -= lp.max(axis=1, keepdims=True)
        lp -= np.log(np.exp(lp).sum(axis=1, keepdims=True))
        yield sl, lp
