"""Narrowband 3GPP TR 38.901 (v16.1) UMa channels and the signal model (1).

The BS arrays are the receivers.  For every user position and BS the module
draws a clustered multipath channel following the fast-fading procedure of
TR 38.901 Sec. 7.5 (steps 3-11), restricted to what a narrowband, azimuth-only,
single-antenna-user model needs, and returns the received signals

    y_m = sqrt(omega) h_m + n_m,   n_m ~ CN(0, I_N),   ||h_m||^2 = N,        (1)

so that ``omega = 10^(snr_db / 10)`` is the SNR per antenna at every BS (the
paper's unit noise power; no path loss: every ``h_m`` is normalised).

Model summary (per BS-user link; equation numbers are TR 38.901 v16.1)
---------------------------------------------------------------------
* LoS state: ``scenario.los_model`` = ``"always"`` (paper default), ``"3gpp"``
  (UMa LoS probability of Table 7.4.2-1) or a fixed probability.
* Large-scale parameters (Table 7.5-6 Part-1, UMa; ``fc`` in GHz, floored at
  6 GHz as the table's note requires):

  ========================  ==========================  ==========================
  parameter                 LoS                         NLoS
  ========================  ==========================  ==========================
  K-factor (dB)             N(9, 3.5^2)                 --
  lgDS = log10(DS / 1 s)    N(-6.955-0.0963 lg fc, .66) N(-6.28-0.204 lg fc, .39)
  lgASD = log10(ASD / 1deg) N(1.06+0.1114 lg fc, .28)   N(1.5-0.1144 lg fc, .28)
  clusters / rays           12 / 20                     20 / 20
  r_tau, zeta (dB)          2.5, 3                      2.3, 3
  c_ASD (deg)               5                           2
  ========================  ==========================  ==========================

  The 38.901 tables are written for the downlink; the BS is the receiver
  here, so the spread seen at the BS array is the *departure* spread ASD with
  its cluster spread c_ASD.  ASD is capped at 104 deg (step 4).
* Cluster delays (7.5-1, 7.5-2), cluster powers (7.5-5, 7.5-6), the LoS
  specular component (7.5-7, 7.5-8), the -25 dB cluster cut, cluster azimuths
  (7.5-9 .. 7.5-12, with the K-factor correction (7.5-10) of C_phi for LoS
  links) and ray azimuths (7.5-13, offsets of Table 7.5-3) follow the standard.
* Each ray (and the LoS ray) gets an independent uniform phase (step 10); the
  channel is the sum of unit-norm steering vectors (:func:`daun_lib.scenario.steering`)
  of all rays weighted by ``sqrt(power) exp(j phase)`` (the narrowband,
  single-polarisation, isotropic-element form of (7.5-22) .. (7.5-30)), and is
  finally scaled so that ``||h_m||^2 = N``.

Simplifications (deliberate, documented)
----------------------------------------
* Large-scale parameters are drawn independently per link: the
  cross-correlations of Table 7.5-6 and spatial consistency (Sec. 7.6.3) are
  ignored, and there is no shadow fading or path loss (each ``h_m`` is
  normalised anyway).
* Azimuth only: no zenith angles, no antenna element pattern, no polarisation,
  no random ray coupling (step 8 only matters with an arrival side).
* Narrowband: the delays only shape the cluster powers; the LoS delay scaling
  (7.5-3, 7.5-4) and the sub-cluster delay split of the two strongest clusters
  are not needed and not applied (they change no power or angle).
* The -25 dB cut compares the cluster powers ``P_n`` of (7.5-6) with their
  maximum (the standard uses (7.5-8) only in (7.5-9) and (7.5-14)); removed
  clusters get zero power and the remaining powers are not rescaled
  ("the scaling factors need not be changed after cluster elimination").
* Link arrays are padded to 20 clusters; clusters beyond a LoS link's 12 have
  zero power.

Angles are radians relative to each array's broadside (the convention of
:mod:`daun_lib.scenario`): a ray at global azimuth ``phi`` leaving BS ``m`` has
array angle ``wrap(phi - scenario.array_normals[m])``.  The LoS azimuth is
``scenario.los_angles(positions)``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ._validation import as_array, positive, rng_from_seed
from .scenario import Scenario, _wrap

__all__ = [
    "ChannelBatch",
    "Clusters",
    "UMA_LOS",
    "UMA_NLOS",
    "RAY_OFFSETS",
    "los_probability",
    "draw_los",
    "draw_clusters",
    "channel_vectors",
    "rms_angular_spread",
    "simulate",
]

# --------------------------------------------------------------------------- parameters
RAY_OFFSETS: np.ndarray = np.array(
    [
        0.0447, -0.0447, 0.1413, -0.1413, 0.2492, -0.2492, 0.3715, -0.3715, 0.5129, -0.5129,
        0.6797, -0.6797, 0.8844, -0.8844, 1.1481, -1.1481, 1.5195, -1.5195, 2.1551, -2.1551,
    ]
)
"""(20,) float: ray offset angles alpha_m of Table 7.5-3 (for a 1 deg rms spread)."""

# Table 7.5-2: scaling factor C_phi^NLOS for the AOA/AOD generation.
_C_PHI_NLOS = {4: 0.779, 5: 0.860, 8: 1.018, 10: 1.090, 11: 1.123, 12: 1.146, 14: 1.190,
               15: 1.211, 16: 1.226, 19: 1.273, 20: 1.289, 25: 1.358}

UMA_LOS: dict[str, float] = {
    "k_mu": 9.0, "k_sigma": 3.5,                  # K-factor, dB
    "lgds_a": -6.955, "lgds_b": -0.0963, "lgds_sigma": 0.66,   # mu = a + b log10(fc)
    "lgasd_a": 1.06, "lgasd_b": 0.1114, "lgasd_sigma": 0.28,
    "n_clusters": 12, "n_rays": 20, "r_tau": 2.5, "zeta_db": 3.0, "c_asd_deg": 5.0,
}
"""TR 38.901 v16.1 Table 7.5-6 Part-1, UMa LoS (the entries this module uses)."""

UMA_NLOS: dict[str, float] = {
    "lgds_a": -6.28, "lgds_b": -0.204, "lgds_sigma": 0.39,
    "lgasd_a": 1.5, "lgasd_b": -0.1144, "lgasd_sigma": 0.28,
    "n_clusters": 20, "n_rays": 20, "r_tau": 2.3, "zeta_db": 3.0, "c_asd_deg": 2.0,
}
"""TR 38.901 v16.1 Table 7.5-6 Part-1, UMa NLoS (the entries this module uses)."""

_C_MAX = int(max(UMA_LOS["n_clusters"], UMA_NLOS["n_clusters"]))
_CUT_DB = 25.0          # step 6: remove clusters more than 25 dB below the strongest
_ASD_MAX_DEG = 104.0    # step 4: ASD = min(ASD, 104 deg)
_CHUNK = 256            # samples per block when summing rays (memory bound, fixed for determinism)


# --------------------------------------------------------------------------- containers
class ChannelBatch(NamedTuple):
    """A batch of received signals, model (1).

    Attributes
    ----------
    y : (n, M, N) complex128
        Received signals ``sqrt(omega) h_m + n_m``.
    positions : (n, 2) float64
        User positions, metres.
    los : (n, M) bool
        Whether the link user -> BS m has a LoS path.
    snr_db : (n,) float64
        Per-sample SNR, dB (``omega = 10^(snr_db/10)`` per antenna).
    h : (n, M, N) complex128
        Noiseless channels, each scaled to ``||h_m||^2 = N``.
    """

    y: np.ndarray
    positions: np.ndarray
    los: np.ndarray
    snr_db: np.ndarray
    h: np.ndarray


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
        return (np.concatenate([self.los_power[..., None], p], axis=-1),
                np.concatenate([self.los_angle[..., None], a], axis=-1))


# --------------------------------------------------------------------------- checks
def _check_scenario(scenario: Any) -> Scenario:
    if not isinstance(scenario, Scenario):
        raise ValueError(f"scenario: expected a daun_lib.Scenario, got {type(scenario).__name__}")
    return scenario


def _check_positions(positions: Any, name: str = "positions") -> np.ndarray:
    p = np.asarray(as_array(positions, name, 2, complex_ok=False), dtype=float)
    if p.shape[1] != 2:
        raise ValueError(f"{name}: expected a finite (n, 2) array, got shape {p.shape}")
    if p.shape[0] < 1:
        raise ValueError(f"{name}: expected at least one position (n >= 1), got an empty (0, 2) batch")
    return p


def _fc_ghz(scenario: Scenario) -> float:
    # Table 7.5-6 note 6: for UMa below 6 GHz use fc = 6 GHz in the LSP formulas.
    return max(scenario.carrier_hz / 1e9, 6.0)


# --------------------------------------------------------------------------- LoS state
def los_probability(d2d: Any, ut_height_m: float = 1.5) -> np.ndarray:
    """UMa LoS probability, TR 38.901 Table 7.4.2-1 (outdoor users).

    ``Pr_LOS = 1`` for ``d2D <= 18 m``, else
    ``[18/d + exp(-d/63) (1 - 18/d)] [1 + C'(h_UT) 5/4 (d/100)^3 exp(-d/150)]``
    with ``C'(h_UT) = 0`` for ``h_UT <= 13 m`` and ``((h_UT - 13)/10)^1.5`` for
    ``13 m < h_UT <= 23 m``.

    Parameters
    ----------
    d2d : (...) float
        2-D BS-user distances, metres: finite and >= 0 (an empty array gives
        an empty result).
    ut_height_m : float
        User height h_UT, metres, at most 23 m (1.5 m by default).

    Returns
    -------
    (...) float
        LoS probability in [0, 1].

    Raises
    ------
    ValueError
        ``d2d`` not real, with NaN/inf or a negative distance; ``ut_height_m``
        not a positive number up to 23 m.
    """
    d = np.asarray(as_array(d2d, "d2d", tuple(range(0, 33)), complex_ok=False), dtype=float)
    if (d < 0).any():
        raise ValueError("d2d: expected distances >= 0")
    h = positive(ut_height_m, "ut_height_m")
    if h > 23.0:
        raise ValueError(f"ut_height_m: the UMa LoS probability is defined for h_UT <= 23 m, got {h!r}")
    c_h = 0.0 if h <= 13.0 else ((h - 13.0) / 10.0) ** 1.5
    ds = np.maximum(d, 18.0)  # avoid 18/0; d <= 18 is overwritten below
    p = (18.0 / ds + np.exp(-ds / 63.0) * (1.0 - 18.0 / ds)) * (
        1.0 + c_h * 1.25 * (ds / 100.0) ** 3 * np.exp(-ds / 150.0)
    )
    return np.where(d <= 18.0, 1.0, np.clip(p, 0.0, 1.0))


def draw_los(scenario: Scenario, positions: Any, seed: Any = None) -> np.ndarray:
    """Draw the LoS state of every link according to ``scenario.los_model``.

    One uniform number is drawn per link whatever the model, so the random
    stream after this call does not depend on ``los_model``.

    Parameters
    ----------
    scenario : Scenario
    positions : (n, 2) float
        User positions, metres; finite, ``n >= 1`` (an empty batch raises).
    seed : int, None or numpy.random.Generator

    Returns
    -------
    (n, M) bool
        ``"always"``: all True; ``"3gpp"``: Bernoulli(:func:`los_probability`
        of the BS-user 2-D distance); float p: Bernoulli(p).

    Raises
    ------
    ValueError
        Naming ``scenario``, ``positions`` or ``seed`` when one is invalid.
    """
    scenario = _check_scenario(scenario)
    p = _check_positions(positions)
    rng = rng_from_seed(seed)
    u = rng.random((p.shape[0], scenario.n_bs))
    model = scenario.los_model
    if model == "always":
        return np.ones_like(u, dtype=bool)
    if model == "3gpp":
        d2d = np.linalg.norm(p[:, None, :] - scenario.bs_array[None, :, :], axis=-1)
        return u < los_probability(d2d, scenario.ut_height_m)
    return u < float(model)


# --------------------------------------------------------------------------- clusters
class _LinkRandoms(NamedTuple):
    """The random numbers of steps 4-7 for ``n x M`` links, drawn in the procedure's order.

    Kept raw (before any arithmetic) so that the deterministic parts can be
    evaluated block by block while the random stream stays exactly that of a
    single full-batch evaluation.
    """

    g_k: np.ndarray      # (n, M) standard normal, K-factor
    g_ds: np.ndarray     # (n, M) standard normal, lgDS
    g_asd: np.ndarray    # (n, M) standard normal, lgASD
    u_tau: np.ndarray    # (n, M, C) uniform [0, 1), cluster delays
    g_z: np.ndarray      # (n, M, C) standard normal, cluster shadowing
    sign: np.ndarray     # (n, M, C) int8 in {-1, 1}, X_n of (7.5-11)
    g_y: np.ndarray      # (n, M, C) standard normal, Y_n of (7.5-11)


def _draw_link_randoms(rng: np.random.Generator, n: int, M: int) -> _LinkRandoms:
    C = _C_MAX
    g_k = rng.standard_normal((n, M))
    g_ds = rng.standard_normal((n, M))
    g_asd = rng.standard_normal((n, M))
    u_tau = rng.random((n, M, C))
    g_z = rng.standard_normal((n, M, C))
    sign = rng.choice(np.array([-1.0, 1.0]), size=(n, M, C)).astype(np.int8)
    g_y = rng.standard_normal((n, M, C))
    return _LinkRandoms(g_k, g_ds, g_asd, u_tau, g_z, sign, g_y)


def _ray_angles(angles: np.ndarray, los: np.ndarray) -> np.ndarray:
    """(..., C, 20) ray azimuths (7.5-13) from cluster azimuths (..., C) and LoS states (...)."""
    c_asd = np.where(los, UMA_LOS["c_asd_deg"], UMA_NLOS["c_asd_deg"])
    return _wrap(angles[..., None] + np.deg2rad(c_asd[..., None, None] * RAY_OFFSETS))


def _link_fields(scenario: Scenario, p: np.ndarray, los_arr: np.ndarray, r: _LinkRandoms) -> dict[str, np.ndarray]:
    """Steps 4-7 for one block of links from its random numbers (every operation is per link).

    Returns the fields of :class:`Clusters` except ``los`` and ``ray_angles``.
    """
    n, M = los_arr.shape
    C = _C_MAX
    lgfc = np.log10(_fc_ghz(scenario))

    def par(key: str) -> np.ndarray:  # per-link parameter, LoS or NLoS table
        return np.where(los_arr, UMA_LOS[key], UMA_NLOS[key])

    # ---- step 4: large-scale parameters (independent per link)
    k_db = UMA_LOS["k_mu"] + UMA_LOS["k_sigma"] * r.g_k
    lgds = par("lgds_a") + par("lgds_b") * lgfc + par("lgds_sigma") * r.g_ds
    lgasd = par("lgasd_a") + par("lgasd_b") * lgfc + par("lgasd_sigma") * r.g_asd
    ds = 10.0 ** lgds
    asd = np.minimum(10.0 ** lgasd, _ASD_MAX_DEG)
    k_db = np.where(los_arr, k_db, np.nan)
    k_lin = np.where(los_arr, 10.0 ** (np.nan_to_num(k_db) / 10.0), 0.0)

    n_clusters = par("n_clusters").astype(int)                       # (n, M)
    valid = np.arange(C)[None, None, :] < n_clusters[..., None]      # (n, M, C)
    r_tau = par("r_tau")[..., None]

    # ---- step 5: cluster delays
    x = 1.0 - r.u_tau                                                # U(0, 1]
    tau = -r_tau * ds[..., None] * np.log(x)                         # (7.5-1)
    tau = np.where(valid, tau, np.inf)
    tau = np.sort(tau - tau.min(axis=-1, keepdims=True), axis=-1)    # (7.5-2), padding sorts last

    # ---- step 6: cluster powers
    z = par("zeta_db")[..., None] * r.g_z
    with np.errstate(invalid="ignore"):
        p_pr = np.exp(-tau * (r_tau - 1.0) / (r_tau * ds[..., None])) * 10.0 ** (-z / 10.0)  # (7.5-5)
    p_pr = np.where(valid, p_pr, 0.0)
    p_n = p_pr / p_pr.sum(axis=-1, keepdims=True)                    # (7.5-6)
    los_power = k_lin / (k_lin + 1.0)                                # (7.5-7)
    diffuse = p_n / (k_lin[..., None] + 1.0)                         # NLoS part of (7.5-8)
    p_ang = diffuse.copy()
    p_ang[..., 0] += los_power                                       # (7.5-8), used in (7.5-9) only
    keep = p_n >= p_n.max(axis=-1, keepdims=True) * 10.0 ** (-_CUT_DB / 10.0)  # -25 dB cut
    powers = np.where(keep & valid, diffuse, 0.0)

    # ---- step 7: azimuths (departure side = BS side)
    c_phi_nlos = np.where(los_arr, _C_PHI_NLOS[int(UMA_LOS["n_clusters"])],
                          _C_PHI_NLOS[int(UMA_NLOS["n_clusters"])])
    kd = np.nan_to_num(k_db)
    c_phi = np.where(los_arr, c_phi_nlos * (1.1035 - 0.028 * kd - 0.002 * kd**2 + 0.0001 * kd**3),
                     c_phi_nlos)                                     # (7.5-10)
    ratio = np.where(valid, p_ang / p_ang.max(axis=-1, keepdims=True), 1.0)
    phi_pr = 2.0 * (asd[..., None] / 1.4) * np.sqrt(-np.log(ratio)) / c_phi[..., None]  # (7.5-9), deg
    sign = r.sign.astype(float)                                      # X_n uniform on {-1, 1}
    y_n = (asd[..., None] / 7.0) * r.g_y                             # Y_n ~ N(0, (ASD/7)^2)
    los_angle = scenario.los_angles(p)                               # (n, M) rad
    offs = sign * phi_pr + y_n                                       # (7.5-11) without phi_LOS
    offs = offs - np.where(los_arr, offs[..., 0], 0.0)[..., None]    # (7.5-12): cluster 1 on the LoS
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


def _blocks(n: int) -> list[slice]:
    return [slice(s, min(s + _CHUNK, n)) for s in range(0, n, _CHUNK)]


def _rows(r: _LinkRandoms, sl: slice) -> _LinkRandoms:
    return _LinkRandoms(*(f[sl] for f in r))


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
    scenario = _check_scenario(scenario)
    p = _check_positions(positions)
    n, M = p.shape[0], scenario.n_bs
    los_arr = np.asarray(los)
    if los_arr.dtype != bool or los_arr.shape != (n, M):
        raise ValueError(f"los: expected a bool array of shape ({n}, {M}), got {los_arr.dtype} {los_arr.shape}")
    rng = rng_from_seed(seed)
    fields = _link_fields(scenario, p, los_arr, _draw_link_randoms(rng, n, M))
    return Clusters(los=los_arr.copy(), ray_angles=_ray_angles(fields["angles"], los_arr), **fields)


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


# --------------------------------------------------------------------------- channel
def _sum_rays(N: int, spacing: float, los_power: np.ndarray, los_angle: np.ndarray, powers: np.ndarray,
              ray_angles: np.ndarray, rng: np.random.Generator, out: np.ndarray) -> None:
    """Steps 10-11 for one block: ``out (b, M, N)`` = normalised sum of the rays.

    ``powers (b, M, c)`` and ``ray_angles (b, M, c, R)`` hold the cluster slots
    that are summed; draws the ray phases of the block (one uniform per ray,
    shape ``(b, M, 1 + c R)``, LoS ray first).
    """
    b, M, c, R = ray_angles.shape
    pw = np.concatenate([los_power[..., None],
                         np.broadcast_to(powers[..., None] / R, (b, M, c, R)).reshape(b, M, c * R)], axis=-1)
    an = np.concatenate([los_angle[..., None], ray_angles.reshape(b, M, c * R)], axis=-1)
    phase = rng.uniform(-np.pi, np.pi, size=pw.shape)
    k0 = -(N - 1) / 2.0
    u = 2.0 * np.pi * spacing * np.sin(an)                          # phase step per element
    w = np.sqrt(pw) * np.exp(1j * (phase + k0 * u))                  # ray weight x element 0
    step = np.exp(1j * u)
    for i in range(N):                                              # h[k] = sum_r w_r step_r^k
        out[:, :, i] = w.sum(axis=-1)
        w *= step
    energy = np.sum(np.abs(out) ** 2, axis=-1, keepdims=True)
    if not (np.isfinite(energy).all() and (energy > 0).all()):
        raise ValueError("clusters: a link's rays sum to a zero or non-finite channel (check its powers and angles)")
    out *= np.sqrt(N / energy)


def _used_slots(powers: np.ndarray) -> int:
    """Number of leading cluster slots that carry power somewhere in ``powers (n, M, C)``."""
    used = np.flatnonzero((powers > 0).any(axis=(0, 1)))
    return int(used.max()) + 1 if used.size else 0


def _check_clusters(clusters: Any, M: int) -> None:
    if not isinstance(clusters, Clusters):
        raise ValueError(f"clusters: expected a Clusters tuple from draw_clusters, got {type(clusters).__name__}")
    la = np.asarray(clusters.los_angle)
    if la.ndim != 2 or la.shape[1] != M:
        raise ValueError(f"clusters: expected {M} BSs, got shape {la.shape}")
    n = la.shape[0]
    if n < 1:
        raise ValueError("clusters: expected at least one sample (n >= 1), got an empty batch")
    want = {"los_power": (n, M), "los_angle": (n, M), "powers": (n, M, None), "angles": (n, M, None),
            "ray_angles": (n, M, None, RAY_OFFSETS.size)}
    arrays = {}
    for name, shape in want.items():
        a = np.asarray(getattr(clusters, name))
        if a.dtype == object or not np.issubdtype(a.dtype, np.floating) or a.ndim != len(shape) or any(
            s is not None and s != t for s, t in zip(shape, a.shape)
        ):
            raise ValueError(f"clusters.{name}: expected a float array of shape {shape} (None: any), "
                             f"got {a.dtype} {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"clusters.{name}: contains NaN or inf")
        arrays[name] = a
    if arrays["powers"].shape[2] != arrays["ray_angles"].shape[2]:
        raise ValueError(f"clusters.ray_angles: expected {arrays['powers'].shape[2]} cluster slots like powers, "
                         f"got {arrays['ray_angles'].shape[2]}")
    if (arrays["powers"] < 0).any() or (arrays["los_power"] < 0).any():
        raise ValueError("clusters.powers / clusters.los_power: expected non-negative powers")
    if ((arrays["powers"].sum(-1) + arrays["los_power"]) <= 0).any():
        raise ValueError("clusters.powers: every link needs a positive total power")


def channel_vectors(scenario: Scenario, clusters: Clusters, seed: Any = None) -> np.ndarray:
    """Sum the rays of ``clusters`` into normalised channel vectors (steps 10-11).

    ``h_m = c sum_i sqrt(P_i) exp(j Phi_i) a(theta_i)`` over the LoS ray and all
    cluster rays of :meth:`Clusters.rays`, with independent phases
    ``Phi_i ~ U(-pi, pi)``, unit-norm steering vectors ``a`` of
    :func:`daun_lib.scenario.steering` and ``c`` such that ``||h_m||^2 = N``.

    Parameters
    ----------
    scenario : Scenario
        Supplies N and the element spacing.
    clusters : Clusters
        From :func:`draw_clusters`, ``n >= 1`` samples and ``M = scenario.n_bs``.
        Checked: consistent shapes, finite angles and powers, non-negative
        powers and a positive total power on every link.
    seed : int, None or numpy.random.Generator
        Draws the ray phases (block by block, in a fixed order).

    Returns
    -------
    (n, M, N) complex128

    Raises
    ------
    ValueError
        Naming ``scenario``, ``clusters`` (or the offending field) or ``seed``.
    """
    scenario = _check_scenario(scenario)
    _check_clusters(clusters, scenario.n_bs)
    rng = rng_from_seed(seed)
    N, d = scenario.n_antennas, scenario.antenna_spacing
    n, M = clusters.los_angle.shape
    # Cluster slots that carry power anywhere in the batch (drops the padding of all-LoS batches).
    c_used = _used_slots(clusters.powers)
    h = np.empty((n, M, N), dtype=complex)
    for sl in _blocks(n):
        _sum_rays(N, d, clusters.los_power[sl], clusters.los_angle[sl], clusters.powers[sl, :, :c_used],
                  clusters.ray_angles[sl, :, :c_used], rng, h[sl])
    return h


#: Accepted per-antenna SNR range of :func:`simulate`, dB.  At the bounds the
#: signal amplitude ``10^(snr_db / 20)`` is about 3e7 or 3e-8, far from the
#: float64 (and float32) limits even after squaring and summing over a batch.
SNR_DB_RANGE: tuple[float, float] = (-150.0, 150.0)


def _check_snr(snr_db: Any, n: int) -> np.ndarray:
    if isinstance(snr_db, bool):
        raise ValueError(f"snr_db: expected a finite number or a length-{n} array, got {snr_db!r}")
    s = np.asarray(as_array(snr_db, "snr_db", (0, 1), complex_ok=False), dtype=float)
    if s.ndim == 1 and s.shape[0] != n:
        raise ValueError(f"snr_db: expected a number or a length-{n} array, got length {s.shape[0]}")
    lo, hi = SNR_DB_RANGE
    if s.size and ((s < lo).any() or (s > hi).any()):
        raise ValueError(f"snr_db: expected values in [{lo:g}, {hi:g}] dB (SNR_DB_RANGE), got "
                         f"min {s.min():g}, max {s.max():g}")
    return np.broadcast_to(s, (n,)).copy()


def simulate(scenario: Scenario, n: int, snr_db: Any, seed: Any = None) -> ChannelBatch:
    """Draw ``n`` users uniformly in the area and their received signals (1).

    Parameters
    ----------
    scenario : Scenario
        Geometry, arrays, carrier and ``los_model``.
    n : int
        Number of samples (>= 1).
    snr_db : float or (n,) float
        Per-antenna SNR in dB, one for all samples or one per sample, within
        :data:`SNR_DB_RANGE` ([-150, 150] dB).
    seed : int, None or numpy.random.Generator
        The same int seed gives identical output.

    Returns
    -------
    ChannelBatch
        ``y`` (n, M, N), ``positions`` (n, 2), ``los`` (n, M), ``snr_db`` (n,),
        ``h`` (n, M, N) with ``||h[i, m]||^2 = N``; all finite.

    Raises
    ------
    ValueError
        Naming ``scenario``, ``n``, ``snr_db`` or ``seed`` when one is invalid.

    Notes
    -----
    Random draws, in order: positions, LoS states (:func:`draw_los`), cluster
    parameters (:func:`draw_clusters`), ray phases (:func:`channel_vectors`),
    noise.  The result equals ``channel_vectors(scenario, draw_clusters(...))``
    plus noise, bit for bit, but the rays, channel vectors and noise are
    computed in blocks of ``_CHUNK`` samples: beyond the returned arrays
    (6.3 KiB per sample at the paper's M = 4, N = 50) memory holds the per-link
    random numbers of the cluster draw (about 2.2 KiB per sample) and a fixed
    working set for one block (some tens of MB), instead of the full ray
    arrays of the whole batch.
    """
    scenario = _check_scenario(scenario)
    n = positive(n, "n", integer=True)
    snr = _check_snr(snr_db, n)
    rng = rng_from_seed(seed)
    half = scenario.area_size / 2.0
    M, N = scenario.n_bs, scenario.n_antennas
    positions = rng.uniform(-half, half, size=(n, 2))
    los = draw_los(scenario, positions, rng)
    raw = _draw_link_randoms(rng, n, M)
    blocks = _blocks(n)
    # Pass 1: which cluster slots carry power anywhere in the batch (fixes the ray count, hence the stream).
    # A single block keeps its fields for pass 2 (the Monte Carlo engine draws one sample at a time).
    c_used, first = 0, None
    for sl in blocks:
        f = _link_fields(scenario, positions[sl], los[sl], _rows(raw, sl))
        c_used = max(c_used, _used_slots(f["powers"]))
        first = f if len(blocks) == 1 else None
    # Pass 2: rays -> channel vectors, block by block (ray phases drawn in block order).
    h = np.empty((n, M, N), dtype=complex)
    for sl in blocks:
        f = first if first is not None else _link_fields(scenario, positions[sl], los[sl], _rows(raw, sl))
        ray_angles = _ray_angles(f["angles"][..., :c_used], los[sl])
        _sum_rays(N, scenario.antenna_spacing, f["los_power"], f["los_angle"], f["powers"][..., :c_used],
                  ray_angles, rng, h[sl])
    del raw
    y = np.empty_like(h)
    amp = np.sqrt(10.0 ** (snr / 10.0))
    to_complex = np.array([1.0, 1j])
    for sl in blocks:
        noise = rng.standard_normal((sl.stop - sl.start, M, N, 2)) @ to_complex / np.sqrt(2.0)
        y[sl] = amp[sl, None, None] * h[sl] + noise
    if not (np.isfinite(y).all() and np.isfinite(h).all()):
        raise FloatingPointError("simulate: produced a non-finite signal; please report this with the arguments used")
    return ChannelBatch(y=y, positions=positions, los=los, snr_db=snr, h=h)
