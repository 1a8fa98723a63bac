"""Converters of broadcasting binary and variadic ONNX ops."""

from __future__ import annotations

from compiler.frontend.context import Ctx
from compiler.frontend.registry import converter
from ir.graph import Value


@converter("Add")
def add(ctx: Ctx, a: Value, b: Value, *, axis: int | None = None, broadcast: int = 0) -> Value:
    if broadcast and axis is not None:
        raise ctx.fail("legacy Add with broadcast/axis (opset < 7) is not supported")
    return ctx.op("Add", [a, b])
