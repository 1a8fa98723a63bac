"""QConv: the quantised convolution, any number of spatial axes, groups, dilations."""

from __future__ import annotations

from typing import Any

import numpy as np

from ir.ops.qcommon import act_clamp, conv_multipliers, out_type, zero_points
from targets.tvm.api import te, tir
from targets.tvm.context import Kernel, Tensor
from targets.tvm.kernels.common import (
    I64,
    accumulator,
    centred_max,
    conv_extent,
    lookup,
    padded,
    requantize,
    row_sums,
)
from targets.tvm.registry import kernel


@kernel("QConv")
def qconv(k: Kernel) -> list[Tensor]:
    """acc[n, m, o...] = b[m] + sum_{c, t...} (x - zx)[n, g*Cg + c, o*s - pad + t*d]
    * (w[m, c, t...] - zw[m]), g = m // (M / group), padding contributing 0;
    y = clamp_act(zy + requant_raw(acc, M_m)), M_m = s_x * s_w[m] / s_y (int64); the sum
    in int32 when every partial sum provably fits (common.accumulator);
    with an epilogue table, y = lut[y - qmin]."""
    a = k.attrs
    xt, wt = k.type_of("x"), k.type_of("w")
    assert xt.quant is not None and wt.quant is not None
    x, w = k.operand("x"), k.operand("w")
    b = k.operand("b") if k.has("b") else None
    mid = out_type("QConv", k.out_types[0].shape, a, act=True)
    assert mid.quant is not None
    m0s, shifts = conv_multipliers(xt, wt, mid)
    m0, shift = k.per_channel(m0s, "m0"), k.per_channel(shifts, "shift")
    zw = k.per_channel(zero_points(wt.quant), "zw")
    nsp = xt.rank - 2
    strides, dil, pads = a["strides"], a["dilations"], a["pads"]
    outs = list(mid.shape[2:])
    kern = list(wt.shape[2:])
    extent = conv_extent(xt.shape[2:], outs, kern, strides, dil, pads)
    zx = int(zero_points(xt.quant)[0])
    xc = padded(x, pads[:nsp], extent, lambda v: v.astype("int32") - zx,
                tir.const(0, "int32"), "x_centred")  # (x - zx) as int32, 0 in the padding
    cg, mg = wt.shape[1], wt.shape[0] // a["group"]
    rc = te.reduce_axis((0, cg), name="rc")
    rk = [te.reduce_axis((0, kern[i]), name=f"rk{i}") for i in range(nsp)]

    sums = row_sums(k.node.operand("w"), 0)
    terms = cg * int(np.prod(kern))
    dt = accumulator(centred_max(xt) * (sums if sums is not None else
                                        terms * centred_max(wt)))

    def dot(n: Any, m: Any, *o: Any) -> Any:
        pos = [o[i] * strides[i] + rk[i] * dil[i] for i in range(nsp)]
        xv = xc[(n, tir.indexdiv(m, mg) * cg + rc, *pos)].astype(dt)
        wv = (w[(m, rc, *rk)].astype(I64) - zw(m)).astype(dt)
        return te.sum(xv * wv, axis=[rc, *rk])

    acc = te.compute(mid.shape, dot, name="acc")

    def out(n: Any, m: Any, *o: Any) -> Any:
        a_ = acc[(n, m, *o)].astype(I64)
        total = a_ if b is None else a_ + b[m].astype(I64)
        return requantize(total, m0(m), shift(m), mid.quant.zero_point[0], mid.dtype,
                          act_clamp(a))

    y = te.compute(mid.shape, out, name="y")
    if not k.has("lut"):
        return [y]
    lut = k.operand("lut")
    return [te.compute(mid.shape, lambda *i: lookup(lut, y[i], mid.dtype), name="y_lut")]
