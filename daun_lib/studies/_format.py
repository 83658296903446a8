"""Number and table formatting of the generated result pages (:mod:`daun_lib.studies.report`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["f2", "f3", "g3", "pm", "slash", "snr_table", "span", "table"]


def f3(x: float) -> str:
    return f"{x:.3f}"


def g3(x: float) -> str:
    return f"{x:.3g}"


def f2(x: float) -> str:
    return f"{x:.2f}"


def span(values: Sequence[float], fmt: Callable[[float], str] = f3) -> str:
    """``"lo-hi"`` of ``values`` (one value when both print the same)."""
    lo, hi = fmt(min(values)), fmt(max(values))
    return lo if lo == hi else f"{lo}-{hi}"


def slash(values: Sequence[float], fmt: str = "+.3f") -> str:
    return " / ".join(format(x, fmt) for x in values)


def table(head: Sequence[str], body: Sequence[Sequence[Any]]) -> str:
    """A markdown table; a column whose cells all start like numbers is right-aligned."""
    num = [i and all(re.match(r"[-+]?[\d.]|–$|$", str(row[i])) for row in body) for i in range(len(head))]
    rule = "|" + "|".join("---:" if n else "---" for n in num) + "|"
    return "\n".join(["| " + " | ".join(head) + " |", rule] + ["| " + " | ".join(map(str, r)) + " |" for r in body])


def snr_table(rows: Sequence[dict], cell: Callable[[dict], str], label: str = "method", key: str = "method") -> str:
    """Rows ``key``, columns the SNR points, ``cell(row)`` in each."""
    snrs, at = sorted({r["snr_db"] for r in rows}), {(r[key], r["snr_db"]): r for r in rows}
    body = [[n] + [cell(at[n, s]) if (n, s) in at else "" for s in snrs] for n in dict.fromkeys(r[key] for r in rows)]
    return table([label] + [f"{s:g} dB" for s in snrs], body)


def pm(r: dict) -> str:
    return f"{r['p_submeter']:.3f} / {r['mse']:.3g}"
