"""Every numbered notebook: committed clean, parameterised, and runs with quick=True (how CI executes them)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

pm = pytest.importorskip("papermill")

from daun_lib.studies import run_notebooks  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
REQUIRED = ("quick", "seed", "force_recompute", "results_dir", "figures_dir")


def test_there_are_numbered_notebooks():
    assert NOTEBOOKS, "no notebooks/[0-9][0-9]_*.ipynb found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_clean(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: outputs committed"
        assert "injected-parameters" not in cell.metadata.get("tags", []), f"{path.name}: executed copy committed"
    assert nb.cells[0].cell_type == "markdown", f"{path.name}: the first cell should say what the notebook shows"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code", f"{path.name}: one code cell tagged 'parameters'"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_are_typed_and_commented(path):
    params = pm.inspect_notebook(str(path))
    missing = [name for name in REQUIRED if name not in params]
    assert not missing, f"{path.name}: parameters cell lacks {missing}"
    for name, p in params.items():
        assert p["inferred_type_name"] not in ("None", None), f"{path.name}: {name} has no type annotation"
        assert p["help"], f"{path.name}: {name} has no comment"
    # outputs go through results_dir / figures_dir only, so a quick run cannot touch the committed ones
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" not in cell.metadata.get("tags", []):
            for literal in ("../results", "../figures"):
                assert literal not in cell.source, f"{path.name}: hard-coded {literal!r} outside the parameters cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_defines_no_functions_or_classes(path):
    """Thin notebooks: parameters -> library calls -> save -> plot; any function belongs in daun_lib."""
    import ast

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            tree = ast.parse(cell.source)
            defined = [
                n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            ]
            assert not defined, f"{path.name}: defines {defined}; move them into daun_lib"


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_quick(path, tmp_path):
    times = run_notebooks.run([path], tmp_path, quick=True, kernel_name="python3", verbose=False)
    assert set(times) == {path.name}
    executed = nbformat.read(tmp_path / path.name, as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "quick = True" in injected[0].source
    assert str(tmp_path / "results") in injected[0].source


# ---------------------------------------------------------------------------
# the runner itself, on tiny notebooks
# ---------------------------------------------------------------------------
def _write_notebook(path: Path, body: str, params: str) -> Path:
    cell = nbformat.v4.new_code_cell(params, metadata={"tags": ["parameters"]})
    nb = nbformat.v4.new_notebook(
        cells=[cell, nbformat.v4.new_code_cell(body)],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.mark.notebooks
def test_runner_injects_quick_paths_and_runs_in_the_notebook_folder(tmp_path):
    nb = _write_notebook(
        tmp_path / "src" / "nbs" / "07_probe.ipynb",
        params='quick: bool = False  # q\nresults_dir: str = "../results"  # r\nfigures_dir: str = "../figures"  # f\n'
        'cache_dir: str = "../cache"  # c',
        body="import json, os, pathlib, daun_lib\n"
        "pathlib.Path(results_dir).mkdir(parents=True, exist_ok=True)\n"
        "json.dump({'cwd': os.getcwd(), 'quick': quick, 'figures_dir': figures_dir, 'cache_dir': cache_dir,\n"
        "           'daun_lib': daun_lib.__file__}, open(pathlib.Path(results_dir) / 'probe.json', 'w'))",
    )
    out = tmp_path / "build"
    run_notebooks.run([nb], out, quick=True, verbose=False)
    probe = json.loads((out / "results" / "probe.json").read_text())
    assert Path(probe["cwd"]).resolve() == nb.parent.resolve()
    assert probe["quick"] is True
    assert Path(probe["figures_dir"]) == (out / "figures").resolve()
    assert Path(probe["cache_dir"]) == (out / "cache").resolve()
    assert Path(probe["daun_lib"]).resolve().parent == Path(run_notebooks.__file__).resolve().parent.parent
    assert not (tmp_path / "src" / "results").exists()  # the committed location was not touched
    assert (out / "07_probe.ipynb").is_file()


@pytest.mark.notebooks
def test_failing_notebook_gives_nonzero_exit(tmp_path, capsys):
    nb = _write_notebook(
        tmp_path / "08_fail.ipynb",
        params='quick: bool = False  # q\nresults_dir: str = "r"  # r\nfigures_dir: str = "f"  # f',
        body="raise RuntimeError('boom')",
    )
    assert run_notebooks.main(["--quick", "--out", str(tmp_path / "build"), str(nb)]) == 1
    err = capsys.readouterr().err
    assert "08_fail.ipynb" in err and "boom" in err


def test_missing_kernel_says_make_install(tmp_path):
    nb = _write_notebook(tmp_path / "09_x.ipynb", params="quick: bool = False  # q", body="pass")
    with pytest.raises(run_notebooks.NotebookError, match="make install"):
        run_notebooks.run([nb], tmp_path / "build", kernel_name="no-such-kernel-for-daun-lib")


def test_runner_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="notebooks"):
        run_notebooks.run([], tmp_path)
    with pytest.raises(ValueError, match="notebooks"):
        run_notebooks.run([tmp_path / "missing.ipynb"], tmp_path)
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(ValueError, match="notebooks"):
        run_notebooks.run([tmp_path / "a.txt"], tmp_path)
