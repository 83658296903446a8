"""Two-user evaluation of the multi-user DAUN (issue 14, developer C).

200 two-user snapshots per SNR (0, 10, 20 dB; seeds 140000 + SNR, not used in training),
U = 2 strongest rows of X (row norms) with 3 m suppression around each pick,
P(both users < 1 m) after optimal assignment, for: P-ADMM (300 iterations,
PADMMLocalizer()._map), the shipped single-user DAUN, and the given DAUN checkpoints.

usage: python eval_multi2.py [--no-padmm] [name=path_or_variant ...]
"""

import sys
import time

import torch

from daun_lib import daun
from daun_lib.daun.training import SuperposedUsers
from daun_lib.methods import PADMMLocalizer
from daun_lib.metrics import assigned_errors, fraction_all_within
from daun_lib.multiuser import MULTI_REGISTRY, greedy_peaks
from daun_lib.refine import row_power
from daun_lib.scenario import Scenario

torch.set_num_threads(2)
N_PAIRS, SNRS, SUPPRESS_M, U = 200, (0, 10, 20), 3.0, 2


def picks(X, grid):
    """X (n, K, M) of a network -> (n, U, 2): the U strongest rows with the suppression of daun_lib.multiuser."""
    return grid[greedy_peaks(row_power(X), grid, U, SUPPRESS_M)]


def success(est, true):
    """Fraction of snapshots with every user within 1 m after the optimal assignment."""
    return fraction_all_within(assigned_errors(est, true), 1.0)


s = Scenario()
grid = s.grid
args = [a for a in sys.argv[1:] if a != "--no-padmm"]
with_padmm = "--no-padmm" not in sys.argv[1:]
nets = {"DAUN (single-user, shipped)": daun.load_pretrained()}
for a in args:
    name, path = a.split("=", 1)
    nets[name] = daun.DAUN.load(path, scenario=s) if path.endswith(".pt") else daun.load_pretrained(path)
res = {}
for snr in SNRS:
    b = SuperposedUsers(U)(s, N_PAIRS, float(snr), seed=140000 + snr)
    if with_padmm:
        t = time.perf_counter()
        X = PADMMLocalizer()._map(s, b.y)
        tp = time.perf_counter() - t
        res.setdefault("P-ADMM 300", {})[snr] = (success(picks(X, grid), b.positions), tp)
    t = time.perf_counter()
    est = MULTI_REGISTRY["DPD-SIC"](s, b.y, U)
    res.setdefault("DPD-SIC (daun_lib.multiuser)", {})[snr] = (success(est, b.positions), time.perf_counter() - t)
    for name, net in nets.items():
        t = time.perf_counter()
        X = net.estimate_x(b.y)
        tn = time.perf_counter() - t
        res.setdefault(name, {})[snr] = (success(picks(X, grid), b.positions), tn)
print(f"P(both < 1 m), {N_PAIRS} two-user snapshots per SNR (time for the batch, s)")
print("| method | " + " | ".join(f"{v} dB" for v in SNRS) + " |")
for name, r in res.items():
    print(f"| {name} | " + " | ".join(f"{r[v][0]:.3f} ({r[v][1]:.2f}s)" for v in SNRS) + " |")
