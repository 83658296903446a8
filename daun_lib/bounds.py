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

Several users (the deterministic CRB of :func:`daun_lib.joint_ml.joint_newton`)
---------------------------------------------------------------------------------
BS ``m`` receives ``y_m = sum_u beta_{u,m} a_m(u_{u,m}(p_u)) + n_m`` with an unknown
complex gain per user and BS.  Per BS take ``theta_m = (u_{1,m}..u_{U,m}, Re beta, Im beta)``;
the derivative columns are ``W = [D diag(beta_m), A, j A]`` with ``A = [a(u_1) .. a(u_U)]``
and ``D = [j k * a(u_1) .. j k * a(u_U)]`` (N, U), and ``J_m = 2 Re[W^H W]``.  The gains
enter linearly, so the Schur complement that eliminates them is the projection of the
sine derivatives off the span of ``A`` (Stoica & Nehorai 1989)::

    J_s,m[i, j] = 2 Re[conj(beta_i) beta_j (D^H P_A^perp D)_ij],   P_A^perp = I - A A^+,

and the chain rule through the block-diagonal gradient of the sines sums the BSs::

    J_p[(i, a), (j, b)] = sum_m J_s,m[i, j] g_{i,m,a} g_{j,m,b}    (2U, 2U),

coordinates ordered ``(x_1, y_1, x_2, y_2, ..)``, ``g_{i,m} = grad u_m(p_i)`` as above.
With ``U = 1`` and ``|beta_m|^2 = omega N`` this is :func:`position_fim` (``a^H D = 0``).
Unlike one user, the bound depends on the gains' magnitudes and relative phases
(:func:`multiuser_fim` takes them; :func:`los_gains` reads them off a pure-LoS batch).
``P_A^perp`` comes from the SVD of ``A``, singular values below ``_SPAN_RCOND`` of the largest
dropped (two users at the same sine at a BS: the gains of their common direction are
eliminated together).  The CRB is ``J_p^{-1}``, ``+inf`` everywhere when
``lambda_min <= SINGULAR_RCOND lambda_max`` (coincident users, a zero gain, ``U > N``).
"""

from __future__ import annotations

import numbers

import numpy as np

from ._checks import check_scenario
from ._validation import as_array, rng_from_seed, snr_db_per_sample
from ._validation import positions as _check_positions
from .channel import SNR_DB_RANGE, ChannelBatch
from .scenario import Scenario, element_offsets

__all__ = [
    "SINGULAR_RCOND",
    "crb_trace",
    "los_gains",
    "los_gradients",
    "mean_crb_trace",
    "multiuser_crb",
    "multiuser_crb_trace",
    "multiuser_fim",
    "position_crb",
    "position_fim",
    "sine_information",
]

#: Relative eigenvalue threshold below which a position FIM (2x2, or 2U x 2U) counts as singular.
SINGULAR_RCOND: float = 1e-12
#: Singular values of the users' steering matrix ``A`` at a BS below this fraction of the largest are
#: dropped from the span that eliminates the gains (module docstring, several users).
_SPAN_RCOND: float = 1e-8
#: Samples per block of :func:`multiuser_fim` (bounded working memory: about 0.5 MB per sample at U = 3).
_BLOCK = 1024


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


# ---------------------------------------------------------------- several users


def _steering(scenario: Scenario, u: np.ndarray) -> np.ndarray:
    """(..., N) complex: ``exp(j k_n u) / sqrt(N)`` for sines ``u`` (...) (:func:`daun_lib.scenario.steering`)."""
    k = 2.0 * np.pi * scenario.antenna_spacing * element_offsets(scenario.n_antennas)
    return np.exp(1j * u[..., None] * k) / np.sqrt(scenario.n_antennas)


def _check_multi(scenario: Scenario, positions, gains) -> tuple[np.ndarray, np.ndarray]:
    """positions (n, U, 2) / (U, 2) inside the area and gains (n, U, M) / (U, M) complex -> batched arrays."""
    p = np.asarray(as_array(positions, "positions", (2, 3), complex_ok=False), dtype=float)
    p = p[None] if p.ndim == 2 else p
    if p.shape[2] != 2 or p.shape[0] < 1 or p.shape[1] < 1:
        raise ValueError(f"positions: expected a finite (n, U, 2) or (U, 2) array with n, U >= 1, got shape {p.shape}")
    half = scenario.area_size / 2.0
    if (np.abs(p) > half).any():
        raise ValueError(f"positions: expected points inside the user area [-{half:g}, {half:g}]^2 (metres)")
    g = np.asarray(as_array(gains, "gains", (2, 3)))
    if not np.iscomplexobj(g):
        raise ValueError(
            f"gains: expected a complex array (the bound depends on the gains' relative phases), got dtype {g.dtype}"
        )
    g = g[None] if g.ndim == 2 else g
    want = (p.shape[0], p.shape[1], scenario.n_bs)
    if g.shape != want:
        raise ValueError(f"gains: expected shape (n, U, M) = {want} to match positions, got {g.shape}")
    return p, g.astype(complex)


def _multiuser_block(scenario: Scenario, p: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """(n, 2U, 2U) ``J_p`` of checked p (n, U, 2), beta (n, U, M) (module docstring, several users)."""
    n, U, _ = p.shape
    M, N = scenario.n_bs, scenario.n_antennas
    flat = p.reshape(n * U, 2)
    g = _gradients(scenario, flat).reshape(n, U, M, 2)
    A = _steering(scenario, scenario.los_sines(flat).reshape(n, U, M)).transpose(0, 2, 3, 1)  # (n, M, N, U)
    k = 2.0 * np.pi * scenario.antenna_spacing * element_offsets(N)
    D = (1j * k)[:, None] * A
    Q, sv, _ = np.linalg.svd(A, full_matrices=False)  # orthonormal basis of span(A)
    Q = Q * (sv > _SPAN_RCOND * sv[..., :1])[..., None, :]
    R = D - Q @ (np.conj(Q).swapaxes(-1, -2) @ D)  # P_A^perp D
    b = beta.transpose(0, 2, 1)  # (n, M, U)
    Js = 2.0 * np.real((np.conj(R).swapaxes(-1, -2) @ R) * (np.conj(b)[..., :, None] * b[..., None, :]))
    J = np.einsum("nmuv,numi,nvmj->nuivj", Js, g, g).reshape(n, 2 * U, 2 * U)
    return 0.5 * (J + J.swapaxes(-1, -2))


def multiuser_fim(scenario: Scenario, positions, gains) -> np.ndarray:
    """Fisher information of the positions of ``U`` users, every gain per user and BS eliminated.

    The deterministic model of :func:`daun_lib.joint_ml.joint_newton` (module docstring, several users).

    Parameters
    ----------
    scenario : Scenario
    positions : (n, U, 2) or (U, 2) float
        User positions, metres, finite, inside the user area.
    gains : (n, U, M) or (U, M) complex
        ``beta_{u,m}`` in the units of ``y`` (unit noise power per antenna): the steering vectors
        are unit-norm, so ``|beta|^2 = omega N`` puts SNR ``omega`` on each antenna
        (:func:`los_gains` of a simulated batch).  A complex dtype is required.

    Returns
    -------
    (n, 2U, 2U) float
        ``J_p``, 1/m^2, coordinates ordered ``(x_1, y_1, x_2, y_2, ..)``; symmetric PSD.

    Raises
    ------
    ValueError
        Naming ``scenario``, ``positions`` or ``gains``.
    """
    check_scenario(scenario)
    p, beta = _check_multi(scenario, positions, gains)
    out = np.empty((p.shape[0], 2 * p.shape[1], 2 * p.shape[1]))
    with np.errstate(over="ignore", invalid="ignore"):  # huge gains: reported below
        for i in range(0, p.shape[0], _BLOCK):
            out[i : i + _BLOCK] = _multiuser_block(scenario, p[i : i + _BLOCK], beta[i : i + _BLOCK])
    if not np.isfinite(out).all():
        raise ValueError("gains: too large; the Fisher information overflows float64")
    return out


def _invert_general(fim: np.ndarray) -> np.ndarray:
    """Inverse of symmetric PSD (n, k, k) matrices by ``eigh``; singular ones (rule of :func:`_invert`) -> all +inf."""
    w, V = np.linalg.eigh(fim)
    lam_max, lam_min = w[:, -1], w[:, 0]
    singular = ~(lam_max > 0.0) | (lam_min <= SINGULAR_RCOND * lam_max)
    out = (V / np.where(singular[:, None], 1.0, w)[:, None, :]) @ V.swapaxes(-1, -2)
    out[singular] = np.inf
    return out


def multiuser_crb(scenario: Scenario, positions, gains) -> np.ndarray:
    """(n, 2U, 2U) float: the multi-user CRB ``J_p^{-1}`` (m^2) of :func:`multiuser_fim`.

    A singular ``J_p`` (``lambda_min <= SINGULAR_RCOND lambda_max``: coincident users, a user with
    zero gain at every BS, ``U > N``, ...) gives a matrix of ``+inf``, never NaN.
    """
    return _invert_general(multiuser_fim(scenario, positions, gains))


def multiuser_crb_trace(scenario: Scenario, positions, gains) -> np.ndarray:
    """(n,) float: ``trace`` of :func:`multiuser_crb`, m^2: a lower bound on the mean of
    ``sum_u |p_hat_u - p_u|^2`` of any unbiased estimator (``+inf`` where ``J_p`` is singular)."""
    return np.trace(multiuser_crb(scenario, positions, gains), axis1=1, axis2=2)


def los_gains(scenario: Scenario, batch) -> np.ndarray:
    """(n, U, M) complex: the true LoS gains ``beta_{u,m}`` of a pure-LoS batch, in the units of ``y``.

    ``batch`` comes from :func:`daun_lib.channel.simulate` with ``Scenario(multipath=False)`` (one user:
    ``U = 1``): there ``y_m = sum_u sqrt(omega_u) h_{u,m} + n_m`` with ``h_{u,m} = sqrt(N) e^{j phi}
    a_m(u_{u,m})``, so ``beta_{u,m} = sqrt(omega_u) a_m^H h_{u,m}`` (exact, ``|beta|^2 = omega_u N``).
    Pass the result with ``batch.positions`` to :func:`multiuser_fim`.

    Raises
    ------
    ValueError
        Naming ``scenario``, or ``batch`` when it is not a :class:`~daun_lib.channel.ChannelBatch`
        of this scenario's shapes, its ``"3d"`` users are not at ``scenario.ut_height_m`` (the
        bound's fixed height), or a channel is not the LoS steering vector alone (a clustered batch,
        or one of another geometry).
    """
    check_scenario(scenario)
    if not isinstance(batch, ChannelBatch):
        raise ValueError(f"batch: expected a ChannelBatch from daun_lib.channel.simulate, got {type(batch).__name__}")
    single = np.ndim(batch.positions) == 2
    p = np.asarray(batch.positions, dtype=float)
    h = np.asarray(batch.h)
    snr = np.asarray(batch.snr_db, dtype=float)
    p, h, snr = (p[:, None], h[:, None], snr[:, None]) if single else (p, h, snr)
    M, N = scenario.n_bs, scenario.n_antennas
    if p.ndim != 3 or h.shape != p.shape[:2] + (M, N) or snr.shape != p.shape[:2]:
        raise ValueError(
            f"batch: expected positions (n, U, 2), h (n, U, {M}, {N}) and snr_db (n, U) for this scenario, got "
            f"{np.shape(batch.positions)}, {np.shape(batch.h)} and {np.shape(batch.snr_db)}"
        )
    heights = batch.ut_heights
    if scenario.geometry == "3d" and heights is not None and (np.asarray(heights) != scenario.ut_height_m).any():
        raise ValueError(
            f"batch: its users' heights differ from scenario.ut_height_m = {scenario.ut_height_m:g} m, "
            "the fixed height of the bound"
        )
    half = scenario.area_size / 2.0
    if not (np.isfinite(p).all() and (np.abs(p) <= half).all()):
        raise ValueError(f"batch: its positions are not all inside this scenario's user area [-{half:g}, {half:g}]^2")
    a = _steering(scenario, scenario.los_sines(p.reshape(-1, 2)).reshape(p.shape[:2] + (M,)))
    c = np.sum(np.conj(a) * h, axis=-1)
    off = np.linalg.norm(h - c[..., None] * a, axis=-1) > 1e-8 * np.linalg.norm(h, axis=-1)
    if off.any():
        raise ValueError(
            f"batch: {int(off.sum())} of its {off.size} links are not the LoS steering vector alone "
            "(simulate with Scenario(multipath=False) and this scenario's geometry)"
        )
    return np.sqrt(10.0 ** (snr / 10.0))[..., None] * c
