"""Quantised elementwise ops and the float/integer boundary: Quantize, Dequantize, Retype,
Requantize, QAdd, QMul, QLut and ONNX's DynamicQuantizeLinear.

Quantisation parameters live in the types. Quantize names its output's params as attributes
(there is no input type to take them from); Retype attaches params to an integer tensor that
arrived without them (an imported u8 graph input, say) and costs nothing at run time; every
other op derives its multipliers from its input and output types (qcommon).
"""

from __future__ import annotations

import numpy as np

from ir import qmath
from ir.ops import cost
from ir.ops.common import broadcast_shapes, norm_axis, require_inputs
from ir.ops.qcommon import (
    ACT_ATTRS,
    ADD_SHIFT,
    OUT_ATTRS,
    act_clamp,
    add_multipliers,
    centered,
    out_type,
    product_multiplier,
    quantized,
    rescale_multiplier,
)
from ir.ops.registry import Attr, Attrs, OpError, register, require
from ir.types import DType, QuantParams, TensorType

STORE_DTYPES = (DType.u8, DType.i8, DType.u16, DType.i16)


def _params(op: str, x: TensorType, a: Attrs) -> QuantParams:
    """QuantParams from scale/zero_point/axis attributes, checked against x."""
    s, z = list(a["scale"]), list(a["zero_point"])
    require(len(s) == len(z) and len(s) >= 1,
            f"{op}: needs as many zero points as scales, at least one; got {s} and {z}")
    try:
        if len(s) == 1:
            return QuantParams.per_tensor(s[0], z[0])
        axis = norm_axis(op, a["axis"], x.rank)
        require(x.shape[axis] == len(s),
                f"{op}: {len(s)} scales for axis {axis} of {x} ({x.shape[axis]} entries)")
        return QuantParams(tuple(float(v) for v in s), tuple(int(v) for v in z), axis)
    except ValueError as e:
        if isinstance(e, OpError):
            raise
        raise OpError(f"{op}: {e}") from None


def _check_zps(op: str, q: QuantParams, dt: DType) -> None:
    lo, hi = qmath.qrange(dt)
    require(all(lo <= z <= hi for z in q.zero_point),
            f"{op}: zero points {list(q.zero_point)} are outside {dt.value}'s range")


_QPARAM_ATTRS = {
    "scale": Attr("floats", doc="one scale (per tensor) or one per index of axis"),
    "zero_point": Attr("ints", doc="as many zero points as scales"),
    "axis": Attr("int", 0, doc="the channel axis when there are several scales"),
}


@register
class Quantize:
    """q = saturate(rint(x / scale) + zero_point) (qmath.quantize: ties to even, division in
    f32); q's type carries the params."""

    operands = ("x",)
    tiled = "eltwise"
    staged = True
    stacks = "together"  # per element
    attrs = {"dtype": Attr("str", doc="u8, i8, u16 or i16"), **_QPARAM_ATTRS}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("Quantize", ins, 1)
        require(x.dtype.is_float, f"Quantize: needs a float input, got {x}")
        try:
            dt = DType(a["dtype"])
        except ValueError:
            raise OpError(f"Quantize: {a['dtype']!r} is not an IR type") from None
        require(dt in STORE_DTYPES, f"Quantize: cannot quantise to {dt.value}")
        q = _params("Quantize", x, a)
        _check_zps("Quantize", q, dt)
        return [TensorType(x.shape, dt, q)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        axis = a["axis"] % x.ndim if len(a["scale"]) > 1 else None
        return [qmath.quantize(x, np.asarray(a["scale"]), np.asarray(a["zero_point"]),
                               DType(a["dtype"]), axis)]


@register
class Dequantize:
    """x = (q - zero_point) * scale in f32 (qmath.dequantize), params from q's type."""

    operands = ("x",)
    tiled = "eltwise"
    staged = True
    typed = True
    stacks = "together"  # per element
    attrs: dict[str, Attr] = {}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (q,) = require_inputs("Dequantize", ins, 1)
        quantized("Dequantize", q, "the input", per_tensor=False,
                  dtypes=(*STORE_DTYPES, DType.i32))
        return [TensorType(q.shape, DType.f32)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs, types: list[TensorType | None],
                outs: list[TensorType]) -> list[np.ndarray]:
        q, t = ins[0], types[0]
        assert q is not None and t is not None and t.quant is not None
        p = t.quant
        return [qmath.dequantize(q, np.asarray(p.scale), np.asarray(p.zero_point), p.axis)]


@register
class Retype:
    """y = x; only the type changes: y carries the quant params given (none if ``scale`` is
    empty). How an integer tensor that arrives without params (an imported u8 input of a
    QLinearConv, say) becomes a quantised one; free at run time."""

    operands = ("x",)
    flops = cost.free
    attrs = {**_QPARAM_ATTRS, "scale": Attr("floats", [], doc="empty: drop the params"),
             "zero_point": Attr("ints", [])}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("Retype", ins, 1)
        require(x.dtype.is_int, f"Retype: needs an integer tensor, got {x}")
        if not a["scale"] and not a["zero_point"]:
            return [TensorType(x.shape, x.dtype)]
        q = _params("Retype", x, a)
        _check_zps("Retype", q, x.dtype)
        return [TensorType(x.shape, x.dtype, q)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        assert ins[0] is not None
        return [ins[0]]


@register
class Requantize:
    """y = clamp(zy + requant_raw(x - zx, M)), M = s_x / s_y: a new scale, zero point or
    8-bit type for a per-tensor quantised x."""

    operands = ("x",)
    tiled = "eltwise"
    staged = True
    typed = True
    attrs = dict(OUT_ATTRS)

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("Requantize", ins, 1)
        quantized("Requantize", x, "x")
        y = out_type("Requantize", x.shape, a)
        rescale_multiplier(x, y)
        return [y]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs, types: list[TensorType | None],
                outs: list[TensorType]) -> list[np.ndarray]:
        x, xt, y = ins[0], types[0], outs[0]
        assert x is not None and xt is not None and xt.quant is not None
        assert y.quant is not None
        m0, shift = rescale_multiplier(xt, y)
        return [qmath.requantize(centered(x, xt.quant), m0, shift, y.quant.zero_point[0],
                                 y.dtype)]


def _binary_types(op: str, ins: list[TensorType | None]) -> tuple[TensorType, TensorType]:
    x, y = require_inputs(op, ins, 2)
    quantized(op, x, "a")
    quantized(op, y, "b")
    return x, y


@register
class QAdd:
    """With L = 20 and s = 2 * max(s_a, s_b):
    a' = requant_raw((a - za) << L, s_a / s), b' = requant_raw((b - zb) << L, s_b / s),
    y = clamp_act(zy + requant_raw(a' + b', s / (2^L * s_y))). Broadcasting."""

    operands = ("a", "b")
    tiled = "eltwise"
    staged = True
    typed = True
    attrs = {**OUT_ATTRS, **ACT_ATTRS}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        x, w = _binary_types("QAdd", ins)
        y = out_type("QAdd", broadcast_shapes("QAdd", x.shape, w.shape), a, act=True)
        add_multipliers(x, w, y)
        return [y]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs, types: list[TensorType | None],
                outs: list[TensorType]) -> list[np.ndarray]:
        x, w = ins
        xt, wt = types
        y = outs[0]
        assert x is not None and w is not None and xt is not None and wt is not None
        assert xt.quant is not None and wt.quant is not None and y.quant is not None
        (ma, sa), (mb, sb), (my, sy) = add_multipliers(xt, wt, y)
        xs = qmath.requantize_raw(np.left_shift(centered(x, xt.quant), ADD_SHIFT), ma, sa)
        ws = qmath.requantize_raw(np.left_shift(centered(w, wt.quant), ADD_SHIFT), mb, sb)
        return [qmath.requantize(xs + ws, my, sy, y.quant.zero_point[0], y.dtype,
                                 clamp=act_clamp(a))]


@register
class QMul:
    """acc = (a - za) * (b - zb); y = clamp(zy + requant_raw(acc, s_a * s_b / s_y))."""

    operands = ("a", "b")
    tiled = "eltwise"
    staged = True
    typed = True
    attrs = dict(OUT_ATTRS)

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        x, w = _binary_types("QMul", ins)
        y = out_type("QMul", broadcast_shapes("QMul", x.shape, w.shape), a)
        product_multiplier(x, w, y, "QMul")
        return [y]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs, types: list[TensorType | None],
                outs: list[TensorType]) -> list[np.ndarray]:
        x, w = ins
        xt, wt = types
        y = outs[0]
        assert x is not None and w is not None and xt is not None and wt is not None
        assert xt.quant is not None and wt.quant is not None and y.quant is not None
        m0, shift = product_multiplier(xt, wt, y, "QMul")
        acc = centered(x, xt.quant) * centered(w, wt.quant)
        return [qmath.requantize(acc, m0, shift, y.quant.zero_point[0], y.dtype)]


@register
class QLut:
    """y = table[x - qmin(x's type)] (qmath.lookup). The table, made at compile time by
    qmath.make_lut, applies any unary function exactly in every target."""

    operands = ("x",)
    tiled = "eltwise"
    staged = True
    typed = True
    attrs = {"table": Attr("ints", doc="256 results in the output domain"), **OUT_ATTRS}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("QLut", ins, 1)
        quantized("QLut", x, "x", per_tensor=False)
        require(len(a["table"]) == 256, f"QLut: the table needs 256 entries, got "
                                        f"{len(a['table'])}")
        y = out_type("QLut", x.shape, a)
        lo, hi = qmath.qrange(y.dtype)
        require(all(lo <= v <= hi for v in a["table"]),
                f"QLut: table entries must lie in {y.dtype.value}'s range")
        return [y]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs, types: list[TensorType | None],
                outs: list[TensorType]) -> list[np.ndarray]:
        x, xt = ins[0], types[0]
        assert x is not None and xt is not None
        table = np.asarray(a["table"], dtype=outs[0].dtype.np)
        return [qmath.lookup(x, table, xt.dtype)]


@register
class DynamicQuantizeLinear:
    """ONNX DynamicQuantizeLinear: the range [min(0, min x), max(0, max x)] gives
    y_scale = range / 255 (1/255 for an empty range) and y_zero_point =
    quantize(-min, y_scale); y = quantize(x, y_scale, y_zero_point), u8, all in f32."""

    operands = ("x",)
    outputs = 3
    attrs: dict[str, Attr] = {}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("DynamicQuantizeLinear", ins, 1)
        require(x.dtype is DType.f32, f"DynamicQuantizeLinear: needs f32, got {x}")
        return [TensorType(x.shape, DType.u8), TensorType((), DType.f32),
                TensorType((), DType.u8)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        hi = np.float32(max(0.0, float(x.max()))) if x.size else np.float32(0)
        lo = np.float32(min(0.0, float(x.min()))) if x.size else np.float32(0)
        qmin, qmax = qmath.qrange(DType.u8)
        width = np.float32(1.0) if hi == lo else np.float32(hi - lo)
        scale = np.float32(width / np.float32(qmax - qmin))
        zp = qmath.quantize(-lo, scale, 0, DType.u8)
        y = qmath.quantize(x, scale, int(zp), DType.u8)
        return [y, np.asarray(scale, dtype=np.float32), np.asarray(zp, dtype=np.uint8)]

