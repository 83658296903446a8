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

from .clusters import Clusters, draw_clusters, rms_angular_spread
from .los import draw_los, los_probability
from .signals import SNR_DB_RANGE, ChannelBatch, channel_vectors, simulate
from .tables import RAY_OFFSETS, UMA_LOS, UMA_NLOS

__all__ = [
    "ChannelBatch",
    "Clusters",
    "UMA_LOS",
    "UMA_NLOS",
    "RAY_OFFSETS",
    "SNR_DB_RANGE",
    "los_probability",
    "draw_los",
    "draw_clusters",
    "channel_vectors",
    "rms_angular_spread",
    "simulate",
]
