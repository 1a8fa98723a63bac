"""Element-wise layers run in the output stage (epilogue) of the product before them.

On an accelerator the chip's graph compiler keeps a convolution's or matrix product's output
tile in the vector unit's buffer and applies the element-wise layer that reads it (a residual
QAdd, a QMul, a table, a requantisation) there, before anything goes back to memory: Ascend's
UB fusion, the MLU's fused kernels. The pass fuse-eltwise (compiler/passes/fuse_eltwise.py)
plans that with two annotations, which describe how the target runs the pair, never what it
computes (the interpreter runs both layers as before):

- the product P carries ``epilogue="<operand>"``: the operand of the element-wise layer E that
  P's result feeds;
- E carries ``fused="epilogue"`` and follows P immediately in graph order.

P's staged kernel then loads E's other operands tile by tile into the vector buffer, runs E's
own code on each finished output tile there and writes E's result; P's result never reaches
memory, and E launches no kernel of its own. This module answers, for any node, which layer
it is fused with, and decides whether a pair can be fused.
"""

from __future__ import annotations

from ir.graph import Graph, Node, Value
from ir.ops.qcommon import ACT_DTYPES, add_multipliers
from targets.profiles.schema import Profile
from targets.staged.support import staged_kind

#: staged kinds whose finished output tiles an epilogue can take (they have accumulators)
PRODUCER_KINDS = ("conv", "dwconv", "linear", "matmul")
CONSUMER_KINDS = ("eltwise4d", "eltwise")


def fused_consumer(graph: Graph, node: Node) -> Node | None:
    """The element-wise layer running in ``node``'s epilogue, or None."""
    if not node.attrs.get("epilogue") or len(node.outputs) != 1:
        return None
    readers = graph.users().get(id(node.outputs[0]), [])
    return readers[0] if len(readers) == 1 and readers[0].attrs.get("fused") else None


def fused_producer(graph: Graph, node: Node) -> Node | None:
    """The product whose epilogue runs ``node``, or None."""
    if node.attrs.get("fused") != "epilogue":
        return None
    prods = graph.producers()
    for v in node.inputs:
        p = prods.get(id(v)) if v is not None else None
        if p is not None and p.attrs.get("epilogue"):
            return p
    return None


def epilogue_operands(consumer: Node, product: Node) -> list[Value]:
    """The consumer's streamed operands other than the product's result, in operand order:
    what the product's epilogue loads tile by tile."""
    y = product.outputs[0]
    return [v for v in consumer.inputs if v is not None and v is not y]


def why_not_fused(graph: Graph, product: Node, consumer: Node, prof: Profile,
                  users: dict[int, list[Node]] | None = None,
                  producers: dict[int, Node] | None = None) -> str | None:
    """None when ``consumer`` can run in ``product``'s epilogue on ``prof``; else why not.
    ``users`` / ``producers``: the graph's maps, when the caller has them."""
    if prof.buffer_for(1, "vector") is None:
        return f"target {prof.name} has no vector buffer at level 1"
    if staged_kind(product) not in PRODUCER_KINDS or len(product.outputs) != 1:
        return "the producer is not a staged product"
    if staged_kind(consumer) not in CONSUMER_KINDS or len(consumer.outputs) != 1:
        return "the consumer is not a staged element-wise layer"
    if product.attrs.get("fused") or consumer.attrs.get("fused") or \
            consumer.attrs.get("epilogue"):
        return "already part of another fusion"
    y = product.outputs[0]
    if any(o is y for o in graph.outputs) or sum(v is y for v in consumer.inputs) != 1:
        return "the product's result is a graph output or read twice"
    users = graph.users() if users is None else users
    if [id(n) for n in users.get(id(y), [])] != [id(consumer)]:
        return "the product's result has other readers"
    out = consumer.outputs[0]
    if out.type.shape != y.type.shape:
        return "the element-wise layer changes the shape"
    layout = str(product.attrs.get("layout", ""))
    prods = graph.producers() if producers is None else producers
    for v in [*epilogue_operands(consumer, product), out]:
        owner = prods.get(id(v)) if v is not out else consumer
        if v.type.shape != y.type.shape or v.type.dtype.np.itemsize != 1:
            return "an operand is not an 8-bit tensor of the product's shape"
        stored = str(owner.attrs.get("layout", "")) if owner is not None else ""
        if stored != layout:
            return "an operand is stored in another layout"
    return None


def residual_fusable(add: Node) -> bool:
    """Whether a QAdd takes the host's same-shape residual form (qnnc_qadd_n), which a
    QConv's epilogue can run (compiler/passes/fuse_epilogue.py): both operands and the result
    8-bit, per tensor, of one shape, every multiplier below 1."""
    ins = [v for v in add.inputs if v is not None]
    if add.op != "QAdd" or len(ins) != 2 or len(add.outputs) != 1:
        return False
    types = [v.type for v in ins] + [add.outputs[0].type]
    if any(t.shape != types[2].shape or t.dtype not in ACT_DTYPES or t.quant is None
           or t.quant.per_channel for t in types):
        return False
    return all(int(shift[0]) >= 0 for _, shift in add_multipliers(*types))
