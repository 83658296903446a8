r"""SRL: sparse reconstruction localisation, l1 angle spectra + bearing intersection (ref. [22]).

Source.  Malioutov, Cetin & Willsky, "A sparse signal reconstruction
perspective for source localization with sensor arrays", IEEE TSP 53(8), 2005.
The array output is represented on an overcomplete grid of directions,
``y = Phi s + n``, and the sparse spectrum is the solution of (their eq. (7)
for one snapshot; l1-SVD, their Sec. IV, reduces to it when there is a single
snapshot)

.. math::

    \min_s \|s\|_1 \quad \text{s.t.}\quad \|y - \Phi s\|_2 \le \beta,

with ``beta`` chosen from the noise statistics so that the true noise fits
with high probability (their Sec. V-A: ``||n||^2`` is chi-square; here
``beta^2 = sigma^2 F^{-1}_{Gamma(N, 1)}(confidence)``, the ``confidence`` quantile
of ``||n||^2 / sigma^2`` for complex white noise).  They solved it by
second-order cone programming; the paper's Fig. 2 uses the resulting AoAs
at every BS for a two-step fix.

This implementation.
* Grid: ``G = oversampling * N`` directions uniform in ``u = sin(theta)`` over a
  full period of the ULA response (``[-1/(2d), 1/(2d))``, i.e. ``[-1, 1)`` for
  half-wavelength spacing).  Uniform in ``u`` makes the resolution uniform.
* Solver: a fast first-order method instead of SOCP interior points: ADMM on
  the splitting ``min ||v||_1 + I(||r - y|| <= beta)`` s.t. ``v = s``,
  ``r = Phi s`` (two blocks: ``s`` versus ``(v, r)``).  The ``s`` step is a
  least-squares projection with ``(I + Phi^H Phi)^{-1}`` applied via Woodbury
  (one N x N matrix, shared by all BSs and samples), the ``v`` step a complex
  soft threshold and the ``r`` step a projection onto a ball: every step is
  exact and batched over samples and BSs.  The problem is positively
  homogeneous, so each sample is scaled to ``||y|| = 1`` (``beta`` with it)
  and one penalty ``rho`` serves every SNR.  ``tests/test_baselines.py``
  compares the result with cvxpy (Clarabel) on small instances.
* When ``||y|| <= beta`` the solution is ``s = 0`` (no source detectable); the
  estimate then falls back to the beamscan peak on the same grid, which is
  the limit of the l1 solution as ``beta -> ||y||`` (the first atom to enter
  the homotopy path is the one most correlated with ``y``).
* AoA readout: the peak of the spectrum among the directions in the sector
  under which the BS sees the user area (same prior as every grid method).
  An off-grid source splits its weight between adjacent atoms, so the peak is
  taken of ``|s|`` summed over a window of ``2 centroid + 1`` atoms (the lobe,
  not the single largest atom: a split LoS path otherwise loses to a compact
  NLoS cluster), and refined to the ``|s|``-weighted centroid in ``u`` of that
  window.  Malioutov et al. refine the grid adaptively instead; the centroid is
  a cheaper way to the same end.
* Scale: ``beta`` is set by the noise power ``noise_var`` in the units of ``y``,
  so the estimate is invariant to scaling ``y`` and ``noise_var`` together, not
  ``y`` alone; samples far below the noise power are rejected
  (:func:`daun_lib.baselines._common.check_noise_floor`).
* Bearings are intersected by the Stansfield estimator
  (:func:`daun_lib.baselines.bearings.stansfield`, equal bearing variances:
  the l1 spectrum gives no per-BS accuracy).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np
import scipy.stats
import torch

from .._validation import as_array, positive
from ..admm import resolve_dtype
from ..scenario import Scenario, steering
from . import _common, bearings
from .stansfield import phase_k, sector_u

__all__ = [
    "SRLParams",
    "SRLLocalizer",
    "localize",
    "aoa",
    "l1_spectrum",
    "noise_bound",
]


@dataclass(frozen=True)
class SRLParams:
    """Settings of :func:`localize`.

    Attributes
    ----------
    oversampling : int
        Grid directions per beamwidth; ``G = oversampling * N`` for
        half-wavelength spacing (default 5, G = 250 at paper scale; a finer
        grid was no better on the tuning seed and slower: ``docs/design.md``).
    confidence : float in (0, 1)
        Probability that the noise norm is below ``beta`` (default 0.99).
    noise_var : float
        Noise power per antenna, the paper's unit noise (default 1.0).
    iterations : int
        ADMM iterations (default 150).
    rho : float
        ADMM penalty factor: the penalty of a sample is ``rho ||y|| / beta``
        (default 2).
    relax : float in (0, 2)
        ADMM over-relaxation factor (default 1.6).
    margin : float
        Extra search range beyond the area sector, in beamwidths (default 0.5).
    centroid : int
        Neighbours on each side of the peak in the centroid (default 2; 0 = grid peak).
    iterations_stansfield : int
        Range re-weightings of the bearing intersection (default 3).
    dtype : "float32" or "float64"
        Working precision of the ADMM (default "float32").
    """

    oversampling: int = 5
    confidence: float = 0.99
    noise_var: float = 1.0
    iterations: int = 150
    rho: float = 2.0
    relax: float = 1.6
    margin: float = 0.5
    centroid: int = 2
    iterations_stansfield: int = 3
    dtype: str = "float32"

    def __post_init__(self) -> None:
        positive(self.oversampling, "oversampling", integer=True)
        positive(self.iterations, "iterations", integer=True)
        positive(self.rho, "rho")
        if not isinstance(self.relax, (int, float)) or not 0.0 < self.relax < 2.0:
            raise ValueError(f"relax: expected a number in (0, 2), got {self.relax!r}")
        positive(self.noise_var, "noise_var")
        if not isinstance(self.confidence, (int, float)) or not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence: expected a number in (0, 1), got {self.confidence!r}")
        if not isinstance(self.margin, (int, float)) or not np.isfinite(self.margin) or self.margin < 0:
            raise ValueError(f"margin: expected a finite number >= 0, got {self.margin!r}")
        for name in ("centroid", "iterations_stansfield"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"{name}: expected an integer >= 0, got {v!r}")
        resolve_dtype(self.dtype)


def noise_bound(n_antennas: int, noise_var: float = 1.0, confidence: float = 0.99) -> float:
    """``beta``: the ``confidence`` quantile of ``||n||`` for ``n ~ CN(0, noise_var I_N)``.

    Parameters
    ----------
    n_antennas : int >= 1
    noise_var : float > 0
    confidence : float in (0, 1)

    Returns
    -------
    float > 0
    """
    n_antennas = positive(n_antennas, "n_antennas", integer=True)
    noise_var = positive(noise_var, "noise_var")
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, (int, float, np.floating))
        or not 0.0 < confidence < 1.0
    ):
        raise ValueError(f"confidence: expected a probability in (0, 1), got {confidence!r}")
    return float(np.sqrt(noise_var * scipy.stats.gamma.ppf(confidence, a=n_antennas)))


def l1_spectrum(
    Phi: Any,
    y: Any,
    beta: Any,
    *,
    iterations: int = 250,
    rho: float = 2.0,
    relax: float = 1.6,
    dtype: str = "float32",
) -> np.ndarray:
    """Solve ``min ||s||_1 s.t. ||y_b - Phi s||_2 <= beta_b`` for a batch (ADMM).

    Parameters
    ----------
    Phi : (N, G) complex
        Dictionary (any; the columns need not be normalised).
    y : (b, N) complex
        Observations.
    beta : float or (b,) float >= 0
        Residual bounds.
    iterations : int
    rho : float
        ADMM penalty factor; sample ``b`` uses ``rho ||y_b|| / beta_b`` for
        ``y_b`` scaled to unit norm (a smaller ball needs a larger penalty).
    relax : float in (0, 2)
        Over-relaxation factor (Boyd et al. 2011, Sec. 3.4.3).
    dtype : "float32" or "float64"

    Returns
    -------
    (b, G) complex128
        The sparse spectra (``0`` where ``||y_b|| <= beta_b``).
    """
    Phi = np.asarray(as_array(Phi, "Phi", 2))
    y = np.asarray(as_array(y, "y", 2))
    if y.shape[1] != Phi.shape[0] or y.shape[0] < 1:
        raise ValueError(f"y: expected shape (b, {Phi.shape[0]}) to match Phi (N, G), got {y.shape}")
    beta = np.broadcast_to(np.asarray(as_array(beta, "beta", (0, 1), complex_ok=False), dtype=float), (y.shape[0],))
    if (beta < 0).any():
        raise ValueError("beta: expected residual bounds >= 0")
    iterations = positive(iterations, "iterations", integer=True)
    rho = positive(rho, "rho")
    relax = positive(relax, "relax")
    if relax >= 2.0:
        raise ValueError(f"relax: expected a relaxation factor in (0, 2), got {relax!r}")
    _, cdt = resolve_dtype(dtype)
    ynorm = np.linalg.norm(y, axis=1)
    active = ynorm > beta
    out = np.zeros((y.shape[0], Phi.shape[1]), dtype=np.complex128)
    if not active.any():
        return out
    with torch.inference_mode():
        P = torch.as_tensor(np.array(Phi), dtype=cdt)
        PH = P.conj().T.contiguous()
        W = torch.linalg.inv(torch.eye(P.shape[0], dtype=cdt) + P @ PH)
        # row-vector layout: (b, N) @ P^H^T ... use x @ P.T for Phi x, v @ P.conj() for Phi^H v
        PT, PC = P.T.contiguous(), P.conj().contiguous()
        WT = W.T.contiguous()
        yy = torch.as_tensor(y[active] / ynorm[active, None], dtype=cdt)
        bb = torch.as_tensor(beta[active] / ynorm[active], dtype=yy.real.dtype)[:, None]
        b, G = yy.shape[0], P.shape[1]
        v = torch.zeros(b, G, dtype=cdt)
        u1 = torch.zeros_like(v)
        r = yy.clone()
        u2 = torch.zeros_like(yy)
        # per-sample penalty rho * ||y|| / beta (a smaller ball needs a larger
        # penalty), capped at rho * 100 so that beta = 0 (basis pursuit) works
        lam = bb.clamp_min(1e-2) / rho
        for _ in range(iterations):
            q = v - u1 + (r - u2) @ PC  # Phi^H (r - u2)
            Pq = q @ PT  # Phi q
            WPq = Pq @ WT  # W Phi q  (= Phi s)
            s = q - WPq @ PC  # q - Phi^H W Phi q
            if relax != 1.0:  # over-relaxation (Boyd et al. 2011, Sec. 3.4.3)
                s = relax * s + (1.0 - relax) * v
                WPq = relax * WPq + (1.0 - relax) * r
            t = s + u1
            mag = torch.sqrt(t.real.square() + t.imag.square()).clamp_min(1e-30)
            v = t * torch.relu(1.0 - lam / mag)
            e = WPq + u2 - yy
            en = torch.sqrt((e.real.square() + e.imag.square()).sum(dim=1, keepdim=True)).clamp_min(1e-30)
            r = yy + e * torch.clamp(bb / en, max=1.0)
            u1 = u1 + s - v
            u2 = u2 + WPq - r
        out[active] = v.to(torch.complex128).numpy() * ynorm[active, None]
    return out


@lru_cache(maxsize=8)
def _grid(scenario: Scenario, oversampling: int) -> tuple[np.ndarray, np.ndarray]:
    """u grid (G,) over a full period and its dictionary (N, G)."""
    period = 1.0 / scenario.antenna_spacing
    G = int(round(oversampling * scenario.n_antennas * scenario.antenna_spacing * period))
    u = -period / 2 + period * (np.arange(G) + 0.5) / G
    # steering() takes angles; for |u| > 1 (spacing < 1/2) use the phase directly
    N = scenario.n_antennas
    Phi = np.exp(1j * np.outer(phase_k(scenario), u)) / np.sqrt(N)
    if np.all(np.abs(u) <= 1.0):  # identical to the package's steering vectors
        Phi = steering(np.arcsin(u), N, scenario.antenna_spacing).T
    u.setflags(write=False)
    Phi.setflags(write=False)
    return u, Phi


def aoa(scenario: Scenario, y: Any, params: SRLParams | None = None) -> np.ndarray:
    """Per-BS AoA from the l1 sparse spectrum.

    Parameters
    ----------
    scenario : Scenario
    y : (n, M, N) or (M, N) complex
    params : SRLParams, optional

    Returns
    -------
    (n, M) float
        AoA estimates, radians from broadside.
    """
    scenario = _common.check_scenario(scenario)
    y = _common.check_y(scenario, y)
    return _aoa(scenario, y, _common.check_params(params, SRLParams))


def _aoa(scenario: Scenario, y: np.ndarray, params: SRLParams) -> np.ndarray:
    """:func:`aoa` for validated inputs (the noise-floor check of ``y`` included)."""
    n, M, N = y.shape
    _common.check_noise_floor(y, params.noise_var, "SRLParams.noise_var")
    u, Phi = _grid(scenario, params.oversampling)
    beta = noise_bound(N, params.noise_var, params.confidence)
    s = l1_spectrum(
        Phi,
        y.reshape(n * M, N),
        beta,
        iterations=params.iterations,
        rho=params.rho,
        relax=params.relax,
        dtype=params.dtype,
    )
    mag = np.abs(s).reshape(n, M, -1)
    rng = sector_u(scenario, params.margin)  # (M, 2)
    inside = (u[None, :] >= rng[:, :1]) & (u[None, :] <= rng[:, 1:])  # (M, G)
    mag = np.where(inside[None], mag, 0.0)
    # fallback where nothing is in the sector: beamscan on the same grid
    empty = mag.max(axis=-1) <= 1e-12 * np.maximum(np.linalg.norm(y, axis=-1), 1e-300)
    if empty.any():
        bs = np.abs(y @ Phi.conj()) ** 2  # (n, M, G)
        mag = np.where(empty[..., None], np.where(inside[None], bs, 0.0), mag)
    c = params.centroid
    if c > 0:  # peak of the lobe: |s| summed over a window of 2c + 1 atoms
        pad = np.pad(mag, [(0, 0), (0, 0), (c, c)])
        cs = np.cumsum(pad, axis=-1)
        cs = np.concatenate([np.zeros(cs.shape[:-1] + (1,)), cs], axis=-1)
        score = cs[..., 2 * c + 1 :] - cs[..., : -(2 * c + 1)]
    else:
        score = mag
    g0 = np.argmax(score, axis=-1)  # (n, M)
    offs = np.arange(-c, c + 1)
    idx = np.clip(g0[..., None] + offs, 0, u.size - 1)  # (n, M, 2c+1)
    wts = np.take_along_axis(mag, idx, axis=-1)
    u_hat = np.sum(wts * u[idx], axis=-1) / np.maximum(np.sum(wts, axis=-1), 1e-300)
    return np.arcsin(np.clip(u_hat, -1.0, 1.0))


@dataclass(frozen=True)
class SRLLocalizer(bearings.BearingLocalizer):
    """SRL two-step localisation: l1-spectrum AoAs (:func:`aoa`), Stansfield intersection with
    equal bearing variances, clipped to the area -> (n, 2).  In ``geometry="3d"`` the cone
    intersection :func:`daun_lib.baselines.bearings.cone_intersection` replaces the lines.

    Attributes
    ----------
    params : SRLParams, optional (None: the defaults)
    """

    params: SRLParams | None = None
    params_type: ClassVar[type] = SRLParams
    scale_invariant: ClassVar[bool] = False  # in units of the noise power

    def _angles(self, scenario: Scenario, y: np.ndarray) -> tuple[np.ndarray, None]:
        return _aoa(scenario, y, self.params), None

    def _iterations(self) -> int:
        return self.params.iterations_stansfield


def localize(scenario: Scenario, y: Any, params: SRLParams | None = None) -> np.ndarray:
    """``SRLLocalizer(params)(scenario, y)``: positions (n, 2), clipped to the user area."""
    return SRLLocalizer(params=params)(scenario, y)
