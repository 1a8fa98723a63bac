"""Turning untrusted model names into C identifiers and C comments.

Node and value names come from the ONNX file, so they are attacker-controlled: they may hold
``*/``, newlines, quotes, unicode or thousands of characters. Nothing from the model reaches
the generated C except through :func:`c_comment` (comments) or :class:`NameTable`
(identifiers), which allow only a safe alphabet.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_IDENT = 48
MAX_COMMENT = 200

_NOT_IDENT = re.compile(r"[^A-Za-z0-9_]+")
_C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if "
    "inline int long register restrict return short signed sizeof static struct switch typedef "
    "union unsigned void volatile while".split()
)
#: lower-case names the C library or compiler may define as object-like macros
_MACROS = frozenset("errno stdin stdout stderr true false bool complex imaginary linux unix "
                    "i386 main".split())


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


def c_string(text: str, limit: int = 256, width: int = 0, indent: str = "") -> str:
    """``text`` as a C string literal holding printable ASCII only (others become ``?``).
    With ``width``, a long literal is split into adjacent literals (which C joins), one per
    line after ``indent``, none longer than ``width``."""
    s = "".join(ch if " " <= ch <= "~" else "?" for ch in text[:limit])
    step = max(8, (width - 2) // 2) if width else max(len(s), 1)
    parts = [_escape(s[k:k + step]) for k in range(0, max(len(s), 1), step)]
    return ("\n" + indent).join(f'"{p}"' for p in parts)


def _escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("?", "\\?")


class NameTable:
    """Hands out unique C identifiers: prefixed, sanitised, length-capped, de-duplicated.

    Two names that differ only by punctuation (``a.b`` and ``a/b``) get distinct identifiers
    (``..._a_b`` and ``..._a_b_2``), so the mapping is one-to-one.
    """

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self._taken: set[str] = set(reserved)

    def claim(self, prefix: str, name: str) -> str:
        base = f"{prefix}_{ident_part(name)}" if name else prefix
        return self._unique(base)

    def claim_plain(self, name: str) -> str:
        """An identifier that is ``name`` itself where it can be: a value's name as a
        parameter. One that could mean something else in C (a macro: all capitals, or
        the runtime's ``qnnc`` prefix; a leading digit) gets a ``v`` in front."""
        base = ident_part(name)
        if base[0].isdigit() or base.isupper() or base in _MACROS or \
                base.lower().startswith("qnnc"):
            base = "v" + base if base[0].isdigit() else "v_" + base
        return self._unique(base)

    def _unique(self, base: str) -> str:
        cand, k = base, 1
        while cand in self._taken or cand in _C_KEYWORDS:
            k += 1
            cand = f"{base}_{k}"
        self._taken.add(cand)
        return cand
