"""The float/integer boundary: Quantize and Dequantize (per tensor or per channel)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ir import qmath
from ir.types import DType
from targets.tvm.api import te, tir
from targets.tvm.context import Kernel, Tensor
from targets.tvm.registry import kernel


def _channel(index: tuple[Any, ...], axis: int | None) -> Any:
    return index[axis] if axis is not None else tir.const(0, "int32")


@kernel("Quantize")
def quantize(k: Kernel) -> list[Tensor]:
    """q = saturate(rint(f32(x) / scale) + zero_point) (qmath.quantize): the division in
    float32, rint with ties to even (nearbyint), the sum in float64; NaN gives 0 and
    +-inf the bounds of the type."""
    (y,) = k.out_types
    x = k.operand("x")
    scales, zps = k.attrs["scale"], k.attrs["zero_point"]
    axis = k.attrs["axis"] % y.rank if len(scales) > 1 else None
    scale = k.per_channel(np.asarray(scales, dtype=np.float32), "scale", "float32")
    zp = k.per_channel(np.asarray(zps, dtype=np.float64), "zp", "float64")
    lo, hi = qmath.qrange(y.dtype)

    def body(*i: Any) -> Any:
        c = _channel(i, axis)
        q = tir.nearbyint(x[i].astype("float32") / scale(c)).astype("float64") + zp(c)
        q = tir.if_then_else(tir.isnan(q), tir.const(0.0, "float64"), q)
        q = tir.max(tir.min(q, tir.const(float(hi), "float64")), tir.const(float(lo), "float64"))
        return q.astype(y.dtype.np.name)

    return [te.compute(y.shape, body, name="q")]


@kernel("Dequantize")
def dequantize(k: Kernel) -> list[Tensor]:
    """x = f32(q - zero_point) * scale in float32 (qmath.dequantize), the params from q's
    type (per channel along its axis)."""
    (y,) = k.out_types
    qt = k.type_of("x")
    assert qt.quant is not None and y.dtype is DType.f32
    q = k.operand("x")
    p = qt.quant
    axis = p.axis if p.per_channel else None
    scale = k.per_channel(np.asarray(p.scale, dtype=np.float32), "scale", "float32")
    zp = k.per_channel(np.asarray(p.zero_point, dtype=np.int64), "zp", "int64")

    def body(*i: Any) -> Any:
        c = _channel(i, axis)
        return (q[i].astype("int64") - zp(c)).astype("float32") * scale(c)

    return [te.compute(y.shape, body, name="x")]
