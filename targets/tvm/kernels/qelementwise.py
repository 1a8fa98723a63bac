"""Quantised elementwise ops: Requantize, QAdd, QMul (numpy broadcasting) and QLut."""

from __future__ import annotations

from typing import Any

import numpy as np

from ir.ops.qcommon import (
    ADD_SHIFT,
    act_clamp,
    add_multipliers,
    product_multiplier,
    rescale_multiplier,
    zero_points,
)
from targets.tvm.api import te, tir
from targets.tvm.context import Kernel, Tensor
from targets.tvm.kernels.common import I64, broadcast_index, lookup, requant_raw, requantize
from targets.tvm.registry import kernel


def _centred(k: Kernel, name: str) -> Any:
    """(v - zv) as int64 for operand ``name``, read with numpy broadcasting at an output index."""
    t = k.type_of(name)
    assert t.quant is not None
    v = k.operand(name)
    return lambda i: v[tuple(broadcast_index(t.shape, i))].astype(I64) - int(
        zero_points(t.quant)[0])


@kernel("Requantize")
def requantize_op(k: Kernel) -> list[Tensor]:
    """y = clamp(zy + requant_raw(x - zx, M)), M = s_x / s_y (int64)."""
    (y,) = k.out_types
    assert y.quant is not None
    (m0,), (shift,) = rescale_multiplier(k.type_of("x"), y)
    x = _centred(k, "x")
    return [te.compute(y.shape, lambda *i: requantize(x(i), int(m0), int(shift),
                                                      y.quant.zero_point[0], y.dtype),
                       name="y")]


@kernel("QAdd")
def qadd(k: Kernel) -> list[Tensor]:
    """With L = 20 and s = 2 * max(s_a, s_b): a' = requant_raw((a - za) << L, s_a / s),
    b' = requant_raw((b - zb) << L, s_b / s), y = clamp_act(zy + requant_raw(a' + b',
    s / (2^L * s_y))), all int64, numpy broadcasting."""
    (y,) = k.out_types
    assert y.quant is not None
    (ma, sa), (mb, sb), (my, sy) = (
        (int(m[0]), int(s[0])) for m, s in add_multipliers(k.type_of("a"), k.type_of("b"), y))
    a, b = _centred(k, "a"), _centred(k, "b")
    lsh = tir.const(ADD_SHIFT, I64)

    def body(*i: Any) -> Any:
        total = (requant_raw(tir.shift_left(a(i), lsh), ma, sa)
                 + requant_raw(tir.shift_left(b(i), lsh), mb, sb))
        return requantize(total, my, sy, y.quant.zero_point[0], y.dtype, act_clamp(k.attrs))

    return [te.compute(y.shape, body, name="y")]


@kernel("QMul")
def qmul(k: Kernel) -> list[Tensor]:
    """y = clamp(zy + requant_raw((a - za) * (b - zb), s_a * s_b / s_y)), int64, numpy
    broadcasting."""
    (y,) = k.out_types
    assert y.quant is not None
    (m0,), (shift,) = product_multiplier(k.type_of("a"), k.type_of("b"), y, "QMul")
    a, b = _centred(k, "a"), _centred(k, "b")
    return [te.compute(y.shape, lambda *i: requantize(a(i) * b(i), int(m0), int(shift),
                                                      y.quant.zero_point[0], y.dtype),
                       name="y")]


@kernel("QLut")
def qlut(k: Kernel) -> list[Tensor]:
    """y = table[x - qmin(x's type)] (qmath.lookup), the 256-entry table a constant."""
    (y,) = k.out_types
    xt = k.type_of("x")
    x = k.operand("x")
    table = k.table(np.asarray(k.attrs["table"], dtype=y.dtype.np), "table")
    return [te.compute(y.shape, lambda *i: lookup(table, x[i], xt.dtype), name="y")]
