"""Cluster draws of TR 38.901 Sec. 7.5, steps 4-7 and 9: LSPs, delays, powers, azimuths, rays.

Vectorised over samples, BSs and clusters; see :mod:`daun_lib.channel` for the model and its
simplifications.  The random numbers of a batch are drawn first (:func:`draw_link_randoms`) and the
deterministic parts evaluated afterwards (:func:`link_fields`), block by block if need be, so the
random stream does not depend on the block size.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .._validation import as_array, check_scenario, rng_from_seed
from .._validation import positions as check_positions
from ..scenario import Scenario, _wrap
from .tables import _ASD_MAX_DEG, _C_MAX, _C_PHI_NLOS, _CUT_DB, RAY_OFFSETS, UMA_LOS, UMA_NLOS, fc_ghz

__all__ = ["Clusters", "draw_clusters", "rms_angular_spread"]


class Clusters(NamedTuple):
    """Per-link small-scale parameters of the TR 38.901 procedure.

    ``C = 20`` cluster slots per link; a LoS link uses the first 12 and the
    rest are padding with zero power.  Clusters are in delay order (7.5-2), so
    cluster 0 is the one carrying the LoS ray on a LoS link.

    Attributes
    ----------
    los : (n, M) bool
        LoS state of each link.
    k_factor_db : (n, M) float
        Drawn Ricean K-factor K_R in dB; NaN on NLoS links.
    asd_deg : (n, M) float
        Drawn BS-side azimuth spread ASD (deg, capped at 104).
    ds_s : (n, M) float
        Drawn delay spread DS (s).
    delays : (n, M, C) float
        Normalised, sorted cluster delays tau_n (7.5-2), s; NaN in padding slots.
    powers : (n, M, C) float
        Power of the diffuse (NLoS) part of each cluster as it enters the
        channel: ``P_n / (K_R + 1)`` on LoS links, ``P_n`` on NLoS links
        (P_n of (7.5-6)); zero for clusters removed by the -25 dB cut and for
        padding.  ``powers.sum(-1) + los_power == 1`` before the cut.
    los_power : (n, M) float
        Power of the LoS ray ``K_R / (K_R + 1)`` (7.5-7); 0 on NLoS links.
    angles : (n, M, C) float
        Cluster azimuths (7.5-11 / 7.5-12) as array angles, radians in
        (-pi, pi].  Padding slots hold finite placeholders.
    ray_angles : (n, M, C, 20) float
        Ray azimuths ``angles + c_ASD alpha_m`` (7.5-13), radians, wrapped.
    los_angle : (n, M) float
        LoS azimuth ``scenario.los_angles(positions)``, radians.
    """

    los: np.ndarray
    k_factor_db: np.ndarray
    asd_deg: np.ndarray
    ds_s: np.ndarray
    delays: np.ndarray
    powers: np.ndarray
    los_power: np.ndarray
    angles: np.ndarray
    ray_angles: np.ndarray
    los_angle: np.ndarray

    def rays(self) -> tuple[np.ndarray, np.ndarray]:
        """All rays of every link, the LoS ray first.

        Returns
        -------
        powers : (n, M, 1 + C * 20) float
            Ray powers: the LoS ray, then ``P_n / 20`` for each of the 20
            rays of cluster n (step 6, "power of each ray P_n / M").
        angles : (n, M, 1 + C * 20) float
            Ray azimuths, radians (array angles).
        """
        n, m, c, r = self.ray_angles.shape
        p = np.broadcast_to(self.powers[..., None] / r, (n, m, c, r)).reshape(n, m, c * r)
        a = self.ray_angles.reshape(n, m, c * r)
        return (
            np.concatenate([self.los_power[..., None], p], axis=-1),
            np.concatenate([self.los_angle[..., None], a], axis=-1),
        )


class LinkRandoms(NamedTuple):
    """The random numbers of steps 4-7 for ``n x M`` links, drawn in the procedure's order.

    Kept raw (before any arithmetic) so that the deterministic parts can be
    evaluated block by block while the random stream stays exactly that of a
    single full-batch evaluation.
    """

    g_k: np.ndarray  # (n, M) standard normal, K-factor
    g_ds: np.ndarray  # (n, M) standard normal, lgDS
    g_asd: np.ndarray  # (n, M) standard normal, lgASD
    u_tau: np.ndarray  # (n, M, C) uniform [0, 1), cluster delays
    g_z: np.ndarray  # (n, M, C) standard normal, cluster shadowing
    sign: np.ndarray  # (n, M, C) int8 in {-1, 1}, X_n of (7.5-11)
    g_y: np.ndarray  # (n, M, C) standard normal, Y_n of (7.5-11)


def draw_link_randoms(rng: np.random.Generator, n: int, M: int) -> LinkRandoms:
    C = _C_MAX
    g_k = rng.standard_normal((n, M))
    g_ds = rng.standard_normal((n, M))
    g_asd = rng.standard_normal((n, M))
    u_tau = rng.random((n, M, C))
    g_z = rng.standard_normal((n, M, C))
    sign = rng.choice(np.array([-1.0, 1.0]), size=(n, M, C)).astype(np.int8)
    g_y = rng.standard_normal((n, M, C))
    return LinkRandoms(g_k, g_ds, g_asd, u_tau, g_z, sign, g_y)


def ray_azimuths(angles: np.ndarray, los: np.ndarray) -> np.ndarray:
    """(..., C, 20) ray azimuths (7.5-13) from cluster azimuths (..., C) and LoS states (...)."""
    c_asd = np.where(los, UMA_LOS["c_asd_deg"], UMA_NLOS["c_asd_deg"])
    return _wrap(angles[..., None] + np.deg2rad(c_asd[..., None, None] * RAY_OFFSETS))


def link_fields(scenario: Scenario, p: np.ndarray, los_arr: np.ndarray, r: LinkRandoms) -> dict[str, np.ndarray]:
    """Steps 4-7 for one block of links from its random numbers (every operation is per link).

    Returns the fields of :class:`Clusters` except ``los`` and ``ray_angles``.
    """
    n, M = los_arr.shape
    C = _C_MAX
    lgfc = np.log10(fc_ghz(scenario))

    def par(key: str) -> np.ndarray:  # per-link parameter, LoS or NLoS table
        return np.where(los_arr, UMA_LOS[key], UMA_NLOS[key])

    # ---- step 4: large-scale parameters (independent per link)
    k_db = UMA_LOS["k_mu"] + UMA_LOS["k_sigma"] * r.g_k
    lgds = par("lgds_a") + par("lgds_b") * lgfc + par("lgds_sigma") * r.g_ds
    lgasd = par("lgasd_a") + par("lgasd_b") * lgfc + par("lgasd_sigma") * r.g_asd
    ds = 10.0**lgds
    asd = np.minimum(10.0**lgasd, _ASD_MAX_DEG)
    k_db = np.where(los_arr, k_db, np.nan)
    k_lin = np.where(los_arr, 10.0 ** (np.nan_to_num(k_db) / 10.0), 0.0)

    n_clusters = par("n_clusters").astype(int)  # (n, M)
    valid = np.arange(C)[None, None, :] < n_clusters[..., None]  # (n, M, C)
    r_tau = par("r_tau")[..., None]

    # ---- step 5: cluster delays
    x = 1.0 - r.u_tau  # U(0, 1]
    tau = -r_tau * ds[..., None] * np.log(x)  # (7.5-1)
    tau = np.where(valid, tau, np.inf)
    tau = np.sort(tau - tau.min(axis=-1, keepdims=True), axis=-1)  # (7.5-2), padding sorts last

    # ---- step 6: cluster powers
    z = par("zeta_db")[..., None] * r.g_z
    with np.errstate(invalid="ignore"):
        p_pr = np.exp(-tau * (r_tau - 1.0) / (r_tau * ds[..., None])) * 10.0 ** (-z / 10.0)  # (7.5-5)
    p_pr = np.where(valid, p_pr, 0.0)
    p_n = p_pr / p_pr.sum(axis=-1, keepdims=True)  # (7.5-6)
    los_power = k_lin / (k_lin + 1.0)  # (7.5-7)
    diffuse = p_n / (k_lin[..., None] + 1.0)  # NLoS part of (7.5-8)
    p_ang = diffuse.copy()
    p_ang[..., 0] += los_power  # (7.5-8), used in (7.5-9) only
    keep = p_n >= p_n.max(axis=-1, keepdims=True) * 10.0 ** (-_CUT_DB / 10.0)  # -25 dB cut
    powers = np.where(keep & valid, diffuse, 0.0)

    # ---- step 7: azimuths (departure side = BS side)
    c_phi_nlos = np.where(los_arr, _C_PHI_NLOS[int(UMA_LOS["n_clusters"])], _C_PHI_NLOS[int(UMA_NLOS["n_clusters"])])
    kd = np.nan_to_num(k_db)
    c_phi = np.where(
        los_arr, c_phi_nlos * (1.1035 - 0.028 * kd - 0.002 * kd**2 + 0.0001 * kd**3), c_phi_nlos
    )  # (7.5-10)
    ratio = np.where(valid, p_ang / p_ang.max(axis=-1, keepdims=True), 1.0)
    phi_pr = 2.0 * (asd[..., None] / 1.4) * np.sqrt(-np.log(ratio)) / c_phi[..., None]  # (7.5-9), deg
    sign = r.sign.astype(float)  # X_n uniform on {-1, 1}
    y_n = (asd[..., None] / 7.0) * r.g_y  # Y_n ~ N(0, (ASD/7)^2)
    los_angle = scenario.los_angles(p)  # (n, M) rad
    offs = sign * phi_pr + y_n  # (7.5-11) without phi_LOS
    offs = offs - np.where(los_arr, offs[..., 0], 0.0)[..., None]  # (7.5-12): cluster 1 on the LoS
    angles = _wrap(los_angle[..., None] + np.deg2rad(offs))
    return dict(
        k_factor_db=k_db,
        asd_deg=asd,
        ds_s=ds,
        delays=np.where(valid, tau, np.nan),
        powers=powers,
        los_power=los_power,
        angles=angles,
        los_angle=los_angle,
    )


def draw_clusters(scenario: Scenario, positions: Any, los: Any, seed: Any = None) -> Clusters:
    """Large-scale parameters, cluster powers and azimuths of every link (steps 4-7).

    Vectorised over samples, BSs and clusters.  LSPs are independent per link
    (no cross-correlation, no spatial consistency).

    Parameters
    ----------
    scenario : Scenario
        Supplies the carrier frequency and the geometry.
    positions : (n, 2) float
        User positions, metres; finite, ``n >= 1`` (an empty batch raises),
        none exactly at a BS position.
    los : (n, M) bool
        LoS state of each link (e.g. from :func:`draw_los`).
    seed : int, None or numpy.random.Generator

    Returns
    -------
    Clusters
        See :class:`Clusters` for the fields and their shapes.

    Raises
    ------
    ValueError
        Naming ``scenario``, ``positions``, ``los`` or ``seed`` when one is
        invalid.
    """
    scenario = check_scenario(scenario)
    p = check_positions(positions)
    n, M = p.shape[0], scenario.n_bs
    los_arr = np.asarray(los)
    if los_arr.dtype != bool or los_arr.shape != (n, M):
        raise ValueError(f"los: expected a bool array of shape ({n}, {M}), got {los_arr.dtype} {los_arr.shape}")
    rng = rng_from_seed(seed)
    fields = link_fields(scenario, p, los_arr, draw_link_randoms(rng, n, M))
    return Clusters(los=los_arr.copy(), ray_angles=ray_azimuths(fields["angles"], los_arr), **fields)


def rms_angular_spread(powers: Any, angles: Any, axis: int = -1) -> np.ndarray:
    """RMS angular spread, circular definition of TR 38.901 Annex A.1 (A-1).

    ``sigma_AS = sqrt(-2 ln |sum_i P_i exp(j phi_i) / sum_i P_i|)``

    Parameters
    ----------
    powers : (..., P) float
        Non-negative path (ray) powers; at least one positive along ``axis``.
    angles : (..., P) float
        Path azimuths, radians (same shape as ``powers``).
    axis : int
        The path axis.

    Returns
    -------
    (...) float
        Angular spread, radians.
    """
    pw = np.asarray(as_array(powers, "powers", tuple(range(1, 33)), complex_ok=False), dtype=float)
    an = np.asarray(as_array(angles, "angles", tuple(range(1, 33)), complex_ok=False), dtype=float)
    if pw.shape != an.shape:
        raise ValueError(f"angles: expected the shape of powers {pw.shape}, got {an.shape}")
    if (pw < 0).any():
        raise ValueError("powers: expected non-negative powers")
    total = pw.sum(axis=axis)
    if (total <= 0).any():
        raise ValueError("powers: every set of paths needs a positive total power")
    r = np.abs((pw * np.exp(1j * an)).sum(axis=axis)) / total
    return np.sqrt(-2.0 * np.log(np.clip(r, 1e-300, 1.0)))
