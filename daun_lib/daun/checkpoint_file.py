"""The DAUN checkpoint file: its record, integrity digest, dictionary sketch and the checks
that need no network.

A checkpoint is a ``torch.save`` dict ``{"format": CHECKPOINT_FORMAT,
"format_version": CHECKPOINT_VERSION, "meta": {...}, "state_dict": {...},
"digest": "..."}``.  ``state_dict`` holds the ``3 I + M`` learned numbers
(``log_rho``, ``log_tau1``, ``log_tau2`` (I,), ``log_w`` (M,)) and ``w_min``
(); ``meta`` holds plain Python values only (numbers, strings, lists, dicts),
so the file loads with ``torch.load(..., weights_only=True)``.

The digest is a SHA-256 of the format tag, the version, all metadata and every
state tensor's name, dtype, shape and bytes (``torch.load`` does not check the
zip CRCs, so a flipped bit would otherwise load as a different network).

The dictionary sketch is ``U^H A_m V`` (and the same for ``B_m``) with fixed
unit-modulus pseudo-random probes ``U`` (N, 4) and ``V`` (K, 4) plus the
Frobenius norm of every ``A_m``: a difference ``D`` in ``A_m`` changes it by
about ``||D||_F`` (relative tolerance :data:`SKETCH_TOLERANCE`, far above the
float32/float64 round-off, far below any change of geometry that matters).

:func:`read_checkpoint` checks everything a file declares before anything
large is built; the checks that need the network's own dictionaries (the
sketch, the step bounds) are in :mod:`daun_lib.daun.checkpoints`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import numbers
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import atomic_write_bytes
from ..scenario import DICTIONARY_FIELDS as _SCENARIO_DICTIONARY_FIELDS
from ..scenario import Scenario

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "DICTIONARY_FIELDS",
    "MAX_LAYERS",
    "MAX_DICTIONARY_ENTRIES",
    "MAX_BS",
    "MAX_CHECKPOINT_BYTES",
    "STEP_BOUND",
    "MIN_STEP_RATIO",
    "PARAMETER_RANGE",
    "SKETCH_TOLERANCE",
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
#: number of layers and training takes some steps beyond it, so the bound leaves
#: a wide margin above the shipped networks' ratios (the tests check a factor 5)
#: while refusing steps such as tau1 = 1 for the default scenario (ratio 121),
#: which ruin the localisation.
STEP_BOUND = 50.0
#: Smallest step ratio ``tau ||.||^2`` accepted (a zero step freezes X).
MIN_STEP_RATIO = 1e-12
#: Range accepted for ``rho`` and ``w_m`` (and upper bound of ``w_min``).
PARAMETER_RANGE = (1e-12, 1e12)
#: Relative tolerance of the dictionary sketch comparison (float32 round-off: ~1e-7).
SKETCH_TOLERANCE = 1e-5

STATE_KEYS = ("log_rho", "log_tau1", "log_tau2", "log_w", "w_min")
SKETCH_METHOD = "phase-probes-4x4"


# ---------------------------------------------------------------------------
# plain records
# ---------------------------------------------------------------------------
def plain(value: Any) -> Any:
    """Tuples/lists/numpy scalars -> plain Python types (for weights_only checkpoints)."""
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (numbers.Integral, np.integer)):
        return int(value)
    if isinstance(value, (numbers.Real, np.floating)):
        return float(value)
    return value


def scenario_fields(scenario: Scenario) -> dict[str, Any]:
    return {f.name: plain(getattr(scenario, f.name)) for f in dataclasses.fields(scenario)}


def scenario_from_fields(fields: dict[str, Any]) -> Scenario:
    kw = dict(fields)
    if "bs_positions" in kw:
        kw["bs_positions"] = tuple(tuple(p) for p in kw["bs_positions"])
    if "grid_shape" in kw:
        kw["grid_shape"] = tuple(kw["grid_shape"])
    known = {f.name for f in dataclasses.fields(Scenario)}
    return Scenario(**{k: v for k, v in kw.items() if k in known})


def same(a: Any, b: Any) -> bool:
    a, b = plain(a), plain(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-12)
        except (TypeError, ValueError):
            return False
    return a == b


def library_version() -> str:
    """``daun_lib.__version__`` (from a source tree: the pyproject version + "+source")."""
    from .. import __version__

    return __version__


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


# ---------------------------------------------------------------------------
# digest
# ---------------------------------------------------------------------------
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


def digest(obj: dict[str, Any]) -> str:
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


# ---------------------------------------------------------------------------
# dictionary sketch
# ---------------------------------------------------------------------------
def _probes(seed: int, rows: int, cols: int) -> np.ndarray:
    """(rows, cols) unit-modulus complex numbers with pseudo-random phases; the same on every
    platform and numpy version (the PCG64 bit stream is fixed)."""
    raw = np.random.PCG64(seed).random_raw(rows * cols)
    phase = (raw >> np.uint64(11)).astype(np.float64) * (2.0 * np.pi / 2.0**53)
    return np.exp(1j * phase).reshape(rows, cols)


def sketch(D: np.ndarray, seed: int) -> dict[str, Any]:
    """Shape, per-BS Frobenius norms and per-BS ``U^H D_m V`` (4 x 4) of a dictionary D (M, N, P)."""
    D = np.asarray(D, dtype=np.complex128)
    M, N, P = D.shape
    U, V = _probes(seed, N, 4), _probes(seed + 1, P, 4)
    S = np.einsum("na,mnp,pb->mab", U.conj(), D, V)
    return {
        "shape": [M, N, P],
        "fro": np.linalg.norm(D.reshape(M, -1), axis=1).tolist(),
        "re": S.real.reshape(M, -1).tolist(),
        "im": S.imag.reshape(M, -1).tolist(),
    }


def grid_sketch(grid: np.ndarray) -> dict[str, Any]:
    g = np.asarray(grid, dtype=np.float64)
    V = _probes(7, g.shape[0], 4).real
    return {"shape": list(g.shape), "fro": float(np.linalg.norm(g)), "s": (g.T @ V).reshape(-1).tolist()}


def sketch_difference(stored: dict[str, Any], mine: dict[str, Any], what: str, per_bs: bool) -> str | None:
    """Why two sketches differ (None when they agree within :data:`SKETCH_TOLERANCE`)."""
    if list(stored.get("shape", [])) != list(mine["shape"]):
        return f"{what} has shape {stored.get('shape')} in the checkpoint but {mine['shape']} here"
    if per_bs:
        for m, fro in enumerate(mine["fro"]):
            old = np.asarray(stored["re"][m], float) + 1j * np.asarray(stored["im"][m], float)
            new = np.asarray(mine["re"][m]) + 1j * np.asarray(mine["im"][m])
            rel = max(abs(float(stored["fro"][m]) - fro), float(np.sqrt(np.mean(np.abs(old - new) ** 2)))) / max(
                fro, 1e-300
            )
            if not rel <= SKETCH_TOLERANCE:
                return (
                    f"{what} of BS {m} differs from the checkpoint's (relative difference {rel:.2g}): the "
                    f"weights were trained for another geometry (BS positions, array orientations, grid, "
                    f"angles or antenna spacing)"
                )
        return None
    old, new = np.asarray(stored["s"], float), np.asarray(mine["s"])
    scale = max(mine["fro"], 1e-300)
    rel = max(abs(float(stored["fro"]) - mine["fro"]), float(np.sqrt(np.mean((old - new) ** 2)))) / scale
    if not rel <= SKETCH_TOLERANCE:
        return f"{what} differs from the checkpoint's (relative difference {rel:.2g})"
    return None


# ---------------------------------------------------------------------------
# checks that need no network
# ---------------------------------------------------------------------------
def checkpoint_error(path: Any, why: str) -> ValueError:
    return ValueError(f"path: {str(path)!r} {why}")


def _check_int(value: Any, lo: int, hi: float, what: str, path: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not lo <= value <= hi:
        raise checkpoint_error(
            path, f"is not a valid DAUN checkpoint: {what} is {value!r}, expected an integer in [{lo}, {hi:g}]"
        )
    return int(value)


def _scenario_sizes(fields: dict[str, Any], path: Any) -> dict[str, int]:
    """M, N, K, L of a stored scenario record, read without building anything."""
    try:
        M = len(fields["bs_positions"])
        N = fields["n_antennas"]
        nx, ny = fields["grid_shape"]
        L = fields["n_angles"]
    except (KeyError, TypeError, ValueError) as exc:
        raise checkpoint_error(path, f"has a damaged scenario record ({type(exc).__name__}: {exc})") from exc
    out = {}
    for key, v in (("M", M), ("N", N), ("nx", nx), ("ny", ny), ("L", L)):
        out[key] = _check_int(v, 1, MAX_DICTIONARY_ENTRIES, f"scenario size {key}", path)
    out["K"] = out.pop("nx") * out.pop("ny")
    return out


def _check_sizes(shape: dict[str, int], path: Any) -> None:
    entries = shape["M"] * shape["N"] * (shape["K"] + shape["L"])
    if entries > MAX_DICTIONARY_ENTRIES:
        raise checkpoint_error(
            path,
            f"declares dictionaries of M N (K + L) = {entries:.3g} complex entries "
            f"(M={shape['M']}, N={shape['N']}, K={shape['K']}, L={shape['L']}), above the limit "
            f"MAX_DICTIONARY_ENTRIES = {MAX_DICTIONARY_ENTRIES:.3g}; refusing to build them",
        )


def _check_state(state: dict[str, Any], n_layers: int, n_bs: int, path: Any) -> None:
    """Keys, dtypes, shapes, finiteness and ranges of a checkpoint's tensors (steps: see _check_steps)."""
    keys = set(state)
    if keys != set(STATE_KEYS):
        raise checkpoint_error(
            path, f"is not a valid DAUN checkpoint: state_dict keys {sorted(keys)}, expected {sorted(STATE_KEYS)}"
        )
    shapes = {"log_rho": (n_layers,), "log_tau1": (n_layers,), "log_tau2": (n_layers,), "log_w": (n_bs,), "w_min": ()}
    values = {}
    for name in STATE_KEYS:
        t = state[name]
        if (
            not isinstance(t, torch.Tensor)
            or t.dtype not in (torch.float32, torch.float64)
            or t.layout != torch.strided
        ):
            raise checkpoint_error(
                path,
                f"is not a valid DAUN checkpoint: {name} is "
                f"{getattr(t, 'dtype', type(t).__name__)} ({getattr(t, 'layout', '')}), expected a "
                f"dense float32 or float64 tensor",
            )
        if tuple(t.shape) != shapes[name]:
            raise checkpoint_error(
                path,
                f"is not a valid DAUN checkpoint: {name} has shape {tuple(t.shape)}, expected "
                f"{shapes[name]} (n_layers = {n_layers}, M = {n_bs})",
            )
        v = t.detach().cpu().double()
        if not bool(torch.isfinite(v).all()):
            raise checkpoint_error(path, f"is not a valid DAUN checkpoint: {name} is not finite")
        values[name] = v
    lo, hi = PARAMETER_RANGE
    w_min = float(values["w_min"])
    if not 0.0 <= w_min <= hi:
        raise checkpoint_error(path, f"holds w_min = {w_min:.3g}, expected 0 <= w_min <= {hi:g}")
    for name, v in (("rho", values["log_rho"].exp()), ("w", w_min + values["log_w"].exp())):
        bad = ~((v >= lo) & (v <= hi))
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise checkpoint_error(
                path,
                f"holds {name}[{i}] = {float(v[i]):.3g}, outside the accepted range PARAMETER_RANGE = [{lo:g}, {hi:g}]",
            )


def read_checkpoint(path: str | os.PathLike, *, allow_v1: bool = False) -> dict[str, Any]:
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
        raise checkpoint_error(
            path,
            f"is {size} bytes, larger than any DAUN checkpoint (limit MAX_CHECKPOINT_BYTES = {MAX_CHECKPOINT_BYTES})",
        )
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
        raise checkpoint_error(
            path,
            "is a version-1 DAUN checkpoint: it carries no integrity digest, so damage to it "
            "cannot be detected, and this library reads version 2 only; if you trust the file, "
            "convert it with daun_lib.daun.upgrade_checkpoint(path, new_path)",
        )
    if version != CHECKPOINT_VERSION and not (allow_v1 and version == 1):
        raise checkpoint_error(
            path, f"has checkpoint format version {version!r}, this library reads version {CHECKPOINT_VERSION}"
        )
    meta, state = obj.get("meta"), obj.get("state_dict")
    if not isinstance(meta, dict) or not isinstance(state, dict):
        raise checkpoint_error(path, "is a damaged DAUN checkpoint (no meta or state_dict)")
    if version == CHECKPOINT_VERSION:
        stored = obj.get("digest")
        try:
            actual = digest(obj)
        except (ValueError, TypeError, RuntimeError) as exc:
            raise checkpoint_error(path, f"is damaged: its contents cannot be digested ({exc})") from exc
        if not isinstance(stored, str) or stored != actual:
            raise checkpoint_error(
                path,
                "is damaged: digest mismatch (the file changed after it was written: a flipped "
                "bit, a truncated copy or an edit); refusing to load it",
            )
        for key in ("n_layers", "shape", "dtype", "dictionaries"):
            if key not in meta:
                raise checkpoint_error(path, f"is not a valid DAUN checkpoint (meta lacks {key!r})")
    for key in ("n_layers", "shape"):
        if key not in meta:
            raise checkpoint_error(path, f"is a damaged DAUN checkpoint (meta lacks {key!r})")
    n_layers = _check_int(meta["n_layers"], 1, MAX_LAYERS, "n_layers", path)
    shape = meta["shape"]
    if not isinstance(shape, dict):
        raise checkpoint_error(path, f"is not a valid DAUN checkpoint: shape is {shape!r}")
    shape = {
        k: _check_int(shape.get(k), 1, MAX_BS if k == "M" else MAX_DICTIONARY_ENTRIES, f"shape[{k!r}]", path)
        for k in "MNKL"
    }
    _check_sizes(shape, path)
    scen = meta.get("scenario")
    if scen is not None:
        if not isinstance(scen, dict):
            raise checkpoint_error(path, f"has a damaged scenario record ({type(scen).__name__})")
        sizes = _scenario_sizes(scen, path)
        if sizes != shape:
            raise checkpoint_error(
                path,
                f"is not a valid DAUN checkpoint: its scenario has sizes {sizes} but its shape record says {shape}",
            )
    if meta.get("dtype", "float32") not in ("float32", "float64") or meta.get("normalize", True) is not True:
        raise checkpoint_error(
            path, f"is not a valid DAUN checkpoint: dtype {meta.get('dtype')!r}, normalize {meta.get('normalize')!r}"
        )
    _check_state(state, n_layers, shape["M"], path)
    return obj
