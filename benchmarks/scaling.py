"""Operator scaling benchmark: P-ADMM with dense vs structured dictionary products.

Writes ``results/scaling.csv`` (+ JSON sidecar, :func:`daun_lib.experiments.write_csv`) and
``figures/operator_scaling.{png,pdf}`` (``figures/scaling.png`` is the DAUN layer sweep of
run_benchmarks.py).  Measured, on one thread (``torch.set_num_threads``), complex64:

* time per P-ADMM iteration (``admm.iterate`` with cached operators) against ``N x K`` for the
  dense and the structured operators (:mod:`daun_lib.operators`), batch 1 and 256, with the GEMM
  arithmetic bound ``8 * 2 * M * N * (K + L) * batch / peak`` (``peak``: a measured 2048^2 fp32
  matmul);
* ``admm.solve`` (20 iterations) per sample at batch 32 at paper scale (N = 50, 30 x 30, L = 100)
  and at N = 256, 100 x 100, L = 512, dense and structured, with the growth factor and whether the
  argmax cells agree;
* the registry's ``P-ADMM`` entry (300 iterations, operators chosen by ``operators.choose``) per
  sample at batch 32 at the same two scales, and its growth (rows ``entry``; ``operators`` the kinds
  of A / B it used).

Usage::

    python benchmarks/scaling.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from daun_lib import Scenario, admm, channel, experiments, operators  # noqa: E402
from daun_lib.studies.plotting import save_figure, style  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_benchmarks import best_time, flops_per_layer, gemm_peak_gflops  # noqa: E402

#: (N, grid side, L) of the sweep: the paper's scale first.
SIZES = ((50, 30, 100), (96, 45, 192), (128, 60, 256), (192, 80, 384), (256, 100, 512))
SEED = 2121


def scenario(N: int, side: int, L: int) -> Scenario:
    return Scenario(n_antennas=N, grid_shape=(side, side), n_angles=L)


def size_fields(sc: Scenario, batch: int) -> dict:
    """The columns every row shares: the array and dictionary sizes and the batch."""
    N = sc.n_antennas
    return {"N": N, "K": sc.n_grid, "L": sc.n_angles, "NK": N * sc.n_grid, "batch": batch}


def iteration_rows(peak: float, quick: bool) -> list[dict]:
    rows = []
    for N, side, L in SIZES[:3] if quick else SIZES:
        sc = scenario(N, side, L)
        p = admm.default_params(*sc.operators("structured"))
        for kind in ("dense", "structured"):
            A, B = sc.operators(kind)
            ops = admm.make_operators(A, B, torch.complex64)
            bops = admm.block_operators(ops)
            for batch in (1, 256):
                y = channel.simulate(sc, batch, snr_db=10.0, seed=SEED).y
                yt, _ = admm.prepare_y(y, torch.complex64, None, True)
                its = 2 if batch == 256 and N * side * side > 2e6 and kind == "dense" else 5

                def run(ops=ops, yt=yt, p=p, its=its, bops=bops):  # noqa: ANN001, ANN202
                    return admm.iterate(ops, yt, [p.rho] * its, [p.tau1] * its, [p.tau2] * its, p.w, block_ops=bops)

                sec = best_time(run, 1 if batch == 256 else 3) / its
                flops = flops_per_layer(sc.n_bs, N, sc.n_grid, L) * batch
                rows.append(
                    {
                        "kind": kind,
                        **size_fields(sc, batch),
                        "ms_per_iteration": 1e3 * sec,
                        "gemm_bound_ms": 1e3 * flops / (peak * 1e9),
                    }
                )
                print(rows[-1], flush=True)
    return rows


def acceptance_rows(quick: bool) -> list[dict]:
    """``admm.solve`` per sample at batch 32, paper scale and N = 256 / 100 x 100 / 512 angles."""
    rows, base, cells = [], None, {}
    for N, side, L in (SIZES[0], SIZES[2] if quick else SIZES[-1]):
        sc = scenario(N, side, L)
        y = channel.simulate(sc, 32, snr_db=10.0, seed=SEED).y
        for kind in ("dense", "structured"):
            A, B = sc.operators(kind)
            p = admm.default_params(A, B).as_kwargs()
            sec = best_time(lambda A=A, B=B, p=p, y=y: admm.solve(A, B, y, iterations=20, **p), 1 if N > 100 else 3)
            X = admm.solve(A, B, y, iterations=20, **p).X
            cells[kind] = np.linalg.norm(X, axis=-1).argmax(axis=1)
            base = sec if base is None else base
            rows.append(
                {
                    "kind": f"solve-{kind}",
                    **size_fields(sc, 32),
                    "ms_per_sample": 1e3 * sec / 32,
                    "growth_vs_paper_dense": sec / base,
                    "same_argmax_as_dense": bool(np.array_equal(cells[kind], cells["dense"])),
                }
            )
            print(rows[-1], flush=True)
    return rows + entry_rows(quick)


def entry_rows(quick: bool) -> list[dict]:
    """The registry's ``P-ADMM`` entry (``PADMM_ITERATIONS`` iterations, ``operators.choose`` per batch) per sample
    at batch 32, paper scale and the large scale, and its growth: the issue's acceptance measure."""
    from daun_lib.methods import REGISTRY, _padmm_problem

    entry, rows, base = REGISTRY["P-ADMM"], [], None
    for N, side, L in (SIZES[0], SIZES[2] if quick else SIZES[-1]):
        sc = scenario(N, side, L)
        y = channel.simulate(sc, 32, snr_db=10.0, seed=SEED).y
        sec = best_time(lambda sc=sc, y=y: entry._map(sc, y), 1)
        A, B, _ = _padmm_problem(sc, False)
        base = sec if base is None else base
        rows.append(
            {
                "kind": "entry",
                "operators": f"{getattr(A, 'kind', 'dense')}/{getattr(B, 'kind', 'dense')}",
                **size_fields(sc, 32),
                "ms_per_sample": 1e3 * sec / 32,
                "growth_vs_paper_scale": sec / base,
            }
        )
        print(rows[-1], flush=True)
    return rows


def plot(rows: list[dict], figures_dir: Path, peak: float) -> None:
    import matplotlib.pyplot as plt

    with style():
        fig, ax = plt.subplots(figsize=(4.2, 3.0), constrained_layout=True)
        for batch, marker in ((1, "o"), (256, "s")):
            for kind, ls in (("dense", "-"), ("structured", "--")):
                pts = [r for r in rows if r["kind"] == kind and r["batch"] == batch]
                ax.loglog(
                    [r["NK"] for r in pts],
                    [r["ms_per_iteration"] for r in pts],
                    ls,
                    marker=marker,
                    label=f"{kind}, batch {batch}",
                )
            pts = [r for r in rows if r["kind"] == "dense" and r["batch"] == batch]
            ax.loglog([r["NK"] for r in pts], [r["gemm_bound_ms"] for r in pts], "k:", lw=0.8)
        ax.plot([], [], "k:", lw=0.8, label=f"GEMM bound ({peak:.0f} GFLOP/s)")
        ax.set_xlabel("N x K (per BS)")
        ax.set_ylabel("ms per P-ADMM iteration")
        ax.set_title("P-ADMM iteration: dense vs structured products (1 thread)", fontsize=7)
        ax.legend(fontsize=6)
        save_figure(fig, "operator_scaling", figures_dir)


def run(out: Path, figures_dir: Path, quick: bool = False) -> Path:
    """Run the benchmark on one thread and write the CSV, its sidecar and the figure."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        peak = gemm_peak_gflops(3)
        rows = iteration_rows(peak, quick)
        acc = acceptance_rows(quick)
    finally:
        torch.set_num_threads(threads)
    params = {
        "threads": 1,
        "dtype": "complex64",
        "taps": operators.DEFAULT_TAPS[torch.complex64],
        "oversampling": operators.DEFAULT_OVERSAMPLING,
        "auto_min_np": operators.AUTO_MIN_NP,
        "gemm_peak_gflops": peak,
        "quick": quick,
        "seed": SEED,
        "note": "minimum over repeats after one warm-up; solve rows: 20 iterations, per sample",
    }
    path = experiments.write_csv(rows + acc, out, params)
    plot(rows, figures_dir, peak)
    return path


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "results" / "scaling.csv"))
    ap.add_argument("--figures", default=str(ROOT / "figures"))
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    run(Path(args.out), Path(args.figures), args.quick)
