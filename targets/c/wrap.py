"""Keeping generated C within a line width, the way a person breaks a long statement.

Tables and comments are laid out in rows where they are made (:func:`table_rows`,
:func:`comment_block`); a statement that still runs long (a call with a dozen arguments, a
long index expression) is broken here at its outermost commas or operators, continuation
lines indented one step further. String literals, comments and preprocessor lines are never
broken.
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Sequence

WIDTH = 120

#: where a long line may break: after these (commas, an initialiser's ``=``, a for header's
#: ``;``) or before these (binary operators, which then lead the continuation line)
_AFTER = (", ", " = ", "; ")
_BEFORE = (" + ", " - ", " && ", " || ", " ? ", " : ")


def wrap_lines(text: str, width: int = WIDTH) -> str:
    """``text`` with every over-long code line broken into lines of at most ``width``."""
    out: list[str] = []
    for ln in text.split("\n"):
        out += wrap_line(ln, width) if len(ln) > width else [ln]
    return "\n".join(out)


def wrap_line(line: str, width: int = WIDTH) -> list[str]:
    """``line`` broken into lines of at most ``width`` (where it has places to break): a
    continuation lines up after the bracket it is inside, or is indented two steps."""
    stripped = line.lstrip()
    indent = line[: len(line) - len(stripped)]
    if stripped.startswith("/*") and stripped.endswith("*/") and "*/" not in stripped[2:-2]:
        return comment_block([stripped[2:-2].strip()], indent, width).split("\n")
    if stripped.startswith(("#", "/*", "*", "//")):
        return [line]
    cands = _candidates(line)  # in order of position
    out: list[str] = []
    start, lead = len(indent), indent
    first = 0  # the first candidate past ``start``: each step looks only a line ahead
    while len(lead) + len(line) - start > width:
        while first < len(cands) and cands[first][0] <= start:
            first += 1
        fits = []  # a prefix of the candidates: the stripped piece only grows with them
        for c in itertools.islice(cands, first, None):
            if len(lead) + len(line[start:c[0]].rstrip()) > width:
                break
            fits.append(c)
        pool = fits or cands[first:first + 1]
        if not pool:
            break
        best = min((d, line[c - 2:c] != ", ") for c, d, _ in pool)  # commas first
        at, _, bracket = [c for c in pool
                          if (c[1], line[c[0] - 2:c[0]] != ", ") == best][-1 if fits else 0]
        out.append(lead + line[start:at].rstrip())
        if bracket >= start:  # the bracket opens on this line: line up after it
            col = len(lead) + bracket - start + 1
            lead = " " * col if col <= width - 40 else indent + " " * 8
        elif bracket < 0:
            lead = indent + " " * 8
        start = at
        while start < len(line) and line[start] == " ":
            start += 1
    return out + [lead + line[start:]]


def _candidates(s: str) -> list[tuple[int, int, int]]:
    """(where a break may go, its bracket depth, where its innermost open bracket is or -1)."""
    out: list[tuple[int, int, int]] = []
    opened: list[int] = []
    i, n = 0, len(s)
    while i < n:
        ch = s[i]
        if ch in "\"'":
            i = _skip_literal(s, i)
            continue
        if s.startswith("/*", i):
            end = s.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        if ch in "([{":
            opened.append(i)
        elif ch in ")]}":
            if opened:
                opened.pop()
        else:
            inner = opened[-1] if opened else -1
            for tok in _AFTER:
                if s.startswith(tok, i):
                    out.append((i + len(tok), len(opened), inner))
            for tok in _BEFORE:
                if s.startswith(tok, i):
                    out.append((i + 1, len(opened), inner))
        i += 1
    return out


def _skip_literal(s: str, i: int) -> int:
    q, i = s[i], i + 1
    while i < len(s) and s[i] != q:
        i += 2 if s[i] == "\\" else 1
    return i + 1


def table_rows(values: Sequence[str], indent: str = "    ", width: int = WIDTH) -> list[str]:
    """The values of an initialiser, as many per row as fit, each row ending in a comma."""
    rows: list[str] = []
    cur = ""
    for v in values:
        piece = v + ","
        if cur and len(indent) + len(cur) + 1 + len(piece) > width:
            rows.append(indent + cur)
            cur = piece
        else:
            cur = f"{cur} {piece}" if cur else piece
    if cur:
        rows.append(indent + cur)
    return rows


def comment_block(lines: Sequence[str], indent: str = "", width: int = WIDTH) -> str:
    """``/* ... */`` holding ``lines`` (already safe for a comment), each wrapped to fit."""
    room = max(20, width - len(indent) - 3)
    body: list[str] = []
    for ln in lines:
        body += textwrap.wrap(ln, room, subsequent_indent="    ", break_on_hyphens=False) or [""]
    text = ("\n" + indent + " * ").join(body)
    if len(indent) + 3 + len(body[-1]) + 3 > width:
        return f"{indent}/* {text}\n{indent} */"
    return f"{indent}/* {text} */"
