"""fold-constants: evaluate, at compile time, every node whose inputs are all constants.

The node's op ``compute`` (the same reference the interpreter runs) gives the values, so
folding cannot change results. Each output becomes a constant of the same name and type
(quantisation parameters included), so graph outputs keep their names; the node goes away.
Constants that only the folded node read stay behind for dce. An op with a data-dependent
extent (ir/ops/dynamic.py) stays: its outputs' types are bounds, not the sizes it computes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.passes.manager import Pass, PassError, register
from ir.graph import Graph, Node, Value
from ir.ops.registry import get_op


def fold_constants(graph: Graph) -> Graph:
    folded: dict[int, Value] = {}  # id(node output) -> the constant that replaces it
    kept: list[Node] = []
    for node in graph.nodes:
        node.inputs = [None if v is None else folded.get(id(v), v) for v in node.inputs]
        if any(v is not None and not v.is_const for v in node.inputs) or \
                get_op(node.op).counted is not None:  # its bound shape is not its size
            kept.append(node)
            continue
        for old, data in zip(node.outputs, _evaluate(node)):
            folded[id(old)] = _constant_like(graph, old, data)
    graph.nodes = kept
    graph.outputs = [folded.get(id(v), v) for v in graph.outputs]
    return graph


def _evaluate(node: Node) -> list[np.ndarray]:
    args = [None if v is None else v.data for v in node.inputs]
    try:
        with np.errstate(all="ignore"):  # inf/nan results are what the op computes at run time
            results = [np.asarray(r) for r in get_op(node.op).evaluate(
                args, node.attrs, [None if v is None else v.type for v in node.inputs],
                [v.type for v in node.outputs], node.regions)]
    except Exception as e:  # noqa: BLE001 - reported with the node named
        raise PassError(f"fold-constants: node {node.name or node.op!r} ({node.op}) failed "
                        f"on its constant inputs: {e}") from e
    for v, r in zip(node.outputs, results):
        if r.dtype != v.type.dtype.np or tuple(r.shape) != v.type.shape:
            raise PassError(f"fold-constants: node {node.name or node.op!r} ({node.op}) "
                            f"computed {r.dtype}{list(r.shape)} for %{v.name} of type {v.type}")
    if len(results) != len(node.outputs):
        raise PassError(f"fold-constants: node {node.name or node.op!r} ({node.op}) computed "
                        f"{len(results)} results for {len(node.outputs)} outputs")
    return results


def _constant_like(graph: Graph, old: Value, data: np.ndarray) -> Value:
    """A constant that takes over ``old``'s name and full type."""
    graph.release_name(old.name)
    c = graph.add_const(data, old.name)
    assert c.name == old.name
    c.type = old.type  # keeps quantisation parameters, which TensorType.of cannot know
    return c


@register
@dataclass(frozen=True)
class FoldConstants(Pass):
    name = "fold-constants"
    description = "evaluate nodes whose inputs are all constants"
    in_regions = True

    def run(self, graph: Graph) -> Graph:
        return fold_constants(graph)
