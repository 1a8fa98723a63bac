"""Element-type conversions: Cast, QuantizeLinear, DequantizeLinear.

QuantizeLinear and DequantizeLinear keep scale and zero point as tensor inputs (the zero point
is always present: the frontend materialises ONNX's default). The quantisation pass later turns
constant ones into the ``quant`` parameters of the types they produce. Their granularity
follows from the scale's shape, as in ONNX:

- per-tensor: the scale has one element (``axis`` is then 0 and ignored);
- per-axis: a 1-D scale with one entry per index of ``axis``;
- blocked (``block_size`` > 0): the scale has x's rank and ceil(D/block_size) entries along
  ``axis``; scale[.., j, ..] covers x[.., j*B:(j+1)*B, ..].

Rounding is explicit and the same everywhere: ties to even (np.rint, lrintf in C), then
saturation to the output type's range.
"""

from __future__ import annotations

import numpy as np

from ir import narrow
from ir.ops import cost
from ir.ops.common import require_inputs
from ir.ops.registry import Attr, Attrs, OpError, register, require
from ir.types import DType, TensorType

QUANT_DTYPES = (DType.u8, DType.i8, DType.u16, DType.i16)
DEQUANT_DTYPES = (*QUANT_DTYPES, DType.i32)
#: narrow storage types QuantizeLinear produces and DequantizeLinear reads (ir/narrow.py)
NARROW_QDQ_DTYPES = (*narrow.NARROW_INTS, *narrow.SATURATING_FLOATS, DType.f4e2m1)


def _dtype(op: str, name: str) -> DType:
    try:
        return DType(name)
    except ValueError:
        raise OpError(f"{op}: {name!r} is not an IR element type") from None


@register
class Cast:
    """y = x converted to `to`. Float to int truncates toward zero (C's conversion); values
    outside the target's range, NaN and inf give unspecified integers, as in C and ONNX.
    Anything nonzero (NaN too) becomes true. Conversions to float8 saturate unless
    `saturate` is false, and e8m0 rounds by `round_mode` (ir/narrow.py defines both)."""

    operands = ("x",)
    flops = cost.free
    attrs = {
        "to": Attr("str", doc="IR element type of the result"),
        "saturate": Attr("bool", True, "float8 results: out-of-range values become the "
                         "largest finite value instead of inf/NaN"),
        "round_mode": Attr("str", "up", "float8 e8m0 results: up, down or nearest"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("Cast", ins, 1)
        require(a["round_mode"] in narrow.ROUND_MODES,
                f"Cast: round_mode must be one of {', '.join(narrow.ROUND_MODES)}, "
                f"got {a['round_mode']!r}")
        return [TensorType(x.shape, _dtype("Cast", a["to"]))]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        to = DType(a["to"])
        if to.is_float and to.is_storage_only:
            return [narrow.to_float(x, to, saturate=a["saturate"], round_mode=a["round_mode"])]
        with np.errstate(invalid="ignore", over="ignore"):
            return [x.astype(to.np)]


def _check_qparams(
    op: str, x: TensorType, scale: TensorType, zp: TensorType, a: Attrs
) -> None:
    """The scale's shape must name one granularity (see the module docstring)."""
    require(scale.dtype.is_float, f"{op}: the scale must be float, got {scale.dtype.value}")
    require(zp.shape == scale.shape,
            f"{op}: zero point shape {list(zp.shape)} differs from scale shape "
            f"{list(scale.shape)}")
    axis, block = a["axis"], a["block_size"]
    require(block >= 0, f"{op}: block_size must be >= 0, got {block}")
    if scale.size == 1 and block == 0:
        require(scale.rank <= 1, f"{op}: a per-tensor scale must be a scalar or 1-D")
        return
    require(0 <= axis < x.rank, f"{op}: axis {axis} is out of range for rank {x.rank}")
    d = x.shape[axis]
    if block == 0:
        require(scale.shape == (d,),
                f"{op}: a per-axis scale must have shape [{d}] (axis {axis} of "
                f"{list(x.shape)}), got {list(scale.shape)}")
        return
    want = tuple(-(-d // block) if i == axis else n for i, n in enumerate(x.shape))
    require(scale.shape == want,
            f"{op}: a blocked scale for {list(x.shape)} with block_size {block} on axis "
            f"{axis} must have shape {list(want)}, got {list(scale.shape)}")


def param_view(p: np.ndarray, shape: tuple[int, ...], axis: int, block: int) -> np.ndarray:
    """A scale or zero point laid out to broadcast against x of ``shape``."""
    if p.size == 1:
        return p.reshape(())
    if block == 0:
        dims = [1] * len(shape)
        dims[axis] = p.size
        return p.reshape(dims)
    return np.repeat(p, block, axis=axis).take(np.arange(shape[axis]), axis=axis)


@register
class QuantizeLinear:
    """y = saturate(rint(x / scale) + zero_point), rint rounding ties to even; the division
    runs in `precision`. y has the zero point's type; NaN quantises to the zero point. For
    float8/float4 results, y = x / scale + zero_point rounded and saturated as the type does
    (ir/narrow.py)."""

    operands = ("x", "scale", "zero_point")
    flops = cost.per_element(3)  # divide, round, add zero point
    tiled = "eltwise"
    attrs = {
        "axis": Attr("int", 0, "non-negative axis of per-axis or blocked scales"),
        "block_size": Attr("int", 0, "elements per scale along axis; 0: not blocked"),
        "precision": Attr("str", "f32", "float type the division runs in"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        x, scale, zp = require_inputs("QuantizeLinear", ins, 3)
        require(x.dtype.is_float or x.dtype is DType.i32,
                f"QuantizeLinear: x must be float or i32, got {x.dtype.value}")
        require(zp.dtype in QUANT_DTYPES + NARROW_QDQ_DTYPES,
                f"QuantizeLinear: cannot quantise to {zp.dtype.value}; the output types are "
                f"{', '.join(d.value for d in QUANT_DTYPES + NARROW_QDQ_DTYPES)}")
        require(_dtype("QuantizeLinear", a["precision"]).is_float,
                "QuantizeLinear: precision must be a float type")
        _check_qparams("QuantizeLinear", x, scale, zp, a)
        return [TensorType(x.shape, zp.dtype)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, scale, zp = ins
        assert x is not None and scale is not None and zp is not None
        prec = DType(a["precision"]).np
        s = param_view(scale, x.shape, a["axis"], a["block_size"]).astype(prec)
        z = param_view(zp, x.shape, a["axis"], a["block_size"]).astype(np.float64)
        out = DType.from_numpy(zp.dtype)
        if out.is_float:  # float8/float4: scale, shift, then the type's own rounding
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                q = (x.astype(prec) / s).astype(np.float64) + z
            return [narrow.to_float(q, out, saturate=True)]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            q = np.rint(x.astype(prec) / s).astype(np.float64) + z
        q = np.where(np.isnan(q), z, q)
        lo, hi = narrow.int_range(out)
        return [np.clip(q, lo, hi).astype(np.int64).astype(zp.dtype)]


@register
class DequantizeLinear:
    """y = (x - zero_point) * scale, the difference exact (integer), the product in f32
    (f64 for an f64 result), then rounded to `dtype`."""

    operands = ("x", "scale", "zero_point")
    flops = cost.per_element(2)  # subtract zero point, multiply
    tiled = "eltwise"
    attrs = {
        "axis": Attr("int", 0, "non-negative axis of per-axis or blocked scales"),
        "block_size": Attr("int", 0, "elements per scale along axis; 0: not blocked"),
        "dtype": Attr("str", "f32", "float type of the result"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        x, scale, zp = require_inputs("DequantizeLinear", ins, 3)
        require(x.dtype in DEQUANT_DTYPES + NARROW_QDQ_DTYPES,
                f"DequantizeLinear: cannot dequantise {x.dtype.value}; the input types are "
                f"{', '.join(d.value for d in DEQUANT_DTYPES + NARROW_QDQ_DTYPES)}")
        require(zp.dtype is x.dtype,
                f"DequantizeLinear: zero point type {zp.dtype.value} differs from x's "
                f"{x.dtype.value}")
        out = _dtype("DequantizeLinear", a["dtype"])
        require(out.is_float, "DequantizeLinear: the result type must be float")
        _check_qparams("DequantizeLinear", x, scale, zp, a)
        return [TensorType(x.shape, out)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, scale, zp = ins
        assert x is not None and scale is not None and zp is not None
        out = DType(a["dtype"]).np
        work = np.float64 if out == np.float64 else np.float32
        s = param_view(scale, x.shape, a["axis"], a["block_size"]).astype(work)
        z = param_view(zp, x.shape, a["axis"], a["block_size"])
        if x.dtype.kind in "iub":
            d = (x.astype(np.int64) - z.astype(np.int64)).astype(work)
        else:  # narrow types: codes widen exactly to float64 (int4, float8, ...)
            d = (x.astype(np.float64) - z.astype(np.float64)).astype(work)
        return [(d * s).astype(out)]
