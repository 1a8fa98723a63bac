"""fuse-epilogue: fold unary 8-bit work after a quantised product into its epilogue table.

A QConv, QLinear or QMatMul requantises its accumulators to 8-bit codes. Any op after it
that maps each 8-bit code to one 8-bit code on its own — a QLut (SiLU, Sigmoid, HardSwish,
GELU, Tanh as tables), a Requantize (a Concat input brought to the shared scale), or any
other one-operand element-wise op on quantised tensors — is a function of 256 inputs. The
rule is one, whatever the op: evaluate the consumer's reference semantics (the interpreter's)
on all 256 codes, and give the product that table as its ``lut`` operand (a u8/i8[256]
constant typed as the consumer's result), and the consumer's result as its own. A product
that already has a table composes the new one after it, so a chain folds link by link.

The result is exact: the product computes ``lut[clamp(requant(acc))]``, the very value the
two nodes computed (bit for bit, by construction). It fires only where the product's result
has no other reader and is not a graph output (the intermediate codes disappear). Code
generators apply the table to each tile of results while it is in registers or L1, so the
consumer's separate pass over memory goes away.

A residual connection is two-operand work and no table: a QAdd of a QConv's result (its only
reader) and another tensor of the same shape runs in the convolution's epilogue instead,
planned with the annotations the accelerator targets use (targets/fusion.py): the QConv
carries ``epilogue="<operand>"``, the QAdd ``fused="epilogue"``, and the QConv moves to just
before the QAdd so that the other operand is computed first. Nothing about the values
changes (the interpreter runs both layers as before); the host C adds each finished tile of
rows to the residual while they are in L1, and the QAdd's own pass goes away.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.passes.manager import Pass, register
from ir.graph import Graph, Node, Value, sources_of
from ir.ops.qcommon import ACT_DTYPES
from ir.ops.registry import get_op
from ir.types import TensorType
from targets.fusion import residual_fusable

PRODUCTS = ("QConv", "QLinear", "QMatMul")
#: one-input ops that keep the codes and change only their type (Retype: a Mul by a positive
#: constant): the identity map into a new type, so a chain folds through them
CODE_VIEWS = ("Retype",)


def _per_tensor_8bit(t: TensorType) -> bool:
    return t.dtype in ACT_DTYPES and t.quant is not None and not t.quant.per_channel


def _code_map(node: Node, codes_type: TensorType) -> np.ndarray | None:
    """The consumer's results on every 8-bit code of its input (in code order), or None
    when it is not a one-input element-wise map from 8-bit codes to 8-bit codes."""
    op = get_op(node.op)
    if (op.tiled != "eltwise" and node.op not in CODE_VIEWS) or len(node.inputs) != 1 \
            or node.regions:
        return None
    (x,), (y,) = node.inputs, node.outputs
    if x is None or len(node.outputs) != 1 or y.type.shape != x.type.shape:
        return None
    if not (_per_tensor_8bit(x.type) and _per_tensor_8bit(y.type)):
        return None
    lo = np.iinfo(x.type.dtype.np).min
    codes = np.arange(lo, lo + 256).astype(x.type.dtype.np)
    out_t = TensorType((256,), y.type.dtype, y.type.quant)
    (table,) = op.evaluate([codes], node.attrs, [codes_type], [out_t], ())
    return np.asarray(table)


def _fuse(graph: Graph, product: Node, consumer: Node) -> bool:
    mid: Value = product.outputs[0]
    table = _code_map(consumer, TensorType((256,), mid.type.dtype, mid.type.quant))
    if table is None:
        return False
    y = consumer.outputs[0]
    old = product.operand("lut")
    if old is not None:  # compose: the new map after the one already there
        assert old.data is not None
        lo = int(np.iinfo(mid.type.dtype.np).min)
        table = table[old.data.astype(np.int64) - lo]
    lut = graph.add_const(table.astype(y.type.dtype.np), "lut")
    lut.type = TensorType((256,), y.type.dtype, y.type.quant)
    product.set_operand("lut", lut)
    product.sources = sources_of(product, consumer)
    product.outputs = [y]
    return True


def fuse_epilogue(graph: Graph) -> Graph:
    users = graph.users()
    outputs = {id(v) for v in graph.outputs}
    dropped: set[int] = set()
    for node in graph.nodes:
        if node.op not in PRODUCTS or len(node.outputs) != 1:
            continue
        while True:  # follow the chain: each fused consumer's reader may fuse next
            mid = node.outputs[0]
            readers = users.get(id(mid), [])
            if id(mid) in outputs or len(readers) != 1 or readers[0].regions:
                break
            consumer = readers[0]
            if consumer.op in PRODUCTS or not _fuse(graph, node, consumer):
                break
            dropped.add(id(consumer))
            graph.release_name(mid.name)
    graph.nodes = [n for n in graph.nodes if id(n) not in dropped]
    graph.prune_constants()  # tables a longer chain replaced
    return mark_residuals(graph)


def mark_residuals(graph: Graph) -> Graph:
    """Annotate every QConv -> QAdd pair whose add runs in the convolution's epilogue (the
    module docstring), moving the QConv to just before its QAdd."""
    users = graph.users()
    outputs = {id(v) for v in graph.outputs}
    for conv in list(graph.nodes):
        if conv.op != "QConv" or len(conv.outputs) != 1 or conv.attrs.get("epilogue") \
                or conv.attrs.get("fused"):
            continue
        y = conv.outputs[0]
        readers = users.get(id(y), [])
        if id(y) in outputs or len(readers) != 1:
            continue
        add = readers[0]
        if add.attrs.get("fused") or add.attrs.get("epilogue") or not residual_fusable(add) \
                or sum(v is y for v in add.inputs) != 1:
            continue
        k = next(i for i, v in enumerate(add.inputs) if v is y)
        conv.attrs["epilogue"] = get_op("QAdd").operands[k]
        add.attrs["fused"] = "epilogue"
        graph.nodes.remove(conv)
        graph.nodes.insert(graph.nodes.index(add), conv)
    return graph


@register
@dataclass(frozen=True)
class FuseEpilogue(Pass):
    name = "fuse-epilogue"
    description = ("fold one-input 8-bit element-wise ops (QLut, Requantize) after a QConv, "
                   "QLinear or QMatMul into the product's epilogue table, and run a residual "
                   "QAdd in the QConv's epilogue")

    def run(self, graph: Graph) -> Graph:
        return fuse_epilogue(graph)
