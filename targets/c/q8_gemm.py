"""The INT8 GEMM machinery the product emitters share (ops_quant_conv.py, ops_quant_linear.py).

Dense and grouped convolutions and fully connected layers run one of two GEMM micro-kernels
(A = weights, packed here at compile time; B = the activations, packed per call in chunks of
output positions that stay in L2), chosen per layer from its weights (:func:`layout_for`):

- ``QUADS`` (csrc/qnnc_int8_u8s8.h): raw activation bytes times int8 weights, four k per
  step: vpmaddubsw on AVX2, where every aligned weight pair passes :func:`quads_fit` — then
  no int16 pair sum can saturate, whatever the data —, and vpdpbusd with AVX-512 VNNI, for
  any int8 weights (the renderer's ``u8_any_weights``);
- ``PAIRS`` (csrc/qnnc_int8.h): both operands widened to int16, two k per step (vpmaddwd),
  exact for any weights; A kept as int8 and widened one tile at a time when it fits.

The raw 8-bit activations are multiplied, not x - zx: the zero point's share,
zx * sum_k (w - zw)[m, k], is folded into the bias at compile time (:func:`folded_bias`), and
padding holds zx so that it contributes exactly nothing.
Bounds on every int32 sum are checked here, from the actual weights, so the C never
overflows where the interpreter's int64 would not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ir import qmath
from ir.graph import Value
from ir.types import DType, TensorType
from targets.c.cond import ge, minimum
from targets.c.emitter import (
    LayerCtx,
    plus,
)
from targets.c.expr import Expr, Var, add, lift
from targets.c.ops_quant_util import int_table, qparams
from targets.c.stmt import guarded, loop, nested

MR, NR = 6, 16  # the micro-kernel tile of csrc/qnnc_int8.h (QNNC_Q8_MR, QNNC_Q8_NR)
GEMV_MR = 4  # the matrix x vector kernel's rows per tile (QNNC_Q8_GEMV_MR)
L2_BUDGET = 256 * 1024  # bytes of packed activations per chunk
I32 = 2**31


SPLIT_STEP = 8  # columns: chunks shared out among threads are a multiple of it
MIN_PANELS = 4  # panels per chunk however long K is: each weight tile serves this many


@dataclass(frozen=True)
class Layout:
    """How a GEMM's operands are packed: ``group`` k values per multiply step, B's element
    type and the C kernels' prefix. The byte sizes below come out alike for both layouts
    when counted in groups (kg = ceil(K / group)): a panel is kg * 4 * NR bytes."""

    group: int
    elem: str
    prefix: str

    def kg(self, k: int) -> int:
        """k groups: ceil(K / group)."""
        return -(-k // self.group)

    def panel(self, kg: int) -> int:
        """Elements of B (``elem``) per 16-column panel."""
        return kg * self.group * NR

    def tile(self, kg: int, mr: int = MR) -> int:
        """Elements of A per packed weight tile."""
        return kg * self.group * mr


PAIRS = Layout(2, "int16_t", "qnnc_q8")
QUADS = Layout(4, "uint8_t", "qnnc_q8u")


def quads_fit(wc: np.ndarray) -> bool:
    """Whether the u8 x s8 kernel is exact for centred weights ``wc`` [rows, K]: every value
    an int8, and the pair rule (ir.qmath.pairs_fit) kept, so that no int16 pair sum of
    vpmaddubsw can saturate for any input bytes."""
    w = np.asarray(wc, dtype=np.int64).reshape(wc.shape[0], -1)
    return int8_codes(w) and qmath.pairs_fit(w)


def int8_codes(wc: np.ndarray) -> bool:
    """Whether every centred weight is an int8 (asymmetric weights minus their zero point
    may not be)."""
    w = np.asarray(wc)
    return not w.size or (int(w.min()) >= -128 and int(w.max()) <= 127)


def layout_for(wc: np.ndarray, any_int8: bool = False) -> Layout:
    """QUADS where the weights allow them (:func:`quads_fit`; with ``any_int8``, a build
    whose u8 tile is exact for any int8 weights — vpdpbusd —, whenever they are int8),
    else PAIRS."""
    if any_int8 and int8_codes(wc):
        return QUADS
    return QUADS if quads_fit(wc) else PAIRS


# A u8 layer laid out for a build whose u8 tile takes any int8 weights refuses to compile
# where that tile is vpmaddubsw (AVX2 without VNNI), instead of saturating there.
ANY_INT8_GUARD = [
    "#if !QNNC_Q8U_ANY_WEIGHTS",
    "#error \"this layer's weights need the AVX-512 VNNI u8 tile: generate the C for the "
    "CPU level it is compiled for\"",
    "#endif",
]


def pick_layout(ctx: LayerCtx, wc: np.ndarray) -> tuple[Layout, list[str]]:
    """The layout of a product with centred weights ``wc`` in this build (the renderer's
    ``u8_any_weights``), and the C lines that guard it (:data:`ANY_INT8_GUARD` when the
    choice relies on vpdpbusd)."""
    layout = layout_for(wc, ctx.renderer.u8_any_weights)
    return layout, (ANY_INT8_GUARD if layout is QUADS and not quads_fit(wc) else [])


def weight_layouts(w: Value | None, rows: int) -> list[Layout]:
    """The layouts a build may pick for a product's weight operand ([rows, ...], a typed
    constant): :func:`layout_for` with and without ``any_int8``, for scratch sizes that hold
    either; PAIRS when it is not one (a scratch size asked before the emitter refuses the
    layer)."""
    if w is None or w.data is None or w.type.quant is None:
        return [PAIRS]
    zw = np.asarray(w.type.quant.zero_point, dtype=np.int64)
    wc = w.data.astype(np.int64).reshape(rows, -1) - (zw.reshape(-1, 1) if zw.size > 1
                                                     else zw[0])
    return list(dict.fromkeys([layout_for(wc), layout_for(wc, True)]))


def chunk_size(k2: int, cols: int) -> int:
    """Columns per packed chunk: a multiple of 16 whose packed B fits the L2 budget, but at
    least MIN_PANELS panels. With a long K (ResNet's last 3x3 layers: K = 4608, 4.7 MB of
    weights) one panel per chunk would stream every weight tile from memory once per 16
    output positions; four panels from L3 cost less than weights re-read from DRAM."""
    fit = max(MIN_PANELS * NR, (L2_BUDGET // (k2 * 4 * NR)) * NR)
    return min(fit, -(-cols // NR) * NR)


def paren(text: str) -> str:
    return text if text.isidentifier() else f"({text})"


def chunks(total: int, size: int, body: Callable[[Expr], list[str]],
           omp: str = "") -> list[str]:
    """``body(p0)`` for every chunk of ``size`` of ``total`` columns, with ``nc`` (columns in
    the chunk) and ``np`` (16-column panels) declared: one loop (after the ``omp`` pragma
    line, if given), or none for one chunk."""
    head, p0 = loop("p0", total, size)
    if head is None:
        return [f"const int nc = {total}, np = {-(-total // NR)};", *body(p0)]
    return ([omp] if omp else []) + nested([head], [
        f"const int nc = {total} - p0 < {size} ? {total} - p0 : {size};",
        f"const int np = (nc + {NR - 1}) / {NR};", *body(p0)])


def panel_cols(nc: int) -> int:
    """Columns of a chunk's packed panels: ``nc`` rounded up to whole panels (a partial last
    panel is packed full width, padded)."""
    return -(-nc // NR) * NR


def gemm_scratch(k2: int, nc: int) -> int:
    """Bytes of one chunk's scratch: its packed panels, the im2col rows, and 64 bytes past
    them for the 16-byte row moves of qnnc_q8_im2row_padded."""
    return (k2 * 2 * panel_cols(nc) + 2 * nc) * 2 + 64


def per_thread(nbytes: int) -> int:
    """A thread's slice of scratch: ``nbytes`` rounded up to a cache line."""
    return -(-nbytes // 64) * 64


def split_columns(k2: int, cols: int, threads: int, step: int = SPLIT_STEP) -> int | None:
    """Columns per chunk when the chunks themselves are shared out among ``threads`` (each
    thread packs its own and runs every weight tile over it, in its own scratch slice): as
    chunk_size allows, but a multiple of ``threads`` chunks of about equal size, so no
    thread waits long for another; None when that leaves chunks under MIN_PANELS panels (a
    small plane: the weight tiles are shared out instead, after one packing).

    The size is a multiple of ``step`` columns: SPLIT_STEP, not a whole panel, as a chunk's
    last half panel runs in the tile that takes a panel and up to 8 more columns, so a 13x13
    plane's 169 columns go 88 + 81 (the slower thread's share 5.5 panels) instead of 96 + 73
    (6); a whole panel (NR) where the packing wants chunks to start on one (panels that lie
    in one output row)."""
    if threads <= 1:
        return None
    count = -(-cols // chunk_size(k2, cols))
    count = -(-count // threads) * threads
    share = -(-cols // count)
    size = -(-share // step) * step
    return size if size >= MIN_PANELS * NR else None


def pack_weights(w: np.ndarray, kg: int, mr: int = MR, layout: Layout = PAIRS) -> np.ndarray:
    """[R, K] int weights to the micro-kernel's A layout [ceil(R/mr)][kg][mr][group]: int16
    pairs, or int8 quads."""
    r, k = w.shape
    mt = -(-r // mr)
    g = layout.group
    full = np.zeros((mt * mr, g * kg), dtype=np.int16 if g == 2 else np.int8)
    full[:r, :k] = w
    return full.reshape(mt, mr, kg, g).transpose(0, 2, 1, 3).reshape(-1)


def centred_weight(ctx: LayerCtx, rows: int) -> np.ndarray:
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


def folded_bias(ctx: LayerCtx, wc: np.ndarray, zx: int, xmax: int) -> np.ndarray:
    """b - zx * sum_k (w - zw): the zero point's share, subtracted once (``zx`` the zero
    point of the codes the kernel reads: + 128 where QUADS flip int8 codes to bytes). Raises
    unless every int32 sum in the kernel (raw x times w, and the true accumulator) provably
    fits."""
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


def xrange_of(t: TensorType) -> int:
    return 128 if t.dtype is DType.i8 else 255


NARROW_TILE_BYTES = 64 * 1024  # largest widened weight tile kept on the stack


def kernel_codes(layout: Layout, t: TensorType, zx: int) -> tuple[int, int, int]:
    """(zero point, largest raw value, flip) of the activation codes ``layout``'s kernel
    reads: QUADS see int8 codes with the top bit flipped (x + 128, flip 0x80)."""
    if layout is QUADS:
        flip = 0x80 if t.dtype is DType.i8 else 0
        return zx + flip, 255, flip
    return zx, xrange_of(t), 0


def weight_tiles(ctx: LayerCtx, packed: np.ndarray, k2: int,
                 layout: Layout = PAIRS) -> tuple[str, bool]:
    """(C name, narrow) of packed weight tiles: QUADS's as int8; PAIRS's as int8 when every
    value fits and a widened tile fits NARROW_TILE_BYTES (half the bytes to stream from
    memory: ResNet-50's weights no longer fit a 32 MB L3 as int16), else as int16."""
    if layout is QUADS:
        return ctx.weight(packed, "packed_u8s8"), False
    if np.abs(packed).max(initial=0) <= 127 and k2 * 2 * MR * 2 <= NARROW_TILE_BYTES:
        return ctx.weight(packed.astype(np.int8), "packed8"), True
    return ctx.weight(packed, "packed"), False


def tile_source(wp: str, k2: int, tile: Expr, narrow: bool,
                layout: Layout = PAIRS) -> list[str]:
    """C lines binding ``wt`` to weight tile ``tile``, widened to int16 if narrow."""
    at = plus(wp, tile * layout.tile(k2))
    if layout is QUADS:
        return [f"const int8_t *wt = {at};"]
    if not narrow:
        return [f"const int16_t *wt = {at};"]
    return [f"int16_t wt[{k2 * 2 * MR}] QNNC_ALIGNED(32);",
            f"qnnc_q8_widen(wt, {at}, 1, {k2 * 2 * MR}, 0, {k2 * 2 * MR});"]


def tiles(ctx: LayerCtx, mt: int, body: Callable[[Expr], list[str]],
          threaded: bool = True) -> list[str]:
    """``body(mt)`` for every MR-row weight tile (shared out among the threads if on and
    ``threaded``): one loop, or none."""
    head, t = loop("mt", mt)
    if head is None:
        return body(t)
    omp = ctx.omp().rstrip("\n") if threaded else ""
    return [*([omp] if omp else []), *nested([head], body(t))]


def tile_loop(ctx: LayerCtx, *, wp: str, mt: int, k2: int, rows: int, store: str,
               panel0: Expr | int = 0, narrow: bool = False,
               threaded: bool = True, layout: Layout = PAIRS,
               after: Callable[[Expr], list[str]] | None = None) -> list[str]:
    """The micro-kernel over every MR-row weight tile x 16-column panel of the packed chunk
    (``k2``: k groups of ``layout``); ``store`` stores row r (channel m) of ``acc`` (cols
    valid columns, panel j); ``after(t)``: lines run once tile t's rows are stored (an
    epilogue layer over them while they are in L1)."""
    def rows_of(m: Expr) -> list[str]:
        return [f"const int cols = nc - j * {NR} < {NR} ? nc - j * {NR} : {NR};",
                f"for (int r = 0; r < {MR}; ++r) {{",
                f"  const int m = {m};",
                *("  " + ln for ln in guarded(ge(m, rows), ["break;"])),
                f"  {store}",
                "}"]

    def tile(t: Expr) -> list[str]:
        m = t * MR + Var("r", 0, MR - 1)
        panel = layout.panel(k2)
        if layout is QUADS:  # two panels a call where the build has the two-panel tile
            loop_ = [
                "for (int j0 = 0; j0 < np;) {",
                f"  int32_t acc2[{2 * MR * NR}];",
                f"  const int done = qnnc_q8u_tile_upto2({k2}, wt, bp + j0 * {panel}, {panel}, "
                "np - j0, acc2);",
                "  for (int h = 0; h < done; ++h) {",
                "    const int j = j0 + h;",
                f"    const int32_t *acc = acc2 + h * {MR * NR};",
                *("    " + ln for ln in rows_of(m)),
                "  }",
                "  j0 += done;",
                "}"]
        else:
            loop_ = ["for (int j = 0; j < np; ++j) {",
                     f"  int32_t acc[{MR * NR}];",
                     f"  {layout.prefix}_tile({k2}, wt, bp + j * {panel}, acc);",
                     *("  " + ln for ln in rows_of(m)),
                     "}"]
        return [*tile_source(wp, k2, lift(panel0) + t, narrow, layout), *loop_,
                *(after(t) if after is not None else [])]
    return tiles(ctx, mt, tile, threaded)


def fusable(shift: np.ndarray) -> bool:
    """Whether the fused tile kernel can requantise: every multiplier below 1 (n >= 31)."""
    n = shift.astype(np.int64) + 31
    return bool(n.min(initial=31) >= 31 and n.max(initial=31) <= 62)


def fused_epilogue(bias: str, m0: np.ndarray, shift: np.ndarray, zy: int, lo: int, hi: int,
                   sgn_out: int, lut: str | None = None) -> list[str]:
    """C lines declaring ``ep``, the qnnc_q8_epilogue of csrc/qnnc_int8.h that the fused
    tile kernel applies (only where ``fusable(shift)``); ``lut``: the C name of an epilogue
    table (ops_quant_util.epilogue_lut), declared by the caller."""
    m = m0.size
    # per channel, the rounding terms the row store reads (qnnc_q8_round_terms)
    rb = f"qnnc_q8_round_terms(ep_rb, {bias}, ep_m0, ep_n, {m})" if m > 1 else "NULL"
    return [
        int_table("ep_m0", "int32_t", [int(v) for v in m0.reshape(-1)]),
        int_table("ep_n", "int8_t", [int(v) + 31 for v in shift.reshape(-1)]),
        *([f"int64_t ep_rb[{m}];"] if m > 1 else []),
        f"const qnnc_q8_epilogue ep = {{{bias}, ep_m0, ep_n, {zy}, {lo}, {hi}, "
        f"{int(m > 1)}, {sgn_out}, {lut or 'NULL'}, {rb}}};",
    ]


def fused_tile_loop(ctx: LayerCtx, *, wp: str, mt: int, k2: int, rows: int, ch0: Expr,
                     y0: str, ldy: int, panel0: Expr | int = 0,
                     narrow: bool = False, threaded: bool = True,
                     layout: Layout = PAIRS,
                     after: Callable[[Expr], list[str]] | None = None) -> list[str]:
    """The fused tile kernel over every tile of the chunk: tile (mt, j) stores channels
    ch0 + mt*MR .. (rows of the group) at y0 + (mt*MR) * ldy + j*16; ``after(t)`` as in
    :func:`tile_loop`."""
    def tile(t: Expr) -> list[str]:
        left = rows - t * MR
        rr = minimum(left, MR)
        row0 = t * (MR * ldy) if t.value is not None else \
            Var("(ptrdiff_t)mt", t.lo, t.hi) * (MR * ldy)
        rows_c = rr if rr.value is not None else "rr"
        head = [*tile_source(wp, k2, lift(panel0) + t, narrow, layout),
                *([] if rr.value is not None else [f"const int rr = {rr};"])]
        if layout is QUADS:  # the u8 tiles take the chunk's panels in one call, two at a time
            return [*head,
                    f"qnnc_q8u_tiles_req({k2}, wt, bp, {layout.panel(k2)}, &ep, {ch0 + t * MR}, "
                    f"{rows_c}, nc, {plus(y0, row0)}, {ldy});",
                    *(after(t) if after is not None else [])]
        y = f"{y0} + {add(row0, Var('j') * NR)}"
        return [
            *head,
            "for (int j = 0; j < np; ++j) {",
            f"  const int cols = nc - j * {NR} < {NR} ? nc - j * {NR} : {NR};",
            f"  {layout.prefix}_tile_req({k2}, wt, bp + j * {layout.panel(k2)}, &ep, "
            f"{ch0 + t * MR}, {rows_c}, cols, {y}, {ldy});",
            "}",
            *(after(t) if after is not None else []),
        ]
    if layout is not QUADS:
        return tiles(ctx, mt, tile, threaded)
    # a last panel of one column (a 7x7 map's 49th) is read by a kernel of its own, which
    # takes its quads dense (a no-op without AVX2)
    dense = f"if (nc % {NR} == 1) qnnc_q8u_dense_col1(bp + (np - 1) * {layout.panel(k2)}, {k2});"
    return [dense, *tiles(ctx, mt, tile, threaded)]
