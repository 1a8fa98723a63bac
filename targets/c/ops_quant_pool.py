"""INT8 average pooling: QAveragePool and QGlobalAveragePool.

The window sum of x - zx is exact in int32; the division by the window's element count is
part of the requantisation (M = s_x / (s_y * count)), so it rounds exactly like every other
requantisation. Counts are known at compile time, per output row and column: the (M0, n)
of each output position is a table entry computed here with the interpreter's own helpers.
"""

from __future__ import annotations

import numpy as np

from ir import qmath
from ir.ops.qcommon import pool_multipliers
from ir.ops.qpool import _out_sizes, window_counts
from targets.c.cond import all_of, ge, lt
from targets.c.emitter import LayerCtx, emits, plus
from targets.c.ops_quant_util import centred, int_table, qparams
from targets.c.stmt import guarded, let, loop, nested


@emits("QAveragePool")
def qavgpool(ctx: LayerCtx) -> str:
    x = ctx.it(0).shape
    nsp = len(x) - 2
    if nsp not in (1, 2):
        raise ctx.fail("only 1-D and 2-D pooling windows have a C emitter")
    a = ctx.a
    out = _out_sizes(x, a)
    counts = window_counts(x, out, a).reshape(-1)  # one per output position
    distinct, inverse = np.unique(counts, return_inverse=True)
    m0, shift = pool_multipliers(ctx.it(0), ctx.ot(0), distinct)

    def two(vals: list[int], default: int) -> tuple[int, int]:
        return (default, vals[0]) if nsp == 1 else (vals[0], vals[1])

    H, W = (1, x[2]) if nsp == 1 else (x[2], x[3])
    OH, OW = (1, out[0]) if nsp == 1 else (out[0], out[1])
    KH, KW = two(a["kernel_shape"], 1)
    SH, SW = two(a["strides"], 1)
    DH, DW = two(a["dilations"], 1)
    PT, PL = (0, a["pads"][0]) if nsp == 1 else (a["pads"][0], a["pads"][1])
    zx, zy = int(qparams(ctx.it(0)).zero_point[0]), int(qparams(ctx.ot(0)).zero_point[0])
    lo, hi = qmath.qrange(ctx.ot(0).dtype)
    xt, yt = ctx.ctype(ctx.it(0)), ctx.ctype(ctx.ot(0))
    hnc, nc = loop("nc", x[0] * x[1])
    hoh, oh = loop("oh", OH)
    how, ow = loop("ow", OW)
    hkh, kh = loop("kh", KH)
    hkw, kw = loop("kw", KW)
    ih_decl, ih = let("ih", oh * SH - PT + kh * DH)
    iw_decl, iw = let("iw", ow * SW - PL + kw * DW)
    taps = nested([hkw], [*iw_decl, *guarded(all_of(ge(iw, 0), lt(iw, W)), [
        f"acc += {centred(f'xc[{ih * W + iw}]', zx)};"])])
    window = nested([hkh], [*ih_decl, *guarded(all_of(ge(ih, 0), lt(ih, H)), taps)])
    decl, p = let("p", oh * OW + ow)
    position = ["int32_t acc = 0;", *window, *decl,
                f"yc[{p}] = ({yt})qnnc_requant(acc, req_m0[{p}], req_n[{p}], {zy}, {lo}, {hi});"]
    plane = [f"const {xt} *xc = {plus(ctx.i(0), nc * (H * W))};",
             f"{yt} *yc = {plus(ctx.o(0), nc * (OH * OW))};",
             *nested([hoh, how], position)]
    return "\n".join([
        int_table("req_m0", "int32_t", m0[inverse].tolist()),
        int_table("req_n", "int8_t", (shift[inverse] + qmath.M0_BITS).tolist()),
        *([ctx.omp().rstrip("\n")] if hnc and ctx.omp() else []),
        *nested([hnc], plane),
    ])


@emits("QGlobalAveragePool")
def qglobalavg(ctx: LayerCtx) -> str:
    x = ctx.it(0).shape
    nc, s = x[0] * x[1], int(np.prod(x[2:]))
    m0, shift = pool_multipliers(ctx.it(0), ctx.ot(0), np.asarray([max(1, s)]),
                                 "QGlobalAveragePool")
    zx, zy = int(qparams(ctx.it(0)).zero_point[0]), int(qparams(ctx.ot(0)).zero_point[0])
    lo, hi = qmath.qrange(ctx.ot(0).dtype)
    xt, yt = ctx.ctype(ctx.it(0)), ctx.ctype(ctx.ot(0))
    hnc, c = loop("nc", nc)
    zero_share = f" - {zx * s}" if zx else ""
    return ctx.omp() * (hnc is not None) + "\n".join(nested([hnc], [
        f"const {xt} *xc = {plus(ctx.i(0), c * s)};",
        "int64_t acc = 0;",
        f"for (int i = 0; i < {s}; ++i) acc += xc[i];",
        f"{ctx.o(0)}[{c}] = ({yt})qnnc_requant(acc{zero_share}, {int(m0[0])}, "
        f"{31 + int(shift[0])}, {zy}, {lo}, {hi});",
    ]))
