"""C conditions over index expressions, decided where the ranges decide them.

``lt(r, 0)`` is False when ``r`` cannot be negative, so the check is not written; otherwise
it is the condition's C text, which remembers the variables it reads (so a block knows
which locals to declare for it).
"""

from __future__ import annotations

from collections.abc import Iterable

from targets.c.expr import Expr, Var, lift


class Test(str):
    """A C condition that remembers the variables it reads."""

    names: frozenset[str] = frozenset()

    @staticmethod
    def of(text: str, names: frozenset[str]) -> Test:
        t = Test(text)
        t.names = names
        return t


Cond = bool | Test  # a C condition, or its value when the ranges decide it


Cond = bool | Test  # a C condition, or its value when the ranges decide it


def lt(a: Expr | int, b: Expr | int) -> Cond:
    """``a < b``: True or False when the ranges decide it, else its C text."""
    a, b = lift(a), lift(b)
    d = a - b
    if d.hi is not None and d.hi < 0:
        return True
    if d.lo is not None and d.lo >= 0:
        return False
    return Test.of(f"{a} < {b}", a.vars() | b.vars())


def ge(a: Expr | int, b: Expr | int) -> Cond:
    """``a >= b``."""
    c = lt(a, b)
    a, b = lift(a), lift(b)
    return (not c) if isinstance(c, bool) else Test.of(f"{a} >= {b}", a.vars() | b.vars())


def eq(a: Expr | int, b: Expr | int) -> Cond:
    """``a == b``."""
    a, b = lift(a), lift(b)
    d = a - b
    if d.value is not None:
        return d.value == 0
    if (d.lo is not None and d.lo > 0) or (d.hi is not None and d.hi < 0):
        return False
    return Test.of(f"{a} == {b}", a.vars() | b.vars())


def all_of(*conds: Cond) -> Cond:
    """``c1 && c2 && ...`` with the decided ones dropped (or deciding)."""
    if any(c is False for c in conds):
        return False
    rest = [c for c in conds if not isinstance(c, bool)]
    if not rest:
        return True
    return Test.of(" && ".join(_group(c, "||") for c in rest), _names(rest))


def any_of(*conds: Cond) -> Cond:
    """``c1 || c2 || ...``."""
    if any(c is True for c in conds):
        return True
    rest = [c for c in conds if not isinstance(c, bool)]
    if not rest:
        return False
    return Test.of(" || ".join(_group(c, "&&") for c in rest), _names(rest))


def _names(conds: Iterable[Test]) -> frozenset[str]:
    return frozenset().union(*(c.names for c in conds))


def _group(c: str, other: str) -> str:
    return f"({c})" if other in c else c


def cond_text(c: Cond) -> str:
    return str(c) if isinstance(c, str) else ("1" if c else "0")


def negate(c: Cond) -> Cond:
    """``!(c)``."""
    return (not c) if isinstance(c, bool) else Test.of(f"!({c})", c.names)


def minimum(a: Expr | int, b: Expr | int) -> Expr:
    """``a < b ? a : b``, or whichever the ranges prove is the smaller."""
    a, b = lift(a), lift(b)
    c = lt(b, a)
    if c is True:
        return b
    if c is False:
        return a
    lo = None if a.lo is None or b.lo is None else min(a.lo, b.lo)
    hi = a.hi if b.hi is None else (b.hi if a.hi is None else min(a.hi, b.hi))
    return Var(f"({a} < {b} ? {a} : {b})", lo, hi)
