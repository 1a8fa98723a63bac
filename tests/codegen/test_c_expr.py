"""The index expressions of targets/c/expr.py: what they simplify, the ranges they know,
the conditions those ranges decide, and the C they print (which must compute the same)."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import pytest

from targets.c.cond import all_of, any_of, eq, ge, lt, minimum
from targets.c.expr import Const, Expr, Mod, Prod, Sum, Var, add, at, parse
from targets.c.stmt import Scope, if_else, loop, nested
from targets.c.wrap import comment_block, table_rows, wrap_line


def test_identities_vanish_as_expressions_are_built() -> None:
    kh, oh = Var("kh", 0, 2), Var("oh", 0, 110)
    assert str(oh * 2 - 0 + kh * 1) == "oh * 2 + kh"
    assert str(Var("x") + 0) == "x" and str(1 * Var("x")) == "x" and str(Var("x") * 0) == "0"
    assert str((Var("a") + Var("b")) * 3 * 2) == "(a + b) * 6"
    assert str(Var("a") - (Var("b") + 1) * 3) == "a - (b + 1) * 3"
    assert str(5 - Var("x")) == "5 - x"
    assert str(Var("i") * 32 + Var("m") - Var("i") * 32) == "m"  # like terms cancel


def test_ranges_fold_quotients_and_remainders() -> None:
    m = Var("m", 0, 31)
    assert str(m // 32) == "0" and str(m % 32) == "m"
    assert str((Var("i", 0, 3) * 28 + Var("j", 0, 13) * 2) // 2) == "i * 14 + j"
    assert str(Var("c", 0, 63) // 32 * 3) == "(c / 32) * 3"
    assert (Var("c", 0, 63) % 32).hi == 31


def test_conditions_the_ranges_decide_are_not_written() -> None:
    r = Var("oh", 0, 110) * 2 + Var("kh", 0, 2)  # in [0, 222]
    assert lt(r, 0) is False and lt(r, 223) is True and str(lt(r, 222)) == "oh * 2 + kh < 222"
    assert str(all_of(ge(r, 0), lt(r, 222))) == "oh * 2 + kh < 222"
    assert all_of(ge(r, 0), lt(r, 300)) is True and all_of(lt(r, 0), lt(r, 5)) is False
    assert any_of(lt(r, 0), True) is True
    assert str(all_of(lt(Var("x"), 3), any_of(eq(Var("y"), 0), eq(Var("z"), 1)))) == \
        "x < 3 && (y == 0 || z == 1)"
    assert all_of(lt(Var("x"), 3)).names == frozenset({"x"})  # type: ignore[union-attr]
    assert minimum(Var("v", 0, 5), 8) is not None and str(minimum(Var("v", 0, 5), 8)) == "v"


def test_a_loop_of_one_trip_is_not_written() -> None:
    head, i = loop("bn", 1)
    assert head is None and i.value == 0
    head, i = loop("k", 4)
    assert head == "for (int k = 0; k < 4; ++k)" and (i.lo, i.hi) == (0, 3)
    head, i = loop("mi", Var("vm", 1, 1))
    assert head is None
    assert nested([None, None], ["x = 1;"]) == ["x = 1;"]
    assert nested([None], ["int t = 1;"], scoped=True) == ["{", "  int t = 1;", "}"]
    assert nested(["for (int k = 0; k < 4; ++k)"], ["a[k] = 0;"]) == \
        ["for (int k = 0; k < 4; ++k) a[k] = 0;"]
    assert if_else(True, ["a;"], ["b;"]) == ["a;"] and if_else(False, ["a;"], []) == []


def test_a_scope_declares_only_what_is_read() -> None:
    sc = Scope()
    n = sc.let("n", Var("y1n") + Var("bn", 0, 3))
    m = sc.let("m", Var("y1m") + Var("mi", 0, 7))
    assert sc.let("z", Var("i")).vars() == {"i"}  # a lone variable needs no local
    body, outer = sc.close([f"out[{m}] = 0;"], at("out", m).vars())
    assert body == ["const int m = y1m + mi;", "out[m] = 0;"] and "n" not in outer
    assert outer >= {"y1m", "mi"}
    del n


def test_layout_formulas_parse_into_expressions() -> None:
    env = {"a": Const(0), "b": Var("c", 0, 2), "y": Var("h"), "x": Var("w")}
    assert str(parse("((((a)*1 + (b)/32)*224 + (y))*224 + (x))*32 + (b)%32", env)) == \
        "(h * 224 + w) * 32 + c"
    with pytest.raises(ValueError):
        parse("a ^ b", env)


def _value(e: Expr, env: dict[str, int]) -> int:
    """``e`` evaluated with C's truncating / and %, from its structure (not its text)."""
    if isinstance(e, Const):
        return e.v
    if isinstance(e, Var):
        return env[e.name]
    if isinstance(e, Sum):
        return e.const + sum(c * _value(t, env) for t, c in e.terms)
    if isinstance(e, Prod):
        return _value(e.a, env) * _value(e.b, env)
    p, q = _value(e.a, env), e.k  # type: ignore[attr-defined]
    quo = abs(p) // q if p >= 0 else -(abs(p) // q)
    return p - q * quo if isinstance(e, Mod) else quo


def test_the_printed_c_computes_what_the_expression_means(tmp_path: Path) -> None:
    """The text, compiled by the C compiler, gives the expression's value, inside its range."""
    x, y = Var("x", -7, 7), Var("y", -7, 7)
    exprs = [(x * 3 + y) // 4, (x - y) % 5, (x + 3) * 2 - (y - 2) * 3, x * y + 1,
             ((x + 7) * 2 + y + 7) // 2, (y + 7) % 16, 5 - x - (y + 1) * 4, -(x + y) * 2]
    points = list(itertools.product(range(-7, 8), repeat=2))
    body = "\n".join(f'    printf("%d\\n", {e});' for e in exprs)
    src = tmp_path / "e.c"
    src.write_text("#include <stdio.h>\nint main(void) {\n"
                   f"  static const int xs[] = {{{', '.join(str(a) for a, _ in points)}}};\n"
                   f"  static const int ys[] = {{{', '.join(str(b) for _, b in points)}}};\n"
                   f"  for (int k = 0; k < {len(points)}; ++k) {{\n"
                   "    const int x = xs[k], y = ys[k];\n" + body + "\n  }\n  return 0;\n}\n")
    subprocess.run(["cc", "-O1", "-o", str(tmp_path / "e"), str(src)], check=True)
    got = subprocess.run([str(tmp_path / "e")], check=True, capture_output=True,
                         text=True).stdout.split()
    want = []
    for a, b in points:
        for e in exprs:
            v = _value(e, {"x": a, "y": b})
            assert e.lo is None or e.lo <= v <= e.hi, (str(e), v)
            want.append(str(v))
    assert got == want


def test_long_lines_break_at_commas_and_keep_strings_whole() -> None:
    line = "    f(" + ", ".join(f"argument_{k}" for k in range(20)) + ', "a, b, c");'
    out = wrap_line(line, 60)
    assert all(len(ln) <= 60 for ln in out) and len(out) > 1
    assert '"a, b, c"' in "".join(out)
    assert out[1].startswith(" " * 6)  # lined up after the open bracket
    assert " ".join(ln.strip() for ln in out) == line.strip()
    rows = table_rows([str(v) for v in range(100)], "    ", 40)
    assert all(len(r) <= 40 for r in rows) and rows[-1].endswith(",")
    block = comment_block(["x " * 80], "  ", 50)
    assert all(len(ln) <= 50 for ln in block.splitlines())
    assert block.startswith("  /* ") and block.endswith("*/")


def test_add_merges_and_orders_terms() -> None:
    terms = [Var(n) for n in "abc"]
    for perm in itertools.permutations(terms):
        assert add(*perm, *(t * -1 for t in terms)).value == 0
