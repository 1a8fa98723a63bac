"""ConvTranspose (1-D and 2-D, any group, stride, dilation, pads and output_padding) as
direct loops, scattered per output channel.

Each input pixel x[c, ih, iw] adds x * w[c, m, kh, kw] to y[m, ih*SH - PT + kh*DH,
iw*SW - PL + kw*DW]; taps landing outside the (cropped) output are skipped, and cells no
tap reaches (output_padding, negative pads) keep the bias. One output channel's plane is
written by one loop iteration, so the channels run in parallel without races, and the
innermost loop walks an input row with a fixed weight (an axpy with a stride).
"""

from __future__ import annotations

from targets.c.emitter import LayerCtx, emits
from targets.c.expr import Var
from targets.c.ops_linalg import conv_geometry
from targets.c.stmt import loop, nested


@emits("ConvTranspose")
def conv_transpose(ctx: LayerCtx) -> str:
    ft = ctx.require_float()
    try:
        d = conv_geometry(ctx.node)
    except ValueError:
        raise ctx.fail("only 1-D and 2-D transposed convolutions have a C emitter") from None
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
