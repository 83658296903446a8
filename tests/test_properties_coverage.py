"""Issue 24: every function a public module lists in ``__all__`` is in the property tables or exempted here.

A public module is any ``daun_lib`` module or subpackage with no underscore in its path below ``daun_lib``
that defines ``__all__``.  A function (a plain function or an ``lru_cache`` wrapper; classes and
constants are not functions) counts by identity, so a re-export is covered by its original's row.  It
is covered by

* a row of ``TABLE`` (``tests/test_properties_api.py``) or ``TABLE2`` (``tests/test_properties_table2.py``):
  a row's name lists the functions it calls, ``"module.f / g / other.h"`` (``g`` in ``module``);
* an entry of :data:`ELSEWHERE`: a module (prefix) whose functions another test file exercises; a
  function counts only when one of the named files mentions its name, so an entry cannot cover a
  function no test names;
* an entry of :data:`EXEMPT`, one function with the reason it has no row.

Stale entries (an exempted function that is gone, or that now has a row) fail too.
"""

from __future__ import annotations

import importlib
import inspect
import re
from functools import cache
from pathlib import Path

import pytest
from test_properties_api import TABLE
from test_properties_table2 import TABLE2

import daun_lib

ROOT = Path(daun_lib.__file__).resolve().parent
TESTS = Path(__file__).resolve().parent

#: Row-name prefixes that are not ``daun_lib.<prefix>``.
ALIASES = {
    "dpd": "daun_lib.baselines.dpd",
    "mm": "daun_lib.baselines.mm",
    "vb": "daun_lib.baselines.vb",
    "srl": "daun_lib.baselines.srl",
    "stansfield": "daun_lib.baselines.stansfield",
    "bearings": "daun_lib.baselines.bearings",
    "tables": "daun_lib.channel.tables",
    "sionna": "daun_lib.channel.sionna",
    "arguments": "daun_lib.experiments.arguments",
    "keys": "daun_lib.experiments.keys",
    "training": "daun_lib.daun.training",
    "checkpoints": "daun_lib.daun.checkpoints",
    "checkpoint_file": "daun_lib.daun.checkpoint_file",
    "config": "daun_lib.daun.config",
    "DAUN": "daun_lib.daun.DAUN",
}

#: Original module (prefix) -> (test files, why these functions have no row).  Only the functions whose
#: names those files mention are covered; the others need a row or an :data:`EXEMPT` entry.
ELSEWHERE: dict[str, tuple[tuple[str, ...], str]] = {
    "daun_lib.studies": (
        ("test_figures.py", "test_limits.py", "test_geometry_study.py", "test_multiuser_study.py", "test_notebooks.py")
        + ("test_notebook_code.py", "test_experiments.py", "test_docs.py", "test_schedule.py", "test_geometry_3d.py")
        + ("test_count_study.py",),
        "study drivers, tables and figures: they run whole sweeps or draw; tested on small sweeps there",
    ),
    "daun_lib.experiments": (
        (
            "test_experiments.py",
            "test_guarantees_experiments.py",
            "test_experiments_multiuser.py",
            "test_notebook_code.py",
        ),
        "sweeps, caches and CSV files: they need folders and runs, tested with both there",
    ),
    "daun_lib.daun.losses": (("test_daun.py", "test_daun_multiuser.py"), "training losses of a DAUN and a batch"),
    "daun_lib.daun.plotting": (("test_daun.py", "test_figures.py"), "figures of a trained network"),
    "daun_lib.daun.checkpoints": (("test_guarantees_checkpoints.py", "test_daun.py"), "needs a version-1 file"),
    "daun_lib._admm_kernels": (
        ("test_admm.py", "test_operators.py", "test_daun.py"),
        "the ADMM layer's kernels (re-exported by admm for the network), on torch tensors and operators",
    ),
    "daun_lib.admm": (("test_admm.py", "test_operators.py"), "the helpers of admm.solve (which has a row)"),
    "daun_lib._alternating_projection": (("test_joint_ml.py", "test_multiuser.py"), "joint_fit's building blocks"),
    "daun_lib._ml_cost": (("test_continuous.py", "test_joint_ml.py"), "ml_localize's cost and steps"),
    "daun_lib.channel": (
        ("test_channel.py", "test_channel_3d.py", "test_channel_pure_los.py", "test_channel_multiuser.py"),
        "the 38.901 simulator's stages (simulate, which has a row, runs them all)",
    ),
    "daun_lib.posterior": (
        ("test_posterior.py", "test_posterior_sharing.py", "test_blockage.py"),
        "the posterior's parts",
    ),
    "daun_lib.reference": (("test_reference.py",), "cvxpy reference solves (seconds each)"),
    "daun_lib.peaks": (("test_multiuser.py", "test_readouts_continuous.py"), "multi-user readout steps"),
    "daun_lib.multiuser": (("test_multiuser.py",), "multi-user localisers and counting"),
    "daun_lib.methods": (
        ("test_localizers.py", "test_guarantees_numerics.py", "test_baselines.py"),
        "the registry's front ends",
    ),
    "daun_lib.localizers": (("test_localizers.py", "test_contract.py"), "the localiser interface"),
    "daun_lib._checks": (("test_localizers.py", "test_contract.py", "test_admm.py"), "argument checks"),
    "daun_lib.operators": (("test_operators.py",), "operator plumbing of admm.solve"),
    "daun_lib.arrays": (("test_scenario.py", "test_geometry_3d.py", "test_guarantees_geometry.py"), "array model"),
    "daun_lib.bounds": (("test_bounds.py", "test_bounds_multiuser.py"), "the bounds' parts and the multi-user CRB"),
}

#: One function -> why it has neither a row nor a test file above that names it.
EXEMPT: dict[str, str] = {
    "daun_lib.peaks.relax": "the ap-relax readout's search on trusted inputs (DPD-peaks-APR / DAUN-MU-APR entries; "
    "tests/test_multiuser_count.py)",
    "daun_lib.peaks.check_suppression": "the check of greedy_peaks' suppression_m (its row refuses -1)",
    "daun_lib.multiuser.count.per_bs_statistics": "a step of estimate_n_users (row); daun_lib/multiuser is in flux",
    # argument checks that name their caller's argument: a row would test the caller, whose rows do
    "daun_lib._checks.check_n_users": "every multi-user entry's n_users refusals (tests/test_properties_api.py)",
    "daun_lib.admm.check_problem": "admm.solve's A, B, y, w checks (its row)",
    "daun_lib.arrays.check_identifiable": "Scenario's identifiability check (the Scenario row's bs_positions case)",
    # internal stages exported for the modules that compose them, reached only through their caller's row
    "daun_lib._ml_cost.sine_geometry": "a step of the ML costs (continuous.newton_ml, joint_ml rows)",
    "daun_lib._ml_cost.unit_scale_exponent": "a step of joint_ml.joint_fit (row)",
    "daun_lib.channel.rays.ray_sines": "a stage of channel.simulate (row)",
    "daun_lib.channel.rays.sample_blocks": "a stage of channel.simulate (row)",
    "daun_lib.channel.rays.sum_rays": "a stage of channel.simulate (row)",
    "daun_lib.channel.rays.used_slots": "a stage of channel.simulate (row)",
    "daun_lib.daun.losses.loss_ce_paper": "run by name through TrainConfig(loss=...) and training.train (row)",
    "daun_lib.daun.losses.loss_nmse": "run by name through TrainConfig(loss=...) and training.train (row)",
    "daun_lib.daun.losses.loss_softargmax": "run by name: TrainConfig(loss='softargmax') in tests/test_daun.py",
    "daun_lib.experiments.arguments.default_simulate": "accuracy_sweep's default simulate (tests/test_experiments.py)",
    "daun_lib.experiments.arguments.resolve_methods": "accuracy_sweep's methods check (tests/test_experiments.py)",
    "daun_lib.experiments.cache.prepare_folder": "accuracy_sweep's cache folder (tests/test_guarantees_experiments.py)",
    "daun_lib.refine.two_means": "refine's 2-means step (Algorithm 1, lines 1-10) on the magnitudes refine checked "
    "(row refine.refine; tests/test_refine_metrics.py)",
    "daun_lib.operators.split": "the DAUN constructor's dictionary split (the DAUN and training.train rows)",
    "daun_lib.reference.clear_cache": "empties reference.get_problem's cache; nothing to check on random input",
    # study helpers exported for the notebooks: run through the study drivers their modules' tests call
    **{
        f"daun_lib.studies.{name}": "a helper of its module's study driver, run in the notebooks' tests"
        for name in (
            "accuracy.accuracy_params",
            "accuracy.by_method",
            "accuracy.fig2_methods",
            "accuracy.weights_hash",
            "channel_stats.los_probability_rows",
            "convergence.convergence_rows",
            "convergence.held_out_samples",
            "figures.legend_below",
            "figures.plot_limits",
            "figures.plot_ratio",
            "plotting.is_reference",
            "plotting.panel_curves",
            "tables.time_reference",
        )
    },
}


def _resolve(path: str):
    """The object at a dotted path: the longest importable module, then attributes."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(path)


def _modules() -> list[str]:
    names = []
    for file in sorted(ROOT.rglob("*.py")):
        parts = file.relative_to(ROOT.parent).with_suffix("").parts
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        if not any(p.startswith("_") for p in parts[1:]):
            names.append(".".join(parts))
    return names


def _key(obj) -> str:
    obj = inspect.unwrap(obj)
    return f"{obj.__module__}.{obj.__qualname__}"


@cache
def public_functions() -> dict[str, list[str]]:
    """Original dotted name -> where it is listed (``module.name``), for every function of a public ``__all__``."""
    out: dict[str, list[str]] = {}
    for name in _modules():
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", ()):
            obj = getattr(module, attr)
            if inspect.isfunction(inspect.unwrap(obj)) if callable(obj) and not inspect.isclass(obj) else False:
                out.setdefault(_key(obj), []).append(f"{name}.{attr}")
    return out


def row_targets(row_name: str) -> list[str]:
    """The dotted paths a row's name lists: ``"m.f / g / n.h"`` -> m.f, m.g, n.h (``m`` resolved by ALIASES)."""
    out, prefix = [], None
    for piece in (p.strip() for p in row_name.split("/")):
        if "." in piece:
            prefix, piece = piece.rsplit(".", 1)
        base = ALIASES.get(prefix, f"daun_lib.{prefix}") if prefix else "daun_lib"
        out.append(f"{base}.{piece}")
    return out


@cache
def covered_by_rows() -> set[str]:
    return {_key(_resolve(t)) for row in TABLE + TABLE2 for t in row_targets(row.name) if callable(_resolve(t))}


@cache
def _test_text(file: str) -> str:
    return (TESTS / file).read_text()


def named_in(files: tuple[str, ...], function: str) -> bool:
    word = re.compile(rf"\b{re.escape(function.rsplit('.', 1)[1])}\b")
    return any(word.search(_test_text(f)) for f in files)


def covered_elsewhere(function: str) -> bool:
    return any(
        (function == prefix or function.startswith(prefix + ".")) and named_in(files, function)
        for prefix, (files, _) in ELSEWHERE.items()
    )


def test_every_public_function_has_a_row_or_an_exemption():
    rows = covered_by_rows()
    missing = [
        f"{f} (listed as {', '.join(where)})"
        for f, where in sorted(public_functions().items())
        if f not in rows and f not in EXEMPT and not covered_elsewhere(f)
    ]
    assert not missing, "add a row to TABLE2 or an exemption for:\n" + "\n".join(missing)


def test_every_row_name_resolves_to_public_callables():
    for row in TABLE + TABLE2:
        for target in row_targets(row.name):
            assert callable(_resolve(target)), (row.name, target)


def test_the_exemptions_are_live():
    functions, rows = public_functions(), covered_by_rows()
    for name in EXEMPT:
        assert name in functions, f"EXEMPT names {name}, which no public __all__ lists"
        assert name not in rows, f"{name} has a row now: drop its EXEMPT entry"
    for prefix, (files, reason) in ELSEWHERE.items():
        assert reason and all((TESTS / f).is_file() for f in files), prefix
        assert any(covered_elsewhere(f) and f not in rows for f in functions), f"ELSEWHERE {prefix} covers nothing"


def test_the_check_sees_a_function_without_a_row(monkeypatch):
    """A function added to a public ``__all__`` with no row, test or exemption makes the first test fail."""
    import daun_lib.blockage as blockage

    def unlisted_probe_function():  # pragma: no cover - never called
        return None

    monkeypatch.setattr(blockage, "unlisted_probe_function", unlisted_probe_function, raising=False)
    monkeypatch.setattr(blockage, "__all__", [*blockage.__all__, "unlisted_probe_function"])
    public_functions.cache_clear()
    try:
        with pytest.raises(AssertionError, match="unlisted_probe_function"):
            test_every_public_function_has_a_row_or_an_exemption()
    finally:
        public_functions.cache_clear()
