"""The position Cramér-Rao bound (CRB) of the line-of-sight model.

Model
-----
Each of the M base stations receives one snapshot of the LoS path only::

    y_m = beta_m a_m(u_m(p)) + n_m,    m = 1..M,

with ``a_m`` the unit-norm centred ULA steering vector of
:func:`daun_lib.scenario.steering`, ``a[n] = exp(j k_n u) / sqrt(N)``,
``k_n = 2 pi d c_n``, ``c_n = n - (N-1)/2`` (:func:`~daun_lib.scenario.element_offsets`),
``d`` the spacing in wavelengths (``Scenario.antenna_spacing``),
``u_m(p)`` the measured direction cosine of :meth:`Scenario.los_sines`
(``"2d"`` and ``"3d"``), ``beta_m`` an unknown complex gain per BS
(a nuisance parameter) and ``n_m`` circular complex white Gaussian noise of
unit power per antenna (``E|n|^2 = 1``).  The per-antenna SNR is
``omega = 10^(snr_db / 10)``, i.e. ``|beta_m|^2 = omega N`` (the gain of the
unit-norm steering vector puts power ``omega`` on each antenna).

Derivation
----------
For a complex Gaussian observation with mean ``mu(theta)`` and covariance
``I`` the Fisher information of a real parameter vector ``theta`` is
``J = 2 Re[(d mu / d theta)^H (d mu / d theta)]``.  Per BS take
``theta_m = (u_m, Re beta_m, Im beta_m)``; the derivatives of
``mu_m = beta_m a(u_m)`` are ``j beta_m (k * a)``, ``a`` and ``j a``.  Then

* ``J_uu = 2 |beta|^2 sum_n k_n^2 |a_n|^2 = 2 |beta|^2 (2 pi d)^2 (1/N) sum_n c_n^2``;
* the cross terms ``2 Re[a^H (j beta k * a)] = 2 Re[j beta (1/N) sum_n k_n]`` and
  ``2 Re[(j a)^H (j beta k * a)] = 2 Re[beta (1/N) sum_n k_n]`` vanish because
  the array is centred (``sum_n c_n = 0``): the gain decouples from ``u`` and
  the Schur complement that eliminates ``beta_m`` leaves ``J_uu`` unchanged.

With ``|beta|^2 = omega N`` and ``sum_n c_n^2 = N (N^2 - 1) / 12``::

    J_uu = 2 omega (2 pi d)^2 sum_n c_n^2 = omega N (2 pi d)^2 (N^2 - 1) / 6,

which for half-wavelength spacing is ``omega N pi^2 (N^2 - 1) / 6``.  The BSs
have independent noise and separate gains, so the position information is
the sum of the mapped per-BS terms (chain rule, ``u_m`` a function of ``p``)::

    J_p = sum_m J_uu,m  g_m g_m^T,
    g_m = grad_p u_m = axis_m / r_m - (d_m . axis_m) d_m,xy / r_m^3,

with ``d_m`` the vector from array ``m`` to the user (horizontal part
``d_m,xy``; in ``"3d"`` a third component ``-(bs_height_m - ut_height_m)``
that does not depend on ``p``), ``r_m = |d_m|`` (2-D or 3-D) and ``axis_m``
:attr:`Scenario.array_axes`.  The CRB is ``J_p^{-1}`` (m^2); its trace bounds
the mean squared position error of any unbiased estimator.  In ``"3d"`` the
users are at the fixed height ``Scenario.ut_height_m`` (known to the
estimator); ``ut_height_range_m`` is not used here.

Singular information
--------------------
``J_p`` has rank < 2 when all gradients ``g_m`` are parallel.  In ``"2d"``
``g_m`` is normal to the line from BS ``m`` to the user, so this happens for a
user on the line through all the BSs, e.g. on the diagonal of a scenario with
BSs only at ``(-50, -50)`` and ``(50, 50)`` (in ``"3d"`` the elevation tilts
the gradients and the same scenario is singular only at the centre; the
default four-BS scenario is regular over the whole area).  A position whose
``J_p`` has ``lambda_min <= SINGULAR_RCOND * lambda_max`` (or is all zero) is
treated as unidentifiable: its CRB matrix is filled with ``+inf`` and its
trace is ``+inf`` (never NaN); :func:`position_fim` still returns the finite
(near-)singular ``J_p``.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._checks import check_scenario
from ._validation import positions as _check_positions
from ._validation import rng_from_seed, snr_db_per_sample
from .channel import SNR_DB_RANGE
from .scenario import Scenario, element_offsets

__all__ = [
    "SINGULAR_RCOND",
    "crb_trace",
    "los_gradients",
    "mean_crb_trace",
    "position_crb",
    "position_fim",
    "sine_information",
]

#: Relative eigenvalue threshold below which a 2x2 position FIM counts as singular.
SINGULAR_RCOND: float = 1e-12


def _check_snr(snr_db, n: int) -> np.ndarray:
    """``snr_db`` (scalar or (n,) array, dB, within :data:`daun_lib.channel.SNR_DB_RANGE`, the range of
    ``simulate``: beyond it ``omega`` overflows or the bound loses its digits) -> (n,) linear ``omega``."""
    return 10.0 ** (snr_db_per_sample(snr_db, n, valid_range=SNR_DB_RANGE) / 10.0)


def _check_positions_for(scenario: Scenario, positions) -> np.ndarray:
    p = _check_positions(positions, "positions")
    d = p[:, None, :] - scenario.bs_array[None, :, :]
    if scenario.geometry == "2d" and (np.abs(d).max(axis=-1) == 0.0).any():
        raise ValueError("positions: a position coincides with a BS; its direction from that BS is undefined")
    return p


def sine_information(scenario: Scenario, snr_db: float = 0.0) -> float:
    """Fisher information in ``u = sin(theta)`` of one BS, gains eliminated.

    ``J_uu = 2 omega (2 pi d)^2 sum_n c_n^2 = omega N (2 pi d)^2 (N^2 - 1) / 6``
    (module docstring), ``omega = 10^(snr_db / 10)``.
    """
    check_scenario(scenario)
    omega = _check_snr(snr_db, 1)[0]
    c = element_offsets(scenario.n_antennas)
    return float(2.0 * omega * (2.0 * np.pi * scenario.antenna_spacing) ** 2 * np.sum(c**2))


def los_gradients(scenario: Scenario, positions) -> np.ndarray:
    """(n, M, 2) float: ``grad_p u_m(p)`` of :meth:`Scenario.los_sines` (module docstring)."""
    check_scenario(scenario)
    p = _check_positions_for(scenario, positions)
    return _gradients(scenario, p)


def _gradients(scenario: Scenario, p: np.ndarray) -> np.ndarray:
    d = p[:, None, :] - scenario.bs_array[None, :, :]  # (n, M, 2)
    axes = scenario.array_axes  # (M, 2)
    r2 = (d**2).sum(axis=-1)
    if scenario.geometry == "3d":
        r2 = r2 + (scenario.bs_height_m - scenario.ut_height_m) ** 2
    r = np.sqrt(r2)
    along = np.einsum("nmc,mc->nm", d, axes)
    return axes[None, :, :] / r[..., None] - (along / r**3)[..., None] * d


def position_fim(scenario: Scenario, positions, snr_db) -> np.ndarray:
    """Fisher information of the horizontal position for the LoS model.

    Parameters
    ----------
    scenario : Scenario
        Geometry (``"2d"`` or ``"3d"``), N, spacing, BSs and array axes.
    positions : (n, 2) float
        User positions, metres, finite, n >= 1 (in ``"2d"`` none at a BS).
    snr_db : float or (n,) float
        Per-antenna SNR in dB (``omega = 10^(snr_db/10)``), one value or one per user, within
        :data:`daun_lib.channel.SNR_DB_RANGE` ([-150, 150] dB, as :func:`daun_lib.channel.simulate`).

    Returns
    -------
    (n, 2, 2) float
        ``J_p = sum_m J_uu g_m g_m^T`` (module docstring), 1/m^2.

    Raises
    ------
    ValueError
        Naming ``scenario``, ``positions`` or ``snr_db``.
    """
    check_scenario(scenario)
    p = _check_positions_for(scenario, positions)
    omega = _check_snr(snr_db, p.shape[0])
    c = element_offsets(scenario.n_antennas)
    j_uu = 2.0 * omega * (2.0 * np.pi * scenario.antenna_spacing) ** 2 * np.sum(c**2)  # (n,)
    g = _gradients(scenario, p)
    return j_uu[:, None, None] * np.einsum("nmi,nmj->nij", g, g)


def _invert(fim: np.ndarray) -> np.ndarray:
    """Closed-form inverse of symmetric 2x2 matrices; singular ones -> all +inf."""
    a, b, c = fim[:, 0, 0], 0.5 * (fim[:, 0, 1] + fim[:, 1, 0]), fim[:, 1, 1]
    det = a * c - b * b
    half_tr = 0.5 * (a + c)
    disc = np.sqrt(np.maximum(half_tr**2 - det, 0.0))
    lam_max = half_tr + disc
    lam_min = det / np.where(lam_max > 0.0, lam_max, 1.0)  # stabler than half_tr - disc
    singular = ~(lam_max > 0.0) | (lam_min <= SINGULAR_RCOND * lam_max)
    safe = np.where(singular, 1.0, det)
    out = np.empty_like(fim)
    out[:, 0, 0] = c / safe
    out[:, 1, 1] = a / safe
    out[:, 0, 1] = out[:, 1, 0] = -b / safe
    out[singular] = np.inf
    return out


def position_crb(scenario: Scenario, positions, snr_db) -> np.ndarray:
    """(n, 2, 2) float: the position CRB ``J_p^{-1}`` (m^2) of :func:`position_fim`.

    A singular ``J_p`` (module docstring, ``SINGULAR_RCOND``) gives a matrix of ``+inf``.
    """
    return _invert(position_fim(scenario, positions, snr_db))


def crb_trace(scenario: Scenario, positions, snr_db) -> np.ndarray:
    """(n,) float: ``trace`` of :func:`position_crb`, m^2 (``+inf`` where ``J_p`` is singular).

    ``snr_db`` beyond :data:`daun_lib.channel.SNR_DB_RANGE` raises ``ValueError`` naming it.
    """
    crb = position_crb(scenario, positions, snr_db)
    return crb[:, 0, 0] + crb[:, 1, 1]


def mean_crb_trace(scenario: Scenario, snr_db: float, n: int = 20000, seed=0) -> float:
    """Mean CRB trace (m^2) over ``n`` users drawn uniformly in the user area.

    Parameters
    ----------
    scenario : Scenario
    snr_db : float
        Per-antenna SNR in dB, one value, within :data:`daun_lib.channel.SNR_DB_RANGE`.
    n : int
        Number of Monte Carlo users (20000).
    seed : int, None or numpy.random.Generator
        Seed of the user draw (0).

    Returns
    -------
    float
        ``mean(crb_trace)``; ``+inf`` if a drawn user has a singular FIM (a
        measure-zero event for the package's geometries).  For the default
        ``Scenario()`` about ``0.048 / omega`` m^2.
    """
    check_scenario(scenario)
    if isinstance(snr_db, bool) or not isinstance(snr_db, numbers.Real) or not np.isfinite(snr_db):
        raise ValueError(f"snr_db: expected a finite real number in dB, got {snr_db!r}")
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n: expected a positive integer, got {n!r}")
    rng = rng_from_seed(seed)
    half = scenario.area_size / 2.0
    p = rng.uniform(-half, half, size=(int(n), 2))
    return float(np.mean(crb_trace(scenario, p, float(snr_db))))
