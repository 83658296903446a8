"""CUDA path check (run on a machine with a GPU; not part of the tests): P-ADMM and DAUN on
``device="cuda"`` agree with the CPU and are timed.  Prints one line per measurement."""

import time

import numpy as np
import torch

from daun_lib import Scenario, admm, channel, daun

assert torch.cuda.is_available(), "no CUDA device"
s = Scenario()
A, B = s.dictionaries()
y = channel.simulate(s, 1024, np.linspace(-10, 20, 1024), seed=3).y
p = admm.default_params(A, B)
cpu = admm.solve(A, B, y[:64], iterations=50, dtype="float64", **p.as_kwargs())
gpu = admm.solve(A, B, y[:64], iterations=50, dtype="float64", device="cuda", **p.as_kwargs())
print(
    "P-ADMM float64 cuda vs cpu: max |dX| =",
    float(np.abs(cpu.X - gpu.X).max()),
    "max |X| =",
    float(np.abs(cpu.X).max()),
)
n64c = daun.load_pretrained(dtype="float64")
n64g = daun.load_pretrained(dtype="float64", device="cuda")
out_c, out_g = n64c.solve(y[:64]), n64g.solve(y[:64])
Xf, _ = n64g(torch.as_tensor(y[:64], device="cuda"))  # the autograd layers (training path) on cuda
print(
    "DAUN float64 cuda vs cpu (inference path): max |dX| =",
    float(np.abs(out_c.X - out_g.X).max()),
    "; cuda autograd vs inference path: max |dX| =",
    float(np.abs(Xf.detach().cpu().numpy() - out_g.X).max()),
    "; max |X| =",
    float(np.abs(out_c.X).max()),
)
net_cpu = daun.load_pretrained()
net_gpu = daun.load_pretrained(device="cuda")
kc, kg = net_cpu.localize(y, refine=False), net_gpu.localize(y, refine=False)
print("DAUN float32 cuda vs cpu: identical positions for", float(np.mean(np.all(kc == kg, axis=1))), "of users")
print("GPU:", torch.cuda.get_device_name())
for n in (1, 256, 1024):
    yy = y[:n]
    net_gpu.estimate_x(yy)
    torch.cuda.synchronize()
    reps = 20
    t = time.perf_counter()
    for _ in range(reps):
        net_gpu.estimate_x(yy)
    torch.cuda.synchronize()
    print(
        f"DAUN 10 layers on cuda, batch {n}: {(time.perf_counter() - t) / reps / n * 1e3:.4f} ms/sample (incl. host transfers)"
    )
