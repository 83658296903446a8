"""Figures of a trained DAUN: training curves per incremental stage and the learned parameters."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .. import admm
from .network import DAUN

__all__ = ["plot_training", "plot_parameters"]


def plot_training(net: DAUN, ax: Any = None) -> Any:
    """Training and validation loss of every incremental stage against the cumulative epoch.

    Each stage (a new layer) starts at the validation loss of its initial
    parameters (epoch 0 of the stage); dotted lines separate the stages.
    Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    if not net.history:
        raise ValueError("net: no training history (a network built, not trained or loaded from training)")
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots()
    start = 0
    colors = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0", "C1"])
    for j, h in enumerate(net.history):
        val, tr = np.asarray(h["val"], dtype=float), np.asarray(h["train"], dtype=float)
        ax.plot(start + np.arange(len(val)), val, "-", color=colors[0], label="validation" if j == 0 else None)
        ax.plot(start + 1 + np.arange(len(tr)), tr, ".", color=colors[1], ms=3, label="training" if j == 0 else None)
        if j:
            ax.axvline(start, color="0.7", lw=0.5, ls=":")
        start += len(val)
    ax.set_xlabel("epoch (all stages; dotted: a layer is added)")
    ax.set_ylabel(f"loss ({(net.meta.get('train_config') or {}).get('loss', '?')})")
    finite = np.concatenate([np.asarray(h["val"], float) for h in net.history])
    if np.all(finite[np.isfinite(finite)] > 0):
        ax.set_yscale("log")
    ax.legend()
    return fig


def plot_parameters(net: DAUN, reference: admm.ADMMParams | None = None) -> Any:
    """Learned ``rho^(i)``, ``tau1^(i)``, ``tau2^(i)`` per layer and ``w_m`` per BS (log scale).

    Dashed lines: ``reference`` (default: the initial values of the training,
    i.e. the P-ADMM steps of :func:`daun_lib.admm.default_params` and the
    training's ``rho_init``).  Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    p = net.parameters_dict()
    if reference is None:  # where training started: P-ADMM steps, rho_init of the training
        reference = net._init
        rho0 = (net.meta.get("train_config") or {}).get("rho_init")
        if rho0 is not None:
            reference = dataclasses.replace(reference, rho=float(rho0))
    fig, (a1, a2) = plt.subplots(1, 2, gridspec_kw={"width_ratios": [3, 1.2]})
    layers = np.arange(1, net.n_layers + 1)
    for name, label in (("rho", r"$\rho^{(i)}$"), ("tau1", r"$\tau_1^{(i)}$"), ("tau2", r"$\tau_2^{(i)}$")):
        (line,) = a1.semilogy(layers, p[name], "o-", ms=3, label=label)
        a1.axhline(getattr(reference, name), color=line.get_color(), ls="--", lw=0.6)
    a1.set_xlabel("layer $i$")
    a1.set_ylabel("value")
    a1.legend(fontsize="small")
    bs = np.arange(1, net.n_bs + 1)
    a2.bar(bs, p["w"])
    a2.axhline(float(np.mean(reference.w)), color="0.4", ls="--", lw=0.6)
    a2.set_yscale("log")
    a2.set_xticks(bs)
    a2.set_xlabel("BS $m$")
    a2.set_ylabel("$w_m$")
    fig.tight_layout()
    return fig
