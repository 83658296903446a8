"""Execute the numbered notebooks with papermill.

Usage::

    python -m daun_lib.run_notebooks [--quick] --out BUILD_DIR notebooks/01_*.ipynb ...

Each notebook runs in its own folder (so ``../results`` and ``../figures``
resolve against the repository) with the Jupyter kernel ``python3``, and the
executed copy is written to ``BUILD_DIR/<name>.ipynb``.  With ``--quick`` the
runner injects ``quick=True`` and points ``results_dir`` and ``figures_dir``
(and ``cache_dir`` when a notebook declares it) into ``BUILD_DIR``, so a quick
run never overwrites the committed paper-scale results.  The wall time of each
notebook and the total are printed; the exit status is non-zero when a
notebook fails.

The kernel ``python3`` must run this environment's Python: ``make install``
registers it (``python -m ipykernel install --user --name python3``).  A
kernelspec whose command is plain ``python`` resolves to the interpreter that
runs this module.  The runner also puts the folder that holds
:mod:`daun_lib` first on the kernel's ``PYTHONPATH``, so the notebooks import
the same package as the runner, installed or not.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Iterator, Sequence

KERNEL_NAME = "python3"
"""Kernel used for every notebook (the committed kernelspec)."""


class NotebookError(RuntimeError):
    """A notebook failed; the message names it and the executed copy."""


def _check_kernel(kernel_name: str) -> None:
    """Raise NotebookError with a fix when the kernel is not installed; warn when it runs another Python."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel as exc:
        raise NotebookError(
            f"kernel {kernel_name!r} not found: run `make install` (it runs "
            f"`{sys.executable} -m ipykernel install --user --name {kernel_name}`)"
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


@contextlib.contextmanager
def _kernel_env() -> Iterator[None]:
    """Put the folder holding daun_lib first on PYTHONPATH while kernels start."""
    root = str(Path(__file__).resolve().parent.parent)
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = root + (os.pathsep + old if old else "")
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def notebook_parameters(notebook: Path, out: Path, quick: bool) -> dict:
    """The parameters injected into ``notebook``: empty at paper scale; quick mode and build-folder paths with quick."""
    if not quick:
        return {}
    import papermill as pm

    params = {
        "quick": True,
        "results_dir": str((out / "results").resolve()),
        "figures_dir": str((out / "figures").resolve()),
    }
    if "cache_dir" in pm.inspect_notebook(str(notebook)):
        params["cache_dir"] = str((out / "cache").resolve())
    return params


def run(
    notebooks: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    quick: bool = False,
    *,
    kernel_name: str = KERNEL_NAME,
    log_output: bool = False,
    progress_bar: bool = False,
    verbose: bool = True,
) -> dict[str, float]:
    """Execute ``notebooks`` in order with papermill; stop at the first failure.

    Parameters
    ----------
    notebooks : sequence of paths
        ``.ipynb`` files; each runs with its own folder as working directory.
    out : path
        Build folder for the executed copies (and, with ``quick``, for the
        results, figures and cache of the run).
    quick : bool
        Inject ``quick=True`` and redirect ``results_dir``/``figures_dir``
        (and ``cache_dir`` if declared) into ``out``.
    kernel_name : str
        Jupyter kernel (``"python3"``).
    log_output : bool
        Echo the cells' output while running.
    progress_bar : bool
        Papermill's per-cell progress bar.
    verbose : bool
        Print the wall time of each notebook and the total.

    Returns
    -------
    dict notebook name -> wall seconds

    Raises
    ------
    ValueError
        No notebooks, or a path that is not an existing ``.ipynb`` file.
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
    import papermill as pm

    _check_kernel(kernel_name)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    total = time.perf_counter()
    with _kernel_env():
        for nb in paths:
            target = out_dir / nb.name
            params = notebook_parameters(nb, out_dir, quick)
            start = time.perf_counter()
            try:
                pm.execute_notebook(
                    str(nb),
                    str(target),
                    parameters=params,
                    kernel_name=kernel_name,
                    cwd=str(nb.resolve().parent),
                    progress_bar=progress_bar,
                    log_output=log_output,
                    start_timeout=180,
                )
            except pm.PapermillExecutionError as exc:
                raise NotebookError(
                    f"{nb.name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}; executed copy: {target}"
                ) from exc
            except Exception as exc:  # kernel died, timeout, bad notebook ...
                raise NotebookError(f"{nb.name} failed: {type(exc).__name__}: {exc}; executed copy: {target}") from exc
            times[nb.name] = time.perf_counter() - start
            if verbose:
                print(f"{nb.name}: {times[nb.name]:.1f} s", flush=True)
    if verbose:
        print(f"total: {time.perf_counter() - total:.1f} s ({len(paths)} notebooks{', quick' if quick else ''})",
              flush=True)
    return times


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m daun_lib.run_notebooks", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", help="notebooks to execute, in order")
    parser.add_argument("--out", required=True, help="build folder for the executed notebooks")
    parser.add_argument("--quick", action="store_true", help="quick=True; results and figures go to the build folder")
    parser.add_argument("--kernel", default=KERNEL_NAME, help=f"Jupyter kernel name (default {KERNEL_NAME})")
    parser.add_argument("--log-output", action="store_true", help="echo the notebooks' output")
    args = parser.parse_args(argv)
    try:
        run(args.notebooks, args.out, args.quick, kernel_name=args.kernel, log_output=args.log_output)
    except (ValueError, NotebookError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
