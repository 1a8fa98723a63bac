"""lower-qdq: the QuantizeLinear / DequantizeLinear sandwiches of a pre-quantised (QDQ) model
become the integer ops they describe, with the model's own scales — no recalibration.

A QDQ model (onnxruntime's quantize_static with QuantFormat.QDQ, for one) is a float graph in
which every quantised op reads DequantizeLinear outputs and feeds a QuantizeLinear; weights
are int8 constants behind a DequantizeLinear (per axis for per-channel), biases int32 ones.
The pass works in two sweeps:

1. Boundaries. QuantizeLinear with constant params becomes the IR ``Quantize`` (its result
   type carries the params); DequantizeLinear becomes ``Dequantize`` of a typed integer tensor
   — a DequantizeLinear of a constant makes that constant a typed one (its quant params on
   its type), one of an untyped integer tensor gets a ``Retype`` first.
2. Sandwiches. A float op whose operands are ``Dequantize`` results and whose result is read
   only by a per-tensor 8-bit ``Quantize`` (through an optional Relu/Clip for the ops that
   fuse one) is replaced by its integer form, which takes over the Quantize's result:
   Conv → QConv, Gemm / MatMul with a constant weight → QLinear, MatMul → QMatMul,
   Add → QAdd, Mul → QMul, AveragePool / GlobalAveragePool → QAveragePool /
   QGlobalAveragePool, unary non-linearities → QLut (the table is the op's own reference
   compute on all 256 codes, so it equals the float sandwich exactly), and data-movement ops
   (MaxPool, Reshape, Transpose, Concat, ...) whose Quantize repeats their input's params run
   on the codes unchanged (exact: quantize(dequantize(q)) == q). A Quantize of a Dequantize
   with the same params is the identity and goes too.

A fused Relu or Clip becomes the clamp bounds quantize(0) or quantize(min), quantize(max):
quantisation is monotone, so clamping before or after it gives the same codes. Biases are
used as stored when their scale is s_x·s_w[c] (up to float32 rounding: the quantiser
multiplied in float32) with zero point 0, which is exactly the Q-ops' bias; otherwise they
are re-derived from their float value. Whatever does not match keeps its float
Dequantize → op → Quantize sandwich: correct, just not integer; a Quantize → Dequantize pair
between two float ops is kept too (the model rounds there). dce runs at the end.

Run it before fold-constants: folding the weights' DequantizeLinear first would leave float
weights, and the model's integer weights and scales would be lost. The integer ops round
their requantisation as the IR defines (fixed point, ties up), so their codes may differ
from the float sandwich's by one step; nothing else changes the model's arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from compiler.passes.dce import dce
from compiler.passes.manager import register_pass
from compiler.quant.quantize import LUT_OPS, MOVE_OPS, quantize_bias
from ir import qmath
from ir.build import make_node
from ir.graph import Graph, Node, Value
from ir.ops.registry import OPS, OpError
from ir.types import DType, QuantParams, TensorType

ACT_DTYPES = (DType.u8, DType.i8)
STORE_DTYPES = (DType.u8, DType.i8, DType.u16, DType.i16)
#: a stored bias scale agrees with s_x·s_w[c] when within this relative distance (a few
#: float32 roundings)
BIAS_RTOL = 2.0**-21


class _NoMatch(Exception):
    """The sandwich at hand has no integer form; it stays float."""


def _const_params(scale: Value | None, zp: Value | None, axis: int) -> QuantParams | None:
    """QuantParams from constant scale / zero point inputs, or None if they are not usable."""
    if scale is None or zp is None or scale.data is None or zp.data is None:
        return None
    if scale.type.dtype is not DType.f32:
        return None
    s = scale.data.reshape(-1).astype(np.float64)
    z = zp.data.reshape(-1).astype(np.int64)
    try:
        if s.size == 1:
            return QuantParams.per_tensor(float(s[0]), int(z[0]))
        return QuantParams(tuple(map(float, s)), tuple(map(int, z)), axis)
    except ValueError:
        return None


def _typed(x: TensorType, q: QuantParams) -> TensorType:
    return TensorType(x.shape, x.dtype, q)


class _Lowering:
    def __init__(self, graph: Graph) -> None:
        self.g = graph
        self.remap: dict[int, Value] = {}  # id(replaced value) -> its replacement
        self.nodes: list[Node] = []  # the rebuilt node list
        self.dead: set[int] = set()  # ids of nodes a rewrite made redundant

    # -- plumbing -------------------------------------------------------------------------
    def sweep(self, visit: Callable[[Node], list[Node] | None]) -> None:
        """Visit every node in order; ``visit`` returns the nodes of a rewrite, which go
        before it (their results replace some of the graph's through ``remap``; inputs are
        redirected before a node is visited). dce then drops what the rewrites replaced."""
        self.nodes = []
        self.users = self.g.users()
        self.producers = self.g.producers()
        self.outputs = {id(v) for v in self.g.outputs}
        for node in self.g.nodes:
            node.inputs = [None if v is None else self.remap.get(id(v), v) for v in node.inputs]
            if id(node) not in self.dead:
                self.nodes.extend(visit(node) or [])
            self.nodes.append(node)  # replaced nodes are left for dce
        self.g.nodes = self.nodes
        self.g.outputs = [self.remap.get(id(v), v) for v in self.g.outputs]
        dce(self.g)

    def emit(self, op: str, ins: list[Value | None], attrs: dict, name: str,
             replaces: list[Value], same_quant: bool = True) -> Node:
        """A node computing ``replaces`` (same types; with ``same_quant`` False it may add
        quant params), taking over their names."""
        try:
            node = make_node(self.g, op, ins, attrs, name=name, append=False,
                             out_names=[v.name for v in replaces])
        except OpError:
            raise _NoMatch from None
        def key(t: TensorType) -> tuple:
            return (t.shape, t.dtype, t.quant) if same_quant else (t.shape, t.dtype)

        if [key(v.type) for v in node.outputs] != [key(v.type) for v in replaces]:
            for v in node.outputs:
                self.g.release_name(v.name)
            raise _NoMatch
        for new, old in zip(node.outputs, replaces):
            name_ = old.name
            self.g.rename(old, self.g.fresh_name(f"{name_}_float"))
            self.g.rename(new, name_)
            self.remap[id(old)] = new
        return node

    def typed_const(self, data: np.ndarray, q: QuantParams, hint: str) -> Value:
        v = self.g.add_const(data, hint)
        v.type = _typed(v.type, q)
        return v

    def sole_user(self, v: Value) -> Node | None:
        users = self.users.get(id(v), [])
        if id(v) in self.outputs or len(users) != 1 or id(users[0]) in self.dead:
            return None
        return users[0]

    def qsrc(self, v: Value | None) -> Value:
        """The typed integer tensor that ``v`` dequantises, else _NoMatch."""
        p = None if v is None else self.producers.get(id(v))
        if p is None or p.op != "Dequantize":
            raise _NoMatch
        src = p.inputs[0]
        assert src is not None
        return src

    def act_qsrc(self, v: Value | None) -> Value:
        """qsrc for an activation operand: per tensor, u8 or i8."""
        src = self.qsrc(v)
        q = src.type.quant
        if src.type.dtype not in ACT_DTYPES or q is None or q.per_channel:
            raise _NoMatch
        return src

    # -- sweep 1: boundaries ------------------------------------------------------------
    def boundary(self, node: Node) -> list[Node] | None:
        if node.op == "QuantizeLinear":
            return self._quantize(node)
        if node.op == "DequantizeLinear":
            return self._dequantize(node)
        return None

    def _quantize(self, node: Node) -> list[Node] | None:
        x, scale, zp = node.inputs
        a = node.attrs
        if x is None or zp is None or x.type.dtype is not DType.f32 or a["block_size"]:
            return None
        q = _const_params(scale, zp, a["axis"])
        if q is None or a["precision"] != "f32" or zp.type.dtype not in STORE_DTYPES:
            return None
        readers = self.users.get(id(node.outputs[0]), [])
        if any(r.op != "DequantizeLinear" for r in readers):
            return None  # the codes feed an op that expects them without params
        attrs = {"dtype": zp.type.dtype.value, "scale": list(q.scale),
                 "zero_point": list(q.zero_point), "axis": q.axis or 0}
        try:
            return [self.emit("Quantize", [x], attrs, node.name, node.outputs, False)]
        except _NoMatch:
            return None

    def _dequantize(self, node: Node) -> list[Node] | None:
        x, scale, zp = node.inputs
        a = node.attrs
        if x is None or a["block_size"] or a["dtype"] != "f32":
            return None
        q = _const_params(scale, zp, a["axis"])
        if q is None:
            return None
        out: list[Node] = []
        if x.type.quant == q:
            src = x
        elif x.data is not None:
            if self.sole_user(x) is node:
                x.type = _typed(x.type, q)  # the model's integer tensor, now typed
                src = x
            else:
                src = self.typed_const(x.data, q, x.name)
        else:
            attrs = {"scale": list(q.scale), "zero_point": list(q.zero_point),
                     "axis": q.axis or 0}
            try:
                retype = make_node(self.g, "Retype", [x], attrs, name=node.name,
                                   out_names=[f"{x.name}_q"], append=False)
            except OpError:
                return None
            out.append(retype)
            src = retype.outputs[0]
        try:
            return [*out, self.emit("Dequantize", [src], {}, node.name, node.outputs, False)]
        except _NoMatch:
            return None

    # -- sweep 2: sandwiches ------------------------------------------------------------
    def sandwich(self, node: Node) -> list[Node] | None:
        handler = _HANDLERS.get(node.op)
        if handler is None and node.op in LUT_OPS:
            handler = _lut
        if handler is None and node.op in MOVE_OPS:
            handler = _move
        if node.op == "Quantize":
            handler = _requantize_same
        if handler is None:
            return None
        try:
            return handler(self, node)
        except _NoMatch:
            return None

    def quantizer(self, v: Value) -> Node:
        """The per-tensor 8-bit Quantize that is ``v``'s only reader."""
        q = self.sole_user(v)
        if q is None or q.op != "Quantize" or len(q.attrs["scale"]) != 1:
            raise _NoMatch
        if DType(q.attrs["dtype"]) not in ACT_DTYPES:
            raise _NoMatch
        return q

    def result(self, node: Node, fuse: bool) -> tuple[Node, dict, list[Node]]:
        """(the Quantize that ends ``node``'s sandwich, out_*/act_* attrs, the nodes that the
        rewrite makes redundant). With ``fuse``, a Relu/Clip in between becomes clamp
        bounds."""
        out = node.outputs[0]
        act = self.sole_user(out) if fuse else None
        if act is not None and act.op in ("Relu", "Clip"):
            q = self.quantizer(act.outputs[0])
        else:
            act, q = None, self.quantizer(out)
        dt = DType(q.attrs["dtype"])
        scale, zp = float(q.attrs["scale"][0]), int(q.attrs["zero_point"][0])
        attrs: dict = {"out_dtype": dt.value, "out_scale": scale, "out_zp": zp}
        if act is not None:
            lo, hi = (0.0, np.inf) if act.op == "Relu" else (act.attrs["min"], act.attrs["max"])
            bounds = qmath.quantize(np.array([lo, hi], np.float32), scale, zp, dt)
            attrs.update(act_min=int(bounds[0]), act_max=int(bounds[1]))
        return q, attrs, [node, q] + ([act] if act is not None else [])

    def replace(self, op: str, ins: list[Value | None], node: Node, fuse: bool = False,
                extra: dict | None = None) -> list[Node]:
        """``op`` on ``ins`` in place of ``node``'s sandwich; ``extra`` attributes besides the
        out_*/act_* ones."""
        q, out, used = self.result(node, fuse)
        new = self.emit(op, ins, {**(extra or {}), **out}, node.name, q.outputs)
        self.dead.update(id(n) for n in used)
        return [new]

    # -- weights and biases -------------------------------------------------------------
    def weight_nk(self, w: Value | None, transpose: bool) -> Value:
        """A constant [N, K] weight with per-tensor or per-N (axis 0) params, from a weight
        stored [N, K] (``transpose`` False) or [K, N]."""
        src = self.qsrc(w)
        q = src.type.quant
        assert q is not None
        if src.data is None or src.type.rank != 2:
            raise _NoMatch
        if not transpose:
            if q.per_channel and q.axis != 0:
                raise _NoMatch
            return src
        if q.per_channel and q.axis != 1:
            raise _NoMatch
        data = np.ascontiguousarray(src.data.T)
        qt = QuantParams(q.scale, q.zero_point, 0) if q.per_channel else q
        return self.typed_const(data, qt, f"{src.name}_t")

    def bias(self, b: Value | None, xq: Value, wq: Value, n: int,
             beta: float = 1.0) -> Value | None:
        """The i32 bias at scale s_x·s_w[c], zero point 0: the stored one when it already is,
        else re-derived from its float value."""
        if b is None:
            return None
        assert xq.type.quant is not None and wq.type.quant is not None
        s_x, wparams = xq.type.quant.scale[0], wq.type.quant
        want = s_x * np.broadcast_to(np.asarray(wparams.scale, np.float64), (n,))
        producer = self.producers.get(id(b))
        if producer is not None and producer.op == "Dequantize":
            src = self.qsrc(b)
            bq = src.type.quant
            assert bq is not None
            if src.data is None:
                raise _NoMatch
            have = np.broadcast_to(np.asarray(bq.scale, np.float64), (n,))
            if (beta == 1.0 and src.type.dtype is DType.i32 and src.type.shape == (n,)
                    and not any(bq.zero_point)
                    and np.all(np.abs(have - want) <= BIAS_RTOL * want)):
                return src
            fb = qmath.dequantize(src.data, bq.scale_array(), bq.zero_point_array(), bq.axis)
        elif b.data is not None and b.type.dtype.is_float:
            fb = b.data
        else:
            raise _NoMatch
        if fb.size != n:
            raise _NoMatch
        fb = fb.reshape(n).astype(np.float64) * beta
        data = quantize_bias(fb, s_x, wparams, n)
        params = QuantParams(tuple(map(float, want)), (0,) * n, 0)
        return self.typed_const(data, params, f"{b.name}_q")


# -- handlers: each returns the replacement nodes or raises _NoMatch -----------------------


def _conv(lw: _Lowering, node: Node) -> list[Node]:
    x, w = node.inputs[0], node.inputs[1]
    b = node.inputs[2] if len(node.inputs) > 2 else None
    xq, wq = lw.act_qsrc(x), lw.qsrc(w)
    if wq.data is None:
        raise _NoMatch
    bq = lw.bias(b, xq, wq, wq.type.shape[0])
    return lw.replace("QConv", [xq, wq, bq], node, fuse=True, extra=node.attrs)


def _gemm(lw: _Lowering, node: Node) -> list[Node]:
    a, w = node.inputs[0], node.inputs[1]
    c = node.inputs[2] if len(node.inputs) > 2 else None
    at = node.attrs
    if at["transA"] or at["alpha"] != 1.0:
        raise _NoMatch
    xq = lw.act_qsrc(a)
    wq = lw.weight_nk(w, transpose=not at["transB"])
    bq = lw.bias(c, xq, wq, wq.type.shape[0], float(at["beta"]))
    return lw.replace("QLinear", [xq, wq, bq], node, fuse=True)


def _matmul(lw: _Lowering, node: Node) -> list[Node]:
    a, b = node.inputs
    aq = lw.act_qsrc(a)
    bsrc = lw.qsrc(b)
    if bsrc.data is not None and bsrc.type.rank == 2 and aq.data is None:
        wq = lw.weight_nk(b, transpose=True)
        return lw.replace("QLinear", [aq, wq], node, fuse=True)
    return lw.replace("QMatMul", [aq, lw.act_qsrc(b)], node)


def _binary(op: str, fuse: bool) -> Callable[[_Lowering, Node], list[Node]]:
    def handler(lw: _Lowering, node: Node) -> list[Node]:
        a, b = node.inputs
        return lw.replace(op, [lw.act_qsrc(a), lw.act_qsrc(b)], node, fuse=fuse)

    return handler


def _pool(op: str) -> Callable[[_Lowering, Node], list[Node]]:
    def handler(lw: _Lowering, node: Node) -> list[Node]:
        return lw.replace(op, [lw.act_qsrc(node.inputs[0])], node, extra=node.attrs)

    return handler


def _lut(lw: _Lowering, node: Node) -> list[Node]:
    if len(node.inputs) != 1 or len(node.outputs) != 1:
        raise _NoMatch
    xq = lw.act_qsrc(node.inputs[0])
    qx = xq.type.quant
    assert qx is not None
    q, out, _ = lw.result(node, fuse=False)
    opdef, attrs = OPS[node.op], node.attrs

    def fn(v: np.ndarray) -> np.ndarray:
        return opdef.compute([v.astype(np.float32)], attrs)[0]

    table = qmath.make_lut(fn, qx.scale[0], qx.zero_point[0], xq.type.dtype, out["out_scale"],
                           out["out_zp"], DType(out["out_dtype"]))
    return lw.replace("QLut", [xq], node, extra={"table": [int(t) for t in table]})


def _move(lw: _Lowering, node: Node) -> list[Node]:
    """A data-movement op on the codes: every data operand and every result quantised alike."""
    data = [0] if node.op == "Gather" else [
        i for i, v in enumerate(node.inputs) if v is not None and v.data is None]
    if not data or (node.op == "Pad" and (len(node.inputs) > 1
                                          or node.attrs["mode"] != "constant")):
        raise _NoMatch
    if node.op == "Resize" and node.attrs["mode"] != "nearest":
        raise _NoMatch
    srcs = [lw.act_qsrc(node.inputs[i]) for i in data]
    t = srcs[0].type
    if any((s.type.dtype, s.type.quant) != (t.dtype, t.quant) for s in srcs):
        raise _NoMatch
    qs = [lw.quantizer(o) for o in node.outputs]
    if any((q.outputs[0].type.dtype, q.outputs[0].type.quant) != (t.dtype, t.quant)
           for q in qs):
        raise _NoMatch
    ins = list(node.inputs)
    for i, s in zip(data, srcs):
        ins[i] = s
    attrs = dict(node.attrs)
    if node.op == "Pad":
        assert t.quant is not None
        v = qmath.quantize(np.float32(attrs["value"]), t.quant.scale[0], t.quant.zero_point[0],
                           t.dtype)
        attrs["value"] = float(v)
    new = lw.emit(node.op, ins, attrs, node.name, [q.outputs[0] for q in qs])
    lw.dead.update([id(node), *(id(q) for q in qs)])
    return [new]


def _requantize_same(lw: _Lowering, node: Node) -> list[Node]:
    """Quantize(Dequantize(q)) with q's own params is q."""
    src = lw.qsrc(node.inputs[0])
    out = node.outputs[0]
    if src.type != out.type or id(out) in lw.outputs:
        raise _NoMatch
    lw.remap[id(out)] = src
    lw.dead.add(id(node))
    return []


_HANDLERS: dict[str, Callable[[_Lowering, Node], list[Node]]] = {
    "Conv": _conv,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Add": _binary("QAdd", fuse=True),
    "Mul": _binary("QMul", fuse=False),
    "AveragePool": _pool("QAveragePool"),
    "GlobalAveragePool": _pool("QGlobalAveragePool"),
}


@register_pass("lower-qdq", "QDQ model: DequantizeLinear→op→QuantizeLinear to integer Q-ops")
def lower_qdq(graph: Graph) -> Graph:
    lw = _Lowering(graph)
    lw.sweep(lw.boundary)
    lw.sweep(lw.sandwich)
    return graph
