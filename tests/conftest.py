"""Test-suite settings: one torch thread.

CI and developer machines have 2 cores, often shared; torch's OpenMP threads
spin-wait under oversubscription (measured here: 15-30x slower with 2 threads
on a loaded machine).  Results do not depend on the thread count beyond
float round-off, which no test relies on.
"""

import torch

torch.set_num_threads(1)
