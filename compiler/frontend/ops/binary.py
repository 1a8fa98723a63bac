"""Converters of broadcasting binary and variadic ONNX ops.

The variadic Sum, Mean, Max and Min become left-to-right chains of the binary IR ops (Mean
divides the sum by the input count), so passes and code generators see only binary forms.
"""

from __future__ import annotations

import numpy as np

from compiler.frontend.context import Ctx
from compiler.frontend.registry import converter
from ir.graph import Value


def step(ctx: Ctx, op: str, inputs: list[Value], suffix: str, **attrs: object) -> Value:
    """Emit an intermediate op of a multi-op lowering under a derived name (``y_sum``), so
    that the last op keeps the ONNX output's own name."""
    hints = ctx.out_hints
    ctx.out_hints = [f"{h}_{suffix}" for h in hints if h]
    try:
        return ctx.op(op, inputs, **attrs)
    finally:
        ctx.out_hints = hints


def _no_legacy_broadcast(ctx: Ctx, axis: int | None, broadcast: int) -> None:
    if broadcast or axis is not None:
        raise ctx.fail(
            f"legacy {ctx.op_type} with broadcast/axis attributes (opset < 7) is not supported"
        )


@converter("Add")
def add(ctx: Ctx, a: Value, b: Value, *, axis: int | None = None, broadcast: int = 0) -> Value:
    _no_legacy_broadcast(ctx, axis, broadcast)
    return ctx.op("Add", [a, b])


@converter("Sub")
def sub(ctx: Ctx, a: Value, b: Value, *, axis: int | None = None, broadcast: int = 0) -> Value:
    _no_legacy_broadcast(ctx, axis, broadcast)
    return ctx.op("Sub", [a, b])


@converter("Mul")
def mul(ctx: Ctx, a: Value, b: Value, *, axis: int | None = None, broadcast: int = 0) -> Value:
    _no_legacy_broadcast(ctx, axis, broadcast)
    return ctx.op("Mul", [a, b])


@converter("Div")
def div(ctx: Ctx, a: Value, b: Value, *, axis: int | None = None, broadcast: int = 0) -> Value:
    _no_legacy_broadcast(ctx, axis, broadcast)
    return ctx.op("Div", [a, b])


@converter("Pow")
def pow_(ctx: Ctx, x: Value, y: Value) -> Value:
    return ctx.op("Pow", [x, y])


@converter("Mod")
def mod(ctx: Ctx, a: Value, b: Value, *, fmod: int = 0) -> Value:
    return ctx.op("Mod", [a, b], fmod=fmod)


@converter("PRelu")
def prelu(ctx: Ctx, x: Value, slope: Value) -> Value:
    return ctx.op("PRelu", [x, slope])


@converter("BitShift")
def bit_shift(ctx: Ctx, x: Value, y: Value, *, direction: str = "") -> Value:
    if direction not in ("LEFT", "RIGHT"):
        raise ctx.fail(f"BitShift direction must be 'LEFT' or 'RIGHT', got {direction!r}")
    return ctx.op("BitShift", [x, y], direction=direction)


@converter("Where")
def where(ctx: Ctx, cond: Value, x: Value, y: Value) -> Value:
    return ctx.op("Where", [cond, x, y])


def _compare(op: str) -> None:
    """Register a comparison or logic op: two inputs, no attributes (pre-7 broadcast
    attributes are rejected)."""

    def convert(ctx: Ctx, a: Value, b: Value, *, axis: int | None = None,
                broadcast: int = 0) -> Value:
        _no_legacy_broadcast(ctx, axis, broadcast)
        return ctx.op(op, [a, b])

    convert.__name__ = convert.__qualname__ = op.lower()
    converter(op)(convert)


for _op in ("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor"):
    _compare(_op)


def _chain(ctx: Ctx, op: str, xs: tuple[Value | None, ...], last: bool = True) -> Value:
    """((x0 op x1) op x2) ... with broadcasting at every step. ``last``: the final op
    produces the node's output (else every op is an intermediate step)."""
    present = [x for x in xs if x is not None]
    if not present:
        raise ctx.fail(f"{ctx.op_type} needs at least one input")
    acc = present[0]
    for i, x in enumerate(present[1:], start=2):
        if last and i == len(present):
            acc = ctx.op(op, [acc, x])
        else:
            acc = step(ctx, op, [acc, x], f"{op.lower()}{i}")
    return acc


@converter("Sum", ir_ops=("Add",))
def sum_(ctx: Ctx, *xs: Value | None) -> Value:
    return _chain(ctx, "Add", xs)


@converter("Max", ir_ops=("Max",))
def max_(ctx: Ctx, *xs: Value | None) -> Value:
    return _chain(ctx, "Max", xs)


@converter("Min", ir_ops=("Min",))
def min_(ctx: Ctx, *xs: Value | None) -> Value:
    return _chain(ctx, "Min", xs)


@converter("Mean", ir_ops=("Add", "Div"))
def mean(ctx: Ctx, *xs: Value | None) -> Value:
    n = sum(x is not None for x in xs)
    total = _chain(ctx, "Add", xs, last=n == 1)
    if n == 1:
        return total
    count = ctx.const(np.asarray(n, dtype=total.type.dtype.np), f"{ctx.op_type.lower()}_count")
    return ctx.op("Div", [total, count])
