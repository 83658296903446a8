"""Speed benchmark of daun_lib (issue "Speed"): run by ``make bench``, not by the tests.

Writes ``results/benchmark.csv`` (+ JSON sidecar with machine, threads and
versions) and ``figures/scaling.{png,pdf}``.  Measured, at paper scale
(M = 4, N = 50, K = 900, L = 100) unless a sweep says otherwise:

* DAUN inference (the shipped default network, and the same architecture with
  15 layers at the P-ADMM steps, the layer count of the issue's targets),
  batch 256 and batch 1;
* P-ADMM to the NMSE of the shipped DAUN's last layer (iterations measured on
  the same samples) and the registry's P-ADMM (``methods.PADMM_ITERATIONS``);
* the cvxpy reference of (3) (one sample at a time, ``--reference`` solves);
* every method of ``methods.REGISTRY`` (batch ``--batch``);
* peak resident memory of batch-256 DAUN inference (in a fresh process);
* a scaling sweep of the DAUN layer cost over the grid size (30 x 30 ... 100 x 100)
  and the array size (N = 50 ... 256) against the arithmetic model
  ``8 * 2 * M * N * (K + L)`` real flops per layer and sample (two complex
  products with A, two with B; complex multiply-add = 8 flops).

Every DAUN row also carries its arithmetic bound: the model's flops divided by
the nominal fp32 peak of two Zen 3 cores at the base clock the kernel reports
(2 cores x 32 flops/cycle x 2.45 GHz = 157 GFLOP/s; the issue's "0.3 ms for 15
layers") and by the best rate torch's GEMM reaches here (a 2048^2 matmul,
measured at the start of the run); ``speedup_vs_paper`` divides the paper's
Table I time (i7-8700K, 12 threads) by ours.

Usage::

    python benchmarks/run_benchmarks.py [--threads 2] [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from daun_lib import Scenario, admm, channel, daun, experiments, reference  # noqa: E402
from daun_lib.methods import PADMM_ITERATIONS, REGISTRY  # noqa: E402
from daun_lib.studies.plotting import save_figure, style  # noqa: E402

SEED = 4242
PAPER_SECONDS = {"DAUN": 0.017, "P-ADMM": 0.102, "reference (cvxpy)": 4.27, "MM": 3.81, "VB": 1.36, "DPD": 2.15}


def flops_per_layer(M: int, N: int, K: int, L: int) -> float:
    """Real flops of one ADMM layer for one sample: 2 products with A and 2 with B."""
    return 8.0 * 2.0 * M * N * (K + L)


def best_time(fn, repeats: int) -> float:
    """Minimum wall time over ``repeats`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


#: Nominal fp32 peak of the issue's arithmetic bound: 2 cores x 2 FMA units x 8 lanes x 2 flops x 2.45 GHz.
NOMINAL_PEAK_GFLOPS = 2 * 2 * 8 * 2 * 2.45


def gemm_peak_gflops(repeats: int = 5, size: int = 2048) -> float:
    """The best fp32 GEMM rate torch reaches on this machine (a square ``size`` matmul), GFLOP/s."""
    a = torch.randn(size, size)
    b = torch.randn(size, size)
    out = torch.empty(size, size)
    return 2.0 * size**3 / best_time(lambda: torch.mm(a, b, out=out), repeats) / 1e9


def padmm_net(scenario: Scenario, n_layers: int) -> daun.DAUN:
    """A DAUN whose every layer holds the default P-ADMM setting."""
    net = daun.DAUN(n_layers, scenario=scenario)
    p = admm.default_params(*scenario.dictionaries())
    return net.set_parameters(rho=[p.rho] * n_layers, tau1=[p.tau1] * n_layers, tau2=[p.tau2] * n_layers, w=p.w)


def peak_memory_mb(batch: int) -> tuple[float, float]:
    """Memory of one batch of default-DAUN inference (``solve``) in a fresh process, MB.

    Returns (peak RSS during the batch minus RSS before it, peak RSS during the batch).  The
    peak is Linux's ``VmHWM`` after resetting it through ``/proc/self/clear_refs`` just before
    the batch.  Where that is not possible both fall back to ``ru_maxrss``, which is a poor
    substitute: Linux carries it over from the parent across fork and exec, so it reports the
    benchmark process's own footprint (about 850 MB with cvxpy and the baselines loaded).
    """
    code = (
        "import resource, numpy as np\n"
        "from daun_lib import daun\n"
        "def status(key):\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith(key): return int(line.split()[1]) / 1024\n"
        "net = daun.load_pretrained()\n"
        "rng = np.random.default_rng(1)  # memory does not depend on the values; simulate() would raise the baseline\n"
        f"y = (rng.standard_normal(({batch}, 4, 50)) + 1j * rng.standard_normal(({batch}, 4, 50))).astype(np.complex64)\n"
        "net.solve(y[:2])\n"
        "try:\n"
        "    open('/proc/self/clear_refs', 'w').write('5')\n"
        "    base = status('VmRSS')\n"
        "    net.solve(y)\n"
        "    peak = status('VmHWM')\n"
        "except (OSError, TypeError):\n"
        "    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "    net.solve(y)\n"
        "    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "print(peak - base, peak)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    increase, during = out.stdout.strip().splitlines()[-1].split()
    return float(increase), float(during)


def machine_label(sidecar: dict) -> str:
    """ "<cpu>, <n> cores, torch <version> with <t> threads" from a benchmark.json sidecar."""
    env, params = sidecar.get("environment", {}), sidecar.get("params", {})
    return (
        f"{env.get('cpu_model') or env.get('machine', '?')}, {env.get('cpu_count', '?')} cores, "
        f"torch {env.get('torch', '?')} with {params.get('threads', env.get('torch_threads', '?'))} threads"
    )


def plot_scaling(rows: list[dict], figures_dir: str | Path, label: str) -> None:
    """``figures/scaling.{png,pdf}``: time per sample against the flop model, one panel per sweep;
    ``label`` (machine and threads) goes in the title."""
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    with style():
        fig, axes = plt.subplots(1, 2, figsize=(7.0, 2.6), constrained_layout=True)
        for ax, kind in zip(axes, ("grid", "antennas"), strict=True):
            pts = [r for r in rows if r["method"] == "scaling" and str(r["mode"]).startswith(kind)]
            x = np.array([float(r["gflop_per_sample"]) for r in pts])
            t = np.array([float(r["ms_per_sample"]) for r in pts])
            ax.loglog(x, t, "o-", label="measured (10 layers)")
            ax.loglog(x, t[0] * x / x[0], "k--", lw=0.8, label="linear in flops")
            for r, xi, ti in zip(pts, x, t, strict=True):
                ax.annotate(
                    str(r["mode"]).split("=")[1], (xi, ti), fontsize=6, xytext=(3, -8), textcoords="offset points"
                )
            for axis in (ax.xaxis, ax.yaxis):  # plain numbers at 1-2-5 steps (log axes over one decade)
                axis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
                axis.set_major_formatter(ticker.FormatStrFormatter("%g"))
                axis.set_minor_formatter(ticker.NullFormatter())
            ax.set_xlabel("GFLOP per sample (model)")
            ax.set_ylabel("ms per sample")
            ax.set_title("grid side (K = side^2)" if kind == "grid" else "antennas N")
            ax.legend()
        fig.suptitle(f"DAUN layer cost vs. the flop model ({label})", fontsize=7)
        save_figure(fig, "scaling", figures_dir)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2: the whole machine)")
    ap.add_argument("--quick", action="store_true", help="small sizes and few repeats (smoke run)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--reference", type=int, default=2, help="cvxpy solves to time")
    ap.add_argument("--out", default=str(ROOT / "results" / "benchmark.csv"))
    ap.add_argument("--figures", default=str(ROOT / "figures"))
    ap.add_argument("--plot-only", action="store_true", help="redraw figures/scaling from --out, measure nothing")
    args = ap.parse_args()
    if args.plot_only:
        out = Path(args.out)
        plot_scaling(
            experiments.read_csv(out),
            args.figures,
            machine_label(json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))),
        )
        return
    torch.set_num_threads(args.threads)
    reps = 1 if args.quick else 5
    daun_reps = 1 if args.quick else 15  # the DAUN timings are the targets: more repeats against VM noise
    peak = gemm_peak_gflops(1 if args.quick else 5)
    print(f"fp32 GEMM peak measured: {peak:.1f} GFLOP/s (nominal {NOMINAL_PEAK_GFLOPS:.0f})", flush=True)
    batch = 16 if args.quick else args.batch
    sc = Scenario()
    A, B = sc.dictionaries()
    data = channel.simulate(sc, batch, np.linspace(-10, 20, batch), seed=SEED)
    y = data.y
    rows: list[dict] = []

    def add(method: str, mode: str, seconds: float, **extra) -> None:
        paper = PAPER_SECONDS.get(method.split(" (")[0] if method.startswith("DAUN (") else method, float("nan"))
        row = {
            "method": method,
            "mode": mode,
            "seconds_per_sample": seconds,
            "ms_per_sample": 1e3 * seconds,
            "paper_seconds": paper,
            "speedup_vs_paper": paper / seconds,
            **extra,
        }
        if "gflop_per_sample" in extra:  # the arithmetic bound at the nominal and the measured GEMM peak
            row["bound_ms_nominal"] = 1e3 * extra["gflop_per_sample"] / NOMINAL_PEAK_GFLOPS
            row["bound_ms_gemm"] = 1e3 * extra["gflop_per_sample"] / peak
            row["x_bound_nominal"] = 1e3 * seconds / row["bound_ms_nominal"]
        rows.append(row)
        print(f"{method:24s} {mode:10s} {1e3 * seconds:10.3f} ms/sample", flush=True)

    # --- DAUN: shipped network and 15 P-ADMM layers, batch and single sample
    net = daun.load_pretrained()
    net15 = padmm_net(sc, 15)
    for label, model in ((f"DAUN ({net.n_layers} layers)", net), ("DAUN (15 layers)", net15)):
        with torch.inference_mode():
            t_b = best_time(lambda model=model: model.estimate_x(y), daun_reps) / batch  # inference: X only, no NMSE
            t_1 = best_time(lambda model=model: [model.estimate_x(y[i : i + 1]) for i in range(8)], daun_reps) / 8
        n_l = model.n_layers
        gflop = flops_per_layer(sc.n_bs, sc.n_antennas, sc.n_grid, sc.n_angles) * n_l / 1e9
        add(label, f"batch {batch}", t_b, layers=n_l, gflop_per_sample=gflop, gflops=gflop / t_b)
        add(label, "batch 1", t_1, layers=n_l, gflop_per_sample=gflop, gflops=gflop / t_1)

    # --- P-ADMM: to DAUN's last-layer NMSE, and the registry's iteration count
    p = admm.default_params(A, B)
    target = float(net.solve(y).nmse[-1])
    long = admm.solve(A, B, y, iterations=3000 if not args.quick else 300, **p.as_kwargs())
    hit = np.nonzero(long.nmse <= target)[0]
    iters_to_match = int(hit[0] + 1) if hit.size else None
    for label, iters in (
        ("P-ADMM (to DAUN NMSE)", iters_to_match),
        (f"P-ADMM ({PADMM_ITERATIONS} it.)", PADMM_ITERATIONS),
    ):
        if iters is None:
            print(f"{label}: never reaches DAUN's NMSE {target:.2e}")
            continue
        t = (
            best_time(lambda iters=iters: admm.solve(A, B, y, iterations=iters, **p.as_kwargs()), max(1, reps // 2))
            / batch
        )
        add(label, f"batch {batch}", t, iterations=iters, daun_nmse=target)

    # --- cvxpy reference, one sample at a time (compilation excluded)
    ref = reference.get_problem(A, B)
    ref.solve(y[0], 1.0)
    t = [ref.solve(y[i], 1.0).seconds for i in range(1, 1 + args.reference)]
    add("reference (cvxpy)", "batch 1", float(np.mean(t)), solver=reference.default_solver())

    # --- every registered method, batched
    for name, f in REGISTRY.items():
        f(sc, y[:2])
        add(name, f"batch {batch}", best_time(lambda f=f: f(sc, y), max(1, reps // 2)) / batch)

    # --- memory
    mem_inc, mem_during = peak_memory_mb(batch)
    rows.append(
        {
            "method": "DAUN peak memory",
            "mode": f"batch {batch}",
            "peak_rss_increase_mb": mem_inc,
            "peak_rss_process_mb": mem_during,
        }
    )
    print(
        f"DAUN batch {batch}: peak RSS {mem_during:.1f} MB during the batch, whole process "
        f"({mem_inc:.1f} MB over its RSS before the batch)"
    )

    # --- scaling sweep (P-ADMM layers; cost does not depend on the parameter values)
    sweep = []
    grids = [30, 50] if args.quick else [30, 50, 70, 100]
    arrays = [50, 100] if args.quick else [50, 100, 160, 256]
    n_sweep = 8 if args.quick else 64
    for kind, values in (("grid", grids), ("antennas", arrays)):
        for v in values:
            s = Scenario(grid_shape=(v, v)) if kind == "grid" else Scenario(n_antennas=v)
            m = padmm_net(s, 10)
            yy = channel.simulate(s, n_sweep, 10.0, seed=SEED).y
            with torch.inference_mode():
                t = best_time(lambda m=m, yy=yy: m.estimate_x(yy), reps) / n_sweep
            fl = flops_per_layer(s.n_bs, s.n_antennas, s.n_grid, s.n_angles) * 10
            sweep.append(
                {
                    "method": "scaling",
                    "mode": f"{kind}={v}",
                    "K": s.n_grid,
                    "N": s.n_antennas,
                    "seconds_per_sample": t,
                    "ms_per_sample": 1e3 * t,
                    "gflop_per_sample": fl / 1e9,
                    "gflops": fl / 1e9 / t,
                }
            )
            print(f"scaling {kind}={v}: {1e3 * t:.3f} ms/sample, {fl / 1e9 / t:.1f} GFLOP/s", flush=True)
    rows += sweep

    params = {
        "threads": args.threads,
        "batch": batch,
        "quick": args.quick,
        "seed": SEED,
        "repeats": reps,
        "daun_repeats": daun_reps,
        "sweep_batch": n_sweep,
        "sweep_layers": 10,
        "gemm_peak_gflops": peak,
        "nominal_peak_gflops": NOMINAL_PEAK_GFLOPS,
        "reference_solves": args.reference,
        "note": "minimum over repeats after one warm-up",
    }
    experiments.write_csv(rows, Path(args.out), params)

    sidecar = json.loads(Path(args.out).with_suffix(".json").read_text(encoding="utf-8"))
    plot_scaling(sweep, args.figures, machine_label(sidecar))
    # issue 21: P-ADMM with dense vs structured dictionary operators -> results/scaling.csv,
    # figures/operator_scaling.png (one thread, about a minute and a half)
    import scaling

    scaling.run(Path(args.out).with_name("scaling.csv"), Path(args.figures), args.quick)
    print(json.dumps(experiments.environment_info()))


if __name__ == "__main__":
    main()
