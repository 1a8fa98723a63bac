"""Converters of ONNX ops that become constants or views at import:
Shape, Size, Constant, ConstantOfShape, Range, Dropout.

Shapes are static in qnnc, so these ops never reach the IR: each returns a constant (or, for
inference-mode Dropout, its input), and the ops that consume them fold in turn.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from compiler.errors import UnsupportedModelError
from compiler.frontend.context import Ctx
from compiler.frontend.registry import converter
from ir.graph import Value
from ir.types import DType


def _supported(ctx: Ctx, array: Any, what: str) -> np.ndarray:
    """``array`` as a numpy array of an IR element type, or an UnsupportedModelError."""
    arr = np.asarray(array)
    try:
        DType.from_numpy(arr.dtype)
    except TypeError:
        raise UnsupportedModelError(
            f"{what} has element type {arr.dtype}, which qnnc does not support"
        ) from None
    return arr


@converter("Shape", ir_ops=(), note="a constant: shapes are static")
def shape(ctx: Ctx, x: Value, *, start: int = 0, end: int | None = None) -> Value:
    # Python slicing clamps out-of-range bounds exactly as ONNX's Shape-15 specifies.
    return ctx.const(np.array(x.type.shape[start:end], dtype=np.int64))


@converter("Size", ir_ops=(), note="a constant: shapes are static")
def size(ctx: Ctx, x: Value) -> Value:
    return ctx.const(np.array(x.type.size, dtype=np.int64))


@converter("Constant", ir_ops=(), note="no sparse or string values")
def constant(
    ctx: Ctx, *, value: Any = None, value_float: float | None = None,
    value_floats: list[float] | None = None, value_int: int | None = None,
    value_ints: list[int] | None = None, sparse_value: Any = None,
    value_string: str | None = None, value_strings: list[str] | None = None,
) -> Value:
    if sparse_value is not None:
        raise UnsupportedModelError("Constant with a sparse_value is not supported")
    if value_string is not None or value_strings is not None:
        raise UnsupportedModelError("Constant with string values is not supported")
    if value is not None:
        arr = value
    elif value_float is not None:
        arr = np.array(value_float, dtype=np.float32)
    elif value_floats is not None:
        arr = np.array(value_floats, dtype=np.float32)
    elif value_int is not None:
        arr = np.array(value_int, dtype=np.int64)
    elif value_ints is not None:
        arr = np.array(value_ints, dtype=np.int64)
    else:
        raise ctx.fail("Constant has no value attribute")
    return ctx.const(_supported(ctx, arr, "the constant"))


@converter("ConstantOfShape", ir_ops=(), note="shape must be constant")
def constant_of_shape(ctx: Ctx, shape: Value, *, value: Any = None) -> Value:
    dims = ctx.ints_of(shape, "input")
    if any(d < 0 for d in dims):
        raise ctx.fail(f"shape {dims} has a negative dim")
    fill = np.zeros(1, np.float32) if value is None else _supported(ctx, value, "value")
    if fill.size != 1:
        raise ctx.fail(f"value must hold one element, it holds {fill.size}")
    ctx.check_size(dims, fill.dtype.itemsize)
    return ctx.const(np.full(dims, fill.reshape(-1)[0], dtype=fill.dtype))


@converter("Range", ir_ops=(), note="start, limit, delta must be constant")
def range_(ctx: Ctx, start: Value, limit: Value, delta: Value) -> Value:
    """output[i] = start + i*delta for i < max(ceil((limit - start) / delta), 0).

    The length depends on the three values, so they must be compile-time constants.
    """
    s, lim, d = (ctx.value_of(v, w) for v, w in ((start, "start"), (limit, "limit"),
                                                   (delta, "delta")))
    if not s.dtype == lim.dtype == d.dtype:
        raise ctx.fail(f"start, limit and delta must share a type: {s.dtype}, {lim.dtype}, "
                       f"{d.dtype}")
    integral = s.dtype.kind in "iu"
    # float types (bfloat16 too, whose .item() is not a number) are read through float64
    sv, lv, dv = (a.item() if integral else float(np.asarray(a, np.float64)) for a in (s, lim, d))
    if dv == 0:
        raise ctx.fail("delta must not be 0")
    if not all(math.isfinite(v) for v in (sv, lv, dv)):
        raise ctx.fail(f"start, limit and delta must be finite: {sv}, {lv}, {dv}")
    n = max(math.ceil((lv - sv) / dv), 0)
    ctx.check_size([n], 8)
    if integral:
        out = sv + np.arange(n, dtype=np.int64) * dv
    else:
        out = s.astype(np.float64) + np.arange(n, dtype=np.float64) * d.astype(np.float64)
    return ctx.const(out.astype(s.dtype))


@converter("Dropout", ir_ops=(), note="inference only: y = x")
def dropout(
    ctx: Ctx, x: Value, ratio_in: Value | None = None, training_mode: Value | None = None, *,
    ratio: float = 0.5, seed: int | None = None, is_test: int = 0,
    consumed_inputs: list[int] | None = None,
) -> Value | list[Value]:
    """Inference-mode Dropout: y = x and the mask is all ones (nothing dropped).

    qnnc compiles inference graphs; an explicit ``training_mode`` of true asks for random
    masking, which it refuses. The ratio is irrelevant in inference, so it may be dynamic.
    Before opset 7, ``is_test`` was a hint for runtimes that qnnc, inference-only, ignores.
    """
    if training_mode is not None and bool(ctx.value_of(training_mode, "training_mode").any()):
        raise UnsupportedModelError(
            "Dropout in training mode (training_mode = true) is random; qnnc compiles "
            "inference graphs only. Export the model in eval mode."
        )
    if len(ctx.out_hints) < 2 or not ctx.out_hints[1]:
        return x
    mask_dtype = np.bool_ if ctx.opset >= 10 else x.type.dtype.np
    mask = ctx.const(np.ones(x.type.shape, dtype=mask_dtype), ctx.out_hints[1])
    return [x, mask]
