"""Cluster draws of TR 38.901 Sec. 7.5, steps 4-9: LSPs, delays, powers, azimuths, zeniths, rays.

Vectorised over samples, BSs and clusters; see :mod:`daun_lib.channel` for the model and its
simplifications.  The random numbers of a batch are drawn first (:func:`draw_link_randoms`) and the
deterministic parts evaluated afterwards (:func:`link_fields`), block by block if need be, so the
random stream does not depend on the block size.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .._checks import check_scenario
from .._validation import as_array, rng_from_seed
from .._validation import positions as check_positions
from ..scenario import Scenario, wrap_angle
from .los import check_ut_heights
from .tables import (
    ASD_MAX_DEG,
    C_MAX,
    C_PHI_NLOS,
    C_THETA_NLOS,
    CUT_DB,
    RAY_OFFSETS,
    UMA_LOS,
    UMA_NLOS,
    UMA_ZSD,
    ZSD_MAX_DEG,
    fc_ghz,
    mu_lgzsd,
    zod_offset_deg,
)

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
    los_sine : (n, M) float or None
        What the ULA measures of the LoS ray, ``u = sin(theta)``: ``sin(los_angle)`` in
        ``"2d"``, the cone sine ``scenario.los_sines(positions)`` in ``"3d"``.
    zsd_deg : (n, M) float or None
        Drawn BS-side zenith spread ZSD (deg, capped at 52; Table 7.5-7); NaN in ``"2d"``.
    los_zenith : (n, M) float or None
        LoS zenith angle at the BS, radians from the vertical (pi/2 = horizontal, > pi/2 for
        a user below the array); pi/2 in ``"2d"``.
    zeniths : (n, M, C) float or None
        Cluster zenith angles theta_n,ZOD (7.5-19, LoS form (7.5-17)), radians; pi/2 in ``"2d"``.
    ray_zeniths : (n, M, C, 20) float or None
        Ray zeniths (7.5-20), randomly coupled with the ray azimuths of ``ray_angles``
        (step 8): ray m of cluster n has azimuth ``ray_angles[..., n, m]`` and zenith
        ``ray_zeniths[..., n, m]``; pi/2 in ``"2d"`` (a broadcast view).

    The last five fields default to None so that a ``Clusters`` built from the first ten
    (older code) is the 2-D model.
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
    los_sine: np.ndarray | None = None
    zsd_deg: np.ndarray | None = None
    los_zenith: np.ndarray | None = None
    zeniths: np.ndarray | None = None
    ray_zeniths: np.ndarray | None = None

    def rays(self) -> tuple[np.ndarray, np.ndarray]:
        """All rays of every link, the LoS ray first.

        Returns
        -------
        powers : (n, M, 1 + C * 20) float
            Ray powers: the LoS ray, then ``P_n / 20`` for each of the 20
            rays of cluster n (step 6, "power of each ray P_n / M").
        angles : (n, M, 1 + C * 20) float
            Ray azimuths, radians (array angles).

        Raises ``ValueError`` for 3-D clusters (``ray_zeniths`` set): there a ray is
        seen at ``sin(zenith) sin(azimuth)``, not at its azimuth alone, so a sum of
        ``steering(angles)`` would be a 2-D channel; use ``channel_vectors``.
        """
        if self.ray_zeniths is not None and not np.all(self.ray_zeniths == np.pi / 2):
            raise ValueError("clusters: rays() gives azimuths only; these clusters are 3-D (use channel_vectors)")
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
    # "3d" only (None in "2d": the 2-D stream draws nothing of these)
    g_zsd: np.ndarray | None = None  # (n, M) standard normal, lgZSD
    sign_z: np.ndarray | None = None  # (n, M, C) int8 in {-1, 1}, X_n of (7.5-19)
    g_yz: np.ndarray | None = None  # (n, M, C) standard normal, Y_n of (7.5-19)
    perm: np.ndarray | None = None  # (n, M, C, 20) int8, step 8: zenith ray index coupled to azimuth ray m


def geometry_of(scenario: Scenario) -> str:
    """``scenario.geometry`` ("2d" or "3d"; "2d" for a Scenario without the field)."""
    g = getattr(scenario, "geometry", "2d")
    if g not in ("2d", "3d"):
        raise ValueError(f"scenario: expected geometry '2d' or '3d', got {g!r}")
    return g


def draw_link_randoms(rng: np.random.Generator, n: int, M: int, zenith: bool = False) -> LinkRandoms:
    """Draw the random numbers of steps 4-8 for ``n x M`` links (zenith ones only if ``zenith``)."""
    C = C_MAX
    g_k = rng.standard_normal((n, M))
    g_ds = rng.standard_normal((n, M))
    g_asd = rng.standard_normal((n, M))
    u_tau = rng.random((n, M, C))
    g_z = rng.standard_normal((n, M, C))
    sign = rng.choice(np.array([-1.0, 1.0]), size=(n, M, C)).astype(np.int8)
    g_y = rng.standard_normal((n, M, C))
    if not zenith:
        return LinkRandoms(g_k, g_ds, g_asd, u_tau, g_z, sign, g_y)
    # drawn after every 2-D quantity, so the azimuth draws of a 3-D batch equal those of the 2-D one
    g_zsd = rng.standard_normal((n, M))
    sign_z = rng.choice(np.array([-1.0, 1.0]), size=(n, M, C)).astype(np.int8)
    g_yz = rng.standard_normal((n, M, C))
    perm = np.argsort(rng.random((n, M, C, RAY_OFFSETS.size)), axis=-1).astype(np.int8)
    return LinkRandoms(g_k, g_ds, g_asd, u_tau, g_z, sign, g_y, g_zsd, sign_z, g_yz, perm)


def wrap_zenith(theta: np.ndarray) -> np.ndarray:
    """Zenith angles to [0, pi]: ``theta`` in (pi, 2 pi] becomes ``2 pi - theta`` (note of (7.5-16))."""
    t = np.mod(theta, 2.0 * np.pi)
    return np.where(t > np.pi, 2.0 * np.pi - t, t)


def ray_zeniths(zeniths: np.ndarray, mu_lgzsd_: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """(..., C, 20) ray zeniths (7.5-20), coupled to the azimuth rays by ``perm`` (step 8).

    ``theta_n,m = theta_n + (3/8) 10^mu_lgZSD alpha_perm[m]`` (degrees in the standard; radians here),
    from cluster zeniths ``zeniths (..., C)``, the lgZSD mean ``mu_lgzsd_ (...)`` and ``perm (..., C, 20)``.
    """
    c_zsd = 0.375 * 10.0**mu_lgzsd_  # deg, (7.5-20)
    alpha = RAY_OFFSETS[perm.astype(np.intp)]  # (..., C, 20)
    return wrap_zenith(zeniths[..., None] + np.deg2rad(c_zsd[..., None, None] * alpha))


def ray_azimuths(angles: np.ndarray, los: np.ndarray) -> np.ndarray:
    """(..., C, 20) ray azimuths (7.5-13) from cluster azimuths (..., C) and LoS states (...)."""
    c_asd = np.where(los, UMA_LOS["c_asd_deg"], UMA_NLOS["c_asd_deg"])
    return wrap_angle(angles[..., None] + np.deg2rad(c_asd[..., None, None] * RAY_OFFSETS))


def link_fields(
    scenario: Scenario, p: np.ndarray, los_arr: np.ndarray, r: LinkRandoms, ut_heights: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Steps 4-7 for one block of links from its random numbers (every operation is per link).

    ``ut_heights`` (n,) (trusted, "3d" only): each user's height; None: ``scenario.ut_height_m``.
    Returns the fields of :class:`Clusters` except ``los`` and ``ray_angles``.
    """
    n, M = los_arr.shape
    C = C_MAX
    lgfc = np.log10(fc_ghz(scenario))

    def par(key: str) -> np.ndarray:  # per-link parameter, LoS or NLoS table
        return np.where(los_arr, UMA_LOS[key], UMA_NLOS[key])

    # ---- step 4: large-scale parameters (independent per link)
    k_db = UMA_LOS["k_mu"] + UMA_LOS["k_sigma"] * r.g_k
    lgds = par("lgds_a") + par("lgds_b") * lgfc + par("lgds_sigma") * r.g_ds
    lgasd = par("lgasd_a") + par("lgasd_b") * lgfc + par("lgasd_sigma") * r.g_asd
    ds = 10.0**lgds
    asd = np.minimum(10.0**lgasd, ASD_MAX_DEG)
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
    keep = p_n >= p_n.max(axis=-1, keepdims=True) * 10.0 ** (-CUT_DB / 10.0)  # -25 dB cut
    powers = np.where(keep & valid, diffuse, 0.0)

    # ---- step 7: azimuths (departure side = BS side)
    c_phi_nlos = np.where(los_arr, C_PHI_NLOS[int(UMA_LOS["n_clusters"])], C_PHI_NLOS[int(UMA_NLOS["n_clusters"])])
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
    angles = wrap_angle(los_angle[..., None] + np.deg2rad(offs))
    out = dict(
        k_factor_db=k_db,
        asd_deg=asd,
        ds_s=ds,
        delays=np.where(valid, tau, np.nan),
        powers=powers,
        los_power=los_power,
        angles=angles,
        los_angle=los_angle,
    )
    if r.g_zsd is None:  # "2d": no zenith; the fields of the horizontal plane
        out.update(
            los_sine=np.sin(los_angle),
            zsd_deg=np.full((n, M), np.nan),
            los_zenith=np.full((n, M), np.pi / 2),
            zeniths=np.full((n, M, C), np.pi / 2),
            mu_lgzsd=None,
        )
        return out

    # ---- steps 4 and 7, zenith of departure (BS side), "3d" only
    d2d = np.linalg.norm(p[:, None, :] - scenario.bs_array[None, :, :], axis=-1)  # (n, M)
    h_ut = scenario.ut_height_m if ut_heights is None else ut_heights[:, None]  # h_UT, scalar or (n, 1)
    mu_z = mu_lgzsd(d2d, h_ut, los_arr)  # Table 7.5-7
    sig_z = np.where(los_arr, UMA_ZSD["los"]["sigma"], UMA_ZSD["nlos"]["sigma"])
    zsd = np.minimum(10.0 ** (mu_z + sig_z * r.g_zsd), ZSD_MAX_DEG)  # deg, step 4 cap
    los_zen = np.pi / 2 + np.arctan2(scenario.bs_height_m - h_ut, d2d)  # theta_LOS,ZOD, rad (> pi/2: downwards)
    c_th_nlos = np.where(los_arr, C_THETA_NLOS[int(UMA_LOS["n_clusters"])], C_THETA_NLOS[int(UMA_NLOS["n_clusters"])])
    c_th = np.where(
        los_arr, c_th_nlos * (1.3086 + 0.0339 * kd - 0.0077 * kd**2 + 0.0002 * kd**3), c_th_nlos
    )  # (7.5-15)
    with np.errstate(divide="ignore"):
        th_pr = -zsd[..., None] * np.log(ratio) / c_th[..., None]  # (7.5-14), deg
    y_z = (zsd[..., None] / 7.0) * r.g_yz  # Y_n ~ N(0, (ZSD/7)^2)
    offs_z = r.sign_z.astype(float) * th_pr + y_z  # (7.5-19) without theta_LOS,ZOD + mu_offset,ZOD
    offs_z = offs_z - np.where(los_arr, offs_z[..., 0], 0.0)[..., None]  # LoS: (7.5-17) form, cluster 1 on the LoS
    mu_off = zod_offset_deg(fc_ghz(scenario), d2d, h_ut, los_arr)  # Table 7.5-7, 0 on LoS links
    zeniths = wrap_zenith(los_zen[..., None] + np.deg2rad(offs_z + mu_off[..., None]))
    out.update(
        los_sine=scenario.los_sines(p, ut_heights),  # the 3-D cone sine (d . axis) / |d|
        zsd_deg=zsd,
        los_zenith=los_zen,
        zeniths=zeniths,
        mu_lgzsd=mu_z,
    )
    return out


def draw_clusters(scenario: Scenario, positions: Any, los: Any, seed: Any = None, ut_heights: Any = None) -> Clusters:
    """Large-scale parameters, cluster powers, azimuths and (in "3d") zeniths of every link (steps 4-8).

    Vectorised over samples, BSs and clusters.  LSPs are independent per link
    (no cross-correlation, no spatial consistency).  In ``scenario.geometry == "3d"`` the
    zenith fields of :class:`Clusters` are drawn too (after every 2-D random number, so the
    other fields equal those of the 2-D draw with the same seed); in ``"2d"`` they hold the
    horizontal plane (zenith pi/2, ZSD NaN) and nothing more is drawn.

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
    ut_heights : (n,) float or None
        ``"3d"`` only: each user's height, metres, in ``(0, bs_height_m)`` (e.g.
        ``ChannelBatch.ut_heights`` of a scenario with ``ut_height_range_m``); it sets the
        LoS zenith, lgZSD and ZOD offset (Table 7.5-7) and the LoS cone sine.  ``None``:
        every user at ``scenario.ut_height_m``.  Draws nothing.

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
    h = check_ut_heights(scenario, ut_heights, n)
    rng = rng_from_seed(seed)
    three_d = geometry_of(scenario) == "3d"
    raw = draw_link_randoms(rng, n, M, zenith=three_d)
    fields = link_fields(scenario, p, los_arr, raw, h)
    mu_z = fields.pop("mu_lgzsd")
    if three_d:
        rz = ray_zeniths(fields["zeniths"], mu_z, raw.perm)
    else:
        rz = np.broadcast_to(np.pi / 2, (n, M, C_MAX, RAY_OFFSETS.size))
    return Clusters(los=los_arr.copy(), ray_angles=ray_azimuths(fields["angles"], los_arr), ray_zeniths=rz, **fields)


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
