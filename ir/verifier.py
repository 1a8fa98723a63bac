"""The verifier: checks the invariants every pass must preserve.

- every value is defined once and before it is read (SSA dominance in node order);
- every node's op is registered, its attributes are complete and canonical, and its output
  types are what the op's type inference says;
- graph outputs are defined values; constants' data match their types.
"""

from __future__ import annotations

from ir.graph import Graph
from ir.ops.registry import OpError, get_op


class VerifyError(ValueError):
    """The graph breaks an IR invariant; the message names the node and the rule."""


def verify(graph: Graph) -> None:
    defined: set[int] = set()
    names: set[str] = set()

    def define(v_name: str, v_id: int, where: str) -> None:
        if v_name in names:
            raise VerifyError(f"{where}: value %{v_name} is defined twice")
        names.add(v_name)
        defined.add(v_id)

    for v in graph.inputs:
        if v.is_const:
            raise VerifyError(f"graph input %{v.name} must not carry constant data")
        define(v.name, id(v), "graph inputs")
    for c in graph.constants:
        if not c.is_const:
            raise VerifyError(f"constant %{c.name} has no data")
        define(c.name, id(c), "constants")
    for i, node in enumerate(graph.nodes):
        where = f"node #{i} {node.name or ''} ({node.op})".replace("  ", " ")
        try:
            opdef = get_op(node.op)
            opdef.check_arity(len(node.inputs))
            canon = opdef.normalize_attrs(node.attrs)
        except OpError as e:
            raise VerifyError(f"{where}: {e}") from None
        if canon != node.attrs:
            raise VerifyError(f"{where}: attributes are not canonical: {node.attrs} vs {canon}")
        for v in node.inputs:
            if v is not None and id(v) not in defined:
                raise VerifyError(f"{where}: reads %{v.name} before it is defined")
        try:
            in_types = [None if v is None else v.type for v in node.inputs]
            opdef.check_storage_types(in_types)
            types = opdef.infer(in_types, node.attrs)
        except OpError as e:
            raise VerifyError(f"{where}: {e}") from None
        if len(types) != len(node.outputs):
            raise VerifyError(
                f"{where}: has {len(node.outputs)} outputs, the op defines {len(types)}"
            )
        for v, t in zip(node.outputs, types):
            if v.type != t:
                raise VerifyError(f"{where}: output %{v.name} has type {v.type}, expected {t}")
            define(v.name, id(v), where)
    for v in graph.outputs:
        if id(v) not in defined:
            raise VerifyError(f"graph output %{v.name} is not defined")
