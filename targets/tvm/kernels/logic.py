"""Comparisons, boolean logic and Where: exact on every element type (comparisons of floats
follow IEEE: anything compared with nan is false)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ir.types import DType
from targets.tvm.api import te, tir
from targets.tvm.context import Expr, Kernel, Tensor
from targets.tvm.kernels.common import broadcast_index
from targets.tvm.registry import kernel

COMPARE: dict[str, Callable[[Expr, Expr], Expr]] = {
    "Equal": lambda a, b: a == b,
    "Less": lambda a, b: a < b,
    "Greater": lambda a, b: a > b,
    "LessOrEqual": lambda a, b: a <= b,
    "GreaterOrEqual": lambda a, b: a >= b,
    "And": lambda a, b: tir.all(a, b),
    "Or": lambda a, b: tir.any(a, b),
    "Xor": lambda a, b: a.astype("int8") != b.astype("int8"),  # see compare
}


@kernel(*COMPARE)
def compare(k: Kernel) -> list[Tensor]:
    """z[i...] = f(a[ba(i)], b[bb(i)]) as bool, numpy broadcasting: Equal a == b,
    Less a < b, Greater a > b, LessOrEqual a <= b, GreaterOrEqual a >= b; on bools And,
    Or, Xor."""
    (z,) = k.out_types
    at, bt = k.type_of("a"), k.type_of("b")
    a, b = k.operand("a"), k.operand("b")
    fn = COMPARE[k.node.op]
    if k.node.op == "Equal" and at.dtype is DType.bool:
        fn = COMPARE["Xor"]  # TVM 0.27's LLVM code for == and != on bools is invalid (fcmp)
        return [te.compute(z.shape, lambda *i: tir.Not(fn(
            a[tuple(broadcast_index(at.shape, i))], b[tuple(broadcast_index(bt.shape, i))])),
            name="z")]
    return [te.compute(z.shape, lambda *i: fn(a[tuple(broadcast_index(at.shape, i))],
                                              b[tuple(broadcast_index(bt.shape, i))]),
                       name="z")]


@kernel("Not")
def not_(k: Kernel) -> list[Tensor]:
    """y = not x, on bools."""
    (y,) = k.out_types
    x = k.operand("x")
    return [te.compute(y.shape, lambda *i: tir.Not(x[i]), name="y")]


@kernel("Where")
def where(k: Kernel) -> list[Tensor]:
    """z[i...] = condition[bc(i)] ? x[bx(i)] : y[by(i)], all three broadcasting; on any
    element type (codes of one tensor type too: a select moves values, it computes none)."""
    (z,) = k.out_types
    ct, xt, yt = k.type_of("condition"), k.type_of("x"), k.type_of("y")
    c, x, y = k.operand("condition"), k.operand("x"), k.operand("y")

    def body(*i: Any) -> Any:
        return tir.Select(c[tuple(broadcast_index(ct.shape, i))],
                          x[tuple(broadcast_index(xt.shape, i))],
                          y[tuple(broadcast_index(yt.shape, i))])

    return [te.compute(z.shape, body, name="z")]
