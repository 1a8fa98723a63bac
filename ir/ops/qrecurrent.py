"""QLSTM and QGRU: the LSTM and GRU whose projections are 8-bit multiply-accumulates.

Design (what is integer and what is float, and why):

- The cell's MACs — the input projection x·Wᵀ and the recurrent projection h·Rᵀ, which are
  all of an LSTM's multiplications but a few per gate — run on 8-bit codes into exact int32
  accumulators, as every integer layer of qnnc does: x per-tensor u8/i8 (its calibrated
  parameters), W and R int8 symmetric per output row (gate row of a direction), so

      acc_x[k] = Σ_i (xq[i] − zx)·wq[k, i]        acc_h[k] = Σ_j (hq[j] − zh)·rq[k, j]

- The gates stay float (f32): g[k] = f32(acc_x[k])·mx[k] + f32(acc_h[k])·mh[k] + (Wb + Rb)[k]
  with mx[k] = f32(sx·sw[k]), mh[k] = f32(sh·sr[k]) (:func:`gate_multipliers`), then the
  LSTM cell of ir/ops/recurrent.py (sigmoid, tanh, peepholes, c) in f32. A 256-entry table
  would need its input quantised, which costs accuracy where the gates are most sensitive,
  and the cell is O(H) per step against the O(H·(I+H)) MACs.
- h is quantised every step to the result's parameters (out_*), ``qmath.quantize`` (ties to
  even): those codes feed the next step's recurrent MACs and are Y and Y_h, so Y is the
  int8 tensor the next integer layer reads. c stays f32 inside; Y_c is quantised at the end
  (c_scale, c_zp). An initial h is quantised like h, an initial c is used as is.

QGRU is the same design for the GRU (gates z, r, h; see :class:`QGRU` for where its reset
gate meets the integer MACs). So given the same codes, the accumulators and the
pre-activations g are exact in any target (integers, then the same f32 operations in the
same order); the activations call exp/tanh, whose last bit differs between libm and numpy,
so a code of h may differ by one step where h lands on a rounding boundary. Shapes and
attributes are LSTM's and GRU's (ir/ops/recurrent.py), with w (D·G·H, I) and r (D·G·H, H) as
2-D int8 tensors (per-channel on axis 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ir import qmath
from ir.ops.qcommon import OUT_ATTRS, out_type, quantized
from ir.ops.recurrent import (
    GRU,
    LSTM,
    State,
    Step,
    direction_acts,
    lstm_gates,
    num_directions,
    recurrent_flops,
    recurrent_infer,
    run_directions,
    time_major,
)
from ir.ops.registry import Attr, Attrs, OpError, register, require
from ir.types import DType, QuantParams, TensorType

_I32 = 2**31


def row_scales(q: QuantParams, rows: int) -> np.ndarray:
    """One weight scale per row (a per-tensor scale repeated)."""
    s = q.scale_array().astype(np.float32)
    return np.broadcast_to(s, (rows,)) if s.size == 1 else s


def gate_multipliers(x: TensorType, w: TensorType, r: TensorType, a: Attrs
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(mx, mh), f32 per gate row: f32(sx·sw[k]) and f32(sh·sr[k]), the products in f32."""
    assert x.quant is not None and w.quant is not None and r.quant is not None
    rows = w.shape[0]
    sx, sh = np.float32(x.quant.scale[0]), np.float32(a["out_scale"])
    mx = (sx * row_scales(w.quant, rows)).astype(np.float32)
    mh = (sh * row_scales(r.quant, rows)).astype(np.float32)
    return mx, mh


def gate_bias(b: np.ndarray | None, d: int, rows: int) -> np.ndarray:
    """(Wb + Rb) of direction ``d`` in f32 (zeros without a bias)."""
    if b is None:
        return np.zeros(rows, np.float32)
    bd = np.asarray(b[d], dtype=np.float32)
    return (bd[:rows] + bd[rows:]).astype(np.float32)


def _exact(acc: np.ndarray) -> np.ndarray:
    if acc.size and (acc.min() < -_I32 or acc.max() >= _I32):
        raise OpError("QLSTM: an accumulator left int32")
    return acc.astype(np.float32)


@register
class QLSTM:
    """LSTM with int8 projections into int32 accumulators and float gates (module doc):
    g = f32(Σ(xq−zx)·wq)·mx + f32(Σ(hq−zh)·rq)·mh + Wb + Rb; the LSTM cell on g in f32;
    hq = quantize(h, out_scale, out_zp). Outputs Y and Y_h (codes of h, out_*), Y_c (codes of c,
    c_scale / c_zp)."""

    operands = LSTM.operands
    outputs = 3
    typed = True
    flops = recurrent_flops
    attrs = {**LSTM.attrs, **OUT_ATTRS,
             "c_scale": Attr("float", doc="scale of Y_c's codes"),
             "c_zp": Attr("int", doc="zero point of Y_c's codes")}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        op = "QLSTM"
        x, w, r = ins[0], ins[1], ins[2]
        require(x is not None and w is not None and r is not None, f"{op}: x, w, r are required")
        assert x is not None and w is not None and r is not None
        quantized(op, x, "x")
        d, gh = num_directions(a["direction"]), 4 * a["hidden_size"]
        for name, t, k in (("w", w, x.shape[2]), ("r", r, a["hidden_size"])):
            q = quantized(op, t, name, per_tensor=False, dtypes=(DType.i8,))
            require(t.shape == (d * gh, k), f"{op}: {name} must be i8[{d * gh}, {k}], got {t}")
            require(not q.per_channel or (q.axis == 0 and len(q.scale) == d * gh),
                    f"{op}: {name}'s per-channel scales must run along axis 0")
        for name, t in zip(("b", "initial_h", "initial_c", "p"), (ins[3:4] + ins[5:8])):
            require(t is None or (t.dtype is DType.f32 and t.quant is None),
                    f"{op}: {name} must be f32")
        float_ins = [x.with_dtype(DType.f32), TensorType((d, gh, x.shape[2]), DType.f32),
                     TensorType((d, gh, a["hidden_size"]), DType.f32), *ins[3:]]
        y, yh, _ = recurrent_infer("LSTM", float_ins, a)
        codes = out_type(op, y.shape, a)
        c = out_type(op, yh.shape, {**a, "out_scale": a["c_scale"], "out_zp": a["c_zp"]})
        return [codes, codes.with_shape(yh.shape), c]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs, in_types: list[TensorType | None],
                out_types: list[TensorType]) -> list[np.ndarray]:
        x, w, r = ins[0], ins[1], ins[2]
        tx, tw, tr = in_types[0], in_types[1], in_types[2]
        assert x is not None and w is not None and r is not None
        assert tx is not None and tw is not None and tr is not None and tx.quant is not None
        y_t, c_t = out_types[0], out_types[2]
        zx, zh = tx.quant.zero_point[0], a["out_zp"]
        sh = a["out_scale"]
        mx, mh = gate_multipliers(tx, tw, tr, a)
        gh = 4 * a["hidden_size"]

        def codes_of(h: np.ndarray) -> np.ndarray:
            """h's codes, centred (hq − zh), as f32 (exact small integers)."""
            return (qmath.quantize(h, sh, zh, y_t.dtype).astype(np.int64) - zh).astype(
                np.float32)

        def cell(d: int, ins: Sequence[np.ndarray | None]) -> Step:
            rows = slice(d * gh, (d + 1) * gh)
            wd, rd = w[rows].astype(np.int64), r[rows].astype(np.int64)
            mxd, mhd = mx[rows], mh[rows]
            bias = gate_bias(ins[3] if len(ins) > 3 else None, d, gh)
            p = ins[7] if len(ins) > 7 else None
            pd = None if p is None else np.asarray(p[d], np.float32)
            acts = direction_acts(a, d, 3)

            def step(xt: np.ndarray, s: State) -> State:
                acc_x = _exact(xt @ wd.T)
                acc_h = _exact(s[0].astype(np.int64) @ rd.T)
                g = acc_x * mxd + acc_h * mhd + bias
                h, c = lstm_gates(g, s[1], pd, acts, a["input_forget"])
                return codes_of(h), c
            return step

        h0 = ins[5] if len(ins) > 5 else None
        states = list(ins) + [None] * (8 - len(ins))
        states[5] = None if h0 is None else codes_of(np.asarray(h0, np.float32))
        xc = time_major(x, a["batch_major"]).astype(np.int64) - zx
        y, yh, yc = run_directions("LSTM", states, a, cell, x_time=xc)
        as_codes = [(v.astype(np.int64) + zh).astype(y_t.dtype.np) for v in (y, yh)]
        return [*as_codes, qmath.quantize(yc, a["c_scale"], a["c_zp"], c_t.dtype)]


@register
class QGRU:
    """GRU with int8 projections into int32 accumulators and float gates (module doc); with
    A_x = f32(Σ(xq−zx)·wq)·mx + Wb and A_h(v) = f32(Σ(v−zh)·rq)·mh + Rb per gate row:

        z, r = f(A_x + A_h(hq))      h~ = g(A_x + r⊙A_h(hq))          (linear_before_reset)
                                     h~ = g(A_x + A_h(quantize(r⊙h)))  (otherwise: r⊙h lies
                                          within h's range, so it takes h's codes)
        h' = (1 − z)⊙h~ + z⊙h        hq' = quantize(h', out_scale, out_zp)

    where h = (hq − zh)·sh in f32. Outputs Y and Y_h, codes of h (out_*)."""

    operands = GRU.operands
    outputs = 2
    typed = True
    flops = recurrent_flops
    attrs = {**GRU.attrs, **OUT_ATTRS}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        op = "QGRU"
        x, w, r = ins[0], ins[1], ins[2]
        require(x is not None and w is not None and r is not None, f"{op}: x, w, r are required")
        assert x is not None and w is not None and r is not None
        quantized(op, x, "x")
        d, gh = num_directions(a["direction"]), 3 * a["hidden_size"]
        for name, t, k in (("w", w, x.shape[2]), ("r", r, a["hidden_size"])):
            q = quantized(op, t, name, per_tensor=False, dtypes=(DType.i8,))
            require(t.shape == (d * gh, k), f"{op}: {name} must be i8[{d * gh}, {k}], got {t}")
            require(not q.per_channel or (q.axis == 0 and len(q.scale) == d * gh),
                    f"{op}: {name}'s per-channel scales must run along axis 0")
        for name, t in (("b", ins[3] if len(ins) > 3 else None),
                        ("initial_h", ins[5] if len(ins) > 5 else None)):
            require(t is None or (t.dtype is DType.f32 and t.quant is None),
                    f"{op}: {name} must be f32")
        float_ins = [x.with_dtype(DType.f32), TensorType((d, gh, x.shape[2]), DType.f32),
                     TensorType((d, gh, a["hidden_size"]), DType.f32), *ins[3:]]
        y, yh = recurrent_infer("GRU", float_ins, a)
        codes = out_type(op, y.shape, a)
        return [codes, codes.with_shape(yh.shape)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs, in_types: list[TensorType | None],
                out_types: list[TensorType]) -> list[np.ndarray]:
        x, w, r = ins[0], ins[1], ins[2]
        tx, tw, tr = in_types[0], in_types[1], in_types[2]
        assert x is not None and w is not None and r is not None
        assert tx is not None and tw is not None and tr is not None and tx.quant is not None
        y_t = out_types[0]
        zx, zh = tx.quant.zero_point[0], a["out_zp"]
        sh = np.float32(a["out_scale"])
        mx, mh = gate_multipliers(tx, tw, tr, a)
        h_ = a["hidden_size"]
        gh = 3 * h_

        def codes_of(h: np.ndarray) -> np.ndarray:
            return (qmath.quantize(h, sh, zh, y_t.dtype).astype(np.int64) - zh).astype(
                np.float32)

        def cell(d: int, ins: Sequence[np.ndarray | None]) -> Step:
            rows = slice(d * gh, (d + 1) * gh)
            wd, rd = w[rows].astype(np.int64), r[rows].astype(np.int64)
            mxd, mhd = mx[rows], mh[rows]
            b = ins[3] if len(ins) > 3 else None
            bd = np.zeros(2 * gh, np.float32) if b is None else np.asarray(b[d], np.float32)
            wb, rb = bd[:gh], bd[gh:]
            f, g = direction_acts(a, d, 2)
            lbr = a["linear_before_reset"]
            h_rows = gh if lbr else 2 * h_

            def step(xt: np.ndarray, s: State) -> State:
                hc = s[0]
                h = hc * sh  # (hq − zh)·sh, as qmath.dequantize computes it
                ax = _exact(xt @ wd.T) * mxd + wb
                ah = _exact(hc.astype(np.int64) @ rd[:h_rows].T) * mhd[:h_rows] + rb[:h_rows]
                z, rg = f(ax[:, :h_] + ah[:, :h_]), f(ax[:, h_:2 * h_] + ah[:, h_:2 * h_])
                if lbr:
                    hh = g(ax[:, 2 * h_:] + rg * ah[:, 2 * h_:])
                else:
                    rh = codes_of(rg * h).astype(np.int64)
                    hh = g(ax[:, 2 * h_:] + (_exact(rh @ rd[2 * h_:].T) * mhd[2 * h_:]
                                             + rb[2 * h_:]))
                return (codes_of((np.float32(1) - z) * hh + z * h),)
            return step

        h0 = ins[5] if len(ins) > 5 else None
        states = list(ins) + [None] * (6 - len(ins))
        states[5] = None if h0 is None else codes_of(np.asarray(h0, np.float32))
        xc = time_major(x, a["batch_major"]).astype(np.int64) - zx
        y, yh = run_directions("GRU", states, a, cell, x_time=xc)
        return [(v.astype(np.int64) + zh).astype(y_t.dtype.np) for v in (y, yh)]
