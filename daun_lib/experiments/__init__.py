r"""Monte Carlo engine of Sec. IV: cached, resumable accuracy sweeps (Fig. 2), result files and timing (Table I).

Modules, one idea each:

* :mod:`~daun_lib.experiments.keys`: per-trial seeds, parameter hashes, callable keys, cache folder names;
* :mod:`~daun_lib.experiments.cache`: chunk files, checksums, validation on load, writability checks;
* :mod:`~daun_lib.experiments.trials`: the work of one chunk (draw its trials, run the methods);
* :mod:`~daun_lib.experiments.workers`: parallel execution (sequential, loky, Dask);
* :mod:`~daun_lib.experiments.sweep`: :func:`plan_sweep` -> :func:`run_chunks` -> :func:`aggregate`,
  and :func:`accuracy_sweep`, which does the three;
* :mod:`~daun_lib.experiments.csvio`: CSV files with a JSON sidecar (:func:`write_csv`, :func:`read_csv`,
  :func:`read_params`, :func:`reuse_or_write_csv`, :func:`environment_info`);
* :mod:`~daun_lib.experiments.timing`: :func:`time_methods`.

Accuracy sweep (Fig. 2)
-----------------------
Trial ``t`` at SNR point ``j`` draws its data with one call
``simulate(scenario, 1, snr_db[j], seed=trial_seed(seed, j, t))``, so every
method sees the same data (common random numbers) whatever the chunking,
``n_jobs`` or backend.  The rows hold ``mse``, ``p_submeter``,
``median_error`` and ``n_trials`` per (method, SNR point).

Several users per snapshot (issue 14): ``accuracy_sweep(..., n_users=U)``
with ``U >= 2`` draws U superposed users per trial
(``simulate(scenario, 1, snr_db[j], seed=trial_seed(seed, j, t), n_users=U)``),
calls ``method(scenario, y, U) -> (n, U, 2)``, scores the (n, U) errors after
the optimal assignment and adds ``p_all_submeter`` (P(every user < 1 m)) and
``n_users`` to the rows (:data:`MULTI_USER_ROW_FIELDS`); ``n_users`` enters the
cache key only when above 1.

Cache keys
----------
One folder per method and parameter set, ``cache_dir/<method>-<hash>/``, where
``hash`` is the SHA-256 (first 16 hex digits) of the canonical JSON of the
scenario fields, the method name and key, the SNR list, ``n_trials``,
``seed``, the data generator's key, the ``daun_lib`` version, the cache format
and the user's ``extra`` dict (put the hash of pretrained weights or anything
else the keys below cannot see there; :func:`source_digest` fingerprints the
library's own code).

How a callable is keyed: by :func:`daun_lib._fingerprint.fingerprint`.

* library code (``daun_lib`` itself, such as the registry entries and the
  default generator :func:`daun_lib.channel.simulate`, the standard library
  and installed packages): module, qualified name and the fingerprint of
  closure values and defaults (so ``DAUN`` and ``DAUN-R``, two closures of
  one factory, differ); the code is covered by the ``daun_lib`` version in
  the key (``extra={"code": source_digest()}`` keys the source itself);
* user code (lambdas, :func:`functools.partial`, functions and classes of a
  notebook, a script or the user's own modules, callable objects): the hash
  of their code, constants, closure values, defaults, partial arguments,
  attributes and the globals they refer to, recursively.  Two lambdas with
  other SNR offsets, two partials with other arguments, another function
  under the same method name or an edited constant in the user's module
  therefore select other folders;
* a callable with a string attribute ``cache_key`` is keyed by that string
  alone (``my_method.cache_key = "mine-v2"``): the way out for a callable
  whose state cannot be fingerprinted (open files, clients, locks), which
  otherwise makes the sweep refuse to cache it with a ``ValueError`` naming
  the argument (``methods['mine']`` or ``simulate``); ``cache_dir=None``
  runs it without a cache.

Cache format 2 introduced these keys (format 1 keyed callables by module and
qualified name only, which returned stale rows for lambdas and partials), so
every folder name changed with it; the chunk arrays of a given sweep did not.

The layout of a folder and the checks of a chunk on load:
:mod:`daun_lib.experiments.cache`.  A method that returns NaN or inf positions
stops the sweep with a ``RuntimeError`` naming the method, the SNR point, the
trial range and the number of non-finite entries; nothing of that method's
chunk is cached.
"""

from __future__ import annotations

from . import cache, csvio, keys, sweep, timing, trials, workers  # noqa: F401 - the submodules
from .cache import CacheWarning, check_cache_dir, check_writable, save_chunk  # noqa: F401 - private: notebook_params, tests
from .csvio import environment_info, read_csv, read_params, reuse_or_write_csv, write_csv
from .keys import CACHE_FORMAT, params_hash, source_digest, sweep_folder, trial_seed
from .sweep import MULTI_USER_ROW_FIELDS, ROW_FIELDS, SweepPlan, accuracy_sweep, aggregate, plan_sweep, run_chunks
from .timing import time_methods
from .workers import BACKENDS

__all__ = [
    "BACKENDS",
    "CACHE_FORMAT",
    "CacheWarning",
    "MULTI_USER_ROW_FIELDS",
    "ROW_FIELDS",
    "SweepPlan",
    "accuracy_sweep",
    "aggregate",
    "check_writable",
    "environment_info",
    "params_hash",
    "plan_sweep",
    "read_csv",
    "read_params",
    "reuse_or_write_csv",
    "run_chunks",
    "source_digest",
    "sweep_folder",
    "time_methods",
    "trial_seed",
    "write_csv",
]
