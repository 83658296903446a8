r"""DAUN: the deep ADMM unfolding network of Sec. III-B, its training (Sec. IV) and shipped weights.

Modules
-------
network          :class:`DAUN`: ``I`` unrolled P-ADMM iterations (5)-(17) with learnable
                 per-layer ``rho, tau1, tau2`` and per-BS ``w_m``; inference, readouts
losses           :class:`TrainingBatch`, :data:`LOSSES` (loss (18) and the supervised losses),
                 :func:`register_loss`
config           :class:`TrainConfig` (Sec. IV settings), :data:`RECIPES`, :func:`recipe`
training         :func:`train` (incremental, resumable), :func:`load_or_train`
checkpoint_file  the checkpoint record, its digest, the dictionary sketch, the file checks
checkpoints      save / load / :func:`upgrade_checkpoint`, :func:`load_pretrained`, :data:`VARIANTS`
plotting         :func:`plot_training`, :func:`plot_parameters`

Every public name is importable from here: ``from daun_lib.daun import DAUN,
train, load_pretrained``.  The shipped weights stay in ``daun_lib/weights/``
(:data:`WEIGHTS_DIR`); :func:`load_pretrained` returns the network of
:data:`DEFAULT_VARIANT` for the default :class:`~daun_lib.scenario.Scenario`,
the variants and their training settings are :data:`VARIANTS` and
:data:`RECIPES`, and the README (section DAUN) compares them.
"""

from __future__ import annotations

from .checkpoint_file import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    DICTIONARY_FIELDS,
    MAX_BS,
    MAX_CHECKPOINT_BYTES,
    MAX_DICTIONARY_ENTRIES,
    MAX_LAYERS,
    MIN_STEP_RATIO,
    PARAMETER_RANGE,
    SKETCH_TOLERANCE,
    STEP_BOUND,
)
from .checkpoints import (
    DEFAULT_VARIANT,
    VARIANTS,
    VARIANTS_3D,
    VARIANTS_MULTIUSER,
    WEIGHTS_DIR,
    load,
    load_pretrained,
    upgrade_checkpoint,
)
from .config import RECIPES, TrainConfig, recipe
from .losses import (
    LOSSES,
    TrainingBatch,
    loss_ce,
    loss_ce_paper,
    loss_mce,
    loss_mce_paper,
    loss_nmse,
    loss_paper,
    loss_softargmax,
    register_loss,
)
from .network import DAUN
from .plotting import plot_parameters, plot_training
from .training import SuperposedUsers, load_or_train, train

__all__ = [
    "DAUN",
    "TrainConfig",
    "TrainingBatch",
    "LOSSES",
    "register_loss",
    "train",
    "load",
    "load_pretrained",
    "load_or_train",
    "VARIANTS",
    "VARIANTS_3D",
    "VARIANTS_MULTIUSER",
    "RECIPES",
    "DEFAULT_VARIANT",
    "recipe",
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "DICTIONARY_FIELDS",
    "MAX_LAYERS",
    "MAX_BS",
    "MAX_DICTIONARY_ENTRIES",
    "MAX_CHECKPOINT_BYTES",
    "STEP_BOUND",
    "PARAMETER_RANGE",
    "upgrade_checkpoint",
    "plot_training",
    "plot_parameters",
    "MIN_STEP_RATIO",
    "SKETCH_TOLERANCE",
    "WEIGHTS_DIR",
    "loss_paper",
    "loss_nmse",
    "loss_ce",
    "loss_softargmax",
    "loss_ce_paper",
    "loss_mce",
    "loss_mce_paper",
    "SuperposedUsers",
]
