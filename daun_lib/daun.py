r"""DAUN: the deep ADMM unfolding network of Sec. III-B, its training (Sec. IV) and shipped weights.

The network
-----------
:class:`DAUN` is exactly ``I`` unrolled iterations of :func:`daun_lib.admm.solve`
(the same :func:`daun_lib.admm.admm_layer`, the same per-sample RMS
normalisation of ``y``), with untied per-layer ``rho^(i), tau1^(i), tau2^(i)``
and per-BS weights ``w_m`` shared by all layers: ``3 I + M`` trainable numbers.
All of them are kept positive by a log parameterisation (``rho = exp(log_rho)``;
``w_m = w_min + exp(log_w_m)`` with an optional lower bound ``w_min``, 0 by
default).  The model is complex-valued (torch complex autograd): the paper's
"real equivalent form" would change the complex l1 and l2,1 norms.  With every
parameter set to a P-ADMM setting the network reproduces ``admm.solve`` with
that setting (tested in float64 to 1e-10).

Training
--------
:func:`train` follows Sec. IV: incremental training (layer ``i + 1`` is appended,
initialised at the P-ADMM steps of :func:`daun_lib.admm.default_params`, and the
whole network is retrained starting from the trained layers ``1..i``), 700 fresh
samples per new layer, batch 7, Adam with lr 0.05 (0.01 once the network has
more than 5 layers), 200 validation samples (drawn once), early stopping when
the validation loss stops decreasing (the best parameters are kept), SNR drawn
uniformly from ``snr_range_db``.  The loss is a choice from :data:`LOSSES`:

``"paper"``
    The SNR-weighted loss (18) with its sign slip corrected,
    ``(1 + sigmoid(-snr_dB)) ||y - A x - B z||^2``, evaluated on the
    RMS-normalised ``y`` that the network sees (so it is a per-sample NMSE and
    every SNR is on one scale).  Measured on the shipped variant, this loss
    does not reward localisation: training drives ``w_m`` and ``tau1`` towards zero,
    ``B z`` absorbs ``y`` and DAUN's position estimate becomes grid DPD's.
``"ce"``
    Supervised: cross-entropy of a softmax over the row norms of ``X`` (scaled
    by their maximum and divided by ``temperature``) against the grid cell
    nearest to the true position.
``"softargmax"``
    Supervised: squared error (m^2) of the soft-argmax position
    ``sum_k softmax_k Phi_k`` with the same logits.

Every random quantity derives from ``TrainConfig.seed``: the same seed gives the
same network.  After every completed layer a checkpoint is written atomically
(temp file + ``os.replace``); ``train(..., resume=True)`` continues from it.
New layers start at ``rho = TrainConfig.rho_init`` (1) and the P-ADMM steps
``tau1, tau2`` of :func:`daun_lib.admm.default_params`.

Checkpoints
-----------
:meth:`DAUN.save` stores the state dict (the ``3 I + M`` numbers and ``w_min``;
the dictionaries are rebuilt from the scenario) with metadata: the scenario
fields, the layer count, the precision, the training settings, a fingerprint
of the data generator, the library version, the per-layer training and
validation curves, and a sketch of the dictionaries ``A``, ``B`` and of the
grid (see below).  A SHA-256 digest of the tensors (name, dtype, shape, bytes)
and of all that metadata is stored with it (format version
:data:`CHECKPOINT_VERSION` = 2).

:meth:`DAUN.load` and :meth:`DAUN.load_weights` read the file with
``torch.load(..., weights_only=True)`` (no code runs) and refuse, with a
:class:`ValueError` naming the file and the reason, before anything large is
built:

* a file that is not a readable DAUN checkpoint, or larger than
  :data:`MAX_CHECKPOINT_BYTES`;
* a damaged file: the digest does not match (``torch.load`` does not check the
  zip CRCs, so a flipped bit would otherwise load as a different network);
* version-1 files (no digest): :func:`upgrade_checkpoint` converts one that
  you trust;
* contents no trained network has, which a crafted file could carry with a
  recomputed digest: other state keys, non-float or complex tensors, shapes
  other than ``(I,)`` and ``(M,)``, non-finite values, ``I`` above
  :data:`MAX_LAYERS`, dictionaries above :data:`MAX_DICTIONARY_ENTRIES`
  complex entries, ``rho`` or ``w`` outside :data:`PARAMETER_RANGE`, and steps
  beyond :data:`STEP_BOUND` times the convergence bound of the network's own
  operators (``tau1 max_m ||A_m||^2`` and ``tau2 max_m ||B_m||^2``);
* weights for another problem: sizes ``M, N, K, L``, any of
  :data:`DICTIONARY_FIELDS` when both sides have a scenario, and the sketch of
  the dictionaries themselves (so weights saved from
  :meth:`DAUN.from_dictionaries`, or for moved BSs of the same sizes, are not
  taken for the default scenario's).

The dictionary sketch is ``U^H A_m V`` (and the same for ``B_m``) with fixed
unit-modulus pseudo-random probes ``U`` (N, 4) and ``V`` (K, 4) plus the
Frobenius norm of every ``A_m``: a difference ``D`` in ``A_m`` changes it by
about ``||D||_F`` (relative tolerance :data:`SKETCH_TOLERANCE`, far above the
float32/float64 round-off, far below any change of geometry that matters).

Shipped weights
---------------
:func:`load_pretrained` returns a network for the default :class:`Scenario`
from a few-KB file in ``daun_lib/weights/``; see :data:`VARIANTS` and
:data:`RECIPES`.  Both shipped variants have 10 layers.

``"paper"`` (loss (18), learnable w_m) learns w_m ~ 0.0025 and tau1 ~ 1e-4..3e-3
after the first layer: ``B z`` absorbs ``y`` (NMSE 3e-6 after 10 layers).  On
held-out users its estimates equal grid DPD's from 0 dB up, but at -10 dB
P(error < 1 m) falls to 0.09 (DPD 0.50).  ``"supervised"`` (the default:
cross-entropy on the row norms of X + 10 x (18)) matches grid DPD at every SNR
(-10 dB: 0.49 vs 0.50; 0 to 20 dB: equal) and keeps a small residual (NMSE 1e-4
after 10 layers), so it fixes P-ADMM's low-SNR failure (converged P-ADMM: 0.22
at -10 dB) but does not beat DPD: no variant tried did (see the README, section
DAUN; the sub-grid readout of ``methods.REGISTRY['DAUN-S']`` is a separate gain).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import json
import math
import numbers
import os
import platform
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np
import torch
from torch import nn

from . import admm
from ._validation import as_array, is_tensor, nonnegative, positive
from .refine import argmax_rows
from .refine import refine as refine_rows
from ._devices import check_device
from ._fingerprint import fingerprint
from ._io import atomic_write_bytes
from .scenario import DICTIONARY_FIELDS as _SCENARIO_DICTIONARY_FIELDS
from .scenario import Scenario

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
]

#: Identifies a DAUN checkpoint file.
CHECKPOINT_FORMAT = "daun_lib.daun"
#: Version of the checkpoint layout (2: with an integrity digest and a
#: dictionary sketch; version-1 files are refused, see :func:`upgrade_checkpoint`).
CHECKPOINT_VERSION = 2

#: Scenario fields that define the dictionaries ``A`` and ``B`` (from
#: :mod:`daun_lib.scenario`): weights trained for a scenario that differs in one
#: of these are refused by :meth:`DAUN.load`.  (The LoS model, carrier and
#: heights only change the channel statistics.)
DICTIONARY_FIELDS = _SCENARIO_DICTIONARY_FIELDS

#: Largest layer count a checkpoint may declare (the shipped networks have 10).
MAX_LAYERS = 10_000
#: Largest dictionary size ``M N (K + L)`` (complex entries) built for a
#: checkpoint: 5e7 entries are 400 MB in complex64 (the paper's problem: 2e5).
MAX_DICTIONARY_ENTRIES = 50_000_000
#: Largest number of BSs a checkpoint may declare.
MAX_BS = 1024
#: Largest checkpoint file read (a 10-layer checkpoint is about 8 KB).
MAX_CHECKPOINT_BYTES = 256 * 2**20
#: A checkpoint's steps must satisfy ``tau1 max_m ||A_m||^2 <= STEP_BOUND`` and
#: ``tau2 max_m ||B_m||^2 <= STEP_BOUND``.  The linearised ADMM converges for
#: ``tau ||.||^2 < 1`` (P-ADMM uses 0.99); an unfolded network runs a fixed
#: number of layers and training takes some steps beyond it: the largest
#: measured ratio is 7.1 (shipped ``"paper"`` variant, tau2 of layer 1; the
#: ``"supervised"`` variant reaches 4.3).  50 leaves a factor 7 for other
#: trainings and refuses steps such as tau1 = 1 (ratio 121): set in layer 4 of
#: the default network, it takes P(error < 1 m) on 300 users at -10..20 dB from
#: 0.92 to 0.07.
STEP_BOUND = 50.0
#: Smallest step ratio ``tau ||.||^2`` accepted (a zero step freezes X).
MIN_STEP_RATIO = 1e-12
#: Range accepted for ``rho`` and ``w_m`` (and upper bound of ``w_min``).
PARAMETER_RANGE = (1e-12, 1e12)
#: Relative tolerance of the dictionary sketch comparison (float32 round-off: ~1e-7).
SKETCH_TOLERANCE = 1e-5

_STATE_KEYS = ("log_rho", "log_tau1", "log_tau2", "log_w", "w_min")
_SKETCH_METHOD = "phase-probes-4x4"

_WEIGHTS_DIR = Path(__file__).with_name("weights")

#: Shipped weight files (trained for the default :class:`Scenario`), by variant name.
#: ``"default"`` is an alias of :data:`DEFAULT_VARIANT`.  The training settings
#: of each variant are :data:`RECIPES` (defined below :class:`TrainConfig`).
VARIANTS: dict[str, str] = {
    "paper": "daun_paper.pt",
    "supervised": "daun_supervised.pt",
}
#: The variant of ``load_pretrained()``: chosen on held-out selection data (not
#: the validation set used for early stopping, not the test set): it localises
#: as well as grid DPD at every SNR (the paper variant fails at -10 dB) and
#: still drives the residual NMSE down (1e-4 after 10 layers).
DEFAULT_VARIANT = "supervised"


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """Tuples/lists/numpy scalars -> plain Python types (for weights_only checkpoints)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (numbers.Integral, np.integer)):
        return int(value)
    if isinstance(value, (numbers.Real, np.floating)):
        return float(value)
    return value


def _scenario_fields(scenario: Scenario) -> dict[str, Any]:
    return {f.name: _plain(getattr(scenario, f.name)) for f in dataclasses.fields(scenario)}


def _scenario_from_fields(fields: dict[str, Any]) -> Scenario:
    kw = dict(fields)
    if "bs_positions" in kw:
        kw["bs_positions"] = tuple(tuple(p) for p in kw["bs_positions"])
    if "grid_shape" in kw:
        kw["grid_shape"] = tuple(kw["grid_shape"])
    known = {f.name for f in dataclasses.fields(Scenario)}
    return Scenario(**{k: v for k, v in kw.items() if k in known})


def _same(a: Any, b: Any) -> bool:
    a, b = _plain(a), _plain(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-12)
        except (TypeError, ValueError):
            return False
    return a == b


def _library_version() -> str:
    """``daun_lib.__version__`` (from a source tree: the pyproject version + "+source")."""
    from . import __version__

    return __version__


def _seed_int(*keys: int) -> int:
    """A 32-bit seed derived deterministically from integer keys."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0])


def _atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def _canonical_json(value: Any, what: str) -> bytes:
    """Deterministic bytes of a plain value (dict keys sorted; floats exact)."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=True).encode()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: expected plain values (numbers, strings, lists, dicts), {exc}") from exc


def _tensor_bytes(t: torch.Tensor) -> bytes:
    t = t.detach().cpu()
    t = (t.to_dense() if t.layout != torch.strided else t).contiguous()
    return t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


def _digest(obj: dict[str, Any]) -> str:
    """SHA-256 of a checkpoint's contents: format, version, all metadata, and every
    state tensor's name, dtype, shape and bytes."""
    h = hashlib.sha256(b"daun_lib checkpoint digest 1\0")
    head = {"format": obj["format"], "format_version": obj["format_version"], "meta": obj["meta"]}
    blob = _canonical_json(head, "meta")
    h.update(len(blob).to_bytes(8, "little") + blob)
    for name in sorted(obj["state_dict"]):
        t = obj["state_dict"][name]
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"state_dict[{name!r}] is a {type(t).__name__}, not a tensor")
        head = f"{name}|{t.dtype}|{tuple(t.shape)}".encode()
        data = _tensor_bytes(t)
        h.update(len(head).to_bytes(8, "little") + head + len(data).to_bytes(8, "little") + data)
    return h.hexdigest()


def _probes(seed: int, rows: int, cols: int) -> np.ndarray:
    """(rows, cols) unit-modulus complex numbers with pseudo-random phases; the same on every
    platform and numpy version (the PCG64 bit stream is fixed)."""
    raw = np.random.PCG64(seed).random_raw(rows * cols)
    phase = (raw >> np.uint64(11)).astype(np.float64) * (2.0 * np.pi / 2.0**53)
    return np.exp(1j * phase).reshape(rows, cols)


def _sketch(D: np.ndarray, seed: int) -> dict[str, Any]:
    """Shape, per-BS Frobenius norms and per-BS ``U^H D_m V`` (4 x 4) of a dictionary D (M, N, P)."""
    D = np.asarray(D, dtype=np.complex128)
    M, N, P = D.shape
    U, V = _probes(seed, N, 4), _probes(seed + 1, P, 4)
    S = np.einsum("na,mnp,pb->mab", U.conj(), D, V)
    return {"shape": [M, N, P], "fro": np.linalg.norm(D.reshape(M, -1), axis=1).tolist(),
            "re": S.real.reshape(M, -1).tolist(), "im": S.imag.reshape(M, -1).tolist()}


def _grid_sketch(grid: np.ndarray) -> dict[str, Any]:
    g = np.asarray(grid, dtype=np.float64)
    V = _probes(7, g.shape[0], 4).real
    return {"shape": list(g.shape), "fro": float(np.linalg.norm(g)), "s": (g.T @ V).reshape(-1).tolist()}


def _sketch_difference(stored: dict[str, Any], mine: dict[str, Any], what: str, per_bs: bool) -> str | None:
    """Why two sketches differ (None when they agree within :data:`SKETCH_TOLERANCE`)."""
    if list(stored.get("shape", [])) != list(mine["shape"]):
        return f"{what} has shape {stored.get('shape')} in the checkpoint but {mine['shape']} here"
    if per_bs:
        for m, fro in enumerate(mine["fro"]):
            old = np.asarray(stored["re"][m], float) + 1j * np.asarray(stored["im"][m], float)
            new = np.asarray(mine["re"][m]) + 1j * np.asarray(mine["im"][m])
            rel = max(abs(float(stored["fro"][m]) - fro), float(np.sqrt(np.mean(np.abs(old - new) ** 2)))) / max(
                fro, 1e-300)
            if not rel <= SKETCH_TOLERANCE:
                return (f"{what} of BS {m} differs from the checkpoint's (relative difference {rel:.2g}): the "
                        f"weights were trained for another geometry (BS positions, array orientations, grid, "
                        f"angles or antenna spacing)")
        return None
    old, new = np.asarray(stored["s"], float), np.asarray(mine["s"])
    scale = max(mine["fro"], 1e-300)
    rel = max(abs(float(stored["fro"]) - mine["fro"]), float(np.sqrt(np.mean((old - new) ** 2)))) / scale
    if not rel <= SKETCH_TOLERANCE:
        return f"{what} differs from the checkpoint's (relative difference {rel:.2g})"
    return None


def _fail(path: Any, why: str) -> ValueError:
    return ValueError(f"path: {str(path)!r} {why}")


def _check_int(value: Any, lo: int, hi: float, what: str, path: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not lo <= value <= hi:
        raise _fail(path, f"is not a valid DAUN checkpoint: {what} is {value!r}, expected an integer in [{lo}, {hi:g}]")
    return int(value)


def _scenario_sizes(fields: dict[str, Any], path: Any) -> dict[str, int]:
    """M, N, K, L of a stored scenario record, read without building anything."""
    try:
        M = len(fields["bs_positions"])
        N = fields["n_antennas"]
        nx, ny = fields["grid_shape"]
        L = fields["n_angles"]
    except (KeyError, TypeError, ValueError) as exc:
        raise _fail(path, f"has a damaged scenario record ({type(exc).__name__}: {exc})") from exc
    out = {}
    for key, v in (("M", M), ("N", N), ("nx", nx), ("ny", ny), ("L", L)):
        out[key] = _check_int(v, 1, MAX_DICTIONARY_ENTRIES, f"scenario size {key}", path)
    out["K"] = out.pop("nx") * out.pop("ny")
    return out


def _check_sizes(shape: dict[str, int], path: Any) -> None:
    entries = shape["M"] * shape["N"] * (shape["K"] + shape["L"])
    if entries > MAX_DICTIONARY_ENTRIES:
        raise _fail(path, f"declares dictionaries of M N (K + L) = {entries:.3g} complex entries "
                          f"(M={shape['M']}, N={shape['N']}, K={shape['K']}, L={shape['L']}), above the limit "
                          f"MAX_DICTIONARY_ENTRIES = {MAX_DICTIONARY_ENTRIES:.3g}; refusing to build them")


def _check_state(state: dict[str, Any], n_layers: int, n_bs: int, path: Any) -> None:
    """Keys, dtypes, shapes, finiteness and ranges of a checkpoint's tensors (steps: see _check_steps)."""
    keys = set(state)
    if keys != set(_STATE_KEYS):
        raise _fail(path, f"is not a valid DAUN checkpoint: state_dict keys {sorted(keys)}, expected "
                          f"{sorted(_STATE_KEYS)}")
    shapes = {"log_rho": (n_layers,), "log_tau1": (n_layers,), "log_tau2": (n_layers,), "log_w": (n_bs,),
              "w_min": ()}
    values = {}
    for name in _STATE_KEYS:
        t = state[name]
        if (not isinstance(t, torch.Tensor) or t.dtype not in (torch.float32, torch.float64)
                or t.layout != torch.strided):
            raise _fail(path, f"is not a valid DAUN checkpoint: {name} is "
                              f"{getattr(t, 'dtype', type(t).__name__)} ({getattr(t, 'layout', '')}), expected a "
                              f"dense float32 or float64 tensor")
        if tuple(t.shape) != shapes[name]:
            raise _fail(path, f"is not a valid DAUN checkpoint: {name} has shape {tuple(t.shape)}, expected "
                              f"{shapes[name]} (n_layers = {n_layers}, M = {n_bs})")
        v = t.detach().cpu().double()
        if not bool(torch.isfinite(v).all()):
            raise _fail(path, f"is not a valid DAUN checkpoint: {name} is not finite")
        values[name] = v
    lo, hi = PARAMETER_RANGE
    w_min = float(values["w_min"])
    if not 0.0 <= w_min <= hi:
        raise _fail(path, f"holds w_min = {w_min:.3g}, expected 0 <= w_min <= {hi:g}")
    for name, v in (("rho", values["log_rho"].exp()), ("w", w_min + values["log_w"].exp())):
        bad = ~((v >= lo) & (v <= hi))
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise _fail(path, f"holds {name}[{i}] = {float(v[i]):.3g}, outside the accepted range "
                              f"PARAMETER_RANGE = [{lo:g}, {hi:g}]")


def _read_checkpoint(path: str | os.PathLike, *, allow_v1: bool = False) -> dict[str, Any]:
    """Load a checkpoint and check all that can be checked without building the network.

    Every failure is a ValueError naming the file.  Checked: readability, size,
    format tag and version, the digest (version 2), the metadata types, the layer
    count, the problem sizes, and the state tensors (:func:`_check_state`).
    """
    try:
        path = Path(path)
    except TypeError as exc:
        raise ValueError(f"path: expected a file path, got {type(path).__name__}") from exc
    if not path.is_file():
        raise ValueError(f"path: no checkpoint file at {str(path)!r}")
    size = path.stat().st_size
    if size > MAX_CHECKPOINT_BYTES:
        raise _fail(path, f"is {size} bytes, larger than any DAUN checkpoint (limit MAX_CHECKPOINT_BYTES = "
                          f"{MAX_CHECKPOINT_BYTES})")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt zip, pickle, truncated file, disallowed types ...
        raise ValueError(
            f"path: {str(path)!r} is not a readable DAUN checkpoint ({type(exc).__name__}: {str(exc)[:200]})"
        ) from exc
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"path: {str(path)!r} is not a DAUN checkpoint (missing format tag {CHECKPOINT_FORMAT!r})")
    version = obj.get("format_version")
    if version == 1 and not allow_v1:
        raise _fail(path, "is a version-1 DAUN checkpoint: it carries no integrity digest, so damage to it "
                          "cannot be detected, and this library reads version 2 only; if you trust the file, "
                          "convert it with daun_lib.daun.upgrade_checkpoint(path, new_path)")
    if version != CHECKPOINT_VERSION and not (allow_v1 and version == 1):
        raise _fail(path, f"has checkpoint format version {version!r}, this library reads version "
                          f"{CHECKPOINT_VERSION}")
    meta, state = obj.get("meta"), obj.get("state_dict")
    if not isinstance(meta, dict) or not isinstance(state, dict):
        raise _fail(path, "is a damaged DAUN checkpoint (no meta or state_dict)")
    if version == CHECKPOINT_VERSION:
        stored = obj.get("digest")
        try:
            actual = _digest(obj)
        except (ValueError, TypeError, RuntimeError) as exc:
            raise _fail(path, f"is damaged: its contents cannot be digested ({exc})") from exc
        if not isinstance(stored, str) or stored != actual:
            raise _fail(path, "is damaged: digest mismatch (the file changed after it was written: a flipped "
                              "bit, a truncated copy or an edit); refusing to load it")
        for key in ("n_layers", "shape", "dtype", "dictionaries"):
            if key not in meta:
                raise _fail(path, f"is not a valid DAUN checkpoint (meta lacks {key!r})")
    for key in ("n_layers", "shape"):
        if key not in meta:
            raise _fail(path, f"is a damaged DAUN checkpoint (meta lacks {key!r})")
    n_layers = _check_int(meta["n_layers"], 1, MAX_LAYERS, "n_layers", path)
    shape = meta["shape"]
    if not isinstance(shape, dict):
        raise _fail(path, f"is not a valid DAUN checkpoint: shape is {shape!r}")
    shape = {k: _check_int(shape.get(k), 1, MAX_BS if k == "M" else MAX_DICTIONARY_ENTRIES, f"shape[{k!r}]", path)
             for k in "MNKL"}
    _check_sizes(shape, path)
    scen = meta.get("scenario")
    if scen is not None:
        if not isinstance(scen, dict):
            raise _fail(path, f"has a damaged scenario record ({type(scen).__name__})")
        sizes = _scenario_sizes(scen, path)
        if sizes != shape:
            raise _fail(path, f"is not a valid DAUN checkpoint: its scenario has sizes {sizes} but its "
                              f"shape record says {shape}")
    if meta.get("dtype", "float32") not in ("float32", "float64") or meta.get("normalize", True) is not True:
        raise _fail(path, f"is not a valid DAUN checkpoint: dtype {meta.get('dtype')!r}, normalize "
                          f"{meta.get('normalize')!r}")
    _check_state(state, n_layers, shape["M"], path)
    return obj


# ---------------------------------------------------------------------------
# the network
# ---------------------------------------------------------------------------
class DAUN(nn.Module):
    """The unfolded P-ADMM network: ``n_layers`` iterations with learnable parameters.

    Parameters
    ----------
    n_layers : int >= 1
        Number of unrolled iterations ``I``.
    n_bs : int, optional
        Number of base stations ``M`` (must equal ``scenario.n_bs``; default:
        taken from the scenario).
    scenario : Scenario, optional
        Builds the dictionaries (default: the paper's :class:`Scenario`).
    device : torch device, optional
        Where the network computes ("cpu", "cuda").  Default CPU.
    dtype : "float32" (default) or "float64"
        Working precision (complex64 / complex128) and parameter precision.
    w_min : float >= 0
        Lower bound of the NLoS weights, ``w_m = w_min + exp(log_w_m)``
        (0: unconstrained positive weights, the paper's model).
    init : admm.ADMMParams, optional
        Initial parameters of every layer (default
        :func:`daun_lib.admm.default_params` of the dictionaries).

    Notes
    -----
    Use :meth:`from_dictionaries` for your own ``A``, ``B``.  The dictionaries
    are (non-persistent) buffers, so ``.to(device)`` moves them too.
    """

    def __init__(
        self,
        n_layers: int,
        n_bs: int | None = None,
        *,
        scenario: Scenario | None = None,
        device: Any = None,
        dtype: str = "float32",
        w_min: float = 0.0,
        init: admm.ADMMParams | None = None,
        _dictionaries: tuple[Any, Any] | None = None,
        _grid: Any = None,
        _placeholder: bool = False,
    ) -> None:
        super().__init__()
        device = check_device(device, "device")
        n_layers = positive(n_layers, "n_layers", integer=True)
        if _dictionaries is None:
            if scenario is None:
                scenario = Scenario()
            if not isinstance(scenario, Scenario):
                raise ValueError(f"scenario: expected a daun_lib.Scenario, got {type(scenario).__name__}")
            A, B = scenario.dictionaries()
            grid = scenario.grid
        else:
            A, B = _dictionaries
            grid = _grid
        A, B = admm._check_dictionaries(A, B)
        M = int(A.shape[0])
        if n_bs is not None:
            n_bs = positive(n_bs, "n_bs", integer=True)
            if n_bs != M:
                raise ValueError(f"n_bs: expected {M} (the number of BSs of the dictionaries/scenario), got {n_bs}")
        rdtype, cdtype = admm.resolve_dtype(dtype)
        self.scenario = scenario
        self.dtype_name = "float64" if rdtype == torch.float64 else "float32"
        ops = admm.make_operators(A, B, cdtype, device)
        self.register_buffer("A", ops.A, persistent=False)
        self.register_buffer("AH", ops.AH, persistent=False)
        self.register_buffer("B", ops.B, persistent=False)
        self.register_buffer("BH", ops.BH, persistent=False)
        if grid is not None:
            g = np.asarray(grid, dtype=float)
            if g.shape != (A.shape[2], 2) or not np.isfinite(g).all():
                raise ValueError(f"grid: expected a finite ({A.shape[2]}, 2) array of cell positions, got {g.shape}")
            self.register_buffer("grid", torch.as_tensor(g, dtype=rdtype, device=ops.A.device), persistent=False)
        else:
            self.grid = None
        w_min = nonnegative(w_min, "w_min")
        self.register_buffer("w_min", torch.tensor(w_min, dtype=rdtype, device=ops.A.device))
        self._init_params = init
        if init is not None and not isinstance(init, admm.ADMMParams):
            raise ValueError(f"init: expected an admm.ADMMParams, got {type(init).__name__}")
        if _placeholder:  # values are overwritten by load_weights: skip the spectral norms
            init = admm.ADMMParams(1.0, 1.0, 1.0, tuple([1.0 + w_min] * M))
        else:
            init = self._init
        w0 = np.broadcast_to(np.asarray(init.w, dtype=float), (M,))
        if (w0 <= w_min).any():
            raise ValueError(f"init: initial weights w must exceed w_min = {w_min}, got {w0}")
        dev = ops.A.device
        self.log_rho = nn.Parameter(torch.full((n_layers,), math.log(init.rho), dtype=rdtype, device=dev))
        self.log_tau1 = nn.Parameter(torch.full((n_layers,), math.log(init.tau1), dtype=rdtype, device=dev))
        self.log_tau2 = nn.Parameter(torch.full((n_layers,), math.log(init.tau2), dtype=rdtype, device=dev))
        self.log_w = nn.Parameter(torch.as_tensor(np.log(w0 - w_min), dtype=rdtype, device=dev).clone())
        self.meta: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []

    # ------------------------------------------------------------ construction
    @classmethod
    def from_dictionaries(
        cls,
        A: Any,
        B: Any,
        n_layers: int,
        *,
        grid: Any = None,
        device: Any = None,
        dtype: str = "float32",
        w_min: float = 0.0,
        init: admm.ADMMParams | None = None,
    ) -> "DAUN":
        """A network for your own dictionaries ``A`` (M, N, K), ``B`` (M, N, L).

        ``grid`` (K, 2), the positions of the columns of ``A``, is needed by
        :meth:`localize` only.
        """
        return cls(n_layers, None, device=device, dtype=dtype, w_min=w_min, init=init,
                   _dictionaries=(A, B), _grid=grid)

    # --------------------------------------------------------------- properties
    @property
    def _init(self) -> admm.ADMMParams:
        """Initial parameters of new layers (default: :func:`daun_lib.admm.default_params`, computed once)."""
        if self._init_params is None:
            A = self.A.detach().cpu().numpy()
            B = self.B.detach().cpu().numpy()
            self._init_params = admm.default_params(A, B, w=1.0 + float(self.w_min))
        return self._init_params

    @property
    def n_layers(self) -> int:
        """Number of layers ``I``."""
        return int(self.log_rho.shape[0])

    @property
    def n_bs(self) -> int:
        """Number of BSs ``M``."""
        return int(self.A.shape[0])

    @property
    def shape(self) -> dict[str, int]:
        """Problem sizes ``M, N, K, L``."""
        return {"M": int(self.A.shape[0]), "N": int(self.A.shape[1]), "K": int(self.A.shape[2]),
                "L": int(self.B.shape[2])}

    @property
    def device(self) -> torch.device:
        return self.A.device

    @property
    def rho(self) -> torch.Tensor:
        """(I,) penalty parameters ``rho^(i)``."""
        return self.log_rho.exp()

    @property
    def tau1(self) -> torch.Tensor:
        """(I,) proximal parameters ``tau1^(i)``."""
        return self.log_tau1.exp()

    @property
    def tau2(self) -> torch.Tensor:
        """(I,) proximal parameters ``tau2^(i)``."""
        return self.log_tau2.exp()

    @property
    def w(self) -> torch.Tensor:
        """(M,) NLoS weights ``w_m``."""
        return self.w_min + self.log_w.exp()

    def parameters_dict(self) -> dict[str, np.ndarray]:
        """The learned parameters as numpy arrays: ``rho``, ``tau1``, ``tau2`` (I,) and ``w`` (M,)."""
        with torch.no_grad():
            return {k: getattr(self, k).detach().cpu().double().numpy().copy() for k in ("rho", "tau1", "tau2", "w")}

    def set_parameters(self, rho: Any = None, tau1: Any = None, tau2: Any = None, w: Any = None) -> "DAUN":
        """Set parameters (scalars or per-layer / per-BS arrays) to given positive values."""
        with torch.no_grad():
            for name, val, n in (("rho", rho, self.n_layers), ("tau1", tau1, self.n_layers),
                                 ("tau2", tau2, self.n_layers), ("w", w, self.n_bs)):
                if val is None:
                    continue
                arr = np.broadcast_to(np.asarray(val, dtype=float), (n,)) if np.ndim(val) == 0 else np.asarray(
                    val, dtype=float)
                if arr.shape != (n,) or not np.isfinite(arr).all():
                    raise ValueError(f"{name}: expected a finite scalar or a length-{n} vector, got shape {arr.shape}")
                if name == "w":
                    wmin = float(self.w_min)
                    if (arr <= wmin).any():
                        raise ValueError(f"w: expected weights above w_min = {wmin}, got {arr}")
                    arr = arr - wmin
                elif (arr <= 0).any():
                    raise ValueError(f"{name}: expected positive values, got {arr}")
                getattr(self, f"log_{name}").copy_(torch.as_tensor(np.log(arr)))
        return self

    def append_layer(self, init: admm.ADMMParams | None = None) -> None:
        """Append one layer initialised at ``init`` (default: the P-ADMM setting); layers 1..I keep their values."""
        init = init or self._init
        with torch.no_grad():
            for name, v in (("log_rho", init.rho), ("log_tau1", init.tau1), ("log_tau2", init.tau2)):
                old = getattr(self, name)
                new = torch.cat([old.detach(), torch.full((1,), math.log(v), dtype=old.dtype, device=old.device)])
                setattr(self, name, nn.Parameter(new))

    def truncate(self, n_layers: int) -> None:
        """Keep only the first ``n_layers`` layers."""
        n_layers = positive(n_layers, "n_layers", integer=True)
        if n_layers > self.n_layers:
            raise ValueError(f"n_layers: expected at most {self.n_layers}, got {n_layers}")
        with torch.no_grad():
            for name in ("log_rho", "log_tau1", "log_tau2"):
                setattr(self, name, nn.Parameter(getattr(self, name).detach()[:n_layers].clone()))

    # ---------------------------------------------------------------- forward
    def _ops(self) -> admm.Operators:
        return admm.Operators(self.A, self.AH, self.B, self.BH)

    def _block_ops(self) -> admm.BlockOperators:
        """Real block dictionaries for :func:`admm.run_inference`, built once per device/dtype."""
        key = (self.A.device, self.A.dtype, self.A.data_ptr(), self.A._version, self.B.data_ptr(), self.B._version)
        cache = self.__dict__.setdefault("_block_cache", {})
        if key not in cache:
            cache.clear()
            cache[key] = admm.block_operators(self._ops())
        return cache[key]

    def _cached(self, name: str, compute: Callable[[], Any]) -> Any:
        """A value derived from the dictionaries, computed once per dictionary buffer."""
        # data_ptr and the in-place version counter: a new or edited buffer gets new values
        key = (name, self.A.device, self.A.dtype, self.A.data_ptr(), self.A._version, self.B.data_ptr(),
               self.B._version, None if self.grid is None else (self.grid.data_ptr(), self.grid._version))
        cache = self.__dict__.setdefault("_derived_cache", {})
        if key not in cache:
            cache[key] = compute()
        return cache[key]

    def operator_norms(self) -> tuple[float, float]:
        """``max_m ||A_m||_2^2`` and ``max_m ||B_m||_2^2`` of this network's dictionaries
        (the step bounds are ``tau1 < 1 / ||A||^2``, ``tau2 < 1 / ||B||^2``)."""
        def compute() -> tuple[float, float]:
            A = self.A.detach().cpu().numpy().astype(np.complex128)
            B = self.B.detach().cpu().numpy().astype(np.complex128)
            return admm._max_spectral_norm_sq(A), admm._max_spectral_norm_sq(B)

        return self._cached("norms", compute)

    def _dictionary_record(self) -> dict[str, Any]:
        """Sketch of ``A``, ``B`` and the grid stored in checkpoints (module docstring)."""
        def compute() -> dict[str, Any]:
            return {
                "method": _SKETCH_METHOD,
                "A": _sketch(self.A.detach().cpu().numpy(), 11),
                "B": _sketch(self.B.detach().cpu().numpy(), 13),
                "grid": None if self.grid is None else _grid_sketch(self.grid.detach().cpu().numpy()),
            }

        return self._cached("sketch", compute)

    def infer(self, yt: torch.Tensor, *, track_residual: bool = False) -> admm.InferenceResult:
        """Inference on a prepared, batch-last ``yt`` (M, N, n): :meth:`run` without autograd.

        The same layers computed by :func:`daun_lib.admm.run_inference` (real
        arithmetic, in place); call it under ``torch.inference_mode()`` or
        ``torch.no_grad()``.
        """
        if not isinstance(yt, torch.Tensor) or yt.device != self.device or yt.dtype != self.A.dtype:
            raise ValueError(f"yt: expected a {self.A.dtype} tensor on {self.device} (use prepare(y)), got "
                             f"{type(yt).__name__} {getattr(yt, 'dtype', '')} {getattr(yt, 'device', '')}")
        rho, tau1, tau2 = (v.tolist() for v in (self.rho, self.tau1, self.tau2))
        return admm.iterate(self._ops(), yt, rho, tau1, tau2, self.w.detach(), track_residual=track_residual,
                            block_ops=self._block_ops())

    def run(self, yt: torch.Tensor, n_layers: int | None = None,
            on_layer: Callable[[int, admm.State], None] | None = None) -> admm.State:
        """Run the layers on an already prepared, batch-last ``yt`` (M, N, n) (autograd-friendly).

        ``on_layer(i, state)`` is called after every layer (e.g. to record the NMSE of Fig. 3).
        Returns the final :class:`admm.State`.
        """
        ops = self._ops()
        n = self.n_layers if n_layers is None else n_layers
        rho, tau1, tau2, w = self.rho, self.tau1, self.tau2, self.w
        st = admm.init_state(ops, yt)
        for i in range(n):
            st = admm.admm_layer(ops, yt, st, rho[i], tau1[i], tau2[i], w)
            if on_layer is not None:
                on_layer(i, st)
        return st

    def prepare(self, y: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Validated ``y`` (n, M, N) -> RMS-normalised batch-last tensor (M, N, n) and scales (n,)."""
        y = self._check_y(y)
        return admm.prepare_y(y, self.A.dtype, self.device, True)

    def forward(self, y: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``X`` (n, K, M) and ``Z`` (n, L, M) as tensors (differentiable w.r.t. the parameters)."""
        yt, scale = self.prepare(y)
        return admm.unpack(self.run(yt), scale)

    def _check_y(self, y: Any) -> Any:
        y = as_array(y, "y", (2, 3))
        if y.ndim == 2:
            y = y[None]
        M, N = self.shape["M"], self.shape["N"]
        if tuple(y.shape[1:]) != (M, N):
            raise ValueError(f"y: expected shape (n, {M}, {N}) (samples, BSs, antennas), got {tuple(y.shape)}")
        if y.shape[0] < 1:
            raise ValueError("y: expected at least one sample, got n = 0")
        return y

    def solve(self, y: Any, *, batch_size: int = 256) -> admm.ADMMResult:
        """Run the network: ``X`` (n, K, M), ``Z`` (n, L, M) and the NMSE after every layer (Fig. 3).

        Parameters
        ----------
        y : (n, M, N) or (M, N) complex, numpy array or tensor
        batch_size : int
            Samples per chunk (memory bound); the NMSE is over all samples.

        Returns
        -------
        admm.ADMMResult
            numpy arrays for numpy input, tensors for tensor input.
        """
        y = self._check_y(y)
        batch_size = positive(batch_size, "batch_size", integer=True)
        want_tensor = is_tensor(y)
        Xs, Zs = [], []
        num = torch.zeros(self.n_layers, dtype=torch.float64)
        den = torch.zeros((), dtype=torch.float64)
        with torch.inference_mode():
            for lo in range(0, y.shape[0], batch_size):
                yt, scale = admm.prepare_y(y[lo:lo + batch_size], self.A.dtype, self.device, True)
                # sums in float64: the squared scale of a tiny or huge y leaves the float32 range
                s2 = scale.double().square()
                den += ((yt.real.square() + yt.imag.square()).sum(dim=(0, 1)).double() * s2).sum().cpu()
                out = self.infer(yt, track_residual=True)
                num += (out.residual.double() * s2).sum(dim=1).cpu()
                X, Z = admm.unpack_xz(out.x, out.z, scale)
                Xs.append(X.contiguous())
                Zs.append(Z.contiguous())
            X = torch.cat(Xs) if len(Xs) > 1 else Xs[0]
            Z = torch.cat(Zs) if len(Zs) > 1 else Zs[0]
            nmse = (num / den.clamp_min(1e-300)).to(self.A.real.dtype)
        if want_tensor:
            return admm.ADMMResult(X.clone(), Z.clone(), nmse.to(self.device))
        return admm.ADMMResult(X.cpu().numpy(), Z.cpu().numpy(), nmse.numpy())

    def _x_chunks(self, y: Any, batch_size: int) -> Any:
        """Yield the last layer's ``X`` (b, K, M) numpy array of every chunk of ``batch_size`` samples."""
        with torch.inference_mode():
            for lo in range(0, y.shape[0], batch_size):
                yt, scale = admm.prepare_y(y[lo:lo + batch_size], self.A.dtype, self.device, True)
                out = self.infer(yt)
                yield admm.unpack_xz(out.x, out.z, scale)[0].cpu().numpy()

    def estimate_x(self, y: Any, *, batch_size: int = 256) -> np.ndarray:
        """Only the last layer's ``X`` (n, K, M) as a numpy array: :meth:`solve` without the
        per-layer NMSE bookkeeping."""
        y = self._check_y(y)
        batch_size = positive(batch_size, "batch_size", integer=True)
        Xs = list(self._x_chunks(y, batch_size))
        return np.concatenate(Xs) if len(Xs) > 1 else Xs[0]

    def localize(self, y: Any, refine: bool = True, *, batch_size: int = 256) -> np.ndarray:
        """Position estimates (n, 2) in metres.

        Parameters
        ----------
        y : (n, M, N) or (M, N) complex, numpy array or tensor
        refine : bool
            True (default): DAUN-R, Algorithm 1 (:func:`daun_lib.refine.refine`)
            on the last layer's ``X``; False: plain DAUN, ``argmax_k ||X[k, :]||``.
        batch_size : int
            Samples per chunk: the network and the readout run chunk by chunk,
            so memory does not grow with ``n`` (the result does not depend on it).
        """
        if not isinstance(refine, (bool, np.bool_)):
            raise ValueError(f"refine: expected True or False, got {refine!r}")
        if self.grid is None:
            raise ValueError("localize: this network has no position grid (pass grid= to DAUN.from_dictionaries)")
        y = self._check_y(y)
        batch_size = positive(batch_size, "batch_size", integer=True)
        readout = refine_rows if refine else argmax_rows
        k = np.concatenate([readout(X) for X in self._x_chunks(y, batch_size)])
        return self.grid.detach().cpu().double().numpy()[k]

    # ------------------------------------------------------------- checkpoints
    def _meta(self) -> dict[str, Any]:
        meta = dict(self.meta)
        meta.update({
            "n_layers": self.n_layers,
            "n_bs": self.n_bs,
            "shape": self.shape,
            "scenario": _scenario_fields(self.scenario) if self.scenario is not None else None,
            "dtype": self.dtype_name,
            "w_min": float(self.w_min),
            "normalize": True,
            "history": _plain(self.history),
            "library_version": _library_version(),
            "python_version": platform.python_version(),
            "parameters": {k: v.tolist() for k, v in self.parameters_dict().items()},
            "dictionaries": self._dictionary_record(),
        })
        return meta

    def save(self, path: str | os.PathLike, **extra_meta: Any) -> Path:
        """Write the checkpoint (state dict + metadata + digest) atomically; returns the path.

        ``extra_meta`` (plain Python values: numbers, strings, lists, dicts) is
        stored under ``meta``; it may not replace the keys this method writes.
        """
        meta = self._meta()
        reserved = sorted(set(extra_meta) & (set(meta) - set(self.meta)))
        if reserved:
            raise ValueError(f"extra_meta: {reserved} are written by save itself and cannot be given")
        meta.update(_plain(extra_meta))
        state = {k: v.detach().cpu().clone() for k, v in self.state_dict().items()}
        obj = {"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION, "meta": meta, "state_dict": state}
        obj["digest"] = _digest(obj)
        return _atomic_save(obj, path)

    @staticmethod
    def _check_record(meta: dict[str, Any], shape: dict[str, int], scenario: Scenario | None, path: Any) -> None:
        """Sizes and (when both sides have a scenario) the dictionary fields; nothing is built."""
        stored = meta.get("shape") or {}
        for key, name in (("M", "n_bs (M)"), ("N", "n_antennas (N)"), ("K", "grid size (K)"), ("L", "n_angles (L)")):
            if stored.get(key) != shape[key]:
                raise _fail(path, f"holds weights for another scenario: {name} is {stored.get(key)} in the "
                                  f"checkpoint but {shape[key]} here")
        if scenario is not None and meta.get("scenario") is not None:
            mine = _scenario_fields(scenario)
            defaults = _scenario_fields(Scenario())
            for field in DICTIONARY_FIELDS:
                theirs = meta["scenario"].get(field, defaults.get(field))
                if not _same(theirs, mine.get(field)):
                    raise _fail(path, f"holds weights for another scenario: {field} is {theirs!r} in the "
                                      f"checkpoint but {mine.get(field)!r} here")

    def _check_compatible(self, meta: dict[str, Any], path: Any) -> None:
        self._check_record(meta, self.shape, self.scenario, path)
        record = meta.get("dictionaries")
        if record is None:  # version-1 files (upgrade_checkpoint only)
            return
        try:
            if record.get("method") != _SKETCH_METHOD:
                raise _fail(path, f"has a dictionary sketch of an unknown kind ({record.get('method')!r})")
            mine = self._dictionary_record()
            why = (_sketch_difference(record["A"], mine["A"], "the dictionary A", True)
                   or _sketch_difference(record["B"], mine["B"], "the dictionary B", True))
            if why is None and record.get("grid") is not None and mine["grid"] is not None:
                why = _sketch_difference(record["grid"], mine["grid"], "the position grid", False)
        except (KeyError, TypeError, IndexError, AttributeError) as exc:
            raise _fail(path, f"has a damaged dictionary sketch ({type(exc).__name__}: {exc})") from exc
        if why is not None:
            raise _fail(path, f"holds weights for other dictionaries: {why}")

    def _check_steps(self, state: dict[str, torch.Tensor], path: Any) -> None:
        """Steps against the convergence bound of this network's operators (:data:`STEP_BOUND`)."""
        na, nb = self.operator_norms()
        for name, norm, op in (("tau1", na, "A"), ("tau2", nb, "B")):
            ratio = state[f"log_{name}"].detach().cpu().double().exp() * norm
            bad = ~((ratio >= MIN_STEP_RATIO) & (ratio <= STEP_BOUND))
            if bool(bad.any()):
                i = int(bad.nonzero()[0, 0])
                raise _fail(path, f"holds {name}[{i}] = {float(ratio[i]) / norm:.3g}, i.e. {name} ||{op}||^2 = "
                                  f"{float(ratio[i]):.3g}: outside [{MIN_STEP_RATIO:g}, STEP_BOUND = {STEP_BOUND:g}] "
                                  f"(the linearised ADMM converges below 1; trained networks stay below 7.2)")

    def _load_checked(self, obj: dict[str, Any], path: Any) -> "DAUN":
        meta, state = obj["meta"], obj["state_dict"]
        self._check_compatible(meta, path)
        self._check_steps(state, path)
        with torch.no_grad():
            for name in ("log_rho", "log_tau1", "log_tau2"):
                setattr(self, name, nn.Parameter(state[name].to(dtype=self.A.real.dtype, device=self.device).clone()))
            self.log_w.copy_(state["log_w"])
            self.w_min.copy_(state["w_min"])
            for name in _STATE_KEYS:  # e.g. a float64 value beyond the float32 range
                if not torch.isfinite(getattr(self, name)).all():
                    raise _fail(path, f"holds {name} values that are not finite in {self.dtype_name}")
        self.history = list(meta.get("history") or [])
        self.meta = {k: v for k, v in meta.items() if k in ("train_config", "variant", "notes", "train_device",
                                                              "train_seconds", "generator")}
        return self

    def load_weights(self, path: str | os.PathLike) -> "DAUN":
        """Load a checkpoint into this network (layer count adapted); returns self.

        Raises ValueError when the file is damaged or crafted, is no DAUN
        checkpoint, or was trained for other dictionaries (the message names
        what differs); see the module docstring.
        """
        return self._load_checked(_read_checkpoint(path), path)

    @classmethod
    def load(cls, path: str | os.PathLike, *, scenario: Scenario | None = None, device: Any = None,
             dtype: str = "float32") -> "DAUN":
        """Build a network from a checkpoint.

        Parameters
        ----------
        path : checkpoint written by :meth:`save` or :func:`train`
        scenario : Scenario, optional
            The scenario to use the weights in (default: the one stored in the
            checkpoint).  A scenario with other dictionaries (M, N, K, L, geometry)
            raises ValueError naming the field that differs.
        device, dtype : see :class:`DAUN`

        Everything the file declares is checked before the dictionaries are
        built (module docstring, section Checkpoints).
        """
        device = check_device(device, "device")
        admm.resolve_dtype(dtype)
        if scenario is not None and not isinstance(scenario, Scenario):
            raise ValueError(f"scenario: expected a daun_lib.Scenario, got {type(scenario).__name__}")
        obj = _read_checkpoint(path)
        meta = obj["meta"]
        if scenario is None:
            if meta.get("scenario") is None:
                raise _fail(path, "was saved from user dictionaries; use "
                                  "DAUN.from_dictionaries(A, B, n_layers).load_weights(path)")
            try:
                scenario = _scenario_from_fields(meta["scenario"])
            except (TypeError, ValueError) as exc:
                raise _fail(path, f"has a damaged scenario record ({exc})") from exc
        shape = {"M": scenario.n_bs, "N": scenario.n_antennas, "K": scenario.n_grid, "L": scenario.n_angles}
        cls._check_record(meta, shape, scenario, path)
        net = cls(int(meta["n_layers"]), None, scenario=scenario, device=device, dtype=dtype, _placeholder=True)
        return net._load_checked(obj, path)

    def extra_repr(self) -> str:
        s = self.shape
        return f"n_layers={self.n_layers}, M={s['M']}, N={s['N']}, K={s['K']}, L={s['L']}, dtype={self.dtype_name}"


def load(path: str | os.PathLike, **kwargs: Any) -> DAUN:
    """Alias of :meth:`DAUN.load`."""
    return DAUN.load(path, **kwargs)


def upgrade_checkpoint(path: str | os.PathLike, new_path: str | os.PathLike, *, A: Any = None, B: Any = None,
                       grid: Any = None) -> Path:
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
    obj = _read_checkpoint(path, allow_v1=True)
    meta, state = dict(obj["meta"]), obj["state_dict"]
    n_layers, dtype = int(meta["n_layers"]), meta.get("dtype", "float32")
    if meta.get("scenario") is not None:
        if A is not None or B is not None:
            raise ValueError("A, B: this checkpoint stores its scenario; do not pass dictionaries")
        try:
            scenario = _scenario_from_fields(meta["scenario"])
        except (TypeError, ValueError) as exc:
            raise _fail(path, f"has a damaged scenario record ({exc})") from exc
        net = DAUN(n_layers, scenario=scenario, dtype=dtype, _placeholder=True)
        meta["scenario"] = _scenario_fields(scenario)
    else:
        if A is None or B is None:
            raise ValueError("A, B: this checkpoint was saved from user dictionaries; pass them as A=..., B=...")
        net = DAUN.from_dictionaries(A, B, n_layers, grid=grid, dtype=dtype)
    net._check_compatible(meta, path)
    net._check_steps(state, path)
    meta["dtype"] = dtype
    meta["dictionaries"] = net._dictionary_record()
    meta["upgraded_from"] = {"format_version": int(obj["format_version"]), "by": _library_version()}
    new = {"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION, "meta": _plain(meta),
           "state_dict": {k: state[k] for k in _STATE_KEYS}}
    new["digest"] = _digest(new)
    return _atomic_save(new, new_path)


# ---------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------
class TrainingBatch(NamedTuple):
    """What a loss sees for one mini-batch (internal batch-last layout).

    Attributes
    ----------
    yt : (M, N, b) complex, RMS-normalised signals
    state : admm.State after the last layer
    snr_db : (b,) real
    positions : (b, 2) real, metres
    cell : (b,) long, index of the grid cell nearest to the true position
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


def loss_paper(net: DAUN, batch: TrainingBatch, config: "TrainConfig") -> torch.Tensor:
    """(18) with the sign corrected: ``mean (1 + sigmoid(-snr_dB)) ||y - A x - B z||^2`` on RMS-normalised y (/ MN)."""
    weight = 1.0 + torch.sigmoid(-batch.snr_db)
    return (weight * _residual_nmse_per_sample(batch)).mean()


def loss_nmse(net: DAUN, batch: TrainingBatch, config: "TrainConfig") -> torch.Tensor:
    """Unweighted residual NMSE (no SNR weighting)."""
    return _residual_nmse_per_sample(batch).mean()


def _logits(net: DAUN, batch: TrainingBatch, config: "TrainConfig") -> torch.Tensor:
    """(b, K) logits ``||X_k|| / (T max_j ||X_j||)``."""
    x = batch.state.x  # (M, K, b)
    norm = torch.sqrt((x.real.square() + x.imag.square()).sum(dim=0) + 1e-30)  # (K, b)
    ref = norm.max(dim=0, keepdim=True).values.clamp_min(1e-12)
    return (norm / (ref * config.temperature)).T


def loss_ce(net: DAUN, batch: TrainingBatch, config: "TrainConfig") -> torch.Tensor:
    """Cross-entropy of softmax(row norms of X / temperature) against the true grid cell."""
    return torch.nn.functional.cross_entropy(_logits(net, batch, config), batch.cell)


def loss_softargmax(net: DAUN, batch: TrainingBatch, config: "TrainConfig") -> torch.Tensor:
    """Squared error (m^2) of the soft-argmax position ``sum_k softmax_k Phi_k``."""
    if net.grid is None:
        raise ValueError("loss 'softargmax' needs a network with a position grid")
    p = torch.softmax(_logits(net, batch, config), dim=1) @ net.grid
    return (p - batch.positions).square().sum(dim=1).mean()


def loss_ce_paper(net: DAUN, batch: TrainingBatch, config: "TrainConfig") -> torch.Tensor:
    """``ce + residual_weight * loss (18)``: classification plus the paper's residual term."""
    return loss_ce(net, batch, config) + config.residual_weight * loss_paper(net, batch, config)


#: Registry of training losses: name -> ``f(net, batch: TrainingBatch, config) -> scalar``.
LOSSES: dict[str, Callable[[DAUN, TrainingBatch, "TrainConfig"], torch.Tensor]] = {
    "paper": loss_paper,
    "nmse": loss_nmse,
    "ce": loss_ce,
    "softargmax": loss_softargmax,
    "ce+paper": loss_ce_paper,
}


def register_loss(name: str, fn: Callable[[DAUN, TrainingBatch, "TrainConfig"], torch.Tensor]) -> None:
    """Add a training loss ``fn(net, batch, config) -> scalar tensor`` under ``name``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name: expected a non-empty string, got {name!r}")
    if not callable(fn):
        raise ValueError(f"fn: expected a callable, got {type(fn).__name__}")
    LOSSES[name] = fn


# ---------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------
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

    def __post_init__(self) -> None:
        for name in ("n_layers", "samples_per_layer", "batch_size", "n_val", "patience", "max_epochs"):
            positive(getattr(self, name), name, integer=True)
        if isinstance(self.late_after, bool) or not isinstance(self.late_after, numbers.Integral) or self.late_after < 0:
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

    def as_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
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
RECIPES: dict[str, TrainConfig] = {
    "paper": TrainConfig(),
    "supervised": TrainConfig(loss="ce+paper", residual_weight=10.0, temperature=0.02),
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


#: Config fields that may differ between a checkpoint and a resumed training.
_RESUMABLE_FIELDS = ("n_layers", "max_epochs")


class _Data(NamedTuple):
    yt: torch.Tensor  # (M, N, n) normalised
    snr_db: torch.Tensor  # (n,)
    positions: torch.Tensor  # (n, 2)
    cell: torch.Tensor  # (n,)


def _draw(simulate: Callable[..., Any], scenario: Scenario, n: int, config: TrainConfig, key: tuple[int, ...],
          net: DAUN) -> _Data:
    rng = np.random.default_rng(_seed_int(config.seed, *key))
    lo, hi = config.snr_range_db
    snr = rng.uniform(lo, hi, n) if hi > lo else np.full(n, lo)
    batch = simulate(scenario, n, snr, seed=int(rng.integers(2**31 - 1)))
    y = np.asarray(batch.y)
    if y.shape != (n, net.shape["M"], net.shape["N"]) or not np.isfinite(y).all():
        raise ValueError(f"simulate: returned y of shape {y.shape} (or non-finite values)")
    pos = np.asarray(batch.positions, dtype=float)
    yt, _ = admm.prepare_y(y, net.A.dtype, net.device, True)
    rd = net.A.real.dtype
    return _Data(
        yt,
        torch.as_tensor(np.asarray(batch.snr_db, dtype=float), dtype=rd, device=net.device),
        torch.as_tensor(pos, dtype=rd, device=net.device),
        torch.as_tensor(scenario.nearest_grid(pos), dtype=torch.long, device=net.device),
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


def _train_stage(net: DAUN, loss_fn: Callable, config: TrainConfig, train_data: _Data, val_data: _Data,
                 layer: int, bar: Any) -> dict[str, Any]:
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
            idx = perm[lo:lo + config.batch_size]
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


def _check_resumable(meta: dict[str, Any], path: Any, config: TrainConfig, scenario: Scenario, dtype: str,
                     generator: str | None) -> None:
    """Refuse to resume from a checkpoint made with anything that changes the result."""
    where = f"checkpoint: {str(path)!r} was trained with"
    again = "(pass resume=False to start over)"
    old_scenario = meta.get("scenario")
    if old_scenario is None:
        raise ValueError(f"{where} user dictionaries, not a scenario {again}")
    mine, defaults = _scenario_fields(scenario), _scenario_fields(Scenario())
    for field, val in mine.items():
        theirs = old_scenario.get(field, defaults.get(field))
        if not _same(theirs, val):
            raise ValueError(f"{where} scenario {field} = {theirs!r}, this training has {val!r} {again}")
    if meta.get("dtype") != dtype:
        raise ValueError(f"{where} dtype = {meta.get('dtype')!r}, this training has {dtype!r} {again}")
    old_cfg = TrainConfig().as_dict()  # fields missing from an older checkpoint take their defaults
    old_cfg.update(meta.get("train_config") or {})
    for field, val in config.as_dict().items():
        if field in _RESUMABLE_FIELDS:
            continue
        if not _same(old_cfg.get(field), val):
            raise ValueError(f"{where} {field} = {old_cfg.get(field)!r}, the config asks for {val!r} {again}")
    if meta.get("generator") != generator:
        made = meta.get("python_version")
        note = (f"; the fingerprint depends on the Python version: the checkpoint was made with Python {made}, "
                f"this is {platform.python_version()}" if made and made != platform.python_version() else "")
        raise ValueError(f"{where} another data generator: the fingerprint of simulate differs "
                         f"({str(meta.get('generator'))[:12]} vs {str(generator)[:12]}){note} {again}")


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
        :func:`daun_lib.channel.simulate`).

    Returns
    -------
    DAUN
        The trained network; ``net.history`` holds the per-layer curves.
    """
    device = check_device(device, "device")
    admm.resolve_dtype(dtype)
    config = config if config is not None else TrainConfig()
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config: expected a TrainConfig, got {type(config).__name__}")
    scenario = scenario if scenario is not None else Scenario()
    if not isinstance(scenario, Scenario):
        raise ValueError(f"scenario: expected a daun_lib.Scenario, got {type(scenario).__name__}")
    if simulate is None:
        from .channel import simulate as _sim

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
        obj = _read_checkpoint(checkpoint)
        _check_resumable(obj["meta"], checkpoint, config, scenario, net.dtype_name, generator)
        net._load_checked(obj, checkpoint)
        done = net.n_layers
        if done > config.n_layers:
            net.truncate(config.n_layers)
            net.history = net.history[:config.n_layers]
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


# ---------------------------------------------------------------------------
# shipped weights
# ---------------------------------------------------------------------------
def load_pretrained(variant: str = "default", *, device: Any = None, dtype: str = "float32") -> DAUN:
    """A DAUN trained for the default :class:`Scenario`, from weights shipped in the package.

    Parameters
    ----------
    variant : str
        ``"default"`` (the best variant measured on held-out data) or a key of
        :data:`VARIANTS` (``"paper"``: the faithful loss-(18) network).
    device, dtype : see :class:`DAUN`

    No training and no network access are needed.
    """
    device = check_device(device, "device")
    name = DEFAULT_VARIANT if variant == "default" else variant
    if name not in VARIANTS:
        raise ValueError(f"variant: expected 'default' or one of {sorted(VARIANTS)}, got {variant!r}")
    path = _WEIGHTS_DIR / VARIANTS[name]
    if not path.is_file():
        raise ValueError(f"variant: the weights file of {name!r} is missing from the package ({path})")
    return DAUN.load(path, scenario=Scenario(), device=device, dtype=dtype)



def load_or_train(config: TrainConfig, checkpoint: str | os.PathLike, *, force: bool = False,
                  progress: bool = True) -> tuple[DAUN, str]:
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
    if not isinstance(force, (bool, np.bool_)):
        raise ValueError(f"force: expected True or False, got {force!r}")
    checkpoint = Path(checkpoint)
    resume = not force
    if checkpoint.exists() and not force:
        try:
            cached = DAUN.load(checkpoint, scenario=Scenario())
            from .channel import simulate

            _check_resumable(_read_checkpoint(checkpoint)["meta"], checkpoint, config, Scenario(), cached.dtype_name,
                             fingerprint(simulate, name="simulate"))
        except ValueError as exc:
            warnings.warn(f"checkpoint {str(checkpoint)!r} is not used and will be overwritten: {exc}",
                          UserWarning, stacklevel=2)
            cached, resume = None, False
        if cached is not None and cached.n_layers == config.n_layers:
            return cached, f"cached checkpoint {checkpoint}"
    shipped = [name for name, rec in RECIPES.items() if rec == config]
    if shipped and not force:
        return load_pretrained(shipped[0]), f"shipped weights ({shipped[0]})"
    net = train(config, Scenario(), checkpoint=checkpoint, resume=resume, progress=progress)
    return net, f"trained now, checkpoint {checkpoint}"

# ---------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------
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
    for j, (name, label) in enumerate((("rho", r"$\rho^{(i)}$"), ("tau1", r"$\tau_1^{(i)}$"),
                                       ("tau2", r"$\tau_2^{(i)}$"))):
        line, = a1.semilogy(layers, p[name], "o-", ms=3, label=label)
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
