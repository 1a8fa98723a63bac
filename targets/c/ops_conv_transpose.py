"""ConvTranspose (1-D and 2-D, any group, stride, dilation, pads and output_padding).

With a constant f32 weight: per image and group, one GEMM computes every tap's contribution,
cols[(m, kh, kw)][ih, iw] = sum_c w[c, m, kh, kw] * x[c, ih, iw] (the weight transposed at
compile time is A, the input planes are B as they are), and a col2im pass adds each column
plane into the output at (ih*SH - PT + kh*DH, iw*SW - PL + kw*DW) over exactly the input
range whose taps land inside (no test per element). Otherwise, direct loops:

Each input pixel x[c, ih, iw] adds x * w[c, m, kh, kw] to y[m, ih*SH - PT + kh*DH,
iw*SW - PL + kw*DW]; taps landing outside the (cropped) output are skipped, and cells no
tap reaches (output_padding, negative pads) keep the bias. One output channel's plane is
written by one loop iteration, so the channels run in parallel without races, and the
innermost loop walks an input row with a fixed weight (an axpy with a stride).
"""

from __future__ import annotations

import numpy as np

from ir.graph import Node
from targets.c.emitter import LayerCtx, emits
from targets.c.expr import Var
from targets.c.ops_linalg import conv_geometry
from targets.c.stmt import loop, nested


def _gemm_path(node: Node) -> bool:
    w = node.w
    return (w is not None and w.is_const and node.outputs[0].type.dtype.np == np.float32
            and len(w.type.shape) in (3, 4))


def conv_transpose_scratch(node: Node, threads: int = 1) -> int:
    """The GEMM path's column planes: Mg*KH*KW rows of H*W floats (one image and group)."""
    if not _gemm_path(node):
        return 0
    try:
        d = conv_geometry(node)
    except (ValueError, KeyError, IndexError):
        return 0
    return d["Mg"] * d["KH"] * d["KW"] * d["H"] * d["W"] * 4


@emits("ConvTranspose", scratch=conv_transpose_scratch)
def conv_transpose(ctx: LayerCtx) -> str:
    ft = ctx.require_float()
    try:
        d = conv_geometry(ctx.node)
    except ValueError:
        raise ctx.fail("only 1-D and 2-D transposed convolutions have a C emitter") from None
    if _gemm_path(ctx.node):
        return _gemm_col2im(ctx, d)
    hn, n = loop("n", d["N"])
    m = Var("m", 0, d["M"] - 1)
    g = m // d["Mg"] if d["G"] > 1 else 0
    hc, c = loop("c", d["Cg"])
    plane = d["OH"] * d["OW"]
    init = f"{ctx.i('b')}[m]" if ctx.has("b") else ctx.lit(0.0)
    oh = Var("ih") * d["SH"] - d["PT"] + Var("kh") * d["DH"]
    ow = Var("iw") * d["SW"] - d["PL"] + Var("kw") * d["DW"]
    w_at = ((Var("cin") * d["Mg"] + (m % d["Mg"] if d["G"] > 1 else m)) * (d["KH"] * d["KW"]))
    taps = [
        f"const int cin = {g * d['Cg'] + c};",
        f"const {ft} *xc = {ctx.i(0)} + {(n * d['C'] + Var('cin')) * (d['H'] * d['W'])};",
        f"const {ft} *wc = {ctx.i('w')} + {w_at};",
        f"for (int kh = 0; kh < {d['KH']}; ++kh)",
        f"for (int ih = 0; ih < {d['H']}; ++ih) {{",
        f"  const int oh = {oh};",
        f"  if (oh < 0 || oh >= {d['OH']}) continue;",
        f"  for (int kw = 0; kw < {d['KW']}; ++kw) {{",
        f"    const {ft} wv = wc[kh * {d['KW']} + kw];",
        f"    for (int iw = 0; iw < {d['W']}; ++iw) {{",
        f"      const int ow = {ow};",
        f"      if (ow < 0 || ow >= {d['OW']}) continue;",
        f"      ym[oh * {d['OW']} + ow] += xc[ih * {d['W']} + iw] * wv;",
        "    }",
        "  }",
        "}",
    ]
    body = [
        f"{ft} *ym = {ctx.o(0)} + {(n * d['M'] + m) * plane};",
        f"for (int p = 0; p < {plane}; ++p) ym[p] = {init};",
        *nested([hc], taps),
    ]
    omp = ctx.omp(collapse=2 if hn else 1).rstrip("\n")
    return "\n".join([
        "/* transposed conv, scattered per output channel: y[m, oh, ow] += x[c, ih, iw] * "
        "w[c, m, kh, kw] */",
        *([omp] if omp else []),
        *nested([hn, f"for (int m = 0; m < {d['M']}; ++m)"], body)])


def _gemm_col2im(ctx: LayerCtx, d: dict[str, int]) -> str:
    w = ctx.const("w")
    assert w is not None
    khw, hw, plane = d["KH"] * d["KW"], d["H"] * d["W"], d["OH"] * d["OW"]
    rows = d["Mg"] * khw
    # [C, Mg, KH, KW] -> per group, A_g = [(Mg, KH, KW), Cg]: the rows of cols
    wt = (w.astype(np.float32).reshape(d["G"], d["Cg"], rows).transpose(0, 2, 1).reshape(-1))
    a = ctx.weight(np.ascontiguousarray(wt), "wt")
    hn, n = loop("n", d["N"])
    hg, g = loop("g", d["G"])
    init = f"{ctx.i('b')}[{g * d['Mg']} + m]" if ctx.has("b") else "0.0f"
    omp = ctx.omp().rstrip("\n")
    col2im = [
        *([omp] if omp else []),
        f"for (int m = 0; m < {d['Mg']}; ++m) {{",
        f"  float *ym = yg + (ptrdiff_t)m * {plane};",
        f"  for (int p = 0; p < {plane}; ++p) ym[p] = {init};",
        f"  for (int kh = 0; kh < {d['KH']}; ++kh) {{",
        f"    const int oh0 = kh * {d['DH']} - {d['PT']};  /* oh = ih * {d['SH']} + oh0 */",
        f"    const int ih0 = oh0 >= 0 ? 0 : (-oh0 + {d['SH'] - 1}) / {d['SH']};",
        f"    const int ih1 = oh0 > {d['OH'] - 1} ? 0 : "
        f"({d['OH'] - 1} - oh0) / {d['SH']} + 1 < {d['H']} ? "
        f"({d['OH'] - 1} - oh0) / {d['SH']} + 1 : {d['H']};",
        f"    for (int kw = 0; kw < {d['KW']}; ++kw) {{",
        f"      const int ow0 = kw * {d['DW']} - {d['PL']};",
        f"      const int iw0 = ow0 >= 0 ? 0 : (-ow0 + {d['SW'] - 1}) / {d['SW']};",
        f"      const int iw1 = ow0 > {d['OW'] - 1} ? 0 : "
        f"({d['OW'] - 1} - ow0) / {d['SW']} + 1 < {d['W']} ? "
        f"({d['OW'] - 1} - ow0) / {d['SW']} + 1 : {d['W']};",
        f"      const float *cp = cols + ((ptrdiff_t)(m * {khw} + kh * {d['KW']} + kw)) * {hw};",
        "      for (int ih = ih0; ih < ih1; ++ih) {",
        f"        float *yr = ym + (ptrdiff_t)(ih * {d['SH']} + oh0) * {d['OW']};",
        f"        const float *cr = cp + ih * {d['W']};",
        f"        for (int iw = iw0; iw < iw1; ++iw) yr[iw * {d['SW']} + ow0] += cr[iw];",
        "      }",
        "    }",
        "  }",
        "}",
    ]
    body = [
        f"const float *xg = {ctx.i(0)} + {(n * d['C'] + g * d['Cg']) * hw};",
        f"float *yg = {ctx.o(0)} + {(n * d['M'] + g * d['Mg']) * plane};",
        f"memset(cols, 0, {rows * hw * 4});",
        f"qnnc_sgemm({rows}, {hw}, {d['Cg']}, {a} + {g * (rows * d['Cg'])}, {d['Cg']}, xg, {hw}, "
        f"cols, {hw}, {ctx.renderer.team()});",
        *col2im,
    ]
    return "\n".join([
        f"/* transposed conv as GEMM + col2im per image and group: cols[{rows} x {hw}] = "
        f"W_g^T[{rows} x {d['Cg']}] * x_g[{d['Cg']} x {hw}], then each column plane added "
        "at its taps' output positions */",
        "float *cols = (float *)scratch;",
        *nested([hn, hg], body)])
