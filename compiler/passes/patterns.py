"""A small shared matcher for the pattern-recognition passes (recognize-gelu, -silu, ...).

Exporters spell one activation as a chain of elementwise nodes, in many orders: x * 0.5 * p,
(x * p) * 0.5, x * (p * 0.5), x * p / 2 are the same product. Rather than listing every tree,
a matcher flattens a product into its scalar coefficient and its non-constant factors
(:meth:`Matcher.product`), so a pattern reads as "coefficient 0.5 times {x, p}".

Constants are matched with a relative tolerance, :data:`RTOL` (or two ulps of the constant's
element type when that is coarser, for float16 graphs): exporters write 1/sqrt(2) as
0.70710677, 0.7071067811865476 or 1.4142135 in a Div, and all of those must match, while a
different constant (1.5 instead of sqrt(2)) must not. A match therefore replaces a chain that
computes the recognised function up to a relative perturbation of its constants of at most
1e-4, far below an INT8 step.

:func:`rewrite` drives a pass: it tries the pattern at every node, last to first so the
largest chain is matched at its root, checks that the chain's intermediate values are read
only inside the chain (and are not graph outputs), and replaces the chain by one node that
takes over the root's output value and name. Constants the chain read are left for dce.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ir.build import infer_types
from ir.graph import Graph, Node, Value, sources_of
from ir.ops.registry import OpError, get_op
from ir.types import DType, TensorType

#: relative tolerance for matching a constant against its textbook value
RTOL = 1e-4


def close(value: float, want: float, dtype: DType) -> bool:
    """``value`` is ``want`` up to RTOL (or two ulps of ``dtype``, when coarser)."""
    eps = float(np.finfo(dtype.np).eps) if dtype.is_float else 0.0
    return abs(value - want) <= max(RTOL, 2.0 * eps) * abs(want)


def scalar(v: Value | None) -> float | None:
    """The value of a one-element float constant, else None."""
    if v is None or v.data is None or v.data.size != 1 or not v.type.dtype.is_float:
        return None
    return float(v.data.reshape(()))


@dataclass(frozen=True)
class NewConst:
    """A constant the replacement node needs, added to the graph only if the match is used."""

    data: np.ndarray
    hint: str


@dataclass
class Match:
    """A recognised chain: the replacement node's op, inputs and attributes, and every node
    of the chain (its root, whose output the replacement takes over, first)."""

    op: str
    inputs: list[Value | NewConst | None]
    attrs: dict[str, Any]
    nodes: list[Node] = field(default_factory=list)


class Matcher:
    """Read-only queries on one graph: who produces a value, who reads it."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._producers = graph.producers()
        self._users = graph.users()
        self._outputs = {id(v) for v in graph.outputs}

    def producer(self, v: Value | None, *ops: str) -> Node | None:
        """The node defining ``v`` if its op is one of ``ops`` (any op when none given)."""
        if v is None:
            return None
        node = self._producers.get(id(v))
        if node is None or (ops and node.op not in ops):
            return None
        return node

    def single_use(self, v: Value | None, ops: Iterable[str] = ()) -> Node | None:
        """The producer of ``v`` (of one of ``ops``) when exactly one node reads ``v`` and it is
        not a graph output: the only case where folding it into a pattern loses nothing."""
        node = self.producer(v, *ops)
        if node is None or v is None or id(v) in self._outputs:
            return None
        return node if len(self._users.get(id(v), [])) == 1 else None

    def private(self, chain: list[Node]) -> bool:
        """Every value the chain defines, except the root's (the first node's), is read only
        by nodes of the chain and is not a graph output."""
        inside = {id(n) for n in chain}
        for node in chain[1:]:
            for v in node.outputs:
                if id(v) in self._outputs:
                    return False
                if any(id(u) not in inside for u in self._users.get(id(v), [])):
                    return False
        return True

    def product(self, node: Node) -> tuple[float, list[Value], list[Node]] | None:
        """Flatten the product computed by ``node`` (a Mul, or a Div by a scalar constant).

        Returns (coefficient, factors, nodes): the product of every scalar constant met, the
        non-constant factors, and the nodes walked. Operands produced by a single-use Mul (or
        Div by a constant) are flattened too; Pow(v, n) with a small integer n counts as n
        factors v. None when ``node`` is not a product.
        """
        coef, factors, nodes = 1.0, [], [node]
        if node.op == "Mul":
            operands = list(node.inputs)
        elif node.op == "Div" and scalar(node.b) not in (None, 0.0):
            operands = [node.a]
            coef = 1.0 / float(scalar(node.b))  # type: ignore[arg-type]
        else:
            return None
        for v in operands:
            c = scalar(v)
            if c is not None:
                coef *= c
                continue
            assert v is not None
            inner = self.single_use(v, ("Mul", "Div", "Pow"))
            sub = None if inner is None else self._factor(inner)
            if sub is None:
                factors.append(v)
                continue
            coef *= sub[0]
            factors += sub[1]
            nodes += sub[2]
        return coef, factors, nodes

    def _factor(self, node: Node) -> tuple[float, list[Value], list[Node]] | None:
        if node.op != "Pow":
            return self.product(node)
        n = scalar(node.y)
        if n is None or n != round(n) or not 1 <= n <= 4:
            return None
        base = node.x
        assert base is not None
        return 1.0, [base] * int(n), [node]

    def shifted(self, v: Value | None, dtype: DType) -> tuple[Value, float, Node] | None:
        """``v`` = Add(a, c) (either order) with a scalar constant c, ``v`` read only once:
        (a, c, the Add)."""
        node = self.single_use(v, ("Add",))
        if node is None:
            return None
        for a, b in (node.inputs, node.inputs[::-1]):
            c = scalar(b)
            if c is not None and a is not None and scalar(a) is None:
                return a, c, node
        return None


Pattern = Callable[[Matcher, Node], Match | None]


def rewrite(graph: Graph, pattern: Pattern) -> Graph:
    """Replace every chain ``pattern`` recognises by one node, in place.

    The pattern is tried at each node from the last to the first, so a chain is matched at its
    root before any of its inner nodes is tried; matched chains never overlap. The new node
    keeps the root's output value (name, type and readers unchanged) and the root's node name.
    A match whose new node would infer another output type, or whose intermediates escape the
    chain, is dropped. The new node's sources are the chain's nodes, in graph order. New
    constants are added in graph order, once every match is known.
    """
    m = Matcher(graph)
    taken: set[int] = set()
    found_at: dict[int, tuple[Match, dict[str, Any]]] = {}
    for node in reversed(graph.nodes):
        if id(node) in taken:
            continue
        found = pattern(m, node)
        if found is None or found.nodes[0] is not node:
            continue
        if any(id(n) in taken for n in found.nodes) or not m.private(found.nodes):
            continue
        attrs = _checked_attrs(found, node)
        if attrs is None:
            continue
        taken.update(id(n) for n in found.nodes)
        found_at[id(node)] = (found, attrs)
    kept: list[Node] = []
    position = {id(n): k for k, n in enumerate(graph.nodes)}
    for node in graph.nodes:
        if id(node) in found_at:
            found, attrs = found_at[id(node)]
            inputs = [graph.add_const(v.data, v.hint) if isinstance(v, NewConst) else v
                      for v in found.inputs]
            chain = sorted(found.nodes, key=lambda n: position[id(n)])
            kept.append(Node(found.op, inputs, list(node.outputs), attrs, name=node.name,
                             sources=sources_of(*chain)))
        elif id(node) in taken:
            for v in node.outputs:
                graph.release_name(v.name)
        else:
            kept.append(node)
    graph.nodes = kept
    return graph


def _checked_attrs(found: Match, root: Node) -> dict[str, Any] | None:
    """The replacement's normalised attributes, if it infers exactly the root's output type."""
    try:
        attrs = get_op(found.op).normalize_attrs(found.attrs)
        probe = [Value(v.hint, TensorType.of(v.data), v.data) if isinstance(v, NewConst)
                 else v for v in found.inputs]
        types = infer_types(found.op, probe, attrs)
    except OpError:
        return None
    if len(types) != 1 or len(root.outputs) != 1 or types[0] != root.outputs[0].type:
        return None
    return attrs
