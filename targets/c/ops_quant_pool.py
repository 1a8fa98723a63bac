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
from targets.c.emitter import LayerCtx, emits
from targets.c.ops_quant_util import int_table, qparams


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
    return "\n".join([
        int_table("req_m0", "int32_t", m0[inverse].tolist()),
        int_table("req_n", "int8_t", (shift[inverse] + qmath.M0_BITS).tolist()),
        ctx.omp().rstrip("\n"),
        f"for (int nc = 0; nc < {x[0] * x[1]}; ++nc) {{",
        f"  const {xt} *xc = {ctx.i(0)} + nc * {H * W};",
        f"  {yt} *yc = {ctx.o(0)} + nc * {OH * OW};",
        f"  for (int oh = 0; oh < {OH}; ++oh)",
        f"  for (int ow = 0; ow < {OW}; ++ow) {{",
        "    int32_t acc = 0;",
        f"    for (int kh = 0; kh < {KH}; ++kh) {{",
        f"      const int ih = oh * {SH} - {PT} + kh * {DH};",
        f"      if (ih < 0 || ih >= {H}) continue;",
        f"      for (int kw = 0; kw < {KW}; ++kw) {{",
        f"        const int iw = ow * {SW} - {PL} + kw * {DW};",
        f"        if (iw >= 0 && iw < {W}) acc += xc[ih * {W} + iw] - {zx};",
        "      }",
        "    }",
        f"    const int p = oh * {OW} + ow;",
        f"    yc[p] = ({yt})qnnc_requant(acc, req_m0[p], req_n[p], {zy}, {lo}, {hi});",
        "  }",
        "}",
    ]).replace("\n\n", "\n").lstrip("\n")


@emits("QGlobalAveragePool")
def qglobalavg(ctx: LayerCtx) -> str:
    x = ctx.it(0).shape
    nc, s = x[0] * x[1], int(np.prod(x[2:]))
    m0, shift = pool_multipliers(ctx.it(0), ctx.ot(0), np.asarray([max(1, s)]),
                                 "QGlobalAveragePool")
    zx, zy = int(qparams(ctx.it(0)).zero_point[0]), int(qparams(ctx.ot(0)).zero_point[0])
    lo, hi = qmath.qrange(ctx.ot(0).dtype)
    xt, yt = ctx.ctype(ctx.it(0)), ctx.ctype(ctx.ot(0))
    return "\n".join([
        f"for (int nc = 0; nc < {nc}; ++nc) {{",
        f"  const {xt} *xc = {ctx.i(0)} + nc * {s};",
        "  int64_t acc = 0;",
        f"  for (int i = 0; i < {s}; ++i) acc += xc[i];",
        f"  {ctx.o(0)}[nc] = ({yt})qnnc_requant(acc - (int64_t){zx} * {s}, {int(m0[0])}, "
        f"{31 + int(shift[0])}, {zy}, {lo}, {hi});",
        "}",
    ])
