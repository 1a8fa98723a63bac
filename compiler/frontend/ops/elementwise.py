"""Converters of elementwise unary ONNX ops."""

from __future__ import annotations

from compiler.frontend.context import Ctx
from compiler.frontend.registry import converter
from ir.graph import Value


@converter("Relu")
def relu(ctx: Ctx, x: Value) -> Value:
    return ctx.op("Relu", [x])
