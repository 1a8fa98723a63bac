"""Adding nodes to a graph: attributes normalised and output types inferred by the registry."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ir.graph import Graph, Node, Value
from ir.ops.registry import get_op


def infer_types(op: str, inputs: list[Value | None], attrs: dict[str, Any],
                regions: Sequence[Graph] = ()) -> list:
    opdef = get_op(op)
    opdef.check_arity(len(inputs))
    return opdef.infer_types([None if v is None else v.type for v in inputs], attrs, regions)


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
    regions: Sequence[Graph] = (),
) -> Node:
    """Build a node of ``op``, infer its outputs, and (by default) append it to ``graph``.

    ``out_names`` are hints; clashing names get a numeric suffix. ``sources`` are the model
    nodes the new node computes, when a pass makes it from others (Node.sources). ``regions``
    are the bodies of a control-flow op (Node.regions).
    Raises :class:`ir.ops.registry.OpError` when the inputs or attributes are invalid.
    """
    opdef = get_op(op)
    full = opdef.normalize_attrs(attrs or {})
    types = infer_types(op, inputs, full, regions)
    hints = list(out_names or [])
    outs = []
    for i, t in enumerate(types):
        hint = hints[i] if i < len(hints) and hints[i] else (name or op.lower())
        outs.append(graph.new_value(t, hint))
    node = Node(op, inputs, outs, full, name=name, sources=sources, regions=regions)
    if append:
        graph.add_node(node)
    return node
