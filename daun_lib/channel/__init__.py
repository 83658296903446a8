"""Narrowband 3GPP TR 38.901 (v16.1) UMa channels and the signal model (1).

The BS arrays are the receivers.  For every user position and BS the module
draws a clustered multipath channel following the fast-fading procedure of
TR 38.901 Sec. 7.5 (steps 3-11), restricted to what a narrowband, single-antenna-user
model needs (BS-side azimuths; in ``Scenario(geometry="3d")`` also BS-side zeniths), and
returns the received signals

    y_m = sqrt(omega) h_m + n_m,   n_m ~ CN(0, I_N),   ||h_m||^2 = N,        (1)

so that ``omega = 10^(snr_db / 10)`` is the SNR per antenna at every BS (the
paper's unit noise power; no path loss: every ``h_m`` is normalised).

Several users in one snapshot (``simulate(..., n_users=U)``, ``U >= 2``; issue 14): ``U``
single-antenna users transmit on the same resource and every BS receives the superposition of
their signals with one noise draw,

    y_m = sum_u sqrt(omega_u) h_{u,m} + n_m,   n_m ~ CN(0, I_N),   ||h_{u,m}||^2 = N,

each user with its own position (uniform in the area, independent of the others; pairs closer
than ``min_separation_m`` are redrawn), its own LoS states and clustered channel to every BS
(drawn exactly as for a single user) and its own per-antenna SNR ``omega_u = 10^(snr_db_u / 10)``:
``snr_db`` for all users by default, or ``snr_db`` plus an offset uniform in
``[-power_spread_db / 2, +power_spread_db / 2]`` per user.  The batch then holds positions
``(n, U, 2)``, LoS states ``(n, U, M)``, per-user SNR ``(n, U)`` and channels ``(n, U, M, N)``;
``y`` stays ``(n, M, N)``.  ``n_users=1`` (the default) is the single-user batch, bit for bit.

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
* ``geometry="3d"`` only (the 2-D path draws none of these numbers and is bit-identical to
  the azimuth-only model): the arrays are horizontal ULAs at ``bs_height_m``, users at
  ``ut_height_m``; the BS is the receiver, so the BS-side zeniths are the *departure* ones
  (ZOD, ZSD) of the downlink tables.  Zenith angles are measured from the vertical
  (90 deg = horizontal; elevation = 90 deg - zenith):

  - LoS zenith ``theta_LOS,ZOD = 90 deg + atan((h_BS - h_UT) / d2D)`` (user below the array).
  - lgZSD (Table 7.5-7, to which Table 7.5-6 Part-1 refers for UMa):
    ``N(max(-0.5, -2.1 d2D/1000 - 0.01 (h_UT - 1.5) + 0.75), 0.40^2)`` LoS,
    ``... + 0.9), 0.49^2)`` NLoS; ZSD capped at 52 deg (step 4).  ZOD offset
    ``mu_offset,ZOD``: 0 for LoS, ``e(fc) - 10^(a(fc) log10(max(25, d2D)) + c(fc) - 0.07 (h_UT - 1.5))``
    for NLoS (Table 7.5-7).
  - Cluster zeniths ``X_n theta'_n + Y_n + theta_LOS,ZOD + mu_offset,ZOD`` (7.5-14, 7.5-19) with
    ``theta'_n = -ZSD ln(P_n / max P_n) / C_theta``, ``C_theta^NLOS`` of Table 7.5-4 (12 and 20
    clusters), scaled by the K-factor on LoS links (7.5-15), ``X_n`` uniform on {-1, 1},
    ``Y_n ~ N(0, (ZSD/7)^2)``; on LoS links cluster 1 is forced onto the LoS zenith (the
    (7.5-17) form).  Zeniths beyond 180 deg are reflected (note of 7.5-16).
  - Ray zeniths ``theta_n + (3/8) 10^mu_lgZSD alpha_m`` (7.5-20), ``alpha_m`` of Table 7.5-3,
    and the 20 ray zeniths of a cluster randomly coupled to its 20 ray azimuths (step 8).
  - A horizontal ULA along ``scenario.array_axes[m]`` measures ``u = sin(zenith) sin(azimuth -
    broadside)`` of a ray (``cos(elevation)`` times the horizontal direction's component along
    the axis); the LoS ray uses ``u = scenario.los_sines(positions)`` (the 3-D cone angle).
  - Random order: the 2-D quantities of step 4-7 first (so a 3-D batch has the same azimuths,
    powers and K-factors as the 2-D batch of the same seed), then lgZSD, the zenith signs X_n,
    Y_n and the coupling permutations, then the ray phases and the noise.
* ``scenario.multipath=False`` (pure LoS, the model of the position CRB in
  :mod:`daun_lib.bounds`): every number above is drawn as usual (same seed, same
  users, LSPs, clusters, ray phases and noise), but each link keeps only its LoS ray,
  ``h_m = exp(j Phi_LoS) sqrt(N) a_m(u_m(p))`` (``||h_m||^2 = N`` holds as it is).
  It requires ``los_model="always"``: a blocked link has no LoS ray.
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
* ``"2d"``: azimuth only, no zenith angles.  Both geometries: no antenna element pattern
  (isotropic elements), no polarisation (single polarisation, no XPR), single-antenna users
  (the UT-side angles AOA/ZOA/ZSA are not drawn: they do not affect a single isotropic
  receive element), one carrier frequency (no bandwidth, no Doppler).
* ``"3d"``: one height for all users (``scenario.ut_height_m``) unless
  ``scenario.ut_height_range_m`` is set: then each user's height is drawn uniformly in the
  range (from a jumped-ahead stream, so every other draw is that of the fixed-height batch;
  ``ChannelBatch.ut_heights``) and enters the LoS probability, the LoS zenith, lgZSD, the ZOD
  offset and the LoS cone sine, while the dictionaries keep ``ut_height_m``; users outdoors (no O2I, so no ``theta_ZOA = 90 deg`` rule), the ZSD is
  independent of the other LSPs (no cross-correlation with DS/ASD/K).
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

from .clusters import Clusters, draw_clusters, rms_angular_spread
from .los import draw_los, los_probability
from .signals import MAX_USERS, SNR_DB_RANGE, ChannelBatch, channel_vectors, simulate
from .tables import RAY_OFFSETS, UMA_LOS, UMA_NLOS

__all__ = [
    "ChannelBatch",
    "Clusters",
    "UMA_LOS",
    "UMA_NLOS",
    "RAY_OFFSETS",
    "MAX_USERS",
    "SNR_DB_RANGE",
    "los_probability",
    "draw_los",
    "draw_clusters",
    "channel_vectors",
    "rms_angular_spread",
    "simulate",
]
