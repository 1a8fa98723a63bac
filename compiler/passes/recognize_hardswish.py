"""recognize-hardswish: the two spellings of HardSwish exporters write become one HardSwish.

    x * HardSigmoid(x, alpha=1/6, beta=0.5)
    x * Clip(x + 3, 0, 6) / 6        (or * 1/6, in any order or association)

Why: one unary op quantises to one exact lookup table instead of a clip, a product and their
roundings. Constants (alpha, beta, the 3, the clip bounds, the 1/6) match within
patterns.RTOL = 1e-4 relative (Clip's lower bound 0 must be exactly 0). HardSwish evaluates
x * clip(x/6 + 1/2, 0, 1) in float64 and rounds once, so it differs from the chain by float
rounding only.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.passes.manager import Pass, register
from compiler.passes.patterns import Match, Matcher, close, rewrite
from ir.graph import Graph, Node, Value
from ir.types import DType


def recognize_hardswish(graph: Graph) -> Graph:
    return rewrite(graph, _match)


def _match(m: Matcher, root: Node) -> Match | None:
    flat = m.product(root)
    if flat is None:
        return None
    coef, factors, nodes = flat
    dtype = root.outputs[0].type.dtype
    if len(factors) != 2 or not dtype.is_float:
        return None
    for x, gate in (factors, factors[::-1]):
        found = _gate(m, gate, x, coef, dtype)
        if found is not None:
            return Match("HardSwish", [x], {}, nodes + found)
    return None


def _gate(m: Matcher, v: Value, x: Value, coef: float, dtype: DType) -> list[Node] | None:
    """coef * v = max(0, min(1, x/6 + 1/2)): the nodes computing v."""
    node = m.single_use(v, ("HardSigmoid", "Clip"))
    if node is None or node.x is None:
        return None
    if node.op == "HardSigmoid":
        a = node.attrs
        ok = (node.x is x and close(coef, 1.0, dtype)
              and close(a["alpha"], 1.0 / 6.0, dtype) and close(a["beta"], 0.5, dtype))
        return [node] if ok else None
    lo, hi = node.attrs["min"], node.attrs["max"]
    if lo != 0.0 or not close(hi, 6.0, dtype) or not close(coef, 1.0 / 6.0, dtype):
        return None
    shifted = m.shifted(node.x, dtype)
    if shifted is None or shifted[0] is not x or not close(shifted[1], 3.0, dtype):
        return None
    return [node, shifted[2]]


@register
@dataclass(frozen=True)
class RecognizeHardSwish(Pass):
    name = "recognize-hardswish"
    description = "replace x * hardsigmoid(x) chains with one HardSwish"
    in_regions = True

    def run(self, graph: Graph) -> Graph:
        return recognize_hardswish(graph)
