"""Misuse of the notebooks, their runner and save_figure: a clear error before any work, or the right answer.

The cases are what a user types: papermill's ``-p`` with a typo or a value of the wrong type, a read-only or
mistyped output folder, Ctrl-C while a figure is being written.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import pytest  # noqa: E402

pm = pytest.importorskip("papermill")

from daun_lib.studies import notebook_params, plotting, run_notebooks  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
NB03 = ROOT / "notebooks" / "03_fig2_accuracy_vs_snr.ipynb"
# a folder nobody can create files in, root included (procfs); used where chmod does not stop root
UNWRITABLE = Path("/proc/daun-lib-no-such-folder")
needs_procfs = pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux procfs")


def _defaults(path: Path) -> tuple[dict, dict]:
    """(declared types, default values) of a notebook's parameters cell."""
    info = pm.inspect_notebook(str(path))
    return (
        {n: p["inferred_type_name"] for n, p in info.items()},
        {n: ast.literal_eval(p["default"]) for n, p in info.items()},
    )


# ---------------------------------------------------------------------------
# the notebooks: one library check right after the parameters, defaults accepted
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_checks_its_parameters_first(path):
    nb = nbformat.read(path, as_version=4)
    i = next(k for k, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nxt = nb.cells[i + 1]
    assert nxt.cell_type == "code" and "notebook_params.check(globals())" in nxt.source, path.name
    ids = [c.get("id") for c in nb.cells]
    assert len(set(ids)) == len(ids), f"{path.name}: duplicate cell ids"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_paper_defaults_pass_the_check(path):
    declared, values = _defaults(path)
    assert notebook_params.check_values(values, declared, base=path.parent) == values


# ---------------------------------------------------------------------------
# the check inside the kernel, driven by papermill as a user runs it
# ---------------------------------------------------------------------------
def _papermill(tmp_path: Path, parameters: dict) -> str:
    """Run notebook 03 with papermill directly; return the error text (the run must fail in the check cell)."""
    out = tmp_path / "out.ipynb"
    with pytest.raises(pm.PapermillExecutionError) as info:
        pm.execute_notebook(
            str(NB03),
            str(out),
            parameters=parameters,
            kernel_name="python3",
            cwd=str(NB03.parent),
            progress_bar=False,
            start_timeout=180,
        )
    executed = nbformat.read(out, as_version=4)
    ran = [c for c in executed.cells if c.cell_type == "code" and c.get("execution_count")]
    assert "notebook_params.check" in ran[-1].source  # it stopped in the check cell: nothing else ran
    return f"{info.value.ename}: {info.value.evalue}"


@pytest.mark.notebooks
@pytest.mark.parametrize(
    "params, expected",
    [
        ({"n_trial": 5}, "n_trial: unknown parameter (did you mean 'n_trials'?)"),
        ({"quick": "no"}, "quick: expected True or False, got the string 'no'"),
        ({"n_trials": "abc"}, "n_trials: expected an integer, got the string 'abc'"),
        ({"snr_db": "[]"}, "snr_db: expected a list, got the string '[]'"),
    ],
    ids=["typo", "bool-as-text", "int-as-text", "list-as-text"],
)
def test_papermill_misuse_is_refused_in_the_check_cell(tmp_path, params, expected):
    err = _papermill(tmp_path, params)
    assert err.startswith("ValueError") and expected in err


@pytest.mark.notebooks
@needs_procfs
def test_papermill_unwritable_results_dir_fails_before_the_sweep(tmp_path):
    err = _papermill(tmp_path, {"results_dir": str(UNWRITABLE / "results"), "quick": True})
    assert err.startswith("ValueError: results_dir")


# ---------------------------------------------------------------------------
# notebook_params.check on a notebook namespace, without a kernel
# ---------------------------------------------------------------------------
PARAMS_CELL = (
    'quick: bool = False  # q\nn_trials: int = 10  # n\nsnr_db: list = [0, 10]  # s\nresults_dir: str = "r"  # r'
)
DECLARED = {"quick": bool, "n_trials": int, "snr_db": list, "results_dir": str}


def _namespace(tmp_path, injected_source=None, later=(), **values):
    ns = {
        "__annotations__": dict(DECLARED),
        "quick": False,
        "n_trials": 10,
        "snr_db": [0, 10],
        "results_dir": str(tmp_path / "results"),
    }
    ns.update(values)
    history = ["", PARAMS_CELL] + ([injected_source] if injected_source else []) + list(later)
    ns["_ih"] = history + ["from daun_lib import notebook_params\nnotebook_params.check(globals())"]
    return ns


def test_check_finds_the_injected_typo_in_the_history(tmp_path):
    ns = _namespace(tmp_path, '# Parameters\nPAPERMILL_INPUT_PATH = "a.ipynb"\nn_trails = 5\n', n_trails=5)
    with pytest.raises(ValueError, match=r"n_trails: unknown parameter \(did you mean 'n_trials'\?\).*'quick'"):
        notebook_params.check(ns)


def test_check_accepts_declared_injections_and_ignores_papermill_paths(tmp_path):
    ns = _namespace(
        tmp_path,
        '# Parameters\nPAPERMILL_INPUT_PATH = "a.ipynb"\nn_trials = 5\nquick = True\n',
        n_trials=5,
        quick=True,
        PAPERMILL_INPUT_PATH="a.ipynb",
    )
    assert notebook_params.check(ns) == {
        "quick": True,
        "n_trials": 5,
        "snr_db": [0, 10],
        "results_dir": str(tmp_path / "results"),
    }


def test_check_ignores_variables_of_later_cells_on_an_interactive_rerun(tmp_path):
    ns = _namespace(tmp_path, later=["fig, ax = plt.subplots()\nrows = [1, 2]", "x = 3"], fig=None, rows=[1, 2], x=3)
    assert notebook_params.check(ns)["n_trials"] == 10


@pytest.mark.parametrize(
    "values, message",
    [
        ({"quick": "false"}, "quick: expected True or False"),
        ({"quick": 1}, "quick: expected True or False"),
        ({"n_trials": 5.0}, "n_trials: expected an integer, got 5.0"),
        ({"n_trials": True}, "n_trials: expected an integer"),
        ({"n_trials": 0}, "n_trials: expected an integer >= 1"),
        ({"snr_db": []}, "snr_db: expected a non-empty list"),
        ({"snr_db": [0, float("nan")]}, "snr_db: expected finite numbers"),
        ({"snr_db": [0, "10"]}, "snr_db: expected finite numbers"),
        ({"snr_db": [5, 5]}, "snr_db: expected distinct values"),
        ({"results_dir": ""}, "results_dir: expected a folder path"),
    ],
)
def test_check_refuses_wrong_types_and_ranges(tmp_path, values, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        notebook_params.check(_namespace(tmp_path, **values))


def test_check_refuses_a_results_dir_that_is_a_file(tmp_path):
    f = tmp_path / "results.csv"
    f.write_text("x")
    with pytest.raises(ValueError, match="results_dir"):
        notebook_params.check(_namespace(tmp_path, results_dir=str(f)))
    with pytest.raises(ValueError, match="results_dir"):
        notebook_params.check(_namespace(tmp_path, results_dir=str(f / "below")))


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_check_refuses_a_read_only_results_dir(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(ValueError, match="results_dir"):
            notebook_params.check(_namespace(tmp_path, results_dir=str(ro)))
    finally:
        ro.chmod(0o755)


@needs_procfs
def test_check_refuses_an_unwritable_results_dir(tmp_path):
    with pytest.raises(ValueError, match="results_dir"):
        notebook_params.check(_namespace(tmp_path, results_dir=str(UNWRITABLE)))


def test_check_needs_declared_parameters():
    with pytest.raises(ValueError, match="declared: no declared parameters"):
        notebook_params.check({"quick": True})
    with pytest.raises(ValueError, match="namespace"):
        notebook_params.check([("quick", True)])


@pytest.mark.parametrize(
    "values, message",
    [
        ({"los_model": "foo"}, "los_model: expected 'always', '3gpp' or a probability"),
        ({"los_model": "1.5"}, "los_model: expected"),
        ({"los_model": True}, "los_model: expected"),
        ({"methods": ["DAUN", "DPd"]}, "methods: unknown name 'DPd' (did you mean 'DPD'?)"),
        ({"methods": []}, "methods: expected at least one name"),
        ({"methods": ["DAUN", "DAUN"]}, "methods: duplicate names"),
        ({"blockage": True, "blockage_methods": []}, "blockage_methods: expected at least one method"),
        ({"variant": "papr"}, "variant: unknown name 'papr' (did you mean 'paper'?)"),
        ({"variants": ["supervised", "nope"]}, "variants: unknown name 'nope'"),
        ({"seed": -1}, "seed: expected an integer >= 0"),
        ({"n_jobs": 0}, "n_jobs: expected a non-zero integer"),
        ({"torch_threads": -1}, "torch_threads: expected an integer >= 0"),
        ({"snr_range_db": [20, -10]}, "snr_range_db: expected [low, high]"),
        ({"snr_range_db": [0, 5, 10]}, "snr_range_db: expected [low, high]"),
        ({"snr_db": float("inf")}, "snr_db: expected a finite number"),
        ({"literal_iterations": 16}, "literal_iterations: expected an integer in [1, 15]"),
    ],
)
def test_named_rules(values, message):
    declared = {
        "literal_iterations": "int",
        "los_model": "str",
        "methods": "list",
        "blockage": "bool",
        "blockage_methods": "list",
        "variant": "str",
        "variants": "list",
        "seed": "int",
        "n_jobs": "int",
        "torch_threads": "int",
        "snr_range_db": "tuple",
        "snr_db": "list" if isinstance(values.get("snr_db"), list) else "float",
    }
    with pytest.raises(ValueError, match=re.escape(message)):
        notebook_params.check_values(values, declared)


def test_named_rules_accept_the_documented_forms():
    declared = {
        "los_model": "str",
        "variants": "list",
        "blockage": "bool",
        "blockage_methods": "list",
        "snr_range_db": "tuple",
        "n_jobs": "int",
    }
    for values in (
        {"los_model": "3gpp"},
        {"los_model": "0.8"},
        {"los_model": 0.8},
        {"los_model": 1},
        {"variants": []},
        {"blockage": False, "blockage_methods": []},
        {"snr_range_db": [-10, 20]},
        {"snr_range_db": (-10.0, 20.0)},
        {"n_jobs": -1},
    ):
        assert notebook_params.check_values(values, declared) == values


def test_injected_names_reads_papermills_cell_only():
    hist = ["", "a: int = 1  # a", '# Parameters\na = 2\nb = "x"\n', "import os\nc = 3"]
    assert notebook_params.injected_names(hist) == ["a", "b"]
    assert notebook_params.injected_names(["", "# Parameters\nimport os\n"]) == []  # not an injected cell
    assert notebook_params.injected_names([]) == []
    with pytest.raises(ValueError, match="history"):
        notebook_params.injected_names("# Parameters\na = 1")


# ---------------------------------------------------------------------------
# the runner (make quick / make reproduce): everything checked before the first notebook starts
# ---------------------------------------------------------------------------
def _cli(tmp_path, capsys, *args, notebooks=(NB03,)):
    out = tmp_path / "build"
    rc = run_notebooks.main([*args, "--out", str(out), *map(str, notebooks)])
    err = capsys.readouterr().err
    return rc, err, out


@pytest.mark.parametrize(
    "args, expected",
    [
        (["-p", "n_trial", "5"], "n_trial: unknown parameter (did you mean 'n_trials'?)"),
        (["-p", "quick", "no"], "quick: expected True or False, got the string 'no'"),
        (["-p", "n_trials", "abc"], "n_trials: expected an integer, got the string 'abc'"),
        (["-p", "snr_db", "[]"], "snr_db: expected a non-empty list"),
        (["-p", "los_model", "foo"], "los_model: expected 'always', '3gpp' or a probability"),
        (["-p", "methods", "['DAUN', 'VBB']"], "methods: unknown name 'VBB' (did you mean 'VB'?)"),
        (["--quick", "-p", "quick", "False"], "quick is set by the quick flag"),
        (["-p", "seed", "1", "-p", "seed", "2"], "seed given twice"),
    ],
)
def test_cli_refuses_bad_parameters_before_running(tmp_path, capsys, args, expected):
    rc, err, out = _cli(tmp_path, capsys, *args)
    assert rc == 1 and expected in err, err
    assert not (out / NB03.name).exists()  # no notebook was started


def test_cli_unknown_parameter_across_notebooks(tmp_path, capsys):
    rc, err, out = _cli(tmp_path, capsys, "-p", "n_user", "5", notebooks=NOTEBOOKS)
    assert rc == 1 and "did you mean 'n_users'?" in err and "these notebooks" in err
    assert not out.exists() or not any(out.iterdir())


def test_cli_refuses_an_out_that_is_a_file(tmp_path, capsys):
    f = tmp_path / "build"
    f.write_text("not a folder")
    rc = run_notebooks.main(["--quick", "--out", str(f), str(NB03)])
    assert rc == 1 and "out:" in capsys.readouterr().err
    assert f.read_text() == "not a folder"


@needs_procfs
def test_runner_refuses_unwritable_folders_before_running(tmp_path):
    with pytest.raises(ValueError, match="out"):
        run_notebooks.run([NB03], UNWRITABLE, quick=True)
    with pytest.raises(ValueError, match=r"03_fig2_accuracy_vs_snr.ipynb: results_dir"):
        run_notebooks.run([NB03], tmp_path, parameters={"results_dir": str(UNWRITABLE)})
    assert not any(tmp_path.iterdir())


def test_runner_argument_checks(tmp_path):
    with pytest.raises(ValueError, match="quick"):
        run_notebooks.run([NB03], tmp_path, quick="no")
    with pytest.raises(ValueError, match="parameters"):
        run_notebooks.run([NB03], tmp_path, parameters=[("seed", 1)])
    np = pytest.importorskip("numpy")
    with pytest.raises(ValueError, match="parameters: seed must be a plain Python value"):
        run_notebooks.run([NB03], tmp_path, parameters={"seed": np.int64(3)})


def test_quick_run_needs_the_output_parameters_declared(tmp_path):
    nb = tmp_path / "09_bare.ipynb"
    cell = nbformat.v4.new_code_cell("quick: bool = False  # q", metadata={"tags": ["parameters"]})
    nbformat.write(
        nbformat.v4.new_notebook(
            cells=[cell], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
        ),
        nb,
    )
    with pytest.raises(ValueError, match=r"09_bare.ipynb does not declare \['results_dir', 'figures_dir'\]"):
        run_notebooks.run([nb], tmp_path / "build", quick=True)


def test_cli_values_are_read_strictly():
    v = run_notebooks.parse_value
    assert [v("True"), v("true"), v("5"), v("0.8"), v("[0, 10]"), v("3gpp"), v("no"), v("null")] == [
        True,
        True,
        5,
        0.8,
        [0, 10],
        "3gpp",
        "no",
        None,
    ]


@pytest.mark.notebooks
def test_cli_parameter_reaches_the_notebook(tmp_path):
    nb = tmp_path / "nbs" / "07_probe.ipynb"
    nb.parent.mkdir()
    cells = [
        nbformat.v4.new_code_cell(
            'quick: bool = False  # q\nn_trials: int = 3  # n\nresults_dir: str = "r"  # r\n'
            'figures_dir: str = "f"  # f',
            metadata={"tags": ["parameters"]},
        ),
        nbformat.v4.new_code_cell("from daun_lib import notebook_params\nnotebook_params.check(globals())"),
        nbformat.v4.new_code_cell(
            "import pathlib\npathlib.Path(results_dir).mkdir(parents=True, exist_ok=True)\n"
            "(pathlib.Path(results_dir) / 'n.txt').write_text(repr(n_trials))"
        ),
    ]
    nbformat.write(
        nbformat.v4.new_notebook(
            cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
        ),
        nb,
    )
    out = tmp_path / "build"
    assert run_notebooks.main(["--quick", "-p", "n_trials", "7", "--out", str(out), str(nb)]) == 0
    assert (out / "results" / "n.txt").read_text() == "7"


# ---------------------------------------------------------------------------
# save_figure: Ctrl-C leaves nothing behind; bad arguments are refused
# ---------------------------------------------------------------------------
@pytest.fixture
def fig():
    f, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [1, 0])
    yield f
    plt.close(f)


def test_ctrl_c_during_savefig_leaves_no_file(tmp_path, fig, monkeypatch):
    real = type(fig).savefig
    calls = []

    def interrupted(self, fname, **kw):
        calls.append(kw.get("format"))
        if len(calls) == 2:  # the PDF is rendered, Ctrl-C while the PNG renders
            raise KeyboardInterrupt
        return real(self, fname, **kw)

    monkeypatch.setattr(type(fig), "savefig", interrupted)
    with pytest.raises(KeyboardInterrupt):
        plotting.save_figure(fig, "fig", tmp_path)
    assert calls == ["pdf", "png"]
    assert sorted(os.listdir(tmp_path)) == []


def test_ctrl_c_during_the_write_keeps_the_old_figure_and_no_temp_file(tmp_path, fig, monkeypatch):
    old = tmp_path / "fig.png"
    old.write_bytes(b"old figure")

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(plotting.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        plotting.save_figure(fig, "fig", tmp_path, formats=("png",))
    assert sorted(os.listdir(tmp_path)) == ["fig.png"] and old.read_bytes() == b"old figure"


def test_save_figure_writes_every_format_reproducibly(tmp_path, fig):
    a = plotting.save_figure(fig, "fig", tmp_path / "a")
    b = plotting.save_figure(fig, "fig", tmp_path / "b")
    assert [p.name for p in a] == ["fig.pdf", "fig.png"]
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert a[1].read_bytes().startswith(b"\x89PNG") and a[0].read_bytes().startswith(b"%PDF")
    assert sorted(os.listdir(tmp_path / "a")) == ["fig.pdf", "fig.png"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"fig": "not a figure"}, "fig: expected a matplotlib Figure"),
        ({"name": "sub/fig"}, "name: expected a plain file stem"),
        ({"name": ""}, "name: expected a plain file stem"),
        ({"formats": "png"}, "formats: expected a tuple"),
        ({"formats": ()}, "formats: expected at least one format"),
        ({"formats": ("png", "xyz")}, "formats: unsupported format 'xyz'"),
    ],
)
def test_save_figure_bad_arguments(tmp_path, fig, kwargs, message):
    args = {"fig": fig, "name": "fig", "directory": tmp_path, **kwargs}
    with pytest.raises(ValueError, match=message):
        plotting.save_figure(**args)
    assert not any(tmp_path.iterdir())


def test_save_figure_directory_that_is_a_file(tmp_path, fig):
    f = tmp_path / "figures"
    f.write_text("x")
    with pytest.raises(ValueError, match="directory: .* is a file"):
        plotting.save_figure(fig, "fig", f)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_gitignore_covers_the_temporary_names():
    names = ["figures/.fig2a.png.0a1b2c3d.tmp", "figures/.fig2a.tmp.png", "results/.fig2.csv.abc123.tmp"]
    res = subprocess.run(["git", "check-ignore", "--no-index", *names], cwd=ROOT, capture_output=True, text=True)
    if res.returncode == 128:
        pytest.skip(f"not a git checkout: {res.stderr.strip()}")
    assert res.stdout.split() == names


def test_runner_passes_tuples_as_lists(tmp_path):
    # papermill would write a tuple into the notebook as the text "(-10, 20)"
    nb = ROOT / "notebooks" / "04_fig3_convergence.ipynb"  # snr_range_db is a list parameter
    params = run_notebooks.notebook_parameters(
        nb, tmp_path, False, run_notebooks._check_parameters({"snr_range_db": (-10, 20)})
    )
    assert params == {"snr_range_db": [-10, 20]}


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc (Linux): a folder nobody can write into")
def test_cache_dir_only_needs_to_be_a_folder(tmp_path):
    """A complete cache is read without writing: an unwritable cache_dir passes, a file in the way does not."""
    declared = {"cache_dir": "str", "results_dir": "str"}
    assert notebook_params.check_values({"cache_dir": "/proc/daun-cache"}, declared)
    with pytest.raises(ValueError, match="results_dir"):
        notebook_params.check_values({"results_dir": "/proc/daun-results"}, declared)
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="cache_dir"):
        notebook_params.check_values({"cache_dir": str(tmp_path / "f")}, declared)
