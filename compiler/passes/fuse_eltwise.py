"""fuse-eltwise: run each element-wise layer after a staged product in the product's epilogue.

On an accelerator target, a staged convolution or matrix product whose result only one
staged element-wise layer reads (a residual QAdd, a QMul, a table, a requantisation) keeps
that result on chip: its output tiles go to the vector buffer, the element-wise layer's other
operands are loaded beside them, its own code runs there, and only its result goes back to
memory (targets/fusion.py says when a pair qualifies). The pass annotates the pair —
``epilogue="<operand>"`` on the product, ``fused="epilogue"`` on the element-wise layer — and
moves the product down to just before the layer it feeds, so that every other operand of
the pair is computed before the fused kernel runs. Nothing about what the graph computes
changes: the interpreter runs both layers as before; the tile pass then plans the product
with the epilogue's tiles in its buffers, the cost model drops the result's round trip
through memory and the second kernel's launch, and the staged C counts the saved traffic.
Run it after layout (it needs the layouts) and before keep-in-l2 and tile.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.passes.manager import Pass, register
from compiler.passes.target import require_target, target_option
from ir.graph import Graph, Node
from ir.ops.registry import get_op
from targets.fusion import why_not_fused
from targets.profiles import Profile


def _operand_name(consumer: Node, k: int) -> str:
    names = get_op(consumer.op).operands
    return names[min(k, len(names) - 1)]


@register
@dataclass(frozen=True)
class FuseEltwise(Pass):
    name = "fuse-eltwise"
    description = ("run an element-wise layer in the epilogue of the staged product whose "
                   "result it reads (accelerator targets)")
    target: Profile | None = target_option()

    def run(self, graph: Graph) -> Graph:
        prof = require_target(self.name, self.target)
        users = graph.users()  # moving a node changes no value's readers or writer
        producers = graph.producers()
        for product in list(graph.nodes):
            readers = users.get(id(product.outputs[0]), []) if len(product.outputs) == 1 else []
            if len(readers) != 1:
                continue
            if why_not_fused(graph, product, readers[0], prof, users, producers) is not None:
                continue
            consumer = readers[0]
            k = next(i for i, v in enumerate(consumer.inputs) if v is product.outputs[0])
            product.attrs["epilogue"] = _operand_name(consumer, k)
            consumer.attrs["fused"] = "epilogue"
            graph.nodes.remove(product)
            graph.nodes.insert(graph.nodes.index(consumer), product)
        return graph
