"""Converters of ONNX reductions and ordering ops: ReduceX, ArgMax/ArgMin, CumSum, TopK.

The axes of ReduceX moved from an attribute to an input (ReduceSum in opset 13, the others in
opset 18); either way they must be compile-time constants and become the IR op's explicit,
sorted ``axes``.
"""

from __future__ import annotations

from collections.abc import Callable

from compiler.frontend.context import Ctx
from compiler.frontend.registry import converter
from ir.graph import Value
from ir.ops.common import norm_axis
from ir.ops.reduce import canonical_axes
from ir.ops.registry import OpError

REDUCTIONS = (
    "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
    "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp",
)


def _axis(ctx: Ctx, axis: int, rank: int) -> int:
    try:
        return norm_axis(ctx.op_type, axis, rank)
    except OpError as e:
        raise ctx.fail(str(e)) from None


def _reduce_converter(op: str) -> Callable[..., Value]:
    """The converter of ONNX ``op``: all ten reductions take the same inputs and attributes."""

    def convert(
        ctx: Ctx,
        data: Value,
        axes_input: Value | None = None,
        *,
        axes: list[int] | None = None,
        keepdims: int = 1,
        noop_with_empty_axes: int = 0,
    ) -> Value:
        if axes_input is not None:
            if axes is not None:
                raise ctx.fail("axes are given both as an attribute and as an input")
            axes = ctx.ints_of(axes_input, "axes")
        rank = data.type.rank
        if not axes:
            # No axes: every axis, unless noop_with_empty_axes asks for none.
            axes = [] if noop_with_empty_axes else list(range(rank))
        try:
            canon = canonical_axes(op, axes, rank)
        except OpError as e:
            raise ctx.fail(str(e)) from None
        return ctx.op(op, [data], axes=canon, keepdims=bool(keepdims))

    convert.__name__ = convert.__qualname__ = op.lower()
    convert.__doc__ = f"ONNX {op} → IR {op} with explicit axes."
    return convert


for _op in REDUCTIONS:
    converter(_op)(_reduce_converter(_op))


@converter("ArgMax")
def arg_max(
    ctx: Ctx, data: Value, *, axis: int = 0, keepdims: int = 1, select_last_index: int = 0
) -> Value:
    return ctx.op("ArgMax", [data], axis=_axis(ctx, axis, data.type.rank),
                  keepdims=bool(keepdims), select_last_index=bool(select_last_index))


@converter("ArgMin")
def arg_min(
    ctx: Ctx, data: Value, *, axis: int = 0, keepdims: int = 1, select_last_index: int = 0
) -> Value:
    return ctx.op("ArgMin", [data], axis=_axis(ctx, axis, data.type.rank),
                  keepdims=bool(keepdims), select_last_index=bool(select_last_index))


@converter("CumSum")
def cum_sum(
    ctx: Ctx, x: Value, axis: Value, *, exclusive: int = 0, reverse: int = 0
) -> Value:
    ax = ctx.ints_of(axis, "axis")
    if len(ax) != 1:
        raise ctx.fail(f"axis must hold one value, got {ax}")
    return ctx.op("CumSum", [x], axis=_axis(ctx, ax[0], x.type.rank),
                  exclusive=bool(exclusive), reverse=bool(reverse))


@converter("TopK")
def top_k(
    ctx: Ctx,
    x: Value,
    k_input: Value | None = None,
    *,
    axis: int = -1,
    largest: int = 1,
    sorted: int = 1,  # noqa: A002 - ONNX's attribute name
    k: int | None = None,
) -> list[Value]:
    if k_input is not None:
        ks = ctx.ints_of(k_input, "K")
        if len(ks) != 1:
            raise ctx.fail(f"K must hold one value, got {ks}")
        k = ks[0]
    if k is None:
        raise ctx.fail("k is required (as input K since opset 10, as attribute before)")
    return ctx.ops("TopK", [x], k=k, axis=_axis(ctx, axis, x.type.rank),
                   largest=bool(largest), sorted=bool(sorted))
