"""dce: remove nodes whose results nothing reads, and constants nothing reads.

Graph outputs count as reads and graph inputs always stay (they are the graph's interface).
A control-flow node drops the captured outer values none of its bodies reads any more (their
inputs go from the bodies too): after folding inside a body, a capture may be dead.
IR ops have no side effects, so a node whose outputs are all dead is itself dead; one
backward sweep over the topological order finds every such node, chains included.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.passes.manager import Pass, register
from ir.graph import Graph, Node
from ir.ops.control import drop_unread_captures


def dce(graph: Graph) -> Graph:
    live = {id(v) for v in graph.outputs}
    kept: list[Node] = []
    for node in reversed(graph.nodes):
        if any(id(v) in live for v in node.outputs):
            drop_unread_captures(node)
            kept.append(node)
            live.update(id(v) for v in node.inputs if v is not None)
        else:
            for v in node.outputs:
                graph.release_name(v.name)
    graph.nodes = kept[::-1]
    graph.prune_constants()
    return graph


@register
@dataclass(frozen=True)
class DeadCodeElimination(Pass):
    name = "dce"
    description = "remove nodes and constants whose values nothing uses"
    in_regions = True

    def run(self, graph: Graph) -> Graph:
        return dce(graph)
