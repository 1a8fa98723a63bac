"""Integer index expressions that simplify as they are built, for the C the emitters write.

Offsets in generated C combine loop indices, tile origins and shape constants. Pasted
together as text, a tile of one row leaves ``bn*64 + 0`` behind and a convolution without
padding ``kh * 1 - 0``. Built from these objects with Python's operators instead, constants
fold, zero terms and unit factors vanish, like terms merge, and every expression knows the
range its value can take (from the trip counts of its loops), so that targets/c/cond.py can
decide the bounds checks that cannot fail. ``//`` and ``%`` mean C's ``/`` and ``%``: they
truncate toward zero.

Ranges are intervals: sound for any values of the variables within theirs, never tighter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable


class Expr:
    """An integer C expression with the interval ``[lo, hi]`` of its values (None: unknown)."""

    lo: int | None = None
    hi: int | None = None
    prec = 3  # 3 primary, 2 multiplicative, 1 additive

    def render(self) -> str:
        raise NotImplementedError

    def vars(self) -> frozenset[str]:
        """Names of the variables the expression reads."""
        return frozenset()

    @property
    def value(self) -> int | None:
        """The value when the expression is a constant."""
        return None

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"<{self.render()} in [{self.lo}, {self.hi}]>"

    def __add__(self, o: Expr | int) -> Expr:
        return add(self, o)

    def __radd__(self, o: Expr | int) -> Expr:
        return add(o, self)

    def __sub__(self, o: Expr | int) -> Expr:
        return add(self, mul(o, -1))

    def __rsub__(self, o: Expr | int) -> Expr:
        return add(o, mul(self, -1))

    def __neg__(self) -> Expr:
        return mul(self, -1)

    def __mul__(self, o: Expr | int) -> Expr:
        return mul(self, o)

    def __rmul__(self, o: Expr | int) -> Expr:
        return mul(o, self)

    def __floordiv__(self, k: int) -> Expr:
        return div(self, k)

    def __mod__(self, k: int) -> Expr:
        return mod(self, k)


class Const(Expr):
    def __init__(self, v: int) -> None:
        self.v = self.lo = self.hi = int(v)

    def render(self) -> str:
        return str(self.v)

    @property
    def value(self) -> int | None:
        return self.v


class Var(Expr):
    """A variable, or any primary C expression (a table read, a cast) taken as one; such an
    expression names the variables it ``reads``."""

    def __init__(self, name: str, lo: int | None = None, hi: int | None = None,
                 reads: frozenset[str] = frozenset()) -> None:
        self.name, self.lo, self.hi, self.reads = name, lo, hi, reads

    def render(self) -> str:
        return self.name

    def vars(self) -> frozenset[str]:
        return self.reads or frozenset((self.name,))


def at(array: str, i: Expr | int, lo: int | None = None, hi: int | None = None,
       cast: str = "") -> Var:
    """``array[i]`` (``(cast)array[i]``) as a primary expression with values in [lo, hi]."""
    e = lift(i)
    text = f"({cast}){array}[{e}]" if cast else f"{array}[{e}]"
    return Var(text, lo, hi, e.vars() | {array})


class Sum(Expr):
    """Σ coef·term + const over terms that are not sums of their own (unless scaled)."""

    prec = 1

    def __init__(self, terms: tuple[tuple[Expr, int], ...], const: int) -> None:
        self.terms, self.const = terms, const
        self.lo, self.hi = _sum_range(terms, const)
        if len(terms) == 1 and const == 0:
            self.prec = 2

    def render(self) -> str:
        lead = self.const > 0 and self.terms[0][1] < 0  # 5 - x, not -x + 5
        out = str(self.const) if lead else ""
        for atom, coef in self.terms:
            text = _wrap(atom, 2 if abs(coef) != 1 else 1.5)
            if abs(coef) != 1:
                text += f" * {abs(coef)}"
            if not out:
                out = text if coef > 0 else "-" + text
            else:
                out += (" + " if coef > 0 else " - ") + text
        if self.const and not lead:
            out += f" + {self.const}" if self.const > 0 else f" - {-self.const}"
        return out

    def vars(self) -> frozenset[str]:
        return frozenset().union(*(a.vars() for a, _ in self.terms))


class Prod(Expr):
    prec = 2

    def __init__(self, a: Expr, b: Expr) -> None:
        self.a, self.b = a, b
        self.lo, self.hi = _prod_range(a, b)

    def render(self) -> str:
        return f"{_wrap(self.a, 2)} * {_wrap(self.b, 2)}"

    def vars(self) -> frozenset[str]:
        return self.a.vars() | self.b.vars()


class Div(Expr):
    prec = 2
    op = "/"

    def __init__(self, a: Expr, k: int) -> None:
        self.a, self.k = a, k
        self.lo = None if a.lo is None else _cdiv(a.lo, k)
        self.hi = None if a.hi is None else _cdiv(a.hi, k)

    def render(self) -> str:
        return f"{_wrap(self.a, 3)} {self.op} {self.k}"

    def vars(self) -> frozenset[str]:
        return self.a.vars()


class Mod(Div):
    op = "%"

    def __init__(self, a: Expr, k: int) -> None:
        self.a, self.k = a, k
        known = a.lo is not None and a.hi is not None
        self.lo = 0 if known and a.lo >= 0 else (-(k - 1) if known else None)  # type: ignore
        self.hi = None if not known else k - 1


def _wrap(e: Expr, need: float) -> str:
    """``e`` as an operand that binds at least as tightly as ``need``; quotients and
    remainders are parenthesised inside products too, for the reader."""
    text = e.render()
    if e.prec < need or (isinstance(e, Div) and need >= 2):
        return f"({text})"
    return text


def _cdiv(a: int, k: int) -> int:
    q = abs(a) // abs(k)
    return q if (a >= 0) == (k > 0) else -q


def _cmod(a: int, k: int) -> int:
    return a - k * _cdiv(a, k)


def _sum_range(terms: Iterable[tuple[Expr, int]], const: int) -> tuple[int | None, int | None]:
    lo = hi = const
    for atom, coef in terms:
        if atom.lo is None or atom.hi is None:
            return None, None
        a, b = atom.lo * coef, atom.hi * coef
        lo, hi = lo + min(a, b), hi + max(a, b)
    return lo, hi


def _prod_range(a: Expr, b: Expr) -> tuple[int | None, int | None]:
    if None in (a.lo, a.hi, b.lo, b.hi):
        return None, None
    c = [x * y for x in (a.lo, a.hi) for y in (b.lo, b.hi)]  # type: ignore[operator]
    return min(c), max(c)


def lift(x: Expr | int) -> Expr:
    return x if isinstance(x, Expr) else Const(int(x))


def _terms(e: Expr) -> tuple[list[tuple[Expr, int]], int]:
    if isinstance(e, Const):
        return [], e.v
    if isinstance(e, Sum):
        return list(e.terms), e.const
    return [(e, 1)], 0


def add(*xs: Expr | int) -> Expr:
    """The simplified sum: sums flattened, like terms merged, constants folded."""
    merged: dict[str, tuple[Expr, int]] = {}
    const = 0
    for x in xs:
        terms, c = _terms(lift(x))
        const += c
        for atom, coef in terms:
            key = atom.render()
            old = merged.get(key)
            merged[key] = (atom, coef + (old[1] if old else 0))
    terms = tuple((a, c) for a, c in merged.values() if c != 0)
    if not terms:
        return Const(const)
    if len(terms) == 1 and terms[0][1] == 1 and const == 0:
        return terms[0][0]
    return Sum(terms, const)


def mul(a: Expr | int, b: Expr | int) -> Expr:
    """The simplified product: a constant factor scales a single term, a zero annihilates, a
    one vanishes; a sum keeps its parentheses (``(oh * 2 + kh) * 75``)."""
    a, b = lift(a), lift(b)
    if a.value is not None and b.value is None:
        a, b = b, a
    k = b.value
    if k is None:
        return Prod(a, b)
    if k == 0:
        return Const(0)
    if a.value is not None:
        return Const(a.value * k)
    if k == 1:
        return a
    terms, const = _terms(a)
    if len(terms) == 1 and const == 0:
        atom, coef = terms[0]
        return Sum(((atom, coef * k),), 0)
    return Sum(((a, k),), 0)


def div(a: Expr | int, k: int) -> Expr:
    """C's ``a / k`` for a positive constant ``k``."""
    a = lift(a)
    if k == 1:
        return a
    if a.value is not None:
        return Const(_cdiv(a.value, k))
    if a.lo is not None and a.hi is not None and a.lo >= 0 and a.hi < k:
        return Const(0)
    terms, const = _terms(a)
    if a.lo is not None and a.lo >= 0 and const % k == 0 and all(c % k == 0 for _, c in terms):
        return add(*(mul(t, c // k) for t, c in terms), const // k)
    return Div(a, k)


def mod(a: Expr | int, k: int) -> Expr:
    """C's ``a % k`` for a positive constant ``k``."""
    a = lift(a)
    if k == 1:
        return Const(0)
    if a.value is not None:
        return Const(_cmod(a.value, k))
    if a.lo is not None and a.hi is not None and a.lo >= 0 and a.hi < k:
        return a
    return Mod(a, k)


# -- index formulas written as text elsewhere -------------------------------------------------
def parse(text: str, env: dict[str, Expr | int]) -> Expr:
    """The expression of an integer formula given as C text (``((a)*4 + (b)/32)*8``, as
    ir/layouts.py writes a layout's offsets) over the names bound in ``env``: + - * / %,
    parentheses, integer literals."""
    toks = _TOKEN.findall(text.replace(" ", ""))
    if "".join(toks) != text.replace(" ", ""):
        raise ValueError(f"not an index formula: {text!r}")
    pos = 0

    def peek() -> str:
        return toks[pos] if pos < len(toks) else ""

    def take() -> str:
        nonlocal pos
        pos += 1
        return toks[pos - 1]

    def atom() -> Expr:
        t = take()
        if t == "(":
            e = sum_()
            if take() != ")":
                raise ValueError(f"unbalanced parentheses in {text!r}")
            return e
        if t == "-":
            return -atom()
        if t.isdigit():
            return Const(int(t))
        return lift(env[t])

    def product() -> Expr:
        e = atom()
        while peek() in ("*", "/", "%"):
            op, rhs = take(), atom()
            if op == "*":
                e = e * rhs
            else:
                k = rhs.value
                if k is None or k <= 0:
                    raise ValueError(f"a divisor must be a positive constant in {text!r}")
                e = e // k if op == "/" else e % k
        return e

    def sum_() -> Expr:
        e = product()
        while peek() in ("+", "-"):
            op, rhs = take(), product()
            e = e + rhs if op == "+" else e - rhs
        return e

    out = sum_()
    if pos != len(toks):
        raise ValueError(f"trailing text in {text!r}")
    return out


_TOKEN = re.compile(r"\d+|[A-Za-z_]\w*|[-+*/%()]")
