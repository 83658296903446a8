"""Two-user evaluation of the multi-user DAUN (issue 14, developer C).

200 two-user snapshots per SNR (0, 10, 20 dB; seeds 140000 + SNR, not used in training),
U = 2 strongest rows of X (row norms) with 3 m suppression around each pick,
P(both users < 1 m) after optimal assignment, for: P-ADMM (300 iterations,
PADMMLocalizer()._map), the shipped single-user DAUN, and the given DAUN checkpoints.

usage: python eval_multi2.py [--no-padmm] [name=path_or_variant ...]
"""

import sys
import time

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from daun_lib import daun
from daun_lib.daun.training import SuperposedUsers
from daun_lib.methods import PADMMLocalizer
from daun_lib.scenario import Scenario

torch.set_num_threads(2)
N_PAIRS, SNRS, SUPPRESS_M, U = 200, (0, 10, 20), 3.0, 2


def peaks(score, grid, n_users, radius):
    """(n, K) scores -> (n, U, 2): the U largest, each pick suppressing cells within `radius` m."""
    score = np.array(score, dtype=float)
    d = np.linalg.norm(grid[:, None] - grid[None], axis=-1)  # (K, K)
    out = np.empty((score.shape[0], n_users, 2))
    for u in range(n_users):
        k = score.argmax(axis=1)
        out[:, u] = grid[k]
        score[d[k] <= radius] = -np.inf
    return out


def success(est, true):
    """(n,) bool: all users < 1 m after optimal assignment."""
    ok = np.empty(len(est), bool)
    for i in range(len(est)):
        c = np.linalg.norm(est[i][:, None] - true[i][None], axis=-1)
        r, col = linear_sum_assignment(c)
        ok[i] = (c[r, col] < 1.0).all()
    return ok


def row_norms(X):
    return np.sqrt((np.abs(np.asarray(X)) ** 2).sum(axis=-1))  # (n, K)


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
        ok = success(peaks(row_norms(X), grid, U, SUPPRESS_M), b.positions)
        res.setdefault("P-ADMM 300", {})[snr] = (ok.mean(), tp)
    try:  # DPD with successive cancellation of daun_lib.multiuser, where present
        from daun_lib.multiuser import MULTI_REGISTRY

        t = time.perf_counter()
        est = MULTI_REGISTRY["DPD-SIC"](s, b.y, U)
        res.setdefault("DPD-SIC (daun_lib.multiuser)", {})[snr] = (
            success(est, b.positions).mean(),
            time.perf_counter() - t,
        )
    except ImportError:
        pass
    for name, net in nets.items():
        t = time.perf_counter()
        X = net.estimate_x(b.y)
        tn = time.perf_counter() - t
        res.setdefault(name, {})[snr] = (success(peaks(row_norms(X), grid, U, SUPPRESS_M), b.positions).mean(), tn)
print(f"P(both < 1 m), {N_PAIRS} two-user snapshots per SNR (time for the batch, s)")
print("| method | " + " | ".join(f"{v} dB" for v in SNRS) + " |")
for name, r in res.items():
    print(f"| {name} | " + " | ".join(f"{r[v][0]:.3f} ({r[v][1]:.2f}s)" for v in SNRS) + " |")
