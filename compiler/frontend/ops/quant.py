"""Converters of ONNX element-type conversions: Cast, CastLike, QuantizeLinear,
DequantizeLinear.

ONNX lets QuantizeLinear's zero point be omitted (u8 zero, or zeros of ``output_dtype``) and
DequantizeLinear's too (zeros of x's type); the IR always has it, so a pass looking for the
quantisation parameters finds them in one place. The narrow types (bfloat16, float8, float4,
int4, int2) are storage: Cast and QuantizeLinear/DequantizeLinear convert them (ir/narrow.py);
types the IR lacks (string, complex) are rejected with UnsupportedModelError.
"""

from __future__ import annotations

import numpy as np
import onnx

from compiler.errors import UnsupportedModelError
from compiler.frontend.context import Ctx
from compiler.frontend.registry import converter
from ir.build import make_node
from ir.graph import Value
from ir.ops.common import norm_axis
from ir.ops.quant import DEQUANT_DTYPES, NARROW_QDQ_DTYPES, QUANT_DTYPES
from ir.ops.registry import OpError
from ir.types import DType


def ir_dtype(elem_type: int, what: str) -> DType:
    """The IR type of ONNX element type ``elem_type``, or UnsupportedModelError."""
    try:
        return DType.from_numpy(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, TypeError, ValueError):
        try:
            name = onnx.TensorProto.DataType.Name(elem_type)
        except ValueError:
            name = str(elem_type)
        raise UnsupportedModelError(
            f"{what} is {name}, which qnnc does not support"
        ) from None


@converter("Cast")
def cast(ctx: Ctx, x: Value, *, to: int, saturate: int = 1, round_mode: str = "up") -> Value:
    # saturate and round_mode only concern float8 targets
    target = ir_dtype(to, "the Cast target type")
    if target is x.type.dtype:
        return x
    return ctx.op("Cast", [x], to=target.value, saturate=bool(saturate), round_mode=round_mode)


@converter("CastLike", ir_ops=("Cast",))
def cast_like(
    ctx: Ctx, x: Value, like: Value, *, saturate: int = 1, round_mode: str = "up"
) -> Value:
    if like.type.dtype is x.type.dtype:
        return x
    return ctx.op("Cast", [x], to=like.type.dtype.value, saturate=bool(saturate),
                  round_mode=round_mode)


def _granularity(
    ctx: Ctx, x: Value, scale: Value, zp: Value | None, axis: int, block_size: int
) -> tuple[Value, Value | None, int]:
    """Canonical (scale, zero point, axis): a one-element constant scale becomes a scalar and
    the axis of a per-tensor scale is 0, so equal quantisations print and compare equal."""
    if scale.type.size == 1 and block_size == 0:
        if scale.is_const:
            scale = ctx.const(np.asarray(scale.data).reshape(()), scale.name)
        if zp is not None and zp.is_const:
            zp = ctx.const(np.asarray(zp.data).reshape(()), zp.name)
        elif zp is not None and zp.type.shape != scale.type.shape and zp.type.size == 1:
            zp = ctx.op("Reshape", [zp], shape=list(scale.type.shape))  # one value, one shape
        return scale, zp, 0
    try:
        return scale, zp, norm_axis(ctx.op_type, axis, x.type.rank)
    except OpError as e:
        raise ctx.fail(str(e)) from None


def _zeros(ctx: Ctx, scale: Value, dtype: DType) -> Value:
    return ctx.const(np.zeros(scale.type.shape, dtype.np), "zero_point")


@converter("QuantizeLinear")
def quantize_linear(
    ctx: Ctx,
    x: Value,
    y_scale: Value,
    y_zero_point: Value | None = None,
    *,
    axis: int = 1,
    saturate: int = 1,
    block_size: int = 0,
    output_dtype: int = 0,
    precision: int = 0,
) -> Value:
    # saturate only concerns float8 outputs; integer outputs always saturate.
    if not saturate:
        raise ctx.fail("saturate=0 (float8 overflow to inf/NaN) is not supported; qnnc's "
                       "QuantizeLinear always saturates")
    out = ir_dtype(output_dtype, "output_dtype") if output_dtype else None
    if y_zero_point is not None:
        if out is not None and out is not y_zero_point.type.dtype:
            raise ctx.fail(
                f"output_dtype {out.value} differs from the zero point's type "
                f"{y_zero_point.type.dtype.value}"
            )
        out = y_zero_point.type.dtype
    out = out or DType.u8
    if out not in QUANT_DTYPES + NARROW_QDQ_DTYPES:
        raise ctx.fail(f"cannot quantise to {out.value}")
    if precision:
        prec = ir_dtype(precision, "precision")
    elif x.type.dtype.is_float:
        # The wider of x and scale, as onnx.reference and onnxruntime compute it.
        prec = DType.from_numpy(np.result_type(x.type.dtype.np, y_scale.type.dtype.np))
    else:
        prec = y_scale.type.dtype
    scale, zp, ax = _granularity(ctx, x, y_scale, y_zero_point, axis, block_size)
    zp = zp if zp is not None else _zeros(ctx, scale, out)
    return ctx.op("QuantizeLinear", [x, scale, zp], axis=ax, block_size=block_size,
                  precision=prec.value)


@converter("DequantizeLinear")
def dequantize_linear(
    ctx: Ctx,
    x: Value,
    x_scale: Value,
    x_zero_point: Value | None = None,
    *,
    axis: int = 1,
    block_size: int = 0,
    output_dtype: int = 0,
) -> Value:
    if x.type.dtype not in DEQUANT_DTYPES + NARROW_QDQ_DTYPES:
        raise ctx.fail(f"cannot dequantise {x.type.dtype.value}")
    out = ir_dtype(output_dtype, "output_dtype") if output_dtype else x_scale.type.dtype
    scale, zp, ax = _granularity(ctx, x, x_scale, x_zero_point, axis, block_size)
    zp = zp if zp is not None else _zeros(ctx, scale, x.type.dtype)
    attrs = {"axis": ax, "block_size": block_size, "dtype": out.value}
    if x.is_const and block_size == 0:
        # A pre-quantised model's integer weights and their scales: kept as a node, not
        # folded to floats, so that the lower-qdq pass can use them as they are
        # (fold-constants folds the node when nothing does).
        try:
            node = make_node(ctx.graph, "DequantizeLinear", [x, scale, zp], attrs,
                             name=ctx.node_name, out_names=ctx.out_hints)
        except OpError as e:
            raise ctx.fail(str(e)) from None
        return node.outputs[0]
    return ctx.op("DequantizeLinear", [x, scale, zp], **attrs)
