"""TR 38.901 v16.1 UMa parameters used by the channel model (Tables 7.5-2 .. 7.5-7).

Only the entries that a narrowband model with BS-side azimuths (and, in ``geometry="3d"``,
BS-side zeniths) needs; see :mod:`daun_lib.channel` for the procedure that uses them.
"""

from __future__ import annotations

import numpy as np

from ..scenario import Scenario

__all__ = ["RAY_OFFSETS", "UMA_LOS", "UMA_NLOS", "UMA_ZSD", "mu_lgzsd", "zod_offset_deg"]

RAY_OFFSETS: np.ndarray = np.array(
    [
        0.0447,
        -0.0447,
        0.1413,
        -0.1413,
        0.2492,
        -0.2492,
        0.3715,
        -0.3715,
        0.5129,
        -0.5129,
        0.6797,
        -0.6797,
        0.8844,
        -0.8844,
        1.1481,
        -1.1481,
        1.5195,
        -1.5195,
        2.1551,
        -2.1551,
    ]
)
"""(20,) float: ray offset angles alpha_m of Table 7.5-3 (for a 1 deg rms spread)."""

# Table 7.5-2: scaling factor C_phi^NLOS for the AOA/AOD generation.
C_PHI_NLOS = {
    4: 0.779,
    5: 0.860,
    8: 1.018,
    10: 1.090,
    11: 1.123,
    12: 1.146,
    14: 1.190,
    15: 1.211,
    16: 1.226,
    19: 1.273,
    20: 1.289,
    25: 1.358,
}

UMA_LOS: dict[str, float] = {
    "k_mu": 9.0,
    "k_sigma": 3.5,  # K-factor, dB
    "lgds_a": -6.955,
    "lgds_b": -0.0963,
    "lgds_sigma": 0.66,  # mu = a + b log10(fc)
    "lgasd_a": 1.06,
    "lgasd_b": 0.1114,
    "lgasd_sigma": 0.28,
    "n_clusters": 12,
    "n_rays": 20,
    "r_tau": 2.5,
    "zeta_db": 3.0,
    "c_asd_deg": 5.0,
}
"""TR 38.901 v16.1 Table 7.5-6 Part-1, UMa LoS (the entries this module uses)."""

UMA_NLOS: dict[str, float] = {
    "lgds_a": -6.28,
    "lgds_b": -0.204,
    "lgds_sigma": 0.39,
    "lgasd_a": 1.5,
    "lgasd_b": -0.1144,
    "lgasd_sigma": 0.28,
    "n_clusters": 20,
    "n_rays": 20,
    "r_tau": 2.3,
    "zeta_db": 3.0,
    "c_asd_deg": 2.0,
}
"""TR 38.901 v16.1 Table 7.5-6 Part-1, UMa NLoS (the entries this module uses)."""

# Table 7.5-4: scaling factor C_theta^NLOS for the ZOA/ZOD generation.
C_THETA_NLOS = {
    8: 0.889,
    10: 0.957,
    11: 1.031,
    12: 1.104,
    15: 1.1088,
    19: 1.184,
    20: 1.178,
    25: 1.282,
}

UMA_ZSD: dict[str, dict[str, float]] = {
    "los": {"offset": 0.75, "sigma": 0.40},
    "nlos": {"offset": 0.90, "sigma": 0.49},
}
"""TR 38.901 v16.1 UMa lgZSD = log10(ZSD / 1 deg) (Table 7.5-6 Part-1 refers UMa's ZSD to
Table 7.5-7): mean ``max(-0.5, -2.1 d2D/1000 - 0.01 (h_UT - 1.5) + offset)``, std ``sigma``."""

ZSD_MAX_DEG = 52.0  # step 4: ZSD = min(ZSD, 52 deg)


def _check_link(d2d: np.ndarray, ut_height_m: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``d2d`` (finite, >= 0 metres) and ``ut_height_m`` (finite) as float arrays, else ``ValueError`` naming them."""
    out = []
    for name, v in (("d2d", d2d), ("ut_height_m", ut_height_m)):
        try:
            arr = np.asarray(v, dtype=float)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}: expected real numbers (metres), got {type(v).__name__}") from exc
        if not np.isfinite(arr).all() or (name == "d2d" and (arr < 0).any()):
            raise ValueError(f"{name}: expected finite distances >= 0 (metres), got {v!r:.80}")
        out.append(arr)
    return out[0], out[1]


def mu_lgzsd(d2d: np.ndarray, ut_height_m: float | np.ndarray, los: np.ndarray) -> np.ndarray:
    """Mean of lgZSD for UMa, Table 7.5-7 (LoS / NLoS rows), same shape as ``d2d`` (..., float, metres)."""
    d2d, ut_height_m = _check_link(d2d, ut_height_m)
    off = np.where(los, UMA_ZSD["los"]["offset"], UMA_ZSD["nlos"]["offset"])
    return np.maximum(-0.5, -2.1 * d2d / 1000.0 - 0.01 * (ut_height_m - 1.5) + off)


def zod_offset_deg(fc: float, d2d: np.ndarray, ut_height_m: float | np.ndarray, los: np.ndarray) -> np.ndarray:
    """ZOD offset mu_offset,ZOD of Table 7.5-7 (UMa), degrees, same shape as ``d2d`` (metres).

    LoS: 0.  NLoS: ``e(fc) - 10^(a(fc) log10(max(b(fc), d2D)) + c(fc) - 0.07 (h_UT - 1.5))`` with
    ``a = 0.208 log10(fc) - 0.782``, ``b = 25``, ``c = -0.13 log10(fc) + 2.03``,
    ``e = 7.66 log10(fc) - 5.96`` (``fc`` in GHz, as in the LSP formulas).
    """
    d2d, ut_height_m = _check_link(d2d, ut_height_m)
    if isinstance(fc, bool) or not isinstance(fc, (int, float, np.floating, np.integer)) or not 0 < fc < np.inf:
        raise ValueError(f"fc: expected a finite carrier > 0 (GHz), got {fc!r}")
    lgfc = np.log10(fc)
    a = 0.208 * lgfc - 0.782
    c = -0.13 * lgfc + 2.03
    e = 7.66 * lgfc - 5.96
    nlos = e - 10.0 ** (a * np.log10(np.maximum(25.0, d2d)) + c - 0.07 * (ut_height_m - 1.5))
    return np.where(los, 0.0, nlos)


C_MAX = int(max(UMA_LOS["n_clusters"], UMA_NLOS["n_clusters"]))
CUT_DB = 25.0  # step 6: remove clusters more than 25 dB below the strongest
ASD_MAX_DEG = 104.0  # step 4: ASD = min(ASD, 104 deg)


def fc_ghz(scenario: Scenario) -> float:
    """Carrier in GHz for the LSP formulas of Table 7.5-6 (floored at 6 GHz, note 6)."""
    # Table 7.5-6 note 6: for UMa below 6 GHz use fc = 6 GHz in the LSP formulas.
    return max(scenario.carrier_hz / 1e9, 6.0)
