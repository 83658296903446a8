r"""Stansfield: two-step localisation, per-BS AoA then bearing intersection (ref. [21]).

Source.  Gavish & Weiss, "Performance analysis of bearing-only target
location algorithms", IEEE Trans. AES 28(3), 1992, analyse the Stansfield
estimator: bearings measured independently at each sensor are intersected by
weighted least squares with weights ``1 / (d_m^2 sigma_m^2)`` (ranges ``d_m``
from a preliminary fix, bearing variances ``sigma_m^2``).  The paper (Fig. 2)
uses it as the classical two-step baseline; it does not say how the AoAs were
measured.

This implementation.
1. AoA per BS by beamscan (the single-snapshot ML estimate of one plane wave in
   white noise): the peak of ``P(u) = |a(u)^H y_m|^2`` over a grid uniform in
   ``u = sin(theta)`` with ``oversampling`` points per beamwidth ``1/(N d)``,
   restricted to the sector of angles under which the BS sees the user area
   (plus ``margin`` beamwidths) -- the same prior knowledge every grid method
   has -- followed by ``newton_steps`` safeguarded Newton steps on ``P(u)``
   (analytic derivatives, steps clipped to one grid spacing): an off-grid AoA.
2. Bearing intersection by the Stansfield estimator of
   :func:`daun_lib.baselines.bearings.stansfield`, re-weighted with the ranges
   of the current fix ``iterations`` times, and clipped to the area.

Bearing variances (``weights``):
* ``"crb"``: ``sigma_m^2 ~ sigma_hat^2 / (|c_hat|^2 cos^2 theta_m)``, the
  shape of the single-snapshot Cramer-Rao bound of a ULA
  (``var(u) = 6 sigma^2 / (|c|^2 (2 pi d)^2 (N^2 - 1))``) with the amplitude
  ``|c_hat|^2 = P(u_hat) - sigma_hat^2`` and the "noise" ``sigma_hat^2`` estimated
  from the energy outside the beam, ``(||y_m||^2 - P(u_hat)) / (N - 1)``.  The
  estimated rather than the nominal noise makes BSs with strong multipath
  count less, which is where the bearing errors come from at high SNR.
* ``"equal"``: equal bearing variances (distance weighting only).

Deviation.  Gavish & Weiss assume known bearing variances; here they are
estimated from the data as above.  The default was chosen on a separate
tuning seed (see ``benchmarks/bench_methods.py --tune``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .. import _checks
from .._validation import as_array, nonnegative, positive
from ..scenario import Scenario
from . import _common, bearings

__all__ = [
    "StansfieldParams",
    "StansfieldLocalizer",
    "localize",
    "beamscan_aoa",
    "bearing_variance",
    "sector_u",
    "phase_k",
]

_WEIGHTS = ("crb", "equal")


@dataclass(frozen=True)
class StansfieldParams:
    """Settings of :func:`localize`.

    Attributes
    ----------
    oversampling : int
        Beamscan grid points per beamwidth ``1 / (N d)`` in ``u`` (default 8).
    margin : float
        Extra search range beyond the area sector, in beamwidths (default 0.5).
    newton_steps : int
        Local refinement steps of the beamscan peak (default 5; 0 = grid only).
    weights : "crb" or "equal"
        Bearing-variance model of the intersection (default "crb").
    iterations : int
        Range re-weightings of the Stansfield solve (default 3).
    """

    oversampling: int = 8
    margin: float = 0.5
    newton_steps: int = 5
    weights: str = "crb"
    iterations: int = 3

    def __post_init__(self) -> None:
        positive(self.oversampling, "oversampling", integer=True)
        if not isinstance(self.margin, (int, float)) or not np.isfinite(self.margin) or self.margin < 0:
            raise ValueError(f"margin: expected a finite number >= 0, got {self.margin!r}")
        for name in ("newton_steps", "iterations"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"{name}: expected an integer >= 0, got {v!r}")
        if self.weights not in _WEIGHTS:
            raise ValueError(f"weights: expected one of {_WEIGHTS}, got {self.weights!r}")


def sector_u(scenario: Scenario, margin: float) -> np.ndarray:
    """(M, 2) search range in ``u = sin(theta)``: the area sector widened by ``margin`` (>= 0) beamwidths."""
    _checks.check_scenario(scenario)
    margin = nonnegative(margin, "margin")
    bw = 1.0 / (scenario.n_antennas * scenario.antenna_spacing)
    u = np.sin(_common.los_sector(scenario))
    return np.clip(np.stack([u[:, 0] - margin * bw, u[:, 1] + margin * bw], axis=1), -1.0, 1.0)


def phase_k(scenario: Scenario) -> np.ndarray:
    """(N,) ULA phase factors ``2 pi d (n - (N-1)/2)``: the steering vector at ``u = sin(theta)`` is
    ``exp(j u k) / sqrt(N)`` (:func:`daun_lib.scenario.steering`, written in ``u`` for the Newton steps)."""
    N = _checks.check_scenario(scenario).n_antennas
    return 2.0 * np.pi * scenario.antenna_spacing * (np.arange(N) - (N - 1) / 2.0)


def beamscan_aoa(scenario: Scenario, y: Any, params: StansfieldParams | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-BS AoA by beamscan on a fine ``u`` grid plus Newton refinement.

    Parameters
    ----------
    scenario : Scenario
    y : (n, M, N) or (M, N) complex
    params : StansfieldParams, optional

    Returns
    -------
    theta : (n, M) float
        AoA estimates, radians from broadside.
    power : (n, M) float
        Beamscan power ``|a(u_hat)^H y_m|^2`` at the estimate.
    """
    scenario = _common.check_scenario(scenario)
    y = _common.check_y(scenario, y)
    return _beamscan(scenario, y, _common.check_params(params, StansfieldParams))


def _beamscan(scenario: Scenario, y: np.ndarray, params: StansfieldParams) -> tuple[np.ndarray, np.ndarray]:
    """:func:`beamscan_aoa` for validated inputs (samples whose squares overflow or underflow raise,
    :func:`daun_lib.baselines._common.check_magnitudes`)."""
    _common.check_magnitudes(y, "the beamscan |a(u)^H y_m|^2")
    N = scenario.n_antennas
    k = phase_k(scenario)
    step = 1.0 / (N * scenario.antenna_spacing * params.oversampling)
    rng = sector_u(scenario, params.margin)
    G = int(np.ceil((rng[:, 1] - rng[:, 0]).max() / step)) + 1
    n, M = y.shape[0], scenario.n_bs
    u_hat = np.empty((n, M))
    for m in range(M):
        ug = np.linspace(rng[m, 0], rng[m, 1], G)
        d = ug[1] - ug[0] if G > 1 else step
        Ah = np.exp(-1j * np.outer(ug, k)) / np.sqrt(N)  # (G, N): rows a(u)^H
        P = np.abs(y[:, m, :] @ Ah.T) ** 2  # (n, G)
        u = ug[np.argmax(P, axis=1)]
        lo, hi = u - d, u + d
        ym = y[:, m, :]
        for _ in range(params.newton_steps):
            e = np.exp(-1j * np.outer(u, k)) / np.sqrt(N)  # (n, N)
            S = np.sum(e * ym, axis=1)
            S1 = np.sum(-1j * k * e * ym, axis=1)
            S2 = np.sum(-(k**2) * e * ym, axis=1)
            g = 2.0 * np.real(np.conj(S) * S1)
            h = 2.0 * (np.abs(S1) ** 2 + np.real(np.conj(S) * S2))
            du = np.where(h < 0, -g / np.where(h < 0, h, -1.0), np.sign(g) * d / 4)
            u = np.clip(u + np.clip(du, -d, d), lo, hi)
        u_hat[:, m] = u
    e = np.exp(-1j * u_hat[..., None] * k) / np.sqrt(N)  # (n, M, N)
    power = np.abs(np.sum(e * y, axis=-1)) ** 2
    return np.arcsin(np.clip(u_hat, -1.0, 1.0)), power


def bearing_variance(y: np.ndarray, theta: np.ndarray, power: np.ndarray) -> np.ndarray:
    """CRB-shaped bearing variances (up to a common factor), see the module notes.

    Parameters
    ----------
    y : (n, M, N) complex
    theta, power : (n, M) float
        AoA estimates and beamscan powers at them.

    Returns
    -------
    (n, M) float > 0
        ``y``, ``theta`` and ``power`` that are not finite, ``theta`` or ``power`` not of shape (n, M),
        or ``power < 0``: ``ValueError`` naming the argument.
    """
    y = np.asarray(as_array(y, "y", 3))
    theta = np.asarray(as_array(theta, "theta", 2, complex_ok=False), dtype=float)
    power = np.asarray(as_array(power, "power", 2, complex_ok=False), dtype=float)
    for name, v in (("theta", theta), ("power", power)):
        if v.shape != y.shape[:2]:
            raise ValueError(f"{name}: expected shape {y.shape[:2]} (n, M) to match y, got {v.shape}")
    if (power < 0).any():
        raise ValueError("power: expected beamscan powers >= 0")
    N = y.shape[-1]
    total = np.sum(np.abs(y) ** 2, axis=-1)
    noise = np.maximum(total - power, 0.0) / max(N - 1, 1)
    noise = np.maximum(noise, 1e-12 * np.maximum(total, 1e-300))
    amp2 = np.maximum(power - noise, 1e-3 * noise)
    return noise / (amp2 * np.maximum(np.cos(theta) ** 2, 1e-6))


@dataclass(frozen=True)
class StansfieldLocalizer(bearings.BearingLocalizer):
    """Stansfield two-step localisation: beamscan AoAs (:func:`beamscan_aoa`), CRB-shaped or equal
    bearing variances, Stansfield intersection clipped to the area -> (n, 2).  In ``geometry="3d"``
    the cone intersection :func:`daun_lib.baselines.bearings.cone_intersection` replaces the lines.

    Attributes
    ----------
    params : StansfieldParams, optional (None: the defaults)
    """

    params: StansfieldParams | None = None
    params_type: ClassVar[type] = StansfieldParams

    def _angles(self, scenario: Scenario, y: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        theta, power = _beamscan(scenario, y, self.params)
        return theta, (bearing_variance(y, theta, power) if self.params.weights == "crb" else None)

    def _iterations(self) -> int:
        return self.params.iterations


def localize(scenario: Scenario, y: Any, params: StansfieldParams | None = None) -> np.ndarray:
    """``StansfieldLocalizer(params)(scenario, y)``: positions (n, 2), clipped to the user area."""
    return StansfieldLocalizer(params=params)(scenario, y)
