"""The verifier: checks the invariants every pass must preserve.

- every value is defined once and before it is read (SSA dominance in node order);
- every node's op is registered, its attributes are complete and canonical, and its output
  types are what the op's type inference says;
- graph outputs are defined values; constants' data match their types;
- a value with a data-dependent extent reaches only graph outputs (ir/ops/dynamic.py).
- the bodies of region ops (If, Loop, Scan) are graphs that pass all of this themselves, whose
  inputs and outputs the op's inference checks against the node's operands and results;
  being separate scopes, a body cannot read an outer value (isolated from above).
"""

from __future__ import annotations

from ir.errors import ConversionError
from ir.graph import Graph
from ir.ops.dynamic import check_counted
from ir.ops.registry import OpError, get_op


class VerifyError(ValueError):
    """The graph breaks an IR invariant; the message names the node and the rule."""


def verify(graph: Graph, where: str = "") -> None:
    """Check ``graph`` and, recursively, the bodies of its region ops."""
    try:
        _verify_scope(graph)
    except VerifyError as e:
        raise VerifyError(f"{where}{e}") from None


def _verify_scope(graph: Graph) -> None:
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
        for k, body in enumerate(node.regions):
            label = opdef.regions[k] if k < len(opdef.regions) else f"region {k}"
            verify(body, f"{where}, region {label} @{body.name}: ")
        try:
            types = opdef.infer_types([None if v is None else v.type for v in node.inputs],
                                      node.attrs, node.regions)
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
    try:
        check_counted(graph)
    except ConversionError as e:
        raise VerifyError(str(e)) from None
