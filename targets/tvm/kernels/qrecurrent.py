"""QLSTM and QGRU: the LSTM and GRU whose projections are 8-bit multiply-accumulates
(ir/ops/qrecurrent.py), their time loops unrolled (the sequence length is static).

Per direction d and step s (t = s, or T-1-s for the reverse direction):

    acc_x = sum_i (x[t] - zx) * w[d]      acc_h = sum_j hq * r[d]        (int32, exact)
    g = (f32(acc_x) * mx + f32(acc_h) * mh) + bias                    (f32, numpy's order)
    i, o, f, c~ = g split; peepholes added; c' = fg * c + i * g(c~); h = f(o') * h(c')
    hq = quantize(h, out_scale, out_zp) - out_zp                      (the next step's codes)

with the activations' f32 formulas of ir/ops/recurrent.py (their alphas and betas read from
memory, like every float constant of the model). Y and Y_h are the codes of h, Y_c those of the
last c (c_scale, c_zp). QGRU's step is :class:`ir.ops.qrecurrent.QGRU`'s, in the same way.
With activations made of +, *, / and comparisons the result is the interpreter's bit for bit;
exp and tanh come from LLVM, so with Sigmoid or Tanh a code of h may move by one where h lands
on a rounding boundary (as in the host C).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ir import qmath
from ir.graph import Node
from ir.ops.qrecurrent import gate_bias, gate_multipliers
from ir.ops.recurrent import is_reverse, num_directions
from ir.types import DType
from targets.tvm.api import te, tir
from targets.tvm.context import Kernel, Tensor
from targets.tvm.registry import kernel

F32 = "float32"
#: activation -> its f32 formula of ir/ops/recurrent.ACTIVATIONS, given x, alpha, beta
_ACTS: dict[str, Callable[[Any, Any, Any], Any]] = {
    "Relu": lambda x, a, b: tir.max(x, tir.const(0.0, F32)),
    "Tanh": lambda x, a, b: tir.tanh(x),
    "Sigmoid": lambda x, a, b: tir.const(1.0, F32) / (tir.const(1.0, F32) + tir.exp(-x)),
    "Affine": lambda x, a, b: a * x + b,
    "LeakyRelu": lambda x, a, b: tir.Select(x >= tir.const(0.0, F32), x, a * x),
    "ThresholdedRelu": lambda x, a, b: tir.Select(x > a, x, tir.const(0.0, F32)),
    "ScaledTanh": lambda x, a, b: a * tir.tanh(b * x),
    "HardSigmoid": lambda x, a, b: tir.min(tir.max(a * x + b, tir.const(0.0, F32)),
                                           tir.const(1.0, F32)),
    "Softsign": lambda x, a, b: x / (tir.const(1.0, F32) + tir.abs(x)),
}


def _supported(node: Node) -> bool:
    """Constant weights, bias and peepholes, no sequence_lens, known activations."""
    for name in ("w", "r", "b", "p"):
        v = node.operand(name) if name != "p" or node.op == "QLSTM" else None
        if v is not None and v.data is None:
            return False
    return (node.operand("sequence_lens") is None
            and all(a in _ACTS for a in node.attrs["activations"]))




class _Loop:
    """What both cells share: the node's tables, the activations, quantising h, reading x
    and the initial states, and assembling Y and the final states from the unrolled steps."""

    def __init__(self, k: Kernel, gates: int, per_dir: int) -> None:
        a = self.a = k.attrs
        xt, wt, rt = k.type_of("x"), k.type_of("w"), k.type_of("r")
        assert xt.quant is not None
        self.y_t = k.out_types[0]
        self.hidden, self.dirs = a["hidden_size"], num_directions(a["direction"])
        self.major, self.per_dir = bool(a["batch_major"]), per_dir
        self.gh = gates * self.hidden
        self.steps = xt.shape[1] if self.major else xt.shape[0]
        self.batch = xt.shape[0] if self.major else xt.shape[1]
        self.n_in = xt.shape[2]
        self.zx, self.zh = int(xt.quant.zero_point[0]), int(a["out_zp"])
        self.x, self.w, self.r = k.operand("x"), k.operand("w"), k.operand("r")
        mx, mh = gate_multipliers(xt, wt, rt, a)
        self.mx, self.mh = k.table(mx, "mx"), k.table(mh, "mh")
        self.ab = k.table(np.asarray([*a["activation_alpha"], *a["activation_beta"]],
                                     np.float32), "ab")
        self.clip = k.table(np.asarray([a["clip"]], np.float32), "clip") if a["clip"] > 0 \
            else None
        self.scales = k.table(np.asarray([a["out_scale"], a.get("c_scale", 1.0)], np.float32),
                              "scales")
        self.h0 = k.operand("initial_h") if k.has("initial_h") else None

    def act(self, d: int, which: int) -> Callable[[Any], Any]:
        idx = d * self.per_dir + which
        fn, n = _ACTS[self.a["activations"][idx]], len(self.a["activation_alpha"])

        def apply(v: Any) -> Any:
            if self.clip is not None:
                v = tir.min(tir.max(v, -self.clip[0]), self.clip[0])
            return fn(v, self.ab[idx], self.ab[n + idx])

        return apply

    @staticmethod
    def codes(v: Any, scale: Any, zp: int, dtype: DType) -> Any:
        """saturate(rint(v / scale) + zp) as int32 (qmath.quantize)."""
        qlo, qhi = qmath.qrange(dtype)
        q = tir.nearbyint(v / scale).astype("float64") + tir.const(float(zp), "float64")
        q = tir.max(tir.min(q, tir.const(float(qhi), "float64")),
                    tir.const(float(qlo), "float64"))
        return q.astype("int32")

    def centred(self, v: Any) -> Any:
        """h's centred codes (hq - zh), int32."""
        return self.codes(v, self.scales[0], self.zh, self.y_t.dtype) - self.zh

    def state(self, v: Tensor, d: int, b: Any, j: Any) -> Any:
        return v[(b, d, j) if self.major else (d, b, j)]

    def initial_h(self, d: int) -> Tensor:
        shape = (self.batch, self.hidden)
        if self.h0 is not None:
            h0 = self.h0
            return te.compute(shape, lambda b, j: self.centred(self.state(h0, d, b, j)),
                              name=f"h0_{d}")
        return te.compute(shape, lambda b, j: tir.const(0, "int32"), name=f"h0_{d}")

    def projection(self, d: int, name: str, rows: int, count: int, t: int | None,
                   h: Tensor | None) -> Tensor:
        """int32 (B, count): rows d*GH + rows .. of w times x[t] - zx, or of r times h."""
        base = d * self.gh + rows
        if h is None:
            ri = te.reduce_axis((0, self.n_in), name="ri")
            return te.compute((self.batch, count), lambda b, q: te.sum(
                (self.x[(b, t, ri) if self.major else (t, b, ri)].astype("int32") - self.zx)
                * self.w[base + q, ri].astype("int32"), axis=ri), name=name)
        rj = te.reduce_axis((0, self.hidden), name="rj")
        return te.compute((self.batch, count), lambda b, q: te.sum(
            h[b, rj] * self.r[base + q, rj].astype("int32"), axis=rj), name=name)

    def time_order(self, d: int) -> list[int]:
        order = list(range(self.steps))
        return order[::-1] if is_reverse(self.a["direction"], d) else order

    def y(self, hist: list[dict[int, Tensor]]) -> Tensor:
        def body(*i: Any) -> Any:
            (b, t, d, j) = i if self.major else (i[2], i[0], i[1], i[3])
            v: Any = tir.const(0, "int32")
            for dd in range(self.dirs):
                for tt, h in hist[dd].items():
                    v = tir.Select(tir.all(t == tt, d == dd), h[b, j], v)
            return (v + self.zh).astype(self.y_t.dtype.np.name)

        return te.compute(self.y_t.shape, body, name="y")

    def final(self, shape: Any, finals: list[Tensor], out: Callable[[Any], Any],
              zero: Any, name: str) -> Tensor:
        def body(*i: Any) -> Any:
            (b, d, j) = i if self.major else (i[1], i[0], i[2])
            v: Any = zero
            for dd in range(self.dirs):
                v = tir.Select(d == dd, finals[dd][b, j], v)
            return out(v)

        return te.compute(shape, body, name=name)


@kernel("QLSTM", accepts=_supported)
def qlstm(k: Kernel) -> list[Tensor]:
    """See the module doc."""
    lp = _Loop(k, 4, 3)
    a, hidden, gh, dirs = lp.a, lp.hidden, lp.gh, lp.dirs
    _, yh_t, yc_t = k.out_types
    b_np = k.node.operand("b").data if k.has("b") else None
    bias = k.table(np.stack([gate_bias(b_np, d, gh) for d in range(dirs)]), "bias")
    peep = k.table(np.asarray(k.node.operand("p").data, np.float32), "p") if k.has("p") \
        else None
    c0 = k.operand("initial_c") if k.has("initial_c") else None
    shape = (lp.batch, hidden)

    def initial_c(d: int) -> Tensor:
        if c0 is not None:
            return te.compute(shape, lambda b, j: lp.state(c0, d, b, j), name=f"c0_{d}")
        return te.compute(shape, lambda b, j: tir.const(0.0, F32), name=f"c0_{d}")

    def step(d: int, s: int, t: int, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        rows = d * gh
        f, g_act, h_act = lp.act(d, 0), lp.act(d, 1), lp.act(d, 2)
        acc_x = lp.projection(d, f"acc_x{d}_{s}", 0, gh, t, None)
        acc_h = lp.projection(d, f"acc_h{d}_{s}", 0, gh, None, h)
        g = te.compute((lp.batch, gh), lambda b, q: (
            acc_x[b, q].astype(F32) * lp.mx[rows + q] + acc_h[b, q].astype(F32)
            * lp.mh[rows + q]) + bias[d, q], name=f"g{d}_{s}")

        def cell(b: Any, j: Any) -> Any:
            gi, gf, gc = g[b, j], g[b, 2 * hidden + j], g[b, 3 * hidden + j]
            if peep is not None:
                gi = gi + peep[d, j] * c[b, j]
                gf = gf + peep[d, 2 * hidden + j] * c[b, j]
            i = f(gi)
            fg = tir.const(1.0, F32) - i if a["input_forget"] else f(gf)
            return fg * c[b, j] + i * g_act(gc)

        c_new = te.compute(shape, cell, name=f"c{d}_{s}")

        def out(b: Any, j: Any) -> Any:
            go = g[b, hidden + j]
            if peep is not None:
                go = go + peep[d, hidden + j] * c_new[b, j]
            return lp.centred(f(go) * h_act(c_new[b, j]))

        return te.compute(shape, out, name=f"h{d}_{s}"), c_new

    hist: list[dict[int, Tensor]] = []
    hs, cs = [], []
    for d in range(dirs):
        h, c = lp.initial_h(d), initial_c(d)
        times: dict[int, Tensor] = {}
        for s, t in enumerate(lp.time_order(d)):
            h, c = step(d, s, t, h, c)
            times[t] = h
        hist.append(times)
        hs.append(h)
        cs.append(c)
    return [lp.y(hist),
            lp.final(yh_t.shape, hs, lambda v: (v + lp.zh).astype(yh_t.dtype.np.name),
                     tir.const(0, "int32"), "y_h"),
            lp.final(yc_t.shape, cs, lambda v: lp.codes(v, lp.scales[1], int(a["c_zp"]),
                                                        yc_t.dtype).astype(yc_t.dtype.np.name),
                     tir.const(0.0, F32), "y_c")]


@kernel("QGRU", accepts=_supported)
def qgru(k: Kernel) -> list[Tensor]:
    """QGRU (ir/ops/qrecurrent.QGRU): with A_x = f32(acc_x) * mx + Wb and
    A_h = f32(acc_h) * mh + Rb per gate row (z, r, h), z, r = f(A_x + A_h);
    h~ = g(A_x + r * A_h) (linear_before_reset) or g(A_x + A_h(quantize(r * h)));
    h' = (1 - z) * h~ + z * h with h = (hq - zh) * sh; hq' = quantize(h')."""
    lp = _Loop(k, 3, 2)
    a, hidden, gh, dirs = lp.a, lp.hidden, lp.gh, lp.dirs
    (_, yh_t) = k.out_types
    b_np = k.node.operand("b").data if k.has("b") else None
    biases = np.zeros((dirs, 2 * gh), np.float32) if b_np is None else \
        np.asarray(b_np, np.float32)
    wb, rb = k.table(biases[:, :gh], "wb"), k.table(biases[:, gh:], "rb")
    lbr = bool(a["linear_before_reset"])
    shape = (lp.batch, hidden)

    def step(d: int, s: int, t: int, hc: Tensor) -> Tensor:
        rows = d * gh
        f, g_act = lp.act(d, 0), lp.act(d, 1)
        h_rows = gh if lbr else 2 * hidden
        acc_x = lp.projection(d, f"acc_x{d}_{s}", 0, gh, t, None)
        acc_h = lp.projection(d, f"acc_h{d}_{s}", 0, h_rows, None, hc)
        ax = te.compute((lp.batch, gh), lambda b, q: acc_x[b, q].astype(F32) * lp.mx[rows + q]
                        + wb[d, q], name=f"ax{d}_{s}")
        ah = te.compute((lp.batch, h_rows), lambda b, q: acc_h[b, q].astype(F32)
                        * lp.mh[rows + q] + rb[d, q], name=f"ah{d}_{s}")

        def h_of(b: Any, j: Any) -> Any:  # (hq - zh) * sh, as qmath.dequantize computes it
            return hc[b, j].astype(F32) * lp.scales[0]

        zr = te.compute((lp.batch, 2 * hidden), lambda b, q: f(ax[b, q] + ah[b, q]),
                        name=f"zr{d}_{s}")
        if lbr:
            cand = te.compute(shape, lambda b, j: g_act(
                ax[b, 2 * hidden + j] + zr[b, hidden + j] * ah[b, 2 * hidden + j]),
                name=f"hh{d}_{s}")
        else:
            rh = te.compute(shape, lambda b, j: lp.centred(zr[b, hidden + j] * h_of(b, j)),
                            name=f"rh{d}_{s}")
            acc_r = lp.projection(d, f"acc_r{d}_{s}", 2 * hidden, hidden, None, rh)
            cand = te.compute(shape, lambda b, j: g_act(
                ax[b, 2 * hidden + j] + (acc_r[b, j].astype(F32)
                                         * lp.mh[rows + 2 * hidden + j]
                                         + rb[d, 2 * hidden + j])), name=f"hh{d}_{s}")
        return te.compute(shape, lambda b, j: lp.centred(
            (tir.const(1.0, F32) - zr[b, j]) * cand[b, j] + zr[b, j] * h_of(b, j)),
            name=f"h{d}_{s}")

    hist: list[dict[int, Tensor]] = []
    hs = []
    for d in range(dirs):
        h = lp.initial_h(d)
        times: dict[int, Tensor] = {}
        for s, t in enumerate(lp.time_order(d)):
            h = step(d, s, t, h)
            times[t] = h
        hist.append(times)
        hs.append(h)
    return [lp.y(hist),
            lp.final(yh_t.shape, hs, lambda v: (v + lp.zh).astype(yh_t.dtype.np.name),
                     tir.const(0, "int32"), "y_h")]
