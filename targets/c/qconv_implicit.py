"""Stride-1 INT8 convolutions as a GEMM read straight from byte-quad planes
(csrc/qnnc_int8_implicit.h): the input of each group is made once into planes of four
channels' bytes interleaved and zero-padded, and every tile reads its panels from them at a
fixed offset per tap, so nothing is packed per chunk. Output positions are numbered on the
padded plane's grid (q = oh * WP + ow); the columns past OW are computed and dropped.

Taken where the build's u8 tile is vpdpbusd (any int8 weights in any order of k), the
epilogue fuses (every multiplier below 1) and the planes fit the padded-plane budget.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from targets.c.emitter import LayerCtx, plus
from targets.c.expr import Expr, Var
from targets.c.ops_quant_util import int_table
from targets.c.q8_gemm import MR, QUADS, pack_weights, per_thread
from targets.c.stmt import loop, nested

#: largest set of quad planes (one group's) kept in scratch: the padded planes' budget
#: (conv_packing.PADDED_MAX_BYTES), for the same reason
QUAD_PLANES_MAX_BYTES = 1 << 20
#: bytes after the last plane a step may read (QNNC_Q8U_IMPLICIT_SLACK)
SLACK = 192
#: grid columns per step of the tile (two 16-column panels)
STEP = 32

IMPLICIT_GUARD = [
    "#if !defined(QNNC_Q8U_IMPLICIT)",
    "#error \"this layer reads its GEMM from quad planes with AVX-512 VNNI: generate the C "
    "for the CPU level it is compiled for\"",
    "#endif",
]


def grid(d: dict[str, int]) -> tuple[int, int, int]:
    """(HP, WP, NQ): the padded plane's rows and columns, and the grid columns computed
    (the last output position's q, plus one)."""
    hp = d["OH"] + (d["KH"] - 1) * d["DH"]
    wp = d["OW"] + (d["KW"] - 1) * d["DW"]
    return hp, wp, (d["OH"] - 1) * wp + d["OW"]


def plane_stride(d: dict[str, int]) -> int:
    """Bytes per quad plane: HP * WP quads, rounded up to a cache line."""
    hp, wp, _ = grid(d)
    return -(-hp * wp * 4 // 64) * 64


def quad_planes_bytes(d: dict[str, int]) -> int:
    return -(-d["Cg"] // 4) * plane_stride(d) + SLACK


#: the least share of the computed grid columns that are outputs: below it the im2col
#: path computes fewer columns for less than it spends packing. Single 3x3 layers of
#: ResNet-50 on one Zen 4 core, this path against im2col (GOPS, fastest of 60 alternated
#: runs): 64 channels at 56x56 (0.96 of the grid used) 405 against 360; 128 at 28x28 (0.91)
#: 397 against 381; 256 at 14x14 (0.88) 393 against 398; 512 at 7x7 (0.77) 340 against 385.
MIN_GRID_USE = 0.9


def fits(d: dict[str, int]) -> bool:
    """Whether the geometry takes this path: unit strides, more than one tap (a 1x1
    convolution's planes already are B's rows), not depthwise, planes within budget and
    enough of the grid used (MIN_GRID_USE)."""
    if d["SH"] != 1 or d["SW"] != 1 or d["KH"] * d["KW"] == 1 or \
            (d["G"] > 1 and d["Cg"] == 1 and d["Mg"] == 1):
        return False
    nq = grid(d)[2]
    return (quad_planes_bytes(d) <= QUAD_PLANES_MAX_BYTES
            and d["P"] >= MIN_GRID_USE * (-(-nq // STEP) * STEP))


def scratch(d: dict[str, int]) -> int:
    """Bytes of scratch this path takes (0 where it does not apply)."""
    return per_thread(quad_planes_bytes(d)) if fits(d) else 0


def tap_order(wc: np.ndarray, cg: int, taps: int) -> np.ndarray:
    """Weights [rows, Cg * taps] (k = c * taps + tap) with k reordered to (c4, tap, c % 4),
    the channels padded with zeros to a multiple of 4: the A layout's k for quad planes."""
    rows = wc.shape[0]
    c4 = -(-cg // 4)
    w = np.zeros((rows, c4 * 4, taps), dtype=wc.dtype)
    w[:, :cg] = wc.reshape(rows, cg, taps)
    return w.reshape(rows, c4, 4, taps).transpose(0, 1, 3, 2).reshape(rows, -1)


def quad_offsets(d: dict[str, int]) -> list[int]:
    """Each k quad's byte offset from a step's first grid column in the quad planes, k as
    (c4, tap): c4 * PS + 4 * (kh * DH * WP + kw * DW)."""
    _, wp, _ = grid(d)
    ps = plane_stride(d)
    return [c4 * ps + 4 * (kh * d["DH"] * wp + kw * d["DW"])
            for c4 in range(-(-d["Cg"] // 4)) for kh in range(d["KH"]) for kw in range(d["KW"])]


def parts(nq: int, threads: int) -> tuple[int, int]:
    """(parts, grid columns per part): the grid shared out among the threads in whole steps,
    or one part (the weight tiles are shared out instead) when a thread would get fewer than
    two steps."""
    if threads > 1:
        each = -(-nq // threads)
        share = -(-each // STEP) * STEP
        if share >= 2 * STEP:
            return -(-nq // share), share
    return 1, -(-nq // STEP) * STEP


def body(ctx: LayerCtx, d: dict[str, int], wc: np.ndarray, zk: int, flip: int,
         decl: list[str], residual: Callable[[Expr, str], str] | None) -> str:
    """The layer's C: ``decl`` declares the fused epilogue ``ep``; ``zk`` is the byte the
    padding holds (the zero point's code as the kernel reads it); ``residual(offset, n)``
    adds n finished outputs from ``offset`` into a fused QAdd's result."""
    taps, cg, mg = d["KH"] * d["KW"], d["Cg"], d["Mg"]
    c4 = -(-cg // 4)
    k4, mt = c4 * taps, -(-mg // MR)
    packed = np.concatenate([pack_weights(tap_order(wc[g * mg:(g + 1) * mg], cg, taps), k4, MR,
                                          QUADS) for g in range(d["G"])])
    wname = ctx.weight(packed, "packed_quadplanes")
    hp, wp, nq = grid(d)
    ps, p = plane_stride(d), d["P"]
    count, share = parts(nq, ctx.threads)
    hn, n = loop("n", d["N"])
    hg, g = loop("g", d["G"])
    hpart, part = loop("part", count)
    hmt, t = loop("mt", mt)
    ch0 = g * mg + t * MR
    left = mg - t * MR
    rows = left if left.value is not None and left.value <= MR else Var("rr")
    q0 = part * share
    q1 = f"{q0} + {share} < {nq} ? {q0} + {share} : {nq}" if count > 1 else str(nq)
    tile = [
        *([] if isinstance(rows, Expr) and rows.value is not None else
          [f"const int rr = {mg} - mt * {MR} < {MR} ? {mg} - mt * {MR} : {MR};"]),
        f"qnnc_q8u_implicit({plus(wname, (g * mt + t) * (k4 * 4 * MR))}, xq, {k4}, qp_off, "
        f"&ep, {ch0}, {rows}, q0, q1, {d['OW']}, {wp}, "
        f"{plus('yg', t * (MR * p))}, {p});",
    ]
    if residual is not None:
        # the part's outputs are positions o0 .. o1 - 1 (its grid columns with ow < OW)
        at = (n * d["M"] + g * mg + t * MR) * p + Var("r", 0, MR - 1) * p + Var("o0")
        tile += [
            f"for (int r = 0; r < {rows}; ++r) {residual(at, 'nc')}",
        ]
    per_part = [
        f"const int q0 = {q0}, q1 = {q1};",
        *([] if residual is None else [
            f"const int o0 = (q0 / {wp}) * {d['OW']} + (q0 % {wp} < {d['OW']} ? q0 % {wp} : "
            f"{d['OW']});",
            f"const int nc = ((q1 - 1) / {wp}) * {d['OW']} + ((q1 - 1) % {wp} < {d['OW']} ? "
            f"(q1 - 1) % {wp} + 1 : {d['OW']}) - o0;"]),
        *([ctx.omp().rstrip("\n")] if count == 1 and hmt is not None and ctx.omp() else []),
        *nested([hmt], tile),
    ]
    xt = ctx.ctype(ctx.it(0))
    image = [
        f"const {xt} *xg = {plus(ctx.i(0), (n * d['C'] + g * cg) * (d['H'] * d['W']))};",
        f"{ctx.ctype(ctx.ot(0))} *yg = {plus(ctx.o(0), (n * d['M'] + g * mg) * p)};",
        f"qnnc_q8u_quad_planes(xq, (const uint8_t *)xg, {cg}, {d['H']}, {d['W']}, {hp}, {wp}, "
        f"{d['PT']}, {d['PL']}, {zk & 0xFF}, {flip}, {ps});",
        *([ctx.omp().rstrip("\n")] if count > 1 else []),
        *nested([hpart], per_part, scoped=True),
    ]
    return "\n".join(ln for ln in [
        *IMPLICIT_GUARD,
        f"/* int8 GEMM read from quad planes: per image and group, {c4} planes of "
        f"{hp} x {wp} (four channels' bytes interleaved, zero-padded), {taps} taps at fixed "
        f"offsets; grid of {nq} columns ({wp - d['OW']} of every {wp} dropped)"
        + (f", shared out among the threads in {count} parts" if count > 1 else "") + " */",
        *decl,
        int_table("qp_off", "int32_t", quad_offsets(d)),
        "uint8_t *xq = (uint8_t *)scratch;",
        *nested([hn, hg], image),
    ] if ln)
