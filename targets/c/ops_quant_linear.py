"""INT8 fully connected layers and products: QLinear and QMatMul, on the shared GEMM
(q8_gemm.py). A fully connected layer with at most GEMV_ROWS input rows runs a matrix x
vector kernel on the same packed weights instead of a 16-column tile it would mostly waste.
"""

from __future__ import annotations

import numpy as np

from ir.graph import Node
from ir.ops.qcommon import conv_multipliers, product_multiplier
from ir.types import TensorType
from targets.c.emitter import (
    LayerCtx,
    emits,
    nested_loops,
    offset_expr,
    plus,
    strides_of,
)
from targets.c.expr import Const, Expr, Var
from targets.c.ops_elementwise import broadcast_strides
from targets.c.ops_quant_util import (
    clamp_bounds,
    epilogue_lut,
    mult_exprs,
    qparams,
    requant_type,
    sgn,
    with_lut,
)
from targets.c.q8_gemm import (
    ANY_INT8_GUARD,
    GEMV_MR,
    I32,
    MR,
    NR,
    PAIRS,
    QUADS,
    Layout,
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
    paren,
    per_thread,
    pick_layout,
    split_columns,
    tile_loop,
    weight_layouts,
    weight_tiles,
    xrange_of,
)
from targets.c.stmt import loop, nested


def _linear_dims(node: Node) -> tuple[int, int, int]:
    x, w = node.x, node.w
    assert x is not None and w is not None
    n, k = w.type.shape
    return int(np.prod(x.type.shape[:-1])), n, k


GEMV_ROWS = 4  # up to this many input rows, one matrix x vector pass per row beats a tile
Q8U_GEMV_MR = 16  # rows of a u8-quad GEMV tile (QNNC_Q8U_GEMV_MR)


def qlinear_scratch(node: Node, threads: int = 1) -> int:
    rows, _, k = _linear_dims(node)
    k2 = (k + 1) // 2
    if rows <= GEMV_ROWS:
        return 4 * k2
    w = node.w
    assert w is not None
    def nbytes(k2: int) -> int:
        split = split_columns(k2, rows, threads)
        if split is not None:
            return per_thread(gemm_scratch(k2, split)) * threads
        return gemm_scratch(k2, chunk_size(k2, rows))

    return max(nbytes(lay.kg(k)) for lay in weight_layouts(w, w.type.shape[0]))


@emits("QLinear", scratch=qlinear_scratch)
def qlinear(ctx: LayerCtx) -> str:
    """y[r][n]: the weight rows are the GEMM's A, the input rows its B columns."""
    rows, n, k = _linear_dims(ctx.node)
    rt = requant_type(ctx)
    xq, yq = qparams(ctx.it(0)), qparams(rt)
    zx, zy = int(xq.zero_point[0]), int(yq.zero_point[0])
    m0, shift = conv_multipliers(ctx.it("x"), ctx.it("w"), rt, "QLinear")
    lo, hi = clamp_bounds(ctx)
    lut_decl, lut = epilogue_lut(ctx)
    wc = centred_weight(ctx, n)
    if rows <= GEMV_ROWS and ctx.renderer.u8_any_weights and int8_codes(wc):
        layout, guard = QUADS, list(ANY_INT8_GUARD)
    elif rows <= GEMV_ROWS:
        layout, guard = PAIRS, []
    else:
        layout, guard = pick_layout(ctx, wc)
    zk, xmax, flip = kernel_codes(layout, ctx.it(0), zx)
    bias = folded_bias(ctx, wc, zk, xmax)
    bq = ctx.weight(bias.astype(np.int32), "bias_zp")
    decl, m0e, ne = mult_exprs(m0, shift, "m")
    decl = [*lut_decl, *decl]
    if rows <= GEMV_ROWS:
        return _gemv(ctx, layout, rows, n, k, wc, flip, bq, m0e, ne, zy, lo, hi, rt, lut,
                     [*guard, *decl])
    mt = -(-n // MR)
    k2 = layout.kg(k)
    wp, narrow = weight_tiles(ctx, pack_weights(wc, k2, MR, layout), k2, layout)
    split = split_columns(k2, rows, ctx.threads)
    nc = chunk_size(k2, rows) if split is None else split
    x, y = ctx.i(0), ctx.o(0)
    # the layer's scratch, or (chunks of rows shared out) this thread's slice of it
    el = layout.elem
    slot = f"{el} *bp = ({el} *)scratch;" if split is None else (
        f"{el} *bp = ({el} *)((char *)scratch + (ptrdiff_t)QNNC_THREAD_ID() * "
        f"{per_thread(gemm_scratch(k2, nc))});")
    pack = (f"qnnc_q8u_pack_cols(bp, {{x}}, {flip}, nc, {k}, {k}, {layout.panel(k2)});"
            if layout is QUADS else
            f"qnnc_q8_pack_cols(bp, {{x}}, {sgn(ctx.it(0))}, nc, {k}, {k}, 0, "
            f"{layout.panel(k2)});")

    def chunk(p0: Expr) -> list[str]:
        row0 = Var("(ptrdiff_t)p0", p0.lo, p0.hi) if p0.value is None else p0
        col = Var(f"(ptrdiff_t)({p0 + Var('j') * NR})") if p0.value is None else \
            Var("(ptrdiff_t)j") * NR
        store = with_lut(
            f"qnnc_q8_store(acc + r * {NR}, cols, {bq}[m], {m0e}, {ne}, {zy}, {lo}, {hi}, "
            f"{plus(y, col * n + Var('m'))}, {n}, {sgn(rt)});", lut,
            plus(y, col * n + Var('m')), "cols", n)
        return [*([slot] if split is not None else []),
                pack.format(x=plus(x, row0 * k)),
                *tile_loop(ctx, wp=wp, mt=mt, k2=k2, rows=n, store=store, narrow=narrow,
                           threaded=split is None, layout=layout)]

    how = "" if split is None else f", the rows shared out among {ctx.threads} threads"
    kind = "u8 quads" if layout is QUADS else "int16 pairs"
    lines = [
        f"/* int8 GEMM: {n} weight rows x {rows} input rows, K = {k} packed as {kind}{how} */",
        *guard,
        *decl,
        *([slot] if split is None else []),
        *chunks(rows, nc, chunk, ctx.omp().rstrip("\n") if split is not None else ""),
    ]
    return "\n".join(ln for ln in lines if ln)


def _gemv(ctx: LayerCtx, layout: Layout, rows: int, n: int, k: int, wc: np.ndarray, flip: int,
          bq: str, m0e: str, ne: str, zy: int, lo: int, hi: int, rt: TensorType,
          lut: str | None, decl: list[str]) -> str:
    """Each input row times the weights, on tiles of GEMV rows: u8 quads and vpdpbusd
    (qnnc_q8u_gemv, 16 rows a tile: half the weight bytes) where the build's u8 tile takes
    any int8 weights, else int16 pairs (qnnc_q8_gemv, 4 rows)."""
    quads = layout is QUADS
    mr = Q8U_GEMV_MR if quads else GEMV_MR
    kg = layout.kg(k)
    mt = -(-n // mr)
    wp = ctx.weight(pack_weights(wc, kg, mr, layout), "packed_u8s8" if quads else "packed")
    hm, t = loop("mt", mt)
    kernel = (f"qnnc_q8u_gemv({kg}, {plus(wp, t * (kg * 4 * mr))}, xq, acc);" if quads else
              f"qnnc_q8_gemv({kg}, {plus(wp, t * (kg * 2 * mr))}, xv, acc);")
    hp, row = loop("p", rows)
    at = Var("(ptrdiff_t)p", row.lo, row.hi) if row.value is None else row
    y = plus(ctx.o(0), at * n + Var("m"))
    # the tile's rows that exist: all mr of a whole tile, the rest of n in the last
    hr, r = loop("r", min(mr, n))
    last = [] if n % mr == 0 or mt == 1 else [f"if ({t * mr} + r >= {n}) break;"]
    tiles = nested([hm], [
        f"int32_t acc[{mr}];",
        kernel,
        *nested([hr], [
            *last,
            f"const int m = {t * mr + r};",
            with_lut(f"qnnc_q8_store(acc + {r}, 1, {bq}[m], {m0e}, {ne}, {zy}, {lo}, {hi}, "
                     f"{y}, 1, {sgn(rt)});", lut, y, 1),
        ], scoped=True),
    ], scoped=True)
    x = plus(ctx.i(0), at * k)
    if quads and not flip and k % 4 == 0:  # the row itself is its quads
        load, scratch = [f"const uint8_t *xq = (const uint8_t *){x};"], ""
    elif quads:  # the row's codes as bytes (int8 flipped), zero past K
        hi_, i = loop("i", k)
        code = f"xr[{i}] ^ {flip}" if flip else f"xr[{i}]"
        load = [f"const uint8_t *xr = (const uint8_t *){x};",
                *nested([hi_], [f"xq[{i}] = (uint8_t)({code});"]),
                *([f"memset(xq + {k}, 0, {4 * kg - k});"] if 4 * kg > k else [])]
        scratch = "uint8_t *xq = (uint8_t *)scratch;"
    else:
        load = [f"qnnc_q8_widen(xv, {x}, {sgn(ctx.it(0))}, {k}, 0, {2 * kg});"]
        scratch = "int16_t *xv = (int16_t *)scratch;"
    omp = ctx.omp().rstrip("\n")
    kind = "u8 quads, AVX-512 VNNI" if quads else "int16 pairs"
    return "\n".join(ln for ln in [
        f"/* int8 GEMV: {n} weight rows x {rows} input row(s), K = {k}, on {mr}-row packed "
        f"weight tiles ({kind}) */",
        *decl,
        scratch,
        *nested([hp], [*load, *([omp] if omp and hm is not None else []), *tiles]),
    ] if ln)


# -- QMatMul ----------------------------------------------------------------------------------
def _matmul_dims(node: Node) -> tuple[int, int, int, tuple[int, ...], tuple[int, ...],
                                      tuple[int, ...]]:
    a, b = node.a, node.b
    assert a is not None and b is not None
    sa, sb = a.type.shape, b.type.shape
    a2 = sa if len(sa) >= 2 else (1,) + sa
    b2 = sb if len(sb) >= 2 else sb + (1,)
    return a2[-2], a2[-1], b2[-1], a2, b2, tuple(np.broadcast_shapes(a2[:-2], b2[:-2]))


def qmatmul_scratch(node: Node, threads: int = 1) -> int:
    m, k, n, _, _, batch = _matmul_dims(node)
    k2 = (k + 1) // 2
    one = -(-m // MR) * k2 * 2 * MR * 2 + gemm_scratch(k2, chunk_size(k2, n)) + 64
    return per_thread(one) * threads if _by_batch(batch, threads) else one


def _by_batch(batch: tuple[int, ...], threads: int) -> bool:
    """Whether the products of a batch (attention's heads) are shared out among the threads,
    each packing into its own scratch slice, rather than each product's weight tiles."""
    return threads > 1 and int(np.prod(batch, dtype=np.int64)) >= threads


@emits("QMatMul", scratch=qmatmul_scratch)
def qmatmul(ctx: LayerCtx) -> str:
    """Both operands at run time: a's rows packed as A tiles, b's rows as B panels, both
    centred (x - zero point) as they are widened, so no correction term is needed."""
    m, k, n, a2, b2, batch = _matmul_dims(ctx.node)
    rt = requant_type(ctx)
    aq, bq, yq = qparams(ctx.it(0)), qparams(ctx.it(1)), qparams(rt)
    za, zb, zy = int(aq.zero_point[0]), int(bq.zero_point[0]), int(yq.zero_point[0])
    m0, shift = product_multiplier(ctx.it(0), ctx.it(1), rt, "QMatMul")
    lut_decl, lut = epilogue_lut(ctx)
    if k * (xrange_of(ctx.it(0)) + abs(za)) * (xrange_of(ctx.it(1)) + abs(zb)) >= I32:
        raise ctx.fail("an int32 accumulator could overflow for this K")
    lo, hi = clamp_bounds(ctx)
    k2, mt = (k + 1) // 2, -(-m // MR)
    nc = chunk_size(k2, n)
    apack = mt * k2 * 2 * MR
    stra = [s * m * k for s in broadcast_strides(a2[:-2], batch)] if batch else []
    strb = [s * k * n for s in broadcast_strides(b2[:-2], batch)] if batch else []
    stro = [s * m * n for s in strides_of(batch)]
    sa, sb = sgn(ctx.it(0)), sgn(ctx.it(1))
    ep: list[str] = list(lut_decl)
    if fusable(shift):
        ep += fused_epilogue(ctx.weight(np.zeros(m, dtype=np.int32), "zero_bias"), m0, shift,
                             zy, lo, hi, sgn(rt), lut)

    threads = ctx.threads
    by_batch = _by_batch(batch, threads)

    def chunk(p0: Expr) -> list[str]:
        at = Var("(ptrdiff_t)m") * n + p0 + Var("j") * NR
        store = with_lut(
            f"qnnc_q8_store(acc + r * {NR}, cols, 0, {int(m0[0])}, {31 + int(shift[0])}, "
            f"{zy}, {lo}, {hi}, y + {at}, 1, {sgn(rt)});", lut, f"y + {at}", "cols")
        if fusable(shift):
            tiles = fused_tile_loop(ctx, wp="ap", mt=mt, k2=k2, rows=m, ch0=Const(0),
                                     y0=paren(plus("y", p0)), ldy=n, threaded=not by_batch)
        else:
            tiles = tile_loop(ctx, wp="ap", mt=mt, k2=k2, rows=m, store=store,
                               threaded=not by_batch)
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

    scratch = ["int16_t *ap = (int16_t *)scratch;", f"int16_t *bp = ap + {apack};"]
    if by_batch:  # this thread's slice
        scratch[0] = (f"int16_t *ap = (int16_t *)((char *)scratch + (ptrdiff_t)QNNC_THREAD_ID()"
                      f" * {per_thread(qmatmul_scratch(ctx.node))});")

    def product(idx: list[Expr]) -> str:
        return "\n".join([
            *ep,
            *(scratch if by_batch else []),
            f"const {ta} *a = {plus(x0, offset_expr(idx, stra))};",
            f"const {tb} *b = {plus(x1, offset_expr(idx, strb))};",
            f"{ty} *y = {plus(y, offset_expr(idx, stro))};",
            *pack_a,
            *chunks(n, nc, chunk),
        ])

    how = f", the products shared out among {threads} threads" if by_batch else ""
    head = [f"/* int8 GEMM of two run-time operands: [{m} x {k}] x [{k} x {n}]{how} */",
            *([] if by_batch else scratch)]
    loops = sum(1 for d in batch if d > 1)
    omp = ctx.omp(collapse=loops).rstrip("\n") if by_batch else ""
    return "\n".join(head) + "\n" + nested_loops(batch, product, omp=omp)
