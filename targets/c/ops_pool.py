"""Pooling emitters: MaxPool, AveragePool, LpPool (1-D/2-D windows) and the global pools."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ir.types import DType
from targets.c.cond import Cond, all_of, ge, lt
from targets.c.emitter import LayerCtx, emits, plus
from targets.c.expr import Expr
from targets.c.stmt import guarded, let, loop, nested


def _window(ctx: LayerCtx) -> dict[str, int]:
    x, y = ctx.it(0).shape, ctx.ot(0).shape
    nsp = len(x) - 2
    if nsp not in (1, 2):
        raise ctx.fail("only 1-D and 2-D pooling windows have a C emitter")
    a = ctx.a

    def pick(vals: list[int], k: int, default: int) -> int:
        return default if nsp == 1 and k == 0 else vals[k - (2 - nsp)]

    pads = a["pads"]
    return dict(
        NC=x[0] * x[1], H=1 if nsp == 1 else x[2], W=x[-1], OH=1 if nsp == 1 else y[2], OW=y[-1],
        KH=pick(a["kernel_shape"], 0, 1), KW=pick(a["kernel_shape"], 1, 1),
        SH=pick(a["strides"], 0, 1), SW=pick(a["strides"], 1, 1),
        DH=pick(a["dilations"], 0, 1), DW=pick(a["dilations"], 1, 1),
        PT=0 if nsp == 1 else pads[0], PL=pads[nsp - 1],
        PB=0 if nsp == 1 else pads[2], PR=pads[-1],
    )


def _loops(ctx: LayerCtx, d: dict[str, int], init: str,
           tap: Callable[[Expr, Expr], list[str]], finish: Callable[[Expr], str]) -> str:
    """The window loops of every output position: ``init``, ``tap(ih, iw)`` per tap,
    ``finish(p)`` to store at output position ``p``."""
    ct = ctx.ctype(ctx.ot(0))
    hnc, nc = loop("nc", d["NC"])
    hoh, oh = loop("oh", d["OH"])
    how, ow = loop("ow", d["OW"])
    hkh, kh = loop("kh", d["KH"])
    hkw, kw = loop("kw", d["KW"])
    ih, iw = _tap_index(oh, d["SH"], d["PT"], kh, d["DH"]), \
        _tap_index(ow, d["SW"], d["PL"], kw, d["DW"])
    window = nested([hkh, hkw], tap(ih, iw))
    body = [
        f"const {ct} *xc = {plus(ctx.i(0), nc * (d['H'] * d['W']))};",
        f"{ct} *yc = {plus(ctx.o(0), nc * (d['OH'] * d['OW']))};",
        *nested([hoh, how], [init, *window, finish(oh * d["OW"] + ow)]),
    ]
    return ctx.omp() * (hnc is not None) + "\n".join(nested([hnc], body))


def _tap_index(out: Expr, stride: int, pad: int, tap: Expr, dil: int) -> Expr:
    """The input row or column of a kernel tap: ``out * stride - pad + tap * dil``."""
    return out * stride - pad + tap * dil


def _inside(ih: Expr, iw: Expr, d: dict[str, int]) -> Cond:
    return all_of(ge(ih, 0), lt(ih, d["H"]), ge(iw, 0), lt(iw, d["W"]))


@emits("MaxPool")
def maxpool(ctx: LayerCtx) -> str:
    if ctx.a["indices"]:
        raise ctx.fail("MaxPool with an indices output has no C emitter")
    d = _window(ctx)
    ct = ctx.ctype(ctx.ot(0))
    dt = ctx.ot(0).dtype
    lowest = "-INFINITY" if dt.is_float else str(int(np.iinfo(dt.np).min))
    if not dt.is_float and d["DH"] == d["DW"] == 1 and d["SH"] == d["SW"] == 1 and \
            _plane_cells(d) * dt.np.itemsize <= PLANE_MAX_BYTES:
        return _int_maxpool_plane(ctx, d, ct, lowest)
    if not dt.is_float and d["DH"] == d["DW"] == 1:
        return _int_maxpool_rows(ctx, d, ct, lowest)
    return _loops(
        ctx, d, f"{ct} m = {lowest};",
        lambda ih, iw: guarded(_inside(ih, iw, d), [f"const {ct} v = xc[{ih * d['W'] + iw}];",
                                                    "if (v > m || v != v) m = v;"]),
        lambda p: f"yc[{p}] = m;",
    )


#: the largest padded plane (bytes) the stride-1 integer MaxPool keeps on the stack
PLANE_MAX_BYTES = 16384


def _plane_cells(d: dict[str, int]) -> int:
    """Cells of the padded plane a stride-1 window reads: (OH + KH - 1) x (OW + KW - 1)."""
    return (d["OH"] + d["KH"] - 1) * (d["OW"] + d["KW"] - 1)


def _int_maxpool_plane(ctx: LayerCtx, d: dict[str, int], ct: str, lowest: str) -> str:
    """Integer MaxPool with unit strides (GoogLeNet's 3x3 pad-1 pools, YOLO's SPP) on a
    padded copy of each plane, Wp cells to a row (cells outside the input hold the type's
    lowest value, which never wins): with unit strides the KH window rows of every output
    are the padded rows k, k + Wp, .., so the vertical max is KH passes over the whole
    flattened plane, and the horizontal one KW passes with shifts of 1 (junk past each row's
    OW outputs is never copied out). Long loops that gcc vectorises, where the per-row form
    ran 13 or 27 cells at a time. Max is exact, so this equals the tap loop."""
    hp, wp = d["OH"] + d["KH"] - 1, d["OW"] + d["KW"] - 1
    rows = max(0, min(d["H"], hp - d["PT"]))  # input rows that land in the padded plane
    cols = max(0, min(d["W"], wp - d["PL"]))
    n = d["OH"] * wp  # cells of the vertical max; the horizontal one reads n - KW + 1 of them
    h = n - d["KW"] + 1
    hnc, nc = loop("nc", d["NC"])

    def fold(dst: str, src: str, taps: int, step: int, count: int) -> list[str]:
        return [f"for (int k = 0; k < {count}; ++k) {dst}[k] = {src}[k];",
                f"for (int t = 1; t < {taps}; ++t)",
                f"  for (int k = 0; k < {count}; ++k) {{",
                f"    const {ct} v = {src}[k + t * {step}];",
                f"    {dst}[k] = v > {dst}[k] ? v : {dst}[k];",
                "  }"]

    plane = [
        f"const {ct} *xc = {plus(ctx.i(0), nc * (d['H'] * d['W']))};",
        f"{ct} *yc = {plus(ctx.o(0), nc * (d['OH'] * d['OW']))};",
        f"{ct} pp[{hp * wp}], vv[{n}];",
        f"for (int i = 0; i < {hp * wp}; ++i) pp[i] = {lowest};",
        f"for (int ih = 0; ih < {rows}; ++ih)",
        f"  memcpy(pp + (ih + {d['PT']}) * {wp} + {d['PL']}, xc + ih * {d['W']}, "
        f"{cols} * sizeof({ct}));",
        *fold("vv", "pp", d["KH"], wp, n),
        *fold("pp", "vv", d["KW"], 1, h),
        f"for (int oh = 0; oh < {d['OH']}; ++oh)",
        f"  memcpy(yc + oh * {d['OW']}, pp + oh * {wp}, {d['OW']} * sizeof({ct}));",
    ]
    return ctx.omp() * (hnc is not None) + "\n".join(nested([hnc], plane))


def _int_maxpool_rows(ctx: LayerCtx, d: dict[str, int], ct: str, lowest: str) -> str:
    """Integer MaxPool (no dilation) in two passes per output row: the elementwise max of
    the window's input rows into a row buffer in padded coordinates (padding and cells past
    the input hold the type's lowest value, which never wins), then the max of KW
    neighbours of that buffer per output. Max is exact, so this equals the tap loop."""
    wn = (d["OW"] - 1) * d["SW"] + d["KW"]  # buffer cells the windows read
    cols = max(0, min(d["W"], wn - d["PL"]))  # input columns that land in the buffer
    hnc, nc = loop("nc", d["NC"])
    hoh, oh = loop("oh", d["OH"])
    hkh, kh = loop("kh", d["KH"])
    how, ow = loop("ow", d["OW"])
    decl, ih = let("ih", oh * d["SH"] - d["PT"] + kh)
    rows = [*decl, *guarded(all_of(ge(ih, 0), lt(ih, d["H"])), [
        f"const {ct} *xr = {plus('xc', ih * d['W'])};",
        f"{ct} *rm = {plus('rowmax', d['PL'])};",
        f"for (int iw = 0; iw < {cols}; ++iw) rm[iw] = xr[iw] > rm[iw] ? xr[iw] : rm[iw];",
    ])]
    if ctx.ot(0).dtype in (DType.u8, DType.i8):  # vector rows (csrc/qnnc_int8.h)
        outs = [f"qnnc_maxpool_row8(rowmax, {plus('yc', oh * d['OW'])}, {d['OW']}, "
                f"{d['KW']}, {d['SW']}, {int(ctx.ot(0).dtype is DType.i8)});"]
    else:
        outs = nested([how], [
            f"const {ct} *w = {plus('rowmax', ow * d['SW'])};",
            f"{ct} m = w[0];",
            f"for (int kw = 1; kw < {d['KW']}; ++kw) m = w[kw] > m ? w[kw] : m;",
            f"yc[{oh * d['OW'] + ow}] = m;",
        ])
    plane = [
        f"const {ct} *xc = {plus(ctx.i(0), nc * (d['H'] * d['W']))};",
        f"{ct} *yc = {plus(ctx.o(0), nc * (d['OH'] * d['OW']))};",
        f"{ct} rowmax[{wn}];",
        *nested([hoh], [f"for (int i = 0; i < {wn}; ++i) rowmax[i] = {lowest};",
                        *nested([hkh], rows), *outs]),
    ]
    return ctx.omp() * (hnc is not None) + "\n".join(nested([hnc], plane))


@emits("AveragePool")
def avgpool(ctx: LayerCtx) -> str:
    ct = ctx.require_float()
    d = _window(ctx)
    def tap(ih: Expr, iw: Expr) -> list[str]:
        if ctx.a["count_include_pad"]:
            counted = all_of(ge(ih, -d["PT"]), lt(ih, d["H"] + d["PB"]),
                             ge(iw, -d["PL"]), lt(iw, d["W"] + d["PR"]))
        else:
            counted = _inside(ih, iw, d)
        return [*guarded(counted, ["++count;"]),
                *guarded(_inside(ih, iw, d), [f"s += xc[{ih * d['W'] + iw}];"])]

    return _loops(ctx, d, f"{ct} s = 0; int count = 0;", tap,
                  lambda p: f"yc[{p}] = count ? s / ({ct})count : ({ct})NAN;")


@emits("GlobalAveragePool", "GlobalMaxPool")
def global_pool(ctx: LayerCtx) -> str:
    ct = ctx.require_float()
    x = ctx.it(0).shape
    nc, s = x[0] * x[1], int(np.prod(x[2:]))
    acc = "double" if ct == "float" else ct
    if ctx.node.op == "GlobalAveragePool":
        init, step, done = "0", "s += xc[i];", f"({ct})(s / {s})"
    else:
        init, step, done = "-INFINITY", "if (xc[i] > s || xc[i] != xc[i]) s = xc[i];", f"({ct})s"
    hnc, c = loop("nc", nc)
    return ctx.omp() * (hnc is not None) + "\n".join(nested([hnc], [
        f"const {ct} *xc = {plus(ctx.i(0), c * s)};",
        f"{acc} s = {init};",
        f"for (int i = 0; i < {s}; ++i) {step}",
        f"{ctx.o(0)}[{c}] = {done};",
    ]))


def _lp_terms(ctx: LayerCtx, v: str, s: str) -> tuple[str, str]:
    """(|v| ** p, s ** (1/p)) in C: p = 1 and 2 without pow, as the reference computes."""
    p = ctx.a["p"]
    if p == 1:
        return f"{ctx.fn('fabs')}({v})", s
    if p == 2:
        return f"{v} * {v}", f"{ctx.fn('sqrt')}({s})"
    return (f"{ctx.fn('pow')}({ctx.fn('fabs')}({v}), {ctx.lit(p)})",
            f"{ctx.fn('pow')}({s}, {ctx.lit(1.0 / p)})")


@emits("LpPool")
def lppool(ctx: LayerCtx) -> str:
    ct = ctx.require_float()
    d = _window(ctx)
    term, root = _lp_terms(ctx, "v", "s")
    return _loops(
        ctx, d, f"{ct} s = 0;",
        lambda ih, iw: guarded(_inside(ih, iw, d), [f"const {ct} v = xc[{ih * d['W'] + iw}];",
                                                    f"s += {term};"]),
        lambda p: f"yc[{p}] = {root};",
    )


@emits("GlobalLpPool")
def global_lppool(ctx: LayerCtx) -> str:
    ct = ctx.require_float()
    x = ctx.it(0).shape
    nc, s = x[0] * x[1], int(np.prod(x[2:]))
    term, root = _lp_terms(ctx, "xc[i]", "s")
    hnc, c = loop("nc", nc)
    return ctx.omp() * (hnc is not None) + "\n".join(nested([hnc], [
        f"const {ct} *xc = {plus(ctx.i(0), c * s)};",
        f"{ct} s = 0;",
        f"for (int i = 0; i < {s}; ++i) s += {term};",
        f"{ctx.o(0)}[{c}] = {root};",
    ]))
