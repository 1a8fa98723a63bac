"""Recurrent layers as C: LSTM, GRU and RNN (float; QLSTM's emitter reuses the time loop).

Each direction is one block: its weights, its initial state, then a loop over time steps and
batch entries in which the gate pre-activations are the rows of W times x_t plus the rows of
R times h (two dot products per gate row), and the cell turns them into the new state. The
state lives in scratch: h (B, H), for LSTM c (B, H), and the pre-activations g (G·H) of one
batch entry. Batch entry n runs steps 0 .. len[n]-1 (reversed in a reverse direction), as
ir/ops/recurrent.py defines; Y is zeroed first when sequence_lens can stop it early.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ir.graph import Node
from ir.ops.recurrent import KINDS, is_reverse, num_directions
from ir.types import DType
from targets.c.emitter import LayerCtx, emits, float_lit, offset_expr, plus
from targets.c.expr import Expr, Var
from targets.c.stmt import loop, nested


@dataclass(frozen=True)
class Dims:
    """Sizes and the index arithmetic of one recurrent node (layout 0 or 1)."""

    t: int
    b: int
    i: int
    h: int
    d: int
    gates: int
    layout: int

    @staticmethod
    def of(node: Node) -> Dims:
        x, r = node.x, node.r
        assert x is not None and r is not None
        a = node.attrs
        t, b = (x.type.shape[1], x.type.shape[0]) if a["batch_major"] else x.type.shape[:2]
        return Dims(t, b, x.type.shape[2], a["hidden_size"], num_directions(a["direction"]),
                    KINDS[node.op.removeprefix("Q")][0], int(a["batch_major"]))

    def batch(self) -> tuple[str | None, Expr]:
        """The loop over batch entries (none for one entry) and its index ``n``."""
        return loop("n", self.b)

    def x_at(self, t: Expr, n: Expr) -> Expr:
        return offset_expr([n, t], [self.t * self.i, self.i]) if self.layout else \
            offset_expr([t, n], [self.b * self.i, self.i])

    def y_at(self, t: Expr, d: int, n: Expr) -> Expr:
        """Start of Y's row (t, d, n)."""
        h = self.h
        return offset_expr([n, t], [self.t * self.d * h, self.d * h], d * h) if self.layout \
            else offset_expr([t, n], [self.d * self.b * h, h], d * self.b * h)

    def state_at(self, d: int, n: Expr) -> Expr:
        """Start of row (d, n) of Y_h / Y_c / an initial state."""
        return offset_expr([n], [self.d * self.h], d * self.h) if self.layout else \
            offset_expr([n], [self.h], d * self.b * self.h)


def recurrent_scratch(node: Node, threads: int = 1) -> int:
    """h and (LSTM) c for every batch entry, and G·H pre-activations (GRU: and H more)."""
    dm = Dims.of(node)
    states = 2 if node.op in ("LSTM", "QLSTM") else 1
    # GRU: h's next value; QLSTM: two int32 sums; QGRU: those, h in f32 and the codes of r*h
    extra = {"GRU": dm.h, "QLSTM": 2 * dm.gates * dm.h,
             "QGRU": 2 * dm.gates * dm.h + 2 * dm.h}.get(node.op, 0)
    return 4 * (states * dm.b * dm.h + dm.gates * dm.h + extra)


def _lit(x: float) -> str:
    return float_lit(x, DType.f32)


def _fn(name: str) -> str:
    return name + "f"  # the gates compute in f32, also in QLSTM (whose outputs are codes)


def act_c(name: str, alpha: float, beta: float, v: str) -> str:
    """C for activation ``name`` of f32 variable ``v`` (ir/ops/recurrent.py ACTIVATIONS)."""
    lit, fn = _lit, _fn
    one, zero = lit(1.0), lit(0.0)
    table = {
        "Relu": f"({v} > {zero} ? {v} : {zero})",
        "Tanh": f"{fn('tanh')}({v})",
        "Sigmoid": f"{one} / ({one} + {fn('exp')}(-{v}))",
        "Affine": f"{lit(alpha)} * {v} + {lit(beta)}",
        "LeakyRelu": f"({v} >= {zero} ? {v} : {lit(alpha)} * {v})",
        "ThresholdedRelu": f"({v} > {lit(alpha)} ? {v} : {zero})",
        "ScaledTanh": f"{lit(alpha)} * {fn('tanh')}({lit(beta)} * {v})",
        "HardSigmoid": f"{fn('fmin')}({fn('fmax')}({lit(alpha)} * {v} + {lit(beta)}, {zero}), "
                       f"{one})",
        "Elu": f"({v} >= {zero} ? {v} : {lit(alpha)} * ({fn('exp')}({v}) - {one}))",
        "Softsign": f"{v} / ({one} + {fn('fabs')}({v}))",
        "Softplus": f"{fn('log1p')}({fn('exp')}({v}))",
    }
    return table[name]


class Acts:
    """The activations of one direction, applied to named variables (clip first)."""

    def __init__(self, ctx: LayerCtx, d: int, per_dir: int) -> None:
        a = ctx.a
        sl = slice(d * per_dir, (d + 1) * per_dir)
        self.spec = list(zip(a["activations"][sl], a["activation_alpha"][sl],
                             a["activation_beta"][sl]))
        self.clip = a["clip"]

    def __call__(self, k: int, out: str, v: str) -> list[str]:
        """``const float out = act_k(clip(v));``"""
        if self.clip > 0:
            c = _lit(self.clip)
            v_clip = f"{v}_c"
            lines = [f"const float {v_clip} = fminf(fmaxf({v}, -{c}), {c});"]
            v = v_clip
        else:
            lines = []
        return lines + [f"const float {out} = {act_c(*self.spec[k], v)};"]


def time_loop(ctx: LayerCtx, dm: Dims, d: int, body: list[str], xtype: str = "float"
              ) -> list[str]:
    """The steps of direction ``d``: ``t`` (the time index), the batch entry (``dm.batch()``)
    and ``xt`` (x at (t, n)) are defined for ``body``."""
    reverse = is_reverse(ctx.a["direction"], d)
    hs, s = loop("s", dm.t)
    hn, n = dm.batch()
    head: list[str] = []
    if ctx.has("sequence_lens"):
        head += [f"const int len = (int){ctx.i('sequence_lens')}[{n}];",
                 f"const int t = {f'len - 1 - {s}' if reverse else s};"]
        if hs or hn:
            head.insert(1, f"if ({s} >= len) continue;")
        else:
            body = ["if (len > 0) {", *("  " + ln for ln in body), "}"]
    else:
        head += [f"const int t = {(dm.t - 1) - s if reverse else s};"]
    head.append(f"const {xtype} *xt = {plus(ctx.i('x'), dm.x_at(Var('t'), n))};")
    return nested([hs, hn], head + body, scoped=True)


def init_state(ctx: LayerCtx, dm: Dims, d: int, operand: str, dst: str) -> list[str]:
    """Scratch state ``dst`` (B, H) from the initial state ``operand``, or zeros."""
    size = dm.b * dm.h
    if not ctx.has(operand):
        return [f"memset({dst}, 0, sizeof(float) * {size});"]
    src = ctx.i(operand)
    hn, n = dm.batch()
    return nested([hn], [f"memcpy({plus(dst, n * dm.h)}, {plus(src, dm.state_at(d, n))}, "
                         f"sizeof(float) * {dm.h});"])


def final_state(ctx: LayerCtx, dm: Dims, d: int, out: int, src: str, ctype: str = "float"
                ) -> list[str]:
    """Copy scratch state ``src`` (B, H) to row d of output ``out`` (Y_h or Y_c)."""
    hn, n = dm.batch()
    return nested([hn], [f"memcpy({plus(ctx.o(out), dm.state_at(d, n))}, "
                         f"{plus(src, n * dm.h)}, sizeof({ctype}) * {dm.h});"])


def zero_y(ctx: LayerCtx, dm: Dims, ctype: str = "float", fill: str = "0") -> list[str]:
    """Y's entries past a sequence's length are 0 (``fill``: its code, quantised)."""
    if not ctx.has("sequence_lens"):
        return []
    size = dm.t * dm.d * dm.b * dm.h
    if fill == "0":
        return [f"memset({ctx.o(0)}, 0, sizeof({ctype}) * {size});"]
    return [f"for (int k = 0; k < {size}; ++k) {ctx.o(0)}[k] = {fill};"]


def _projection(dm: Dims, rows: int, h_rows: int | None = None) -> list[str]:
    """g[k] = Wb[k] + Rb[k] + Σ_i xt[i]·W[k, i] + Σ_j h[j]·R[k, j] for k < rows (the R terms
    only for k < h_rows). W and R are stored transposed (WT[i][k], RT[j][k]) so that the
    inner loops run along k over independent sums, which the C compiler vectorises."""
    h_rows = rows if h_rows is None else h_rows
    gh = dm.gates * dm.h
    rb = "Wb[k] + Rb[k]" if h_rows == rows else f"Wb[k] + (k < {h_rows} ? Rb[k] : 0.0f)"
    return [f"for (int k = 0; k < {rows}; ++k) g[k] = {rb};",
            f"for (int i = 0; i < {dm.i}; ++i) {{",
            f"  const float xi = xt[i], *wi = WT + i * {gh};",
            f"  for (int k = 0; k < {rows}; ++k) g[k] += xi * wi[k];",
            "}",
            f"for (int j = 0; j < {dm.h}; ++j) {{",
            f"  const float hj = hn[j], *rj = RT + j * {gh};",
            f"  for (int k = 0; k < {h_rows}; ++k) g[k] += hj * rj[k];",
            "}"]


def transposed(ctx: LayerCtx, operand: str) -> str:
    """Constant weight ``operand`` (D, G·H, K) as a derived weight (D, K, G·H)."""
    data = ctx.const(operand)
    if data is None:
        raise ctx.fail(f"the C emitter needs {operand.upper()} to be a constant")
    return ctx.weight(np.ascontiguousarray(np.asarray(data).transpose(0, 2, 1)), f"{operand}T")


def weights_of(ctx: LayerCtx, dm: Dims, d: int, zeros: str) -> list[str]:
    """WT, RT (transposed), Wb, Rb (and P) of direction ``d``."""
    gh = dm.gates * dm.h
    lines = [f"const float *WT = {plus(transposed(ctx, 'w'), d * gh * dm.i)};",
             f"const float *RT = {plus(transposed(ctx, 'r'), d * gh * dm.h)};"]
    if ctx.has("b"):
        lines.append(f"const float *Wb = {plus(ctx.i('b'), d * 2 * gh)}, *Rb = Wb + {gh};")
    else:
        lines.append(f"const float *Wb = {zeros}, *Rb = {zeros};")
    if ctx.node.op in ("LSTM", "QLSTM") and ctx.has("p"):
        lines.append(f"const float *P = {plus(ctx.i('p'), d * 3 * dm.h)};")
    return lines


def lstm_cell(ctx: LayerCtx, dm: Dims, acts: Acts, store_h: str = "hn[j] = o * hc;"
              ) -> list[str]:
    """From g (i, o, f, c pre-activations) and c, the new c and h (``store_h``), j < H."""
    h = dm.h
    peep = ctx.has("p")
    i_in = "g[j] + P[j] * cn[j]" if peep else "g[j]"
    f_in = f"g[{2 * h} + j] + P[{2 * h} + j] * cn[j]" if peep else f"g[{2 * h} + j]"
    o_in = f"g[{h} + j] + P[{h} + j] * c_new" if peep else f"g[{h} + j]"
    forget = ["const float f = 1.0f - i;"] if ctx.a["input_forget"] else [
        f"const float gf = {f_in};", *acts(0, "f", "gf")]
    return [f"for (int j = 0; j < {h}; ++j) {{", *("  " + ln for ln in [
        f"const float gi = {i_in};", *acts(0, "i", "gi"),
        *forget,
        f"const float gc = g[{3 * h} + j];", *acts(1, "cc", "gc"),
        "const float c_new = f * cn[j] + i * cc;",
        f"const float go = {o_in};", *acts(0, "o", "go"),
        *acts(2, "hc", "c_new"),
        "cn[j] = c_new;",
        store_h,
    ]), "}"]


def _zeros(ctx: LayerCtx, dm: Dims) -> str:
    return ctx.weight(np.zeros(2 * dm.gates * dm.h, np.float32), "zero_bias")


@emits("LSTM", "GRU", "RNN", scratch=recurrent_scratch)
def recurrent(ctx: LayerCtx) -> str:
    if ctx.require_float() != "float" or ctx.it("x").dtype.value != "f32":
        raise ctx.fail("only f32 recurrent layers have a C emitter")
    op = ctx.node.op
    dm = Dims.of(ctx.node)
    bh = dm.b * dm.h
    lines = ["float *h = (float *)scratch;  /* the state h, (batch, hidden) */"]
    if op == "LSTM":
        lines.append(f"float *c = h + {bh};  /* the cell state c */")
        lines.append(f"float *g = c + {bh};  /* one entry's gate pre-activations i, o, f, c */")
    else:
        lines.append(f"float *g = h + {bh};  /* one entry's gate pre-activations */")
    lines += zero_y(ctx, dm)
    zeros = "" if ctx.has("b") else _zeros(ctx, dm)
    for d in range(dm.d):
        per_dir = KINDS[op][1]
        acts = Acts(ctx, d, per_dir)
        kind = "reverse" if is_reverse(ctx.a["direction"], d) else "forward"
        n = dm.batch()[1]
        body = [f"float *hn = {plus('h', n * dm.h)};"]
        if op == "LSTM":
            body += [f"float *cn = {plus('c', n * dm.h)};", *_projection(dm, 4 * dm.h),
                     *lstm_cell(ctx, dm, acts)]
        elif op == "GRU":
            body += gru_step(ctx, dm, acts)
        else:
            body += [*_projection(dm, dm.h), f"for (int j = 0; j < {dm.h}; ++j) {{",
                     "  const float v = g[j];", *("  " + ln for ln in acts(0, "hj", "v")),
                     "  hn[j] = hj;", "}"]
        body += [f"memcpy({plus(ctx.o(0), dm.y_at(Var('t'), d, n))}, hn, "
                 f"sizeof(float) * {dm.h});"]
        block = [*weights_of(ctx, dm, d, zeros), *init_state(ctx, dm, d, "initial_h", "h")]
        if op == "LSTM":
            block += init_state(ctx, dm, d, "initial_c", "c")
        block += time_loop(ctx, dm, d, body) + final_state(ctx, dm, d, 1, "h")
        if op == "LSTM":
            block += final_state(ctx, dm, d, 2, "c")
        lines += [f"/* direction {d}: {kind} */", "{", *("  " + ln for ln in block), "}"]
    return "\n".join(lines)


def gru_step(ctx: LayerCtx, dm: Dims, acts: Acts) -> list[str]:
    """z and r from g, then h~ with the reset gate before or after Rh, then h."""
    h = dm.h
    lbr = ctx.a["linear_before_reset"]
    gh3 = 3 * h
    lines = [*_projection(dm, 3 * h, h_rows=2 * h),
             f"float *hnew = g + {3 * h};",
             f"for (int j = 0; j < {2 * h}; ++j) {{",
             "  const float v = g[j];", *("  " + ln for ln in acts(0, "a", "v")),
             "  g[j] = a;  /* z, then r */", "}",
             "float *rec = hnew;  /* Rh times h (lbr) or times r*h, then h's new value */",
             f"for (int j = 0; j < {h}; ++j) rec[j] = Rb[{2 * h} + j];",
             f"for (int k = 0; k < {h}; ++k) {{",
             f"  const float v = {'hn[k]' if lbr else f'g[{h} + k] * hn[k]'}, "
             f"*rk = RT + k * {gh3} + {2 * h};",
             f"  for (int j = 0; j < {h}; ++j) rec[j] += v * rk[j];",
             "}",
             f"for (int j = 0; j < {h}; ++j) {{"]
    if lbr:
        body = [f"const float gh = g[{2 * h} + j] + g[{h} + j] * rec[j];"]
    else:
        body = [f"const float gh = g[{2 * h} + j] + rec[j];"]
    body += [*acts(1, "hc", "gh"), "hnew[j] = (1.0f - g[j]) * hc + g[j] * hn[j];"]
    lines += [*("  " + ln for ln in body), "}", f"memcpy(hn, hnew, sizeof(float) * {h});"]
    return lines
