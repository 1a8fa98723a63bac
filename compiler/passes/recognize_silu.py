"""recognize-silu: x * Sigmoid(x) (either operand order) becomes one SiLU node.

Why: the quantiser turns a unary op into one 256-entry lookup table, exact on every target;
as a Mul of two quantised tensors it would cost a table, a requantised product and the error of
both. The Sigmoid's output must be read only by that Mul, and any scalar constants in the
product must multiply to 1 (within patterns.RTOL). SiLU evaluates x * sigmoid(x) in float64
and rounds once, so it differs from the chain by float rounding only.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.passes.manager import Pass, register
from compiler.passes.patterns import Match, Matcher, close, rewrite
from ir.graph import Graph, Node


def recognize_silu(graph: Graph) -> Graph:
    return rewrite(graph, _match)


def _match(m: Matcher, root: Node) -> Match | None:
    flat = m.product(root)
    if flat is None:
        return None
    coef, factors, nodes = flat
    dtype = root.outputs[0].type.dtype
    if len(factors) != 2 or not dtype.is_float or not close(coef, 1.0, dtype):
        return None
    for x, s in (factors, factors[::-1]):
        sigmoid = m.single_use(s, ("Sigmoid",))
        if sigmoid is not None and sigmoid.x is x:
            return Match("SiLU", [x], {}, nodes + [sigmoid])
    return None


@register
@dataclass(frozen=True)
class RecognizeSilu(Pass):
    name = "recognize-silu"
    description = "replace x * Sigmoid(x) with one SiLU node"
    in_regions = True

    def run(self, graph: Graph) -> Graph:
        return recognize_silu(graph)
