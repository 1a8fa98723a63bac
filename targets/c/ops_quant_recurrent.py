"""QLSTM and QGRU as C: int8 MACs into int32, the gates in f32 (ir/ops/qrecurrent.py).

The integer part follows the interpreter exactly: acc_x = Σ xq·wq − zx·Σwq (the zero point's
share precomputed per row, the same integer; the weights stored transposed so the sums run
along the gate rows, which the C compiler vectorises), acc_h = Σ (hq − zh)·rq over the centred
codes of h kept in scratch; g = (float)acc_x·mx + (float)acc_h·mh + bias with the interpreter's f32
multipliers and bias (computed once in Python by the same functions), in the same order, and
no FMA contraction (the host builds with -std=c11, where GCC's default is -ffp-contract=off).
The activations are libm's expf/tanhf where the interpreter uses numpy: their last bit may
differ, and with it, rarely, one code of h (tests/codegen/test_ops_recurrent.py).
"""

from __future__ import annotations

import numpy as np

from ir import qmath
from ir.ops.qrecurrent import gate_bias, gate_multipliers
from ir.types import DType
from targets.c.emitter import LayerCtx, emits, float_lit, plus
from targets.c.expr import Var
from targets.c.ops_recurrent import (
    Acts,
    Dims,
    init_state,
    is_reverse,
    lstm_cell,
    recurrent_scratch,
    time_loop,
)
from targets.c.stmt import nested


def _quantize(v: str, scale: float, zp: int, dt: DType) -> str:
    lo, hi = qmath.qrange(dt)
    return f"qnnc_quantize({v}, {float_lit(float(np.float32(scale)))}, {zp}, {lo}, {hi})"


def _per_direction_t(q: np.ndarray, d: int) -> np.ndarray:
    """(D·G·H, K) int8 codes as (D, K, G·H): each direction's matrix transposed."""
    return np.ascontiguousarray(q.reshape(d, -1, q.shape[1]).transpose(0, 2, 1))


@emits("QLSTM", scratch=recurrent_scratch)
def qlstm(ctx: LayerCtx) -> str:
    x_t, w_t, r_t = ctx.it("x"), ctx.it("w"), ctx.it("r")
    assert x_t.quant is not None
    dm = Dims.of(ctx.node)
    a = ctx.a
    gh = 4 * dm.h
    y_dt, c_dt = ctx.ot(0).dtype, ctx.ot(2).dtype
    yct = ctx.ctype(ctx.ot(0))
    xct = ctx.ctype(x_t)
    zx, sh, zh = x_t.quant.zero_point[0], a["out_scale"], a["out_zp"]
    mx, mh = gate_multipliers(x_t, w_t, r_t, a)
    wq = ctx.const("w")
    if wq is None or ctx.const("r") is None:
        raise ctx.fail("QLSTM's weights must be constants")
    bias_data = ctx.const("b")
    if ctx.has("b") and bias_data is None:
        raise ctx.fail("QLSTM's bias must be a constant")
    bias = np.concatenate([gate_bias(bias_data, d, gh) for d in range(dm.d)])
    wsum = (wq.astype(np.int64).sum(axis=1) * zx).astype(np.int32)
    t_mx, t_mh = ctx.weight(mx, "mx"), ctx.weight(mh, "mh")
    t_b, t_zs = ctx.weight(bias, "gate_bias"), ctx.weight(wsum, "zx_wsum")
    rq = ctx.const("r")
    assert rq is not None
    t_wt = ctx.weight(_per_direction_t(wq, dm.d), "wqT")
    t_rt = ctx.weight(_per_direction_t(rq, dm.d), "rqT")
    bh = dm.b * dm.h
    lines = [
        "int32_t *h = (int32_t *)scratch;  /* codes of h minus zero point, (batch, hidden) */",
        f"float *c = (float *)(h + {bh});  /* the cell state c, f32 */",
        f"float *g = c + {bh};  /* one entry's gate pre-activations i, o, f, c */",
        f"int32_t *ax = (int32_t *)(g + {gh}), *ah = ax + {gh};  /* its two int32 sums */",
    ]
    if ctx.has("sequence_lens"):
        size = dm.t * dm.d * dm.b * dm.h
        lines.append(f"for (int k = 0; k < {size}; ++k) {ctx.o(0)}[k] = {zh};  /* code of 0 */")
    for d in range(dm.d):
        acts = Acts(ctx, d, 3)
        kind = "reverse" if is_reverse(a["direction"], d) else "forward"
        block = [f"const int8_t *WT = {plus(t_wt, d * gh * dm.i)};  /* W transposed */",
                 f"const int8_t *RT = {plus(t_rt, d * gh * dm.h)};",
                 f"const float *mx = {plus(t_mx, d * gh)}, *mh = {plus(t_mh, d * gh)};",
                 f"const float *bias = {plus(t_b, d * gh)};",
                 f"const int32_t *zx_wsum = {plus(t_zs, d * gh)};  /* zx * sum of W's row */"]
        if ctx.has("p"):
            block.append(f"const float *P = {plus(ctx.i('p'), d * 3 * dm.h)};")
        hn_loop, n = dm.batch()
        if ctx.has("initial_h"):
            src = plus(ctx.i("initial_h"), dm.state_at(d, n))
            block += nested([hn_loop], [
                f"const float *h0 = {src};",
                f"int32_t *hn = {plus('h', n * dm.h)};",
                f"for (int j = 0; j < {dm.h}; ++j)",
                f"  hn[j] = {_quantize('h0[j]', sh, zh, y_dt)} - {zh};"], scoped=True)
        else:
            block.append(f"memset(h, 0, sizeof(int32_t) * {bh});")
        block += init_state(ctx, dm, d, "initial_c", "c")
        body = [f"int32_t *hn = {plus('h', n * dm.h)};", f"float *cn = {plus('c', n * dm.h)};",
                "/* the MACs: int8 codes into int32, along k (vectorised) */",
                f"for (int k = 0; k < {gh}; ++k) {{ ax[k] = -zx_wsum[k]; ah[k] = 0; }}",
                f"for (int i = 0; i < {dm.i}; ++i) {{",
                "  const int32_t xi = xt[i];",
                f"  for (int k = 0; k < {gh}; ++k) ax[k] += xi * WT[i * {gh} + k];",
                "}",
                f"for (int j = 0; j < {dm.h}; ++j) {{",
                "  const int32_t hj = hn[j];",
                f"  for (int k = 0; k < {gh}; ++k) ah[k] += hj * RT[j * {gh} + k];",
                "}",
                f"for (int k = 0; k < {gh}; ++k)",
                "  g[k] = (float)ax[k] * mx[k] + (float)ah[k] * mh[k] + bias[k];",
                "/* the gates, in f32; h leaves as its code */",
                *lstm_cell(ctx, dm, acts, f"hn[j] = {_quantize('o * hc', sh, zh, y_dt)} - {zh};"),
                f"{yct} *yt = {plus(ctx.o(0), dm.y_at(Var('t'), d, n))};",
                f"for (int j = 0; j < {dm.h}; ++j) yt[j] = ({yct})(hn[j] + {zh});"]
        block += time_loop(ctx, dm, d, body, xct)
        cct = ctx.ctype(ctx.ot(2))
        block += nested([hn_loop], [
            f"{yct} *y_h = {plus(ctx.o(1), dm.state_at(d, n))};",
            f"{cct} *y_c = {plus(ctx.o(2), dm.state_at(d, n))};",
            f"const int32_t *hn = {plus('h', n * dm.h)};",
            f"const float *cn = {plus('c', n * dm.h)};",
            f"for (int j = 0; j < {dm.h}; ++j) {{",
            f"  y_h[j] = ({yct})(hn[j] + {zh});",
            f"  y_c[j] = ({cct}){_quantize('cn[j]', a['c_scale'], a['c_zp'], c_dt)};",
            "}"], scoped=True)
        lines += [f"/* direction {d}: {kind} */", "{", *("  " + ln for ln in block), "}"]
    return "\n".join(lines)


@emits("QGRU", scratch=recurrent_scratch)
def qgru(ctx: LayerCtx) -> str:
    """The QGRU of ir/ops/qrecurrent.py: int8 MACs as in QLSTM; z and r from both sums, h~
    from the x sum and either r times the h sum (linear_before_reset) or the sum over the
    codes of r*h; every f32 operation in the interpreter's order."""
    x_t, w_t, r_t = ctx.it("x"), ctx.it("w"), ctx.it("r")
    assert x_t.quant is not None
    dm = Dims.of(ctx.node)
    a = ctx.a
    h, gh = dm.h, 3 * dm.h
    y_dt, yct, xct = ctx.ot(0).dtype, ctx.ctype(ctx.ot(0)), ctx.ctype(x_t)
    zx, sh, zh = x_t.quant.zero_point[0], a["out_scale"], a["out_zp"]
    lbr = a["linear_before_reset"]
    wq, rq, bias_data = ctx.const("w"), ctx.const("r"), ctx.const("b")
    if wq is None or rq is None or (ctx.has("b") and bias_data is None):
        raise ctx.fail("QGRU's weights and bias must be constants")
    mx, mh = gate_multipliers(x_t, w_t, r_t, a)
    bias = (np.zeros((dm.d, 2 * gh), np.float32) if bias_data is None
            else np.asarray(bias_data, np.float32))
    t_mx, t_mh = ctx.weight(mx, "mx"), ctx.weight(mh, "mh")
    t_b = ctx.weight(bias, "bias")
    t_zs = ctx.weight((wq.astype(np.int64).sum(axis=1) * zx).astype(np.int32), "zx_wsum")
    t_wt = ctx.weight(_per_direction_t(wq, dm.d), "wqT")
    t_rt = ctx.weight(_per_direction_t(rq, dm.d), "rqT")
    bh = dm.b * h
    h_rows = gh if lbr else 2 * h
    sh_lit = float_lit(float(np.float32(sh)))
    lines = [
        "int32_t *h = (int32_t *)scratch;  /* codes of h minus zero point, (batch, hidden) */",
        f"float *g = (float *)(h + {bh});  /* z, r pre-activations, then the gates */",
        f"int32_t *ax = (int32_t *)(g + {gh}), *ah = ax + {gh};  /* the int32 sums */",
        f"float *hr = (float *)(ah + {gh});  /* h in f32: (hq - zh) * sh */",
    ]
    if not lbr:
        lines.append(f"int32_t *rh = (int32_t *)(hr + {h});  /* codes of r * h, less zh */")
    if ctx.has("sequence_lens"):
        size = dm.t * dm.d * dm.b * h
        lines.append(f"for (int k = 0; k < {size}; ++k) {ctx.o(0)}[k] = {zh};  /* code of 0 */")
    for d in range(dm.d):
        acts = Acts(ctx, d, 2)
        kind = "reverse" if is_reverse(a["direction"], d) else "forward"
        block = [f"const int8_t *WT = {plus(t_wt, d * gh * dm.i)};  /* W transposed */",
                 f"const int8_t *RT = {plus(t_rt, d * gh * h)};",
                 f"const float *mx = {plus(t_mx, d * gh)}, *mh = {plus(t_mh, d * gh)};",
                 f"const float *Wb = {plus(t_b, d * 2 * gh)}, *Rb = Wb + {gh};",
                 f"const int32_t *zx_wsum = {plus(t_zs, d * gh)};  /* zx * sum of W's row */"]
        hn_loop, n = dm.batch()
        if ctx.has("initial_h"):
            block += nested([hn_loop], [
                f"const float *h0 = {plus(ctx.i('initial_h'), dm.state_at(d, n))};",
                f"int32_t *hn = {plus('h', n * h)};",
                f"for (int j = 0; j < {h}; ++j)",
                f"  hn[j] = {_quantize('h0[j]', sh, zh, y_dt)} - {zh};"], scoped=True)
        else:
            block.append(f"memset(h, 0, sizeof(int32_t) * {bh});")
        if lbr:
            cand = [f"const float gh = (ax_f + Wb[{2 * h} + j]) + g[{h} + j] * "
                    f"((float)ah[{2 * h} + j] * mh[{2 * h} + j] + Rb[{2 * h} + j]);"]
        else:
            cand = [f"const float gh = (ax_f + Wb[{2 * h} + j]) + "
                    f"((float)ah[{2 * h} + j] * mh[{2 * h} + j] + Rb[{2 * h} + j]);"]
        body = [
            f"int32_t *hn = {plus('h', n * h)};",
            "/* the MACs: int8 codes into int32, along k (vectorised) */",
            f"for (int k = 0; k < {gh}; ++k) {{ ax[k] = -zx_wsum[k]; ah[k] = 0; }}",
            f"for (int i = 0; i < {dm.i}; ++i) {{",
            "  const int32_t xi = xt[i];",
            f"  for (int k = 0; k < {gh}; ++k) ax[k] += xi * WT[i * {gh} + k];",
            "}",
            f"for (int j = 0; j < {h}; ++j) {{",
            "  const int32_t hj = hn[j];",
            f"  for (int k = 0; k < {h_rows}; ++k) ah[k] += hj * RT[j * {gh} + k];",
            "}",
            f"for (int j = 0; j < {h}; ++j) hr[j] = (float)hn[j] * {sh_lit};",
            "/* z and r, in f32 */",
            f"for (int k = 0; k < {2 * h}; ++k) {{",
            "  const float v = ((float)ax[k] * mx[k] + Wb[k]) + ((float)ah[k] * mh[k] + Rb[k]);",
            *("  " + ln for ln in acts(0, "zr", "v")),
            "  g[k] = zr;",
            "}",
        ]
        if not lbr:
            body += [
                "/* r * h takes h's codes; its MACs with Rh */",
                f"for (int k = 0; k < {h}; ++k)",
                f"  rh[k] = {_quantize(f'g[{h} + k] * hr[k]', sh, zh, y_dt)} - {zh};",
                f"for (int k = 0; k < {h}; ++k) {{",
                "  const int32_t v = rh[k];",
                f"  const int8_t *rk = RT + k * {gh} + {2 * h};  /* Rh's column k */",
                f"  for (int j = 0; j < {h}; ++j) ah[{2 * h} + j] += v * rk[j];",
                "}",
            ]
        body += [
            "/* the candidate and the new h, which leaves as its code */",
            f"for (int j = 0; j < {h}; ++j) {{",
            f"  const float ax_f = (float)ax[{2 * h} + j] * mx[{2 * h} + j];",
            *("  " + ln for ln in cand),
            *("  " + ln for ln in acts(1, "hc", "gh")),
            "  const float hnew = (1.0f - g[j]) * hc + g[j] * hr[j];",
            f"  hn[j] = {_quantize('hnew', sh, zh, y_dt)} - {zh};",
            "}",
            f"{yct} *yt = {plus(ctx.o(0), dm.y_at(Var('t'), d, n))};",
            f"for (int j = 0; j < {h}; ++j) yt[j] = ({yct})(hn[j] + {zh});",
        ]
        block += time_loop(ctx, dm, d, body, xct)
        block += nested([hn_loop], [
            f"{yct} *y_h = {plus(ctx.o(1), dm.state_at(d, n))};",
            f"const int32_t *hn = {plus('h', n * h)};",
            f"for (int j = 0; j < {h}; ++j) y_h[j] = ({yct})(hn[j] + {zh});"], scoped=True)
        lines += [f"/* direction {d}: {kind} */", "{", *("  " + ln for ln in block), "}"]
    return "\n".join(lines)
