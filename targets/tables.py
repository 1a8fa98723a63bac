"""Plain-text tables for the reports qnnc writes (report.txt, `qnnc inspect`, `qnnc targets`)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any


def _cell(value: Any) -> str:
    """A cell on one line: control characters (a newline in a node name) shown escaped, so a
    name cannot end its row and forge another."""
    text = str(value)
    return text if text.isprintable() else "".join(
        ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[int] = (),
          max_width: int | None = None) -> str:
    """Rows as aligned columns; column indexes in ``right`` are right-aligned (numbers).

    With ``max_width``, a table that would be wider keeps within it: a first cell (a layer
    name) longer than a quarter of the width stands on a line of its own above its row, and
    the last column (free text) wraps onto continuation lines at its own column.
    """
    cells = [[_cell(h) for h in headers]] + [[_cell(c) for c in r] for r in rows]
    name_cap = max(8, max_width // 4) if max_width else None
    long_names = set()
    if name_cap is not None:
        long_names = {i for i, r in enumerate(cells) if i and len(r[0]) > name_cap}
    widths = [max(len(r[i]) for k, r in enumerate(cells) if not (i == 0 and k in long_names))
              for i in range(len(headers))]
    last = len(headers) - 1
    if max_width is not None and last > 0:
        start = sum(widths[:last]) + 2 * last
        if start + widths[last] > max_width:
            widths[last] = max(max_width - start, len(cells[0][last]), 12)

    def lines(k: int, r: list[str]) -> list[str]:
        out = []
        if k in long_names:
            out.append(r[0])
            r = [""] + r[1:]
        tail = [r[last]] if last == 0 or len(r[last]) <= widths[last] else (
            textwrap.wrap(r[last], widths[last], break_on_hyphens=False) or [""])
        for j, piece in enumerate(tail):
            row = (r[:last] if j == 0 else [""] * last) + [piece]
            parts = [c.rjust(w) if i in right else c.ljust(w)
                     for i, (c, w) in enumerate(zip(row, widths))]
            out.append("  ".join(parts).rstrip())
        return out

    rule = "  ".join("-" * w for w in widths)
    body = [ln for k, r in enumerate(cells[1:], start=1) for ln in lines(k, r)]
    return "\n".join(lines(0, cells[0]) + [rule] + body)
