"""Conversions into the narrow element types: bfloat16, float8, float4, int4 and int2.

ONNX stores weights and activations in these types and converts with Cast, QuantizeLinear
and DequantizeLinear; the IR keeps them as storage (numpy dtypes from ml_dtypes) and defines
the conversions here, once:

- integers (i4, u4, i2, u2): round half to even, then saturate to the type's range, as
  QuantizeLinear does; Cast truncates toward zero like every integer Cast and wraps.
- float8 with ``saturate`` (ONNX's default): finite values beyond the largest finite value
  become it (with their sign); infinities too; NaN stays NaN. Without ``saturate`` the
  conversion of IEEE rounding applies: overflow gives inf where the type has one, else NaN.
- float8 e8m0 (a bare power of two, no sign): the exponent field of x, rounded ``up`` (any
  mantissa bit set raises it), ``down`` (truncated) or ``nearest`` (a mantissa above 1/2
  raises it, exactly 1/2 too unless the exponent field is zero); NaN and inf give NaN, and
  an exponent past the largest gives the largest with ``saturate``, NaN without.
- bfloat16 and float4: IEEE rounding to nearest even (float4 saturates: it has no inf).
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

from ir.types import DType

#: float8 types whose conversion honours ``saturate``
SATURATING_FLOATS = (DType.f8e4m3fn, DType.f8e4m3fnuz, DType.f8e5m2, DType.f8e5m2fnuz)
NARROW_INTS = (DType.i4, DType.u4, DType.i2, DType.u2)
ROUND_MODES = ("up", "down", "nearest")


def int_range(dtype: DType) -> tuple[int, int]:
    """The smallest and largest value of an integer element type (narrow ones included)."""
    info = ml_dtypes.iinfo(dtype.np) if dtype in NARROW_INTS else np.iinfo(dtype.np)
    return int(info.min), int(info.max)


def float_max(dtype: DType) -> float:
    """The largest finite value of a float element type."""
    return float(ml_dtypes.finfo(dtype.np).max)


def to_float(x: np.ndarray, dtype: DType, *, saturate: bool = True,
             round_mode: str = "up") -> np.ndarray:
    """``x`` (any real array) converted to the float type ``dtype`` (see the module doc)."""
    if dtype is DType.f8e8m0:
        return _to_e8m0(np.asarray(x, np.float32), saturate, round_mode)
    x = np.asarray(x)
    if dtype in SATURATING_FLOATS and saturate or dtype is DType.f4e2m1:
        big = float_max(dtype)
        wide = x.astype(np.float64) if x.dtype.itemsize < 8 else x
        return np.clip(wide, -big, big).astype(dtype.np)
    with np.errstate(over="ignore", invalid="ignore"):
        return x.astype(dtype.np)


def round_saturate(q: np.ndarray, dtype: DType) -> np.ndarray:
    """Real ``q`` rounded half to even and saturated to integer ``dtype`` (NaN -> 0)."""
    lo, hi = int_range(dtype)
    with np.errstate(invalid="ignore"):
        r = np.rint(np.asarray(q, np.float64))
    r = np.nan_to_num(r, nan=0.0, posinf=hi, neginf=lo)
    return np.clip(r, lo, hi).astype(np.int64).astype(dtype.np)


def _to_e8m0(x: np.ndarray, saturate: bool, round_mode: str) -> np.ndarray:
    if round_mode not in ROUND_MODES:
        raise ValueError(f"round_mode must be one of {', '.join(ROUND_MODES)}, "
                         f"got {round_mode!r}")
    bits = np.ascontiguousarray(x, np.float32).view(np.uint32)
    exp = ((bits >> 23) & 0xFF).astype(np.int32)
    mant = (bits & 0x7FFFFF).astype(np.int64)
    special = exp == 0xFF
    if round_mode == "up":
        raise_ = mant != 0
    elif round_mode == "down":
        raise_ = np.zeros_like(special)
    else:  # nearest: above half; exactly half unless the exponent is zero
        half = 1 << 22
        raise_ = (mant > half) | ((mant == half) & (exp > 0))
    e = exp + raise_.astype(np.int32)
    e = np.where(e > 0xFE, 0xFE if saturate else 0xFF, e)
    e = np.where(special, 0xFF, e)
    return e.astype(np.uint8).view(DType.f8e8m0.np)
