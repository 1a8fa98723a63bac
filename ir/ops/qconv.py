"""Quantised products: QConv, QLinear, QMatMul, and ONNX's ConvInteger and MatMulInteger.

Accumulators are exact: the 8-bit operands are centred (q - zero_point) into int64 and
multiplied either as int64 or, when every partial sum provably stays below 2^53, as float64
through BLAS (integers below 2^53 add exactly in any order, so the result is the same).
Requantisation is qmath's, with multipliers derived from the types by qcommon.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ir import qmath
from ir.ops import cost
from ir.ops.common import require_inputs
from ir.ops.conv import Conv, conv
from ir.ops.matmul import matmul_shape
from ir.ops.qcommon import (
    ACT_ATTRS,
    ACT_DTYPES,
    OUT_ATTRS,
    act_clamp,
    apply_epilogue,
    centered,
    conv_multipliers,
    epilogue_type,
    out_type,
    product_multiplier,
    quantized,
)
from ir.ops.registry import Attr, Attrs, register, require
from ir.types import DType, TensorType

_EXACT_F64 = 2**53
_CONV_ATTRS = {k: v for k, v in Conv.attrs.items()}


def exact_dtype(terms: int, *operands: np.ndarray) -> type:
    """float64 if a sum of ``terms`` products of the operands' entries is exact in float64,
    else int64. Bounds come from the data, so the choice is provably safe."""
    bound = terms
    for x in operands:
        bound *= int(np.abs(x).max()) if x.size else 0
    return np.float64 if bound < _EXACT_F64 else np.int64


def exact_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b of int64 arrays (numpy broadcasting), exact, as int64."""
    dt = exact_dtype(a.shape[-1], a, b)
    y = np.matmul(a.astype(dt), b.astype(dt))
    return y.astype(np.int64)


def exact_conv(x: np.ndarray, w: np.ndarray, a: Attrs) -> np.ndarray:
    """The float Conv's im2col convolution of centred int64 operands, exact, as int64."""
    terms = int(np.prod(w.shape[1:]))
    dt = exact_dtype(terms, x, w)
    y = conv(x.astype(dt), w.astype(dt), a["strides"], a["pads"], a["dilations"], a["group"])
    return y.astype(np.int64)


def _check_weight(op: str, w: TensorType, n: int) -> None:
    q = quantized(op, w, "the weight", per_tensor=False)
    if q.per_channel:
        require(q.axis == 0 and len(q.scale) == n,
                f"{op}: per-channel weight params must run along axis 0 with {n} entries")


def _check_bias(op: str, b: TensorType | None, n: int) -> None:
    if b is None:
        return
    require(b.dtype is DType.i32 and b.shape == (n,),
            f"{op}: the bias must be i32[{n}], got {b}")
    require(b.quant is None or not any(b.quant.zero_point),
            f"{op}: the bias zero point must be 0")


def _requant_out(acc: np.ndarray, x: TensorType, w: TensorType, y: TensorType, a: Attrs,
                 axis: int, op: str, lut: np.ndarray | None) -> np.ndarray:
    mid = out_type(op, y.shape, a, act=True)
    m0, shift = conv_multipliers(x, w, mid, op)
    assert mid.quant is not None
    q = qmath.requantize(acc, m0, shift, mid.quant.zero_point[0], mid.dtype,
                         clamp=act_clamp(a), axis=axis if m0.size > 1 else None)
    return apply_epilogue(q, mid, lut)


def _lut(ins: list[Any], at: int) -> Any:
    """The optional epilogue table operand (its type in infer, its data in compute)."""
    return ins[at] if len(ins) > at else None


@register
class QConv:
    """acc[n, c, o...] = b[c] + sum (x - zx)[n, ci, o*s + k*d] * (w - zw[c])[c, ci', k...]
    (padding contributes 0: pads hold zx); y = clamp_act(zy + requant_raw(acc, M_c)),
    M_c = s_x * s_w[c] / s_y. Geometry as Conv; x per tensor, w per tensor or per output
    channel (axis 0), b i32 with scale s_x * s_w[c] and zero point 0. With an epilogue
    table lut (u8/i8[256], from the fuse-epilogue pass) the result is lut[y - qmin], typed
    as the table."""

    operands = ("x", "w", "b?", "lut?")
    flops = cost.conv
    tiled = "conv"
    staged = True
    typed = True
    stacks = "together"  # exact integer sums: no order to keep
    attrs = {**_CONV_ATTRS, **OUT_ATTRS, **ACT_ATTRS}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        x, w = require_inputs("QConv", ins, 2)
        b = ins[2] if len(ins) > 2 else None
        quantized("QConv", x, "x")
        m = w.shape[0] if w.shape else 0
        _check_weight("QConv", w, m)
        _check_bias("QConv", b, m)
        geo = {k: a[k] for k in _CONV_ATTRS}
        (shape_t,) = Conv.infer([x.with_dtype(DType.f32), w.with_dtype(DType.f32)], geo)
        y = out_type("QConv", shape_t.shape, a, act=True)
        conv_multipliers(x, w, y)
        return [epilogue_type("QConv", y, _lut(ins, 3))]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs, types: list[TensorType | None],
                outs: list[TensorType]) -> list[np.ndarray]:
        x, w, b = ins[0], ins[1], ins[2] if len(ins) > 2 else None
        xt, wt = types[0], types[1]
        assert x is not None and w is not None and xt is not None and wt is not None
        assert xt.quant is not None and wt.quant is not None
        acc = exact_conv(centered(x, xt.quant), centered(w, wt.quant, 0), a)
        if b is not None:
            acc += b.astype(np.int64).reshape((1, -1) + (1,) * (acc.ndim - 2))
        return [_requant_out(acc, xt, wt, outs[0], a, 1, "QConv", _lut(ins, 3))]


@register
class QLinear:
    """acc[..., n] = b[n] + sum_k (x - zx)[..., k] * (w[n, k] - zw[n]);
    y = clamp_act(zy + requant_raw(acc, M_n)), M_n = s_x * s_w[n] / s_y.
    The fully connected layer: w is [N, K] (Gemm/MatMul weights transposed at compile time).
    An epilogue table lut applies as QConv's."""

    operands = ("x", "w", "b?", "lut?")
    flops = cost.linear
    tiled = "matmul"
    staged = True
    typed = True
    stacks = "together"  # exact integer sums: no order to keep
    attrs = {**OUT_ATTRS, **ACT_ATTRS}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        x, w = require_inputs("QLinear", ins, 2)
        b = ins[2] if len(ins) > 2 else None
        quantized("QLinear", x, "x")
        require(w.rank == 2, f"QLinear: the weight must be [N, K], got {w}")
        require(x.rank >= 1 and x.shape[-1] == w.shape[1],
                f"QLinear: x {x} does not end in K = {w.shape[1]}")
        _check_weight("QLinear", w, w.shape[0])
        _check_bias("QLinear", b, w.shape[0])
        y = out_type("QLinear", x.shape[:-1] + (w.shape[0],), a, act=True)
        conv_multipliers(x, w, y, "QLinear")
        return [epilogue_type("QLinear", y, _lut(ins, 3))]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs, types: list[TensorType | None],
                outs: list[TensorType]) -> list[np.ndarray]:
        x, w, b = ins[0], ins[1], ins[2] if len(ins) > 2 else None
        xt, wt = types[0], types[1]
        assert x is not None and w is not None and xt is not None and wt is not None
        assert xt.quant is not None and wt.quant is not None
        acc = exact_matmul(centered(x, xt.quant), centered(w, wt.quant, 0).T)
        if b is not None:
            acc += b.astype(np.int64)
        return [_requant_out(acc, xt, wt, outs[0], a, acc.ndim - 1, "QLinear", _lut(ins, 3))]


@register
class QMatMul:
    """acc = (a - za) @ (b - zb) (numpy matmul broadcasting, exact);
    y = clamp(zy + requant_raw(acc, M)), M = s_a * s_b / s_y. Both operands per tensor.
    An epilogue table lut applies as QConv's."""

    operands = ("a", "b", "lut?")
    flops = cost.matmul
    tiled = "matmul"
    staged = True
    typed = True
    attrs = dict(OUT_ATTRS)

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        x, w = require_inputs("QMatMul", ins, 2)
        quantized("QMatMul", x, "a")
        quantized("QMatMul", w, "b")
        y = out_type("QMatMul", matmul_shape("QMatMul", x.shape, w.shape), a)
        product_multiplier(x, w, y, "QMatMul")
        return [epilogue_type("QMatMul", y, _lut(ins, 2))]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs, types: list[TensorType | None],
                outs: list[TensorType]) -> list[np.ndarray]:
        x, w = ins[0], ins[1]
        xt, wt = types[0], types[1]
        assert x is not None and w is not None and xt is not None and wt is not None
        assert xt.quant is not None and wt.quant is not None
        y = out_type("QMatMul", outs[0].shape, a)
        assert y.quant is not None
        acc = exact_matmul(centered(x, xt.quant), centered(w, wt.quant))
        m0, shift = product_multiplier(xt, wt, y, "QMatMul")
        q = qmath.requantize(acc, m0, shift, y.quant.zero_point[0], y.dtype)
        return [apply_epilogue(q, y, _lut(ins, 2))]


# -- ONNX's integer ops (no requantisation) ---------------------------------------------------


def _plain_ints(op: str, ts: list[TensorType]) -> None:
    for t in ts:
        require(t.dtype in ACT_DTYPES and t.quant is None,
                f"{op}: operands must be plain u8/i8 tensors, got {t}")


def _zp(op: str, zp: TensorType | None, like: TensorType, sizes: tuple[int, ...],
        what: str) -> None:
    if zp is None:
        return
    require(zp.dtype is like.dtype, f"{op}: {what} must be {like.dtype.value}, got {zp}")
    require(zp.size == 1 or (zp.rank == 1 and zp.shape[0] in sizes),
            f"{op}: {what} must be a scalar or have {sizes[0]} entries, got {zp}")


def _sub(x: np.ndarray, zp: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    xc = x.astype(np.int64)
    if zp is None:
        return xc
    z = zp.astype(np.int64)
    return xc - (z.reshape(()) if z.size == 1 else z.reshape(shape))


@register
class ConvInteger:
    """y = Conv(x - x_zero_point, w - w_zero_point) in i32 (ONNX ConvInteger; padding
    contributes 0). w_zero_point may hold one entry per output channel."""

    operands = ("x", "w", "x_zero_point?", "w_zero_point?")
    flops = cost.conv
    tiled = "conv"
    attrs = dict(_CONV_ATTRS)

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        x, w = require_inputs("ConvInteger", ins, 2)
        _plain_ints("ConvInteger", [x, w])
        _zp("ConvInteger", ins[2] if len(ins) > 2 else None, x, (1,), "x_zero_point")
        m = w.shape[0] if w.shape else 0
        _zp("ConvInteger", ins[3] if len(ins) > 3 else None, w, (m,), "w_zero_point")
        (t,) = Conv.infer([x.with_dtype(DType.f32), w.with_dtype(DType.f32)], a)
        return [TensorType(t.shape, DType.i32)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, w = ins[0], ins[1]
        assert x is not None and w is not None
        xz = ins[2] if len(ins) > 2 else None
        wz = ins[3] if len(ins) > 3 else None
        xc = _sub(x, xz, ())
        wc = _sub(w, wz, (-1,) + (1,) * (w.ndim - 1))
        return [exact_conv(xc, wc, a).astype(np.int32)]


@register
class MatMulInteger:
    """y = (A - a_zero_point) @ (B - b_zero_point) in i32 (ONNX MatMulInteger);
    a_zero_point may hold one entry per row of A, b_zero_point one per column of B."""

    operands = ("a", "b", "a_zero_point?", "b_zero_point?")
    flops = cost.matmul
    tiled = "matmul"
    attrs: dict[str, Attr] = {}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        x, w = require_inputs("MatMulInteger", ins, 2)
        _plain_ints("MatMulInteger", [x, w])
        rows = x.shape[-2] if x.rank >= 2 else 1
        cols = w.shape[-1] if w.rank >= 2 else 1
        _zp("MatMulInteger", ins[2] if len(ins) > 2 else None, x, (rows,), "a_zero_point")
        _zp("MatMulInteger", ins[3] if len(ins) > 3 else None, w, (cols,), "b_zero_point")
        return [TensorType(matmul_shape("MatMulInteger", x.shape, w.shape), DType.i32)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, w = ins[0], ins[1]
        assert x is not None and w is not None
        xz = ins[2] if len(ins) > 2 else None
        wz = ins[3] if len(ins) > 3 else None
        xc = _sub(x, xz, (-1, 1))
        wc = _sub(w, wz, (-1,))
        return [exact_matmul(xc, wc).astype(np.int32)]
