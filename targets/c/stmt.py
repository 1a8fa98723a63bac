"""Statements of generated C: loops that vanish when they would run once, blocks that
declare only the locals something reads, branches the ranges choose."""

from __future__ import annotations

from collections.abc import Iterable

from targets.c.cond import Cond, Test, negate
from targets.c.expr import Const, Expr, Var, lift


def loop(var: str, trips: Expr | int, step: int = 1) -> tuple[str | None, Expr]:
    """(the ``for`` header, or None for a loop that runs once, and the index expression: the
    variable, or 0 where there is no loop)."""
    t = lift(trips)
    if t.hi is not None and t.hi <= step:
        return None, Const(0)
    inc = f"++{var}" if step == 1 else f"{var} += {step}"
    hi = None if t.hi is None else (t.hi - 1) // step * step
    return f"for (int {var} = 0; {var} < {t}; {inc})", Var(var, 0, hi)


def nested(headers: Iterable[str | None], body: list[str], indent: str = "  ",
           scoped: bool = False) -> list[str]:
    """``body`` inside the loops whose headers are given (None: no loop), stacked the usual
    way: one brace pair around the innermost body. Without any loop the body stands alone,
    in a block of its own when ``scoped`` (it declares names a sibling may declare too)."""
    heads = [h for h in headers if h is not None]
    if not heads:
        return ["{", *(indent + ln for ln in body), "}"] if scoped else list(body)
    if len(body) == 1 and not body[0].startswith(("for ", "if ", "{", " ")) and \
            len(heads[-1]) + len(body[0]) < 100:
        return [*heads[:-1], f"{heads[-1]} {body[0]}"]
    return [*heads[:-1], heads[-1] + " {", *(indent + ln for ln in body), "}"]


class Scope:
    """The locals of one block, each declared only if something written in the block reads
    it (say so with :meth:`use`), so no declaration is left unread."""

    def __init__(self) -> None:
        self._defs: dict[str, tuple[Expr, str]] = {}
        self._used: set[str] = set()

    def let(self, name: str, e: Expr | int, ctype: str = "int") -> Expr:
        """A local named ``name`` for ``e`` (a constant or a lone variable stays itself)."""
        e = lift(e)
        if isinstance(e, (Const, Var)):
            return e
        self._defs[name] = (e, ctype)
        return Var(name, e.lo, e.hi)

    def use(self, *xs: Expr | Cond | int | str) -> None:
        self._used |= reads(*xs)


    def decls(self) -> list[str]:
        need = self._need()
        return [f"const {ct} {name} = {e};" for name, (e, ct) in self._defs.items()
                if name in need]

    def close(self, body: list[str], names: Iterable[str] = ()) -> tuple[list[str], set[str]]:
        """(the block: declarations, then ``body``, which reads ``names``; what the block
        reads from outside)."""
        self._used |= set(names)
        need = self._need()
        return self.decls() + list(body), need - set(self._defs)

    def _need(self) -> set[str]:
        need = set(self._used)
        for name in reversed(list(self._defs)):
            if name in need:
                need |= self._defs[name][0].vars()
        return need


def reads(*xs: Expr | Cond | int | str) -> set[str]:
    """The variables the expressions and conditions read."""
    out: set[str] = set()
    for x in xs:
        if isinstance(x, Expr):
            out |= x.vars()
        elif isinstance(x, Test):
            out |= x.names
    return out


def let(name: str, e: Expr | int, ctype: str = "int") -> tuple[list[str], Expr]:
    """(declaration, reference) of a local holding ``e``: none for a constant or a lone
    variable, which are used as they are."""
    e = lift(e)
    if isinstance(e, (Const, Var)):
        return [], e
    return [f"const {ctype} {name} = {e};"], Var(name, e.lo, e.hi)


def guarded(cond: Cond, body: list[str], indent: str = "  ") -> list[str]:
    """``body`` under ``if (cond)``: as it is when the condition always holds, nothing when
    it never does."""
    if cond is True:
        return list(body)
    if cond is False:
        return []
    if len(body) == 1 and not body[0].startswith(("for ", "if ", "{", " ")):
        return [f"if ({cond}) {body[0]}"]
    return [f"if ({cond}) {{", *(indent + ln for ln in body), "}"]


def if_else(cond: Cond, then: list[str], other: list[str], indent: str = "  ") -> list[str]:
    """``if (cond) then else other``, or the one branch the ranges choose."""
    if cond is True or (not isinstance(cond, bool) and not other):
        return guarded(cond, then, indent)
    if cond is False or not then:
        return guarded(negate(cond), other, indent)
    if len(then) == 1 and not then[0].startswith(("for ", "if ", "{", " ")):
        head = [f"if ({cond}) {then[0]}", "else {"]
    else:
        head = [f"if ({cond}) {{", *(indent + ln for ln in then), "} else {"]
    return [*head, *(indent + ln for ln in other), "}"]
