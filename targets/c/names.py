"""Turning untrusted model names into C identifiers and C comments.

Node and value names come from the ONNX file, so they are attacker-controlled: they may hold
``*/``, newlines, quotes, unicode or thousands of characters. Nothing from the model reaches
the generated C except through :func:`c_comment` (comments) or :class:`NameTable`
(identifiers), which allow only a safe alphabet.
"""

from __future__ import annotations

import re

MAX_IDENT = 48
MAX_COMMENT = 200

_NOT_IDENT = re.compile(r"[^A-Za-z0-9_]+")
_C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if "
    "inline int long register restrict return short signed sizeof static struct switch typedef "
    "union unsigned void volatile while".split()
)


def ident_part(name: str, limit: int = MAX_IDENT) -> str:
    """``name`` reduced to [A-Za-z0-9_], runs of other characters becoming one ``_``."""
    s = _NOT_IDENT.sub("_", name).strip("_")
    return s[:limit].rstrip("_") or "anon"


def c_comment(text: str, limit: int = MAX_COMMENT) -> str:
    """``text`` made safe inside ``/* ... */``: printable ASCII only, no comment delimiters."""
    s = "".join(ch if " " <= ch <= "~" else "?" for ch in text)
    s = s.replace("*/", "*?").replace("/*", "?*").replace("\\", "?")
    if len(s) > limit:
        s = s[: limit - 3] + "..."
    return s


def c_string(text: str, limit: int = 256) -> str:
    """``text`` as a C string literal holding printable ASCII only (others become ``?``)."""
    s = "".join(ch if " " <= ch <= "~" else "?" for ch in text[:limit])
    s = s.replace("\\", "\\\\").replace('"', '\\"').replace("?", "\\?")
    return f'"{s}"'


class NameTable:
    """Hands out unique C identifiers: prefixed, sanitised, length-capped, de-duplicated.

    Two names that differ only by punctuation (``a.b`` and ``a/b``) get distinct identifiers
    (``..._a_b`` and ``..._a_b_2``), so the mapping is one-to-one.
    """

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def claim(self, prefix: str, name: str) -> str:
        base = f"{prefix}_{ident_part(name)}" if name else prefix
        cand, k = base, 1
        while cand in self._taken or cand in _C_KEYWORDS:
            k += 1
            cand = f"{base}_{k}"
        self._taken.add(cand)
        return cand
