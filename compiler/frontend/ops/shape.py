"""Converters of ONNX ops that reshape or re-view data."""

from __future__ import annotations

from compiler.frontend.context import Ctx
from compiler.frontend.registry import converter
from ir.graph import Value


@converter("Identity")
def identity(ctx: Ctx, x: Value) -> Value:
    return x
