"""Tensor types of the IR: element type, static shape and optional quantisation parameters."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from enum import Enum

import ml_dtypes
import numpy as np


class DType(Enum):
    """Element types. The value is the short name used in the IR text."""

    f16 = "f16"
    f32 = "f32"
    f64 = "f64"
    i8 = "i8"
    i16 = "i16"
    i32 = "i32"
    i64 = "i64"
    u8 = "u8"
    u16 = "u16"
    u32 = "u32"
    u64 = "u64"
    bool = "bool"
    # narrow types (ONNX's bfloat16, float8, float4, int4, int2), numpy dtypes from ml_dtypes
    bf16 = "bf16"
    f8e4m3fn = "f8e4m3fn"
    f8e4m3fnuz = "f8e4m3fnuz"
    f8e5m2 = "f8e5m2"
    f8e5m2fnuz = "f8e5m2fnuz"
    f8e8m0 = "f8e8m0"
    f4e2m1 = "f4e2m1"
    i4 = "i4"
    u4 = "u4"
    i2 = "i2"
    u2 = "u2"

    @property
    def np(self) -> np.dtype:
        return _numpy_dtype(self)

    @staticmethod
    def from_numpy(dt: np.dtype | type) -> DType:
        dt = np.dtype(dt)
        try:
            return _FROM_NUMPY[dt]
        except KeyError:
            raise TypeError(f"element type {dt} is not supported by the IR") from None

    @property
    def is_float(self) -> bool:
        return self in _FLOATS

    @property
    def is_storage_only(self) -> bool:
        """float8, float4, int4 and int2 hold data only: Cast, QuantizeLinear,
        DequantizeLinear and data movement take them; arithmetic does not (bf16 does)."""
        return self in _STORAGE_ONLY

    @property
    def is_int(self) -> bool:
        return not self.is_float and self is not DType.bool


def is_float_dtype(dt: np.dtype) -> bool:
    """Whether numpy dtype ``dt`` holds floats: float16/32/64, and ml_dtypes' bfloat16 and
    float8/float4 (whose numpy kind is "V", not "f")."""
    return np.dtype(dt).kind == "f" or DType.from_numpy(dt).is_float


@functools.cache
def _numpy_dtype(dt: DType) -> np.dtype:
    """The numpy dtype of ``dt`` (looked up once: the interpreter asks for every result)."""
    name = _TO_NUMPY[dt]
    return np.dtype(getattr(ml_dtypes, name) if hasattr(ml_dtypes, name) else name)


_TO_NUMPY: dict[DType, str] = {
    DType.f16: "float16",
    DType.f32: "float32",
    DType.f64: "float64",
    DType.i8: "int8",
    DType.i16: "int16",
    DType.i32: "int32",
    DType.i64: "int64",
    DType.u8: "uint8",
    DType.u16: "uint16",
    DType.u32: "uint32",
    DType.u64: "uint64",
    DType.bool: "bool",
}
_TO_NUMPY.update({
    DType.bf16: "bfloat16",
    DType.f8e4m3fn: "float8_e4m3fn",
    DType.f8e4m3fnuz: "float8_e4m3fnuz",
    DType.f8e5m2: "float8_e5m2",
    DType.f8e5m2fnuz: "float8_e5m2fnuz",
    DType.f8e8m0: "float8_e8m0fnu",
    DType.f4e2m1: "float4_e2m1fn",
    DType.i4: "int4",
    DType.u4: "uint4",
    DType.i2: "int2",
    DType.u2: "uint2",
})
_STORAGE_ONLY = frozenset({
    DType.f8e4m3fn, DType.f8e4m3fnuz, DType.f8e5m2, DType.f8e5m2fnuz, DType.f8e8m0,
    DType.f4e2m1, DType.i4, DType.u4, DType.i2, DType.u2,
})
_FLOATS = frozenset({DType.f16, DType.f32, DType.f64, DType.bf16, DType.f8e4m3fn,
                     DType.f8e4m3fnuz, DType.f8e5m2, DType.f8e5m2fnuz, DType.f8e8m0,
                     DType.f4e2m1})
_FROM_NUMPY: dict[np.dtype, DType] = {k.np: k for k in _TO_NUMPY}


@dataclass(frozen=True)
class QuantParams:
    """Affine quantisation: real = scale * (q - zero_point).

    Per-tensor when ``axis`` is None (one scale and zero point), otherwise one per index of
    ``axis``. Scales and zero points are tuples so that types stay hashable and comparable.
    """

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int | None = None

    def __post_init__(self) -> None:
        if len(self.scale) != len(self.zero_point):
            raise ValueError("quant params need as many zero points as scales")
        if not self.scale:
            raise ValueError("quant params need at least one scale")
        if self.axis is None and len(self.scale) != 1:
            raise ValueError("per-tensor quant params take exactly one scale")
        for s in self.scale:  # math.isfinite: types are made per node, numpy's costs 1 us
            if not (s > 0.0 and math.isfinite(s)):
                raise ValueError(f"quantisation scale must be positive and finite, got {s}")

    @staticmethod
    def per_tensor(scale: float, zero_point: int) -> QuantParams:
        return QuantParams((float(scale),), (int(zero_point),), None)

    @property
    def per_channel(self) -> bool:
        return self.axis is not None

    def scale_array(self) -> np.ndarray:
        return np.asarray(self.scale, dtype=np.float32)

    def zero_point_array(self) -> np.ndarray:
        return np.asarray(self.zero_point, dtype=np.int32)


@dataclass(frozen=True)
class TensorType:
    """A statically shaped tensor type; ``quant`` is set on quantised integer tensors."""

    shape: tuple[int, ...]
    dtype: DType
    quant: QuantParams | None = field(default=None)

    def __post_init__(self) -> None:
        for d in self.shape:
            if not isinstance(d, int) or isinstance(d, bool) or d < 0:
                raise ValueError(f"bad dimension {d!r} in shape {self.shape}")

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.np.itemsize

    def with_shape(self, shape: tuple[int, ...] | list[int]) -> TensorType:
        return TensorType(tuple(int(d) for d in shape), self.dtype, self.quant)

    def with_dtype(self, dtype: DType) -> TensorType:
        return TensorType(self.shape, dtype, None)

    @staticmethod
    def of(array: np.ndarray) -> TensorType:
        return TensorType(tuple(int(d) for d in array.shape), DType.from_numpy(array.dtype))

    def __str__(self) -> str:
        return self._text

    @functools.cached_property
    def _text(self) -> str:  # types are immutable, and error messages name them often
        return f"{self.dtype.value}[{','.join(str(d) for d in self.shape)}]"
