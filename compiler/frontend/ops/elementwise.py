"""Converters of elementwise unary ONNX ops.

Most map one-to-one onto the IR op of the same name. Clip is the exception: its bounds are
attributes before opset 11 and optional inputs from then on; constant bounds become the IR
Clip's float attributes, bounds computed at run time become Max/Min nodes.
"""

from __future__ import annotations

import math

import numpy as np

from compiler.frontend.context import Ctx
from compiler.frontend.ops.binary import step
from compiler.frontend.registry import converter
from ir.graph import Value


def _plain(op: str) -> None:
    """Register the converter of an ONNX op with no attributes and an IR twin of one name."""

    def convert(ctx: Ctx, x: Value) -> Value:
        return ctx.op(op, [x])

    convert.__name__ = convert.__qualname__ = op.lower()
    converter(op)(convert)


for _op in ("Relu", "Sigmoid", "Tanh", "HardSwish", "Erf", "Exp", "Log", "Sqrt", "Reciprocal",
            "Abs", "Neg", "Floor", "Ceil", "Round", "Sign", "Softplus", "Softsign", "Mish",
            "Sin", "Cos", "Not"):
    _plain(_op)
for _op in ("Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh"):
    _plain(_op)


@converter("LeakyRelu")
def leaky_relu(ctx: Ctx, x: Value, *, alpha: float = 0.01) -> Value:
    return ctx.op("LeakyRelu", [x], alpha=alpha)


@converter("HardSigmoid")
def hard_sigmoid(ctx: Ctx, x: Value, *, alpha: float = 0.2, beta: float = 0.5) -> Value:
    return ctx.op("HardSigmoid", [x], alpha=alpha, beta=beta)


@converter("Gelu")
def gelu(ctx: Ctx, x: Value, *, approximate: str = "none") -> Value:
    if approximate not in ("none", "tanh"):
        raise ctx.fail(f"Gelu approximate must be 'none' or 'tanh', got {approximate!r}")
    return ctx.op("Gelu", [x], approximate=approximate)


@converter("Elu")
def elu(ctx: Ctx, x: Value, *, alpha: float = 1.0) -> Value:
    return ctx.op("Elu", [x], alpha=alpha)


@converter("Selu")
def selu(
    ctx: Ctx, x: Value, *, alpha: float = 1.67326319217681884765625,
    gamma: float = 1.05070102214813232421875,
) -> Value:
    return ctx.op("Selu", [x], alpha=alpha, gamma=gamma)


@converter("Celu")
def celu(ctx: Ctx, x: Value, *, alpha: float = 1.0) -> Value:
    if alpha == 0:
        raise ctx.fail("Celu alpha must be nonzero")
    return ctx.op("Celu", [x], alpha=alpha)


@converter("ThresholdedRelu")
def thresholded_relu(ctx: Ctx, x: Value, *, alpha: float = 1.0) -> Value:
    return ctx.op("ThresholdedRelu", [x], alpha=alpha)


@converter("Clip", ir_ops=("Clip", "Max", "Min"))
def clip(
    ctx: Ctx, x: Value, lo: Value | None = None, hi: Value | None = None, *,
    min: float | None = None, max: float | None = None,
) -> Value:
    if ctx.opset < 11:
        return ctx.op("Clip", [x], min=-math.inf if min is None else min,
                      max=math.inf if max is None else max)
    lo_attr, lo_rest = _clip_bound(ctx, x, lo, "min", -math.inf)
    hi_attr, hi_rest = _clip_bound(ctx, x, hi, "max", math.inf)
    # Clip = Min(Max(x, min), max): the lower bound is applied first, whatever its form
    stages: list[tuple[str, list[Value], dict[str, float]]] = []
    if lo_rest is not None:
        stages.append(("Max", [lo_rest], {}))
    if lo_attr != -math.inf or hi_attr != math.inf or (lo_rest is None and hi_rest is None):
        stages.append(("Clip", [], {"min": lo_attr, "max": hi_attr}))
    if hi_rest is not None:
        stages.append(("Min", [hi_rest], {}))
    y = x
    for i, (op, extra, attrs) in enumerate(stages):
        if i + 1 < len(stages):
            y = step(ctx, op, [y, *extra], op.lower(), **attrs)
        else:
            y = ctx.op(op, [y, *extra], **attrs)
    return y


def _clip_bound(
    ctx: Ctx, x: Value, bound: Value | None, what: str, absent: float
) -> tuple[float, Value | None]:
    """A Clip bound as (float attribute, None) when it is a constant exactly representable
    as a float, else (absent, the value) for a Max/Min node."""
    if bound is None:
        return absent, None
    if bound.type.dtype != x.type.dtype:
        raise ctx.fail(f"Clip {what} has type {bound.type.dtype.value}, input has "
                       f"{x.type.dtype.value}")
    if math.prod(bound.type.shape) != 1:
        raise ctx.fail(f"Clip {what} must be a scalar, got shape {list(bound.type.shape)}")
    if bound.data is None:
        return absent, bound
    v = np.asarray(bound.data).reshape(())
    as_float = float(v)
    if v.dtype.kind in "iu" and int(as_float) != int(v):
        return absent, bound  # a 64-bit bound a float would round
    if math.isnan(as_float):
        return absent, bound  # nan bounds propagate through Max/Min as numpy does
    return as_float, None


@converter("Shrink")
def shrink(ctx: Ctx, x: Value, *, lambd: float = 0.5, bias: float = 0.0) -> Value:
    return ctx.op("Shrink", [x], lambd=lambd, bias=bias)


@converter("Swish", ir_ops=("Swish", "SiLU"), note="alpha = 1 becomes SiLU")
def swish(ctx: Ctx, x: Value, *, alpha: float = 1.0) -> Value:
    if alpha == 1.0:
        return ctx.op("SiLU", [x])  # the same function recognize-silu makes of x * sigmoid(x)
    return ctx.op("Swish", [x], alpha=alpha)
