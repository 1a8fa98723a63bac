"""INT8 products: QConv (dense, grouped, depthwise), QLinear and QMatMul.

Dense and grouped convolutions and fully connected layers run the int16-pair GEMM
micro-kernel of csrc/qnnc_int8.h (A = weights, packed here at compile time, kept as int8
and widened one tile at a time when they fit; B = the activations, packed per call in
chunks of output positions that stay in L2). The raw 8-bit
activations are multiplied, not x - zx: the zero point's share, zx * sum_k (w - zw)[m, k],
is folded into the bias at compile time, and padding holds zx so that it contributes
exactly nothing. A 1x1 stride-1 convolution packs its input planes in place (they are
already B's rows); a fully connected layer with at most GEMV_ROWS input rows runs a matrix x
vector kernel on the same packed weights instead of a 16-column tile it would mostly waste.
Depthwise convolutions get their own direct loop over a centred, padded copy of each channel
(an im2col would copy every input value KH*KW times for one multiply).
Bounds on every int32 sum are checked here, from the actual weights, so the C never
overflows where the interpreter's int64 would not.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ir.graph import Node
from ir.ops.qcommon import conv_multipliers, product_multiplier
from ir.types import DType, TensorType
from targets.c.cond import ge, minimum
from targets.c.emitter import (
    LayerCtx,
    emits,
    nested_loops,
    offset_expr,
    plus,
    strides_of,
)
from targets.c.expr import Const, Expr, Var, add, lift
from targets.c.ops_elementwise import broadcast_strides
from targets.c.ops_quant_util import centred, clamp_bounds, int_table, mult_exprs, qparams, sgn
from targets.c.stmt import guarded, let, loop, nested

MR, NR = 6, 16  # the micro-kernel tile of csrc/qnnc_int8.h (QNNC_Q8_MR, QNNC_Q8_NR)
GEMV_MR = 4  # the matrix x vector kernel's rows per tile (QNNC_Q8_GEMV_MR)
L2_BUDGET = 256 * 1024  # bytes of packed activations per chunk
I32 = 2**31


def _geometry(node: Node) -> dict[str, int]:
    x, w, y = node.x, node.w, node.outputs[0]
    assert x is not None and w is not None
    nsp = len(x.type.shape) - 2
    if nsp not in (1, 2):
        raise ValueError("only 1-D and 2-D convolutions have a C emitter")
    a = node.attrs

    def sp(shape: tuple[int, ...], k: int) -> int:  # spatial dim k of 2; 1-D as H = 1
        return 1 if nsp == 1 and k == 0 else shape[2 + k - (2 - nsp)]

    def at(name: str, k: int, default: int) -> int:
        return default if nsp == 1 and k == 0 else a[name][k - (2 - nsp)]

    n, c = x.type.shape[:2]
    m, g = w.type.shape[0], a["group"]
    d = dict(N=n, C=c, H=sp(x.type.shape, 0), W=sp(x.type.shape, 1), M=m, G=g, Cg=c // g,
             Mg=m // g, KH=sp(w.type.shape, 0), KW=sp(w.type.shape, 1),
             OH=sp(y.type.shape, 0), OW=sp(y.type.shape, 1), SH=at("strides", 0, 1),
             SW=at("strides", 1, 1), DH=at("dilations", 0, 1), DW=at("dilations", 1, 1),
             PT=0 if nsp == 1 else a["pads"][0], PL=a["pads"][nsp - 1])
    d["K"] = d["Cg"] * d["KH"] * d["KW"]
    d["K2"] = (d["K"] + 1) // 2
    d["P"] = d["OH"] * d["OW"]
    return d


def _depthwise(d: dict[str, int]) -> bool:
    return d["G"] > 1 and d["Cg"] == 1 and d["Mg"] == 1


MIN_PANELS = 4  # panels per chunk however long K is: each weight tile serves this many


def _chunk(k2: int, cols: int) -> int:
    """Columns per packed chunk: a multiple of 16 whose packed B fits the L2 budget, but at
    least MIN_PANELS panels. With a long K (ResNet's last 3x3 layers: K = 4608, 4.7 MB of
    weights) one panel per chunk would stream every weight tile from memory once per 16
    output positions; four panels from L3 cost less than weights re-read from DRAM."""
    fit = max(MIN_PANELS * NR, (L2_BUDGET // (k2 * 4 * NR)) * NR)
    return min(fit, -(-cols // NR) * NR)


def _paren(text: str) -> str:
    return text if text.isidentifier() else f"({text})"


def _chunks(total: int, size: int, body: Callable[[Expr], list[str]]) -> list[str]:
    """``body(p0)`` for every chunk of ``size`` of ``total`` columns, with ``nc`` (columns in
    the chunk) and ``np`` (16-column panels) declared: one loop, or none for one chunk."""
    head, p0 = loop("p0", total, size)
    if head is None:
        return [f"const int nc = {total}, np = {-(-total // NR)};", *body(p0)]
    return nested([head], [f"const int nc = {total} - p0 < {size} ? {total} - p0 : {size};",
                           f"const int np = (nc + {NR - 1}) / {NR};", *body(p0)])


def _gemm_scratch(k2: int, nc: int) -> int:
    return (k2 * 2 * nc + 2 * nc) * 2


def _dw_plane(d: dict[str, int]) -> tuple[int, int]:
    hp = (d["OH"] - 1) * d["SH"] + (d["KH"] - 1) * d["DH"] + 1
    wp = (d["OW"] - 1) * d["SW"] + (d["KW"] - 1) * d["DW"] + 1
    return hp, wp


def qconv_scratch(node: Node) -> int:
    try:
        d = _geometry(node)
    except (ValueError, KeyError, IndexError):
        return 0
    if _depthwise(d):
        hp, wp = _dw_plane(d)
        return d["SW"] * hp * -(-wp // d["SW"]) * 2
    return _gemm_scratch(d["K2"], _chunk(d["K2"], d["P"]))


def pack_weights(w: np.ndarray, k2: int, mr: int = MR) -> np.ndarray:
    """[R, K] int weights to the micro-kernel's A layout [ceil(R/mr)][K2][mr][2] (int16)."""
    r, k = w.shape
    mt = -(-r // mr)
    full = np.zeros((mt * mr, 2 * k2), dtype=np.int16)
    full[:r, :k] = w
    return full.reshape(mt, mr, k2, 2).transpose(0, 2, 1, 3).reshape(-1)


def _centred_weight(ctx: LayerCtx, rows: int) -> np.ndarray:
    """w - zw as int64 [rows, K] (the weight must be a compile-time constant)."""
    w = ctx.const("w")
    if w is None:
        raise ctx.fail("the weight must be a compile-time constant")
    q = qparams(ctx.it("w"))
    zw = np.asarray(q.zero_point, dtype=np.int64)
    wc = w.astype(np.int64).reshape(rows, -1) - (zw.reshape(-1, 1) if zw.size > 1 else zw[0])
    if np.abs(wc).max(initial=0) > 32767:
        raise ctx.fail("w - zero point does not fit int16")
    return wc


def _folded_bias(ctx: LayerCtx, wc: np.ndarray, zx: int, xmax: int) -> np.ndarray:
    """b - zx * sum_k (w - zw): the zero point's share, subtracted once. Raises unless every
    int32 sum in the kernel (raw x times w, and the true accumulator) provably fits."""
    b = ctx.const("b") if ctx.has("b") else np.zeros(wc.shape[0], dtype=np.int64)
    if ctx.has("b") and b is None:
        raise ctx.fail("the bias must be a compile-time constant")
    assert b is not None
    bias = b.astype(np.int64) - zx * wc.sum(axis=1)
    absw = np.abs(wc).sum(axis=1)
    raw = absw * xmax
    true = absw * (xmax + abs(zx)) + np.abs(b.astype(np.int64))
    if raw.max(initial=0) >= I32 or true.max(initial=0) >= I32 or \
            np.abs(bias).max(initial=0) >= I32:
        raise ctx.fail("an int32 accumulator could overflow for these weights")
    return bias


def _xrange(t: TensorType) -> int:
    return 128 if t.dtype is DType.i8 else 255


NARROW_TILE_BYTES = 64 * 1024  # largest widened weight tile kept on the stack


def weight_tiles(ctx: LayerCtx, packed: np.ndarray, k2: int) -> tuple[str, bool]:
    """(C name, narrow) of packed weight tiles: as int8 when every value fits and a widened
    tile fits NARROW_TILE_BYTES (half the bytes to stream from memory: ResNet-50's weights
    no longer fit a 32 MB L3 as int16), else as int16."""
    if np.abs(packed).max(initial=0) <= 127 and k2 * 2 * MR * 2 <= NARROW_TILE_BYTES:
        return ctx.weight(packed.astype(np.int8), "packed8"), True
    return ctx.weight(packed, "packed"), False


def _tile_source(wp: str, k2: int, tile: Expr, narrow: bool) -> list[str]:
    """C lines binding ``wt`` to weight tile ``tile``, widened to int16 if narrow."""
    at = plus(wp, tile * (k2 * 2 * MR))
    if not narrow:
        return [f"const int16_t *wt = {at};"]
    return [f"int16_t wt[{k2 * 2 * MR}] QNNC_ALIGNED(32);",
            f"qnnc_q8_widen(wt, {at}, 1, {k2 * 2 * MR}, 0, {k2 * 2 * MR});"]


def _tiles(ctx: LayerCtx, mt: int, body: Callable[[Expr], list[str]]) -> list[str]:
    """``body(mt)`` for every MR-row weight tile (threaded if on): one loop, or none."""
    head, t = loop("mt", mt)
    if head is None:
        return body(t)
    return [*([ctx.omp().rstrip("\n")] if ctx.omp() else []), *nested([head], body(t))]


def _tile_loop(ctx: LayerCtx, *, wp: str, mt: int, k2: int, rows: int, store: str,
               panel0: Expr | int = 0, narrow: bool = False) -> list[str]:
    """The micro-kernel over every MR-row weight tile x 16-column panel of the packed chunk;
    ``store`` stores row r (channel m) of ``acc`` (cols valid columns, panel j)."""
    def tile(t: Expr) -> list[str]:
        m = t * MR + Var("r", 0, MR - 1)
        return [
            *_tile_source(wp, k2, lift(panel0) + t, narrow),
            "for (int j = 0; j < np; ++j) {",
            f"  int32_t acc[{MR * NR}];",
            f"  qnnc_q8_tile({k2}, wt, bp + j * {k2 * 2 * NR}, acc);",
            f"  const int cols = nc - j * {NR} < {NR} ? nc - j * {NR} : {NR};",
            f"  for (int r = 0; r < {MR}; ++r) {{",
            f"    const int m = {m};",
            *("    " + ln for ln in guarded(ge(m, rows), ["break;"])),
            f"    {store}",
            "  }",
            "}",
        ]
    return _tiles(ctx, mt, tile)


def fusable(shift: np.ndarray) -> bool:
    """Whether the fused tile kernel can requantise: every multiplier below 1 (n >= 31)."""
    n = shift.astype(np.int64) + 31
    return bool(n.min(initial=31) >= 31 and n.max(initial=31) <= 62)


def fused_epilogue(bias: str, m0: np.ndarray, shift: np.ndarray, zy: int, lo: int, hi: int,
                   sgn_out: int) -> list[str]:
    """C lines declaring ``ep``, the qnnc_q8_epilogue of csrc/qnnc_int8.h that the fused
    tile kernel applies (only where ``fusable(shift)``)."""
    return [
        int_table("ep_m0", "int32_t", [int(v) for v in m0.reshape(-1)]),
        int_table("ep_n", "int8_t", [int(v) + 31 for v in shift.reshape(-1)]),
        f"const qnnc_q8_epilogue ep = {{{bias}, ep_m0, ep_n, {zy}, {lo}, {hi}, "
        f"{int(m0.size > 1)}, {sgn_out}}};",
    ]


def _fused_tile_loop(ctx: LayerCtx, *, wp: str, mt: int, k2: int, rows: int, ch0: Expr,
                     y0: str, ldy: int, panel0: Expr | int = 0,
                     narrow: bool = False) -> list[str]:
    """The fused tile kernel over every tile of the chunk: tile (mt, j) stores channels
    ch0 + mt*MR .. (rows of the group) at y0 + (mt*MR) * ldy + j*16."""
    def tile(t: Expr) -> list[str]:
        left = rows - t * MR
        rr = minimum(left, MR)
        row0 = t * (MR * ldy) if t.value is not None else \
            Var("(ptrdiff_t)mt", t.lo, t.hi) * (MR * ldy)
        return [
            *_tile_source(wp, k2, lift(panel0) + t, narrow),
            *([] if rr.value is not None else [f"const int rr = {rr};"]),
            "for (int j = 0; j < np; ++j) {",
            f"  const int cols = nc - j * {NR} < {NR} ? nc - j * {NR} : {NR};",
            f"  qnnc_q8_tile_req({k2}, wt, bp + j * {k2 * 2 * NR}, &ep, {ch0 + t * MR}, "
            f"{rr if rr.value is not None else 'rr'}, cols, {y0} + {add(row0, Var('j') * NR)}, "
            f"{ldy});",
            "}",
        ]
    return _tiles(ctx, mt, tile)


def _direct(d: dict[str, int]) -> bool:
    """A 1x1 convolution with unit strides and no padding: the input planes already are the
    rows of B, so packing reads them in place (no im2col copy)."""
    return (d["KH"] == d["KW"] == d["SH"] == d["SW"] == 1 and d["PT"] == d["PL"] == 0
            and d["OH"] == d["H"] and d["OW"] == d["W"])


GATHER_MAX_OW = 16  # output rows this short gather their im2col bytes through a table


def gather_offsets(d: dict[str, int]) -> np.ndarray | None:
    """For short output rows (where copying im2col row segments costs a call per few bytes):
    [KH*KW][P] offsets into an input plane of the byte each output position reads for each
    tap, -1 in the padding; None for longer rows or planes too large for int16 offsets."""
    if d["OW"] > GATHER_MAX_OW or d["H"] * d["W"] > 32767:
        return None
    p = np.arange(d["P"])
    oh, ow = p // d["OW"], p % d["OW"]
    rows = []
    for t in range(d["KH"] * d["KW"]):
        ih = oh * d["SH"] + (t // d["KW"]) * d["DH"] - d["PT"]
        iw = ow * d["SW"] + (t % d["KW"]) * d["DW"] - d["PL"]
        inside = (ih >= 0) & (ih < d["H"]) & (iw >= 0) & (iw < d["W"])
        rows.append(np.where(inside, ih * d["W"] + iw, -1))
    return np.stack(rows).astype(np.int16)


def _conv_rows(d: dict[str, int], sx: int, zx: int, p0: Expr,
               gather: str | None = None) -> list[str]:
    """C statements packing rows k = 2*kp and 2*kp + 1 of B (the chunk's columns p0 ..
    p0+nc-1) into panel slot kp: straight from the input planes for a direct convolution,
    else through two byte rows of im2col (padding holds zx, which the folded bias cancels),
    copied in row segments or, with ``gather`` (the name of gather_offsets' table), byte by
    byte through the table."""
    k, hw, khw, positions = d["K"], d["H"] * d["W"], d["KH"] * d["KW"], d["P"]
    pack = f"qnnc_q8_pack_pair(bp + kp * {2 * NR}, {{a}}, 2 * kp + 1 < {k} ? {{b}} : NULL, " \
        f"{sx}, nc, 0, {d['K2'] * 2 * NR});"
    if _direct(d):
        return [pack.format(a=plus(f"xg + (ptrdiff_t)(2 * kp) * {hw}", p0),
                            b=plus(f"xg + (ptrdiff_t)(2 * kp + 1) * {hw}", p0))]
    if gather is not None:
        return [
            "for (int e = 0; e < 2; ++e) {",
            "  const int k = 2 * kp + e;",
            f"  if (k >= {k}) break;",
            f"  const uint8_t *xc = (const uint8_t *)(xg + (k / {khw}) * {hw});",
            f"  const int16_t *o = {plus(f'{gather} + (k % {khw}) * {positions}', p0)};",
            "  uint8_t *r = e ? rb : ra;",
            f"  for (int j = 0; j < nc; ++j) r[j] = o[j] >= 0 ? xc[o[j]] : {zx & 0xFF};",
            "}",
            pack.format(a="ra", b="rb"),
        ]
    return [
        "for (int e = 0; e < 2; ++e) {",
        "  const int k = 2 * kp + e;",
        f"  if (k >= {k}) break;",
        f"  const int c = k / {khw}, kh = (k / {d['KW']}) % {d['KH']}, kw = k % {d['KW']};",
        f"  qnnc_q8_im2row8(e ? rb : ra, (const uint8_t *)(xg + c * {hw}), {p0}, nc, {d['H']}, "
        f"{d['W']}, {d['OW']}, {d['SH']}, {d['SW']}, {Var('kh') * d['DH'] - d['PT']}, "
        f"{Var('kw') * d['DW'] - d['PL']}, {zx & 0xFF});",
        "}",
        pack.format(a="ra", b="rb"),
    ]


@emits("QConv", scratch=qconv_scratch)
def qconv(ctx: LayerCtx) -> str:
    try:
        d = _geometry(ctx.node)
    except ValueError as e:
        raise ctx.fail(str(e)) from None
    xq, yq = qparams(ctx.it(0)), qparams(ctx.ot(0))
    zx, zy = int(xq.zero_point[0]), int(yq.zero_point[0])
    m0, shift = conv_multipliers(ctx.it("x"), ctx.it("w"), ctx.ot(0))
    lo, hi = clamp_bounds(ctx)
    wc = _centred_weight(ctx, d["M"])
    sx, sy = sgn(ctx.it(0)), sgn(ctx.ot(0))
    if _depthwise(d):
        return _depthwise_body(ctx, d, wc, m0, shift, zx, zy, lo, hi)
    bias = _folded_bias(ctx, wc, zx, _xrange(ctx.it(0)))
    k2, mt = d["K2"], -(-d["Mg"] // MR)
    packed = np.concatenate([pack_weights(wc[g * d["Mg"]:(g + 1) * d["Mg"]], k2)
                             for g in range(d["G"])])
    wp, narrow = weight_tiles(ctx, packed, k2)
    bq = ctx.weight(bias.astype(np.int32), "bias_zp")
    hn, n = loop("n", d["N"])
    hg, g = loop("g", d["G"])
    oc_decl, oc = let("oc", g * d["Mg"] + Var("m"))
    decl, m0e, ne = mult_exprs(m0, shift, str(oc))
    nc = _chunk(k2, d["P"])
    hw, p = d["H"] * d["W"], d["P"]
    yct = ctx.ctype(ctx.ot(0))
    offsets = None if _direct(d) else gather_offsets(d)
    gather = None if offsets is None else ctx.weight(offsets.reshape(-1), "im2col")

    def chunk(p0: Expr) -> list[str]:
        at = Var("m") * p + p0 + Var("j") * NR
        store = " ".join([*oc_decl, f"qnnc_q8_store(acc + r * {NR}, cols, {bq}[{oc}], {m0e}, "
                          f"{ne}, {zy}, {lo}, {hi}, yg + {at}, 1, {sy});"])
        if fusable(shift):
            tiles = _fused_tile_loop(ctx, wp=wp, mt=mt, k2=k2, rows=d["Mg"], ch0=g * d["Mg"],
                                     y0=_paren(plus("yg", p0)), ldy=p, panel0=g * mt,
                                     narrow=narrow)
        else:
            tiles = _tile_loop(ctx, wp=wp, mt=mt, k2=k2, rows=d["Mg"], store=store,
                               panel0=g * mt, narrow=narrow)
        return [f"for (int kp = 0; kp < {k2}; ++kp) {{",
                *("  " + ln for ln in _conv_rows(d, sx, zx, p0, gather)),
                "}", *tiles]

    if fusable(shift):
        decl = fused_epilogue(bq, m0, shift, zy, lo, hi, sy)
    rows = [] if _direct(d) else [
        f"uint8_t *ra = (uint8_t *)(bp + {k2 * 2 * nc}), *rb = ra + {nc};"]
    body = [
        f"const {ctx.ctype(ctx.it(0))} *xg = "
        f"{plus(ctx.i(0), (n * d['C'] + g * d['Cg']) * hw)};",
        f"{yct} *yg = {plus(ctx.o(0), (n * d['M'] + g * d['Mg']) * p)};",
        *_chunks(p, nc, chunk),
    ]
    lines = [
        f"/* im2col + int8 GEMM: per image, group and chunk of {nc} output positions, "
        f"K = {d['K']} rows packed as int16 pairs */",
        *decl,
        "int16_t *bp = (int16_t *)scratch;",
        *rows,
        *nested([hn, hg], body),
    ]
    return "\n".join(ln for ln in lines if ln)


def _depthwise_body(ctx: LayerCtx, d: dict[str, int], wc: np.ndarray, m0: np.ndarray,
                    shift: np.ndarray, zx: int, zy: int, lo: int, hi: int) -> str:
    b = ctx.const("b") if ctx.has("b") else np.zeros(d["M"], dtype=np.int64)
    if b is None:
        raise ctx.fail("the bias must be a compile-time constant")
    khw = d["KH"] * d["KW"]
    xmax = _xrange(ctx.it(0)) + abs(zx)
    if (np.abs(wc).sum(axis=1) * xmax + np.abs(b.astype(np.int64))).max(initial=0) >= I32:
        raise ctx.fail("an int32 accumulator could overflow for these weights")
    if _pointwise(d):
        return _channel_scale_body(ctx, d, wc, b, m0, shift, zx, zy, lo, hi)
    hp, wp = _dw_plane(d)
    sw = d["SW"]
    wq = -(-wp // sw)  # columns of one phase plane
    wname = ctx.weight(wc.astype(np.int16).reshape(-1), "dw")
    bname = ctx.weight(b.astype(np.int32), "bias")
    decl, m0e, ne = mult_exprs(m0, shift, "c")
    rows, cols = min(d["H"], hp - d["PT"]), min(d["W"], wp - d["PL"])
    xt = ctx.ctype(ctx.it(0))
    fill = []
    for ph in range(sw):  # padded column j = iw + PL goes to plane j % SW, column j / SW
        i0 = (ph - d["PL"]) % sw
        step = "++iw" if sw == 1 else f"iw += {sw}"
        fill.append(f"for (int iw = {i0}, q = {(i0 + d['PL']) // sw}; iw < {cols}; "
                    f"{step}, ++q) dr[{ph * hp * wq + Var('q')}] = "
                    f"(int16_t)({centred('xr[iw]', zx)});")
    hn, n = loop("n", d["N"])
    hc, c = loop("c", d["C"])
    hih, ih = loop("ih", rows)
    decl, m0e, ne = mult_exprs(m0, shift, str(c))
    plane = n * d["C"] + c
    channel = [
        f"const {xt} *xc = {plus(ctx.i(0), plane * (d['H'] * d['W']))};",
        f"{ctx.ctype(ctx.ot(0))} *yc = {plus(ctx.o(0), plane * d['P'])};",
        f"memset(xp, 0, {sw * hp * wq * 2});",
        *nested([hih], [f"const {xt} *xr = {plus('xc', ih * d['W'])};",
                        f"int16_t *dr = {plus('xp', (ih + d['PT']) * wq)};", *fill]),
        f"const int16_t *wk = {plus(wname, c * khw)};",
        *_depthwise_taps(d, sw, hp, wq, np.abs(wc).max(initial=0) * xmax <= 32767,
                         f"qnnc_q8_store({{acc}}, {{n}}, {bname}[{c}], {m0e}, "
                         f"{ne}, {zy}, {lo}, {hi}, {{y}}, 1, {sgn(ctx.ot(0))});"),
    ]
    return "\n".join(ln for ln in [
        f"/* depthwise: each channel centred into {sw} zero-padded {hp} x {wq} int16 plane(s), "
        "one per column phase of the stride, so every tap reads a contiguous row */",
        *decl,
        "int16_t *xp = (int16_t *)scratch;",
        *nested([hn, hc], channel),
    ] if ln)


DW_PLANE_ACC = 4096  # output planes up to this size are requantised in one pass


def _depthwise_taps(d: dict[str, int], sw: int, hp: int, wq: int, short_products: bool,
                    store: str) -> list[str]:
    """The taps of one channel into int32 accumulators, then ``store`` (with {acc}, {n}, {y}):
    per output row, or, for a plane of at most DW_PLANE_ACC outputs, once for the whole plane
    (a 7- or 14-wide row would leave most of its requantisation to the scalar tail).
    ``short_products``: every (x - zx) * w fits int16 (checked from the actual weights), so
    the products are formed in int16 lanes (one vpmullw for 16) before widening."""
    product = "(int16_t)(row[ow] * wv)" if short_products else "row[ow] * wv"
    wtype = "int16_t" if short_products else "int32_t"
    whole = d["P"] <= DW_PLANE_ACC
    hoh, oh = loop("oh", d["OH"])
    hkh, kh = loop("kh", d["KH"])
    hkw, kw = loop("kw", d["KW"])
    col = kw * d["DW"]
    row = (col % sw) * (hp * wq) + (oh * d["SH"] + kh * d["DH"]) * wq + col // sw
    tap = [f"const {wtype} wv = wk[{kh * d['KW'] + kw}];",
           f"const int16_t *row = {plus('xp', row)};",
           f"for (int ow = 0; ow < {d['OW']}; ++ow) a[ow] += {product};"]
    lines = [
        *([] if whole else [f"int32_t acc[{d['OW']}];"]),
        f"int32_t *a = {plus('acc', oh * d['OW']) if whole else 'acc'};",
        f"for (int ow = 0; ow < {d['OW']}; ++ow) a[ow] = 0;",
        *nested([hkh, hkw], tap),
    ]
    if whole:
        return [f"int32_t acc[{d['P']}];", *nested([hoh], lines),
                store.format(acc="acc", n=d["P"], y="yc")]
    y = plus("yc", oh * d["OW"])
    return nested([hoh], [*lines, store.format(acc="acc", n=d["OW"], y=y)])


def _pointwise(d: dict[str, int]) -> bool:
    """A depthwise 1x1 convolution with unit strides and no padding: one weight per channel
    (a BatchNormalization quantised on its own, e.g.)."""
    return (d["KH"] == d["KW"] == d["SH"] == d["SW"] == 1 and d["PT"] == d["PL"] == 0
            and d["OH"] == d["H"] and d["OW"] == d["W"])


PW_CHUNK = 1024  # positions per accumulator block of a per-channel scale


def _channel_scale_body(ctx: LayerCtx, d: dict[str, int], wc: np.ndarray, b: np.ndarray,
                        m0: np.ndarray, shift: np.ndarray, zx: int, zy: int, lo: int,
                        hi: int) -> str:
    """y = requant(x * w[c] + (b[c] - zx * w[c])) per channel: the raw codes times the
    channel's weight, with the zero point's share folded into the bias at compile time."""
    w = wc.reshape(-1).astype(np.int64)
    bias = b.astype(np.int64) - zx * w
    if np.abs(bias).max(initial=0) >= I32:
        raise ctx.fail("an int32 accumulator could overflow for these weights")
    wname = ctx.weight(w.astype(np.int32), "scale")
    bname = ctx.weight(bias.astype(np.int32), "bias_zp")
    decl, m0e, ne = mult_exprs(m0, shift, "c")
    p, xt = d["P"], ctx.ctype(ctx.it(0))
    hn, n = loop("n", d["N"])
    hp0, p0 = loop("p0", p, PW_CHUNK)
    count = "len" if hp0 else str(p)
    plane = (Var("(ptrdiff_t)n", n.lo, n.hi) if n.value is None else n) * d["C"] + Var("c")
    channel = [
        f"const {xt} *xc = {plus(ctx.i(0), plane * p)};",
        f"{ctx.ctype(ctx.ot(0))} *yc = {plus(ctx.o(0), plane * p)};",
        f"const int32_t wv = {wname}[c];",
        *nested([hp0], [
            *([f"const int len = {p} - p0 < {PW_CHUNK} ? {p} - p0 : {PW_CHUNK};"] if hp0 else []),
            f"int32_t acc[{min(p, PW_CHUNK)}];",
            f"for (int i = 0; i < {count}; ++i) acc[i] = (int32_t)xc[{p0 + Var('i')}] * wv;",
            f"qnnc_q8_store(acc, {count}, {bname}[c], {m0e}, {ne}, {zy}, {lo}, {hi}, "
            f"{plus('yc', p0)}, 1, {sgn(ctx.ot(0))});",
        ]),
    ]
    omp = ctx.omp(collapse=2 if hn else 1).rstrip("\n")
    return "\n".join(ln for ln in [
        f"/* depthwise 1x1: one weight per channel over {p} positions */",
        *decl,
        omp,
        *nested([hn, f"for (int c = 0; c < {d['C']}; ++c)"], channel),
    ] if ln)


# -- QLinear ----------------------------------------------------------------------------------
def _linear_dims(node: Node) -> tuple[int, int, int]:
    x, w = node.x, node.w
    assert x is not None and w is not None
    n, k = w.type.shape
    return int(np.prod(x.type.shape[:-1])), n, k


GEMV_ROWS = 4  # up to this many input rows, one matrix x vector pass per row beats a tile


def qlinear_scratch(node: Node) -> int:
    rows, _, k = _linear_dims(node)
    k2 = (k + 1) // 2
    return 4 * k2 if rows <= GEMV_ROWS else _gemm_scratch(k2, _chunk(k2, rows))


@emits("QLinear", scratch=qlinear_scratch)
def qlinear(ctx: LayerCtx) -> str:
    """y[r][n]: the weight rows are the GEMM's A, the input rows its B columns."""
    rows, n, k = _linear_dims(ctx.node)
    xq, yq = qparams(ctx.it(0)), qparams(ctx.ot(0))
    zx, zy = int(xq.zero_point[0]), int(yq.zero_point[0])
    m0, shift = conv_multipliers(ctx.it("x"), ctx.it("w"), ctx.ot(0), "QLinear")
    lo, hi = clamp_bounds(ctx)
    wc = _centred_weight(ctx, n)
    bias = _folded_bias(ctx, wc, zx, _xrange(ctx.it(0)))
    k2 = (k + 1) // 2
    bq = ctx.weight(bias.astype(np.int32), "bias_zp")
    decl, m0e, ne = mult_exprs(m0, shift, "m")
    if rows <= GEMV_ROWS:
        mt = -(-n // GEMV_MR)
        wp = ctx.weight(pack_weights(wc, k2, GEMV_MR), "packed")
        hp, row = loop("p", rows)
        at = Var("(ptrdiff_t)p", row.lo, row.hi) if row.value is None else row
        tiles = [
            f"for (int mt = 0; mt < {mt}; ++mt) {{",
            f"  int32_t acc[{GEMV_MR}];",
            f"  qnnc_q8_gemv({k2}, {wp} + mt * {k2 * 2 * GEMV_MR}, xv, acc);",
            f"  for (int r = 0; r < {GEMV_MR} && mt * {GEMV_MR} + r < {n}; ++r) {{",
            f"    const int m = mt * {GEMV_MR} + r;",
            f"    qnnc_q8_store(acc + r, 1, {bq}[m], {m0e}, {ne}, {zy}, {lo}, {hi}, "
            f"{plus(ctx.o(0), at * n + Var('m'))}, 1, {sgn(ctx.ot(0))});",
            "  }",
            "}",
        ]
        omp = ctx.omp().rstrip("\n")
        return "\n".join(ln for ln in [
            f"/* int8 GEMV: {n} weight rows x {rows} input row(s), K = {k}, on {GEMV_MR}-row "
            "packed weight tiles */",
            *decl,
            "int16_t *xv = (int16_t *)scratch;",
            *nested([hp], [
                f"qnnc_q8_widen(xv, {plus(ctx.i(0), at * k)}, {sgn(ctx.it(0))}, {k}, 0, "
                f"{2 * k2});", *([omp] if omp else []), *tiles]),
        ] if ln)
    mt = -(-n // MR)
    wp, narrow = weight_tiles(ctx, pack_weights(wc, k2), k2)
    nc = _chunk(k2, rows)
    x, y = ctx.i(0), ctx.o(0)

    def chunk(p0: Expr) -> list[str]:
        row0 = Var("(ptrdiff_t)p0", p0.lo, p0.hi) if p0.value is None else p0
        col = Var(f"(ptrdiff_t)({p0 + Var('j') * NR})") if p0.value is None else \
            Var("(ptrdiff_t)j") * NR
        store = (f"qnnc_q8_store(acc + r * {NR}, cols, {bq}[m], {m0e}, {ne}, {zy}, {lo}, {hi}, "
                 f"{plus(y, col * n + Var('m'))}, {n}, {sgn(ctx.ot(0))});")
        return [f"qnnc_q8_pack_cols(bp, {plus(x, row0 * k)}, {sgn(ctx.it(0))}, nc, {k}, {k}, 0, "
                f"{k2 * 2 * NR});",
                *_tile_loop(ctx, wp=wp, mt=mt, k2=k2, rows=n, store=store, narrow=narrow)]

    lines = [
        f"/* int8 GEMM: {n} weight rows x {rows} input rows, K = {k} */",
        *decl,
        "int16_t *bp = (int16_t *)scratch;",
        *_chunks(rows, nc, chunk),
    ]
    return "\n".join(ln for ln in lines if ln)


# -- QMatMul ----------------------------------------------------------------------------------
def _matmul_dims(node: Node) -> tuple[int, int, int, tuple[int, ...], tuple[int, ...],
                                      tuple[int, ...]]:
    a, b = node.a, node.b
    assert a is not None and b is not None
    sa, sb = a.type.shape, b.type.shape
    a2 = sa if len(sa) >= 2 else (1,) + sa
    b2 = sb if len(sb) >= 2 else sb + (1,)
    return a2[-2], a2[-1], b2[-1], a2, b2, tuple(np.broadcast_shapes(a2[:-2], b2[:-2]))


def qmatmul_scratch(node: Node) -> int:
    m, k, n, *_ = _matmul_dims(node)
    k2 = (k + 1) // 2
    return -(-m // MR) * k2 * 2 * MR * 2 + _gemm_scratch(k2, _chunk(k2, n)) + 64


@emits("QMatMul", scratch=qmatmul_scratch)
def qmatmul(ctx: LayerCtx) -> str:
    """Both operands at run time: a's rows packed as A tiles, b's rows as B panels, both
    centred (x - zero point) as they are widened, so no correction term is needed."""
    m, k, n, a2, b2, batch = _matmul_dims(ctx.node)
    aq, bq, yq = qparams(ctx.it(0)), qparams(ctx.it(1)), qparams(ctx.ot(0))
    za, zb, zy = int(aq.zero_point[0]), int(bq.zero_point[0]), int(yq.zero_point[0])
    m0, shift = product_multiplier(ctx.it(0), ctx.it(1), ctx.ot(0), "QMatMul")
    if k * (_xrange(ctx.it(0)) + abs(za)) * (_xrange(ctx.it(1)) + abs(zb)) >= I32:
        raise ctx.fail("an int32 accumulator could overflow for this K")
    lo, hi = clamp_bounds(ctx)
    k2, mt = (k + 1) // 2, -(-m // MR)
    nc = _chunk(k2, n)
    apack = mt * k2 * 2 * MR
    stra = [s * m * k for s in broadcast_strides(a2[:-2], batch)] if batch else []
    strb = [s * k * n for s in broadcast_strides(b2[:-2], batch)] if batch else []
    stro = [s * m * n for s in strides_of(batch)]
    sa, sb = sgn(ctx.it(0)), sgn(ctx.it(1))
    ep: list[str] = []
    if fusable(shift):
        ep = fused_epilogue(ctx.weight(np.zeros(m, dtype=np.int32), "zero_bias"), m0, shift,
                            zy, lo, hi, sgn(ctx.ot(0)))

    def chunk(p0: Expr) -> list[str]:
        at = Var("(ptrdiff_t)m") * n + p0 + Var("j") * NR
        store = (f"qnnc_q8_store(acc + r * {NR}, cols, 0, {int(m0[0])}, {31 + int(shift[0])}, "
                 f"{zy}, {lo}, {hi}, y + {at}, 1, {sgn(ctx.ot(0))});")
        if fusable(shift):
            tiles = _fused_tile_loop(ctx, wp="ap", mt=mt, k2=k2, rows=m, ch0=Const(0),
                                     y0=_paren(plus("y", p0)), ldy=n)
        else:
            tiles = _tile_loop(ctx, wp="ap", mt=mt, k2=k2, rows=m, store=store)
        first, second = (plus(f"b + (ptrdiff_t)({row}) * {n}", p0)
                         for row in ("2 * kp", "2 * kp + 1"))
        return [f"for (int kp = 0; kp < {k2}; ++kp)",
                f"  qnnc_q8_pack_pair(bp + kp * {2 * NR}, {first}, 2 * kp + 1 < {k} ? {second} "
                f": NULL, {sb}, nc, {zb}, {k2 * 2 * NR});",
                *tiles]

    ht, t = loop("t", mt)
    pack_a = nested([ht], [f"qnnc_q8_pack_a({plus('ap', t * (k2 * 2 * MR))}, a, {sa}, "
                           f"{t * MR}, {m}, {k}, {k}, {za});"])
    x0, x1, y = ctx.i(0), ctx.i(1), ctx.o(0)
    ta, tb, ty = ctx.ctype(ctx.it(0)), ctx.ctype(ctx.it(1)), ctx.ctype(ctx.ot(0))

    def product(idx: list[Expr]) -> str:
        return "\n".join([
            *ep,
            f"const {ta} *a = {plus(x0, offset_expr(idx, stra))};",
            f"const {tb} *b = {plus(x1, offset_expr(idx, strb))};",
            f"{ty} *y = {plus(y, offset_expr(idx, stro))};",
            *pack_a,
            *_chunks(n, nc, chunk),
        ])

    head = [f"/* int8 GEMM of two run-time operands: [{m} x {k}] x [{k} x {n}] */",
            "int16_t *ap = (int16_t *)scratch;",
            f"int16_t *bp = ap + {apack};"]
    return "\n".join(head) + "\n" + nested_loops(batch, product)
