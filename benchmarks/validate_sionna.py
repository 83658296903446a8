"""Validate the package's channel against Sionna's TR 38.901 UMa, and the Fig. 2 methods on Sionna's channels.

``make validate`` (not part of ``make test``; needs the optional extra ``sionna``)::

    python benchmarks/validate_sionna.py [--users 5000] [--method-users 1000] [--out results]

Writes ``results/validation_channel.csv`` and ``results/validation_methods.csv`` (with JSON sidecars).

Channel statistics (``los_model="3gpp"`` so that both LoS and NLoS links occur; users uniform in
the area; every statistic is computed the same way on the noiseless ``h`` of both sources):

* ``peak_fraction_{los,nlos}``: beamscan peak power fraction ``max_u |a(u)^H h|^2 / ||h||^2``
  (unit-norm ULA steering vectors ``a`` on a fine grid of u = sin(theta)), median over links;
* ``los_offset_2d_deg_{median,p90}``: on LoS links, ``|asin(u_peak) - theta_2d|`` with ``theta_2d`` the
  2-D LoS azimuth (:meth:`Scenario.los_angles`); ``los_offset_cone_deg_median`` the same against the
  3-D cone angle (the LoS direction a horizontal ULA at ``bs_height_m`` measures);
* ``rms_spread_deg_{los,nlos}``: BS-side RMS angular spread of the beamscan spectrum
  (power-weighted RMS of ``asin(u)`` about its mean), median over links;
* ``k_factor_db_los``: ``10 log10(f / (1 - f))`` of the peak fraction f of LoS links (a beamscan
  estimate of the Rician K-factor, TR 38.901 Table 7.5-6), median;
* ``p_los_<a>_<b>m``: fraction of LoS links among links of 2-D distance in [a, b) m (TR 38.901
  Table 7.4.2-1 for the package; Sionna draws its own).

Each value comes with a standard error (``*_se``): bootstrap (200 resamples of links) for medians and
quantiles, binomial for fractions.

Methods: DPD, DPD-S, Stansfield, DAUN, DAUN-S on Sionna's channels (all links LoS), 10 and 20 dB,
``--method-users`` users, with the 2-D dictionaries (the paper's model) and, where the tree has it,
the height-aware ``geometry="3d"`` scenario; a method that refuses a scenario is recorded with its reason.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from daun_lib import channel, metrics  # noqa: E402
from daun_lib.channel.sionna import SIONNA_EXTRA, SIONNA_SPEC_VERSION, simulate_sionna  # noqa: E402
from daun_lib.experiments import write_csv  # noqa: E402
from daun_lib.methods import REGISTRY  # noqa: E402
from daun_lib.scenario import Scenario, steering  # noqa: E402

METHODS = ("DPD", "DPD-S", "Stansfield", "DAUN", "DAUN-S")
SNRS_DB = (10.0, 20.0)
DIST_BINS = (50.0, 60.0, 70.0, 80.0, 90.0)
U_GRID = np.linspace(-1.0, 1.0, 2001)
N_BOOT = 200


def _scenario(geometry: str, **kw) -> Scenario:
    return Scenario(geometry=geometry, **kw)


def _cone_sines(s: Scenario, positions: np.ndarray) -> np.ndarray:
    """(n, M): sin of the 3-D cone angle of the LoS ray at each horizontal ULA."""
    d = positions[:, None, :] - s.bs_array[None, :, :]
    axes = np.stack([-np.sin(s.array_normals), np.cos(s.array_normals)], axis=1)
    dz = s.bs_height_m - s.ut_height_m
    return np.einsum("nmc,mc->nm", d, axes) / np.sqrt((d**2).sum(-1) + dz**2)


def _link_stats(s: Scenario, h: np.ndarray, positions: np.ndarray) -> dict[str, np.ndarray]:
    """Per-link statistics, each (n, M)."""
    S = steering(np.arcsin(U_GRID), s.n_antennas)  # (G, N)
    theta = np.degrees(np.arcsin(U_GRID))
    out = {k: [] for k in ("pf", "peak_deg", "spread_deg")}
    for start in range(0, h.shape[0], 500):
        hb = h[start : start + 500]
        P = np.abs(hb @ S.conj().T) ** 2  # (b, M, G)
        tot = P.sum(-1)
        out["pf"].append(P.max(-1) / np.linalg.norm(hb, axis=-1) ** 2)
        out["peak_deg"].append(theta[P.argmax(-1)])
        mean = (P * theta).sum(-1) / tot
        out["spread_deg"].append(np.sqrt((P * (theta - mean[..., None]) ** 2).sum(-1) / tot))
    stats = {k: np.concatenate(v) for k, v in out.items()}
    stats["off2d"] = np.abs(stats["peak_deg"] - np.degrees(s.los_angles(positions)))
    stats["offcone"] = np.abs(stats["peak_deg"] - np.degrees(np.arcsin(_cone_sines(s, positions))))
    stats["dist"] = np.linalg.norm(positions[:, None, :] - s.bs_array[None, :, :], axis=-1)
    return stats


def _boot(x: np.ndarray, fn, rng: np.random.Generator) -> tuple[float, float]:
    x = np.asarray(x, dtype=float).ravel()
    if x.size == 0:
        return float("nan"), float("nan")
    reps = [fn(x[rng.integers(0, x.size, x.size)]) for _ in range(N_BOOT)]
    return float(fn(x)), float(np.std(reps, ddof=1))


def _channel_rows(source: str, geometry: str, s: Scenario, batch, seconds: float) -> list[dict]:
    rng = np.random.default_rng(0)
    st = _link_stats(s, batch.h, batch.positions)
    los = batch.los
    p90 = lambda v: np.quantile(v, 0.9)  # noqa: E731
    pf = st["pf"]
    k_db = 10 * np.log10(pf[los] / np.maximum(1 - pf[los], 1e-12))
    values = {
        "peak_fraction_los": _boot(pf[los], np.median, rng),
        "peak_fraction_nlos": _boot(pf[~los], np.median, rng),
        "los_offset_2d_deg_median": _boot(st["off2d"][los], np.median, rng),
        "los_offset_2d_deg_p90": _boot(st["off2d"][los], p90, rng),
        "los_offset_cone_deg_median": _boot(st["offcone"][los], np.median, rng),
        "rms_spread_deg_los": _boot(st["spread_deg"][los], np.median, rng),
        "rms_spread_deg_nlos": _boot(st["spread_deg"][~los], np.median, rng),
        "k_factor_db_los": _boot(k_db, np.median, rng),
    }
    edges = (0.0,) + DIST_BINS + (np.inf,)
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        sel = (st["dist"] >= a) & (st["dist"] < b)
        if sel.sum() == 0:
            continue
        p = float(los[sel].mean())
        values[f"p_los_{a:g}_{b:g}m"] = (p, float(np.sqrt(p * (1 - p) / sel.sum())))
    base = {"source": source, "geometry": geometry, "links": int(los.size), "los_links": int(los.sum())}
    rows = [dict(base, statistic=k, value=v, stderr=e) for k, (v, e) in values.items()]
    rows[0]["seconds"] = round(seconds, 1)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=5000, help="users per source for the channel statistics (x M links)")
    ap.add_argument("--method-users", type=int, default=1000, help="users per SNR for the methods")
    ap.add_argument("--out", default=str(ROOT / "results"))
    ap.add_argument("--seed", type=int, default=20260)
    args = ap.parse_args(argv)
    if args.users < 10 or args.method_users < 1:
        raise ValueError("--users must be >= 10 and --method-users >= 1")
    out = Path(args.out)
    t_start = time.perf_counter()
    geometries = ["2d", "3d"]
    notes: list[str] = []

    # ---- channel statistics
    rows = []
    sio = None
    for g in geometries:
        s = _scenario(g, los_model="3gpp")
        t0 = time.perf_counter()
        b = channel.simulate(s, args.users, 20.0, seed=args.seed)
        rows += _channel_rows("daun_lib", g, s, b, time.perf_counter() - t0)
        print(f"package {g}: {time.perf_counter() - t0:.1f} s", flush=True)
    s2 = Scenario(los_model="3gpp")
    t0 = time.perf_counter()
    sio = simulate_sionna(s2, args.users, 20.0, seed=args.seed)
    rows += _channel_rows("sionna", "3-D (always)", s2, sio, time.perf_counter() - t0)
    print(f"sionna: {time.perf_counter() - t0:.1f} s", flush=True)
    params = {
        "users_per_source": args.users,
        "seed": args.seed,
        "los_model": "3gpp",
        "sionna": SIONNA_EXTRA,
        "sionna_spec_version": SIONNA_SPEC_VERSION,
        "u_grid_points": int(U_GRID.size),
        "bootstrap_resamples": N_BOOT,
        "notes": notes,
    }
    write_csv(rows, out / "validation_channel.csv", params)

    # ---- methods on Sionna's channels (all links LoS)
    mrows = []
    for snr in SNRS_DB:
        t0 = time.perf_counter()
        b = simulate_sionna(Scenario(), args.method_users, snr, seed=args.seed + int(snr))
        print(f"sionna {snr:g} dB: {time.perf_counter() - t0:.1f} s", flush=True)
        for g in geometries:
            s = _scenario(g)
            for name in METHODS:
                t0 = time.perf_counter()
                row = {"geometry": g, "snr_db": snr, "method": name, "users": args.method_users}
                try:
                    est = REGISTRY[name](s, b.y)
                except ValueError as exc:  # a localiser that refuses this scenario: recorded with its reason
                    mrows.append(dict(row, p_within_1m=None, p_within_1m_se=None, median_error_m=None, note=str(exc)))
                    continue
                err = np.linalg.norm(est - b.positions, axis=1)
                mrows.append(
                    dict(
                        row,
                        p_within_1m=metrics.fraction_within(err, 1.0),
                        p_within_1m_se=metrics.p_within_stderr(err, 1.0),
                        median_error_m=metrics.median_error(err),
                        note="",
                    )
                )
                print(f"  {g} {name}: {time.perf_counter() - t0:.1f} s", flush=True)
    total = time.perf_counter() - t_start
    write_csv(
        mrows,
        out / "validation_methods.csv",
        dict(params, users_per_snr=args.method_users, los_model="always", total_seconds=round(total, 1)),
    )
    print(f"total {total:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
