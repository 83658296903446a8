"""Channel statistics against TR 38.901 UMa: LoS probability per distance bin, K-factor and angular spreads.

:func:`channel_statistics` draws ``n_users`` users with the TR 38.901 LoS
probability (Table 7.4.2-1) and returns the rows of
``results/channel_los_probability.csv`` (drawn LoS fraction per 5 m bin next
to the formula) and ``results/channel_stats.csv`` (drawn lgASD, realised RMS
angular spread (Annex A) and K-factor next to Table 7.5-6), for the drawn
LoS states and for all links LoS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ChannelStatistics:
    """What :func:`channel_statistics` returns.

    ``links``: the simulated batch (positions (n, 2), los (n, M));
    ``los_rows`` and ``stat_rows``: the CSV rows; ``spreads``: the drawn
    values per ``(links, state, quantity)``, e.g. ``("all-LoS", "LoS", "k_factor_db")``.
    """

    links: Any
    los_rows: list
    stat_rows: list
    spreads: dict


def los_probability_rows(
    d2d: np.ndarray, los: np.ndarray, ut_height_m: float, *, bin_m: float = 5.0, min_links: int = 5
) -> list[dict]:
    """Drawn LoS fraction per distance bin next to the TR 38.901 formula averaged over the same links.

    Parameters
    ----------
    d2d : (n, M) float, BS-user distances (m)
    los : (n, M) bool, drawn LoS states
    ut_height_m : float, user height (m)
    bin_m : float > 0, bin width (m)
    min_links : int, bins with fewer links are left out

    Returns
    -------
    list of dict with ``d_lo_m, d_hi_m, n_links, p_los_drawn, p_los_stderr, p_los_3gpp``
    """
    from .. import channel
    from .._validation import positive

    d2d = np.asarray(d2d, dtype=float)
    los = np.asarray(los)
    if d2d.shape != los.shape or d2d.ndim != 2 or d2d.size == 0:
        raise ValueError(f"d2d, los: expected two (n, M) arrays of equal shape, got {d2d.shape} and {los.shape}")
    bin_m = positive(bin_m, "bin_m")
    edges = np.arange(np.floor(d2d.min() / bin_m) * bin_m, d2d.max() + bin_m, bin_m)
    which = np.digitize(d2d.ravel(), edges) - 1
    formula = channel.los_probability(d2d.ravel(), ut_height_m)
    rows = []
    for b in range(len(edges) - 1):
        sel = which == b
        if sel.sum() >= min_links:
            n_b = int(sel.sum())
            p_hat = float(los.ravel()[sel].mean())
            rows.append(
                {
                    "d_lo_m": edges[b],
                    "d_hi_m": edges[b + 1],
                    "n_links": n_b,
                    "p_los_drawn": p_hat,
                    "p_los_stderr": float(np.sqrt(max(p_hat * (1 - p_hat), 1e-12) / n_b)),
                    "p_los_3gpp": float(formula[sel].mean()),
                }
            )
    return rows


def channel_statistics(n_users: int, seed: int) -> ChannelStatistics:
    """LoS probability, K-factor and angular-spread statistics of ``n_users`` users of ``Scenario(los_model="3gpp")``.

    Three seeds are drawn from ``numpy.random.default_rng(seed)``: the users
    and their LoS states (:func:`daun_lib.channel.simulate`), then the
    clusters (:func:`daun_lib.channel.draw_clusters`) with those LoS states
    ("3gpp") and with all links LoS ("all-LoS").

    Parameters
    ----------
    n_users : int >= 1
    seed : int >= 0
    """
    from .. import channel
    from .._validation import positive
    from ..scenario import Scenario

    n_users = positive(n_users, "n_users", integer=True)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative int, got {seed!r}")
    scenario = Scenario(los_model="3gpp")
    rng = np.random.default_rng(seed)
    seeds = rng.integers(2**63, size=3)
    links = channel.simulate(scenario, n_users, 0.0, seed=int(seeds[0]))  # LoS states from the full pipeline
    d2d = np.linalg.norm(links.positions[:, None, :] - scenario.bs_array[None], axis=-1)  # (n, M) metres
    los_rows = los_probability_rows(d2d, links.los, scenario.ut_height_m)

    stat_rows = []
    spreads = {}
    for name, los, s in (("3gpp", links.los, seeds[1]), ("all-LoS", np.ones_like(links.los), seeds[2])):
        cl = channel.draw_clusters(scenario, links.positions, los, seed=int(s))
        rms = np.rad2deg(channel.rms_angular_spread(*cl.rays()))  # (n, M) deg
        for state, sel in (("LoS", cl.los), ("NLoS", ~cl.los)):
            if not sel.any():
                continue
            table = channel.UMA_LOS if state == "LoS" else channel.UMA_NLOS
            lg_mu = table["lgasd_a"] + table["lgasd_b"] * np.log10(scenario.carrier_hz / 1e9)
            quantities = [
                ("lg_asd_drawn", np.log10(cl.asd_deg[sel]), lg_mu, table["lgasd_sigma"]),
                ("lg_rms_spread", np.log10(rms[sel]), lg_mu, table["lgasd_sigma"]),
            ]
            if state == "LoS":
                quantities.append(("k_factor_db", cl.k_factor_db[sel], table["k_mu"], table["k_sigma"]))
            for q, v, mu, sd in quantities:
                stat_rows.append(
                    {
                        "links": name,
                        "state": state,
                        "quantity": q,
                        "n": int(v.size),
                        "mean": float(v.mean()),
                        "std": float(v.std()),
                        "median": float(np.median(v)),
                        "p10": float(np.percentile(v, 10)),
                        "p90": float(np.percentile(v, 90)),
                        "table_mean": float(mu),
                        "table_std": float(sd),
                    }
                )
                spreads[(name, state, q)] = v
    return ChannelStatistics(links=links, los_rows=los_rows, stat_rows=stat_rows, spreads=spreads)


__all__ = ["ChannelStatistics", "channel_statistics", "los_probability_rows"]
