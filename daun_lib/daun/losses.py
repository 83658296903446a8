r"""Training losses of DAUN: what a loss sees (:class:`TrainingBatch`) and the registry :data:`LOSSES`.

A loss is ``f(net, batch, config) -> scalar tensor`` with ``net`` the
:class:`~daun_lib.daun.network.DAUN` being trained, ``batch`` a
:class:`TrainingBatch` (the network's state after its last layer) and
``config`` the :class:`~daun_lib.daun.config.TrainConfig`.  Registered:

``"paper"``
    The SNR-weighted loss (18) with its sign slip corrected,
    ``(1 + sigmoid(-snr_dB)) ||y - A x - B z||^2``, evaluated on the
    RMS-normalised ``y`` that the network sees (so it is a per-sample NMSE and
    every SNR is on one scale).  It rewards the residual only, which the NLoS
    part ``B z`` can reduce on its own (README, section DAUN).
``"nmse"``
    The same residual without the SNR weighting.
``"ce"``
    Supervised: cross-entropy of a softmax over the row norms of ``X`` (scaled
    by their maximum and divided by ``temperature``) against the grid cell
    nearest to the true position.
``"softargmax"``
    Supervised: squared error (m^2) of the soft-argmax position
    ``sum_k softmax_k Phi_k`` with the same logits.
``"ce+paper"``
    ``"ce"`` plus ``residual_weight`` times ``"paper"``.
``"mce"``
    Multi-label cross-entropy for snapshots with several users (issue 14):
    the softmax ``q`` over the same logits as ``"ce"``, against the target
    distribution ``t`` uniform over the ``U`` true cells,
    ``-sum_k t_k log q_k = -(1/U) sum_u log q_{c_u}`` (a cell holding two
    users counts twice).  Its minimum, ``log U``, is reached when the ``U``
    true rows of ``X`` share the softmax mass equally and every other row
    has none, so it rewards every true cell, not only the strongest user's.
    With ``U = 1`` it is ``"ce"``.
``"mce+paper"``
    ``"mce"`` plus ``residual_weight`` times ``"paper"`` (the multi-user
    counterpart of ``"ce+paper"``; residual of the constraint of (3) on the
    superposed ``y``).

:func:`register_loss` adds your own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import torch

from .. import admm

if TYPE_CHECKING:
    from .config import TrainConfig
    from .network import DAUN

__all__ = [
    "TrainingBatch",
    "LOSSES",
    "register_loss",
    "loss_paper",
    "loss_nmse",
    "loss_ce",
    "loss_softargmax",
    "loss_ce_paper",
    "loss_mce",
    "loss_mce_paper",
]


class TrainingBatch(NamedTuple):
    """What a loss sees for one mini-batch (internal batch-last layout).

    Attributes
    ----------
    yt : (M, N, b) complex, RMS-normalised signals
    state : admm.State after the last layer
    snr_db : (b,) real
        Per-sample SNR in dB (with several users: the mean of their SNRs in dB).
    positions : (b, 2) real, metres; (b, U, 2) for snapshots with ``U`` users
    cell : (b,) long, index of the grid cell nearest to the true position;
        (b, U) with ``U`` users (one cell per user)
    """

    yt: torch.Tensor
    state: admm.State
    snr_db: torch.Tensor
    positions: torch.Tensor
    cell: torch.Tensor


def _residual_nmse_per_sample(batch: TrainingBatch) -> torch.Tensor:
    r = batch.yt - batch.state.Ax - batch.state.Bz
    M, N = batch.yt.shape[0], batch.yt.shape[1]
    return (r.real.square() + r.imag.square()).sum(dim=(0, 1)) / (M * N)


def loss_paper(net: DAUN, batch: TrainingBatch, config: TrainConfig) -> torch.Tensor:
    """(18) with the sign corrected: ``mean (1 + sigmoid(-snr_dB)) ||y - A x - B z||^2`` on RMS-normalised y (/ MN)."""
    weight = 1.0 + torch.sigmoid(-batch.snr_db)
    return (weight * _residual_nmse_per_sample(batch)).mean()


def loss_nmse(net: DAUN, batch: TrainingBatch, config: TrainConfig) -> torch.Tensor:
    """Unweighted residual NMSE (no SNR weighting)."""
    return _residual_nmse_per_sample(batch).mean()


def _logits(net: DAUN, batch: TrainingBatch, config: TrainConfig) -> torch.Tensor:
    """(b, K) logits ``||X_k|| / (T max_j ||X_j||)``."""
    x = batch.state.x  # (M, K, b)
    norm = torch.sqrt((x.real.square() + x.imag.square()).sum(dim=0) + 1e-30)  # (K, b)
    ref = norm.max(dim=0, keepdim=True).values.clamp_min(1e-12)
    return (norm / (ref * config.temperature)).T


def _single_user(batch: TrainingBatch, name: str) -> None:
    if batch.cell.ndim != 1:
        raise ValueError(
            f"loss {name!r}: expected one user per sample (cell of shape (b,)), got cells of shape "
            f"{tuple(batch.cell.shape)}; use 'mce' or 'mce+paper' for several users"
        )


def loss_ce(net: DAUN, batch: TrainingBatch, config: TrainConfig) -> torch.Tensor:
    """Cross-entropy of softmax(row norms of X / temperature) against the true grid cell."""
    _single_user(batch, "ce")
    return torch.nn.functional.cross_entropy(_logits(net, batch, config), batch.cell)


def loss_softargmax(net: DAUN, batch: TrainingBatch, config: TrainConfig) -> torch.Tensor:
    """Squared error (m^2) of the soft-argmax position ``sum_k softmax_k Phi_k``."""
    if net.grid is None:
        raise ValueError("loss 'softargmax' needs a network with a position grid")
    _single_user(batch, "softargmax")
    p = torch.softmax(_logits(net, batch, config), dim=1) @ net.grid
    return (p - batch.positions).square().sum(dim=1).mean()


def loss_ce_paper(net: DAUN, batch: TrainingBatch, config: TrainConfig) -> torch.Tensor:
    """``ce + residual_weight * loss (18)``: classification plus the paper's residual term."""
    return loss_ce(net, batch, config) + config.residual_weight * loss_paper(net, batch, config)


def loss_mce(net: DAUN, batch: TrainingBatch, config: TrainConfig) -> torch.Tensor:
    """Multi-label cross-entropy: softmax over the row norms of X against the uniform target on the U true cells.

    ``-(1/U) sum_u log softmax(logits)_{c_u}``, averaged over the batch; logits
    as in ``"ce"`` (row norms of ``X`` (b, K) over their maximum, divided by
    ``temperature``); ``batch.cell`` (b, U) or (b,) (then equal to ``"ce"``).
    """
    cell = batch.cell if batch.cell.ndim == 2 else batch.cell[:, None]
    logp = torch.log_softmax(_logits(net, batch, config), dim=1)  # (b, K)
    return -logp.gather(1, cell).mean()


def loss_mce_paper(net: DAUN, batch: TrainingBatch, config: TrainConfig) -> torch.Tensor:
    """``mce + residual_weight * loss (18)``: multi-label classification plus the paper's residual term."""
    return loss_mce(net, batch, config) + config.residual_weight * loss_paper(net, batch, config)


#: Registry of training losses: name -> ``f(net, batch: TrainingBatch, config) -> scalar``.
LOSSES: dict[str, Callable[[DAUN, TrainingBatch, TrainConfig], torch.Tensor]] = {
    "paper": loss_paper,
    "nmse": loss_nmse,
    "ce": loss_ce,
    "softargmax": loss_softargmax,
    "ce+paper": loss_ce_paper,
    "mce": loss_mce,
    "mce+paper": loss_mce_paper,
}


def register_loss(name: str, fn: Callable[[DAUN, TrainingBatch, TrainConfig], torch.Tensor]) -> None:
    """Add a training loss ``fn(net, batch, config) -> scalar tensor`` under ``name``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name: expected a non-empty string, got {name!r}")
    if not callable(fn):
        raise ValueError(f"fn: expected a callable, got {type(fn).__name__}")
    LOSSES[name] = fn
