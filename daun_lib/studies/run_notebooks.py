"""Execute the numbered notebooks with papermill.

Usage::

    python -m daun_lib.studies.run_notebooks [--quick] [-p NAME VALUE ...] --out BUILD_DIR notebooks/01_*.ipynb ...

Each notebook runs in its own folder (so ``../results`` and ``../figures``
resolve against the repository) with the Jupyter kernel ``python3``, and the
executed copy is written to ``BUILD_DIR/<name>.ipynb``.  With ``--quick`` the
runner injects ``quick=True`` and points ``results_dir`` and ``figures_dir``
(and ``cache_dir`` when a notebook declares it) into ``BUILD_DIR``, so a quick
run never overwrites the committed paper-scale results.  The wall time of each
notebook and the total are printed; the exit status is non-zero when a
notebook fails.

``-p NAME VALUE`` (repeatable; VALUE read by :func:`parse_value`) injects a parameter into
every notebook that declares it.  Before the first notebook starts, the runner
checks ``--out`` (not a file, writable), that every given name is declared by
at least one notebook (``papermill.inspect_notebook``), and every injected
value against its notebook's declaration with
:func:`daun_lib.studies.notebook_params.check_values`; each notebook checks its
parameters again in its first cell after the parameters
(:func:`daun_lib.studies.notebook_params.check`), which also covers runs with
papermill directly.

The kernel ``python3`` must run this environment's Python: ``make install``
installs ipykernel into the environment, whose own ``python3`` kernelspec
(``<venv>/share/jupyter/kernels``) has the plain command ``python``, which
resolves to the interpreter that runs this module (no user-level kernelspec
is written).  The runner also puts the folder that holds
:mod:`daun_lib` first on the kernel's ``PYTHONPATH``, so the notebooks import
the same package as the runner, installed or not.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from . import _schedule
from ._schedule import Executor, NotebookError

KERNEL_NAME = "python3"
"""Kernel used for every notebook (the committed kernelspec)."""


def _check_kernel(kernel_name: str) -> None:
    """Raise NotebookError with a fix when the kernel is not installed; warn when it runs another Python."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel as exc:
        raise NotebookError(
            f"kernel {kernel_name!r} not found: run `make install` (it installs ipykernel, whose kernelspec "
            f"{kernel_name!r} runs this environment's Python), or `{sys.executable} -m pip install ipykernel`"
        ) from exc
    exe = spec.argv[0] if spec.argv else ""
    plain = {"python", f"python{sys.version_info[0]}", f"python{sys.version_info[0]}.{sys.version_info[1]}"}
    same_env = Path(os.path.abspath(exe)).parent == Path(os.path.abspath(sys.executable)).parent
    if exe not in plain and not same_env:
        print(
            f"warning: kernel {kernel_name!r} runs {exe}, not {sys.executable}; run `make install` "
            "to register this environment's Python",
            file=sys.stderr,
        )


def declared_parameters(notebook: str | os.PathLike) -> dict[str, str]:
    """The parameters that ``notebook`` declares in its ``parameters`` cell: name -> type name (``"int"``, ...).

    Read with ``papermill.inspect_notebook``; empty when the notebook has no parameters cell.
    """
    return {name: type_name for name, (type_name, _) in _inspect(Path(notebook)).items()}


def _inspect(notebook: Path) -> dict[str, tuple[str, Any]]:
    """name -> (type name, default value) of the parameters cell; a default that is not a literal is None."""
    import ast

    import papermill as pm

    out = {}
    for name, p in pm.inspect_notebook(str(notebook)).items():
        try:
            default = ast.literal_eval(p.get("default") or "None")
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            default = None
        out[name] = (p.get("inferred_type_name") or "None", default)
    return out


def notebook_parameters(
    notebook: Path,
    out: Path,
    quick: bool,
    parameters: Mapping[str, Any] | None = None,
    declared: Mapping[str, str] | None = None,
) -> dict:
    """The parameters to inject into ``notebook``, checked against its declaration.

    At paper scale only the given ``parameters`` that the notebook declares are injected; with ``quick``,
    ``quick=True`` and ``results_dir``/``figures_dir`` (and ``cache_dir`` when declared) in the build folder
    ``out`` as well (explicit ``parameters`` take precedence).

    Parameters
    ----------
    notebook : path
        The ``.ipynb`` file.
    out : path
        The build folder.
    quick : bool
        Quick mode.
    parameters : mapping name -> value, optional
        Parameters for every notebook that declares them.
    declared : mapping name -> type name, optional
        The notebook's declared parameters; default :func:`declared_parameters`.

    Raises
    ------
    ValueError
        A quick run of a notebook that does not declare ``quick``, ``results_dir`` and ``figures_dir`` (a quick run
        must not write to the committed results), or a value that fails
        :func:`daun_lib.studies.notebook_params.check_values` (type, range, output folder).
    """
    from . import notebook_params

    notebook = Path(notebook)
    if declared is None:
        declared = declared_parameters(notebook)
    params: dict[str, Any] = {}
    if quick:
        missing = [n for n in ("quick", "results_dir", "figures_dir") if n not in declared]
        if missing:
            raise ValueError(
                f"notebooks: {notebook.name} does not declare {missing} in its parameters cell; a quick "
                "run needs them to keep its outputs in the build folder"
            )
        params = {
            "quick": True,
            "results_dir": str((Path(out) / "results").resolve()),
            "figures_dir": str((Path(out) / "figures").resolve()),
        }
        if "cache_dir" in declared:
            params["cache_dir"] = str((Path(out) / "cache").resolve())
    params.update({k: v for k, v in (parameters or {}).items() if k in declared})
    return notebook_params.check_values(params, declared, where=f"{notebook.name}: ", base=notebook.resolve().parent)


def _plain(value: Any, name: str) -> Any:
    """``value`` as papermill can write it into a cell (tuples become lists); ValueError for anything else."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v, name) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _plain(v, name) for k, v in value.items()}
    raise ValueError(
        f"parameters: {name} must be a plain Python value (bool, int, float, str, list, dict), "
        f"got {type(value).__module__}.{type(value).__name__}"
    )


def _check_parameters(parameters: Any) -> dict[str, Any]:
    if parameters is None:
        return {}
    if not isinstance(parameters, Mapping):
        raise ValueError(f"parameters: expected a dict name -> value, got {type(parameters).__name__}")
    out = {}
    for name, value in parameters.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"parameters: expected parameter names (identifiers), got {name!r}")
        out[name] = _plain(value, name)
    return out


def run(
    notebooks: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    quick: bool = False,
    *,
    parameters: Mapping[str, Any] | None = None,
    kernel_name: str = KERNEL_NAME,
    log_output: bool = False,
    progress_bar: bool = False,
    verbose: bool = True,
    jobs: int | None = None,
    force: bool = False,
    executor: Executor | None = None,
) -> dict[str, float]:
    """Execute ``notebooks`` with papermill on ``jobs`` parallel streams; stop at the first failure.

    Parameters
    ----------
    notebooks : sequence of paths
        ``.ipynb`` files; each runs with its own folder as working directory, in its own kernel process.
    out : path
        Build folder for the executed copies, ``timings.json`` and ``stamps/`` (and, with ``quick``, for the
        results, figures and cache of the run).
    quick : bool
        Inject ``quick=True`` and redirect ``results_dir``/``figures_dir``
        (and ``cache_dir`` if declared) into ``out``.
    parameters : dict name -> value, optional
        Injected into every notebook that declares the name; a name that no
        notebook declares is an error.
    kernel_name : str
        Jupyter kernel (``"python3"``).
    log_output : bool
        Echo the cells' output while running.
    progress_bar : bool
        Papermill's per-cell progress bar.
    verbose : bool
        Print one line per start, finish and skip, with the elapsed time and an estimate of what is left.
    jobs : int, optional
        Parallel streams; default the number of usable cores (``os.sched_getaffinity``).  Every notebook
        but the run-alone ones gets one OpenMP/BLAS thread (:data:`daun_lib.studies._schedule.SINGLE_THREAD_ENV`),
        whatever ``jobs``.
    force : bool
        Run every notebook, up to date or not.
    executor : callable, optional
        ``executor(task, cancel)`` instead of papermill in a child process (for tests).

    Returns
    -------
    dict notebook file name -> wall seconds, for the notebooks that ran (not those up to date)

    Raises
    ------
    ValueError
        No notebooks, a path that is not an existing ``.ipynb`` file, an
        ``out`` that is a file or not writable, a parameter that no notebook
        declares or whose value fails its notebook's checks
        (:mod:`daun_lib.studies.notebook_params`), a quick run of a notebook that
        does not declare ``quick``, ``results_dir`` and ``figures_dir``, a bad ``jobs`` or bad ``"daun"``
        marks (:func:`daun_lib.studies._schedule.notebook_marks`, a cycle of ``after``).
        All of this is checked before the first notebook starts.
    NotebookError
        The kernel is missing, or a notebook failed (the message names the
        executed copy in ``out``, which shows the failing cell).
    """
    paths = [Path(nb) for nb in notebooks]
    if not paths:
        raise ValueError("notebooks: expected at least one notebook")
    for p in paths:
        if p.suffix != ".ipynb" or not p.is_file():
            raise ValueError(f"notebooks: not an existing .ipynb file: {os.fspath(p)!r}")
    if len({p.stem for p in paths}) != len(paths):
        raise ValueError("notebooks: two notebooks with the same name")
    if not isinstance(quick, bool):
        raise ValueError(f"quick: expected True or False, got {quick!r}")
    if not isinstance(kernel_name, str) or not kernel_name:
        raise ValueError(f"kernel_name: expected a Jupyter kernel name, got {kernel_name!r}")
    jobs = usable_cores() if jobs is None else jobs
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs: expected a whole number >= 1, got {jobs!r}")
    from . import notebook_params

    notebook_params.check_writable(out, "out")
    user = _check_parameters(parameters)
    if quick and "quick" in user:
        raise ValueError("parameters: quick is set by the quick flag (--quick / quick=True); do not give it as well")
    out_dir = Path(out).resolve()
    inspected = {nb: _inspect(nb) for nb in paths}
    declared = {nb: {n: t for n, (t, _) in inspected[nb].items()} for nb in paths}
    every = set().union(*declared.values())
    notebook_params.check_names(user, every, owner="these notebooks")
    timings = _schedule.load_timings(out_dir / "timings.json")
    tasks = []
    for nb in paths:
        params = notebook_parameters(nb, out_dir, quick, user, declared[nb])
        marks = _schedule.notebook_marks(nb)
        folders = {}
        for name in ("results_dir", "figures_dir"):
            value = params.get(name, inspected[nb].get(name, (None, None))[1])
            if isinstance(value, str):
                folders[name] = (nb.resolve().parent / value).resolve()
        res = folders.get("results_dir", nb.resolve().parent)
        tasks.append(
            _schedule.Task(
                path=nb,
                target=out_dir / nb.name,
                params=params,
                out_dirs=tuple(folders.values()),
                run_alone=marks["run_alone"],
                after=tuple(marks["after"]),
                reads=tuple(res / r for r in marks["reads"]),
                estimate=_schedule.estimate(nb.stem, timings),
            )
        )
    _schedule.check_order(tasks)
    if executor is None:
        _check_kernel(kernel_name)
        root = str(Path(__file__).resolve().parents[2])
        executor = _schedule.subprocess_executor(kernel_name, log_output, progress_bar, root)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"out: cannot create the folder {os.fspath(out_dir)!r}: {exc}") from exc
    environment = _schedule.environment_digest()
    flags = {"quick": quick, "kernel": kernel_name}
    if verbose:
        cores = f"{jobs} stream{'s' if jobs > 1 else ''}"
        print(
            f"running {len(tasks)} notebook{'s' if len(tasks) != 1 else ''}{', quick' if quick else ''} on {cores} into {out_dir}",
            flush=True,
        )
    times = _schedule.run_tasks(
        tasks,
        out_dir,
        jobs,
        executor,
        digest=lambda t: _schedule.input_digest(t, flags, environment),
        log=(lambda line: print(line, flush=True)) if verbose else (lambda line: None),
        force=force,
    )
    return {f"{stem}.ipynb": s for stem, s in times.items()}


def usable_cores() -> int:
    """The number of cores this process may run on (``os.sched_getaffinity``, else ``os.cpu_count``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def parse_value(text: str) -> Any:
    """A ``-p`` value: a Python literal (``True``, ``5``, ``0.8``, ``[0, 10]``, ``'x'``), else JSON (``true``,
    ``null``), else the text itself.

    ``no``, ``yes``, ``on`` and ``off`` stay text (unlike YAML), so ``-p quick no`` is refused by the bool check
    instead of being read as some bool.
    """
    if not isinstance(text, str):
        raise ValueError(f"text: expected the command-line text, got {text!r}")
    import ast
    import json

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    try:
        return json.loads(text)
    except ValueError:
        return text


def _parse_cli_parameters(pairs: Sequence[Sequence[str]]) -> dict[str, Any]:
    """``[[name, text], ...]`` from ``-p`` -> dict name -> :func:`parse_value`; a repeated name is an error."""
    out: dict[str, Any] = {}
    for name, text in pairs:
        if name in out:
            raise ValueError(f"--parameter: {name} given twice")
        out[name] = parse_value(text)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m daun_lib.studies.run_notebooks", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("notebooks", nargs="+", help="notebooks to execute, in order")
    parser.add_argument("--out", required=True, help="build folder for the executed notebooks")
    parser.add_argument("--quick", action="store_true", help="quick=True; results and figures go to the build folder")
    parser.add_argument("--kernel", default=KERNEL_NAME, help=f"Jupyter kernel name (default {KERNEL_NAME})")
    parser.add_argument("--log-output", action="store_true", help="echo the notebooks' output")
    parser.add_argument(
        "-j", "--jobs", type=int, default=None, help="parallel notebook streams (default: the usable cores)"
    )
    parser.add_argument("--force", action="store_true", help="run every notebook, even those up to date")
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="inject NAME into every notebook that declares it; VALUE is a Python literal "
        "(True, 5, 0.8, [0, 10]), JSON (true) or else text; repeatable",
    )
    args = parser.parse_args(argv)
    try:
        parameters = _parse_cli_parameters(args.parameter)
        run(
            args.notebooks,
            args.out,
            args.quick,
            parameters=parameters,
            kernel_name=args.kernel,
            log_output=args.log_output,
            jobs=args.jobs,
            force=args.force,
        )
    except (ValueError, NotebookError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
