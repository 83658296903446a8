"""Misuse audit: bad input, damaged files and resource traps against the public interface.

Every case does what a careless or hostile user would do and classifies what
the package did:

========== ====================================================================
outcome    meaning
========== ====================================================================
error      a ValueError (or the documented error type) whose message names the
           argument or the file (the keyword the case looks for)
warning    it ran, the answer is usable, and a warning named the problem
correct    it ran and the answer is right (checked against a clean run)
silent     it returned a wrong or unusable answer (NaN, a stale cached row, a
           damaged parameter) without an error or a warning
crash      it raised something that does not say what is wrong (an exception
           of another type, or a message without the keyword)
defect     a resource or hygiene failure (threads, memory, stray files,
           writing into a complete cache)
========== ====================================================================

Run it against any checkout of the package (the one first on ``sys.path``)::

    python benchmarks/misuse_audit.py --out results/misuse_audit.csv
    PYTHONPATH=/path/to/old/checkout python benchmarks/misuse_audit.py --out /tmp/before.csv

The summary line counts the cases by outcome.  ``results/misuse_audit.csv`` is this audit of the
current code; ``results/misuse_audit_before.csv`` is the same script run against commit 90e56d6,
the last one before the guarantees work (a checkout of it first on ``PYTHONPATH``).  The audit is not part of the
test suite: every case here has a test in ``tests/test_guarantees_*.py``.
"""

from __future__ import annotations

import argparse
import collections
import csv
import functools
import io
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

CASES: list[tuple[str, str, Callable[[Path], tuple[str, str]]]] = []
GOOD = ("error", "warning", "correct")


def case(area: str, name: str) -> Callable:
    def deco(fn: Callable[[Path], tuple[str, str]]) -> Callable:
        CASES.append((area, name, fn))
        return fn

    return deco


class Outcome(Exception):
    def __init__(self, outcome: str, detail: str = "") -> None:
        super().__init__(outcome)
        self.outcome, self.detail = outcome, detail


def attempt(fn: Callable[[], Any], keywords: tuple[str, ...] | str, errors: tuple = (ValueError,)) -> Any:
    """Run ``fn``; an exception ends the case (error when typed and named, crash otherwise).

    Returns ``(value, caught_warnings)`` when ``fn`` returns.
    """
    if isinstance(keywords, str):
        keywords = (keywords,)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = fn()
        except MemoryError as exc:
            raise Outcome("crash", f"MemoryError: {str(exc)[:120]}") from None
        except Exception as exc:  # noqa: BLE001 - classified below
            msg = f"{type(exc).__name__}: {exc}"
            named = any(k.lower() in str(exc).lower() for k in keywords)
            kind = "error" if isinstance(exc, errors) and named else "crash"
            raise Outcome(kind, msg.splitlines()[0][:200]) from None
    relevant = [w for w in caught if not issubclass(w.category, (DeprecationWarning, ResourceWarning))]
    return value, relevant


def warned(ws: list, keywords: tuple[str, ...] | str) -> bool:
    if isinstance(keywords, str):
        keywords = (keywords,)
    return any(any(k.lower() in str(w.message).lower() for k in keywords) for w in ws)


# ---------------------------------------------------------------------------
# shared data
# ---------------------------------------------------------------------------
@functools.cache
def batch(n: int = 6, snr: float = 10.0, seed: int = 11) -> Any:
    from daun_lib import Scenario, channel

    return channel.simulate(Scenario(), n, snr, seed=seed)


def dpd_method(scenario: Any, y: Any) -> np.ndarray:
    from daun_lib.methods import REGISTRY

    return REGISTRY["DPD"](scenario, y)


# ---------------------------------------------------------------------------
# Monte Carlo cache
# ---------------------------------------------------------------------------
def _sweep(methods: Any, cache: Path | None, simulate: Any = None, n_trials: int = 6) -> list[dict]:
    from daun_lib import Scenario, experiments

    kw = {} if simulate is None else {"simulate": simulate}
    return experiments.accuracy_sweep(
        methods, Scenario(), [10.0], n_trials, 5, cache_dir=cache, chunk_size=3, progress=False, **kw
    )


def _rows_equal(a: list[dict], b: list[dict]) -> bool:
    def key(r: dict) -> tuple:
        return tuple(np.round([r["mse"], r["p_submeter"], r["median_error"]], 12)) + (r["n_trials"],)

    return [key(r) for r in a] == [key(r) for r in b]


def _two_sweeps(tmp: Path, first: Any, second: Any, kind: str) -> tuple[str, str]:
    """Cache a sweep with ``first``, then run ``second`` on the same cache; compare with an uncached run."""
    cache = tmp / "cache"
    if kind == "simulate":
        attempt(lambda: _sweep(["DPD"], cache, first), ("simulate", "cache_key"))
        rows, _ = attempt(lambda: _sweep(["DPD"], cache, second), ("simulate", "cache_key"))
        fresh = _sweep(["DPD"], None, second)
    else:
        attempt(lambda: _sweep({"mine": first}, cache), ("mine", "cache_key"))
        rows, _ = attempt(lambda: _sweep({"mine": second}, cache), ("mine", "cache_key"))
        fresh = _sweep({"mine": second}, None)
    return ("correct", "second sweep recomputed") if _rows_equal(rows, fresh) else ("silent", "stale rows returned")


def _simulate_offset(scenario: Any, n: int, snr: float, seed: Any, offset: float) -> Any:
    from daun_lib import channel

    return channel.simulate(scenario, n, snr + offset, seed=seed)


@case("cache", "lambda generators that differ by an SNR offset")
def cache_lambda(tmp: Path) -> tuple[str, str]:
    from daun_lib import channel

    gens = [(lambda s, n, snr, seed, o=o: channel.simulate(s, n, snr + o, seed=seed)) for o in (0.0, -25.0)]
    return _two_sweeps(tmp, gens[0], gens[1], "simulate")


@case("cache", "functools.partial generators (all-LoS vs all-NLoS)")
def cache_partial(tmp: Path) -> tuple[str, str]:
    import dataclasses

    from daun_lib import channel

    def with_los(s: Any, n: int, snr: float, seed: Any, los: Any) -> Any:
        return channel.simulate(dataclasses.replace(s, los_model=los), n, snr, seed=seed)

    return _two_sweeps(tmp, functools.partial(with_los, los="always"), functools.partial(with_los, los=0.0), "simulate")


@case("cache", "another function under the same method name")
def cache_same_name(tmp: Path) -> tuple[str, str]:
    from daun_lib.methods import REGISTRY

    def first():
        def mine(s: Any, y: Any) -> Any:
            return REGISTRY["DPD"](s, y)

        return mine

    def second():
        def mine(s: Any, y: Any) -> Any:
            return REGISTRY["Stansfield"](s, y)

        return mine

    return _two_sweeps(tmp, first(), second(), "method")


def _damaged_chunk(tmp: Path, damage: Callable[[Path], None]) -> tuple[str, str]:
    cache = tmp / "cache"
    clean = _sweep(["DPD"], cache)
    chunk = sorted(cache.rglob("snr*.npz"))[0]
    damage(chunk)
    rows, ws = attempt(lambda: _sweep(["DPD"], cache), (chunk.name, "chunk", "cache"))
    if _rows_equal(rows, clean):
        return ("warning" if warned(ws, (chunk.name, "chunk")) else "correct"), "recomputed"
    return "silent", f"rows differ: {rows[0]} vs {clean[0]}"


def _rewrite(chunk: Path, change: Callable[[dict], None]) -> None:
    with np.load(chunk, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    change(arrays)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    chunk.write_bytes(buf.getvalue())


@case("cache", "truncated chunk file")
def cache_truncated(tmp: Path) -> tuple[str, str]:
    return _damaged_chunk(tmp, lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]))


@case("cache", "bit flip inside a chunk file's data")
def cache_bitflip(tmp: Path) -> tuple[str, str]:
    def flip(p: Path) -> None:
        data = bytearray(p.read_bytes())
        with np.load(p, allow_pickle=False) as f:
            target = f["errors"].tobytes()[:8]
        pos = bytes(data).find(target)
        data[pos + 6] ^= 0x10
        p.write_bytes(bytes(data))

    return _damaged_chunk(tmp, flip)


@case("cache", "readable chunk with NaN errors")
def cache_nan(tmp: Path) -> tuple[str, str]:
    return _damaged_chunk(tmp, lambda p: _rewrite(p, lambda a: a["errors"].__setitem__(0, np.nan)))


@case("cache", "readable chunk with a shortened errors array")
def cache_short(tmp: Path) -> tuple[str, str]:
    return _damaged_chunk(tmp, lambda p: _rewrite(p, lambda a: a.__setitem__("errors", a["errors"][:-1])))


@case("cache", "readable chunk with zeroed errors")
def cache_zeroed(tmp: Path) -> tuple[str, str]:
    return _damaged_chunk(tmp, lambda p: _rewrite(p, lambda a: a["errors"].__setitem__(slice(None), 0.0)))


@case("cache", "complete cache is not written again (read-only use)")
def cache_readonly(tmp: Path) -> tuple[str, str]:
    cache = tmp / "cache"
    _sweep(["DPD"], cache)
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in cache.rglob("*") if p.is_file()}
    time.sleep(0.01)
    _sweep(["DPD"], cache)
    after = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in cache.rglob("*") if p.is_file()}
    return ("correct", "nothing written") if before == after else ("defect", "files rewritten")


@case("cache", "method returning NaN positions")
def cache_nan_method(tmp: Path) -> tuple[str, str]:
    def nan_method(s: Any, y: Any) -> np.ndarray:
        return np.full((len(y), 2), np.nan)

    rows, ws = attempt(
        lambda: _sweep({"nanny": nan_method}, None), ("nanny", "non-finite", "nan"), errors=(ValueError, RuntimeError)
    )
    return ("warning", "warned") if warned(ws, ("nan", "non-finite")) else ("silent", f"row {rows[0]}")


@case("cache", "cache_dir that is a file")
def cache_dir_file(tmp: Path) -> tuple[str, str]:
    f = tmp / "afile"
    f.write_text("x")
    attempt(lambda: _sweep(["DPD"], f), "cache_dir")
    return "silent", "accepted"


# ---------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------
def _shipped() -> Path:
    from daun_lib import daun

    return daun.WEIGHTS_DIR / daun.VARIANTS["supervised"]


def _params(net: Any) -> dict:
    return {k: v.copy() for k, v in net.parameters_dict().items()}


def _load(path: Path, keywords: tuple[str, ...] = ("path", "checkpoint", "damaged")) -> Any:
    from daun_lib import Scenario, daun

    return attempt(lambda: daun.DAUN.load(path, scenario=Scenario()), keywords)[0]


def _bitflip_case(k: int, n_flips: int) -> Callable[[Path], tuple[str, str]]:
    def run(tmp: Path) -> tuple[str, str]:
        src = _shipped()
        data = bytearray(src.read_bytes())
        reference = _params(_load(src))
        pos = (k * 7919 * 8 + 3) % (len(data) * 8)
        data[pos // 8] ^= 1 << (pos % 8)
        p = tmp / "flipped.pt"
        p.write_bytes(bytes(data))
        net = _load(p)
        same = all(np.array_equal(reference[key], v) for key, v in _params(net).items())
        return (
            ("correct", f"bit {pos}: loaded, parameters unchanged")
            if same
            else ("silent", f"bit {pos}: loaded with changed parameters")
        )

    return run


for _k in range(24):
    case("checkpoint", f"single bit flip #{_k} in a copy of the shipped weights")(_bitflip_case(_k, 24))


def _data_flip_case(tensor: str, element: int, bit: int) -> Callable[[Path], tuple[str, str]]:
    """Flip one bit inside the stored bytes of a parameter tensor (the damage a zip reader does not see)."""

    def run(tmp: Path) -> tuple[str, str]:
        import torch

        src = _shipped()
        data = bytearray(src.read_bytes())
        state = torch.load(src, map_location="cpu", weights_only=True)["state_dict"]
        raw = state[tensor].contiguous().numpy().tobytes()
        start = bytes(data).find(raw)
        if start < 0:
            return "crash", f"audit: bytes of {tensor} not found in the file"
        item = state[tensor].element_size()
        pos = start + element * item + bit // 8
        data[pos] ^= 1 << (bit % 8)
        p = tmp / "flipped.pt"
        p.write_bytes(bytes(data))
        reference = _params(_load(src))
        net = _load(p)
        same = all(np.array_equal(reference[key], v) for key, v in _params(net).items())
        return (
            ("correct", "loaded, parameters unchanged")
            if same
            else ("silent", f"{tensor}[{element}] bit {bit}: loaded with changed parameters")
        )

    return run


for _t, _e, _b in (
    ("log_tau1", 3, 30),
    ("log_tau1", 0, 20),
    ("log_tau2", 5, 25),
    ("log_rho", 2, 29),
    ("log_rho", 9, 3),
    ("log_w", 1, 24),
    ("log_w", 3, 12),
    ("log_tau2", 8, 31),
):
    case("checkpoint", f"bit {_b} of {_t}[{_e}] flipped in the stored data")(_data_flip_case(_t, _e, _b))


def _crafted(tmp: Path, edit: Callable[[dict], None]) -> Path:
    import torch

    obj = torch.load(_shipped(), map_location="cpu", weights_only=True)
    edit(obj)
    # a crafter recomputes any stored digest with the library's own code when it can
    try:
        from daun_lib.daun import checkpoint_file

        if hasattr(checkpoint_file, "digest") and "digest" in obj:
            obj["digest"] = checkpoint_file.digest(obj)
    except Exception:  # noqa: BLE001
        pass
    p = tmp / "crafted.pt"
    torch.save(obj, p)
    return p


def _crafted_case(edit: Callable[[dict], None], keywords: tuple[str, ...]) -> Callable[[Path], tuple[str, str]]:
    def run(tmp: Path) -> tuple[str, str]:
        p = _crafted(tmp, edit)
        net = _load(p, keywords)
        return "silent", f"loaded: { {k: v[:3].tolist() for k, v in net.parameters_dict().items()} }"

    return run


def _set_state(name: str, value: Any) -> Callable[[dict], None]:
    def edit(obj: dict) -> None:
        obj["state_dict"][name] = value(obj["state_dict"][name])

    return edit


case("checkpoint", "crafted tau1 = 148")(
    _crafted_case(_set_state("log_tau1", lambda t: t.clone().fill_(float(np.log(148.0)))), ("tau1",))
)
case("checkpoint", "crafted rho = 5.5e34")(
    _crafted_case(_set_state("log_rho", lambda t: t.clone().fill_(float(np.log(5.5e34)))), ("rho",))
)
case("checkpoint", "integer parameter tensor")(
    _crafted_case(
        _set_state("log_tau2", lambda t: t.round().to(__import__("torch").int64)), ("log_tau2", "dtype", "tau2")
    )
)
case("checkpoint", "complex parameter tensor")(
    _crafted_case(_set_state("log_w", lambda t: t.to(__import__("torch").complex64)), ("log_w", "dtype", "w"))
)


@case("checkpoint", "crafted n_layers = 10**9 (memory-capped subprocess)")
def ckpt_layers(tmp: Path) -> tuple[str, str]:
    def edit(obj: dict) -> None:
        obj["meta"]["n_layers"] = 10**9

    p = _crafted(tmp, edit)
    return _capped(
        f"from daun_lib import daun, Scenario; daun.DAUN.load({str(p)!r}, scenario=Scenario())", ("n_layers",)
    )


@case("checkpoint", "crafted 3000 x 3000 grid in the stored scenario (memory-capped subprocess)")
def ckpt_grid(tmp: Path) -> tuple[str, str]:
    def edit(obj: dict) -> None:
        obj["meta"]["scenario"]["grid_shape"] = [3000, 3000]
        obj["meta"]["shape"]["K"] = 9_000_000

    p = _crafted(tmp, edit)
    return _capped(f"from daun_lib import daun; daun.DAUN.load({str(p)!r})", ("grid", "size", "K"))


def _capped(code: str, keywords: tuple[str, ...], limit_gb: float = 6.0) -> tuple[str, str]:
    import resource

    def cap() -> None:
        lim = int(limit_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, preexec_fn=cap, timeout=300)
    if proc.returncode == 0:
        return "silent", "loaded"
    last = (proc.stderr.strip().splitlines() or [""])[-1]
    named = last.startswith("ValueError") and any(k.lower() in last.lower() for k in keywords)
    return ("error" if named else "crash"), last[:200]


@case("checkpoint", "weights of another geometry of the same size (moved BSs) into Scenario()")
def ckpt_geometry(tmp: Path) -> tuple[str, str]:
    from daun_lib import Scenario, daun

    moved = Scenario(bs_positions=((-60.0, -50.0), (-50.0, 60.0), (50.0, 50.0), (50.0, -50.0)))
    net = daun.DAUN(2, scenario=moved)
    p = tmp / "moved.pt"
    net.save(p)
    attempt(lambda: daun.DAUN.load(p, scenario=Scenario()), ("bs_positions", "geometry", "scenario", "dictionar"))
    return "silent", "loaded into another geometry"


@case("checkpoint", "weights of user dictionaries of another geometry into Scenario()")
def ckpt_user_dicts(tmp: Path) -> tuple[str, str]:
    from daun_lib import Scenario, daun

    moved = Scenario(bs_positions=((-60.0, -50.0), (-50.0, 60.0), (50.0, 50.0), (50.0, -50.0)))
    A, B = moved.dictionaries()
    net = daun.DAUN.from_dictionaries(A, B, 2, grid=moved.grid)
    p = tmp / "user.pt"
    net.save(p)
    attempt(lambda: daun.DAUN(2, scenario=Scenario()).load_weights(p), ("geometry", "dictionar", "scenario"))
    return "silent", "loaded into another geometry"


def _resume_case(change: str) -> Callable[[Path], tuple[str, str]]:
    def run(tmp: Path) -> tuple[str, str]:
        import dataclasses

        from daun_lib import Scenario, daun

        cfg = daun.TrainConfig(n_layers=1, samples_per_layer=14, n_val=14, max_epochs=1, seed=3)
        small = Scenario(grid_shape=(6, 6), n_angles=20, n_antennas=16)
        ck = tmp / "train.pt"
        daun.train(cfg, small, ck, progress=False)
        cfg2 = dataclasses.replace(cfg, n_layers=2)
        kw: dict[str, Any] = {}
        scen = small
        if change == "los_model":
            scen = dataclasses.replace(small, los_model="3gpp")
        elif change == "carrier_hz":
            scen = dataclasses.replace(small, carrier_hz=28e9)
        elif change == "dtype":
            kw["dtype"] = "float64"
        elif change == "simulate":
            kw["simulate"] = functools.partial(_simulate_offset, offset=-20.0)
        attempt(lambda: daun.train(cfg2, scen, ck, progress=False, **kw), (change, "checkpoint"))
        return "silent", f"resumed with another {change}"

    return run


for _change in ("los_model", "carrier_hz", "dtype", "simulate"):
    case("checkpoint", f"training resume with a changed {_change}")(_resume_case(_change))


# ---------------------------------------------------------------------------
# numerics
# ---------------------------------------------------------------------------
def _padmm(**kw: Any) -> Any:
    from daun_lib import Scenario, admm

    A, B = Scenario().dictionaries()
    params = admm.default_params(A, B).as_kwargs()
    params.update(kw)
    return admm.solve(A, B, batch().y, **params)


def _padmm_case(keywords: tuple[str, ...], **kw: Any) -> Callable[[Path], tuple[str, str]]:
    def run(tmp: Path) -> tuple[str, str]:
        res, ws = attempt(lambda: _padmm(**kw), keywords)
        finite = bool(np.isfinite(res.X).all())
        if finite:
            return ("warning", "finite, warned") if warned(ws, keywords) else ("correct", "finite")
        return ("warning", "non-finite but warned") if warned(ws, keywords) else ("silent", "NaN X, no warning")

    return run


case("numerics", "P-ADMM with the paper's literal tau1 = tau2 = 0.5, rho = 5")(
    _padmm_case(("tau", "bound", "diverg", "non-finite"), tau1=0.5, tau2=0.5, rho=5.0, iterations=50)
)
case("numerics", "P-ADMM with rho = 1e300")(_padmm_case(("rho",), rho=1e300, iterations=20))
case("numerics", "P-ADMM with rho = 1e-300")(_padmm_case(("rho",), rho=1e-300, iterations=20))


@case("numerics", "P-ADMM with w = 'a'")
def padmm_w(tmp: Path) -> tuple[str, str]:
    attempt(lambda: _padmm(w="a", iterations=2), "w")
    return "silent", "accepted"


@case("numerics", "P-ADMM with iterations = 10**9")
def padmm_iters(tmp: Path) -> tuple[str, str]:
    return _capped(
        "from daun_lib import Scenario, admm, channel\n"
        "A, B = Scenario().dictionaries(); b = channel.simulate(Scenario(), 2, 10.0, seed=1)\n"
        "admm.solve(A, B, b.y, iterations=10**9, **admm.default_params(A, B).as_kwargs())",
        ("iterations",),
    )


for _dev in ("cuda", "foo"):

    def _device_case(tmp: Path, dev: str = _dev) -> tuple[str, str]:
        import torch

        if dev == "cuda" and torch.cuda.is_available():
            return "correct", "CUDA present: nothing to check"
        attempt(lambda: _padmm(iterations=2, device=dev), "device")
        return "silent", "accepted"

    case("numerics", f"P-ADMM on device={_dev!r} (no such device)")(_device_case)

    def _daun_device_case(tmp: Path, dev: str = _dev) -> tuple[str, str]:
        import torch

        from daun_lib import daun

        if dev == "cuda" and torch.cuda.is_available():
            return "correct", "CUDA present: nothing to check"
        attempt(lambda: daun.load_pretrained(device=dev), "device")
        return "silent", "accepted"

    case("numerics", f"load_pretrained(device={_dev!r}) (no such device)")(_daun_device_case)


@case("numerics", "srl.noise_bound(0)")
def srl_bound(tmp: Path) -> tuple[str, str]:
    from daun_lib.baselines import srl

    v, _ = attempt(lambda: srl.noise_bound(0), "n_antennas")
    return ("correct", str(v)) if np.isfinite(v) and v > 0 else ("silent", f"returned {v}")


@case("numerics", "all-zero y (no signal) through DPD")
def zero_y(tmp: Path) -> tuple[str, str]:
    from daun_lib import Scenario
    from daun_lib.methods import REGISTRY

    y = np.zeros_like(batch().y)
    out, ws = attempt(lambda: REGISTRY["DPD"](Scenario(), y), "y")
    return ("warning", "warned") if warned(ws, "y") else ("silent", f"positions {out[0]}")


def _scale_case(method: str, scale: float) -> Callable[[Path], tuple[str, str]]:
    def run(tmp: Path) -> tuple[str, str]:
        from daun_lib import Scenario
        from daun_lib.methods import REGISTRY

        b = batch(4, 10.0, 21)
        ref = REGISTRY[method](Scenario(), b.y)
        out, ws = attempt(lambda: REGISTRY[method](Scenario(), b.y * scale), ("y", "scale"))
        out = np.asarray(out, dtype=float)
        if out.shape == ref.shape and np.isfinite(out).all() and np.allclose(out, ref, rtol=0, atol=1e-6):
            return "correct", "same positions"
        change = np.nanmax(np.abs(out - ref)) if np.isfinite(out).any() else "NaN"
        if np.isfinite(out).all() and warned(ws, ("noise power", "other units")):
            return "warning", f"read as another SNR (warned); max position change {change}"
        return "silent", f"max position change {change}"

    return run


_METHODS = ("DAUN", "DAUN-R", "DAUN-S", "P-ADMM", "DPD", "DPD-S", "Stansfield", "SRL", "VB", "MM")
for _m in _METHODS:
    for _s in (1e-25, 1e18):
        case("numerics", f"{_m} on y x {_s:g} (scale invariance)")(_scale_case(_m, _s))


# ---------------------------------------------------------------------------
# geometry and data
# ---------------------------------------------------------------------------
def _geometry_case(kw: dict, keywords: tuple[str, ...]) -> Callable[[Path], tuple[str, str]]:
    def run(tmp: Path) -> tuple[str, str]:
        from daun_lib import Scenario

        _, ws = attempt(lambda: Scenario(**kw), keywords)
        return ("warning", "warned") if warned(ws, keywords) else ("silent", "accepted without a word")

    return run


case("geometry", "BSs above and below the area at (0, +-50) (array axes cross the area)")(
    _geometry_case({"bs_positions": ((0.0, 50.0), (0.0, -50.0))}, ("axis", "ambigu", "mirror", "identif"))
)
case("geometry", "paper BSs plus one at (0, 50)")(
    _geometry_case(
        {"bs_positions": ((-50.0, -50.0), (-50.0, 50.0), (50.0, 50.0), (50.0, -50.0), (0.0, 50.0))},
        ("axis", "ambigu", "mirror"),
    )
)
case("geometry", "n_antennas = 1")(_geometry_case({"n_antennas": 1}, ("n_antennas",)))
case("geometry", "coincident BSs")(
    _geometry_case(
        {"bs_positions": ((-50.0, -50.0), (-50.0, -50.0), (50.0, 50.0), (50.0, -50.0))},
        ("coincid", "same position", "duplicate"),
    )
)
case("geometry", "all BSs at one position")(
    _geometry_case(
        {"bs_positions": ((-50.0, -50.0), (-50.0, -50.0))}, ("coincid", "same position", "usable", "duplicate")
    )
)


@case("geometry", "simulate(snr_db=1e4)")
def sim_snr(tmp: Path) -> tuple[str, str]:
    from daun_lib import Scenario, channel

    b, _ = attempt(lambda: channel.simulate(Scenario(), 2, 1e4, seed=0), "snr_db")
    return ("correct", "finite") if np.isfinite(b.y).all() else ("silent", "non-finite y")


# ---------------------------------------------------------------------------
# resources and files
# ---------------------------------------------------------------------------
def _peak_rss_mb(code: str) -> float:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            code + "\nimport resource;print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out.split()[-1])


@case("resources", "simulate: extra memory per sample (n = 20000 vs 2000)")
def mem_simulate(tmp: Path) -> tuple[str, str]:
    tmpl = "from daun_lib import Scenario, channel\nb = channel.simulate(Scenario(), {n}, 10.0, seed=0)"
    small, big = _peak_rss_mb(tmpl.format(n=2000)), _peak_rss_mb(tmpl.format(n=20000))
    per = (big - small) * 1024 / 18000  # KiB per sample
    out_kib = 4 * 50 * 16 / 1024
    detail = f"{per:.1f} KiB/sample (output y itself {out_kib:.1f})"
    return ("correct", detail) if per < 3 * out_kib else ("defect", detail)


@case("resources", "DAUN-R: extra memory per sample (n = 4096 vs 512)")
def mem_daunr(tmp: Path) -> tuple[str, str]:
    tmpl = (
        "from daun_lib import Scenario, channel; from daun_lib.methods import REGISTRY\n"
        "b = channel.simulate(Scenario(), {n}, 10.0, seed=0)\n"
        "import resource, gc; gc.collect(); base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "REGISTRY['DAUN-R'](Scenario(), b.y)"
    )
    small, big = _peak_rss_mb(tmpl.format(n=512)), _peak_rss_mb(tmpl.format(n=4096))
    per = (big - small) * 1024 / (4096 - 512)
    out_kib = 4 * 50 * 16 / 1024 + 2 * 8 / 1024
    detail = f"{per:.1f} KiB/sample (input y + output {out_kib:.1f})"
    return ("correct", detail) if per < 3 * out_kib + 2 else ("defect", detail)


@case("resources", "torch threads inside loky workers")
def worker_threads(tmp: Path) -> tuple[str, str]:
    def threads(s: Any, y: Any) -> np.ndarray:
        import torch

        if torch.get_num_threads() != 1:
            raise RuntimeError(f"worker ran with {torch.get_num_threads()} torch threads")
        return dpd_method(s, y)

    threads.cache_key = "threads-probe"
    from daun_lib import Scenario, experiments

    try:
        experiments.accuracy_sweep(
            {"threads": threads},
            Scenario(),
            [10.0],
            4,
            0,
            cache_dir=None,
            chunk_size=2,
            n_jobs=2,
            backend="loky",
            progress=False,
        )
    except RuntimeError as exc:
        return "defect", str(exc).splitlines()[0][:160]
    return "correct", "one thread per worker"


@case("files", "KeyboardInterrupt while a figure is saved")
def figure_interrupt(tmp: Path) -> tuple[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from daun_lib.studies import plotting

    fig, ax = plt.subplots()
    ax.plot([0, 1])
    real = fig.savefig

    def interrupted(*a: Any, **k: Any) -> None:
        real(*a, **k)
        raise KeyboardInterrupt

    fig.savefig = interrupted
    try:
        plotting.save_figure(fig, "probe", tmp / "figs")
    except KeyboardInterrupt:
        pass
    plt.close(fig)
    left = sorted(p.name for p in (tmp / "figs").iterdir()) if (tmp / "figs").exists() else []
    return ("defect", f"left {left}") if any("tmp" in name for name in left) else ("correct", "nothing left")


@case("files", "write_csv into a folder that is a file")
def csv_file(tmp: Path) -> tuple[str, str]:
    from daun_lib import experiments

    (tmp / "res").write_text("x")
    attempt(lambda: experiments.write_csv([{"a": 1}], tmp / "res" / "x.csv"), "path")
    return "silent", "accepted"


def _papermill_case(params: list[str], keywords: tuple[str, ...]) -> Callable[[Path], tuple[str, str]]:
    def run(tmp: Path) -> tuple[str, str]:
        root = Path(__file__).resolve().parent.parent
        nb = root / "notebooks" / "01_scenario_and_channel.ipynb"
        base = [
            "-p",
            "quick",
            "True",
            "-p",
            "results_dir",
            str(tmp / "r"),
            "-p",
            "figures_dir",
            str(tmp / "f"),
            "-p",
            "n_users",
            "40",
        ]
        cmd = [
            sys.executable,
            "-m",
            "papermill",
            str(nb),
            str(tmp / "out.ipynb"),
            "--cwd",
            str(nb.parent),
            "-k",
            "python3",
            *base,
            *params,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        text = proc.stdout + proc.stderr
        if proc.returncode == 0:
            return (
                ("warning", "ran, papermill warned")
                if any(k in text for k in keywords) and "Passed unknown" in text
                else ("silent", "ran to the end")
            )
        named = "ValueError" in text and any(k in text for k in keywords)
        return ("error" if named else "crash"), (text.strip().splitlines() or [""])[-1][:200]

    return run


case("notebooks", "papermill parameter with a typo (-p n_user 5)")(_papermill_case(["-p", "n_user", "5"], ("n_user",)))
case("notebooks", "bool parameter given as a string (-p quick no)")(_papermill_case(["-p", "quick", "no"], ("quick",)))
case("notebooks", "int parameter given as text (-p n_users abc)")(
    _papermill_case(["-p", "n_users", "abc"], ("n_users",))
)


@case("notebooks", "run_notebooks --out pointing at a file")
def out_file(tmp: Path) -> tuple[str, str]:
    f = tmp / "afile"
    f.write_text("x")
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "daun_lib.studies.run_notebooks",
            "--out",
            str(f),
            str(root / "notebooks" / "01_scenario_and_channel.ipynb"),
            "--quick",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    text = proc.stdout + proc.stderr
    if proc.returncode == 0:
        return "silent", "ran"
    named = "--out" in text or "out:" in text
    return ("error" if named and "Traceback" not in text else "crash"), text.strip().splitlines()[-1][:200]


# ---------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="results/misuse_audit.csv", help="CSV of the cases and their outcomes")
    parser.add_argument("--only", default="", help="run only the cases whose area or name contains this text")
    args = parser.parse_args(argv)
    import daun_lib

    print(f"daun_lib from {Path(daun_lib.__file__).parent}", flush=True)
    rows = []
    for area, name, fn in CASES:
        if args.only and args.only not in area and args.only not in name:
            continue
        tmp = Path(tempfile.mkdtemp(prefix="misuse-"))
        start = time.perf_counter()
        try:
            outcome, detail = fn(tmp)
        except Outcome as o:
            outcome, detail = o.outcome, o.detail
        except Exception as exc:  # noqa: BLE001 - an audit bug or an unexpected failure: record it
            outcome, detail = "crash", f"audit: {type(exc).__name__}: {exc}"
            traceback.print_exc()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        rows.append(
            {
                "area": area,
                "case": name,
                "outcome": outcome,
                "good": outcome in GOOD,
                "detail": detail.replace("\n", " "),
                "seconds": round(time.perf_counter() - start, 2),
            }
        )
        print(f"{outcome:8s} {area:11s} {name}: {detail[:110]}", flush=True)
    counts = collections.Counter(r["outcome"] for r in rows)
    good = sum(r["good"] for r in rows)
    print(
        f"{len(rows)} cases: "
        + ", ".join(
            f"{k} {counts[k]}" for k in ("error", "warning", "correct", "silent", "crash", "defect") if counts[k]
        )
        + f"; good {good}, bad {len(rows) - good}"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
