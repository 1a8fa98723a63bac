"""Counting work per layer: multiply-accumulates (MACs), floating-point operations (FLOPs)
and parameters, from the static types of an IR graph.

The rules are the ops' own (their ``flops`` trait, ir/ops/cost.py, which states them); this
module applies them per node and sums them per graph, for `qnnc inspect` and the reports.
**Params** of a node are the elements of its constant inputs (weights, biases, and any folded
constants it reads).

Example::

    >>> import numpy as np
    >>> from ir.graph import Graph, Node
    >>> from ir.types import DType, TensorType
    >>> g = Graph()
    >>> x = g.add_input("x", TensorType((1, 3, 8, 8), DType.f32))
    >>> w = g.add_const(np.zeros((4, 3, 3, 3), np.float32), "w")
    >>> y = g.new_value(TensorType((1, 4, 6, 6), DType.f32), "y")
    >>> cost = node_cost(Node("Conv", [x, w], [y], {}, "conv"))
    >>> cost.macs, cost.flops, cost.params  # 144 outputs x 27 taps
    (3888, 7776, 108)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ir.graph import Graph, Node
from ir.ops.cost import rule_of
from ir.types import TensorType


@dataclass(frozen=True)
class LayerCost:
    """The cost of one IR node."""

    name: str
    op: str
    outputs: tuple[TensorType, ...]
    params: int
    macs: int
    flops: int


@dataclass
class Totals:
    """Whole-graph figures; ``params`` counts each constant once even if shared."""

    params: int = 0
    macs: int = 0
    flops: int = 0
    op_counts: dict[str, int] = field(default_factory=dict)


def node_params(node: Node) -> int:
    """Elements of the node's constant inputs."""
    return sum(v.type.size for v in node.inputs if v is not None and v.is_const)


def node_cost(node: Node) -> LayerCost:
    """MACs, FLOPs and parameters of one node (see the module docstring for the rules)."""
    macs, flops = rule_of(node)(node)
    return LayerCost(
        name=node.name or (node.outputs[0].name if node.outputs else node.op),
        op=node.op,
        outputs=tuple(v.type for v in node.outputs),
        params=node_params(node),
        macs=int(macs),
        flops=int(flops),
    )


def graph_costs(graph: Graph) -> list[LayerCost]:
    """One :class:`LayerCost` per node, in graph order."""
    return [node_cost(n) for n in graph.nodes]


def graph_totals(graph: Graph, costs: list[LayerCost] | None = None) -> Totals:
    """Sum of the per-node figures; each constant's parameters count once."""
    costs = graph_costs(graph) if costs is None else costs
    seen: set[int] = set()
    params = 0
    for n in graph.nodes:
        for v in n.inputs:
            if v is not None and v.is_const and id(v) not in seen:
                seen.add(id(v))
                params += v.type.size
    return Totals(
        params=params,
        macs=sum(c.macs for c in costs),
        flops=sum(c.flops for c in costs),
        op_counts=dict(sorted(graph.op_counts().items())),
    )


def human(n: float) -> str:
    """A short human-readable count: 1234567 -> '1.23M'."""
    for unit, div in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return str(int(n)) if float(n).is_integer() else f"{n:.2f}"

