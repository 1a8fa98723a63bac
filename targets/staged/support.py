"""Which nodes run as staged kernels on an accelerator target, and as what kind of kernel.

A staged node is a layer the tiler plans and the generated code stages through the chip's
buffers: an op with the ``staged`` trait (ir/ops/registry.py: INT8 convolutions, dense and
grouped on the matrix unit, depthwise on the vector unit; fully connected layers and matrix
products; 2-D pooling; per-tensor quantised elementwise ops), when the node's operands fit the
kernel (constant weights, per-tensor activations, full-size streamed operands). Everything
else (reshapes, concatenations, float islands, Softmax, ...) runs as plain host C in plain
layout between explicit Relayout ops, outside the modelled schedule (the report lists it as a
host-side layer, with the reason :func:`host_reason` gives).
"""

from __future__ import annotations

from ir.graph import Node
from ir.ops.registry import OPS
from ir.types import DType

_Q8 = (DType.u8, DType.i8)
#: kinds whose activations are 4-D feature maps and take the target's blocked layout
FEATURE_MAP_KINDS = ("conv", "dwconv", "pool", "eltwise4d")


def _per_tensor(node: Node, kind: str | None) -> bool:
    """Activations quantised per tensor (a conv's or linear layer's weights and bias may be
    per channel)."""
    per_channel_ok = {id(node.w), id(node.b)} if kind in ("conv", "matmul") and \
        "w" in OPS[node.op].operands else set()
    for v in list(node.inputs) + list(node.outputs):
        if v is not None and v.type.quant is not None and v.type.quant.per_channel:
            if id(v) not in per_channel_ok:
                return False
    return True


def _const_or_absent(v: object) -> bool:
    return v is None or v.data is not None  # type: ignore[attr-defined]


def staged_kind(node: Node) -> str | None:
    """The staged kernel kind of ``node`` (conv, dwconv, linear, matmul, pool, eltwise4d,
    eltwise), or None when it runs as plain host C."""
    opdef = OPS.get(node.op)
    if opdef is None or not opdef.staged or not node.outputs or len(node.outputs) != 1:
        return None
    kind = opdef.tiled
    first = node.first_operand()  # the streamed activation
    if first is None or not _per_tensor(node, kind):
        return None
    x, y = first.type, node.outputs[0].type
    if kind == "conv":
        w = node.w
        if x.rank != 4 or w is None or w.data is None or not _const_or_absent(node.b):
            return None
        g = int(node.attrs["group"])
        cg = x.shape[1] // g
        return "dwconv" if g > 1 and cg == 1 and w.type.shape[0] == g else "conv"
    if kind == "matmul" and "w" in opdef.operands:  # a fully connected layer
        w = node.w
        ok = w is not None and w.data is not None and _const_or_absent(node.b)
        return "linear" if ok else None
    if kind == "matmul":  # a product of two activations
        b = node.b
        if b is None or x.rank < 2 or b.type.rank != x.rank or x.shape[:-2] != b.type.shape[:-2]:
            return None
        return "matmul"
    if kind == "pool":
        if x.rank != 4 or y.dtype not in _Q8 or node.attrs.get("indices"):
            return None
        return "pool"
    if kind == "eltwise":
        ins = [v for v in node.inputs if v is not None]
        if any(v.data is not None or v.type.shape != y.shape for v in ins) or not y.shape:
            return None
        return "eltwise4d" if y.rank == 4 else "eltwise"
    return None


def stays_plain(node: Node, graph_inputs: set[int], graph_outputs: set[int]) -> bool:
    """An element-wise layer that narrows the graph's own inputs (a Quantize of an f32 image
    to 8-bit codes), or widens into the graph's outputs (a Dequantize of a score map), runs
    in plain layout: the conversion from or to the chip's blocked layout then moves its
    narrow side, a fraction of the bytes, and a 3-channel image is padded to the channel
    block on the narrow side only. ``graph_inputs`` / ``graph_outputs``: the ids of the
    graph's input and output values."""
    if staged_kind(node) != "eltwise4d":
        return False
    ins = [v for v in node.inputs if v is not None and v.data is None]
    if not ins:
        return False
    widest = max(v.type.dtype.np.itemsize for v in ins)
    out = node.outputs[0]
    narrows = all(id(v) in graph_inputs for v in ins) and out.type.dtype.np.itemsize < widest
    widens = id(out) in graph_outputs and out.type.dtype.np.itemsize > widest
    return narrows or widens


def host_reason(node: Node) -> str:
    """Why ``node`` runs as host C on an accelerator target rather than staged on the chip
    (the report's "where" of a layer the tile pass did not plan)."""
    if node.attrs.get("fused") == "epilogue":
        return "fused: runs in the epilogue of the staged layer before it"
    if node.regions:
        return "control flow: host C around its bodies"
    if node.op == "Relayout":
        return "layout conversion between staged and host layers"
    if staged_kind(node) is not None:
        return "no tile plan for this layer"
    opdef = OPS.get(node.op)
    if opdef is not None and opdef.staged:
        return "operands do not fit a staged kernel"
    if any(v is not None and v.type.dtype.is_float
           for v in list(node.inputs) + list(node.outputs)):
        return "float island: staged kernels are INT8"
    return "op not staged"
