r"""Saving and loading DAUN networks: checkpoints, their content checks, shipped weights.

:func:`save` (:meth:`DAUN.save`) stores the state dict (the ``3 I + M`` numbers
and ``w_min``; the dictionaries are rebuilt from the scenario) with metadata:
the scenario fields, the layer count, the precision, the training settings, a
fingerprint of the data generator, the library version, the per-layer training
and validation curves, and a sketch of the dictionaries ``A``, ``B`` and of the
grid.  A SHA-256 digest of the tensors and of all that metadata is stored with
it (format version :data:`CHECKPOINT_VERSION`; the file layout, the digest and
the sketch: :mod:`daun_lib.daun.checkpoint_file`).

:func:`build` (:meth:`DAUN.load`) and :func:`load_weights`
(:meth:`DAUN.load_weights`) read the file with ``torch.load(...,
weights_only=True)`` (no code runs) and refuse, with a :class:`ValueError`
naming the file and the reason, before anything large is built:

* a file that is not a readable DAUN checkpoint, or larger than
  :data:`MAX_CHECKPOINT_BYTES`;
* a damaged file: the digest does not match;
* version-1 files (no digest): :func:`upgrade_checkpoint` converts one that
  you trust;
* contents no trained network has, which a crafted file could carry with a
  recomputed digest: other state keys, non-float or complex tensors, shapes
  other than ``(I,)`` and ``(M,)``, non-finite values, ``I`` above
  :data:`MAX_LAYERS`, dictionaries above :data:`MAX_DICTIONARY_ENTRIES`
  complex entries, ``rho`` or ``w`` outside :data:`PARAMETER_RANGE`, and steps
  beyond :data:`STEP_BOUND` times the convergence bound of the network's own
  operators (``tau1 max_m ||A_m||^2`` and ``tau2 max_m ||B_m||^2``, the
  linearisation bounds of (13) and (15));
* weights for another problem: sizes ``M, N, K, L``, any of
  the dictionary fields (:meth:`Scenario.dictionary_fields`: :data:`DICTIONARY_FIELDS`,
  ``geometry`` and, when either side is ``"3d"``, the heights) when both sides
  have a scenario, and the sketch of
  the dictionaries themselves (so weights saved from
  :meth:`DAUN.from_dictionaries`, or for moved BSs of the same sizes, are not
  taken for the default scenario's).

Shipped weights: :func:`load_pretrained` returns a 10-layer network for the
default :class:`Scenario` from a few-KB file in ``daun_lib/weights/``
(:data:`WEIGHTS_DIR`); see :data:`VARIANTS` and
:data:`daun_lib.daun.training.RECIPES`.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import _checks, admm
from .._devices import check_device
from ..scenario import Scenario
from .checkpoint_file import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    MIN_STEP_RATIO,
    SKETCH_METHOD,
    STATE_KEYS,
    STEP_BOUND,
    atomic_save,
    checkpoint_error,
    digest,
    grid_sketch,
    library_version,
    plain,
    read_checkpoint,
    same,
    scenario_fields,
    scenario_from_fields,
    sketch,
    sketch_difference,
)
from .network import DAUN

__all__ = [
    "save",
    "load",
    "load_weights",
    "build",
    "upgrade_checkpoint",
    "load_pretrained",
    "VARIANTS",
    "VARIANTS_3D",
    "VARIANTS_MULTIUSER",
    "DEFAULT_VARIANT",
    "WEIGHTS_DIR",
]

#: Folder of the shipped weight files (``daun_lib/weights/``, package data).
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"

#: Shipped weight files (trained for the default :class:`Scenario`), by variant name.
#: ``"default"`` is an alias of :data:`DEFAULT_VARIANT`.  The training settings
#: of each variant are :data:`daun_lib.daun.training.RECIPES`.
VARIANTS: dict[str, str] = {
    "paper": "daun_paper.pt",
    "supervised": "daun_supervised.pt",
}
#: The variant of ``load_pretrained()``: chosen on held-out selection data (not
#: the validation set used for early stopping, not the test set): it localises
#: as well as grid DPD at every SNR (the paper variant fails at the lowest SNR)
#: and still drives the residual NMSE down (README, section DAUN).
DEFAULT_VARIANT = "supervised"

#: Shipped weight files for ``Scenario(geometry="3d")`` (the default scenario with the TR 38.901
#: heights and height-aware dictionaries), by variant name: ``"supervised"`` was trained with
#: ``RECIPES["supervised"]`` on that scenario's 3-D channel (``load_pretrained(geometry="3d")``).
VARIANTS_3D: dict[str, str] = {
    "supervised": "daun_supervised_3d.pt",
}

#: Shipped weight files for snapshots of several users (issue 14), default :class:`Scenario`, by
#: variant name: ``"multi2"`` was trained with ``RECIPES["multi2"]`` (multi-label loss, two users per
#: snapshot).  Kept apart from :data:`VARIANTS`, whose single-user networks the notebooks loop over;
#: ``load_pretrained("multi2")`` finds it.
VARIANTS_MULTIUSER: dict[str, str] = {
    "multi2": "daun_multi2.pt",
}


# ---------------------------------------------------------------------------
# the checks that need the network's dictionaries
# ---------------------------------------------------------------------------
def _dictionary_record(net: DAUN) -> dict[str, Any]:
    """Sketch of ``A``, ``B`` and the grid stored in checkpoints (:mod:`daun_lib.daun.checkpoint_file`)."""

    def compute() -> dict[str, Any]:
        return {
            "method": SKETCH_METHOD,
            "A": sketch(net.A.detach().cpu().numpy(), 11),
            "B": sketch(net.B.detach().cpu().numpy(), 13),
            "grid": None if net.grid is None else grid_sketch(net.grid.detach().cpu().numpy()),
        }

    return net._cached("sketch", compute)


def _check_record(meta: dict[str, Any], shape: dict[str, int], scenario: Scenario | None, path: Any) -> None:
    """Sizes and (when both sides have a scenario) the dictionary fields; nothing is built."""
    stored = meta.get("shape") or {}
    for key, name in (("M", "n_bs (M)"), ("N", "n_antennas (N)"), ("K", "grid size (K)"), ("L", "n_angles (L)")):
        if stored.get(key) != shape[key]:
            raise checkpoint_error(
                path,
                f"holds weights for another scenario: {name} is {stored.get(key)} in the "
                f"checkpoint but {shape[key]} here",
            )
    if scenario is not None and meta.get("scenario") is not None:
        mine = scenario_fields(scenario)
        defaults = scenario_fields(Scenario())
        names = list(scenario.dictionary_fields())
        if meta["scenario"].get("geometry", defaults.get("geometry")) == "3d":
            names += [f for f in ("bs_height_m", "ut_height_m") if f not in names]
        for field in names:
            theirs = meta["scenario"].get(field, defaults.get(field))
            if not same(theirs, mine.get(field)):
                raise checkpoint_error(
                    path,
                    f"holds weights for another scenario: {field} is {theirs!r} in the "
                    f"checkpoint but {mine.get(field)!r} here",
                )


def _check_compatible(net: DAUN, meta: dict[str, Any], path: Any) -> None:
    """Sizes, dictionary fields and the dictionary sketch of ``meta`` against ``net``."""
    _check_record(meta, net.shape, net.scenario, path)
    record = meta.get("dictionaries")
    if record is None:  # version-1 files (upgrade_checkpoint only)
        return
    try:
        if record.get("method") != SKETCH_METHOD:
            raise checkpoint_error(path, f"has a dictionary sketch of an unknown kind ({record.get('method')!r})")
        mine = _dictionary_record(net)
        why = sketch_difference(record["A"], mine["A"], "the dictionary A", True) or sketch_difference(
            record["B"], mine["B"], "the dictionary B", True
        )
        if why is None and record.get("grid") is not None and mine["grid"] is not None:
            why = sketch_difference(record["grid"], mine["grid"], "the position grid", False)
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        raise checkpoint_error(path, f"has a damaged dictionary sketch ({type(exc).__name__}: {exc})") from exc
    if why is not None:
        raise checkpoint_error(path, f"holds weights for other dictionaries: {why}")


def _check_steps(net: DAUN, state: dict[str, torch.Tensor], path: Any) -> None:
    """Steps against the convergence bound of this network's operators (:data:`STEP_BOUND`)."""
    na, nb = net.operator_norms()
    for name, norm, op in (("tau1", na, "A"), ("tau2", nb, "B")):
        ratio = state[f"log_{name}"].detach().cpu().double().exp() * norm
        bad = ~((ratio >= MIN_STEP_RATIO) & (ratio <= STEP_BOUND))
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise checkpoint_error(
                path,
                f"holds {name}[{i}] = {float(ratio[i]) / norm:.3g}, i.e. {name} ||{op}||^2 = "
                f"{float(ratio[i]):.3g}: outside [{MIN_STEP_RATIO:g}, STEP_BOUND = {STEP_BOUND:g}] "
                f"(the linearised ADMM converges below 1; trained networks stay below 7.2)",
            )


def load_checked(net: DAUN, obj: dict[str, Any], path: Any) -> DAUN:
    """Copy the checked state of ``obj`` into ``net`` (after the checks that need its dictionaries)."""
    meta, state = obj["meta"], obj["state_dict"]
    _check_compatible(net, meta, path)
    _check_steps(net, state, path)
    with torch.no_grad():
        for name in ("log_rho", "log_tau1", "log_tau2"):
            setattr(net, name, nn.Parameter(state[name].to(dtype=net.A.real.dtype, device=net.device).clone()))
        net.log_w.copy_(state["log_w"])
        net.w_min.copy_(state["w_min"])
        for name in STATE_KEYS:  # e.g. a float64 value beyond the float32 range
            if not torch.isfinite(getattr(net, name)).all():
                raise checkpoint_error(path, f"holds {name} values that are not finite in {net.dtype_name}")
    net.history = list(meta.get("history") or [])
    net.meta = {
        k: v
        for k, v in meta.items()
        if k in ("train_config", "variant", "notes", "train_device", "train_seconds", "generator")
    }
    return net


# ---------------------------------------------------------------------------
# save and load
# ---------------------------------------------------------------------------
def _record(net: DAUN) -> dict[str, Any]:
    """The ``meta`` record of a checkpoint of ``net`` (plain values only)."""
    meta = dict(net.meta)
    meta.update(
        {
            "n_layers": net.n_layers,
            "n_bs": net.n_bs,
            "shape": net.shape,
            "scenario": scenario_fields(net.scenario) if net.scenario is not None else None,
            "dtype": net.dtype_name,
            "w_min": float(net.w_min),
            "normalize": True,
            "history": plain(net.history),
            "library_version": library_version(),
            "python_version": platform.python_version(),
            "parameters": {k: v.tolist() for k, v in net.parameters_dict().items()},
            "dictionaries": _dictionary_record(net),
        }
    )
    return meta


def save(net: DAUN, path: str | os.PathLike, **extra_meta: Any) -> Path:
    """Write the checkpoint (state dict + metadata + digest) atomically; returns the path.

    ``extra_meta`` (plain Python values: numbers, strings, lists, dicts) is
    stored under ``meta``; it may not replace the keys this function writes.
    """
    if not isinstance(net, DAUN):
        raise ValueError(f"net: expected a DAUN, got {type(net).__name__}")
    meta = _record(net)
    reserved = sorted(set(extra_meta) & (set(meta) - set(net.meta)))
    if reserved:
        raise ValueError(f"extra_meta: {reserved} are written by save itself and cannot be given")
    meta.update(plain(extra_meta))
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    obj = {"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION, "meta": meta, "state_dict": state}
    obj["digest"] = digest(obj)
    return atomic_save(obj, path)


def _network_for(
    cls: type[DAUN],
    n_layers: int,
    *,
    scenario: Scenario | None = None,
    A: Any = None,
    B: Any = None,
    grid: Any = None,
    device: Any = None,
    dtype: str = "float32",
) -> DAUN:
    """A network whose parameters a checkpoint will overwrite.

    Built with placeholder parameters (so the spectral norms of
    :func:`daun_lib.admm.default_params` are not computed); layers appended
    later still start at :func:`daun_lib.admm.default_params`.
    """
    M = scenario.n_bs if scenario is not None else len(A)
    placeholder = admm.ADMMParams(1.0, 1.0, 1.0, tuple([1.0] * M))
    net = cls(n_layers, scenario=scenario, A=A, B=B, grid=grid, device=device, dtype=dtype, init=placeholder)
    net._init_params = None
    return net


def load_weights(net: DAUN, path: str | os.PathLike) -> DAUN:
    """Load a checkpoint into ``net`` (layer count adapted): :meth:`DAUN.load_weights`; returns ``net``.

    Raises ValueError when the file is damaged or crafted, is no DAUN
    checkpoint, or was trained for other dictionaries (the message names
    what differs); see the module docstring.
    """
    if not isinstance(net, DAUN):
        raise ValueError(f"net: expected a DAUN, got {type(net).__name__}")
    return load_checked(net, read_checkpoint(path), path)


def build(
    cls: type[DAUN],
    path: str | os.PathLike,
    *,
    scenario: Scenario | None = None,
    device: Any = None,
    dtype: str = "float32",
) -> DAUN:
    """A network of class ``cls`` (DAUN or a subclass) from a checkpoint: :meth:`DAUN.load`.

    Parameters
    ----------
    cls : DAUN or a subclass
    path : checkpoint written by :func:`save` or :func:`daun_lib.daun.train`
    scenario : Scenario, optional
        The scenario to use the weights in (default: the one stored in the
        checkpoint).  A scenario with other dictionaries (M, N, K, L, geometry)
        raises ValueError naming the field that differs.
    device, dtype : see :class:`DAUN`

    Everything the file declares is checked before the dictionaries are
    built (module docstring).
    """
    if not (isinstance(cls, type) and issubclass(cls, DAUN)):
        raise ValueError(f"cls: expected DAUN or a subclass, got {cls!r}")
    device = check_device(device, "device")
    admm.resolve_dtype(dtype)
    if scenario is not None:
        _checks.check_scenario(scenario)
    obj = read_checkpoint(path)
    meta = obj["meta"]
    if scenario is None:
        if meta.get("scenario") is None:
            raise checkpoint_error(
                path, "was saved from user dictionaries; use DAUN.from_dictionaries(A, B, n_layers).load_weights(path)"
            )
        try:
            scenario = scenario_from_fields(meta["scenario"])
        except (TypeError, ValueError) as exc:
            raise checkpoint_error(path, f"has a damaged scenario record ({exc})") from exc
    shape = {"M": scenario.n_bs, "N": scenario.n_antennas, "K": scenario.n_grid, "L": scenario.n_angles}
    _check_record(meta, shape, scenario, path)
    net = _network_for(cls, int(meta["n_layers"]), scenario=scenario, device=device, dtype=dtype)
    return load_checked(net, obj, path)


def load(path: str | os.PathLike, **kwargs: Any) -> DAUN:
    """Alias of :meth:`DAUN.load`."""
    return DAUN.load(path, **kwargs)


def upgrade_checkpoint(
    path: str | os.PathLike, new_path: str | os.PathLike, *, A: Any = None, B: Any = None, grid: Any = None
) -> Path:
    """Convert a version-1 checkpoint (no digest) that you trust to the current format.

    The tensors are copied unchanged; the file gets the full scenario record,
    the dictionary sketch and the digest.  Every content check of
    :meth:`DAUN.load` except the digest (which version 1 lacks) runs first.

    Parameters
    ----------
    path : the version-1 file
    new_path : where to write the converted file (atomically)
    A, B, grid : optional
        The dictionaries (and grid) of a file saved from
        :meth:`DAUN.from_dictionaries` (it stores no scenario).

    Returns
    -------
    Path of the new file.
    """
    obj = read_checkpoint(path, allow_v1=True)
    meta, state = dict(obj["meta"]), obj["state_dict"]
    n_layers, dtype = int(meta["n_layers"]), meta.get("dtype", "float32")
    if meta.get("scenario") is not None:
        if A is not None or B is not None:
            raise ValueError("A, B: this checkpoint stores its scenario; do not pass dictionaries")
        try:
            scenario = scenario_from_fields(meta["scenario"])
        except (TypeError, ValueError) as exc:
            raise checkpoint_error(path, f"has a damaged scenario record ({exc})") from exc
        net = _network_for(DAUN, n_layers, scenario=scenario, dtype=dtype)
        meta["scenario"] = scenario_fields(scenario)
    else:
        if A is None or B is None:
            raise ValueError("A, B: this checkpoint was saved from user dictionaries; pass them as A=..., B=...")
        net = DAUN.from_dictionaries(A, B, n_layers, grid=grid, dtype=dtype)
    _check_compatible(net, meta, path)
    _check_steps(net, state, path)
    meta["dtype"] = dtype
    meta["dictionaries"] = _dictionary_record(net)
    meta["upgraded_from"] = {"format_version": int(obj["format_version"]), "by": library_version()}
    new = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "meta": plain(meta),
        "state_dict": {k: state[k] for k in STATE_KEYS},
    }
    new["digest"] = digest(new)
    return atomic_save(new, new_path)


# ---------------------------------------------------------------------------
# shipped weights
# ---------------------------------------------------------------------------
def load_pretrained(
    variant: str = "default", *, geometry: str = "2d", device: Any = None, dtype: str = "float32"
) -> DAUN:
    """A DAUN trained for the default :class:`Scenario`, from weights shipped in the package.

    Parameters
    ----------
    variant : str
        ``"default"`` (the best variant measured on held-out data) or a key of
        :data:`VARIANTS` (``"paper"``: the faithful loss-(18) network) or of
        :data:`VARIANTS_MULTIUSER` (``"multi2"``: trained on two-user snapshots);
        with ``geometry="3d"`` a key of :data:`VARIANTS_3D`.
    geometry : "2d" (default) or "3d"
        The scenario the weights are for: ``Scenario()`` or ``Scenario(geometry="3d")``.
    device, dtype : see :class:`DAUN`

    No training and no network access are needed.
    """
    device = check_device(device, "device")
    if geometry not in ("2d", "3d"):
        raise ValueError(f"geometry: expected '2d' or '3d', got {geometry!r}")
    table = {**VARIANTS, **VARIANTS_MULTIUSER} if geometry == "2d" else VARIANTS_3D
    name = DEFAULT_VARIANT if variant == "default" else variant
    if name not in table:
        raise ValueError(
            f"variant: expected 'default' or one of {sorted(table)} for geometry={geometry!r}, got {variant!r}"
        )
    path = WEIGHTS_DIR / table[name]
    if not path.is_file():
        raise ValueError(f"variant: the weights file of {name!r} is missing from the package ({path})")
    return DAUN.load(path, scenario=Scenario(geometry=geometry), device=device, dtype=dtype)
