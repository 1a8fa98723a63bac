"""QLinear (the fully connected layer) and QMatMul (numpy matmul broadcasting)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ir.ops.qcommon import act_clamp, conv_multipliers, out_type, product_multiplier, zero_points
from targets.tvm.api import te
from targets.tvm.context import Kernel, Tensor
from targets.tvm.kernels.common import (
    I64,
    accumulator,
    broadcast_index,
    centred_max,
    lookup,
    requantize,
    row_sums,
)
from targets.tvm.registry import kernel


def _with_lut(k: Kernel, y: Tensor, mid: Any) -> list[Tensor]:
    if not k.has("lut"):
        return [y]
    lut = k.operand("lut")
    return [te.compute(mid.shape, lambda *i: lookup(lut, y[i], mid.dtype), name="y_lut")]


@kernel("QLinear")
def qlinear(k: Kernel) -> list[Tensor]:
    """acc[..., n] = b[n] + sum_k (x[..., k] - zx) * (w[n, k] - zw[n]);
    y = clamp_act(zy + requant_raw(acc, M_n)), M_n = s_x * s_w[n] / s_y (int64);
    with an epilogue table, y = lut[y - qmin]. The sum in int32 when every partial sum
    provably fits (common.accumulator)."""
    xt, wt = k.type_of("x"), k.type_of("w")
    assert xt.quant is not None and wt.quant is not None
    x, w = k.operand("x"), k.operand("w")
    b = k.operand("b") if k.has("b") else None
    mid = out_type("QLinear", k.out_types[0].shape, k.attrs, act=True)
    assert mid.quant is not None
    m0s, shifts = conv_multipliers(xt, wt, mid, "QLinear")
    m0, shift = k.per_channel(m0s, "m0"), k.per_channel(shifts, "shift")
    zw = k.per_channel(zero_points(wt.quant), "zw")
    zx = int(zero_points(xt.quant)[0])
    r = te.reduce_axis((0, wt.shape[1]), name="rk")
    sums = row_sums(k.node.operand("w"), 0)
    dt = accumulator(centred_max(xt) * (sums if sums is not None else
                                        wt.shape[1] * centred_max(wt)))

    def dot(*i: Any) -> Any:
        xv = (x[(*i[:-1], r)].astype(I64) - zx).astype(dt)
        return te.sum(xv * (w[i[-1], r].astype(I64) - zw(i[-1])).astype(dt), axis=r)

    acc = te.compute(mid.shape, dot, name="acc")

    def out(*i: Any) -> Any:
        total = acc[i].astype(I64) if b is None else acc[i].astype(I64) + b[i[-1]].astype(I64)
        return requantize(total, m0(i[-1]), shift(i[-1]), mid.quant.zero_point[0], mid.dtype,
                          act_clamp(k.attrs))

    return _with_lut(k, te.compute(mid.shape, out, name="y"), mid)


@kernel("QMatMul")
def qmatmul(k: Kernel) -> list[Tensor]:
    """acc = (a - za) @ (b - zb) with numpy matmul broadcasting (a 1-D a is a row, a 1-D b a
    column, both dropped from the result); y = clamp(zy + requant_raw(acc, M)),
    M = s_a * s_b / s_y; with an epilogue table, y = lut[y - qmin]. The sum in int32 when
    every partial sum provably fits (common.accumulator)."""
    at, bt = k.type_of("a"), k.type_of("b")
    assert at.quant is not None and bt.quant is not None
    a, b = k.operand("a"), k.operand("b")
    mid = out_type("QMatMul", k.out_types[0].shape, k.attrs)
    assert mid.quant is not None
    (m0,), (shift,) = product_multiplier(at, bt, mid, "QMatMul")
    za, zb = int(zero_points(at.quant)[0]), int(zero_points(bt.quant)[0])
    r = te.reduce_axis((0, at.shape[-1]), name="rk")
    a_row, b_col = at.rank >= 2, bt.rank >= 2
    bv = k.node.operand("b")
    if bv.data is not None:  # a constant b: its largest column sum of |b - zb|
        centred = np.abs(np.asarray(bv.data, dtype=np.int64) - zb)
        b_sums = int(centred.sum(axis=-2 if b_col else 0).max(initial=0))
    else:
        b_sums = at.shape[-1] * centred_max(bt)
    dt = accumulator(centred_max(at) * b_sums)

    def dot(*i: Any) -> Any:
        idx = list(i)
        col = idx.pop() if b_col else None
        row = idx.pop() if a_row else None
        ai = [*broadcast_index(at.shape[:-2], idx), row, r] if a_row else [r]
        bi = [*broadcast_index(bt.shape[:-2], idx), r, col] if b_col else [r]
        return te.sum((a[tuple(ai)].astype(I64) - za).astype(dt)
                      * (b[tuple(bi)].astype(I64) - zb).astype(dt), axis=r)

    acc = te.compute(mid.shape, dot, name="acc")
    y = te.compute(mid.shape, lambda *i: requantize(acc[i].astype(I64), int(m0), int(shift),
                                                     mid.quant.zero_point[0], mid.dtype),
                   name="y")
    return _with_lut(k, y, mid)
