"""Why 3-D costs about 20 % in MSE: errors in the measured sines against errors in position (issue 12).

Each ULA measures ``u_m = sin(theta_m)`` (:meth:`daun_lib.Scenario.los_sines`); a position error
is the image of the sine errors through the inverse of the geometry's Jacobian, and in 3-D
(users 23.5 m below the arrays) ``u`` changes more slowly with position than in 2-D.  If the
estimators are as accurate in ``u`` in both geometries, the position MSE grows by the ratio of
the mean position-CRB traces (1.20, :func:`geometry_3d.crb_trace_ratio`), whatever the error
source (noise, NLoS clusters, readout).

For each SNR and geometry, ``n`` users (all links LoS) are drawn with ``channel.simulate`` and
localised with height-aware dictionaries (the registry entries); the script reports the position
MSE and the mean squared sine error ``mean_m (u_m(p_hat) - u_m(p))^2`` in each geometry and their
3-D / 2-D ratios.  Writes ``results/geometry_sines.csv`` (+ JSON sidecar)::

    python benchmarks/geometry_sines.py [--trials 1000] [--snr 10 20] [--seed 1213]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from daun_lib import Scenario, channel, experiments
from daun_lib.methods import REGISTRY

sys.path.insert(0, str(Path(__file__).resolve().parent))
from geometry_3d import crb_trace_ratio  # noqa: E402  (the sibling script)

METHODS = ("DPD-S", "DAUN-S", "Stansfield")


def rows_for(snr_db: float, n: int, seed: int) -> list[dict]:
    """Position and sine MSE per method in 2-D and 3-D, and their ratios, at one SNR."""
    stats = {}
    for geometry in ("2d", "3d"):
        s = Scenario(geometry=geometry)
        b = channel.simulate(s, n, snr_db, seed=seed)
        for m in METHODS:
            p = REGISTRY[m](s, b.y)
            du = s.los_sines(p) - s.los_sines(b.positions)
            stats[(geometry, m)] = (float(np.mean(np.sum((p - b.positions) ** 2, axis=1))), float(np.mean(du**2)))
    out = []
    for m in METHODS:
        (p2, u2), (p3, u3) = stats[("2d", m)], stats[("3d", m)]
        out.append(
            {
                "method": m,
                "snr_db": snr_db,
                "n_trials": n,
                "mse_2d": p2,
                "mse_3d": p3,
                "mse_ratio": p3 / p2,
                "sine_mse_2d": u2,
                "sine_mse_3d": u3,
                "sine_mse_ratio": u3 / u2,
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=1000, help="users per SNR point and geometry (default 1000)")
    parser.add_argument("--snr", type=float, nargs="+", default=[10.0, 20.0], help="SNR points, dB")
    parser.add_argument("--seed", type=int, default=1213, help="seed of the users (the same in both geometries)")
    parser.add_argument("--out", default="results/geometry_sines.csv")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = [r for snr in args.snr for r in rows_for(snr, args.trials, args.seed)]
    for r in rows:
        print(
            f"{r['method']:10s} {r['snr_db']:5.1f} dB  position MSE 3-D/2-D {r['mse_ratio']:.3f}  "
            f"sine MSE 3-D/2-D {r['sine_mse_ratio']:.3f}"
        )
    ratio = crb_trace_ratio(Scenario(geometry="3d"))
    print(f"mean position-CRB trace of the LoS model, 3-D / 2-D: {ratio:.3f}")
    params = {
        "crb_trace_ratio_3d_to_2d": ratio,
        "trials": args.trials,
        "snr_db": args.snr,
        "seed": args.seed,
        "methods": list(METHODS),
        "los_model": "always",
        "script": "benchmarks/geometry_sines.py",
    }
    experiments.write_csv(rows, args.out, params)
    return 0


if __name__ == "__main__":
    sys.exit(main())
