"""The package's shape: layers that import only downwards, no import cycle outside daun/, no module
importing another module's underscore names, modules a newcomer reads in one sitting, and the old
import paths of release 0.1 still working (with a DeprecationWarning where a module moved).

The layer table is the one of ``docs/design.md``; a new module gets a row here or the test says so.
"""

from __future__ import annotations

import ast
import importlib
import warnings
from pathlib import Path

import pytest

import daun_lib
from daun_lib import _compat

ROOT = Path(daun_lib.__file__).resolve().parent

#: Module-name prefix -> layer; the longest matching prefix decides.  Imports go from a layer to the
#: same or a lower one.  ``refine`` (Algorithm 1) sits with the paper's solvers: the network's own
#: ``DAUN.localize`` applies it, and it needs nothing above the model.
LAYERS: dict[str, int] = {
    # 0 plumbing that knows no Scenario
    "daun_lib._validation": 0,
    "daun_lib._io": 0,
    "daun_lib._json": 0,
    "daun_lib._devices": 0,
    "daun_lib._fingerprint": 0,
    "daun_lib._compat": 0,
    "daun_lib._memo": 0,  # a map shared among the methods of one sweep chunk
    # 1 the model
    "daun_lib": 1,  # the package facade: Scenario and the version
    "daun_lib.scenario": 1,
    "daun_lib.arrays": 1,
    "daun_lib._checks": 1,
    "daun_lib.channel": 1,
    "daun_lib.bounds": 1,
    "daun_lib.metrics": 1,
    "daun_lib.operators": 1,  # dense and structured (FFT) dictionary products
    "daun_lib._structured": 1,  # the FFT-plus-interpolation maths of operators
    # 2 the paper's solvers
    "daun_lib.admm": 2,
    "daun_lib._admm_kernels": 2,
    "daun_lib.reference": 2,
    "daun_lib.daun": 2,
    "daun_lib.refine": 2,
    # 3 readout maths and the readout registry
    "daun_lib.continuous": 3,
    "daun_lib._ml_cost": 3,  # the cost maths of continuous
    "daun_lib.posterior": 3,
    "daun_lib._posterior_grid": 3,  # the posterior maths of posterior
    "daun_lib.joint_ml": 3,
    "daun_lib._alternating_projection": 3,  # the criterion and alternating projection of joint_ml
    "daun_lib.peaks": 3,
    "daun_lib.readouts": 3,
    # 4 estimators and localisers
    "daun_lib.localizers": 4,
    "daun_lib.baselines": 4,
    "daun_lib.blockage": 4,
    "daun_lib.methods": 4,
    "daun_lib.multiuser": 4,
    # 5 the experiment engine
    "daun_lib.experiments": 5,
    # 6 the notebooks' back-ends
    "daun_lib.studies": 6,
}

#: Largest module, in lines (about 500: one sitting).
MAX_LINES = 520


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _layer(module: str) -> int:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len, default=None)
    if best is None:
        raise AssertionError(f"{module}: not in tests/test_layout.py LAYERS; give it a layer")
    return LAYERS[best]


def _imports(module: str, path: Path) -> list[tuple[str, str | None, int]]:
    """(imported package module, imported name or None, line) for every import, function-level included
    (a function-level import is a dependency too)."""
    is_pkg = path.name == "__init__.py"
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                target = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                full = f"{target}.{alias.name}"
                out.append((full, None, node.lineno) if full in MODULES else (target, alias.name, node.lineno))
        elif isinstance(node, ast.Import):
            out.extend((alias.name, None, node.lineno) for alias in node.names)
    return [(t, n, line) for t, n, line in out if t == "daun_lib" or t.startswith("daun_lib.")]


def _owner(target: str) -> str:
    while target not in MODULES:
        target = target.rpartition(".")[0]
    return target


GRAPH = {m: {(_owner(t), n, line) for t, n, line in _imports(m, p)} for m, p in MODULES.items()}


def test_every_module_has_a_layer():
    for module in MODULES:
        _layer(module)


def test_imports_only_go_downwards():
    upward = [
        f"{m} (layer {_layer(m)}) imports {t} (layer {_layer(t)}) at line {line}"
        for m, deps in GRAPH.items()
        for t, _, line in deps
        if t != m and _layer(t) > _layer(m)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycle_outside_daun():
    edges = {m: {t for t, _, _ in deps if t != m} for m, deps in GRAPH.items()}
    # a package's __init__ importing its own submodules (and being imported by them) is not a cycle worth naming
    for m in edges:
        edges[m] = {t for t in edges[m] if not (m.startswith(t + ".") and MODULES[t].name == "__init__.py")}
    cycles = []
    for start in edges:
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in edges[node]:
                if nxt == start and len(path) > 1:
                    cycles.append(path)
                elif nxt not in seen and nxt not in path:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
    outside = [c for c in cycles if not all(m.startswith("daun_lib.daun") for m in c)]
    assert not outside, outside[:3]


def test_no_module_imports_another_modules_underscore_names():
    private = [
        f"{m} imports {t}.{n} (line {line})"
        for m, deps in GRAPH.items()
        for t, n, line in deps
        if n and n.startswith("_") and not n.startswith("__") and t != m
    ]
    assert not private, "\n".join(private)


#: Modules still over the limit, with their size when listed: they may shrink, never grow, and the list
#: only shrinks (issue 20 stays open until it is empty).
KNOWN_OVERSIZE: dict[str, int] = {}


def test_modules_are_read_in_one_sitting():
    sizes = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in MODULES.items()}
    big = {m: n for m, n in sizes.items() if n > MAX_LINES and n > KNOWN_OVERSIZE.get(m, 0)}
    assert not big, big
    done = [m for m in KNOWN_OVERSIZE if sizes.get(m, 0) <= MAX_LINES]
    assert not done, f"{done} are within {MAX_LINES} lines now: remove them from KNOWN_OVERSIZE"


def test_top_level_is_taken_in_at_a_glance():
    public = sorted(p.stem for p in ROOT.glob("*.py") if not p.name.startswith("_"))
    assert len(public) <= 16, public


# ------------------------------------------------------------------------------------------------
# Release 0.1's import paths

OLD_PUBLIC_NAMES = [
    ("daun_lib.methods", "REGISTRY"),
    ("daun_lib.methods", "FIG2_METHODS"),
    ("daun_lib.methods", "PADMMLocalizer"),
    ("daun_lib.methods", "DAUNLocalizer"),
    ("daun_lib.methods", "localize"),
    ("daun_lib.multiuser", "MULTI_REGISTRY"),
    ("daun_lib.multiuser", "PeaksLocalizer"),
    ("daun_lib.multiuser", "SICLocalizer"),
    ("daun_lib.multiuser", "OMPLocalizer"),
    ("daun_lib.multiuser", "MultiLocalizer"),
    ("daun_lib.multiuser", "DAUNVariantLocalizer"),
    ("daun_lib.multiuser", "estimate_n_users"),
    ("daun_lib.multiuser", "noise_threshold"),
    ("daun_lib.multiuser", "joint_fit"),
    ("daun_lib.multiuser", "greedy_peaks"),
    ("daun_lib.multiuser", "conditional_cost"),
    ("daun_lib.multiuser", "check_n_users"),
    ("daun_lib.localizers", "Localizer"),
    ("daun_lib.localizers", "MapLocalizer"),
    ("daun_lib.localizers", "check_y"),
    ("daun_lib.localizers", "check_scenario"),
    ("daun_lib.localizers", "check_params"),
    ("daun_lib.localizers", "dictionaries"),
    ("daun_lib.readouts", "READOUTS"),
    ("daun_lib.readouts", "register_readout"),
    ("daun_lib.readouts", "get_readout"),
    ("daun_lib.readouts", "GridReadout"),
    ("daun_lib.readouts", "cell_centres"),
    ("daun_lib.readouts", "argmax_index"),
    ("daun_lib.baselines._common", "check_noise_floor"),
    ("daun_lib.baselines._common", "check_magnitudes"),
    ("daun_lib.baselines._common", "grid"),
    ("daun_lib.joint_ml", "joint_newton"),
    ("daun_lib.joint_ml", "multistart"),
    ("daun_lib.joint_ml", "alternating_projection"),
    ("daun_lib.continuous", "ml_localize"),
    ("daun_lib.posterior", "posterior_mean"),
    ("daun_lib.scenario", "steering"),
    ("daun_lib.scenario", "Scenario"),
    ("daun_lib.channel", "simulate"),
]


@pytest.mark.parametrize("module, name", OLD_PUBLIC_NAMES, ids=[f"{m}.{n}" for m, n in OLD_PUBLIC_NAMES])
def test_release_0_1_public_names_still_import(module, name):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # these did not move: no warning
        assert getattr(importlib.import_module(module), name) is not None


#: One public name of each moved module.
MOVED_NAMES = {
    "daun_lib.accuracy": "accuracy_rows",
    "daun_lib.channel_stats": "channel_statistics",
    "daun_lib.claims": "blockage_report",
    "daun_lib.convergence": "convergence_curves",
    "daun_lib.figures": "plot_accuracy",
    "daun_lib.geometry_study": "geometry_rows",
    "daun_lib.limits": "closest_report",
    "daun_lib.multiuser_study": "count_rows",
    "daun_lib.notebook_params": "check",
    "daun_lib.plotting": "save_figure",
    "daun_lib.run_notebooks": "run",
    "daun_lib.tables": "read_benchmark",
    "daun_lib.sionna_data": "simulate_sionna",
}


def test_the_moved_table_is_the_tested_one():
    assert set(MOVED_NAMES) == set(_compat.MOVED)


@pytest.mark.parametrize("old", sorted(MOVED_NAMES))
def test_moved_modules_forward_with_a_deprecation_warning(old):
    import sys

    sys.modules.pop(old, None)
    new = importlib.import_module(_compat.MOVED[old])
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {_compat.MOVED[old]}"):
        mod = importlib.import_module(old)
    name = MOVED_NAMES[old]
    if old == "daun_lib.sionna_data":  # the module imports without the optional extra; its names need none
        assert getattr(mod, name) is getattr(new, name)
        return
    assert getattr(mod, name) is getattr(new, name)
    # `from daun_lib import <old>` gives the forwarding module too
    assert getattr(importlib.import_module("daun_lib"), old.rpartition(".")[2]) is sys.modules[old]
