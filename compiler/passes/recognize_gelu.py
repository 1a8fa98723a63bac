"""recognize-gelu: turn the elementwise chains exporters write for GELU into one Gelu node.

    exact:  x * 0.5 * (1 + Erf(x / sqrt(2)))                        -> Gelu(approximate="none")
    tanh:   0.5 * x * (1 + Tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))  -> Gelu(approximate="tanh")

Why: the quantiser turns a unary op into one 256-entry lookup table, exact on every target;
the decomposed chain would instead be five or eight quantised steps, each adding rounding.

Products are matched by their flattened form (patterns.py), so every association and operand
order is one pattern: 0.5 before or after, x/sqrt(2) as Div by 1.4142135 or Mul by 0.70710677,
x^3 as Pow(x, 3), x*x*x or x*Pow(x, 2), the tanh argument also as sqrt(2/pi)*x*(1 + 0.044715
x^2). Constants match within patterns.RTOL = 1e-4 relative. Every intermediate must be read
only inside the chain. The Gelu node differs from the chain by float rounding only: it is
evaluated in float64 and rounded once, where the chain rounds after each step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from compiler.passes.manager import Pass, register
from compiler.passes.patterns import Match, Matcher, close, rewrite
from ir.graph import Graph, Node, Value
from ir.types import DType

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_CUBIC = 0.044715


def recognize_gelu(graph: Graph) -> Graph:
    return rewrite(graph, _match)


def _match(m: Matcher, root: Node) -> Match | None:
    """root = 0.5 * x * (1 + f(x)) with f the erf or the tanh part."""
    flat = m.product(root)
    if flat is None:
        return None
    coef, factors, nodes = flat
    dtype = root.outputs[0].type.dtype
    if len(factors) != 2 or not dtype.is_float or not close(coef, 0.5, dtype):
        return None
    for x, p in (factors, factors[::-1]):
        shifted = m.shifted(p, dtype)
        if shifted is None or not close(shifted[1], 1.0, dtype):
            continue
        inner = _inner(m, shifted[0], x, dtype)
        if inner is not None:
            kind, inner_nodes = inner
            return Match("Gelu", [x], {"approximate": kind},
                         nodes + [shifted[2]] + inner_nodes)
    return None


def _inner(m: Matcher, v: Value, x: Value, dtype: DType) -> tuple[str, list[Node]] | None:
    """v = Erf(x / sqrt(2)) -> ("none", nodes); v = Tanh(...) -> ("tanh", nodes)."""
    node = m.single_use(v, ("Erf", "Tanh"))
    if node is None:
        return None
    arg = m.single_use(node.x, ("Mul", "Div"))
    flat = None if arg is None else m.product(arg)
    if flat is None:
        return None
    coef, factors, nodes = flat
    if node.op == "Erf":
        if factors == [x] and close(coef, _INV_SQRT2, dtype):
            return "none", [node] + nodes
        return None
    if not close(coef, _SQRT_2_OVER_PI, dtype):
        return None
    if len(factors) == 1:  # sqrt(2/pi) * (x + 0.044715 * x^3)
        rest = _plus_cubic_term(m, factors[0], x, [x, x, x], dtype)
    elif len(factors) == 2:  # sqrt(2/pi) * x * (1 + 0.044715 * x^2)
        rest = None
        for a, b in (factors, factors[::-1]):
            rest = rest or (_one_plus_square_term(m, b, x, dtype) if a is x else None)
    else:
        rest = None
    return None if rest is None else ("tanh", [node] + nodes + rest)


def _plus_cubic_term(m: Matcher, v: Value, x: Value, power: list[Value],
                     dtype: DType) -> list[Node] | None:
    """v = x + 0.044715 * x^3 (either order): the Add and the term's nodes."""
    add = m.single_use(v, ("Add",))
    if add is None:
        return None
    for a, b in (add.inputs, add.inputs[::-1]):
        if a is not x:
            continue
        term = _cubic_term(m, b, power, dtype)
        if term is not None:
            return [add] + term
    return None


def _one_plus_square_term(m: Matcher, v: Value, x: Value, dtype: DType) -> list[Node] | None:
    """v = 1 + 0.044715 * x^2 (either order)."""
    shifted = m.shifted(v, dtype)
    if shifted is None or not close(shifted[1], 1.0, dtype):
        return None
    term = _cubic_term(m, shifted[0], [x, x], dtype)
    return None if term is None else [shifted[2]] + term


def _cubic_term(m: Matcher, v: Value | None, power: list[Value],
                dtype: DType) -> list[Node] | None:
    """v = 0.044715 * (the product of ``power``)."""
    node = m.single_use(v, ("Mul", "Div"))
    flat = None if node is None else m.product(node)
    if flat is None:
        return None
    coef, factors, nodes = flat
    if factors == power and close(coef, _CUBIC, dtype):
        return nodes
    return None


@register
@dataclass(frozen=True)
class RecognizeGelu(Pass):
    name = "recognize-gelu"
    description = "replace erf/tanh GELU chains with one Gelu node"
    in_regions = True

    def run(self, graph: Graph) -> Graph:
        return recognize_gelu(graph)
