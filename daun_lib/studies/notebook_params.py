"""Checks of the notebooks' papermill parameters, done once, before any work.

Every numbered notebook declares its parameters in the cell tagged ``parameters``, one annotated assignment
per parameter (``n_trials: int = 1000  # comment``), and calls, in the cell right after it::

    from daun_lib import notebook_params
    params = notebook_params.check(globals())

:func:`check` raises a :class:`ValueError` that names the parameter and what was expected when

* a name was injected that the notebook does not declare (``-p n_trial 5``): the message suggests the closest
  declared name and lists all of them;
* a value has the wrong type for its declaration: a bool must be ``True`` or ``False`` (papermill's ``-p`` passes
  ``-p quick no`` as the *string* ``"no"``, which Python would read as true), an int an int, a list a list;
* a value is out of range: counts below 1, a negative seed, SNRs that are not finite, an unknown LoS model,
  method or DAUN variant (:data:`RULES`);
* an output folder (every parameter whose name ends in ``_dir``) is a file or cannot be written (``cache_dir``:
  only a file in the way counts, since a complete cache is read without writing).

How the injected names are found.  Papermill writes the values it injects into a new cell, tagged
``injected-parameters``, placed right after the ``parameters`` cell; its source starts with the line
``# Parameters`` followed by plain ``name = value`` assignments.  The kernel does not see cell tags, but IPython
keeps the source of every executed cell in its input history (``_ih`` in the notebook's namespace), so
:func:`injected_names` reads the names off the most recent such cell.  The declared names are the keys of the
namespace's ``__annotations__``, which the annotated assignments of the parameters cell fill in.  Scanning the
namespace for undeclared variables instead would also flag every variable that a later cell defines whenever the
notebook is rerun interactively; the history only holds what papermill injected.  Names starting with
``PAPERMILL_`` (papermill's ``--inject-paths``) are not parameters and are ignored.

:func:`check_values` holds the type and range checks without the kernel parts; :mod:`daun_lib.studies.run_notebooks` uses
it to check the parameters it is given against each notebook's declaration (``papermill.inspect_notebook``)
before it starts any notebook.
"""

from __future__ import annotations

import ast
import difflib
import math
import numbers
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

INJECTED_HEADER = "# Parameters"
"""First line of the cell papermill injects (its ``injected-parameters`` cell)."""

IGNORED_PREFIX = "PAPERMILL_"
"""Injected names with this prefix (``--inject-paths``) are not parameters."""

TYPE_NAMES: dict[str, type] = {
    "bool": bool,
    "int": int,
    "float": float,
    "str": str,
    "list": list,
    "tuple": tuple,
    "dict": dict,
}
"""Type names as ``papermill.inspect_notebook`` reports them (``inferred_type_name``) -> type."""

PAPERMILL_HINT = (
    "papermill's -p passes a value as text unless it reads True, False, None or a number; use -y for YAML values"
)


# ---------------------------------------------------------------------------
# writable output folders
# ---------------------------------------------------------------------------
def check_writable(path: str | os.PathLike, name: str) -> Path:
    """Check that ``path`` is a writable folder or can be created as one; returns it as a Path.

    :func:`daun_lib.experiments.check_writable` with ``directory=True``: the path must not be a file or lie below
    one, and a probe file must be creatable in the folder (or in its nearest existing ancestor).  No folder is
    created.

    Raises
    ------
    ValueError
        Naming ``name``: ``path`` is empty or not a path, is a file, lies below a file, or is not writable.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name: expected the argument name to report, got {name!r}")
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ValueError(f"{name}: expected a folder path, got {path!r}")
    from .. import experiments

    experiments.check_writable(path, name, directory=True)
    return Path(path)


# ---------------------------------------------------------------------------
# value rules by parameter name
# ---------------------------------------------------------------------------
def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _at_least(low: int) -> Callable[[Any, str], None]:
    def rule(v: Any, name: str) -> None:
        if v < low:
            raise ValueError(f"{name}: expected an integer >= {low}, got {v!r}")

    return rule


def _literal_iterations(v: Any, name: str) -> None:
    # the paper's literal steps grow the residual about 16-fold per iteration: float32 overflows at iteration 16
    if not 1 <= v <= 15:
        raise ValueError(
            f"{name}: expected an integer in [1, 15]; the literal setting (tau1 = tau2 = 0.5, rho = 5) "
            f"overflows float32 after 15 iterations and P-ADMM raises DivergenceError, got {v!r}"
        )


def _nonzero(v: Any, name: str) -> None:
    if v == 0:
        raise ValueError(f"{name}: expected a non-zero integer (-1: all cores), got {v!r}")


def _finite_numbers(v: Any, name: str) -> None:
    """A finite number, or a non-empty list of distinct finite numbers."""
    if not isinstance(v, (list, tuple)):
        if not _is_real(v) or not math.isfinite(v):
            raise ValueError(f"{name}: expected a finite number, got {v!r}")
        return
    if not v:
        raise ValueError(f"{name}: expected a non-empty list of numbers, got {v!r}")
    for x in v:
        if not _is_real(x) or not math.isfinite(x):
            raise ValueError(f"{name}: expected finite numbers, got {x!r} in {v!r}")
    if len(set(float(x) for x in v)) != len(v):
        raise ValueError(f"{name}: expected distinct values, got {v!r}")


def _range_db(v: Any, name: str) -> None:
    if len(v) != 2 or not all(_is_real(x) and math.isfinite(x) for x in v) or v[0] > v[1]:
        raise ValueError(f"{name}: expected [low, high] with finite low <= high (dB), got {v!r}")


def _los_model(v: Any, name: str) -> None:
    if isinstance(v, str) and v in ("always", "3gpp"):
        return
    try:
        p = float(v) if not isinstance(v, bool) else math.nan
    except (TypeError, ValueError):
        p = math.nan
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}: expected 'always', '3gpp' or a probability in [0, 1] such as '0.8', got {v!r}")


def _names_in(
    known: Callable[[], Iterable[str]], what: str, *, allow_empty: bool, extra: Sequence[str] = ()
) -> Callable[[Any, str], None]:
    def rule(v: Any, name: str) -> None:
        names = [v] if isinstance(v, str) else list(v)
        if not names and not allow_empty:
            raise ValueError(f"{name}: expected at least one name of {what}")
        valid = sorted(set(known()) | set(extra))
        for x in names:
            if not isinstance(x, str) or x not in valid:
                close = difflib.get_close_matches(str(x), valid, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"{name}: unknown name {x!r}{hint}; expected one of {valid}")
        if len(set(names)) != len(names):
            raise ValueError(f"{name}: duplicate names in {v!r}")

    return rule


def _registry() -> Iterable[str]:
    from ..methods import REGISTRY

    return REGISTRY


def _file_stem(v: Any, name: str) -> None:
    if not isinstance(v, str) or not v or not all(ch.isalnum() or ch in "_-" for ch in v):
        raise ValueError(f"{name}: expected a file name stem of letters, digits, '_' and '-', got {v!r}")


def _count_rules() -> Iterable[str]:
    from ..multiuser.count import RULES

    return RULES


def _multi_registry() -> Iterable[str]:
    from ..multiuser import MULTI_REGISTRY

    return MULTI_REGISTRY


def _user_counts(v: Any, name: str) -> None:
    if not isinstance(v, (list, tuple)) or not v or not all(_is_int(x) and 1 <= x <= 16 for x in v):
        raise ValueError(f"{name}: expected a non-empty list of user counts between 1 and 16, got {v!r}")
    if len(set(v)) != len(v):
        raise ValueError(f"{name}: expected distinct user counts, got {v!r}")


def _variants() -> Iterable[str]:
    from ..daun import VARIANTS

    return VARIANTS


def _recipes() -> Iterable[str]:
    from ..daun import RECIPES

    return RECIPES


def _solver(v: Any, name: str) -> None:
    if not v:
        return
    import cvxpy

    installed = cvxpy.installed_solvers()
    if v.upper() not in installed:
        raise ValueError(
            f"{name}: solver {v!r} is not installed; installed: {sorted(installed)} "
            "(empty: MOSEK if licensed, else Clarabel)"
        )


def _folder(v: Any, name: str) -> None:
    if not v.strip():
        raise ValueError(f"{name}: expected a folder path, got {v!r}")


RULES: dict[str, Callable[[Any, str], None]] = {
    "seed": _at_least(0),
    **{
        n: _at_least(1)
        for n in (
            "n_trials",
            "n_trials_blockage",
            "n_users",
            "n_samples",
            "n_layers",
            "admm_iterations",
            "n_batch",
            "n_single",
            "n_slow",
            "n_reference",
            "repeats",
            "n_timing",
            "count_max_users",
        )
    },
    "n_users_list": _user_counts,
    "mu_methods": _names_in(_multi_registry, "daun_lib.multiuser.MULTI_REGISTRY", allow_empty=False),
    "count_rules": _names_in(_count_rules, "daun_lib.multiuser.count.RULES", allow_empty=False),
    "power_spreads_db": _finite_numbers,
    "results_name": _file_stem,
    "literal_iterations": _literal_iterations,
    "n_jobs": _nonzero,
    "torch_threads": _at_least(0),
    "snr_db": _finite_numbers,
    "pure_los_snr_db": _finite_numbers,
    "snr_range_db": _range_db,
    "los_model": _los_model,
    "methods": _names_in(_registry, "daun_lib.methods.REGISTRY", allow_empty=False),
    "blockage_methods": _names_in(_registry, "daun_lib.methods.REGISTRY", allow_empty=True),
    "extra_methods": _names_in(_registry, "daun_lib.methods.REGISTRY", allow_empty=True),
    "variants": _names_in(_variants, "daun.VARIANTS", allow_empty=True),
    "variant": _names_in(_recipes, "daun.RECIPES", allow_empty=False, extra=("default",)),
    "reference_solver": _solver,
}
"""Range and choice checks by parameter name, applied after the type check to every notebook that declares
the name.  Every parameter whose name ends in ``_dir`` must be a writable folder (:func:`check_writable`), except
``cache_dir``, which must only be a folder or creatable (a complete cache is read without writing)."""


def _blockage_needs_methods(values: Mapping[str, Any], where: str) -> None:
    if values.get("blockage") is True and "blockage_methods" in values and not values["blockage_methods"]:
        raise ValueError(f"{where}blockage_methods: expected at least one method when blockage is True")


PAIR_RULES: list[Callable[[Mapping[str, Any], str], None]] = [_blockage_needs_methods]
"""Checks of parameters that depend on each other (applied when both are given)."""

EXTRA_TYPES: dict[str, tuple[type, ...]] = {"los_model": (numbers.Real,)}
"""Types accepted besides the declared one: ``los_model`` is declared a str, and ``-p los_model 0.8`` (a float)
means the same as ``"0.8"``."""


# ---------------------------------------------------------------------------
# the checks
# ---------------------------------------------------------------------------
def _type_of(annotation: Any, name: str) -> type:
    if isinstance(annotation, str):
        annotation = TYPE_NAMES.get(annotation, annotation)
    if not isinstance(annotation, type):
        raise ValueError(
            f"{name}: the parameters cell declares it with an unsupported annotation {annotation!r}; "
            f"expected one of {sorted(TYPE_NAMES)}"
        )
    return annotation


def _check_type(value: Any, kind: type, name: str) -> None:
    extra = EXTRA_TYPES.get(name, ())
    if extra and isinstance(value, extra) and not isinstance(value, bool):
        return
    got = f"the string {value!r}" if isinstance(value, str) else f"{value!r} ({type(value).__name__})"
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(
                f"{name}: expected True or False, got {got}; {PAPERMILL_HINT}: -p {name} True, or -y '{name}: true'"
            )
    elif kind is int:
        if not _is_int(value):
            raise ValueError(f"{name}: expected an integer, got {got}")
    elif kind is float:
        if not _is_real(value):
            raise ValueError(f"{name}: expected a number, got {got}")
    elif kind in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{name}: expected a list, got {got}; {PAPERMILL_HINT}: -y '{name}: [..., ...]'")
    elif not isinstance(value, kind):
        raise ValueError(f"{name}: expected {kind.__name__}, got {got}")


def check_names(names: Iterable[str], declared: Iterable[str], where: str = "", owner: str = "this notebook") -> None:
    """Raise ValueError naming the first of ``names`` that is not in ``declared``.

    The message suggests the closest declared name (``difflib``) and lists the declared ones (the parameters of
    ``owner``); ``where`` (e.g. the notebook's file name) prefixes it.
    """
    known = sorted(declared)
    for n in names:
        if n not in known:
            close = difflib.get_close_matches(str(n), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{where}{n}: unknown parameter{hint}; the parameters of {owner} are {known}")


def check_values(
    values: Mapping[str, Any], declared: Mapping[str, Any], *, where: str = "", base: str | os.PathLike | None = None
) -> dict[str, Any]:
    """Check parameter ``values`` against their declared types and :data:`RULES`; returns them as a dict.

    Parameters
    ----------
    values : mapping name -> value
        Every name must be declared.
    declared : mapping name -> type
        The declared type of each parameter: a type (``bool``, ``int``, ``float``, ``str``, ``list``, ``tuple``)
        or its name, as ``papermill.inspect_notebook`` reports it.
    where : str
        Prefix of the error messages (e.g. ``"03_fig2.ipynb: "``).
    base : path, optional
        Folder that relative ``*_dir`` paths are relative to (the notebook's folder); default the working folder.

    Raises
    ------
    ValueError
        Naming the parameter: unknown name, wrong type, value out of range, or an output folder that is a file
        or not writable.
    """
    if not isinstance(values, Mapping):
        raise ValueError(f"values: expected a mapping name -> value, got {type(values).__name__}")
    if not isinstance(declared, Mapping):
        raise ValueError(f"declared: expected a mapping name -> type, got {type(declared).__name__}")
    check_names(values, declared, where)
    out = {}
    for name, value in values.items():
        try:
            kind = _type_of(declared[name], name)
            _check_type(value, kind, name)
            rule = RULES.get(name)
            if rule is not None:
                rule(value, name)
            if name.endswith("_dir") and kind is str:
                _folder(value, name)
                folder = Path(base) / value if base is not None else Path(value)
                if name == "cache_dir":  # a complete cache is only read, so a read-only one is fine
                    from ..experiments.cache import check_cache_dir

                    check_cache_dir(folder)
                else:
                    check_writable(folder, name)
        except ValueError as exc:
            raise ValueError(f"{where}{exc}") from None
        out[name] = value
    for check_pair in PAIR_RULES:
        check_pair(out, where)
    return out


def injected_names(history: Sequence[str]) -> list[str]:
    """The names assigned in the most recent papermill-injected cell of an IPython input ``history``.

    A cell counts as injected when its first line is ``# Parameters`` (:data:`INJECTED_HEADER`) and it holds only
    plain assignments; names starting with ``PAPERMILL_`` are left out.  Empty when there is no such cell.
    """
    if isinstance(history, str) or not isinstance(history, Sequence):
        raise ValueError(f"history: expected the list of executed cell sources, got {type(history).__name__}")
    for source in reversed(history):
        if not isinstance(source, str) or source.split("\n", 1)[0].strip() != INJECTED_HEADER:
            continue
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        if not all(isinstance(s, ast.Assign) and all(isinstance(t, ast.Name) for t in s.targets) for s in tree.body):
            continue
        names = [t.id for s in tree.body for t in s.targets]
        return [n for n in dict.fromkeys(names) if not n.startswith(IGNORED_PREFIX)]
    return []


def check(
    namespace: Mapping[str, Any],
    *,
    declared: Mapping[str, Any] | None = None,
    injected: Iterable[str] | None = None,
    base: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Check a notebook's parameters; call it right after the parameters cell as ``check(globals())``.

    Parameters
    ----------
    namespace : mapping
        The notebook's global namespace (``globals()``).
    declared : mapping name -> type, optional
        The declared parameters; default the namespace's ``__annotations__`` (filled in by the annotated
        assignments of the parameters cell).
    injected : iterable of str, optional
        The names injected by papermill; default read from the IPython input history in the namespace
        (:func:`injected_names`; none when the namespace has no history).
    base : path, optional
        Folder that relative ``*_dir`` paths are relative to; default the working folder (the notebook's folder
        under papermill and Jupyter).

    Returns
    -------
    dict name -> value of every declared parameter.

    Raises
    ------
    ValueError
        An injected name that is not declared (with the closest declared name and the list of them), a declared
        parameter missing from the namespace, a wrong type, a value out of range (:data:`RULES`), or an output
        folder (``*_dir``) that is a file or not writable.  See the module docstring.
    """
    if not isinstance(namespace, Mapping):
        raise ValueError(f"namespace: expected the notebook's globals() (a dict), got {type(namespace).__name__}")
    if declared is None:
        declared = namespace.get("__annotations__") or {}
    if not isinstance(declared, Mapping) or not declared:
        raise ValueError(
            "declared: no declared parameters found; the parameters cell must annotate each one "
            "(n_trials: int = 1000  # comment) and run before this check"
        )
    if injected is None:
        history = namespace.get("_ih", namespace.get("In"))
        injected = injected_names(history) if isinstance(history, Sequence) and not isinstance(history, str) else []
    elif isinstance(injected, str):
        raise ValueError(f"injected: expected an iterable of names, got the string {injected!r}")
    check_names(list(injected), declared)
    missing = [n for n in declared if n not in namespace]
    if missing:
        raise ValueError(f"{missing[0]}: declared but not defined; run the parameters cell before this check")
    return check_values({n: namespace[n] for n in declared}, declared, base=base)
