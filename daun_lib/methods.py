"""One table of localisation methods: ``REGISTRY[name](scenario, y) -> (n, 2)``.

The Monte Carlo code and the notebooks loop over this dict instead of
if-chains.  Every entry takes a :class:`daun_lib.Scenario` and received
signals ``y`` (n, M, N) (or (M, N)) and returns position estimates (n, 2) in
metres, with the documented default settings of its method.

========== =====================================================================
name       method
========== =====================================================================
DAUN       the pretrained unfolded network (:mod:`daun_lib.daun`), plain argmax
DAUN-R     the same with the position refinement of Algorithm 1
DAUN-S     the same with the sub-grid readout :func:`daun_lib.refine.subgrid` (not in the paper)
P-ADMM     :func:`daun_lib.admm.solve` with :func:`daun_lib.admm.default_params`,
           ``PADMM_ITERATIONS`` iterations, plain argmax readout
DPD        grid DPD (Weiss 2004), :mod:`daun_lib.baselines.dpd`
DPD-S      grid DPD with the same sub-grid readout as DAUN-S (the fair comparison for it)
Stansfield beamscan AoA + Stansfield intersection, :mod:`daun_lib.baselines.stansfield`
SRL        l1 angle spectra + Stansfield intersection, :mod:`daun_lib.baselines.srl`
VB         variational-Bayes sparse Bayesian learning, :mod:`daun_lib.baselines.vb`
MM         majorization-minimization of the penalised (3), :mod:`daun_lib.baselines.mm`
========== =====================================================================

The DAUN entries import :mod:`daun_lib.daun` only when called and raise
``ValueError`` for a scenario whose dictionaries differ from those of the
default ``Scenario()`` that the shipped weights were trained for (fields
``DICTIONARY_FIELDS``; the channel options ``los_model``, ``carrier_hz`` and the
heights change the data, not the network, and are accepted).

Scale.  DAUN, DAUN-R, DAUN-S, P-ADMM, DPD, DPD-S and Stansfield need no noise
level: ``c * y`` gives the same positions as ``y`` for any ``c`` from 1e-30 to
1e30 (exactly for the grid readouts, to float round-off for the continuous
ones).  SRL, VB and MM are set in units of the noise (the paper's unit noise
power): they answer for ``c * y`` as for a different SNR, and reject samples far
below the noise power with a ``ValueError`` instead of answering.  An all-zero
sample is rejected by every method.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable

import numpy as np

from . import admm
from .baselines import _common, dpd, mm, srl, stansfield, vb
from .refine import argmax_rows, row_power, subgrid
from .scenario import DICTIONARY_FIELDS as _SCENARIO_DICTIONARY_FIELDS
from .scenario import Scenario

Localizer = Callable[[Scenario, Any], np.ndarray]

#: P-ADMM iterations.  Measured with ``admm.default_params`` (``rho = 0.1``,
#: steps at 99 % of the bound; 100 users of the default scenario): after 300
#: iterations the objective of (3) is within 0.1 % of its value after 800
#: (0 and 20 dB) and the residual NMSE is 2.5e-6 (0 dB) / 3.3e-5 (20 dB); at
#: 0 dB the argmax readout still changes for a few per cent of the users
#: between 300 and 800 iterations (P(error < 1 m) 0.88 -> 0.90).  300 is the
#: compromise between "run to convergence" and Table I's run time; re-check
#: when ``admm.DEFAULT_RHO`` changes.
PADMM_ITERATIONS = 300

#: Scenario fields that determine the dictionaries A, B (and so the network's operators);
#: an alias of :data:`daun_lib.scenario.DICTIONARY_FIELDS`.
DICTIONARY_FIELDS: tuple[str, ...] = _SCENARIO_DICTIONARY_FIELDS

#: Samples per block of the DAUN-S readout (bounds its peak memory: X of a block
#: is (DAUN_S_CHUNK, K, M) complex).
DAUN_S_CHUNK = 256

#: The methods of Fig. 2 and of Table I, in the paper's order.
FIG2_METHODS: tuple[str, ...] = ("DAUN", "DAUN-R", "DPD", "Stansfield", "SRL", "VB")
TABLE1_METHODS: tuple[str, ...] = ("DAUN", "P-ADMM", "MM", "VB", "DPD")


@lru_cache(maxsize=4)
def _padmm_params(scenario: Scenario) -> admm.ADMMParams:
    A, B = _common.dictionaries(scenario)
    return admm.default_params(A, B)


def padmm(scenario: Scenario, y: Any) -> np.ndarray:
    """P-ADMM run to convergence (``PADMM_ITERATIONS``), plain argmax readout.

    Parameters
    ----------
    scenario : Scenario
    y : (n, M, N) or (M, N) complex

    Returns
    -------
    (n, 2) float
    """
    scenario = _common.check_scenario(scenario)
    y = _common.check_y(scenario, y)
    A, B = _common.dictionaries(scenario)
    res = admm.solve(A, B, y, iterations=PADMM_ITERATIONS, **_padmm_params(scenario).as_kwargs())
    return _common.grid(scenario)[argmax_rows(res.X)].copy()


@lru_cache(maxsize=1)
def _pretrained() -> Any:
    from . import daun  # lazy: the network module is optional for the baselines

    return daun.load_pretrained()


def dpd_subgrid(scenario: Scenario, y: Any) -> np.ndarray:
    """Grid DPD followed by the sub-grid readout of :func:`daun_lib.refine.subgrid` -> (n, 2)."""
    scenario = _common.check_scenario(scenario)
    y = _common.check_y(scenario, y)
    A, _ = _common.dictionaries(scenario)
    return subgrid(dpd.cost(A, y), scenario)


def _daun(refine: bool | str) -> Localizer:
    def localize(scenario: Scenario, y: Any) -> np.ndarray:
        scenario = _common.check_scenario(scenario)
        default = Scenario()
        changed = [f for f in DICTIONARY_FIELDS if getattr(scenario, f) != getattr(default, f)]
        if changed:
            raise ValueError(
                f"scenario: the pretrained DAUN weights were trained for the dictionaries of the default "
                f"Scenario(); this scenario changes {changed} (train a network for it with daun_lib.daun)"
            )
        y = _common.check_y(scenario, y)
        if refine == "subgrid":
            net = _pretrained()
            out = np.empty((y.shape[0], 2))
            for lo in range(0, y.shape[0], DAUN_S_CHUNK):
                X = net.estimate_x(y[lo:lo + DAUN_S_CHUNK])
                out[lo:lo + DAUN_S_CHUNK] = subgrid(row_power(X, normalize=True), scenario)
            return out
        out = _pretrained().localize(y, refine=refine)
        if hasattr(out, "detach"):
            out = out.detach().cpu().numpy()
        return np.asarray(out, dtype=float).reshape(y.shape[0], 2)

    readout = {True: "Algorithm 1 refinement", False: "plain argmax", "subgrid": "sub-grid"}[refine]
    localize.__name__ = {True: "daun_r", False: "daun", "subgrid": "daun_s"}[refine]
    localize.__doc__ = f"Pretrained DAUN, {readout} readout -> (n, 2)."
    return localize


REGISTRY: dict[str, Localizer] = {
    "DAUN": _daun(refine=False),
    "DAUN-R": _daun(refine=True),
    "DAUN-S": _daun(refine="subgrid"),
    "P-ADMM": padmm,
    "DPD": dpd.localize,
    "DPD-S": dpd_subgrid,
    "Stansfield": stansfield.localize,
    "SRL": srl.localize,
    "VB": vb.localize,
    "MM": mm.localize,
}
"""Method name -> ``localize(scenario, y) -> (n, 2)``."""


def localize(method: str, scenario: Scenario, y: Any) -> np.ndarray:
    """``REGISTRY[method](scenario, y)`` with a clear error for an unknown name.

    Parameters
    ----------
    method : str
        A key of :data:`REGISTRY`.
    scenario : Scenario
    y : (n, M, N) or (M, N) complex

    Returns
    -------
    (n, 2) float
    """
    if not isinstance(method, str) or method not in REGISTRY:
        raise ValueError(f"method: expected one of {sorted(REGISTRY)}, got {method!r}")
    return REGISTRY[method](scenario, y)


def daun_unavailable() -> str | None:
    """Why the DAUN entries cannot run here (None when they can).

    They need :mod:`daun_lib.daun` and its shipped weights
    (``daun.load_pretrained()``); the reason is the import or loading error.
    """
    try:
        _pretrained()
    except (ImportError, ValueError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def daun_available() -> bool:
    """True when the pretrained DAUN can be loaded (see :func:`daun_unavailable`)."""
    return daun_unavailable() is None
