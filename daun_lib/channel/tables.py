"""TR 38.901 v16.1 UMa parameters used by the channel model (Tables 7.5-2, 7.5-3, 7.5-6).

Only the entries that a narrowband, azimuth-only model needs; see :mod:`daun_lib.channel`
for the procedure that uses them.
"""

from __future__ import annotations

import numpy as np

from ..scenario import Scenario

__all__ = ["RAY_OFFSETS", "UMA_LOS", "UMA_NLOS"]

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
_C_PHI_NLOS = {
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

_C_MAX = int(max(UMA_LOS["n_clusters"], UMA_NLOS["n_clusters"]))
_CUT_DB = 25.0  # step 6: remove clusters more than 25 dB below the strongest
_ASD_MAX_DEG = 104.0  # step 4: ASD = min(ASD, 104 deg)
_CHUNK = 256  # samples per block when summing rays (memory bound, fixed for determinism)


def fc_ghz(scenario: Scenario) -> float:
    """Carrier in GHz for the LSP formulas of Table 7.5-6 (floored at 6 GHz, note 6)."""
    # Table 7.5-6 note 6: for UMa below 6 GHz use fc = 6 GHz in the LSP formulas.
    return max(scenario.carrier_hz / 1e9, 6.0)
