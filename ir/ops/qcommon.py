"""Shared pieces of the quantised ops: their output-type attributes, and the derivation of
requantisation multipliers from input and output types.

Types are the source of truth (quant_ops spec): a Q-op never stores a multiplier. Every
multiplier is derived here, from the ``quant`` of the types involved, when the op is checked
(``infer``) and again when it runs (``compute``), through :func:`ir.qmath.quantize_multiplier`
— so a code generator that asks these helpers gets exactly the interpreter's (M0, shift).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from ir import qmath
from ir.ops.registry import Attr, Attrs, OpError, require
from ir.types import DType, QuantParams, TensorType

ACT_DTYPES = (DType.u8, DType.i8)
I32_MIN, I32_MAX = -(2**31), 2**31 - 1

OUT_ATTRS = {
    "out_dtype": Attr("str", doc="u8 or i8: the element type of the result"),
    "out_scale": Attr("float", doc="scale of the result's quantisation"),
    "out_zp": Attr("int", doc="zero point of the result's quantisation"),
}
ACT_ATTRS = {
    "act_min": Attr("int", I32_MIN, doc="fused activation: lowest result (stored domain)"),
    "act_max": Attr("int", I32_MAX, doc="fused activation: highest result (stored domain)"),
}


def quantized(op: str, t: TensorType, what: str, *, per_tensor: bool = True,
              dtypes: Sequence[DType] = ACT_DTYPES) -> QuantParams:
    """``t``'s quant params; OpError unless ``t`` is a quantised tensor of ``dtypes``."""
    require(t.quant is not None, f"{op}: {what} must be a quantised tensor, got {t}")
    assert t.quant is not None
    require(t.dtype in dtypes,
            f"{op}: {what} must be {'/'.join(d.value for d in dtypes)}, got {t.dtype.value}")
    if per_tensor:
        require(not t.quant.per_channel, f"{op}: {what} must be quantised per tensor")
    return t.quant


def out_type(op: str, shape: tuple[int, ...], a: Attrs, *, act: bool = False) -> TensorType:
    """The result type that the out_* attributes describe (checked)."""
    try:
        dt = DType(a["out_dtype"])
    except ValueError:
        raise OpError(f"{op}: out_dtype {a['out_dtype']!r} is not an IR type") from None
    require(dt in ACT_DTYPES, f"{op}: out_dtype must be u8 or i8, got {dt.value}")
    lo, hi = qmath.qrange(dt)
    require(lo <= a["out_zp"] <= hi, f"{op}: out_zp {a['out_zp']} is outside {dt.value}")
    try:
        q = QuantParams.per_tensor(a["out_scale"], a["out_zp"])
    except ValueError as e:
        raise OpError(f"{op}: {e}") from None
    if act:
        require(a["act_min"] <= a["act_max"],
                f"{op}: act_min {a['act_min']} exceeds act_max {a['act_max']}")
        require(a["act_min"] <= hi and a["act_max"] >= lo,
                f"{op}: the clamp [{a['act_min']}, {a['act_max']}] misses {dt.value}'s range")
    return TensorType(tuple(shape), dt, q)


def epilogue_type(op: str, mid: TensorType, lut: TensorType | None) -> TensorType:
    """The result of a product with an epilogue table ``lut`` (the fuse-epilogue pass):
    ``mid`` (the requantised, clamped codes) without one, else ``mid``'s shape in the
    table's type — a per-tensor quantised u8/i8[256] of results, indexed by mid's codes as
    QLut indexes its table (code - qmin)."""
    if lut is None:
        return mid
    q = quantized(op, lut, "the epilogue table")
    require(lut.shape == (256,), f"{op}: the epilogue table must have 256 entries, got {lut}")
    return TensorType(mid.shape, lut.dtype, q)


def apply_epilogue(q: np.ndarray, mid: TensorType, lut: np.ndarray | None) -> np.ndarray:
    """The epilogue table (if any) applied to requantised codes ``q`` of type ``mid``."""
    return q if lut is None else qmath.lookup(q, lut, mid.dtype)


def act_clamp(a: Attrs) -> tuple[int, int]:
    return int(a["act_min"]), int(a["act_max"])


def multipliers(op: str, real: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """(M0, shift) arrays (int64) encoding each real multiplier; OpError if one is invalid."""
    try:
        return qmath.quantize_multipliers(np.asarray(real, dtype=np.float64))
    except ValueError as e:
        raise OpError(f"{op}: {e}") from None


def scales(q: QuantParams) -> np.ndarray:
    return np.asarray(q.scale, dtype=np.float64)


def zero_points(q: QuantParams) -> np.ndarray:
    return np.asarray(q.zero_point, dtype=np.int64)


def conv_multipliers(x: TensorType, w: TensorType, y: TensorType,
                     op: str = "QConv") -> tuple[np.ndarray, np.ndarray]:
    """Per output channel: M_c = s_x * s_w[c] / s_y (one entry if w is per tensor); the
    arrays are read-only (one pair serves every call with the same scales)."""
    assert x.quant is not None and w.quant is not None and y.quant is not None
    return _conv_multipliers(x.quant.scale[0], w.quant.scale, y.quant.scale[0], op)


@functools.lru_cache(maxsize=4096)
def _conv_multipliers(sx: float, sw: tuple[float, ...], sy: float,
                      op: str) -> tuple[np.ndarray, np.ndarray]:
    # the interpreter asks on every run of every QConv: the scales are the key
    m0, shift = multipliers(op, np.float64(sx) * np.asarray(sw, dtype=np.float64)
                            / np.float64(sy))
    m0.setflags(write=False)
    shift.setflags(write=False)
    return m0, shift


def product_multiplier(a: TensorType, b: TensorType, y: TensorType,
                       op: str) -> tuple[np.ndarray, np.ndarray]:
    """M = s_a * s_b / s_y for products of two per-tensor operands (QMatMul, QMul)."""
    return conv_multipliers(a, b, y, op)


def rescale_multiplier(x: TensorType, y: TensorType,
                       op: str = "Requantize") -> tuple[np.ndarray, np.ndarray]:
    """M = s_x / s_y (Requantize)."""
    assert x.quant is not None and y.quant is not None
    return multipliers(op, scales(x.quant)[0] / scales(y.quant)[0])


ADD_SHIFT = 20  # L of QAdd: inputs are left-shifted by L bits before rescaling


def add_multipliers(a: TensorType, b: TensorType, y: TensorType, op: str = "QAdd") -> tuple[
    tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]
]:
    """QAdd's three multipliers: with s = 2*max(sa, sb), Ma = sa/s, Mb = sb/s and
    My = s / (2^L * sy)."""
    assert a.quant is not None and b.quant is not None and y.quant is not None
    sa, sb, sy = scales(a.quant)[0], scales(b.quant)[0], scales(y.quant)[0]
    s = 2.0 * max(sa, sb)
    return (multipliers(op, sa / s), multipliers(op, sb / s),
            multipliers(op, s / (2.0**ADD_SHIFT * sy)))


def pool_multipliers(x: TensorType, y: TensorType, counts: np.ndarray,
                     op: str = "QAveragePool") -> tuple[np.ndarray, np.ndarray]:
    """One multiplier per count: M = s_x / (s_y * count)."""
    assert x.quant is not None and y.quant is not None
    c = np.asarray(counts, dtype=np.float64)
    return multipliers(op, scales(x.quant)[0] / (scales(y.quant)[0] * c))


def centered(x: np.ndarray, q: QuantParams, axis: int | None = None) -> np.ndarray:
    """x - zero_point as int64 (per-channel zero points along ``axis``)."""
    z = zero_points(q)
    if z.size > 1:
        assert axis is not None
        shape = [1] * x.ndim
        shape[axis] = z.size
        z = z.reshape(shape)
    else:
        z = z.reshape(())
    return x.astype(np.int64) - z
