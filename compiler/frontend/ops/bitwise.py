"""Converters of bit-level ONNX ops: BitwiseAnd/Or/Xor/Not, BitCast, IsNaN, IsInf.

Each maps one-to-one onto the IR op of the same name (ir/ops/bitwise.py).
"""

from __future__ import annotations

from compiler.frontend.context import Ctx
from compiler.frontend.ops.quant import ir_dtype
from compiler.frontend.registry import converter
from ir.graph import Value


def _binary(op: str) -> None:
    def convert(ctx: Ctx, a: Value, b: Value) -> Value:
        return ctx.op(op, [a, b])

    convert.__name__ = convert.__qualname__ = op.lower()
    converter(op)(convert)


for _op in ("BitwiseAnd", "BitwiseOr", "BitwiseXor"):
    _binary(_op)


@converter("BitwiseNot")
def bitwise_not(ctx: Ctx, x: Value) -> Value:
    return ctx.op("BitwiseNot", [x])


@converter("BitCast")
def bit_cast(ctx: Ctx, x: Value, *, to: int) -> Value:
    target = ir_dtype(to, "BitCast's target type")
    if target.np.itemsize != x.type.dtype.np.itemsize:
        raise ctx.fail(f"BitCast from {x.type.dtype.value} to {target.value}: the types differ "
                       "in width, which ONNX does not allow")
    return ctx.op("BitCast", [x], to=target.value)


@converter("IsNaN")
def is_nan(ctx: Ctx, x: Value) -> Value:
    return ctx.op("IsNaN", [x])


@converter("IsInf")
def is_inf(ctx: Ctx, x: Value, *, detect_negative: int = 1, detect_positive: int = 1) -> Value:
    return ctx.op("IsInf", [x], detect_negative=bool(detect_negative),
                  detect_positive=bool(detect_positive))
