"""environment.yml and pyproject.toml list the same dependencies; the package imports cleanly."""

import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PIP = {"pytorch": "torch"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _spec(req: str) -> str:
    return req.strip()[len(_name(req)) :].strip().replace(" ", "")


def test_environment_matches_pyproject():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_reqs = list(meta["dependencies"]) + [r for reqs in meta["optional-dependencies"].values() for r in reqs]
    pip = {_name(r): _spec(r) for r in pip_reqs}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):  # the pip: section (packages conda-forge does not carry), local install excluded
            for req in dep.get("pip", []):
                if not req.startswith("-"):
                    conda[_name(req)] = _spec(req)
        elif isinstance(dep, str) and _name(dep) not in ("python", "pip"):
            conda[CONDA_TO_PIP.get(_name(dep), _name(dep))] = _spec(dep)
    assert conda == pip


def test_torch_floor_allows_safe_weights_only_load():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch_req = next(r for r in meta["dependencies"] if _name(r) == "torch")
    major, minor = re.search(r">=(\d+)\.(\d+)", torch_req).groups()
    assert (int(major), int(minor)) >= (2, 6)


def test_package_imports_and_version():
    import daun_lib

    assert daun_lib.__version__
    assert daun_lib.Scenario().n_bs == 4
