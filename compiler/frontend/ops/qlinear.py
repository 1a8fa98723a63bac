"""Converters of ONNX's QOperator form: QLinearConv, QLinearMatMul, ConvInteger,
MatMulInteger, DynamicQuantizeLinear, and onnxruntime's com.microsoft QLinearAdd, QLinearMul,
QLinearAveragePool, QLinearGlobalAveragePool, QLinearConcat, QLinearSigmoid, QLinearLeakyRelu.

These are integer ops already, so each converter translates its node one to one into the
IR's integer op (QLinearConv → QConv, QLinearConcat → Requantize + Concat, ...); the
quantised forms of ir/qforms.py are for float ops (the calibration quantiser, and the QDQ
sandwiches lower-qdq finds). A table op (QLinearSigmoid, QLinearLeakyRelu) is the float op's
own reference compute tabulated, as in the forms, so its meaning is defined once.

In these models scales and zero points are constant tensor inputs beside plain u8/i8 data.
The IR keeps them in the types instead: an operand that arrives without them (a graph input,
a constant weight) is given them by a ``Retype`` (free at run time; folded into a constant's
type), and the Q-op's result type names the output's. An operand that already carries other
params is re-typed to the ones the node declares, as the ONNX node reads the raw integers.
"""

from __future__ import annotations

import numpy as np

from compiler.frontend.context import Ctx
from compiler.frontend.ops.conv import spatial_attrs
from compiler.frontend.registry import converter
from ir import qmath
from ir.graph import Value
from ir.ops.common import norm_axis
from ir.ops.registry import OpError, get_op
from ir.types import DType, QuantParams

MS = "com.microsoft"


def qparams(ctx: Ctx, x: Value, scale: Value, zp: Value | None, what: str,
            axis: int | None = None) -> QuantParams:
    """QuantParams of ``x`` from constant scale / zero point inputs (zero point: 0 if omitted);
    several scales make per-axis params along ``axis``."""
    s = np.asarray(ctx.value_of(scale, f"{what}_scale"), dtype=np.float64).reshape(-1)
    z = (np.zeros(s.shape, np.int64) if zp is None else
         np.asarray(ctx.value_of(zp, f"{what}_zero_point")).astype(np.int64).reshape(-1))
    if z.size == 1 and s.size > 1:
        z = np.repeat(z, s.size)
    if s.size != z.size:
        raise ctx.fail(f"{what}: {s.size} scales but {z.size} zero points")
    try:
        if s.size == 1:
            return QuantParams.per_tensor(float(s[0]), int(z[0]))
        if axis is None:
            raise ctx.fail(f"{what}: expected one scale, got {s.size}")
        return QuantParams(tuple(float(v) for v in s), tuple(int(v) for v in z), axis)
    except ValueError as e:
        raise ctx.fail(f"{what}: {e}") from None


def typed(ctx: Ctx, v: Value, q: QuantParams) -> Value:
    """``v`` carrying quant params ``q`` (a Retype unless it already does)."""
    if v.type.quant == q:
        return v
    hints, ctx.out_hints = ctx.out_hints, [f"{v.name}_q"]  # the node's names are its results'
    try:
        return ctx.op("Retype", [v], scale=list(q.scale), zero_point=list(q.zero_point),
                      axis=0 if q.axis is None else q.axis)
    finally:
        ctx.out_hints = hints


def operand(ctx: Ctx, v: Value, scale: Value, zp: Value | None, what: str) -> Value:
    """A per-tensor quantised activation operand."""
    return typed(ctx, v, qparams(ctx, v, scale, zp, what))


def out_attrs(ctx: Ctx, scale: Value, zp: Value | None, like: Value) -> dict[str, object]:
    """out_dtype / out_scale / out_zp of a result quantised by (scale, zp); the result type is
    the zero point's (or ``like``'s when the zero point is omitted)."""
    q = qparams(ctx, like, scale, zp, "y")
    dt = like.type.dtype if zp is None else zp.type.dtype
    if dt not in (DType.u8, DType.i8):
        raise ctx.fail(f"the result must be u8 or i8, got {dt.value}")
    return {"out_dtype": dt.value, "out_scale": q.scale[0], "out_zp": q.zero_point[0]}


@converter("QLinearConv", ir_ops=("QConv", "Retype"))
def qlinear_conv(
    ctx: Ctx, x: Value, x_scale: Value, x_zero_point: Value, w: Value, w_scale: Value,
    w_zero_point: Value, y_scale: Value, y_zero_point: Value, b: Value | None = None, *,
    auto_pad: str = "NOTSET", dilations: list[int] | None = None, group: int = 1,
    kernel_shape: list[int] | None = None, pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> Value:
    ctx.value_of(w, "w")
    kernel = list(w.type.shape[2:])
    if kernel_shape and list(kernel_shape) != kernel:
        raise ctx.fail(f"kernel_shape {list(kernel_shape)} disagrees with the weight {kernel}")
    s, d, p = spatial_attrs(ctx, x, kernel, strides, dilations, pads, auto_pad)
    xq = operand(ctx, x, x_scale, x_zero_point, "x")
    wq = typed(ctx, w, qparams(ctx, w, w_scale, w_zero_point, "w", axis=0))
    if b is not None:
        ctx.value_of(b, "B")
    return ctx.op("QConv", [xq, wq, b], strides=s, dilations=d, pads=p, group=group,
                  **out_attrs(ctx, y_scale, y_zero_point, x))


@converter("QLinearMatMul", ir_ops=("QLinear", "QMatMul", "Retype"))
def qlinear_matmul(
    ctx: Ctx, a: Value, a_scale: Value, a_zero_point: Value, b: Value, b_scale: Value,
    b_zero_point: Value, y_scale: Value, y_zero_point: Value,
) -> Value:
    out = out_attrs(ctx, y_scale, y_zero_point, a)
    aq = operand(ctx, a, a_scale, a_zero_point, "a")
    if b.is_const and b.type.rank == 2 and not a.is_const:
        # a constant weight: the fully connected layer, weight [N, K], params per column
        wt = ctx.const(np.ascontiguousarray(np.asarray(b.data).T), f"{b.name}_t")
        wq = typed(ctx, wt, qparams(ctx, b, b_scale, b_zero_point, "b", axis=0))
        return ctx.op("QLinear", [aq, wq], **out)
    bq = operand(ctx, b, b_scale, b_zero_point, "b")
    return ctx.op("QMatMul", [aq, bq], **out)


@converter("ConvInteger")
def conv_integer(
    ctx: Ctx, x: Value, w: Value, x_zero_point: Value | None = None,
    w_zero_point: Value | None = None, *, auto_pad: str = "NOTSET",
    dilations: list[int] | None = None, group: int = 1, kernel_shape: list[int] | None = None,
    pads: list[int] | None = None, strides: list[int] | None = None,
) -> Value:
    kernel = list(kernel_shape) if kernel_shape else list(w.type.shape[2:])
    s, d, p = spatial_attrs(ctx, x, kernel, strides, dilations, pads, auto_pad)
    return ctx.op("ConvInteger", [x, w, x_zero_point, w_zero_point], strides=s, dilations=d,
                  pads=p, group=group)


@converter("MatMulInteger")
def matmul_integer(
    ctx: Ctx, a: Value, b: Value, a_zero_point: Value | None = None,
    b_zero_point: Value | None = None,
) -> Value:
    return ctx.op("MatMulInteger", [a, b, a_zero_point, b_zero_point])


@converter("DynamicQuantizeLinear")
def dynamic_quantize_linear(ctx: Ctx, x: Value) -> list[Value]:
    return ctx.ops("DynamicQuantizeLinear", [x])


# -- onnxruntime's com.microsoft QOperator ops ----------------------------------------------


def _binary(ctx: Ctx, op: str, a: Value, a_scale: Value, a_zp: Value | None, b: Value,
            b_scale: Value, b_zp: Value | None, c_scale: Value, c_zp: Value | None) -> Value:
    out = out_attrs(ctx, c_scale, c_zp, a)
    return ctx.op(op, [operand(ctx, a, a_scale, a_zp, "A"), operand(ctx, b, b_scale, b_zp, "B")],
                  **out)


@converter("QLinearAdd", domain=MS, ir_ops=("QAdd", "Retype"))
def qlinear_add(
    ctx: Ctx, a: Value, a_scale: Value, a_zero_point: Value | None, b: Value, b_scale: Value,
    b_zero_point: Value | None, c_scale: Value, c_zero_point: Value | None = None,
) -> Value:
    return _binary(ctx, "QAdd", a, a_scale, a_zero_point, b, b_scale, b_zero_point, c_scale,
                   c_zero_point)


@converter("QLinearMul", domain=MS, ir_ops=("QMul", "Retype"))
def qlinear_mul(
    ctx: Ctx, a: Value, a_scale: Value, a_zero_point: Value | None, b: Value, b_scale: Value,
    b_zero_point: Value | None, c_scale: Value, c_zero_point: Value | None = None,
) -> Value:
    return _binary(ctx, "QMul", a, a_scale, a_zero_point, b, b_scale, b_zero_point, c_scale,
                   c_zero_point)


def _channels_first(ctx: Ctx, channels_last: int) -> None:
    if channels_last:
        raise ctx.fail("channels_last=1 is not supported (NCHW layouts only)")


@converter("QLinearAveragePool", domain=MS, ir_ops=("QAveragePool", "Retype"))
def qlinear_average_pool(
    ctx: Ctx, x: Value, x_scale: Value, x_zero_point: Value | None, y_scale: Value,
    y_zero_point: Value | None = None, *, auto_pad: str = "NOTSET", ceil_mode: int = 0,
    channels_last: int = 0, count_include_pad: int = 0,
    kernel_shape: list[int] | None = None, pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> Value:
    _channels_first(ctx, channels_last)
    if not kernel_shape:
        raise ctx.fail("kernel_shape is required")
    s, d, p = spatial_attrs(ctx, x, list(kernel_shape), strides, None, pads, auto_pad)
    return ctx.op("QAveragePool", [operand(ctx, x, x_scale, x_zero_point, "x")],
                  kernel_shape=list(kernel_shape), strides=s, dilations=d, pads=p,
                  ceil_mode=ceil_mode, count_include_pad=count_include_pad,
                  **out_attrs(ctx, y_scale, y_zero_point, x))


@converter("QLinearGlobalAveragePool", domain=MS, ir_ops=("QGlobalAveragePool", "Retype"))
def qlinear_global_average_pool(
    ctx: Ctx, x: Value, x_scale: Value, x_zero_point: Value | None, y_scale: Value,
    y_zero_point: Value | None = None, *, channels_last: int = 0,
) -> Value:
    _channels_first(ctx, channels_last)
    return ctx.op("QGlobalAveragePool", [operand(ctx, x, x_scale, x_zero_point, "x")],
                  **out_attrs(ctx, y_scale, y_zero_point, x))


@converter("QLinearConcat", domain=MS, ir_ops=("Concat", "Requantize", "Retype"))
def qlinear_concat(ctx: Ctx, y_scale: Value, y_zero_point: Value | None, *rest: Value | None,
                   axis: int) -> Value:
    if len(rest) % 3 or not rest:
        raise ctx.fail("inputs must come in (X, X_scale, X_zero_point) triples")
    first = rest[0]
    assert first is not None
    out = out_attrs(ctx, y_scale, y_zero_point, first)
    yq = QuantParams.per_tensor(float(out["out_scale"]), int(out["out_zp"]))  # type: ignore[arg-type]
    parts = []
    for i in range(0, len(rest), 3):
        x, xs, xz = rest[i], rest[i + 1], rest[i + 2]
        if x is None or xs is None:
            raise ctx.fail("every input needs its X and X_scale")
        xq = operand(ctx, x, xs, xz, f"X{i // 3}")
        same = xq.type.quant == yq and xq.type.dtype.value == out["out_dtype"]
        parts.append(xq if same else ctx.op("Requantize", [xq], **out))
    try:
        ax = norm_axis("QLinearConcat", axis, first.type.rank)
    except OpError as e:
        raise ctx.fail(str(e)) from None
    return ctx.op("Concat", parts, axis=ax)


def _lut(ctx: Ctx, op: str, attrs: dict[str, object], x: Value, x_scale: Value,
         x_zp: Value | None, y_scale: Value, y_zp: Value | None) -> Value:
    """QLut of the float op ``op``: its reference compute on every input code."""
    xq = operand(ctx, x, x_scale, x_zp, "X")
    out = out_attrs(ctx, y_scale, y_zp, x)
    q = xq.type.quant
    assert q is not None
    opdef = get_op(op)
    full = opdef.normalize_attrs(attrs)

    def fn(v: np.ndarray) -> np.ndarray:
        return opdef.compute([v.astype(np.float32)], full)[0]

    table = qmath.make_lut(fn, q.scale[0], q.zero_point[0], xq.type.dtype,
                           float(out["out_scale"]), int(out["out_zp"]),  # type: ignore[arg-type]
                           DType(out["out_dtype"]))
    return ctx.op("QLut", [xq], table=table.astype(np.int64).tolist(), **out)


@converter("QLinearSigmoid", domain=MS, ir_ops=("QLut", "Retype"))
def qlinear_sigmoid(ctx: Ctx, x: Value, x_scale: Value, x_zero_point: Value | None,
                    y_scale: Value, y_zero_point: Value | None = None) -> Value:
    return _lut(ctx, "Sigmoid", {}, x, x_scale, x_zero_point, y_scale, y_zero_point)


@converter("QLinearLeakyRelu", domain=MS, ir_ops=("QLut", "Retype"))
def qlinear_leaky_relu(ctx: Ctx, x: Value, x_scale: Value, x_zero_point: Value | None,
                       y_scale: Value, y_zero_point: Value | None = None, *,
                       alpha: float = 0.01) -> Value:
    return _lut(ctx, "LeakyRelu", {"alpha": alpha}, x, x_scale, x_zero_point, y_scale,
                y_zero_point)
