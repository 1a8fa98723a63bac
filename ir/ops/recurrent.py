"""Recurrent layers with ONNX's semantics: LSTM, GRU and RNN.

All three run one cell per time step and direction; they share the time loop
(:func:`run_directions`) and differ only in the cell. Shapes (layout 0, time-major):

    x (T, B, I)   w (D, G·H, I)   r (D, G·H, H)   b (D, 2·G·H) = [Wb, Rb]
    sequence_lens (B,)   initial_h / initial_c (D, B, H)   p (D, 3H) = [Pi, Po, Pf]
    Y (T, D, B, H)   Y_h / Y_c (D, B, H)

with D = 2 for ``bidirectional`` (direction 0 forward, 1 reverse), else 1, and G the number
of gates (LSTM 4 in the order i, o, f, c; GRU 3 in the order z, r, h; RNN 1). ONNX's
layout 1 (the IR attribute ``batch_major``, named apart from the targets' ``layout``
annotation) is batch-major: x (B, T, I), Y (B, T, D, H), Y_h / Y_c / initial states (B, D, H).

A batch entry b runs its first ``sequence_lens[b]`` steps (the reverse direction starts at
step sequence_lens[b] - 1); Y is 0 past them and Y_h / Y_c are the state after its last step.

Activations: ``activations`` names f, g (and h for LSTM) for each direction in turn, with
``activation_alpha`` / ``activation_beta`` one per entry (the frontend fills ONNX's defaults,
so the three lists have equal length). ``clip`` (0: none) bounds every activation's input to
[-clip, clip]. The ops always produce every output (Y, Y_h and for LSTM Y_c): an unused one is
a dead value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ir.graph import Node
from ir.ops.common import require_inputs
from ir.ops.registry import Attr, Attrs, OpError, register, require
from ir.qforms import QuantContext, needs
from ir.types import DType, TensorType

Act = Callable[[np.ndarray], np.ndarray]
State = tuple[np.ndarray, ...]
Step = Callable[[np.ndarray, State], State]

#: name -> (f(x, alpha, beta), default alpha, default beta), the activations ONNX lists
ACTIVATIONS: dict[str, tuple[Callable[[np.ndarray, float, float], np.ndarray], float, float]] = {
    "Relu": (lambda x, a, b: np.maximum(x, 0), 0.0, 0.0),
    "Tanh": (lambda x, a, b: np.tanh(x), 0.0, 0.0),
    "Sigmoid": (lambda x, a, b: 1 / (1 + np.exp(-x)), 0.0, 0.0),
    "Affine": (lambda x, a, b: a * x + b, 1.0, 0.0),
    "LeakyRelu": (lambda x, a, b: np.where(x >= 0, x, a * x), 0.01, 0.0),
    "ThresholdedRelu": (lambda x, a, b: np.where(x > a, x, 0), 1.0, 0.0),
    "ScaledTanh": (lambda x, a, b: a * np.tanh(b * x), 1.0, 1.0),
    "HardSigmoid": (lambda x, a, b: np.clip(a * x + b, 0, 1), 0.2, 0.5),
    "Elu": (lambda x, a, b: np.where(x >= 0, x, a * (np.exp(x) - 1)), 1.0, 0.0),
    "Softsign": (lambda x, a, b: x / (1 + np.abs(x)), 0.0, 0.0),
    "Softplus": (lambda x, a, b: np.log1p(np.exp(x)), 0.0, 0.0),
}

#: op -> (gates G, activations per direction, default activations, outputs)
KINDS: dict[str, tuple[int, int, tuple[str, ...], int]] = {
    "LSTM": (4, 3, ("Sigmoid", "Tanh", "Tanh"), 3),
    "GRU": (3, 2, ("Sigmoid", "Tanh"), 2),
    "RNN": (1, 1, ("Tanh",), 2),
}


def num_directions(direction: str) -> int:
    return 2 if direction == "bidirectional" else 1


def is_reverse(direction: str, d: int) -> bool:
    """Whether direction index ``d`` runs backwards in time."""
    return direction == "reverse" or d == 1


def activation(name: str, alpha: float, beta: float, clip: float) -> Act:
    """The activation ``name`` as an f32 function, its input clipped to [-clip, clip]."""
    fn = ACTIVATIONS[name][0]
    a, b = np.float32(alpha), np.float32(beta)

    def act(x: np.ndarray) -> np.ndarray:  # run_directions ignores overflow (exp's inf)
        if clip > 0:
            x = np.clip(x, np.float32(-clip), np.float32(clip))
        return np.asarray(fn(x, a, b), dtype=np.float32)

    return act


def direction_acts(a: Attrs, d: int, per_dir: int) -> list[Act]:
    """The activations (f, g[, h]) of direction ``d``."""
    names = a["activations"][d * per_dir:(d + 1) * per_dir]
    alphas = a["activation_alpha"][d * per_dir:(d + 1) * per_dir]
    betas = a["activation_beta"][d * per_dir:(d + 1) * per_dir]
    return [activation(n, al, be, a["clip"]) for n, al, be in zip(names, alphas, betas)]


def check_attrs(op: str, a: Attrs) -> None:
    """Directions, activation lists and hidden size are consistent (see the module doc)."""
    _, per_dir, _, _ = KINDS[op]
    require(a["direction"] in ("forward", "reverse", "bidirectional"),
            f"{op}: direction must be forward, reverse or bidirectional, got {a['direction']!r}")
    n = per_dir * num_directions(a["direction"])
    for key in ("activations", "activation_alpha", "activation_beta"):
        require(len(a[key]) == n, f"{op}: {key} needs {n} entries ({per_dir} per direction), "
                f"got {len(a[key])}")
    for name in a["activations"]:
        require(name in ACTIVATIONS, f"{op}: unknown activation {name!r}; supported: "
                f"{', '.join(ACTIVATIONS)}")
    require(a["hidden_size"] > 0, f"{op}: hidden_size must be positive")
    require(a["clip"] >= 0, f"{op}: clip must be >= 0 (0: no clipping), got {a['clip']}")


def recurrent_infer(op: str, ins: Sequence[TensorType | None], a: Attrs) -> list[TensorType]:
    """Output types of LSTM/GRU/RNN (and their quantised forms' shapes)."""
    check_attrs(op, a)
    gates, _, _, n_out = KINDS[op]
    x, w, r = require_inputs(op, list(ins), 3)
    require(x.rank == 3, f"{op}: x must have rank 3, got {list(x.shape)}")
    d, h = num_directions(a["direction"]), a["hidden_size"]
    t, b, i = (x.shape[1], x.shape[0], x.shape[2]) if a["batch_major"] else x.shape
    want = {"w": (d, gates * h, i), "r": (d, gates * h, h), "b": (d, 2 * gates * h),
            "sequence_lens": (b,), "initial_h": (d, b, h), "initial_c": (d, b, h),
            "p": (d, 3 * h)}
    names = ["x", "w", "r", "b", "sequence_lens", "initial_h", "initial_c", "p"]
    for name, tp in zip(names[1:], ins[1:]):
        if tp is None:
            continue
        shape = want[name]
        if a["batch_major"] and name.startswith("initial"):
            shape = (b, d, h)
        require(tp.shape == shape, f"{op}: {name} must have shape {list(shape)}, "
                f"got {list(tp.shape)}")
        if name == "sequence_lens":
            require(tp.dtype in (DType.i32, DType.i64), f"{op}: sequence_lens must be int32")
    ydt = DType.f32 if x.quant is not None else x.dtype
    y = (b, t, d, h) if a["batch_major"] else (t, d, b, h)
    state = (b, d, h) if a["batch_major"] else (d, b, h)
    return [TensorType(y, ydt)] + [TensorType(state, ydt)] * (n_out - 1)


def time_major(x: np.ndarray, layout: int) -> np.ndarray:
    return x.transpose(1, 0, 2) if layout else x


def state_of(v: np.ndarray | None, d: int, layout: int, shape: tuple[int, int]) -> np.ndarray:
    """Direction ``d``'s slice (B, H) of an initial state, zeros when omitted."""
    if v is None:
        return np.zeros(shape, np.float32)
    return np.asarray(v[:, d] if layout else v[d], dtype=np.float32)


def run_direction(x: np.ndarray, lens: np.ndarray, init: State, step: Step,
                  reverse: bool) -> tuple[np.ndarray, State]:
    """One direction of the time loop over x (T, B, ...): the outputs h (T, B, H) and the
    final state. Batch entry b runs steps 0 .. lens[b]-1 (backwards when ``reverse``); its
    other outputs stay 0 and its state stops changing."""
    t_len, batch = x.shape[:2]
    rows = np.arange(batch)
    y = np.zeros((t_len, batch, init[0].shape[1]), np.float32)
    state = init
    if (lens == t_len).all():  # every entry runs every step: no masks (the same values)
        for s in range(t_len):
            t = t_len - 1 - s if reverse else s
            state = step(x[t], state)
            y[t] = state[0]
        return y, state
    for s in range(t_len):
        active = s < lens
        if not active.any():
            break
        t = np.where(active, lens - 1 - s if reverse else s, 0)
        new = step(x[t, rows], state)
        state = tuple(np.where(active[:, None], n, o) for n, o in zip(new, state))
        y[t[active], rows[active]] = state[0][active]
    return y, state


def run_directions(op: str, ins: Sequence[np.ndarray | None], a: Attrs,
                   cell: Callable[[int, Sequence[np.ndarray | None]], Step],
                   x_time: np.ndarray | None = None) -> list[np.ndarray]:
    """Y, Y_h (and Y_c) of ``op``: ``cell(d, ins)`` is direction d's step function;
    ``x_time`` is what the steps read per time step (default: x in time-major order)."""
    n_out = KINDS[op][3]
    x = ins[0]
    assert x is not None
    layout = int(a["batch_major"])
    xt = time_major(x, layout) if x_time is None else x_time
    t_len, batch = xt.shape[:2]
    seq = ins[4] if len(ins) > 4 else None
    lens = np.full(batch, t_len, np.int64) if seq is None else np.asarray(seq, np.int64)
    h = a["hidden_size"]
    ys, finals = [], []
    for d in range(num_directions(a["direction"])):
        init = tuple(state_of(ins[k] if len(ins) > k else None, d, layout, (batch, h))
                     for k in (5, 6)[:n_out - 1])
        with np.errstate(over="ignore"):  # an activation's exp may overflow to inf
            y, state = run_direction(xt, lens, init, cell(d, ins),
                                     is_reverse(a["direction"], d))
        ys.append(y)
        finals.append(state)
    y_all = np.stack(ys, axis=1)  # (T, D, B, H)
    outs = [y_all.transpose(2, 0, 1, 3) if layout else y_all]
    for k in range(n_out - 1):
        s = np.stack([f[k] for f in finals], axis=0)  # (D, B, H)
        outs.append(s.transpose(1, 0, 2) if layout else s)
    dt = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
    return [np.ascontiguousarray(o).astype(dt) for o in outs]


def _f32(v: np.ndarray | None, d: int) -> np.ndarray | None:
    return None if v is None else np.asarray(v[d], dtype=np.float32)


def _bias(ins: Sequence[np.ndarray | None], d: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    b = ins[3] if len(ins) > 3 else None
    if b is None:
        z = np.zeros(rows, np.float32)
        return z, z
    bd = np.asarray(b[d], dtype=np.float32)
    return bd[:rows], bd[rows:]


def lstm_gates(g: np.ndarray, c: np.ndarray, p: np.ndarray | None, acts: list[Act],
               input_forget: bool) -> State:
    """The LSTM cell after its two projections: g (B, 4H) = x·Wᵀ + h·Rᵀ + Wb + Rb in gate
    order i, o, f, c; returns (h, c). Shared by LSTM and QLSTM."""
    f, gg, hh = acts
    gi, go, gf, gc = np.split(g, 4, axis=1)
    if p is not None:
        pi, po, pf = np.split(p, 3)
        gi, gf = gi + pi * c, gf + pf * c
    i = f(gi)
    fg = np.float32(1) - i if input_forget else f(gf)
    c_new = fg * c + i * gg(gc)
    if p is not None:
        go = go + po * c_new
    return f(go) * hh(c_new), c_new


_COMMON_ATTRS = {
    "hidden_size": Attr("int", doc="H, the size of the hidden state"),
    "direction": Attr("str", "forward", "forward, reverse or bidirectional"),
    "activations": Attr("strs", doc="activation names, per direction in turn"),
    "activation_alpha": Attr("floats", doc="alpha of each activation (its default if unused)"),
    "activation_beta": Attr("floats", doc="beta of each activation (its default if unused)"),
    "clip": Attr("float", 0.0, "activation inputs are clipped to [-clip, clip]; 0: no clip"),
    "batch_major": Attr("bool", False, "x is (B, T, I), Y (B, T, D, H), states (B, D, H) "
                        "(ONNX layout = 1); else time-major"),
}


def recurrent_flops(node: Node) -> tuple[int, int]:
    """Per step and direction, a (G·H, I) and a (G·H, H) projection per batch entry; the
    gates' arithmetic is a few FLOPs per gate element. (Also the quantised forms' rule.)"""
    x, a = node.x, node.attrs
    if x is None:
        return 0, 0
    t, b = (x.type.shape[1], x.type.shape[0]) if a["batch_major"] else x.type.shape[:2]
    gh = KINDS[node.op.removeprefix("Q")][0] * a["hidden_size"]
    rows = t * b * num_directions(a["direction"]) * gh
    macs = rows * (x.type.shape[2] + a["hidden_size"])
    return macs, 2 * macs + 4 * rows


def _float_x(op: str, ins: Sequence[TensorType | None]) -> None:
    x = ins[0]
    if x is None or not x.dtype.is_float or x.quant is not None:
        raise OpError(f"{op}: x must be a float tensor")


def quantize_recurrent(ctx: QuantContext, node: Node) -> None:
    """LSTM → QLSTM, GRU → QGRU (ir/ops/qrecurrent.py, whose docstring gives the design): the
    input and recurrent projections as int8 MACs (W and R quantised per gate row), the gates
    in f32, h quantised every step to Y's calibrated parameters (so Y is 8-bit codes the next
    layer reads), LSTM's Y_c to its own. Needs W, R (and B, P) constant; the initial states
    and the lengths pass unchanged."""
    w, r = node.w, node.r
    lstm = node.op == "LSTM"
    consts = (node.b, node.p) if lstm else (node.b,)
    needs(ctx.is_constant(w) and ctx.is_constant(r) and node.x is not None
          and all(v is None or ctx.is_constant(v) for v in consts))
    xq = ctx.act(node.x)
    y = ctx.out_params(node.outputs[0])
    attrs = {**node.attrs, **y.attrs()}
    if lstm:
        c = ctx.out_params(node.outputs[2])
        needs(c.dtype is y.dtype)
        attrs.update(c_scale=c.scale, c_zp=c.zero_point)
    wf, rf = np.asarray(ctx.constant(w)), np.asarray(ctx.constant(r))
    wq, _ = ctx.weights(node, node.x, xq, wf.reshape(-1, wf.shape[2]), None)
    rq, _ = ctx.weights(node, node.outputs[0], xq, rf.reshape(-1, rf.shape[2]), None)
    rest = (node.b, node.sequence_lens, node.initial_h) + (
        (node.initial_c, node.p) if lstm else ())
    ins = [xq, wq, rq, *(ctx.other(v) for v in rest)]
    while ins[-1] is None:
        ins.pop()
    ctx.emit("Q" + node.op, ins, attrs, [node], list(node.outputs))


@register
class LSTM:
    """Long short-term memory (ONNX LSTM), per step t and direction, f, g, h its activations:

        i = f(x·Wiᵀ + h·Riᵀ + Pi⊙c + Wbi + Rbi)      f_t = f(x·Wfᵀ + h·Rfᵀ + Pf⊙c + Wbf + Rbf)
        c~ = g(x·Wcᵀ + h·Rcᵀ + Wbc + Rbc)             c' = f_t⊙c + i⊙c~
        o = f(x·Woᵀ + h·Roᵀ + Po⊙c' + Wbo + Rbo)     h' = o⊙h(c')

    with ``input_forget`` coupling f_t = 1 - i. Outputs Y, Y_h, Y_c (see the module doc).
    """

    operands = ("x", "w", "r", "b?", "sequence_lens?", "initial_h?", "initial_c?", "p?")
    outputs = 3
    flops = recurrent_flops
    quantized = quantize_recurrent
    attrs = {**_COMMON_ATTRS,
             "input_forget": Attr("bool", False, "couple the forget gate to 1 - input gate")}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        _float_x("LSTM", ins)
        return recurrent_infer("LSTM", ins, a)

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        def cell(d: int, ins: Sequence[np.ndarray | None]) -> Step:
            w, r, p = _f32(ins[1], d), _f32(ins[2], d), _f32(ins[7] if len(ins) > 7 else None, d)
            assert w is not None and r is not None
            wb, rb = _bias(ins, d, w.shape[0])
            acts = direction_acts(a, d, 3)

            def step(xt: np.ndarray, s: State) -> State:
                g = xt.astype(np.float32) @ w.T + s[0] @ r.T + wb + rb
                return lstm_gates(g, s[1], p, acts, a["input_forget"])
            return step
        return run_directions("LSTM", ins, a, cell)


@register
class GRU:
    """Gated recurrent unit (ONNX GRU), per step and direction, f and g its activations:

        z = f(x·Wzᵀ + h·Rzᵀ + Wbz + Rbz)    r = f(x·Wrᵀ + h·Rrᵀ + Wbr + Rbr)
        h~ = g(x·Whᵀ + (r⊙h)·Rhᵀ + Rbh + Wbh)          (linear_before_reset = 0)
        h~ = g(x·Whᵀ + r⊙(h·Rhᵀ + Rbh) + Wbh)          (linear_before_reset = 1)
        h' = (1 - z)⊙h~ + z⊙h

    Outputs Y, Y_h (see the module doc).
    """

    operands = ("x", "w", "r", "b?", "sequence_lens?", "initial_h?")
    outputs = 2
    flops = recurrent_flops
    quantized = quantize_recurrent
    attrs = {**_COMMON_ATTRS,
             "linear_before_reset": Attr("bool", False, "apply Rh before the reset gate")}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        _float_x("GRU", ins)
        return recurrent_infer("GRU", ins, a)

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        def cell(d: int, ins: Sequence[np.ndarray | None]) -> Step:
            w, r = _f32(ins[1], d), _f32(ins[2], d)
            assert w is not None and r is not None
            wb, rb = _bias(ins, d, w.shape[0])
            f, g = direction_acts(a, d, 2)
            h_ = r.shape[1]
            rzr, rh = r[:2 * h_], r[2 * h_:]

            def step(xt: np.ndarray, s: State) -> State:
                h = s[0]
                gx = xt.astype(np.float32) @ w.T + wb
                gzr = gx[:, :2 * h_] + h @ rzr.T + rb[:2 * h_]
                z, rg = f(gzr[:, :h_]), f(gzr[:, h_:])
                if a["linear_before_reset"]:
                    hc = g(gx[:, 2 * h_:] + rg * (h @ rh.T + rb[2 * h_:]))
                else:
                    hc = g(gx[:, 2 * h_:] + (rg * h) @ rh.T + rb[2 * h_:])
                return ((np.float32(1) - z) * hc + z * h,)
            return step
        return run_directions("GRU", ins, a, cell)


@register
class RNN:
    """Simple recurrent layer (ONNX RNN), per step and direction, f its activation:
    h' = f(x·Wᵀ + h·Rᵀ + Wb + Rb). Outputs Y, Y_h (see the module doc)."""

    operands = ("x", "w", "r", "b?", "sequence_lens?", "initial_h?")
    outputs = 2
    flops = recurrent_flops
    attrs = dict(_COMMON_ATTRS)

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        _float_x("RNN", ins)
        return recurrent_infer("RNN", ins, a)

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        def cell(d: int, ins: Sequence[np.ndarray | None]) -> Step:
            w, r = _f32(ins[1], d), _f32(ins[2], d)
            assert w is not None and r is not None
            wb, rb = _bias(ins, d, w.shape[0])
            (f,) = direction_acts(a, d, 1)

            def step(xt: np.ndarray, s: State) -> State:
                return (f(xt.astype(np.float32) @ w.T + s[0] @ r.T + wb + rb),)
            return step
        return run_directions("RNN", ins, a, cell)
