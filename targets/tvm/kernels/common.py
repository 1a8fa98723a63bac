"""Integer arithmetic shared by the kernels, as TIR expressions mirroring ir/qmath.py, and
index helpers (broadcasting, flat positions).

Requantisation is the IR's one definition: with n = 31 + shift,
``requant_raw(acc) = (acc * M0 + 2^(n-1)) >> n`` in int64 with an arithmetic shift; a
multiplier encoded as M0 = 0 gives 0 by the same formula (2^30 >> 31 = 0), as qmath returns.
A product's accumulator is int32 where every partial sum provably fits it (bounds from the
constant weights' actual values, or from the operand types' ranges), else int64: exact
either way, and int32 is what the vector units multiply fast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ir import qmath
from ir.graph import Value
from ir.ops.qcommon import zero_points
from ir.types import DType, TensorType
from targets.tvm.api import te, tir

Expr = Any  # a TIR PrimExpr

I64 = "int64"
I32_MAX = 2**31 - 1


def i64(v: int | Expr) -> Expr:
    """An int64 constant, or an expression cast to int64."""
    return tir.const(v, I64) if isinstance(v, int) else v.astype(I64)


def requant_raw(acc: Expr, m0: Expr, shift: Expr) -> Expr:
    """(acc * M0 + 2^(n-1)) >> n, n = 31 + shift, all int64 (qmath.requantize_raw)."""
    n = i64(shift) + i64(qmath.M0_BITS)
    rounding = tir.shift_left(i64(1), n - i64(1))
    return tir.shift_right(i64(acc) * i64(m0) + rounding, n)


def clamp_to(y: Expr, dtype: DType, clamp: tuple[int, int] | None = None) -> Expr:
    """int64 ``y`` clamped to ``dtype``'s range (intersected with ``clamp``), cast to it."""
    lo, hi = qmath.qrange(dtype)
    if clamp is not None:
        lo, hi = max(lo, clamp[0]), min(hi, clamp[1])
    return tir.max(tir.min(y, i64(hi)), i64(lo)).astype(dtype.np.name)


def requantize(acc: Expr, m0: Expr, shift: Expr, zero_point: int, dtype: DType,
               clamp: tuple[int, int] | None = None) -> Expr:
    """clamp(zero_point + requant_raw(acc)) in ``dtype`` (qmath.requantize)."""
    return clamp_to(requant_raw(acc, m0, shift) + i64(zero_point), dtype, clamp)


def broadcast_index(shape: Sequence[int], out_index: Sequence[Expr]) -> list[Expr]:
    """The index into a tensor of ``shape`` that numpy broadcasting reads for ``out_index``
    (shapes aligned on the right; an axis of one is read at 0)."""
    lead = len(out_index) - len(shape)
    return [tir.const(0, "int32") if d == 1 else out_index[lead + k]
            for k, d in enumerate(shape)]


def flat_position(shape: Sequence[int], index: Sequence[Expr]) -> Expr:
    """The row-major position of ``index`` in a tensor of ``shape``."""
    pos: Expr = tir.const(0, "int64")
    for d, i in zip(shape, index):
        pos = pos * tir.const(d, "int64") + i.astype("int64")
    return pos


def unflatten(shape: Sequence[int], pos: Expr) -> list[Expr]:
    """The index of row-major position ``pos`` in a tensor of ``shape``."""
    out: list[Expr] = []
    for d in reversed(shape):
        out.append(tir.floormod(pos, tir.const(d, "int64")))
        pos = tir.floordiv(pos, tir.const(d, "int64"))
    return out[::-1]


def lookup(table: Any, code: Expr, dtype: DType) -> Expr:
    """table[code - qmin(dtype)]: a 256-entry table indexed as qmath.lookup indexes it."""
    lo, _ = qmath.qrange(dtype)
    return table[code.astype("int32") - tir.const(lo, "int32")]


def centred_max(t: TensorType) -> int:
    """The largest |q - zero_point| a tensor of type ``t`` can hold."""
    lo, hi = qmath.qrange(t.dtype)
    assert t.quant is not None
    zps = zero_points(t.quant)
    return int(max(np.max(hi - zps), np.max(zps - lo)))


def row_sums(v: Value, axis: int) -> int | None:
    """max over the slices along ``axis`` of sum |q - zero_point| when ``v`` is a constant
    (one zero point per slice, or one for all), else None."""
    if v.data is None:
        return None
    assert v.type.quant is not None
    data = np.moveaxis(np.asarray(v.data, dtype=np.int64), axis, 0)
    zps = zero_points(v.type.quant).astype(np.int64)
    centred = data.reshape(data.shape[0], -1) - (zps.reshape(-1, 1) if zps.size > 1 else zps)
    return int(np.abs(centred).sum(axis=1).max(initial=0))


def accumulator(bound: int) -> str:
    """The dtype of a sum whose partial sums are at most ``bound`` in magnitude."""
    return "int32" if bound <= I32_MAX else I64


def conv_extent(sizes: Sequence[int], outs: Sequence[int], kern: Sequence[int],
                strides: Sequence[int], dilations: Sequence[int],
                pads: Sequence[int]) -> list[int]:
    """Per spatial axis, the cells a convolution's taps reach: the input after its leading
    pads, or further when the last output's window ends past it."""
    return [max(sizes[i] + pads[i], (outs[i] - 1) * strides[i] + (kern[i] - 1) * dilations[i]
                + 1) for i in range(len(sizes))]


def padded(x: Any, before: Sequence[int], extent: Sequence[int], value: Callable[[Expr], Expr],
           fill: Expr, name: str) -> Any:
    """``value(x[n, c, p - before])`` on a spatial grid of ``extent`` cells (N, C kept),
    ``fill`` outside x (a convolution's padding)."""
    sizes = [int(d) for d in x.shape[2:]]

    def body(n: Any, c: Any, *p: Any) -> Any:
        inside = tir.all(*[tir.all(pi >= b, pi < b + s) for pi, b, s in zip(p, before, sizes)])
        src = [tir.max(tir.min(pi - b, s - 1), 0) for pi, b, s in zip(p, before, sizes)]
        return tir.if_then_else(inside, value(x[(n, c, *src)]), fill)

    return te.compute((*x.shape[:2], *extent), body, name=name)
