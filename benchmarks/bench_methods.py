"""Speed and accuracy of every registered localisation method (not a timed test).

Usage (from the repository root)::

    python benchmarks/bench_methods.py                 # seconds per sample, paper scale
    python benchmarks/bench_methods.py --report        # P(err < 1 m), MSE, time at 0/10/20 dB
    python benchmarks/bench_methods.py --tune          # hyper-parameter sweep on the tuning seed

Speed: each method localises one batch of ``--batch`` users (default 200,
10 dB, default ``Scenario()``) after one warm-up call on a small batch
(caches, dictionaries); the reported figure is wall time / batch size.
``--threads`` sets torch's intra-op threads (default 2, the 2-core budget of
the Monte Carlo); numpy's BLAS follows ``OMP_NUM_THREADS`` /
``OPENBLAS_NUM_THREADS`` of the environment.

Seeds: ``--report`` draws its users with ``EVAL_SEED + SNR`` (evaluation seeds),
``--tune`` with ``TUNE_SEED + SNR`` (a separate tuning seed: the defaults of
the baselines' dataclasses were chosen from this sweep, never from the
evaluation samples).  DAUN entries are skipped when ``daun_lib.daun`` is not
importable yet.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from daun_lib import Scenario, channel, metrics  # noqa: E402
from daun_lib.baselines import DPDParams, MMParams, SRLParams, StansfieldParams, VBParams, dpd, mm, srl, stansfield, vb  # noqa: E402  # noqa: E402
from daun_lib.methods import REGISTRY, daun_available  # noqa: E402

EVAL_SEED = 1000
TUNE_SEED = 777_000


def _methods(names: list[str] | None) -> dict:
    reg = {k: v for k, v in REGISTRY.items() if not (k.startswith("DAUN") and not daun_available())}
    if names:
        reg = {k: reg[k] for k in names}
    return reg


def _timed(f, sc, y) -> tuple[np.ndarray, float]:
    t = time.perf_counter()
    p = f(sc, y)
    return p, time.perf_counter() - t


def speed(args: argparse.Namespace) -> list[dict]:
    sc = Scenario()
    b = channel.simulate(sc, args.batch, 10.0, seed=EVAL_SEED - 1)
    rows = []
    for name, f in _methods(args.methods).items():
        f(sc, b.y[:4])  # warm-up: dictionaries, caches, weights
        _, dt = _timed(f, sc, b.y)
        rows.append({"method": name, "batch": args.batch, "ms_per_sample": 1e3 * dt / args.batch})
        print(f"{name:12s} {1e3 * dt / args.batch:8.2f} ms/sample  (batch {args.batch})", flush=True)
    return rows


def report(args: argparse.Namespace) -> list[dict]:
    sc = Scenario()
    rows = []
    reg = _methods(args.methods)
    for f in reg.values():
        f(sc, channel.simulate(sc, 4, 10.0, seed=1).y)  # warm-up
    print(f"{'method':12s} {'SNR':>4s} {'P(<1m)':>7s} {'MSE m^2':>9s} {'ms/sample':>9s}")
    for snr in args.snr:
        b = channel.simulate(sc, args.n, float(snr), seed=EVAL_SEED + int(snr))
        for name, f in reg.items():
            p, dt = _timed(f, sc, b.y)
            row = {
                "method": name,
                "snr_db": snr,
                "n": args.n,
                "p_1m": metrics.p_within(p, b.positions),
                "mse": metrics.mse(p, b.positions),
                "ms_per_sample": 1e3 * dt / args.n,
            }
            rows.append(row)
            print(f"{name:12s} {snr:4.0f} {row['p_1m']:7.3f} {row['mse']:9.3f} {row['ms_per_sample']:9.2f}", flush=True)
    return rows


#: candidate settings of the tuning sweep (name -> list of (label, localize))
def _candidates() -> dict:
    c = {
        "Stansfield": [
            (f"weights={w}", lambda s, y, w=w: stansfield.localize(s, y, StansfieldParams(weights=w)))
            for w in ("crb", "equal")
        ],
        "SRL": [
            (
                f"oversampling={o},iterations={it},confidence={q},centroid={c}",
                lambda s, y, o=o, it=it, q=q, c=c: srl.localize(
                    s, y, SRLParams(oversampling=o, iterations=it, confidence=q, centroid=c)
                ),
            )
            for o, it in ((5, 150), (10, 250))
            for q in (0.9, 0.99, 0.999)
            for c in (0, 1, 2, 3)
        ],
        "VB": [
            (
                f"iterations={it},noise_prior={npr}",
                lambda s, y, it=it, npr=npr: vb.localize(s, y, VBParams(iterations=it, noise_prior=npr)),
            )
            for it in (15, 30, 50)
            for npr in (0.0, 1.0)
        ],
        "MM": [
            (
                f"lam={lam},iterations={it}",
                lambda s, y, lam=lam, it=it: mm.localize(s, y, MMParams(lam=lam, iterations=it)),
            )
            for lam in (1.0, 2.0, 4.0, 8.0, 16.0)
            for it in (15, 30)
        ],
        "DPD-offgrid": [("offgrid=True", lambda s, y: dpd.localize(s, y, DPDParams(offgrid=True)))],
    }
    return c


def tune(args: argparse.Namespace) -> list[dict]:
    sc = Scenario()
    data = {snr: channel.simulate(sc, args.n, float(snr), seed=TUNE_SEED + int(snr)) for snr in args.snr}
    rows = []
    cands = _candidates()
    for method in args.methods or list(cands):
        for label, f in cands[method]:
            ps, ms, ts = [], [], []
            for b in data.values():
                p, dt = _timed(f, sc, b.y)
                ps.append(metrics.p_within(p, b.positions))
                ms.append(metrics.mse(p, b.positions))
                ts.append(1e3 * dt / args.n)
            row = {"method": method, "setting": label, "mean_p_1m": np.mean(ps), "mean_mse": np.mean(ms)}
            row.update({f"p_1m@{s}": v for s, v in zip(args.snr, ps, strict=True)})
            row.update({f"mse@{s}": v for s, v in zip(args.snr, ms, strict=True)})
            row["ms_per_sample"] = np.mean(ts)
            rows.append(row)
            detail = " ".join(f"{s:+.0f}dB:{p:.3f}/{m:.3f}" for s, p, m in zip(args.snr, ps, ms, strict=True))
            print(
                f"{method:11s} {label:36s} P={row['mean_p_1m']:.3f} MSE={row['mean_mse']:.3f} "
                f"{row['ms_per_sample']:.1f} ms | {detail}",
                flush=True,
            )
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--report", action="store_true", help="accuracy and time per method and SNR")
    mode.add_argument("--tune", action="store_true", help="hyper-parameter sweep on the tuning seed")
    ap.add_argument("--methods", nargs="*", help="subset of methods (registry names, or tuning groups)")
    ap.add_argument("--batch", type=int, default=200, help="batch size of the speed benchmark")
    ap.add_argument("--n", type=int, default=None, help="users per SNR (report: 500, tune: 150)")
    ap.add_argument("--snr", type=float, nargs="*", default=None, help="SNR points in dB")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--csv", type=Path, default=None, help="also write the rows to this CSV file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.report:
        args.n = args.n or 500
        args.snr = args.snr if args.snr else [0.0, 10.0, 20.0]
        rows = report(args)
    elif args.tune:
        args.n = args.n or 150
        args.snr = args.snr if args.snr else [-10.0, -5.0, 0.0, 10.0, 20.0]
        rows = tune(args)
    else:
        rows = speed(args)
    if args.csv and rows:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with open(args.csv, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)


if __name__ == "__main__":
    main()
