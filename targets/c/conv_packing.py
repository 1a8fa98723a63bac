"""How a convolution's input becomes the B operand of its int8 GEMM (ops_quant_conv.py):
read in place (a 1x1 convolution's planes already are B's rows), copied as im2col rows from
zero-padded copies of one group's planes or in bounds-checked row segments, and packed as
int16 pairs or u8 quads; u8 quads from output rows of whole panels come straight from the
padded planes. Also how a plane's columns are shared out among threads in chunks.
"""

from __future__ import annotations

from targets.c.emitter import plus
from targets.c.expr import Expr, Var
from targets.c.q8_gemm import NR, SPLIT_STEP, per_thread, split_columns


def padded_plane(d: dict[str, int]) -> tuple[int, int]:
    """(rows, columns) of a plane padded for the convolution's taps (its output grid at the
    strides, plus the kernel's dilated extent)."""
    hp = (d["OH"] - 1) * d["SH"] + (d["KH"] - 1) * d["DH"] + 1
    wp = (d["OW"] - 1) * d["SW"] + (d["KW"] - 1) * d["DW"] + 1
    return hp, wp


def conv_split(d: dict[str, int], kg: int, threads: int) -> int | None:
    """split_columns for this convolution: chunks of whole panels where its quads may be
    packed straight from output rows of whole panels (im2quad; a chunk starting half-way
    through a panel would make every panel straddle two rows, packed byte by byte)."""
    return split_columns(kg, d["P"], threads, NR if im2quad(d) else SPLIT_STEP)


def direct(d: dict[str, int]) -> bool:
    """A 1x1 convolution with unit strides and no padding: the input planes already are the
    rows of B, so packing reads them in place (no im2col copy)."""
    return (d["KH"] == d["KW"] == d["SH"] == d["SW"] == 1 and d["PT"] == d["PL"] == 0
            and d["OH"] == d["H"] and d["OW"] == d["W"])


PADDED_MAX_BYTES = 1 << 20  # the largest set of padded planes (one group's) kept in scratch


def padded_planes(d: dict[str, int]) -> tuple[int, int] | None:
    """(rows, columns) of the zero-padded plane copies a convolution reads its im2col from
    (16-byte moves, no bounds checks, instead of a call per row segment), or None: planes
    too large to copy (im2col then copies bounds-checked row segments). Rows of any length:
    PP-OCRv4 det's 3x3 convolutions over 80-wide planes ran 8% faster as a whole model than
    through row segments, the example models the same or up to 1% faster."""
    hp, wp = padded_plane(d)
    return (hp, wp) if d["Cg"] * hp * wp + 32 <= PADDED_MAX_BYTES else None


def padded_bytes(d: dict[str, int]) -> int:
    pp = None if direct(d) else padded_planes(d)
    return 0 if pp is None else per_thread(d["Cg"] * pp[0] * pp[1] + 32)


def padded_tap(d: dict[str, int], pp: tuple[int, int], row: str, at: Expr, n: str) -> str:
    """The im2col row of tap k (declared by the caller) into ``row``, from the padded planes
    ``xp``: positions at .. at+n-1."""
    hp, wp = pp
    return (f"qnnc_q8_im2row_padded({row}, xp + (k / {d['KH'] * d['KW']}) * {hp * wp} + "
            f"((k / {d['KW']}) % {d['KH']}) * {d['DH'] * wp} + (k % {d['KW']}) * {d['DW']}, "
            f"{at}, {n}, {d['OW']}, {wp}, {d['SH']}, {d['SW']});")


#: im2col columns gathered per step before they are interleaved into quads: four rows of
#: this many bytes stay in L1 between the two (a whole chunk's rows went to L2 and back)
QUAD_BLOCK = 512


def im2quad(d: dict[str, int]) -> bool:
    """Whether a convolution read from padded planes packs its quads straight from them
    (qnnc_q8u_im2quad_s1), without im2col rows in between: a column stride of 1 and output
    rows a whole number of 16-column panels, so that no panel straddles two rows (those take
    its byte-by-byte path: ResNet-50's 56-, 28-, 14- and 7-wide rows ran 3% slower so)."""
    return d["SW"] == 1 and d["OW"] % NR == 0


def conv_quads(d: dict[str, int], flip: int, zx: int, p0: Expr,
                pp: tuple[int, int] | None, panel: int, chunk: int) -> list[str]:
    """As :func:`_conv_rows`, for QUADS: rows k = 4*kq .. 4*kq + 3 of B into quad slot kq,
    int8 codes flipped to bytes as they are interleaved; im2col rows go QUAD_BLOCK columns
    at a time."""
    k, hw, khw = d["K"], d["H"] * d["W"], d["KH"] * d["KW"]

    def quad(rows: list[str], dst: str, n: str) -> str:
        # rows past K are NULL (zero); with K a multiple of 4 there are none
        args = ", ".join(r if e == 0 or k % 4 == 0 else f"4 * kq + {e} < {k} ? {r} : NULL"
                         for e, r in enumerate(rows))
        return f"qnnc_q8u_pack_quad({dst}, {args}, {flip}, {n}, {panel});"

    if direct(d):
        return [quad([plus(f"xg + (ptrdiff_t)(4 * kq + {e}) * {hw}", p0) for e in range(4)],
                     "bp + kq * 64", "nc")]
    if pp is not None and im2quad(d):
        hp, wp = pp
        return [
            "ptrdiff_t off[4];  /* each row's tap in the padded planes; -1: past K */",
            "for (int e = 0; e < 4; ++e) {",
            "  const int k = 4 * kq + e;",
            f"  off[e] = k < {k} ? (ptrdiff_t)(k / {khw}) * {hp * wp} + ((k / {d['KW']}) % "
            f"{d['KH']}) * {d['DH'] * wp} + (k % {d['KW']}) * {d['DW']} : -1;",
            "}",
            f"qnnc_q8u_im2quad_s1(bp + kq * 64, xp, off, {p0}, nc, {d['OW']}, {wp}, "
            f"{d['SH']}, {flip}, {panel});",
        ]
    at = p0 + Var("cb")
    b = min(QUAD_BLOCK, chunk)  # 512 or the whole chunk: each block starts on a panel
    fill = [
        "    " + padded_tap(d, pp, f"ra + e * {b}", at, "bn"),
    ] if pp is not None else [
        f"    const int c = k / {khw}, kh = (k / {d['KW']}) % {d['KH']}, kw = k % {d['KW']};",
        f"    qnnc_q8_im2row8(ra + e * {b}, (const uint8_t *)(xg + c * {hw}), {at}, bn, "
        f"{d['H']}, {d['W']}, {d['OW']}, {d['SH']}, {d['SW']}, "
        f"{Var('kh') * d['DH'] - d['PT']}, {Var('kw') * d['DW'] - d['PL']}, {zx & 0xFF});",
    ]
    return [
        f"for (int cb = 0; cb < nc; cb += {b}) {{",
        f"  const int bn = nc - cb < {b} ? nc - cb : {b};",
        "  for (int e = 0; e < 4; ++e) {",
        "    const int k = 4 * kq + e;",
        f"    if (k >= {k}) break;",
        *fill,
        "  }",
        "  " + quad(["ra", f"ra + {b}", f"ra + {2 * b}", f"ra + {3 * b}"],
                    f"bp + (cb / {NR}) * {panel} + kq * 64", "bn"),
        "}",
    ]


def conv_rows(d: dict[str, int], sx: int, zx: int, p0: Expr,
               pp: tuple[int, int] | None = None) -> list[str]:
    """C statements packing rows k = 2*kp and 2*kp + 1 of B (the chunk's columns p0 ..
    p0+nc-1) into panel slot kp: straight from the input planes for a direct convolution,
    else through two byte rows of im2col (padding holds zx, which the folded bias cancels),
    copied in row segments or, with ``pp`` (padded_planes), an output row at a time from the
    zero-padded plane copies ``xp``."""
    k, hw, khw = d["K"], d["H"] * d["W"], d["KH"] * d["KW"]
    pack = f"qnnc_q8_pack_pair(bp + kp * {2 * NR}, {{a}}, 2 * kp + 1 < {k} ? {{b}} : NULL, " \
        f"{sx}, nc, 0, {d['K2'] * 2 * NR});"
    if direct(d):
        return [pack.format(a=plus(f"xg + (ptrdiff_t)(2 * kp) * {hw}", p0),
                            b=plus(f"xg + (ptrdiff_t)(2 * kp + 1) * {hw}", p0))]
    if pp is not None:
        return [
            "for (int e = 0; e < 2; ++e) {",
            "  const int k = 2 * kp + e;",
            f"  if (k >= {k}) break;",
            "  " + padded_tap(d, pp, "e ? rb : ra", p0, "nc"),
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
