"""Training settings of DAUN: :class:`TrainConfig` (Sec. IV of the paper) and the shipped recipes."""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import nonnegative, positive
from ..scenario import Scenario
from .checkpoint_file import plain
from .checkpoints import DEFAULT_VARIANT
from .losses import LOSSES

__all__ = ["TrainConfig", "RECIPES", "recipe"]

#: Registered losses that take one true cell per sample (refused with ``n_users > 1``).
_SINGLE_USER_LOSSES = ("ce", "softargmax", "ce+paper")


@dataclass(frozen=True)
class TrainConfig:
    """Settings of :func:`train` (defaults: Sec. IV of the paper).

    Attributes
    ----------
    n_layers : int
        Layers of the final network ``I``.
    samples_per_layer : int
        Fresh training samples drawn for every new layer (700).
    batch_size : int
        Mini-batch size (7).
    lr, lr_late : float
        Adam learning rate (0.05), and (0.01) once the network has more than
        ``late_after`` layers (5).
    n_val : int
        Validation samples, drawn once (200).
    patience : int
        Epochs without a decrease of the validation loss before a stage stops
        (the best parameters of the stage are kept).
    max_epochs : int
        Cap on the epochs of one stage.
    min_delta : float
        Relative decrease of the validation loss that counts as a decrease.
    snr_range_db : (lo, hi)
        Training and validation SNRs are drawn uniformly from this range (dB).
    loss : str
        A key of :data:`LOSSES` ("paper": loss (18), the default).
    temperature : float
        Softmax temperature of the supervised losses ("ce", "softargmax").
    residual_weight : float
        Weight of the residual term (18) in the combined loss "ce+paper".
    w_min : float
        Lower bound of the NLoS weights (0: the paper's unconstrained w_m).
    learn_w : bool
        Train the w_m (True, the paper) or keep them at their initial value.
    w_init : float
        Initial w_m (1).
    rho_init : float or None
        Initial rho of every layer (1; None: that of :func:`daun_lib.admm.default_params`,
        0.1).  tau1 and tau2 start at the P-ADMM steps ``0.99 / ||A||^2`` and
        ``0.99 / ||B||^2``.  Not 0.1: with RMS-normalised y the first layer's
        threshold ``tau1 / rho`` then exceeds most rows of ``tau1 A^H y`` (every
        row for small arrays, N = 16), X starts at zero and the gradient with it.
    los_model : "always", "3gpp", float or None
        LoS model of the training channels (None: the scenario's).
    seed : int
        Seed of every random draw of the training.
    n_users : int
        Users per training snapshot (1: the paper's single-user data).  With
        ``U >= 2`` and no ``simulate`` given, :func:`train` draws
        :class:`~daun_lib.daun.training.SuperposedUsers` snapshots (``U``
        independent users superposed at every BS, one noise draw; positions
        (n, U, 2)) and the loss must accept several cells per sample
        (``"mce"``, ``"mce+paper"``).  Left out of :meth:`as_dict` when 1, so
        single-user records and checkpoints are unchanged.
    """

    n_layers: int = 10
    samples_per_layer: int = 700
    batch_size: int = 7
    lr: float = 0.05
    lr_late: float = 0.01
    late_after: int = 5
    n_val: int = 200
    patience: int = 2
    max_epochs: int = 20
    min_delta: float = 1e-4
    snr_range_db: tuple[float, float] = (-10.0, 20.0)
    loss: str = "paper"
    temperature: float = 0.05
    residual_weight: float = 1.0
    w_min: float = 0.0
    learn_w: bool = True
    w_init: float = 1.0
    rho_init: float | None = 1.0
    los_model: str | float | None = None
    seed: int = 0
    n_users: int = 1

    def __post_init__(self) -> None:
        for name in ("n_layers", "samples_per_layer", "batch_size", "n_val", "patience", "max_epochs"):
            positive(getattr(self, name), name, integer=True)
        late = self.late_after
        if isinstance(late, bool) or not isinstance(late, numbers.Integral) or late < 0:
            raise ValueError(f"late_after: expected an integer >= 0, got {self.late_after!r}")
        for name in ("lr", "lr_late", "temperature", "w_init", "residual_weight"):
            positive(getattr(self, name), name)
        nonnegative(self.min_delta, "min_delta")
        if self.rho_init is not None:
            positive(self.rho_init, "rho_init")
        nonnegative(self.w_min, "w_min")
        if self.w_init <= self.w_min:
            raise ValueError(f"w_init: expected a value above w_min = {self.w_min}, got {self.w_init}")
        try:
            lo, hi = (float(v) for v in self.snr_range_db)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"snr_range_db: expected (lo, hi) in dB, got {self.snr_range_db!r}") from exc
        if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
            raise ValueError(f"snr_range_db: expected finite lo <= hi, got {self.snr_range_db!r}")
        object.__setattr__(self, "snr_range_db", (lo, hi))
        if self.loss not in LOSSES:
            raise ValueError(f"loss: expected one of {sorted(LOSSES)}, got {self.loss!r}")
        if not isinstance(self.learn_w, (bool, np.bool_)):
            raise ValueError(f"learn_w: expected True or False, got {self.learn_w!r}")
        if self.los_model is not None:
            Scenario(los_model=self.los_model)  # validates
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral) or self.seed < 0:
            raise ValueError(f"seed: expected a non-negative integer, got {self.seed!r}")
        positive(self.n_users, "n_users", integer=True)
        if self.n_users > 1 and self.loss in _SINGLE_USER_LOSSES:
            raise ValueError(
                f"loss: {self.loss!r} needs one user per sample, but n_users = {self.n_users}; use 'mce' or 'mce+paper'"
            )

    def as_dict(self) -> dict[str, Any]:
        d = plain(dataclasses.asdict(self))
        if d["n_users"] == 1:  # single-user records stay as they were before the field existed
            del d["n_users"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        if "snr_range_db" in kw:
            kw["snr_range_db"] = tuple(kw["snr_range_db"])
        return cls(**kw)


#: Training settings of the shipped variants (all: 10 layers, the paper's data sizes,
#: batch, learning rates and early stopping, SNR uniform in -10..20 dB, seed 0,
#: every layer initialised at rho = 1 and the P-ADMM steps tau1, tau2):
#:
#: ``"paper"``: loss (18) (sign corrected) with learnable w_m, the paper's method.
#: ``"supervised"``: ``"ce+paper"``, cross-entropy of the row-norm softmax
#: (temperature 0.02) against the true cell plus 10 x loss (18).
#: ``"multi2"``: the supervised recipe for snapshots of two users (issue 14): ``"mce+paper"``,
#: the multi-label cross-entropy (same temperature 0.02) against the two true cells plus
#: 10 x loss (18), trained on :class:`~daun_lib.daun.training.SuperposedUsers` data with
#: ``n_users = 2`` (both users at the drawn SNR).  Every other setting is the supervised one.
RECIPES: dict[str, TrainConfig] = {
    "paper": TrainConfig(),
    "supervised": TrainConfig(loss="ce+paper", residual_weight=10.0, temperature=0.02),
    "multi2": TrainConfig(loss="mce+paper", residual_weight=10.0, temperature=0.02, n_users=2),
}


def recipe(variant: str = "default", **overrides: Any) -> TrainConfig:
    """The :class:`TrainConfig` of a shipped variant, with ``overrides`` (e.g. ``n_layers=3``)."""
    name = DEFAULT_VARIANT if variant == "default" else variant
    if name not in RECIPES:
        raise ValueError(f"variant: expected 'default' or one of {sorted(RECIPES)}, got {variant!r}")
    try:
        return dataclasses.replace(RECIPES[name], **overrides)
    except TypeError as exc:
        raise ValueError(f"overrides: {exc}") from exc
