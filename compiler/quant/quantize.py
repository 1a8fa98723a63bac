"""Float IR graph + calibrated ranges → mixed-precision graph of quantised ops.

The rewrite walks the float graph once, in order, keeping for every original value its float
version and/or its quantised version, each made on demand: a quantised consumer of a float
value gets a Quantize inserted once, a float consumer of a quantised value a Dequantize.
So whatever is not quantised (a skipped layer, an op with no integer form such as Softmax or
LayerNormalization) stays f32 between explicit boundaries — mixed precision, never a failure.

Rules (the integer meaning of every Q-op is in ir/ops/q*.py and ir/qmath.py):

- Conv, Gemm and MatMul with a constant weight → QConv / QLinear: weights int8 symmetric per
  output channel in [-127, 127], bias int32 at scale s_x·s_w[c]; a following Relu or Clip
  that is the layer's only user is fused as the clamp bounds. A MatMul's bias Add (a
  constant per output column, its only reader) becomes the QLinear's bias.
- A BatchNormalization that no layer absorbed (4-D, constant parameters) → a depthwise 1x1
  QConv computing its per-channel x * s + t.
- MatMul of two activations → QMatMul; Add → QAdd (with a fused Relu); Mul → QMul, or a
  Retype with the scale times c for a Mul by a positive constant scalar c.
- Unary non-linearities → QLut: the table is the op's own reference compute applied to
  every 8-bit input code, so the LUT is exact by construction.
- AveragePool / GlobalAveragePool → QAveragePool / QGlobalAveragePool.
- Data-movement ops (MaxPool, Reshape, Transpose, Slice, Concat, ...) run on the 8-bit
  codes unchanged; the producers of a Concat's inputs share its scale where they feed
  nothing else, and any input that still differs is requantised first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from compiler.errors import QnncError
from ir import qmath
from ir.build import make_node
from ir.graph import Graph, Node, Value
from ir.ops.norm import batchnorm_affine
from ir.ops.qcommon import activation_bounds
from ir.ops.registry import OPS
from ir.types import DType, QuantParams, TensorType

LUT_OPS = frozenset({
    "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Gelu", "Erf", "Exp", "LeakyRelu", "SiLU",
    "Softplus", "Softsign", "Elu", "Selu", "Celu", "Mish", "Relu", "Clip", "Abs", "Neg",
})
MOVE_OPS = frozenset({
    "MaxPool", "GlobalMaxPool", "Reshape", "Transpose", "Slice", "Split", "Gather", "Identity",
    "Expand", "Tile", "DepthToSpace", "SpaceToDepth", "Pad", "Resize", "Concat",
})
ACTIVATIONS = frozenset({"Relu", "Clip"})


class QuantizeError(QnncError):
    """The graph could not be quantised as asked (e.g. a range is missing)."""


@dataclass(frozen=True)
class QuantConfig:
    """How to quantise. ``act_dtype`` is the target's preferred activation type."""

    act_dtype: DType = DType.u8
    per_channel: bool = True
    skip_layers: frozenset[str] = field(default_factory=frozenset)
    skip_op_types: frozenset[str] = field(default_factory=frozenset)
    bias_correction: bool = True


Ranges = Mapping[str, tuple[float, float]]


class _Rewriter:
    def __init__(self, src: Graph, ranges: Ranges, cfg: QuantConfig,
                 means: Mapping[str, np.ndarray]) -> None:
        self.src, self.cfg, self.means = src, cfg, means
        self.ranges = share_concat_ranges(src, ranges)
        self.g = Graph(src.name)
        self.fmap: dict[int, Value] = {}  # id(original value) -> float version
        self.qmap: dict[int, Value] = {}  # id(original value) -> quantised version
        self.users = src.users()
        self.fused: set[int] = set()  # ids of activation nodes folded into their producer

    # -- value versions -----------------------------------------------------------------
    def params(self, v: Value) -> tuple[float, int]:
        if v.name not in self.ranges:
            raise QuantizeError(
                f"no calibrated range for tensor {v.name!r}; calibrate the model on data "
                "that reaches it, or keep its layer in f32 with --skip-layers"
            )
        lo, hi = self.ranges[v.name]
        return qmath.choose_qparams(float(lo), float(hi), self.cfg.act_dtype)

    def fval(self, v: Value) -> Value:
        if id(v) in self.fmap:
            return self.fmap[id(v)]
        if v.is_const:
            out = self.g.add_const(v.data, v.name)  # type: ignore[arg-type]
        elif id(v) in self.qmap:
            out = self.emit("Dequantize", [self.qmap[id(v)]], {}, f"{v.name}_dq", v.name)
        else:
            raise AssertionError(f"value {v.name} has no version yet")
        self.fmap[id(v)] = out
        return out

    def qval(self, v: Value) -> Value:
        if id(v) in self.qmap:
            return self.qmap[id(v)]
        scale, zp = self.params(v)
        attrs = {"dtype": self.cfg.act_dtype.value, "scale": [scale], "zero_point": [zp]}
        out = self.emit("Quantize", [self.fval(v)], attrs, f"{v.name}_q", v.name)
        self.qmap[id(v)] = out
        return out

    def emit(self, op: str, ins: list[Value | None], attrs: dict, hint: str, name: str) -> Value:
        return make_node(self.g, op, ins, attrs, name=name, out_names=[hint]).outputs[0]

    def out_attrs(self, v: Value) -> dict:
        scale, zp = self.params(v)
        return {"out_dtype": self.cfg.act_dtype.value, "out_scale": scale, "out_zp": zp}

    # -- driving ------------------------------------------------------------------------
    def run(self) -> Graph:
        for v in self.src.inputs:
            self.fmap[id(v)] = self.g.add_input(v.name, v.type)
        for node in self.src.nodes:
            if id(node) in self.fused:
                continue
            if not self.rewrite(node):
                self.keep_float(node)
        outs = []
        for v in self.src.outputs:
            f = self.fval(v)
            if f.name != v.name:  # give the float result the model's output name
                holder = next((x for x in self.g.values() if x.name == v.name), None)
                if holder is not None:
                    self.g.rename(holder, self.g.fresh_name(f"{v.name}_q"))
                self.g.rename(f, v.name)
            outs.append(f)
        self.g.outputs = outs
        self.g.prune_constants()
        return self.g

    def skipped(self, node: Node) -> bool:
        return node.name in self.cfg.skip_layers or node.op in self.cfg.skip_op_types

    def is_float(self, v: Value | None) -> bool:
        return v is not None and v.type.dtype is DType.f32 and v.type.quant is None

    def rewrite(self, node: Node) -> bool:
        if self.skipped(node) or not node.outputs or not all(
            self.is_float(o) for o in node.outputs
        ):
            return False
        handler = _HANDLERS.get(node.op)
        if handler is None and node.op in LUT_OPS:
            handler = _lut
        if handler is None and node.op in MOVE_OPS:
            handler = _move
        return bool(handler and handler(self, node))

    def keep_float(self, node: Node) -> None:
        ins = [None if v is None else self.fval(v) for v in node.inputs]
        hints = [o.name for o in node.outputs]
        new = make_node(self.g, node.op, ins, node.attrs, name=node.name, out_names=hints)
        for old, v in zip(node.outputs, new.outputs):
            self.fmap[id(old)] = v

    def fusable_activation(self, out: Value) -> Node | None:
        """The Relu/Clip that is ``out``'s only user, when it can become clamp bounds."""
        users = self.users.get(id(out), [])
        if len(users) != 1 or out in self.src.outputs:
            return None
        act = users[0]
        if act.op not in ACTIVATIONS or self.skipped(act):
            return None
        return act

    def clamp_for(self, act: Node | None, result: Value) -> tuple[Value, dict]:
        """(the value whose range sets the output params, act_min/act_max attrs)."""
        if act is None:
            return result, {}
        final = act.outputs[0]
        scale, zp = self.params(final)
        lo, hi = qmath.qrange(self.cfg.act_dtype)
        if act.op == "Relu":
            lo, hi = activation_bounds("relu", self.cfg.act_dtype, scale, zp)
        else:
            cmin, cmax = float(act.attrs["min"]), float(act.attrs["max"])
            if np.isfinite(cmin):
                lo = max(lo, min(hi, zp + int(np.rint(cmin / scale))))
            if np.isfinite(cmax):
                hi = min(hi, max(lo, zp + int(np.rint(cmax / scale))))
        return final, {"act_min": lo, "act_max": hi}

    def finish(self, node: Node, act: Node | None, out: Value) -> None:
        self.qmap[id(node.outputs[0])] = out
        if act is not None:
            self.fused.add(id(act))
            self.qmap[id(act.outputs[0])] = out


def share_concat_ranges(graph: Graph, ranges: Ranges) -> dict[str, tuple[float, float]]:
    """Give every input that only feeds a Concat the Concat's own range, so its producer
    writes the shared scale directly and the Concat needs no requantisation (the Concat's
    range covers each input's by construction)."""
    out = dict(ranges)
    users = graph.users()
    outputs = {id(v) for v in graph.outputs}
    for node in graph.nodes:
        if node.op != "Concat" or node.outputs[0].name not in ranges:
            continue
        shared = ranges[node.outputs[0].name]
        for v in node.inputs:
            if (v is not None and not v.is_const and id(v) not in outputs
                    and v not in graph.inputs and len(users.get(id(v), [])) == 1):
                out[v.name] = shared
    return out


# -- weights ------------------------------------------------------------------------------


def quantize_weight(w: np.ndarray, per_channel: bool = True) -> tuple[np.ndarray, QuantParams]:
    """int8 symmetric in [-127, 127], one scale per output channel (axis 0) or per tensor."""
    wf = w.astype(np.float32)
    if per_channel and wf.ndim >= 1 and wf.shape[0] > 1:
        amax = np.abs(wf.reshape(wf.shape[0], -1)).max(axis=1)
        scales = np.maximum(amax / 127.0, qmath.MIN_SCALE).astype(np.float32)
        q = qmath.quantize(wf, scales, np.zeros_like(scales, dtype=np.int64), DType.i8, axis=0)
        q = np.clip(q, -127, 127).astype(np.int8)
        return q, QuantParams(tuple(map(float, scales)), (0,) * len(scales), 0)
    scale = float(np.float32(max(float(np.abs(wf).max(initial=0.0)) / 127.0, qmath.MIN_SCALE)))
    q = np.clip(qmath.quantize(wf, scale, 0, DType.i8), -127, 127).astype(np.int8)
    return q, QuantParams.per_tensor(scale, 0)


def quantize_bias(b: np.ndarray, s_x: float, w_q: QuantParams, n: int) -> np.ndarray:
    scales = np.broadcast_to(w_q.scale_array().astype(np.float64), (n,)) * s_x
    q = np.rint(b.astype(np.float64) / scales)
    return np.clip(q, -(2**31), 2**31 - 1).astype(np.int32)


def _typed_const(rw: _Rewriter, data: np.ndarray, q: QuantParams | None, hint: str) -> Value:
    v = rw.g.add_const(data, hint)
    if q is not None:
        v.type = TensorType(v.type.shape, v.type.dtype, q)
    return v


def bias_correction(w: np.ndarray, wq: np.ndarray, wparams: QuantParams, mean: np.ndarray,
                    groups: int = 1) -> np.ndarray:
    """The expected output error that rounding the weights causes, E[(W_q - W) x], per output
    channel, from the per-channel means of x (Nagel et al. 2019, "Data-Free Quantization",
    section 4.2, with empirical means). Subtracting it from the bias removes the bias shift
    that per-tensor weight quantisation of depthwise layers otherwise leaves."""
    axis = 0 if wparams.per_channel else None
    dw = qmath.dequantize(wq, wparams.scale_array(), wparams.zero_point_array(), axis)
    dw = dw.astype(np.float64) - w.astype(np.float64)
    if dw.ndim == 2:  # [N, K]
        return dw @ mean.astype(np.float64)
    per_in = dw.reshape(dw.shape[0], dw.shape[1], -1).sum(axis=2)  # [O, I/g]
    o, ig = per_in.shape
    m = mean.astype(np.float64).reshape(groups, ig)
    return np.einsum("goi,gi->go", per_in.reshape(groups, o // groups, ig), m).reshape(o)


def _weights(rw: _Rewriter, w: np.ndarray, b: np.ndarray | None, xq: Value, hint: str,
             x: Value, groups: int = 1) -> tuple[Value, Value | None]:
    wq, wparams = quantize_weight(w, rw.cfg.per_channel)
    wv = _typed_const(rw, wq, wparams, f"{hint}_wq")
    mean = rw.means.get(x.name) if rw.cfg.bias_correction else None
    if mean is not None and mean.shape == (w.shape[1] * groups,):
        corr = bias_correction(w, wq, wparams, mean, groups)
        b = (np.zeros(w.shape[0]) if b is None else b.reshape(-1).astype(np.float64)) - corr
    if b is None:
        return wv, None
    assert xq.type.quant is not None
    bq = quantize_bias(b.reshape(-1), xq.type.quant.scale[0], wparams, w.shape[0])
    s_b = tuple(xq.type.quant.scale[0] * s for s in wparams.scale)
    bparams = QuantParams(s_b, (0,) * len(s_b), 0 if len(s_b) > 1 else None)
    return wv, _typed_const(rw, bq, bparams, f"{hint}_bq")


# -- handlers -----------------------------------------------------------------------------


def _conv(rw: _Rewriter, node: Node) -> bool:
    x, w = node.inputs[0], node.inputs[1]
    b = node.inputs[2] if len(node.inputs) > 2 else None
    if x is None or w is None or not w.is_const or (b is not None and not b.is_const):
        return False
    act = rw.fusable_activation(node.outputs[0])
    final, clamp = rw.clamp_for(act, node.outputs[0])
    xq = rw.qval(x)
    wv, bv = _weights(rw, w.data, None if b is None else b.data, xq,  # type: ignore[arg-type]
                      node.name or "conv", x, node.attrs["group"])
    attrs = {**node.attrs, **rw.out_attrs(final), **clamp}
    out = rw.emit("QConv", [xq, wv, bv], attrs, final.name, node.name)
    rw.finish(node, act, out)
    return True


def _batchnorm(rw: _Rewriter, node: Node) -> bool:
    """A BatchNormalization no layer absorbed (e.g. DenseNet's, after a Concat) is a
    per-channel affine map x * s + t: quantised as a depthwise 1x1 QConv with weight s and
    bias t, so it runs as an integer layer (with a following Relu/Clip fused) instead of a
    float island."""
    x = node.inputs[0]
    if x is None or x.type.rank != 4 or len(node.outputs) != 1 or not all(
            v is not None and v.is_const for v in node.inputs[1:]):
        return False
    params = [np.asarray(v.data) for v in node.inputs[1:]]  # type: ignore[union-attr]
    s, t = batchnorm_affine(*params, node.attrs["epsilon"])
    channels = x.type.shape[1]
    act = rw.fusable_activation(node.outputs[0])
    final, clamp = rw.clamp_for(act, node.outputs[0])
    xq = rw.qval(x)
    w = s.reshape(channels, 1, 1, 1).astype(np.float32)
    wv, bv = _weights(rw, w, t, xq, node.name or "batchnorm", x, channels)
    attrs = {"dilations": [1, 1], "group": channels, "pads": [0, 0, 0, 0], "strides": [1, 1],
             **rw.out_attrs(final), **clamp}
    out = rw.emit("QConv", [xq, wv, bv], attrs, final.name, node.name)
    rw.finish(node, act, out)
    return True


def _following_bias(rw: _Rewriter, node: Node, n: int) -> tuple[Node, np.ndarray] | None:
    """The Add of a constant bias (one value per output column, the last axis) that is the
    only reader of ``node``'s output, with the bias as float64 [n]; None if there is none.
    Exporters write MatMul + Add for a linear layer with more than two dimensions."""
    out = node.outputs[0]
    users = rw.users.get(id(out), [])
    if len(users) != 1 or out in rw.src.outputs:
        return None
    add = users[0]
    if add.op != "Add" or rw.skipped(add) or len(add.inputs) != 2:
        return None
    const = next((v for v in add.inputs if v is not None and v is not out and v.is_const), None)
    if const is None or add.outputs[0].type.shape != out.type.shape:
        return None
    c = np.asarray(const.data, dtype=np.float64)
    if c.ndim > out.type.rank or any(d != 1 for d in c.shape[:-1]) or \
            (c.ndim and c.shape[-1] not in (1, n)):
        return None
    return add, np.broadcast_to(c.reshape(-1), (n,)).copy()


def _linear(rw: _Rewriter, node: Node, x: Value, w_nk: np.ndarray, b: np.ndarray | None) -> bool:
    result, add = node.outputs[0], None
    if b is None and (found := _following_bias(rw, node, w_nk.shape[0])) is not None:
        add, b = found
        result = add.outputs[0]
    act = rw.fusable_activation(result)
    final, clamp = rw.clamp_for(act, result)
    xq = rw.qval(x)
    wv, bv = _weights(rw, w_nk, b, xq, node.name or "linear", x)
    attrs = {**rw.out_attrs(final), **clamp}
    out = rw.emit("QLinear", [xq, wv, bv], attrs, final.name, node.name)
    rw.finish(node, act, out)
    if add is not None:
        rw.fused.add(id(add))
        rw.qmap[id(add.outputs[0])] = out
    return True


def _gemm(rw: _Rewriter, node: Node) -> bool:
    a_, b_ = node.inputs[0], node.inputs[1]
    c = node.inputs[2] if len(node.inputs) > 2 else None
    at = node.attrs
    if a_ is None or b_ is None or not b_.is_const or at["transA"] or a_.type.rank != 2:
        return False
    if c is not None and not c.is_const:
        return False
    w = np.asarray(b_.data, dtype=np.float64)
    w_nk = (w if at["transB"] else w.T) * at["alpha"]
    n = w_nk.shape[0]
    bias = None
    if c is not None:
        cb = np.broadcast_to(np.asarray(c.data, dtype=np.float64) * at["beta"], (1, n))
        if cb.shape != (1, n):
            return False
        bias = cb.reshape(n)
    return _linear(rw, node, a_, w_nk.astype(np.float32), bias)


def _matmul(rw: _Rewriter, node: Node) -> bool:
    a_, b_ = node.inputs
    if a_ is None or b_ is None:
        return False
    if b_.is_const and b_.type.rank == 2 and a_.type.rank >= 1:
        return _linear(rw, node, a_, np.ascontiguousarray(b_.data.T), None)  # type: ignore[union-attr]
    if a_.is_const or b_.is_const:
        return False
    out = rw.emit("QMatMul", [rw.qval(a_), rw.qval(b_)], rw.out_attrs(node.outputs[0]),
                  node.outputs[0].name, node.name)
    rw.finish(node, None, out)
    return True


def _binary(op: str, fuse: bool) -> Callable[[_Rewriter, Node], bool]:
    def handler(rw: _Rewriter, node: Node) -> bool:
        a_, b_ = node.inputs
        if a_ is None or b_ is None or a_.is_const or b_.is_const:
            return False
        act = rw.fusable_activation(node.outputs[0]) if fuse else None
        final, clamp = rw.clamp_for(act, node.outputs[0])
        attrs = {**rw.out_attrs(final), **clamp}
        out = rw.emit(op, [rw.qval(a_), rw.qval(b_)], attrs, final.name, node.name)
        rw.finish(node, act, out)
        return True

    return handler


def _mul(rw: _Rewriter, node: Node) -> bool:
    """Mul by a positive constant scalar c only rescales: the codes stay, the scale becomes
    s * c (a Retype, free at run time), as for attention scores times 1/sqrt(d). Anything
    else with two activations is a QMul."""
    a_, b_ = node.inputs
    if a_ is not None and b_ is not None and a_.is_const != b_.is_const:
        x, c = (b_, a_) if a_.is_const else (a_, b_)
        cv = np.asarray(c.data, dtype=np.float64)
        if cv.size != 1 or not (np.isfinite(cv).all() and cv.reshape(-1)[0] > 0) or \
                node.outputs[0].type.shape != x.type.shape:
            return False
        xq = rw.qval(x)
        qp = xq.type.quant
        if qp is None or len(qp.scale) != 1:
            return False
        attrs = {"scale": [float(np.float32(qp.scale[0] * cv.reshape(-1)[0]))],
                 "zero_point": [int(qp.zero_point[0])]}
        out = rw.emit("Retype", [xq], attrs, node.outputs[0].name, node.name)
        rw.finish(node, None, out)
        return True
    return _binary("QMul", fuse=False)(rw, node)


def _lut(rw: _Rewriter, node: Node) -> bool:
    x = node.inputs[0]
    if x is None or x.is_const or len(node.inputs) != 1:
        return False
    xq = rw.qval(x)
    assert xq.type.quant is not None
    s_in, z_in = xq.type.quant.scale[0], xq.type.quant.zero_point[0]
    out_attrs = rw.out_attrs(node.outputs[0])
    opdef, attrs = OPS[node.op], node.attrs

    def fn(v: np.ndarray) -> np.ndarray:
        return opdef.compute([v.astype(np.float32)], attrs)[0]

    table = qmath.make_lut(fn, s_in, z_in, xq.type.dtype, out_attrs["out_scale"],
                           out_attrs["out_zp"], DType(out_attrs["out_dtype"]))
    out = rw.emit("QLut", [xq], {"table": [int(t) for t in table], **out_attrs},
                  node.outputs[0].name, node.name)
    rw.finish(node, None, out)
    return True


def _avgpool(op: str) -> Callable[[_Rewriter, Node], bool]:
    def handler(rw: _Rewriter, node: Node) -> bool:
        x = node.inputs[0]
        if x is None:
            return False
        attrs = {**node.attrs, **rw.out_attrs(node.outputs[0])}
        out = rw.emit(op, [rw.qval(x)], attrs, node.outputs[0].name, node.name)
        rw.finish(node, None, out)
        return True

    return handler


def _move(rw: _Rewriter, node: Node) -> bool:
    data = [v for v in node.inputs if v is not None and not v.is_const]
    if node.op == "Gather":
        data = node.inputs[:1]  # type: ignore[assignment]
    if not data or any(v is None or not rw.is_float(v) for v in data):
        return False
    if node.op == "Resize" and node.attrs.get("mode") != "nearest":
        return False
    if node.op == "Pad" and (node.attrs.get("mode") != "constant" or len(node.inputs) > 1):
        return False
    if node.op == "Concat":
        target = rw.out_attrs(node.outputs[0])
        ins: list[Value | None] = []
        for v in node.inputs:
            assert v is not None
            q = rw.qval(v)
            qp = q.type.quant
            if qp is None or (qp.scale[0], qp.zero_point[0]) != (
                target["out_scale"], target["out_zp"]
            ):
                q = rw.emit("Requantize", [q], target, f"{v.name}_rq", node.name)
            ins.append(q)
    else:
        ins = [rw.qval(v) if (v is not None and id(v) in {id(d) for d in data})
               else (None if v is None else rw.fval(v)) for v in node.inputs]
    attrs = dict(node.attrs)
    if node.op == "Pad":
        qp = ins[0].type.quant  # type: ignore[union-attr]
        assert qp is not None
        scale, zp = qp.scale[0], qp.zero_point[0]
        attrs["value"] = float(zp + int(np.rint(float(attrs.get("value", 0.0)) / scale)))
    hints = [o.name for o in node.outputs]
    new = make_node(rw.g, node.op, ins, attrs, name=node.name, out_names=hints)
    for old, v in zip(node.outputs, new.outputs):
        rw.qmap[id(old)] = v
    return True


_HANDLERS: dict[str, Callable[[_Rewriter, Node], bool]] = {
    "Conv": _conv,
    "BatchNormalization": _batchnorm,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Add": _binary("QAdd", fuse=True),
    "Mul": _mul,
    "AveragePool": _avgpool("QAveragePool"),
    "GlobalAveragePool": _avgpool("QGlobalAveragePool"),
}


def quantize_graph(
    graph: Graph,
    ranges: Ranges,
    config: QuantConfig | None = None,
    channel_means: Mapping[str, np.ndarray] | None = None,
) -> Graph:
    """The quantised version of float ``graph``, given calibrated ``ranges`` (value name →
    (lo, hi)) of its float tensors. Inputs and outputs stay f32. With ``channel_means`` (from
    :func:`compiler.quant.calibrate.calibrate_model`) the layers' biases are corrected for
    the expected error of their rounded weights."""
    return _Rewriter(graph, ranges, config or QuantConfig(), channel_means or {}).run()
