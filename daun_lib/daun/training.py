r"""Incremental training of DAUN (Sec. IV) and the cached/shipped/trained choice of the notebooks.

:func:`train` follows Sec. IV: incremental training (layer ``i + 1`` is appended,
initialised at the P-ADMM steps of :func:`daun_lib.admm.default_params`, and the
whole network is retrained starting from the trained layers ``1..i``), 700 fresh
samples per new layer, batch 7, Adam with lr 0.05 (0.01 once the network has
more than 5 layers), 200 validation samples (drawn once), early stopping when
the validation loss stops decreasing (the best parameters are kept), SNR drawn
uniformly from ``snr_range_db``.  The loss is a choice from
:data:`daun_lib.daun.losses.LOSSES` (settings: :class:`TrainConfig`).

Every random quantity derives from ``TrainConfig.seed``: the same seed gives the
same network.  After every completed layer a checkpoint is written atomically
(temp file + ``os.replace``); ``train(..., resume=True)`` continues from it
after checking that everything that decides the result is unchanged.
New layers start at ``rho = TrainConfig.rho_init`` (1) and the P-ADMM steps
``tau1, tau2`` of :func:`daun_lib.admm.default_params`.

Shapes: training signals are kept batch-last and RMS-normalised, ``yt``
(M, N, n); SNRs (n,), positions (n, 2) in metres, nearest grid cells (n,).

Several users per snapshot (issue 14): a generator whose ``positions`` are
(n, U, 2) gives cells (n, U) (:meth:`Scenario.nearest_grid` per user) and, when
its ``snr_db`` is (n, U), the per-sample SNR of loss (18)'s weight is the mean
of the users' SNRs in dB.  :class:`SuperposedUsers` is such a generator, built
from single-user batches; ``TrainConfig.n_users >= 2`` selects it by default.
With one user (positions (n, 2)) nothing changes.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import platform
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from .. import _checks, _validation, admm
from .._devices import check_device
from .._fingerprint import fingerprint
from ..channel.signals import ChannelBatch
from ..scenario import Scenario
from .checkpoint_file import read_checkpoint, same, scenario_fields
from .checkpoints import load_checked, load_pretrained
from .config import RECIPES, TrainConfig
from .losses import LOSSES, TrainingBatch
from .network import DAUN

__all__ = ["train", "load_or_train", "SuperposedUsers"]


def _seed_int(*keys: int) -> int:
    """A 32-bit seed derived deterministically from integer keys."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0])


@dataclass(frozen=True)
class SuperposedUsers:
    """Data generator of ``U`` users per snapshot, superposed at every BS (model (1) summed over users).

    ``SuperposedUsers(U)(scenario, n, snr_db, seed)`` draws ``U`` independent
    single-user batches with :func:`daun_lib.channel.simulate`: user 1 with
    ``seed`` itself (its ``y`` carries the only noise draw, ``CN(0, I)``),
    user ``u >= 2`` with a 32-bit seed from ``SeedSequence([seed, u])``, and returns
    ``y = y_1 + sum_{u >= 2} sqrt(omega) h_u`` (every user at the given
    per-antenna SNR ``omega = 10^(snr_db / 10)``, independent and uniform in the
    area, no minimum separation).  Library code, so its fingerprint (recorded
    by :func:`train` and checked on resume) is its class and ``n_users``.

    Parameters
    ----------
    n_users : int
        ``U >= 1`` (1 returns the single-user batch unchanged).

    Returns (of a call)
    -------------------
    a multi-user :class:`daun_lib.channel.ChannelBatch` (``U >= 2``): y (n, M, N), positions (n, U, 2),
    los (n, U, M), snr_db (n, U), h (n, U, M, N), ut_heights (n, U).
    """

    n_users: int = 2

    def __post_init__(self) -> None:
        _validation.positive(self.n_users, "n_users", integer=True)

    def __call__(self, scenario: Scenario, n: int, snr_db: Any, seed: Any = None) -> Any:
        from ..channel import simulate

        if isinstance(seed, np.random.Generator):
            seed = int(seed.integers(2**31 - 1))
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"seed: expected None, a non-negative integer or a numpy Generator, got {seed!r}")
        first = simulate(scenario, n, snr_db, seed=seed)
        if self.n_users == 1:
            return first
        base = int(np.random.SeedSequence(seed).entropy) if seed is None else int(seed)
        batches = [first] + [simulate(scenario, n, snr_db, seed=_seed_int(base, u)) for u in range(2, self.n_users + 1)]
        y = first.y.copy()
        for b in batches[1:]:
            y += np.sqrt(10.0 ** (b.snr_db / 10.0))[:, None, None] * b.h
        heights = None if any(b.ut_heights is None for b in batches) else np.stack([b.ut_heights for b in batches], 1)
        return ChannelBatch(
            y,
            np.stack([b.positions for b in batches], 1),
            np.stack([b.los for b in batches], 1),
            np.stack([b.snr_db for b in batches], 1),
            np.stack([b.h for b in batches], 1),
            heights,
        )


#: Config fields that may differ between a checkpoint and a resumed training.
_RESUMABLE_FIELDS = ("n_layers", "max_epochs")


class _Data(NamedTuple):
    yt: torch.Tensor  # (M, N, n) normalised
    snr_db: torch.Tensor  # (n,)
    positions: torch.Tensor  # (n, 2), or (n, U, 2) with several users
    cell: torch.Tensor  # (n,), or (n, U)


def _draw(
    simulate: Callable[..., Any], scenario: Scenario, n: int, config: TrainConfig, key: tuple[int, ...], net: DAUN
) -> _Data:
    rng = np.random.default_rng(_seed_int(config.seed, *key))
    lo, hi = config.snr_range_db
    snr = rng.uniform(lo, hi, n) if hi > lo else np.full(n, lo)
    batch = simulate(scenario, n, snr, seed=int(rng.integers(2**31 - 1)))
    y = np.asarray(batch.y)
    if y.shape != (n, net.shape["M"], net.shape["N"]) or not np.isfinite(y).all():
        raise ValueError(f"simulate: returned y of shape {y.shape} (or non-finite values)")
    pos = np.asarray(batch.positions, dtype=float)
    snr_db = np.asarray(batch.snr_db, dtype=float)
    if pos.ndim == 3:  # several users per snapshot: one cell per user
        if pos.shape[0] != n or pos.shape[2] != 2 or pos.shape[1] < 1:
            raise ValueError(f"simulate: returned positions of shape {pos.shape}, expected (n, 2) or (n, U, 2)")
        cell = scenario.nearest_grid(pos.reshape(-1, 2)).reshape(n, pos.shape[1])
        if snr_db.ndim == 2:
            snr_db = snr_db.mean(axis=1)
    else:
        cell = scenario.nearest_grid(pos)
    if config.n_users != (pos.shape[1] if pos.ndim == 3 else 1):
        raise ValueError(
            f"simulate: returned {pos.shape[1] if pos.ndim == 3 else 1} user(s) per sample, "
            f"config.n_users = {config.n_users}"
        )
    yt, _ = admm.prepare_y(y, net.A.dtype, net.device, True)
    rd = net.A.real.dtype
    return _Data(
        yt,
        torch.as_tensor(snr_db, dtype=rd, device=net.device),
        torch.as_tensor(pos, dtype=rd, device=net.device),
        torch.as_tensor(cell, dtype=torch.long, device=net.device),
    )


def _loss_on(net: DAUN, loss_fn: Callable, config: TrainConfig, data: _Data, idx: Any = None) -> torch.Tensor:
    if idx is None:
        yt, snr, pos, cell = data
    else:
        yt, snr, pos, cell = data.yt[..., idx], data.snr_db[idx], data.positions[idx], data.cell[idx]
    return loss_fn(net, TrainingBatch(yt, net.run(yt), snr, pos, cell), config)


def _val_loss(net: DAUN, loss_fn: Callable, config: TrainConfig, data: _Data, chunk: int = 100) -> float:
    n = data.yt.shape[-1]
    total = 0.0
    with torch.no_grad():
        for lo in range(0, n, chunk):
            idx = torch.arange(lo, min(n, lo + chunk), device=net.device)
            total += float(_loss_on(net, loss_fn, config, data, idx)) * len(idx)
    return total / n


def _train_stage(
    net: DAUN, loss_fn: Callable, config: TrainConfig, train_data: _Data, val_data: _Data, layer: int, bar: Any
) -> dict[str, Any]:
    """Train the whole ``layer``-layer network on one stage's data; keeps the best validation state."""
    t0 = time.perf_counter()
    lr = config.lr_late if layer > config.late_after else config.lr
    params = [net.log_rho, net.log_tau1, net.log_tau2] + ([net.log_w] if config.learn_w else [])
    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(_seed_int(config.seed, 2, layer))
    best = _val_loss(net, loss_fn, config, val_data)
    best_state = copy.deepcopy(net.state_dict())
    val_curve, train_curve = [best], []
    best_epoch, bad, stopped = 0, 0, "max_epochs"
    n = train_data.yt.shape[-1]
    for epoch in range(1, config.max_epochs + 1):
        perm = torch.randperm(n, generator=gen).to(net.device)
        total, count, diverged = 0.0, 0, False
        for lo in range(0, n, config.batch_size):
            idx = perm[lo : lo + config.batch_size]
            loss = _loss_on(net, loss_fn, config, train_data, idx)
            if not torch.isfinite(loss):
                diverged = True
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        train_curve.append(total / max(count, 1))
        v = _val_loss(net, loss_fn, config, val_data) if not diverged else float("inf")
        if not np.isfinite(v):
            val_curve.append(float("nan"))
            stopped = "diverged"
            break
        val_curve.append(v)
        if bar is not None:
            bar.set_postfix_str(f"layer {layer}/{config.n_layers} epoch {epoch} val {v:.4g}")
        if v < best - config.min_delta * abs(best):
            best, best_epoch, bad = v, epoch, 0
            best_state = copy.deepcopy(net.state_dict())
        else:
            bad += 1
            if bad >= config.patience:
                stopped = "early_stopping"
                break
    net.load_state_dict(best_state)
    return {
        "layer": layer,
        "lr": lr,
        "train": train_curve,
        "val": val_curve,
        "epochs": len(train_curve),
        "best_epoch": best_epoch,
        "best_val": best,
        "stopped": stopped,
        "seconds": time.perf_counter() - t0,
        "n_samples": n,
    }


def _check_resumable(
    meta: dict[str, Any], path: Any, config: TrainConfig, scenario: Scenario, dtype: str, generator: str | None
) -> None:
    """Refuse to resume from a checkpoint made with anything that changes the result."""
    where = f"checkpoint: {str(path)!r} was trained with"
    again = "(pass resume=False to start over)"
    old_scenario = meta.get("scenario")
    if old_scenario is None:
        raise ValueError(f"{where} user dictionaries, not a scenario {again}")
    mine, defaults = scenario_fields(scenario), scenario_fields(Scenario())
    for field, val in mine.items():
        theirs = old_scenario.get(field, defaults.get(field))
        if not same(theirs, val):
            raise ValueError(f"{where} scenario {field} = {theirs!r}, this training has {val!r} {again}")
    if meta.get("dtype") != dtype:
        raise ValueError(f"{where} dtype = {meta.get('dtype')!r}, this training has {dtype!r} {again}")
    old_cfg = TrainConfig().as_dict()  # fields missing from an older checkpoint take their defaults
    old_cfg.update(meta.get("train_config") or {})
    for field, val in config.as_dict().items():
        if field in _RESUMABLE_FIELDS:
            continue
        if not same(old_cfg.get(field), val):
            raise ValueError(f"{where} {field} = {old_cfg.get(field)!r}, the config asks for {val!r} {again}")
    old_users = (meta.get("train_config") or {}).get("n_users", 1)
    if old_users != config.n_users:
        raise ValueError(f"{where} n_users = {old_users!r}, the config asks for {config.n_users!r} {again}")
    if meta.get("generator") != generator:
        made = meta.get("python_version")
        note = (
            f"; the fingerprint depends on the Python version: the checkpoint was made with Python {made}, "
            f"this is {platform.python_version()}"
            if made and made != platform.python_version()
            else ""
        )
        raise ValueError(
            f"{where} another data generator: the fingerprint of simulate differs "
            f"({str(meta.get('generator'))[:12]} vs {str(generator)[:12]}){note} {again}"
        )


def _check_flag(value: Any, name: str) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}: expected True or False, got {value!r}")


def _check_path(value: Any, name: str) -> Any:
    if not isinstance(value, (str, os.PathLike)):
        raise ValueError(f"{name}: expected a path (str or os.PathLike), got {type(value).__name__}")
    return value


def train(
    config: TrainConfig | None = None,
    scenario: Scenario | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = True,
    *,
    device: Any = None,
    dtype: str = "float32",
    progress: bool = True,
    simulate: Callable[..., Any] | None = None,
) -> DAUN:
    """Incremental training of DAUN (Sec. IV).

    Parameters
    ----------
    config : TrainConfig
        Settings (default: the paper's, loss (18)).
    scenario : Scenario
        Geometry and dictionaries (default: the paper's).  ``config.los_model``
        overrides its LoS model for the training channels.
    checkpoint : path, optional
        Written (atomically) after every completed layer.
    resume : bool
        Continue from ``checkpoint`` when it exists.  Everything that decides
        the result must match, else ValueError naming the difference: every
        scenario field (geometry, LoS model, carrier, heights), the precision
        ``dtype``, the settings (only ``n_layers`` and ``max_epochs`` may
        differ) and the data generator ``simulate`` (its fingerprint, see
        :func:`daun_lib._fingerprint.fingerprint`; it depends on the Python
        version).  With ``resume=False`` an existing checkpoint is overwritten.
    device, dtype : see :class:`DAUN`
    progress : bool
        Show a tqdm progress bar (layer, epoch, validation loss).
    simulate : callable, optional
        ``simulate(scenario, n, snr_db, seed)`` returning an object with ``y``
        (n, M, N), ``positions`` (n, 2) and ``snr_db`` (n,) (default
        :func:`daun_lib.channel.simulate`); with ``config.n_users = U >= 2``
        positions (n, U, 2) and ``snr_db`` (n,) or (n, U) (default
        :class:`SuperposedUsers` ``(U)``).

    Returns
    -------
    DAUN
        The trained network; ``net.history`` holds the per-layer curves.
    """
    device = check_device(device, "device")
    admm.resolve_dtype(dtype)
    _check_flag(resume, "resume")
    _check_flag(progress, "progress")
    if checkpoint is not None:
        _check_path(checkpoint, "checkpoint")
    config = config if config is not None else TrainConfig()
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config: expected a TrainConfig, got {type(config).__name__}")
    scenario = scenario if scenario is not None else Scenario()
    _checks.check_scenario(scenario)
    if simulate is None and config.n_users > 1:
        simulate = SuperposedUsers(config.n_users)
    elif simulate is None:
        from ..channel import simulate as _sim

        simulate = _sim
    if not callable(simulate):
        raise ValueError(f"simulate: expected a callable, got {type(simulate).__name__}")
    generator = None
    if checkpoint is not None:  # recorded so that a resumed training can check it draws the same data
        try:
            generator = fingerprint(simulate, name="simulate")
        except ValueError as exc:
            raise ValueError(
                f"simulate: cannot be fingerprinted, so a resumed training could not check that it draws the same "
                f"data ({exc}); give it a string attribute `cache_key` naming its version, or pass "
                f"checkpoint=None"
            ) from exc
    train_scenario = scenario if config.los_model is None else dataclasses.replace(scenario, los_model=config.los_model)
    loss_fn = LOSSES[config.loss]
    A, B = scenario.dictionaries()
    init = admm.default_params(A, B, w=config.w_init)
    if config.rho_init is not None:
        init = dataclasses.replace(init, rho=float(config.rho_init))
    net = DAUN(1, scenario=scenario, device=device, dtype=dtype, w_min=config.w_min, init=init)
    done = 0
    if checkpoint is not None and resume and Path(checkpoint).exists():
        obj = read_checkpoint(checkpoint)
        _check_resumable(obj["meta"], checkpoint, config, scenario, net.dtype_name, generator)
        load_checked(net, obj, checkpoint)
        done = net.n_layers
        if done > config.n_layers:
            net.truncate(config.n_layers)
            net.history = net.history[: config.n_layers]
            done = config.n_layers
    else:
        net.history = []
    if generator is not None:
        net.meta["generator"] = generator
    net.meta["train_config"] = config.as_dict()
    val_data = _draw(simulate, train_scenario, config.n_val, config, (1,), net)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.n_layers, initial=done, desc="DAUN layers", unit="layer")
    try:
        for layer in range(done + 1, config.n_layers + 1):
            if net.n_layers < layer:
                net.append_layer(init)
            train_data = _draw(simulate, train_scenario, config.samples_per_layer, config, (0, layer), net)
            record = _train_stage(net, loss_fn, config, train_data, val_data, layer, bar)
            net.history.append(record)
            net.meta["train_seconds"] = float(sum(h["seconds"] for h in net.history))
            net.meta["train_device"] = str(net.device)
            if checkpoint is not None:
                net.save(checkpoint)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return net


def load_or_train(
    config: TrainConfig, checkpoint: str | os.PathLike, *, force: bool = False, progress: bool = True
) -> tuple[DAUN, str]:
    """The network of ``config`` for the default :class:`Scenario`: cached, shipped or trained now.

    In this order: a complete checkpoint at ``checkpoint`` (made with the same
    settings, scenario, dtype and data generator, and with the config's
    ``n_layers``); the shipped weights when ``config`` is exactly a
    shipped recipe (:data:`RECIPES`); else :func:`train`, resuming a partial
    checkpoint.  A checkpoint that fails the checks of :meth:`DAUN.load`
    (damaged, crafted, another format or scenario) or was made with other
    settings is never used: a ``UserWarning`` names it and the reason, and
    training starts over, overwriting it.  ``force=True`` ignores cache and shipped weights.

    Returns
    -------
    (DAUN, str)
        The network and where it came from (for the notebook's log).
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config: expected a TrainConfig, got {type(config).__name__}")
    _check_flag(force, "force")
    _check_flag(progress, "progress")
    checkpoint = Path(_check_path(checkpoint, "checkpoint"))
    resume = not force
    if checkpoint.exists() and not force:
        try:
            cached = DAUN.load(checkpoint, scenario=Scenario())
            from ..channel import simulate

            generator = SuperposedUsers(config.n_users) if config.n_users > 1 else simulate
            _check_resumable(
                read_checkpoint(checkpoint)["meta"],
                checkpoint,
                config,
                Scenario(),
                cached.dtype_name,
                fingerprint(generator, name="simulate"),
            )
        except ValueError as exc:
            warnings.warn(
                f"checkpoint {str(checkpoint)!r} is not used and will be overwritten: {exc}", UserWarning, stacklevel=2
            )
            cached, resume = None, False
        if cached is not None and cached.n_layers == config.n_layers:
            return cached, f"cached checkpoint {checkpoint}"
    shipped = [name for name, rec in RECIPES.items() if rec == config]
    if shipped and not force:
        return load_pretrained(shipped[0]), f"shipped weights ({shipped[0]})"
    net = train(config, Scenario(), checkpoint=checkpoint, resume=resume, progress=progress)
    return net, f"trained now, checkpoint {checkpoint}"
