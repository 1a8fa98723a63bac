"""Which nodes run as staged kernels on an accelerator target, and as what kind of kernel.

A staged node is a layer the tiler plans and the generated code stages through the chip's
buffers: INT8 convolutions (dense and grouped on the matrix unit, depthwise on the vector
unit), fully connected layers and matrix products, 2-D pooling, and per-tensor quantised
elementwise ops whose streamed operands are all full-size. Everything else (reshapes,
concatenations, float islands, Softmax, ...) runs as plain host C in plain layout between
explicit Relayout ops, outside the modelled schedule (the report lists it as untiled).
"""

from __future__ import annotations

from ir.graph import Node
from ir.types import DType

_Q8 = (DType.u8, DType.i8)
POOLS = ("MaxPool", "GlobalMaxPool", "QAveragePool", "QGlobalAveragePool")
ELEMENTWISE = ("QAdd", "QMul", "QLut", "Requantize", "Quantize", "Dequantize")
#: kinds whose activations are 4-D feature maps and take the target's blocked layout
FEATURE_MAP_KINDS = ("conv", "dwconv", "pool", "eltwise4d")


def _per_tensor(node: Node) -> bool:
    for v in list(node.inputs) + list(node.outputs):
        if v is not None and v.type.quant is not None and v.type.quant.per_channel:
            if not (node.op in ("QConv", "QLinear") and v in node.inputs[1:3]):
                return False
    return True


def staged_kind(node: Node) -> str | None:
    """The staged kernel kind of ``node`` (conv, dwconv, linear, matmul, pool, eltwise4d,
    eltwise), or None when it runs as plain host C."""
    if not node.outputs or len(node.outputs) != 1 or not _per_tensor(node):
        return None
    y = node.outputs[0].type
    x = node.inputs[0].type if node.inputs and node.inputs[0] is not None else None
    if x is None:
        return None
    if node.op == "QConv":
        w = node.inputs[1]
        if x.rank != 4 or w is None or w.data is None:
            return None
        if len(node.inputs) > 2 and node.inputs[2] is not None and node.inputs[2].data is None:
            return None
        g = int(node.attrs["group"])
        cg = x.shape[1] // g
        return "dwconv" if g > 1 and cg == 1 and w.type.shape[0] == g else "conv"
    if node.op == "QLinear":
        w = node.inputs[1]
        ok = w is not None and w.data is not None and (
            len(node.inputs) < 3 or node.inputs[2] is None or node.inputs[2].data is not None)
        return "linear" if ok else None
    if node.op == "QMatMul":
        w = node.inputs[1]
        if w is None or x.rank < 2 or w.type.rank != x.rank or x.shape[:-2] != w.type.shape[:-2]:
            return None
        return "matmul"
    if node.op in POOLS:
        if x.rank != 4 or y.dtype not in _Q8:
            return None
        if node.op == "MaxPool" and node.attrs.get("indices"):
            return None
        return "pool"
    if node.op in ELEMENTWISE:
        ins = [v for v in node.inputs if v is not None]
        if any(v.data is not None or v.type.shape != y.shape for v in ins) or not y.shape:
            return None
        return "eltwise4d" if y.rank == 4 else "eltwise"
    return None
