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
   fuse one) is replaced by its integer form, which takes over the Quantize's result. The
   integer form is the op's quantised form (ir/qforms.py), the same the calibration
   quantiser applies: Conv → QConv, Gemm / MatMul with a constant weight → QLinear, MatMul →
   QMatMul, Add → QAdd, Mul → QMul, AveragePool / GlobalAveragePool → QAveragePool /
   QGlobalAveragePool, unary non-linearities → QLut (the table is the op's own reference
   compute on all 256 codes, so it equals the float sandwich exactly), and data-movement ops
   (MaxPool, Reshape, Transpose, Concat, ...) whose Quantize repeats their input's params run
   on the codes unchanged (exact: quantize(dequantize(q)) == q). This driver
   (:class:`QdqContext`) takes every parameter from the model: it never rescales (a Concat of
   differently quantised inputs stays float) and never derives weights. A Quantize of a
   Dequantize with the same params is the identity and goes too.

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

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from compiler.passes.dce import dce
from compiler.passes.manager import Pass, register
from compiler.quant.quantize import provenance
from ir import qmath
from ir.build import make_node
from ir.graph import Graph, Node, Value
from ir.ops.qcommon import ACT_DTYPES
from ir.ops.registry import OPS, OpError
from ir.qforms import NoQuantForm, OutParams
from ir.types import DType, QuantParams, TensorType

STORE_DTYPES = (DType.u8, DType.i8, DType.u16, DType.i16)
#: a stored bias scale agrees with s_x·s_w[c] when within this relative distance (a few
#: float32 roundings)
BIAS_RTOL = 2.0**-21


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


class QdqContext:
    """The QDQ lowering: two sweeps over the graph, the second driving every node's quantised
    form (ir/qforms.py) with the parameters the model's QuantizeLinear/DequantizeLinear give."""

    def __init__(self, graph: Graph) -> None:
        self.g = graph
        self.remap: dict[int, Value] = {}  # id(replaced value) -> its replacement
        self.nodes: list[Node] = []  # the rebuilt node list
        self.dead: set[int] = set()  # ids of nodes a rewrite made redundant
        self.pending: list[Node] = []  # the nodes of the rewrite under way

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

    def replace_with(self, op: str, ins: Sequence[Value | None], attrs: dict, name: str,
                     replaces: list[Value], same_quant: bool = True,
                     sources: Sequence[tuple[str, str]] = ()) -> Node:
        """A node computing ``replaces`` (same types; with ``same_quant`` False it may add
        quant params), taking over their names."""
        try:
            node = make_node(self.g, op, list(ins), attrs, name=name, append=False,
                             out_names=[v.name for v in replaces], sources=sources)
        except OpError:
            raise NoQuantForm from None

        def key(t: TensorType) -> tuple:
            return (t.shape, t.dtype, t.quant) if same_quant else (t.shape, t.dtype)

        if [key(v.type) for v in node.outputs] != [key(v.type) for v in replaces]:
            for v in node.outputs:
                self.g.release_name(v.name)
            raise NoQuantForm
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
        """The typed integer tensor that ``v`` dequantises, else NoQuantForm."""
        p = None if v is None else self.producers.get(id(v))
        if p is None or p.op != "Dequantize":
            raise NoQuantForm
        src = p.x
        assert src is not None
        return src

    def quantizer(self, v: Value) -> Node:
        """The per-tensor 8-bit Quantize that is ``v``'s only reader."""
        q = self.sole_user(v)
        if q is None or q.op != "Quantize" or len(q.attrs["scale"]) != 1:
            raise NoQuantForm
        if DType(q.attrs["dtype"]) not in ACT_DTYPES:
            raise NoQuantForm
        return q

    # -- sweep 1: boundaries ------------------------------------------------------------
    def boundary(self, node: Node) -> list[Node] | None:
        if node.op == "QuantizeLinear":
            return self._quantize(node)
        if node.op == "DequantizeLinear":
            return self._dequantize(node)
        return None

    def _quantize(self, node: Node) -> list[Node] | None:
        x, scale, zp = node.x, node.scale, node.zero_point
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
            return [self.replace_with("Quantize", [x], attrs, node.name, node.outputs, False)]
        except NoQuantForm:
            return None

    def _dequantize(self, node: Node) -> list[Node] | None:
        x, scale, zp = node.x, node.scale, node.zero_point
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
            return [*out, self.replace_with("Dequantize", [src], {}, node.name, node.outputs,
                                            False)]
        except NoQuantForm:
            return None

    # -- sweep 2: sandwiches ------------------------------------------------------------
    def sandwich(self, node: Node) -> list[Node] | None:
        if node.op == "Quantize":
            return self._requantize_same(node)
        form = OPS[node.op].quantized
        if form is None:
            return None
        self.pending = []
        try:
            form(self, node)
        except NoQuantForm:
            return None
        return self.pending

    def _requantize_same(self, node: Node) -> list[Node] | None:
        """Quantize(Dequantize(q)) with q's own params is q."""
        try:
            src = self.qsrc(node.x)
        except NoQuantForm:
            return None
        out = node.outputs[0]
        if src.type != out.type or id(out) in self.outputs:
            return None
        self.remap[id(out)] = src
        self.dead.add(id(node))
        return []

    # -- QuantContext -------------------------------------------------------------------
    def skipped(self, node: Node) -> bool:
        return False

    def act(self, v: Value | None) -> Value:
        """qsrc for an activation operand: per tensor, u8 or i8."""
        src = self.qsrc(v)
        q = src.type.quant
        if src.type.dtype not in ACT_DTYPES or q is None or q.per_channel:
            raise NoQuantForm
        return src

    def is_constant(self, v: Value | None) -> bool:
        if v is None:
            return False
        if v.data is not None:
            return True
        p = self.producers.get(id(v))
        return p is not None and p.op == "Dequantize" and p.x is not None and \
            p.x.data is not None

    def constant(self, v: Value | None) -> np.ndarray | None:
        if v is None:
            return None
        if v.data is not None:
            return v.data
        if not self.is_constant(v):
            return None
        src = self.qsrc(v)
        q = src.type.quant
        assert q is not None and src.data is not None
        return qmath.dequantize(src.data, q.scale_array(), q.zero_point_array(), q.axis)

    def other(self, v: Value | None) -> Value | None:
        return v

    def sole_reader(self, v: Value) -> Node | None:
        return self.sole_user(v)

    def out_params(self, v: Value) -> OutParams:
        q = self.quantizer(v)
        return OutParams(DType(q.attrs["dtype"]), float(q.attrs["scale"][0]),
                         int(q.attrs["zero_point"][0]))

    def rescale(self, v: Value, to: OutParams, node: Node) -> Value:
        raise NoQuantForm  # the model rounds there in float: keep its own arithmetic

    def weights(self, node: Node, x: Value, xq: Value, w: Value | np.ndarray,
                b: Value | np.ndarray | None, *, transpose: bool = False, alpha: float = 1.0,
                beta: float = 1.0, groups: int = 1) -> tuple[Value, Value | None]:
        if not isinstance(w, Value) or isinstance(b, np.ndarray) or alpha != 1.0:
            raise NoQuantForm  # the model's own integer weights, as stored
        wq = self._weight(w, transpose)
        return wq, self._bias(b, xq, wq, wq.type.shape[0], beta)

    def _weight(self, w: Value, transpose: bool) -> Value:
        """The model's constant integer weight; a [K, N] one (``transpose``) as [N, K] with
        per-N (axis 0) params."""
        src = self.qsrc(w)
        q = src.type.quant
        assert q is not None
        if src.data is None:
            raise NoQuantForm
        if not transpose:
            return src
        if src.type.rank != 2 or (q.per_channel and q.axis != 1):
            raise NoQuantForm
        data = np.ascontiguousarray(src.data.T)
        qt = QuantParams(q.scale, q.zero_point, 0) if q.per_channel else q
        return self.typed_const(data, qt, f"{src.name}_t")

    def _bias(self, b: Value | None, xq: Value, wq: Value, n: int,
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
                raise NoQuantForm
            have = np.broadcast_to(np.asarray(bq.scale, np.float64), (n,))
            if (beta == 1.0 and src.type.dtype is DType.i32 and src.type.shape == (n,)
                    and not any(bq.zero_point)
                    and np.all(np.abs(have - want) <= BIAS_RTOL * want)):
                return src
            fb = qmath.dequantize(src.data, bq.scale_array(), bq.zero_point_array(), bq.axis)
        elif b.data is not None and b.type.dtype.is_float:
            fb = b.data
        else:
            raise NoQuantForm
        if fb.size != n:
            raise NoQuantForm
        data = qmath.quantize_bias(fb.reshape(n).astype(np.float64) * beta, want)
        params = QuantParams(tuple(map(float, want)), (0,) * n, 0)
        return self.typed_const(data, params, f"{b.name}_q")

    def emit(self, op: str, ins: Sequence[Value | None], attrs: dict[str, object],
             covers: Sequence[Node | None], results: Sequence[Value]) -> list[Value]:
        node = covers[0]
        assert node is not None
        qs = [self.quantizer(r) for r in results]
        new = self.replace_with(op, ins, attrs, node.name, [q.outputs[0] for q in qs],
                                sources=provenance(op, node.name, covers))
        self.dead.update(id(n) for n in [*covers, *qs] if n is not None)
        self.pending.append(new)
        return list(new.outputs)


def lower_qdq(graph: Graph) -> Graph:
    lw = QdqContext(graph)
    lw.sweep(lw.boundary)
    lw.sweep(lw.sandwich)
    return graph


@register
@dataclass(frozen=True)
class LowerQdq(Pass):
    name = "lower-qdq"
    description = "QDQ model: DequantizeLinear→op→QuantizeLinear to integer Q-ops"

    def run(self, graph: Graph) -> Graph:
        return lower_qdq(graph)
