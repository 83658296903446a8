"""Accuracy with real heights: the paper's 2-D model against height-aware dictionaries (issue 12).

For each SNR point, ``n_trials`` users (all links LoS) are drawn with the Monte Carlo engine
(:func:`daun_lib.experiments.accuracy_sweep`, common random numbers) on

* ``Scenario()`` (2-D channel, 2-D dictionaries: the paper's set-up), and
* ``Scenario(geometry="3d")`` (3-D channel with the TR 38.901 heights and zenith angles), localised
  with height-aware dictionaries (the registry entries, which take the dictionaries from the
  scenario; DAUN uses the shipped 3-D network) and with the 2-D dictionaries of ``Scenario()``
  ("(2-D model)": the paper's model applied to real geometry);
* ``Scenario(geometry="3d", ut_height_range_m=(1.5, 10))``: users at heights drawn uniformly in
  1.5-10 m, localised with the height-aware dictionaries of the nominal 1.5 m.

Writes ``results/geometry_3d.csv`` (+ JSON sidecar)::

    python benchmarks/geometry_3d.py [--trials 1000] [--snr 10 20] [--out results/geometry_3d.csv]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from daun_lib import Scenario, experiments
from daun_lib.methods import REGISTRY

METHODS = ("DPD", "DPD-S", "DAUN", "DAUN-S", "Stansfield")
FLAT = Scenario()


def _with_2d_model(name: str):
    """The registry entry ``name`` run with the dictionaries of ``Scenario()`` whatever the data."""

    def localize(scenario: Scenario, y: np.ndarray) -> np.ndarray:
        return REGISTRY[name](FLAT, y)

    localize.cache_key = f"{name} with the 2-D dictionaries"
    return localize


def crb_trace_ratio(scenario3d: Scenario, n: int = 20000, seed: int = 0) -> float:
    """Mean position-CRB trace of the LoS model in 3-D over that in 2-D, users uniform in the area.

    Per BS the Fisher information in ``u = sin(theta)`` is the same in both geometries (for the
    centred ULA the gain decouples from ``u``), so the position CRB is ``(sum_m J_uu grad u_m grad u_m^T)^-1``
    with a common ``J_uu`` that cancels in the ratio.  ``u = (d . axis) / sqrt(|d|^2 + dh^2)``, ``d`` from the
    array to the user in the plane, ``dh`` the height difference (0 in 2-D), so
    ``grad u = axis / r - (d . axis) d / r^3``.
    """
    p = np.random.default_rng(seed).uniform(-scenario3d.area_size / 2, scenario3d.area_size / 2, size=(n, 2))
    d = p[:, None, :] - scenario3d.bs_array[None]
    axis = scenario3d.array_axes[None]

    def mean_trace(dh: float) -> float:
        r = np.sqrt((d**2).sum(-1) + dh**2)[..., None]
        g = axis / r - ((d * axis).sum(-1, keepdims=True) / r**3) * d
        info = np.einsum("nmi,nmj->nij", g, g)
        return float(np.trace(np.linalg.inv(info), axis1=1, axis2=2).mean())

    return mean_trace(scenario3d.bs_height_m - scenario3d.ut_height_m) / mean_trace(0.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=1000, help="users per SNR point (default 1000)")
    parser.add_argument("--snr", type=float, nargs="+", default=[10.0, 20.0], help="SNR points, dB")
    parser.add_argument("--seed", type=int, default=1212, help="master seed of the sweep")
    parser.add_argument("--out", default="results/geometry_3d.csv")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    runs = [
        ("2d", "2-D", Scenario(), {m: REGISTRY[m] for m in METHODS}),
        ("3d", "height-aware", Scenario(geometry="3d"), {m: REGISTRY[m] for m in METHODS}),
        ("3d", "2-D model", Scenario(geometry="3d"), {m: _with_2d_model(m) for m in METHODS}),
        # users at heights uniform in [1.5, 10] m; the dictionaries assume the nominal 1.5 m
        (
            "3d, heights 1.5-10 m",
            "height-aware",
            Scenario(geometry="3d", ut_height_range_m=(1.5, 10.0)),
            {m: REGISTRY[m] for m in METHODS},
        ),
    ]
    for geometry, dictionaries, scenario, methods in runs:
        start = time.perf_counter()
        out = experiments.accuracy_sweep(
            methods, scenario, args.snr, args.trials, args.seed, cache_dir=None, chunk_size=250, progress=False
        )
        for r in out:
            rows.append({"channel": geometry, "dictionaries": dictionaries, **r})
        print(f"{geometry} channel, {dictionaries} dictionaries: {time.perf_counter() - start:.1f} s", flush=True)
    for r in rows:
        print(
            f"{r['channel']} {r['dictionaries']:12s} {r['method']:10s} {r['snr_db']:5.1f} dB  "
            f"P(<1 m) {r['p_submeter']:.3f}  MSE {r['mse']:.4f} m^2  median {r['median_error']:.3f} m"
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
        "script": "benchmarks/geometry_3d.py",
    }
    experiments.write_csv(rows, args.out, params)
    return 0


if __name__ == "__main__":
    sys.exit(main())
