"""Fig. 2 accuracy tables: the methods of a sweep, rows with standard errors, and the sweep's parameters.

The sweep itself is :func:`daun_lib.experiments.accuracy_sweep`; this module
adds what notebook 03 writes to ``results/fig2.csv``: the standard errors
:func:`daun_lib.metrics.mse_stderr` and :func:`daun_lib.metrics.p_within_stderr`
of every row, the LoS model and the mean number of LoS links, and the
method adapters that let the registry's localisers run on scenarios with
another LoS model.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .. import experiments
from ..metrics import mse_stderr, p_within_stderr

ROW_EXTRA_FIELDS = ("mse_stderr", "p_submeter_stderr", "los_model", "mean_los_links")
"""Columns that :func:`accuracy_rows` appends to :data:`daun_lib.experiments.ROW_FIELDS`."""


def on_dictionaries(fn: Callable) -> Callable:
    """``fn(scenario, y)`` called with the all-LoS twin of ``scenario`` (same A, B; the LoS model only draws channels).

    Parameters
    ----------
    fn : callable ``localize(scenario, y (n, M, N)) -> (n, 2)``
    """
    if not callable(fn):
        raise ValueError(f"fn: expected a callable localize(scenario, y), got {type(fn).__name__}")

    def localize(scen: Any, y: Any) -> np.ndarray:
        return fn(dataclasses.replace(scen, los_model="always"), y)

    return localize


def daun_readout(net: Any, refine: bool) -> Callable:
    """``localize(scenario, y) -> (n, 2)`` of one DAUN network: plain argmax (DAUN) or Algorithm 1 (DAUN-R).

    Parameters
    ----------
    net : daun.DAUN
    refine : bool
        Algorithm 1 (True) or the row-norm argmax (False).
    """
    if not hasattr(net, "localize"):
        raise ValueError(f"net: expected a DAUN network, got {type(net).__name__}")
    if not isinstance(refine, bool):
        raise ValueError(f"refine: expected True or False, got {refine!r}")

    def localize(scen: Any, y: Any) -> np.ndarray:
        mine = getattr(net, "scenario", None)
        if mine is not None and mine.dictionary_fields() != scen.dictionary_fields():
            raise ValueError(
                f"scenario: this DAUN was built for other dictionaries ({mine.dictionary_fields()}) than the "
                f"sweep's scenario ({scen.dictionary_fields()})"
            )
        return net.localize(y, refine=refine)

    return localize


def weights_hash(net: Any) -> str:
    """:func:`daun_lib.experiments.params_hash` of a network's parameters (identifies shipped weights)."""
    if not hasattr(net, "parameters_dict"):
        raise ValueError(f"net: expected a DAUN network, got {type(net).__name__}")
    return experiments.params_hash(net.parameters_dict())


def fig2_methods(names: Sequence[str], paper_variant: bool) -> tuple[dict[str, Callable], dict[str, str], str | None]:
    """The methods of Fig. 2: registry entries on the all-LoS dictionaries, plus the loss-(18) DAUN when shipped.

    Parameters
    ----------
    names : list of str
        Names in :data:`daun_lib.methods.REGISTRY`.
    paper_variant : bool
        Add "DAUN (loss 18)" and "DAUN-R (loss 18)" (``daun.load_pretrained("paper")``)
        when that variant is shipped and differs from the default network.

    Returns
    -------
    methods : dict name -> localize(scenario, y)
    weights : dict variant -> :func:`weights_hash` ("default", and "paper" when added)
    note : str or None
        Why the loss-(18) curves are missing, when they were asked for.
    """
    from .. import daun
    from ..methods import REGISTRY

    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"names: expected a list of method names, got {names!r}")
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ValueError(f"names: unknown methods {unknown}; known: {sorted(REGISTRY)}")
    if not isinstance(paper_variant, bool):
        raise ValueError(f"paper_variant: expected True or False, got {paper_variant!r}")
    weights = {"default": weights_hash(daun.load_pretrained())}
    methods = {name: on_dictionaries(REGISTRY[name]) for name in names}
    note = None
    if paper_variant and "paper" in daun.VARIANTS:
        paper_net = daun.load_pretrained("paper")
        if weights_hash(paper_net) == weights["default"]:
            note = "the default DAUN is the loss-(18) network: no separate 'loss 18' curves"
        else:
            weights["paper"] = weights_hash(paper_net)
            methods["DAUN (loss 18)"] = daun_readout(paper_net, refine=False)
            methods["DAUN-R (loss 18)"] = daun_readout(paper_net, refine=True)
    elif paper_variant:
        note = "daun.VARIANTS has no 'paper' variant: no 'loss 18' curves"
    return methods, weights, note


def accuracy_rows(
    methods: Mapping[str, Callable],
    scenario: Any,
    snr_db: Sequence[float],
    n_trials: int,
    seed: int,
    *,
    los_label: str,
    cache_dir: str | os.PathLike | None,
    radius_m: float = 1.0,
    **sweep_kwargs: Any,
) -> list[dict]:
    """Rows of ``results/fig2.csv``: :func:`~daun_lib.experiments.accuracy_sweep` plus standard errors.

    Each row of the sweep (keys :data:`daun_lib.experiments.ROW_FIELDS`) gets
    ``mse_stderr`` (:func:`daun_lib.metrics.mse_stderr`), ``p_submeter_stderr``
    (:func:`daun_lib.metrics.p_within_stderr`), ``los_model`` = ``los_label``
    and, when the generator reports LoS states, ``mean_los_links``: the mean
    number of LoS links per trial.

    Parameters
    ----------
    methods, scenario, snr_db, n_trials, seed, cache_dir, radius_m
        As for :func:`daun_lib.experiments.accuracy_sweep`.
    los_label : str
        Written to the ``los_model`` column.
    **sweep_kwargs
        Further keyword arguments of :func:`~daun_lib.experiments.accuracy_sweep`
        (``n_jobs``, ``force``, ``progress``, ``extra`` ...).
    """
    if not isinstance(los_label, str):
        raise ValueError(f"los_label: expected a str, got {type(los_label).__name__}")
    if "return_trials" in sweep_kwargs:
        raise ValueError("sweep_kwargs: return_trials is set by accuracy_rows")
    rows, trials = experiments.accuracy_sweep(
        methods,
        scenario,
        snr_db,
        n_trials,
        seed,
        cache_dir=cache_dir,
        radius_m=radius_m,
        return_trials=True,
        **sweep_kwargs,
    )
    keys = [(m, j) for m in methods for j in range(len(rows) // len(methods))]  # the order of the rows
    for row, key in zip(rows, keys, strict=True):
        err = trials[key]["errors"]
        row["mse_stderr"] = mse_stderr(err)
        row["p_submeter_stderr"] = p_within_stderr(err, radius_m)
        row["los_model"] = los_label
        if "los" in trials[key]:
            row["mean_los_links"] = float(trials[key]["los"].sum(axis=1).mean())
    return rows


def accuracy_params(
    methods: Mapping[str, Callable], scenario: Any, snr_db: Sequence[float], n_trials: int, seed: int, **more: Any
) -> dict[str, Any]:
    """The sidecar parameters of an accuracy CSV: method names, SNR points, trials, seed, scenario fields and ``more``."""
    if not dataclasses.is_dataclass(scenario) or isinstance(scenario, type):
        raise ValueError(f"scenario: expected a Scenario (dataclass), got {type(scenario).__name__}")
    return {
        "methods": list(methods),
        "snr_db": list(snr_db),
        "n_trials": n_trials,
        "seed": seed,
        "scenario": dataclasses.asdict(scenario),
        **more,
    }


def by_method(table: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Rows grouped by ``method`` (in order of first appearance), each group sorted by ``snr_db``."""
    out: dict[str, list] = {}
    for r in table:
        out.setdefault(r["method"], []).append(r)
    return {m: sorted(rs, key=lambda r: r["snr_db"]) for m, rs in out.items()}


__all__ = [
    "ROW_EXTRA_FIELDS",
    "accuracy_params",
    "accuracy_rows",
    "by_method",
    "daun_readout",
    "fig2_methods",
    "on_dictionaries",
    "weights_hash",
]
