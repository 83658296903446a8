"""Compare result CSVs of the working tree with those of a git revision.

Prints, per file, the largest relative difference of every numeric column (with the row's method
and SNR point), or "identical".  Used to check that a change moved no committed number::

    python benchmarks/compare_results.py HEAD results/fig2.csv results/fig2_blockage.csv results/fig3.csv
"""

from __future__ import annotations

import argparse
import csv
import io
import subprocess
import sys


def compare(rev: str, name: str) -> dict[str, tuple] | None:
    """``{column: (relative difference, method, snr_db, old, new)}`` of the largest difference per column;
    None when ``name`` does not exist in ``rev`` (a new file)."""
    shown = subprocess.run(["git", "show", f"{rev}:{name}"], capture_output=True, text=True)
    if shown.returncode != 0:
        return None
    old_text = shown.stdout
    old = list(csv.DictReader(io.StringIO(old_text)))
    with open(name, newline="", encoding="utf-8") as fh:
        new = list(csv.DictReader(fh))
    if len(old) != len(new):
        raise SystemExit(f"{name}: {len(old)} rows in {rev}, {len(new)} now")
    worst: dict[str, tuple] = {}
    for a, b in zip(old, new, strict=True):
        for key, text in a.items():
            try:
                x, y = float(text), float(b[key])
            except ValueError:
                if text != b[key]:
                    raise SystemExit(f"{name}: column {key!r} changed from {text!r} to {b[key]!r}") from None
                continue
            d = abs(x - y) / max(abs(x), abs(y), 1e-300)
            if d > worst.get(key, (0.0,))[0]:
                worst[key] = (d, a.get("method", ""), a.get("snr_db", ""), x, y)
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rev", help="git revision to compare with (e.g. HEAD, a commit)")
    parser.add_argument("files", nargs="+", help="CSV files, paths relative to the repository root")
    args = parser.parse_args(argv)
    for name in args.files:
        worst = compare(args.rev, name)
        if worst is None:
            print(name, f"new (not in {args.rev})")
            continue
        shown = {k: (f"{v[0]:.2e}",) + v[1:] for k, v in worst.items() if v[0] > 0}
        print(name, shown or "identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
