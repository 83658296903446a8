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


def plot_channel_stats(los_table: list, stats_table: list, spreads: dict, ut_height_m: float) -> Any:
    """Notebook 01, ``figures/channel_stats``: three panels against TR 38.901 UMa.

    Left: the drawn LoS fraction per distance bin (+-2 s.e.) over the formula of Table 7.4.2-1; middle: the
    histogram of the drawn K-factor (all-LoS links) over N(9 dB, 3.5 dB); right: the CDF of the BS-side RMS
    angular spread of the generated rays (LoS, NLoS links of the "3gpp" draw) next to the lgASD distribution
    of Table 7.5-6.  No estimator curves: the colours are the LoS (C0) and NLoS (C1) states, black the standard.

    Parameters
    ----------
    los_table, stats_table : list of dict
        ``results/channel_los_probability.csv`` and ``results/channel_stats.csv`` (:func:`channel_statistics`).
    spreads : dict
        :attr:`ChannelStatistics.spreads` (the drawn values; not in the CSVs).
    ut_height_m : float
        The user height of the formula (m).

    Returns
    -------
    matplotlib Figure
    """
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    from .. import channel

    fig, axes = plt.subplots(1, 3, figsize=(7.16, 2.3), constrained_layout=True)

    ax = axes[0]
    d = np.linspace(10, 150, 300)
    ax.plot(d, channel.los_probability(d, ut_height_m), color="k", lw=0.8, label="TR 38.901 formula")
    mid = np.array([(r["d_lo_m"] + r["d_hi_m"]) / 2 for r in los_table])
    ax.errorbar(
        mid,
        [r["p_los_drawn"] for r in los_table],
        yerr=[2 * r["p_los_stderr"] for r in los_table],
        fmt="o",
        ms=2.5,
        lw=0.7,
        color="C0",
        label="drawn ($\\pm$2 s.e.)",
    )
    ax.set_xlabel("BS-user distance (m)")
    ax.set_ylabel("LoS probability")
    ax.set_ylim(0, 1.05)
    ax.legend()

    ax = axes[1]
    k = spreads[("all-LoS", "LoS", "k_factor_db")]
    ax.hist(k, bins=30, density=True, color="C0", alpha=0.6, label="drawn")
    kk = np.linspace(k.min() - 2, k.max() + 2, 200)
    ax.plot(
        kk,
        np.exp(-0.5 * ((kk - channel.UMA_LOS["k_mu"]) / channel.UMA_LOS["k_sigma"]) ** 2)
        / (channel.UMA_LOS["k_sigma"] * np.sqrt(2 * np.pi)),
        color="k",
        lw=0.8,
        label="N(9, 3.5$^2$)",
    )
    ax.set_xlabel("K-factor (dB)")
    ax.set_ylabel("density")
    ax.legend()

    ax = axes[2]
    for state, color in (("LoS", "C0"), ("NLoS", "C1")):
        v = spreads.get(("3gpp", state, "lg_rms_spread"))
        if v is None:
            continue
        x = np.sort(10**v)
        ax.plot(x, np.arange(1, x.size + 1) / x.size, color=color, label=f"{state}, generated rays")
        row = next(
            r for r in stats_table if r["links"] == "3gpp" and r["state"] == state and r["quantity"] == "lg_asd_drawn"
        )
        xs = np.logspace(-0.5, 2.2, 200)
        ax.plot(
            xs,
            norm.cdf(np.log10(xs), row["table_mean"], row["table_std"]),
            ls="--",
            color=color,
            label=f"{state}, lgASD of Table 7.5-6",
        )
    ax.set_xscale("log")
    ax.set_xlabel("BS-side RMS angular spread (deg)")
    ax.set_ylabel("CDF")
    ax.legend(fontsize=5.5)
    return fig


def scenario_figure(scenario: Any) -> Any:
    """Notebook 01: the four BSs with their ULAs and broadside arrows, the user area and the position grid."""
    import matplotlib.pyplot as plt

    half = scenario.area_size / 2
    fig, ax = plt.subplots(figsize=(3.5, 3.3))
    grid = scenario.grid
    ax.plot(grid[:, 0], grid[:, 1], ".", ms=0.8, color="0.55", label=f"position grid (K = {scenario.n_grid})")
    ax.add_patch(plt.Rectangle((-half, -half), 2 * half, 2 * half, fill=False, lw=0.8, color="k"))
    bs = scenario.bs_array
    ax.plot(bs[:, 0], bs[:, 1], "^", ms=6, color="C3", label=f"BS (ULA, N = {scenario.n_antennas})")
    for m, ((x, y), normal) in enumerate(zip(bs, scenario.array_normals, strict=True)):
        ax.plot([x, x], [y - 6, y + 6], lw=2.0, color="C3")  # the array axis (y)
        ax.annotate(
            "", xy=(x + 12 * np.cos(normal), y), xytext=(x, y), arrowprops=dict(arrowstyle="->", lw=0.7, color="C3")
        )  # broadside
        ax.text(
            x + (5 if normal == 0 else -5),
            y + (6 if y > 0 else -9),
            f"BS {m + 1}",
            ha="left" if normal == 0 else "right",
            fontsize=7,
        )
    ax.set_xlim(-62, 62)
    ax.set_ylim(-62, 62)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.legend(loc="lower center", fontsize=6)
    return fig


def spectra_figure(scenario: Any, batch: Any, snr_db: float) -> Any:
    """Notebook 01: per BS, ``|B_m^H y_m|`` on the angle grid (top) and ``|A_m^H y_m|`` on the position grid (bottom).

    Parameters
    ----------
    scenario : Scenario
    batch : channel batch of one user (:func:`daun_lib.channel.simulate`): ``y``, ``positions``, ``los``
    snr_db : float
        Its SNR (dB), for the title.
    """
    import matplotlib.pyplot as plt

    A, B = scenario.dictionaries()
    half = scenario.area_size / 2
    y, p = batch.y[0], batch.positions[0]
    spec_angle = np.abs(np.einsum("mnl,mn->ml", B.conj(), y))  # (M, L)
    spec_grid = np.abs(np.einsum("mnk,mn->mk", A.conj(), y))  # (M, K)
    theta_los = scenario.los_angles(batch.positions)[0]  # (M,)
    nx, ny = scenario.grid_shape

    fig, axes = plt.subplots(2, scenario.n_bs, figsize=(7.16, 3.4), constrained_layout=True)
    for m in range(scenario.n_bs):
        ax = axes[0, m]
        ax.plot(np.rad2deg(scenario.angles), spec_angle[m], lw=0.8)
        ax.axvline(np.rad2deg(theta_los[m]), ls="--", lw=0.7, color="C3")
        ax.set_title(f"BS {m + 1}" + ("" if batch.los[0, m] else " (NLoS)"))
        ax.set_xlabel("angle (deg)")
        ax.set_xlim(-90, 90)
        ax = axes[1, m]
        img = spec_grid[m].reshape(nx, ny).T  # k = ix * ny + iy -> rows y, columns x
        ax.imshow(img, origin="lower", extent=(-half, half, -half, half), cmap="viridis", aspect="equal")
        ax.plot(p[0], p[1], "x", color="w", ms=5, mew=1.2)
        ax.set_xlabel("x (m)")
        ax.grid(False)
    axes[0, 0].set_ylabel(r"$|B_m^H y_m|$")
    axes[1, 0].set_ylabel("y (m)")
    fig.suptitle(f"user at ({p[0]:.1f}, {p[1]:.1f}) m, SNR {snr_db:g} dB", fontsize=8)
    return fig


__all__ = [
    "ChannelStatistics",
    "channel_statistics",
    "los_probability_rows",
    "plot_channel_stats",
    "scenario_figure",
    "spectra_figure",
]
