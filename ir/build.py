"""Adding nodes to a graph: attributes normalised and output types inferred by the registry."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ir.graph import Graph, Node, Value
from ir.ops.registry import get_op


def infer_types(op: str, inputs: list[Value | None], attrs: dict[str, Any]) -> list:
    opdef = get_op(op)
    opdef.check_arity(len(inputs))
    types = [None if v is None else v.type for v in inputs]
    opdef.check_storage_types(types)
    return opdef.infer(types, attrs)


def make_node(
    graph: Graph,
    op: str,
    inputs: list[Value | None],
    attrs: dict[str, Any] | None = None,
    *,
    name: str = "",
    out_names: list[str] | None = None,
    append: bool = True,
    sources: Iterable[tuple[str, str]] = (),
) -> Node:
    """Build a node of ``op``, infer its outputs, and (by default) append it to ``graph``.

    ``out_names`` are hints; clashing names get a numeric suffix. ``sources`` are the model
    nodes the new node computes, when a pass makes it from others (Node.sources).
    Raises :class:`ir.ops.registry.OpError` when the inputs or attributes are invalid.
    """
    opdef = get_op(op)
    full = opdef.normalize_attrs(attrs or {})
    types = infer_types(op, inputs, full)
    hints = list(out_names or [])
    outs = []
    for i, t in enumerate(types):
        hint = hints[i] if i < len(hints) and hints[i] else (name or op.lower())
        outs.append(graph.new_value(t, hint))
    node = Node(op, inputs, outs, full, name=name, sources=sources)
    if append:
        graph.add_node(node)
    return node
