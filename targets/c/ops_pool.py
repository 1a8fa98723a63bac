"""Pooling emitters: MaxPool, AveragePool (1-D/2-D windows), GlobalAveragePool/GlobalMaxPool."""

from __future__ import annotations

import numpy as np

from targets.c.emitter import LayerCtx, emits


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


def _loops(ctx: LayerCtx, d: dict[str, int], init: str, tap: str, finish: str) -> str:
    ct = ctx.ctype(ctx.ot(0))
    return "\n".join([
        ctx.omp().rstrip("\n"),
        f"for (int nc = 0; nc < {d['NC']}; ++nc) {{",
        f"  const {ct} *xc = {ctx.i(0)} + nc * {d['H'] * d['W']};",
        f"  {ct} *yc = {ctx.o(0)} + nc * {d['OH'] * d['OW']};",
        f"  for (int oh = 0; oh < {d['OH']}; ++oh) {{",
        f"    for (int ow = 0; ow < {d['OW']}; ++ow) {{",
        init,
        f"      for (int kh = 0; kh < {d['KH']}; ++kh) {{",
        f"        const int ih = oh * {d['SH']} - {d['PT']} + kh * {d['DH']};",
        f"        for (int kw = 0; kw < {d['KW']}; ++kw) {{",
        f"          const int iw = ow * {d['SW']} - {d['PL']} + kw * {d['DW']};",
        tap,
        "        }",
        "      }",
        finish,
        "    }",
        "  }",
        "}",
    ]).lstrip("\n")


@emits("MaxPool")
def maxpool(ctx: LayerCtx) -> str:
    if ctx.a["indices"]:
        raise ctx.fail("MaxPool with an indices output has no C emitter")
    d = _window(ctx)
    ct = ctx.ctype(ctx.ot(0))
    dt = ctx.ot(0).dtype
    lowest = "-INFINITY" if dt.is_float else str(int(np.iinfo(dt.np).min))
    if not dt.is_float and d["DH"] == d["DW"] == 1:
        return _int_maxpool_rows(ctx, d, ct, lowest)
    return _loops(
        ctx, d,
        f"      {ct} m = {lowest};",
        f"          if (ih >= 0 && ih < {d['H']} && iw >= 0 && iw < {d['W']}) {{\n"
        f"            const {ct} v = xc[ih * {d['W']} + iw];\n"
        "            if (v > m || v != v) m = v;\n"
        "          }",
        f"      yc[oh * {d['OW']} + ow] = m;",
    )


def _int_maxpool_rows(ctx: LayerCtx, d: dict[str, int], ct: str, lowest: str) -> str:
    """Integer MaxPool (no dilation) in two passes per output row: the elementwise max of
    the window's input rows into a row buffer in padded coordinates (padding and cells past
    the input hold the type's lowest value, which never wins), then the max of KW
    neighbours of that buffer per output. Max is exact, so this equals the tap loop."""
    wn = (d["OW"] - 1) * d["SW"] + d["KW"]  # buffer cells the windows read
    cols = max(0, min(d["W"], wn - d["PL"]))  # input columns that land in the buffer
    return "\n".join([
        ctx.omp().rstrip("\n"),
        f"for (int nc = 0; nc < {d['NC']}; ++nc) {{",
        f"  const {ct} *xc = {ctx.i(0)} + nc * {d['H'] * d['W']};",
        f"  {ct} *yc = {ctx.o(0)} + nc * {d['OH'] * d['OW']};",
        f"  {ct} rowmax[{wn}];",
        f"  for (int oh = 0; oh < {d['OH']}; ++oh) {{",
        f"    for (int i = 0; i < {wn}; ++i) rowmax[i] = {lowest};",
        f"    for (int kh = 0; kh < {d['KH']}; ++kh) {{",
        f"      const int ih = oh * {d['SH']} - {d['PT']} + kh;",
        f"      if (ih < 0 || ih >= {d['H']}) continue;",
        f"      const {ct} *xr = xc + ih * {d['W']};",
        f"      {ct} *rm = rowmax + {d['PL']};",
        f"      for (int iw = 0; iw < {cols}; ++iw) "
        "rm[iw] = xr[iw] > rm[iw] ? xr[iw] : rm[iw];",
        "    }",
        f"    for (int ow = 0; ow < {d['OW']}; ++ow) {{",
        f"      const {ct} *w = rowmax + ow * {d['SW']};",
        f"      {ct} m = w[0];",
        f"      for (int kw = 1; kw < {d['KW']}; ++kw) m = w[kw] > m ? w[kw] : m;",
        f"      yc[oh * {d['OW']} + ow] = m;",
        "    }",
        "  }",
        "}",
    ]).lstrip("\n")


@emits("AveragePool")
def avgpool(ctx: LayerCtx) -> str:
    ct = ctx.require_float()
    d = _window(ctx)
    if ctx.a["count_include_pad"]:
        counted = (f"ih >= -{d['PT']} && ih < {d['H'] + d['PB']} && "
                   f"iw >= -{d['PL']} && iw < {d['W'] + d['PR']}")
    else:
        counted = f"ih >= 0 && ih < {d['H']} && iw >= 0 && iw < {d['W']}"
    return _loops(
        ctx, d,
        f"      {ct} s = 0; int count = 0;",
        f"          if ({counted}) ++count;\n"
        f"          if (ih >= 0 && ih < {d['H']} && iw >= 0 && iw < {d['W']}) "
        f"s += xc[ih * {d['W']} + iw];",
        f"      yc[oh * {d['OW']} + ow] = count ? s / ({ct})count : ({ct})NAN;",
    )


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
    return "\n".join([
        ctx.omp().rstrip("\n"),
        f"for (int nc = 0; nc < {nc}; ++nc) {{",
        f"  const {ct} *xc = {ctx.i(0)} + nc * {s};",
        f"  {acc} s = {init};",
        f"  for (int i = 0; i < {s}; ++i) {step}",
        f"  {ctx.o(0)}[nc] = {done};",
        "}",
    ]).lstrip("\n")
