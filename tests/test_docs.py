"""The documentation stands on its own and cannot drift.

* README.md stays short (at most 200 lines) and opens with a runnable example (a ```python block before line 60)
  that runs in seconds;
* every ```python block of docs/extending.md runs, each in a fresh namespace and an empty working folder; a block
  marked ``<!-- needs: multi-user readout API -->`` is skipped, but the marker fails the suite as soon as
  ``readouts.register_readout`` accepts ``multi_user`` (so it cannot outlive the API it waits for);
* the generated pages (docs/results/*.md) and blocks (README verdict, guarantees audit) are what
  ``python -m daun_lib.studies.report --check`` expects from the committed results/*.csv;
* every relative link of README.md and docs/ points to an existing file inside the repository.

The examples register localisers and readouts; the registries are restored after each one.
"""

from __future__ import annotations

import inspect
import re
import time
from pathlib import Path

import pytest

from daun_lib import localizers, methods, multiuser, readouts
from daun_lib.studies import report

assert methods.REGISTRY and multiuser.MULTI_REGISTRY  # the package's entries are registered before any snapshot

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EXTENDING = ROOT / "docs" / "extending.md"
NEEDS = "<!-- needs: multi-user readout API -->"
FENCE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def python_blocks(path: Path) -> list[tuple[int, str, bool]]:
    """(first line, source, marked with NEEDS) of every ```python block of ``path``."""
    text = path.read_text(encoding="utf-8")
    out = []
    for m in FENCE.finditer(text):
        before = [line for line in text[: m.start()].splitlines() if line.strip()]
        out.append((text.count("\n", 0, m.start()) + 1, m.group(1), bool(before) and before[-1].strip() == NEEDS))
    return out


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """An empty working folder, a non-interactive matplotlib, and the registries restored afterwards."""
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    saved = dict(localizers.LOCALIZERS), dict(readouts.READOUTS)
    yield tmp_path
    for registry, old in zip((localizers.LOCALIZERS, readouts.READOUTS), saved, strict=True):
        registry.clear()
        registry.update(old)
    import matplotlib.pyplot as plt

    plt.close("all")


def run_block(source: str, where: str) -> float:
    start = time.perf_counter()
    exec(compile(source, where, "exec"), {"__name__": "__docs__"})
    return time.perf_counter() - start


def test_readme_is_short_and_opens_with_an_example(sandbox):
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; the limit is 200 (move detail to docs/)"
    blocks = python_blocks(README)
    assert blocks, "README.md has no ```python block"
    line, source, _ = blocks[0]
    assert line < 60, f"README.md's first ```python block starts at line {line}; it must start before line 60"
    seconds = run_block(source, "README.md")
    assert seconds < 15, f"README.md's example took {seconds:.1f} s; keep it to a few seconds"


EXAMPLES = python_blocks(EXTENDING)


def test_extending_has_its_examples():
    assert len(EXAMPLES) >= 5, "docs/extending.md: expected the five worked examples (a)-(e)"


@pytest.mark.parametrize(("line", "source", "marked"), EXAMPLES, ids=[f"line{b[0]}" for b in EXAMPLES])
def test_extending_example_runs(sandbox, line, source, marked):
    if marked:
        pytest.skip(f"docs/extending.md line {line}: waits for the multi-user readout API")
    run_block(source, f"docs/extending.md, block at line {line}")


def test_no_needs_marker_outlives_the_api():
    if "multi_user" not in inspect.signature(readouts.register_readout).parameters:
        pytest.skip("readouts.register_readout does not accept multi_user yet")
    marked = [line for line, _, m in EXAMPLES if m]
    assert not marked, f"docs/extending.md: remove the {NEEDS} marker above the block(s) at line(s) {marked}"
    assert NEEDS not in EXTENDING.read_text(encoding="utf-8")


def test_generated_pages_match_the_results():
    stale = report.stale(ROOT)
    assert not stale, f"out of date: {[str(p.relative_to(ROOT)) for p in stale]}; run python -m daun_lib.studies.report"


def test_report_check_exit_status():
    assert report.main(["--check", "--root", str(ROOT)]) == 0


DOCS = [README, *sorted((ROOT / "docs").rglob("*.md"))]


@pytest.mark.parametrize("doc", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_relative_links_resolve_inside_the_repository(doc):
    text = doc.read_text(encoding="utf-8")
    assert "../shared" not in text, f"{doc.name}: points to ../shared, outside the repository"
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a web address or an anchor on the same page
        path = (doc.parent / target.split("#", 1)[0]).resolve()
        assert path.is_relative_to(ROOT), f"{doc.relative_to(ROOT)}: {target} points outside the repository"
        assert path.exists(), f"{doc.relative_to(ROOT)}: {target} does not exist"
