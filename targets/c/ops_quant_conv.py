"""INT8 convolutions: QConv, dense, grouped and depthwise.

Dense and grouped convolutions run the shared GEMM (q8_gemm.py) over an im2col of the input;
a 1x1 stride-1 convolution packs its input planes in place (they are already B's rows), and
the others read their im2col from zero-padded copies of one group's planes, in 16-byte moves
(planes too large for that copy go through bounds-checked row segments); AVX-512 VNNI builds
read most stride-1 ones from quad planes instead, with no im2col (qconv_implicit.py). Depthwise
convolutions run their taps directly over a centred, padded int16 copy of each channel (an
im2col would copy every input value KH*KW times for one multiply), two taps at a time with
vpmaddwd (qnnc_dw_taps); a depthwise 1x1 (a quantised BatchNorm) is a per-channel scale loop.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ir.graph import Node
from ir.ops.qcommon import conv_multipliers
from ir.types import DType
from targets.c import qconv_implicit
from targets.c.cond import ge
from targets.c.conv_packing import (
    conv_quads,
    conv_rows,
    conv_split,
    direct,
    im2quad,
    padded_bytes,
    padded_plane,
    padded_planes,
)
from targets.c.emitter import (
    LayerCtx,
    emits,
    plus,
)
from targets.c.expr import Expr, Var
from targets.c.ops_linalg import conv_geometry
from targets.c.ops_quant_util import (
    centred,
    chunked,
    clamp_bounds,
    epilogue_lut,
    mult_exprs,
    qadd_n,
    qparams,
    requant_type,
    sgn,
    with_lut,
)
from targets.c.q8_gemm import (
    ANY_INT8_GUARD,
    I32,
    MR,
    NR,
    QUADS,
    centred_weight,
    chunk_size,
    chunks,
    folded_bias,
    fusable,
    fused_epilogue,
    fused_tile_loop,
    gemm_scratch,
    int8_codes,
    kernel_codes,
    pack_weights,
    panel_cols,
    paren,
    per_thread,
    pick_layout,
    tile_loop,
    weight_layouts,
    weight_tiles,
    xrange_of,
)
from targets.c.stmt import guarded, let, loop, nested
from targets.fusion import residual_fusable


def _geometry(node: Node) -> dict[str, int]:
    d = conv_geometry(node)
    d["K"] = d["Cg"] * d["KH"] * d["KW"]
    d["K2"] = (d["K"] + 1) // 2
    d["P"] = d["OH"] * d["OW"]
    return d


def _depthwise(d: dict[str, int]) -> bool:
    return d["G"] > 1 and d["Cg"] == 1 and d["Mg"] == 1


def qconv_scratch(node: Node, threads: int = 1) -> int:
    try:
        d = _geometry(node)
    except (ValueError, KeyError, IndexError):
        return 0
    if _depthwise(d):
        quads = _dw_quad_scratch(d) if _dw_quads(d) else 0
        return max(_dw_scratch(d), quads) * threads
    return max(max(_gemm_bytes(d, lay.kg(d["K"]), threads)
                   for lay in weight_layouts(node.operand("w"), d["M"])) + padded_bytes(d),
               qconv_implicit.scratch(d))


def _gemm_bytes(d: dict[str, int], kg: int, threads: int) -> int:
    """Scratch of the packed chunks: the layer's, or one slice per thread."""
    split = conv_split(d, kg, threads)
    if split is not None:
        return per_thread(gemm_scratch(kg, split)) * threads
    return per_thread(gemm_scratch(kg, chunk_size(kg, d["P"])))


def _dw_scratch(d: dict[str, int]) -> int:
    """Bytes of one channel's padded int16 planes (a thread's slice, cache-line rounded)."""
    hp, wp = padded_plane(d)
    return per_thread((d["SW"] * hp * -(-wp // d["SW"]) + _dw_slack(d)) * 2)


def residual_add(ctx: LayerCtx) -> Callable[[Expr, str], str] | None:
    """The QAdd this convolution runs in its epilogue (compiler/passes/fuse_epilogue.py) as
    ``call(offset, n)`` over n of its elements from ``offset``, or None: the convolution's
    result, just stored, is added to the other operand into the QAdd's result."""
    add = ctx.epilogue
    if add is None:
        return None
    if add.op != "QAdd" or not residual_fusable(add):
        raise ctx.fail(f"cannot run {add.op} {add.name!r} in its epilogue; re-run the "
                       "fusion pass")
    y = ctx.node.outputs[0]
    other = next(v for v in add.inputs if v is not None and v is not y)
    mine, theirs = ctx.o(0), ctx.extra(other)
    a, b = (mine, theirs) if add.operand("a") is y else (theirs, mine)
    return qadd_n(add, a, b, ctx.extra(add.outputs[0], write=True))


@emits("QConv", scratch=qconv_scratch)
def qconv(ctx: LayerCtx) -> str:
    try:
        d = _geometry(ctx.node)
    except ValueError as e:
        raise ctx.fail(str(e)) from None
    rt = requant_type(ctx)
    xq, yq = qparams(ctx.it(0)), qparams(rt)
    zx, zy = int(xq.zero_point[0]), int(yq.zero_point[0])
    m0, shift = conv_multipliers(ctx.it("x"), ctx.it("w"), rt)
    lo, hi = clamp_bounds(ctx)
    wc = centred_weight(ctx, d["M"])
    sx, sy = sgn(ctx.it(0)), sgn(rt)
    lut_decl, lut = epilogue_lut(ctx)
    add = residual_add(ctx)
    if _depthwise(d):
        whole = [] if add is None else [chunked(ctx, ctx.ot(0).size, add)]
        return "\n".join([*lut_decl, _depthwise_body(ctx, d, wc, m0, shift, zx, zy, lo, hi,
                                                     lut), *whole])
    layout, guard = pick_layout(ctx, wc)
    zk, xmax, flip = kernel_codes(layout, ctx.it(0), zx)
    bias = folded_bias(ctx, wc, zk, xmax)
    bq = ctx.weight(bias.astype(np.int32), "bias_zp")
    if layout is QUADS and ctx.renderer.u8_any_weights and int8_codes(wc) and \
            fusable(shift) and qconv_implicit.fits(d):
        epilogue = fused_epilogue(bq, m0, shift, zy, lo, hi, sy, lut)
        return qconv_implicit.body(ctx, d, wc, zk, flip, [*lut_decl, *epilogue], add)
    k2, mt = layout.kg(d["K"]), -(-d["Mg"] // MR)
    packed = np.concatenate([pack_weights(wc[g * d["Mg"]:(g + 1) * d["Mg"]], k2, MR, layout)
                             for g in range(d["G"])])
    wp, narrow = weight_tiles(ctx, packed, k2, layout)
    hn, n = loop("n", d["N"])
    hg, g = loop("g", d["G"])
    oc_decl, oc = let("oc", g * d["Mg"] + Var("m"))
    decl, m0e, ne = mult_exprs(m0, shift, str(oc))
    split = conv_split(d, k2, ctx.threads)
    nc = chunk_size(k2, d["P"]) if split is None else split
    hw, p = d["H"] * d["W"], d["P"]
    yct = ctx.ctype(ctx.ot(0))
    pp = None if direct(d) else padded_planes(d)
    # the scratch a chunk packs into: the layer's, or (chunks shared out) this thread's slice
    el = layout.elem
    slot = [f"{el} *bp = ({el} *)scratch;"] if split is None else [
        f"{el} *bp = ({el} *)((char *)scratch + (ptrdiff_t)QNNC_THREAD_ID() * "
        f"{per_thread(gemm_scratch(k2, nc))});"]
    if not direct(d) and not (layout is QUADS and pp is not None and im2quad(d)):
        slot.append(f"uint8_t *ra = (uint8_t *)(bp + {layout.group * k2 * panel_cols(nc)})"
                    + (";" if layout is QUADS else f", *rb = ra + {nc};"))
    # one group's zero-padded planes, after the chunks' scratch, shared by every thread
    pad = [] if pp is None else [
        f"uint8_t *xp = (uint8_t *)scratch + {_gemm_bytes(d, k2, ctx.threads)};"]
    fill = [] if pp is None else [
        f"qnnc_q8_pad_planes(xp, (const uint8_t *)xg, {d['Cg']}, {d['H']}, {d['W']}, {pp[0]}, "
        f"{pp[1]}, {d['PT']}, {d['PL']}, {zx & 0xFF});"]

    def added(p0: Expr) -> Callable[[Expr], list[str]] | None:
        """The residual add over a finished tile's rows of the chunk, or None."""
        if add is None:
            return None

        def rows_of(t: Expr) -> list[str]:
            m = t * MR + Var("r", 0, MR - 1)
            at = (n * d["M"] + g * d["Mg"]) * p + Var("m", 0, d["Mg"] - 1) * p + p0
            return [f"for (int r = 0; r < {MR}; ++r) {{",
                    f"  const int m = {m};",
                    *("  " + ln for ln in guarded(ge(m, d["Mg"]), ["break;"])),
                    f"  {add(at, 'nc')}",
                    "}"]
        return rows_of

    def chunk(p0: Expr) -> list[str]:
        at = Var("m") * p + p0 + Var("j") * NR
        store = " ".join([*oc_decl, with_lut(
            f"qnnc_q8_store(acc + r * {NR}, cols, {bq}[{oc}], {m0e}, {ne}, {zy}, {lo}, {hi}, "
            f"yg + {at}, 1, {sy});", lut, f"yg + {at}", "cols")])
        if fusable(shift):
            tiles = fused_tile_loop(ctx, wp=wp, mt=mt, k2=k2, rows=d["Mg"], ch0=g * d["Mg"],
                                     y0=paren(plus("yg", p0)), ldy=p, panel0=g * mt,
                                     narrow=narrow, threaded=split is None, layout=layout,
                                     after=added(p0))
        else:
            tiles = tile_loop(ctx, wp=wp, mt=mt, k2=k2, rows=d["Mg"], store=store,
                               panel0=g * mt, narrow=narrow, threaded=split is None,
                               layout=layout, after=added(p0))
        rows = (conv_quads(d, flip, zx, p0, pp, layout.panel(k2), nc) if layout is QUADS
                else conv_rows(d, sx, zx, p0, pp))
        kv = "kq" if layout is QUADS else "kp"
        return [*(slot if split is not None else []),
                f"for (int {kv} = 0; {kv} < {k2}; ++{kv}) {{",
                *("  " + ln for ln in rows),
                "}", *tiles]

    if fusable(shift):
        decl = fused_epilogue(bq, m0, shift, zy, lo, hi, sy, lut)
    decl = [*lut_decl, *decl]
    group = [f"const {ctx.ctype(ctx.it(0))} *xg = "
             f"{plus(ctx.i(0), (n * d['C'] + g * d['Cg']) * hw)};",
             f"{yct} *yg = {plus(ctx.o(0), (n * d['M'] + g * d['Mg']) * p)};"]
    # the chunks of every group shared out in one parallel loop where no group has padded
    # planes of its own to fill first (a grouped 1x1 convolution): one fork and join per
    # layer, not per group (ShuffleNet's four-group layers were slower at two threads)
    together = split is not None and pp is None and hg is not None and hn is None
    if together:
        many = loop("p0", p, nc)[0] is not None
        loops = [ctx.omp(collapse=2 if many else 1).rstrip("\n"),
                 *nested([hg], chunks(p, nc, lambda p0: [*group, *chunk(p0)]))]
    else:
        loops = nested([hn, hg], [
            *group, *fill,
            *chunks(p, nc, chunk, ctx.omp().rstrip("\n") if split is not None else "")])
    whose = "the groups' chunks" if together else "the chunks"
    how = "" if split is None else f", {whose} shared out among {ctx.threads} threads"
    lines = [
        f"/* im2col + int8 GEMM: per image, group and chunk of {nc} output positions{how}, "
        f"K = {d['K']} rows packed as "
        f"{'u8 quads' if layout is QUADS else 'int16 pairs'} */",
        *guard,
        *decl,
        *(slot if split is None else []),
        *pad,
        *loops,
    ]
    return "\n".join(ln for ln in lines if ln)


def _channel_store(acc: str, n: str | int, bias: str, m0e: str, ne: str, zy: int, lo: int,
                   hi: int, y: str, sy: int, lut: str | None) -> str:
    """One channel's n accumulators from acc requantised and stored at y (stride 1), through
    the epilogue table when there is one: qnnc_q8_store_lut, which looks the bytes up before
    they are stored (VBMI) rather than reading them back."""
    if lut is None:
        return f"qnnc_q8_store({acc}, {n}, {bias}, {m0e}, {ne}, {zy}, {lo}, {hi}, {y}, 1, {sy});"
    return (f"qnnc_q8_store_lut({acc}, {n}, {bias}, {m0e}, {ne}, {zy}, {lo}, {hi}, {y}, {sy}, "
            f"{lut});")


def _depthwise_body(ctx: LayerCtx, d: dict[str, int], wc: np.ndarray, m0: np.ndarray,
                    shift: np.ndarray, zx: int, zy: int, lo: int, hi: int,
                    lut: str | None) -> str:
    b = ctx.const("b") if ctx.has("b") else np.zeros(d["M"], dtype=np.int64)
    if b is None:
        raise ctx.fail("the bias must be a compile-time constant")
    khw = d["KH"] * d["KW"]
    xmax = xrange_of(ctx.it(0)) + abs(zx)
    if (np.abs(wc).sum(axis=1) * xmax + np.abs(b.astype(np.int64))).max(initial=0) >= I32:
        raise ctx.fail("an int32 accumulator could overflow for these weights")
    if _pointwise(d):
        return _channel_scale_body(ctx, d, wc, b, m0, shift, zx, zy, lo, hi, lut)
    if _dw_quads(d) and ctx.renderer.u8_any_weights and int8_codes(wc):
        return _depthwise_quads_body(ctx, d, wc, m0, shift, zx, zy, lo, hi, lut)
    hp, wp = padded_plane(d)
    sw = d["SW"]
    wq = -(-wp // sw)  # columns of one phase plane
    wname = ctx.weight(wc.astype(np.int16).reshape(-1), "dw")
    offsets = ctx.weight(np.array(_tap_offsets(d, hp, wq), np.int32), "dw_off")
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
        f"int16_t *xp = (int16_t *)((char *)scratch + (ptrdiff_t)QNNC_THREAD_ID() * "
        f"{_dw_scratch(d)});",
        f"const {xt} *xc = {plus(ctx.i(0), plane * (d['H'] * d['W']))};",
        f"{ctx.ctype(ctx.ot(0))} *yc = {plus(ctx.o(0), plane * d['P'])};",
        f"memset(xp, 0, {(sw * hp * wq + _dw_slack(d)) * 2});",
        *nested([hih], [f"const {xt} *xr = {plus('xc', ih * d['W'])};",
                        f"int16_t *dr = {plus('xp', (ih + d['PT']) * wq)};", *fill]),
        f"const int16_t *wk = {plus(wname, c * khw)};",
        *_depthwise_taps(d, sw, hp, wq, offsets,
                         _channel_store("{acc}", "{n}", f"{bname}[{c}]", m0e, ne, zy, lo, hi,
                                        "{y}", sgn(requant_type(ctx)), lut)),
    ]
    omp = ctx.omp(collapse=2 if hn and hc else 1).rstrip("\n") if hc or hn else ""
    return "\n".join(ln for ln in [
        f"/* depthwise: each channel centred into {sw} zero-padded {hp} x {wq} int16 plane(s), "
        "one per column phase of the stride, so every tap reads a contiguous row (the "
        "channels shared out among the threads, each in its own scratch slice) */",
        *decl,
        omp,
        *nested([hn, hc], channel),
    ] if ln)


def _dw_quads(d: dict[str, int]) -> bool:
    """Whether a depthwise convolution can run on byte quads (qnnc_dw_quad_taps, where the
    build has vpdpbusd): unit dilations and a column stride of 1 or 2, so that the taps
    4g .. 4g+3 of an output column are one quad of its row, g * 4 / SW quads on."""
    return d["DH"] == d["DW"] == 1 and d["SW"] in (1, 2)


def _dw_quad_geometry(d: dict[str, int]) -> tuple[int, int, int, int]:
    """(G, gstep, quads per row made, quad row bytes) of the quad path: G quads per kernel
    row, gstep quads apart; a row holds room for the taps' reads of OW rounded up to 16."""
    g, gstep = -(-d["KW"] // 4), 4 // d["SW"]
    nq = d["OW"] + (g - 1) * gstep
    return g, gstep, nq, 4 * _blocked(_blocked(d["OW"]) + (g - 1) * gstep)


def _dw_quad_scratch(d: dict[str, int]) -> int:
    """Bytes of one channel's padded byte plane and quad plane (a thread's slice)."""
    hp, wp = padded_plane(d)
    qrs = _dw_quad_geometry(d)[3]
    return per_thread(hp * wp + 32 + (hp + 1) * qrs)


def _depthwise_quads_body(ctx: LayerCtx, d: dict[str, int], wc: np.ndarray, m0: np.ndarray,
                          shift: np.ndarray, zx: int, zy: int, lo: int, hi: int,
                          lut: str | None) -> str:
    """The depthwise convolution on byte quads: per channel the input padded with its zero
    point's byte (qnnc_q8_pad_planes), each padded row made into quads of the bytes from
    every SW-th column on (qnnc_dw_quad_row), and per output row one vpdpbusd per quad of
    taps (qnnc_dw_quad_taps) on the raw codes, the zero point's share folded into the bias."""
    xt = ctx.it(0)
    flip = 0x80 if xt.dtype is DType.i8 else 0
    bias = folded_bias(ctx, wc, zx + flip, 255)
    kh_n, kw_n, sw = d["KH"], d["KW"], d["SW"]
    g, gstep, nq, qrs = _dw_quad_geometry(d)
    taps = np.zeros((d["C"], kh_n, g * 4), dtype=np.int64)
    taps[:, :, :kw_n] = wc.reshape(d["C"], kh_n, kw_n)
    packed = (taps.reshape(-1, 4).astype(np.int8).view(np.uint8).astype(np.uint32)
              << np.array([0, 8, 16, 24], dtype=np.uint32)).sum(axis=1, dtype=np.uint32)
    wname = ctx.weight(packed.view(np.int32).reshape(-1), "dwq")
    bname = ctx.weight(bias.astype(np.int32), "bias_zp")
    hp, wp = padded_plane(d)
    hn, n = loop("n", d["N"])
    hc, c = loop("c", d["C"])
    hr, r = loop("r", hp)
    decl, m0e, ne = mult_exprs(m0, shift, str(c))
    plane = n * d["C"] + c
    store = _channel_store("{acc}", "{n}", f"{bname}[{c}]", m0e, ne, zy, lo, hi, "{y}",
                           sgn(requant_type(ctx)), lut)
    hoh, oh = loop("oh", d["OH"])
    row = plus("qp", oh * (d["SH"] * qrs))
    tap = (f"qnnc_dw_quad_taps({row}, {qrs}, {kh_n}, {g}, {gstep}, wk, {d['OW']}, "
           f"{{acc}});")
    whole = d["P"] <= DW_PLANE_ACC
    if whole:
        outputs = [f"int32_t acc[{d['P'] - d['OW'] + _blocked(d['OW'])}];",
                   *nested([hoh], [tap.format(acc=plus("acc", oh * d["OW"]))]),
                   store.format(acc="acc", n=d["P"], y="yc")]
    else:
        outputs = [f"int32_t acc[{_blocked(d['OW'])}];",
                   *nested([hoh], [tap.format(acc="acc"),
                                   store.format(acc="acc", n=d["OW"],
                                                y=plus("yc", oh * d["OW"]))])]
    channel = [
        f"uint8_t *xq = (uint8_t *)scratch + (ptrdiff_t)QNNC_THREAD_ID() * "
        f"{_dw_quad_scratch(d)};",
        f"uint8_t *qp = xq + {hp * wp + 32};",
        f"qnnc_q8_pad_planes(xq, (const uint8_t *)({plus(ctx.i(0), plane * (d['H'] * d['W']))})"
        f", 1, {d['H']}, {d['W']}, {hp}, {wp}, {d['PT']}, {d['PL']}, {zx & 0xFF});",
        f"{ctx.ctype(ctx.ot(0))} *yc = {plus(ctx.o(0), plane * d['P'])};",
        *nested([hr], [f"qnnc_dw_quad_row({plus('qp', r * qrs)}, {plus('xq', r * wp)}, {nq}, "
                       f"{sw}, {flip});"]),
        f"const int32_t *wk = {plus(wname, c * (kh_n * g))};",
        *outputs,
    ]
    omp = ctx.omp(collapse=2 if hn and hc else 1).rstrip("\n") if hc or hn else ""
    return "\n".join(ln for ln in [
        *ANY_INT8_GUARD,
        f"/* depthwise on byte quads: each channel padded with its zero point's byte into a "
        f"{hp} x {wp} plane, each row made into quads (four bytes from every "
        f"{'' if sw == 1 else 'second '}column on), {kh_n * g} vpdpbusd per 16 outputs */",
        *decl,
        omp,
        *nested([hn, hc], channel),
    ] if ln)


DW_PLANE_ACC = 4096  # output planes up to this size are requantised in one pass
DW_FLAT_OW = 32  # stride-1 output rows up to this long run each tap over the whole plane


def _dw_flat(d: dict[str, int]) -> bool:
    """Short output rows with unit strides: each tap is one loop over the flattened padded
    plane (rows of wq, the padding columns computed and dropped) instead of OH loops of OW
    (a 10-wide row leaves most of each vector loop to its tail)."""
    hp, wp = padded_plane(d)
    return (d["SW"] == d["SH"] == 1 and d["OW"] <= DW_FLAT_OW
            and d["OH"] * wp <= DW_PLANE_ACC)


def _dw_slack(d: dict[str, int]) -> int:
    """int16 elements after the padded plane that the taps read (kept zero): the flattened
    taps' last KW - 1, and the tap helper's last block of DW_BLOCK."""
    return ((d["KW"] - 1) * d["DW"] if _dw_flat(d) else 0) + DW_BLOCK


#: the depthwise tap helper's block: it writes, and reads its rows, this many outputs at a time
DW_BLOCK = 16


def _blocked(n: int) -> int:
    """n rounded up to whole DW_BLOCKs."""
    return -(-n // DW_BLOCK) * DW_BLOCK


def _depthwise_taps(d: dict[str, int], sw: int, hp: int, wq: int, offsets: str,
                    store: str) -> list[str]:
    """The taps of one channel into int32 accumulators by qnnc_dw_taps (``offsets``: the C
    name of the taps' offsets in the padded planes, from a row's start), then ``store``
    (with {acc}, {n}, {y}): per output row, or, for a plane of at most DW_PLANE_ACC outputs,
    once for the whole plane (a 7- or 14-wide row would leave most of its requantisation to
    the scalar tail)."""
    khw = d["KH"] * d["KW"]
    if _dw_flat(d):
        flat = d["OH"] * wq
        hoh, oh = loop("oh", d["OH"])
        return [f"int32_t acc[{_blocked(flat)}];",
                f"qnnc_dw_taps(xp, {offsets}, wk, {khw}, {flat}, acc);",
                *nested([hoh], [store.format(acc=plus("acc", oh * wq), n=d["OW"],
                                             y=plus("yc", oh * d["OW"]))])]
    whole = d["P"] <= DW_PLANE_ACC
    hoh, oh = loop("oh", d["OH"])
    tap = (f"qnnc_dw_taps({plus('xp', oh * (d['SH'] * wq))}, {offsets}, wk, {khw}, "
           f"{d['OW']}, {plus('acc', oh * d['OW']) if whole else 'acc'});")
    if whole:
        return [f"int32_t acc[{d['P'] - d['OW'] + _blocked(d['OW'])}];", *nested([hoh], [tap]),
                store.format(acc="acc", n=d["P"], y="yc")]
    y = plus("yc", oh * d["OW"])
    return [f"int32_t acc[{_blocked(d['OW'])}];",
            *nested([hoh], [tap, store.format(acc="acc", n=d["OW"], y=y)])]


def _tap_offsets(d: dict[str, int], hp: int, wq: int) -> list[int]:
    """Each tap's offset in the padded planes from its output row's start (the row path; the
    flattened path reads from the plane's start, the same formula at row 0): tap (kh, kw)
    reads phase plane kw*DW mod SW, row kh*DH, column kw*DW div SW."""
    sw = d["SW"]
    return [((kw * d["DW"]) % sw) * (hp * wq) + kh * d["DH"] * wq + (kw * d["DW"]) // sw
            for kh in range(d["KH"]) for kw in range(d["KW"])]


def _pointwise(d: dict[str, int]) -> bool:
    """A depthwise 1x1 convolution with unit strides and no padding: one weight per channel
    (a BatchNormalization quantised on its own, e.g.)."""
    return (d["KH"] == d["KW"] == d["SH"] == d["SW"] == 1 and d["PT"] == d["PL"] == 0
            and d["OH"] == d["H"] and d["OW"] == d["W"])


PW_CHUNK = 1024  # positions per accumulator block of a per-channel scale


def _channel_scale_body(ctx: LayerCtx, d: dict[str, int], wc: np.ndarray, b: np.ndarray,
                        m0: np.ndarray, shift: np.ndarray, zx: int, zy: int, lo: int,
                        hi: int, lut: str | None) -> str:
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
            _channel_store("acc", count, f"{bname}[c]", m0e, ne, zy, lo, hi, plus("yc", p0),
                           sgn(requant_type(ctx)), lut),
        ]),
    ]
    omp = ctx.omp(collapse=2 if hn else 1).rstrip("\n")
    return "\n".join(ln for ln in [
        f"/* depthwise 1x1: one weight per channel over {p} positions */",
        *decl,
        omp,
        *nested([hn, f"for (int c = 0; c < {d['C']}; ++c)"], channel),
    ] if ln)
