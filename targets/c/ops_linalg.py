"""Conv, Gemm and MatMul: lowered to the blocked GEMM micro-kernel in csrc/qnnc_gemm_f32.h.

Conv runs as im2col + GEMM (a 1x1, stride-1, unpadded conv reads its input as the GEMM's B
directly), except depthwise convs, which are direct loops: their im2col would copy the
input KH*KW times to do one multiply per copied value.
"""

from __future__ import annotations

import numpy as np

from ir.graph import Node
from targets.c.emitter import LayerCtx, emits, nested_loops, offset, strides_of
from targets.c.expr import Var
from targets.c.ops_elementwise import broadcast_strides
from targets.c.stmt import loop, nested


def conv_geometry(node: Node) -> dict[str, int]:
    """The sizes of a 1-D or 2-D convolution (Conv, QConv, ConvTranspose) by letter: batch N,
    channels C/M in G groups, input H x W, kernel KH x KW, output OH x OW, strides, dilations
    and leading pads; a 1-D convolution is one of height 1."""
    x, w, y = node.x, node.w, node.outputs[0]
    assert x is not None and w is not None
    nsp = len(x.type.shape) - 2
    if nsp not in (1, 2):
        raise ValueError("only 1-D and 2-D convolutions have a C emitter")
    a = node.attrs

    def sp(shape: tuple[int, ...], k: int) -> int:  # spatial dim k of 2, 1-D as H = 1
        return 1 if nsp == 1 and k == 0 else shape[2 + k - (2 - nsp)]

    def at(name: str, k: int, default: int) -> int:
        return default if nsp == 1 and k == 0 else a[name][k - (2 - nsp)]

    g = a["group"]
    n, c = x.type.shape[:2]
    m = y.type.shape[1]
    return dict(
        N=n, C=c, H=sp(x.type.shape, 0), W=sp(x.type.shape, 1), M=m, G=g, Cg=c // g, Mg=m // g,
        KH=sp(w.type.shape, 0), KW=sp(w.type.shape, 1), OH=sp(y.type.shape, 0),
        OW=sp(y.type.shape, 1), SH=at("strides", 0, 1), SW=at("strides", 1, 1),
        DH=at("dilations", 0, 1), DW=at("dilations", 1, 1),
        PT=0 if nsp == 1 else a["pads"][0], PL=a["pads"][nsp - 1],
    )


def _direct_gemm_input(d: dict[str, int]) -> bool:
    return (d["KH"] == d["KW"] == 1 and d["SH"] == d["SW"] == 1 and d["PT"] == d["PL"] == 0
            and d["OH"] == d["H"] and d["OW"] == d["W"])


def _depthwise(d: dict[str, int]) -> bool:
    return d["G"] > 1 and d["Cg"] == 1 and d["Mg"] == 1


def conv_scratch(node: Node, threads: int = 1) -> int:
    try:
        d = conv_geometry(node)
    except (ValueError, KeyError, IndexError):
        return 0
    if _depthwise(d) or _direct_gemm_input(d):
        return 0
    return d["Cg"] * d["KH"] * d["KW"] * d["OH"] * d["OW"] * node.outputs[0].type.dtype.np.itemsize


@emits("Conv", scratch=conv_scratch)
def conv(ctx: LayerCtx) -> str:
    if ctx.require_float() != "float":
        raise ctx.fail("only f32 Conv has a C emitter")
    try:
        d = conv_geometry(ctx.node)
    except ValueError:
        raise ctx.fail("only 1-D and 2-D convolutions have a C emitter") from None
    bias = ctx.i("b") if ctx.has("b") else None
    if _depthwise(d):
        return _depthwise_conv(ctx, d, bias)
    P, K = d["OH"] * d["OW"], d["Cg"] * d["KH"] * d["KW"]
    hn, n = loop("n", d["N"])
    hg, g = loop("g", d["G"])
    m = Var("m")
    init = f"{bias}[{g * d['Mg'] + m}]" if bias else "0.0f"
    body = [
        f"const float *xg = {ctx.i(0)} + {(n * d['C'] + g * d['Cg']) * (d['H'] * d['W'])};",
        f"float *yg = {ctx.o(0)} + {(n * d['M'] + g * d['Mg']) * P};",
        f"for (int m = 0; m < {d['Mg']}; ++m) {{",
        f"  const float b = {init};",
        f"  for (int p = 0; p < {P}; ++p) yg[m * {P} + p] = b;",
        "}",
    ]
    if _direct_gemm_input(d):
        body.append("const float *col = xg;")
    else:
        body += _im2col(d, ctx.renderer.omp_for())
    body.append(f"qnnc_sgemm({d['Mg']}, {P}, {K}, {ctx.i('w')} + {g * (d['Mg'] * K)}, {K}, col, "
                f"{P}, yg, {P}, {ctx.renderer.team()});")
    return "\n".join([
        f"/* im2col + GEMM per image and group: Y_g[{d['Mg']} x {P}] = "
        f"W_g[{d['Mg']} x {K}] * col[{K} x {P}] */",
        *nested([hn, hg], body)])


def _taps(out: str, stride: int, pad: int, tap: str, dil: int) -> str:
    """The input row or column a kernel tap reads: ``out * stride - pad + tap * dil``."""
    return str(Var(out) * stride - pad + Var(tap) * dil)


def _im2col(d: dict[str, int], omp: str) -> list[str]:
    P = d["OH"] * d["OW"]
    row = (Var("c") * d["KH"] + Var("kh")) * d["KW"] + Var("kw")
    return [
        "float *col = (float *)scratch;",
    ] + ([omp.rstrip("\n")] if omp else []) + [
        f"for (int c = 0; c < {d['Cg']}; ++c)",
        f"for (int kh = 0; kh < {d['KH']}; ++kh)",
        f"for (int kw = 0; kw < {d['KW']}; ++kw) {{",
        f"  float *row = col + {row * P};",
        f"  const float *xc = xg + c * {d['H'] * d['W']};",
        f"  for (int oh = 0; oh < {d['OH']}; ++oh) {{",
        f"    const int ih = {_taps('oh', d['SH'], d['PT'], 'kh', d['DH'])};",
        f"    float *r = row + oh * {d['OW']};",
        f"    if (ih < 0 || ih >= {d['H']}) {{",
        f"      for (int ow = 0; ow < {d['OW']}; ++ow) r[ow] = 0.0f;",
        "      continue;",
        "    }",
        f"    for (int ow = 0; ow < {d['OW']}; ++ow) {{",
        f"      const int iw = {_taps('ow', d['SW'], d['PL'], 'kw', d['DW'])};",
        f"      r[ow] = (iw >= 0 && iw < {d['W']}) ? xc[ih * {d['W']} + iw] : 0.0f;",
        "    }",
        "  }",
        "}",
    ]


def _depthwise_conv(ctx: LayerCtx, d: dict[str, int], bias: str | None) -> str:
    init = f"{bias}[c]" if bias else "0.0f"
    khw = d["KH"] * d["KW"]
    hn, n = loop("n", d["N"])
    c = Var("c")
    plane = (n * d["C"] + c)
    body = [
        f"const float *xc = {ctx.i(0)} + {plane * (d['H'] * d['W'])};",
        f"const float *wc = {ctx.i('w')} + c * {khw};",
        f"float *yc = {ctx.o(0)} + {plane * (d['OH'] * d['OW'])};",
        f"const float b = {init};",
        f"for (int oh = 0; oh < {d['OH']}; ++oh) {{",
        f"  for (int ow = 0; ow < {d['OW']}; ++ow) {{",
        "    float acc = b;",
        f"    for (int kh = 0; kh < {d['KH']}; ++kh) {{",
        f"      const int ih = {_taps('oh', d['SH'], d['PT'], 'kh', d['DH'])};",
        f"      if (ih < 0 || ih >= {d['H']}) continue;",
        f"      for (int kw = 0; kw < {d['KW']}; ++kw) {{",
        f"        const int iw = {_taps('ow', d['SW'], d['PL'], 'kw', d['DW'])};",
        f"        if (iw < 0 || iw >= {d['W']}) continue;",
        f"        acc += xc[ih * {d['W']} + iw] * wc[kh * {d['KW']} + kw];",
        "      }",
        "    }",
        f"    yc[oh * {d['OW']} + ow] = acc;",
        "  }",
        "}",
    ]
    omp = ctx.omp(collapse=2 if hn else 1).rstrip("\n")
    return "\n".join(["/* depthwise: one filter per channel, direct loops */",
                      *([omp] if omp else []),
                      *nested([hn, f"for (int c = 0; c < {d['C']}; ++c)"], body)])


# -- Gemm -----------------------------------------------------------------------------------
def gemm_scratch(node: Node, threads: int = 1) -> int:
    a, b = node.a, node.b
    assert a is not None and b is not None
    n = 0
    if node.attrs.get("transA") and a.data is None:
        n += a.type.nbytes
    if node.attrs.get("transB") and b.data is None:
        n += b.type.nbytes + 64
    return n


def _transposed(ctx: LayerCtx, k: int, scratch_at: str) -> tuple[list[str], str]:
    """Input ``k`` (2-D) transposed: a derived weight when constant, else copied to scratch."""
    data = ctx.const(k)
    if data is not None:
        return [], ctx.weight(data.T, "T")
    r, c = ctx.it(k).shape
    code = [f"float *t{k} = (float *)({scratch_at});",
            f"for (int i = 0; i < {r}; ++i)",
            f"  for (int j = 0; j < {c}; ++j) t{k}[j * {r} + i] = {ctx.i(k)}[i * {c} + j];"]
    return code, f"t{k}"


@emits("Gemm", scratch=gemm_scratch)
def gemm(ctx: LayerCtx) -> str:
    if ctx.require_float() != "float":
        raise ctx.fail("only f32 Gemm has a C emitter")
    M, N = ctx.ot(0).shape
    ta, tb = ctx.a["transA"], ctx.a["transB"]
    K = ctx.it(0).shape[0] if ta else ctx.it(0).shape[1]
    lines: list[str] = []
    A, B = ctx.i(0), ctx.i(1)
    if ta:
        code, A = _transposed(ctx, 0, "scratch")
        lines += code
    if tb:
        off = "scratch" if not ta or ctx.const(0) is not None else \
            f"(unsigned char *)scratch + {((ctx.it(0).nbytes + 63) // 64) * 64}"
        code, B = _transposed(ctx, 1, off)
        lines += code
    alpha, beta = ctx.a["alpha"], ctx.a["beta"]
    cs = broadcast_strides(ctx.it("c").shape, (M, N)) if ctx.has("c") else []
    c = ctx.i("c") if ctx.has("c") else ""
    y = ctx.o(0)

    def cexpr(idx: list) -> str:
        if not c:
            return "0.0f"
        return f"{c}[{offset(idx, cs)}]" if beta == 1.0 else \
            f"{ctx.lit(beta)} * {c}[{offset(idx, cs)}]"

    def at(idx: list) -> str:
        return f"{y}[{offset(idx, [N, 1])}]"

    sgemm = f"qnnc_sgemm({M}, {N}, {K}, {A}, {K}, {B}, {N}, {y}, {N}, {ctx.renderer.team()});"
    if alpha == 1.0:
        lines += [nested_loops((M, N), lambda ij: f"{at(ij)} = {cexpr(ij)};"), sgemm]
    else:
        lines += [f"memset({y}, 0, sizeof(float) * {M * N});", sgemm,
                  nested_loops((M, N), lambda ij: f"{at(ij)} = {ctx.lit(alpha)} * {at(ij)} + "
                                                  f"{cexpr(ij)};")]
    return "\n".join(lines)


# -- MatMul ---------------------------------------------------------------------------------
@emits("MatMul")
def matmul(ctx: LayerCtx) -> str:
    if ctx.require_float() != "float":
        raise ctx.fail("only f32 MatMul has a C emitter")
    sa, sb, so = ctx.it(0).shape, ctx.it(1).shape, ctx.ot(0).shape
    a2 = sa if len(sa) >= 2 else (1,) + sa
    b2 = sb if len(sb) >= 2 else sb + (1,)
    M, K, N = a2[-2], a2[-1], b2[-1]
    batch = tuple(np.broadcast_shapes(a2[:-2], b2[:-2]))
    stra = [s * M * K for s in broadcast_strides(a2[:-2], batch)] if batch else []
    strb = [s * K * N for s in broadcast_strides(b2[:-2], batch)] if batch else []
    stro = [s * M * N for s in strides_of(batch)]
    assert int(np.prod(so)) == int(np.prod(batch or (1,))) * M * N
    x0, x1, y = ctx.i(0), ctx.i(1), ctx.o(0)
    return nested_loops(batch, lambda idx: (
        f"const float *a = {x0} + {offset(idx, stra)};\n"
        f"const float *b = {x1} + {offset(idx, strb)};\n"
        f"float *y = {y} + {offset(idx, stro)};\n"
        f"memset(y, 0, sizeof(float) * {M * N});\n"
        f"qnnc_sgemm({M}, {N}, {K}, a, {K}, b, {N}, y, {N}, {ctx.renderer.team()});"))
