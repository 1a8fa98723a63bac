"""Converting a list of ONNX nodes in a scope, and the subgraphs of If, Loop and Scan.

ONNX subgraphs read outer-scope names implicitly. The IR's regions are isolated from above
(ir/graph.py), so converting a body resolves each name it does not define in the scopes
around it: an outer constant is copied into the body as a constant (so folding sees it), any
other outer value is *captured*: it becomes an input of the body and, in the same order, an
operand of the control-flow node. A body nested in a body captures through every level.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import onnx
from onnx import GraphProto, NodeProto

from compiler.errors import ConversionError, UnsupportedModelError
from compiler.frontend.context import Ctx, Opt, Resolved, Seq
from compiler.frontend.registry import CONVERTERS, converter_key
from ir.graph import Graph, Value
from ir.types import TensorType


class Scope:
    """ONNX names -> IR values of one graph; ``parent`` is the scope around a body."""

    def __init__(self, graph: Graph, parent: Scope | None = None, *, inline: bool = False):
        self.graph = graph
        self.parent = parent
        self.inline = inline  # a folded If's branch: same graph, outer names read directly
        self.env: dict[str, Resolved] = {}
        self.captured: list[Value] = []  # outer values bound to the body's trailing inputs

    def peek(self, name: str) -> Resolved | None:
        """What ``name`` is in this scope or one around it, without capturing it."""
        scope: Scope | None = self
        while scope is not None:
            if name in scope.env:
                return scope.env[name]
            scope = scope.parent
        return None

    def lookup(self, name: str) -> Resolved:
        if name in self.env:
            return self.env[name]
        if self.parent is None:
            raise KeyError(name)
        outer = self.parent.lookup(name)
        if self.inline:
            return outer
        if isinstance(outer, (Seq, Opt)):
            raise ConversionError(
                f"subgraph reads {name!r}, a sequence or optional of the enclosing graph; "
                "qnnc resolves sequences at compile time and cannot pass one into a body")
        if outer.data is not None:
            v = self.graph.add_const(outer.data, name)
            v.type = outer.type
        else:
            v = self.graph.add_input(self.graph.fresh_name(_safe(name)), outer.type)
            self.captured.append(outer)
        self.env[name] = v
        return v


def _safe(name: str) -> str:
    return re.sub(r"\W", "_", name) or "v"


def node_label(node: NodeProto, index: int) -> str:
    return node.name or f"{node.op_type}_{index}"


def subgraphs(node: NodeProto) -> Iterable[GraphProto]:
    for a in node.attribute:
        if a.type == onnx.AttributeProto.GRAPH:
            yield a.g
        yield from a.graphs


def walk_nodes(nodes: Iterable[NodeProto]) -> Iterable[NodeProto]:
    """Every node, the nodes of its subgraphs included."""
    for n in nodes:
        yield n
        for g in subgraphs(n):
            yield from walk_nodes(g.node)


def convert_nodes(ctx: Ctx, nodes: Sequence[NodeProto], scope: Scope) -> None:
    """Convert ``nodes`` in order into ``scope``'s graph, binding their outputs' names."""
    from compiler.frontend.importer import attr_values  # the importer imports this module

    for i, node in enumerate(nodes):
        label = node_label(node, i)
        ctx.node_name, ctx.op_type = label, node.op_type
        ctx.out_hints = [o for o in node.output]
        try:
            ins = [scope.lookup(x) if x else None for x in node.input]
        except KeyError as e:
            raise ConversionError(
                f"node {label!r} ({node.op_type}) reads undefined value {e}"
            ) from None
        try:
            attrs = attr_values(node)
            key = converter_key(node.op_type, node.domain)
            check_tensor_inputs(node, ins, CONVERTERS[key].sequences)
            result = _call(CONVERTERS[key].fn, ctx, ins, attrs, node.op_type)
        except (ConversionError, UnsupportedModelError) as e:
            if str(e).startswith(f"node {label!r} "):
                raise
            raise type(e)(f"node {label!r} ({node.op_type}): {e}") from None
        outs = [result] if isinstance(result, (Value, Seq, Opt)) else list(result)
        wanted = [o for o in node.output]
        if len(outs) < len([o for o in wanted if o]):
            raise ConversionError(
                f"node {label!r} ({node.op_type}): produced {len(outs)} outputs, "
                f"the model names {len(wanted)}"
            )
        for oname, v in zip(wanted, outs):
            if oname:
                scope.env[oname] = v


def check_tensor_inputs(node: NodeProto, ins: list[Resolved | None], sequences: bool) -> None:
    """Only converters registered with ``sequences=True`` see sequences and optionals."""
    if sequences:
        return
    for name, v in zip(node.input, ins):
        if isinstance(v, (Seq, Opt)):
            kind = "a sequence" if isinstance(v, Seq) else "an optional"
            raise ConversionError(
                f"input {name!r} is {kind}, but {node.op_type} takes tensors; use "
                "SequenceAt / OptionalGetElement to take a tensor out of it"
            )


def _call(fn: Any, ctx: Ctx, ins: list[Value | None], attrs: dict[str, Any], op: str) -> Any:
    try:
        return fn(ctx, *ins, **attrs)
    except TypeError as e:
        msg = str(e)
        if "unexpected keyword" in msg or "positional argument" in msg:
            raise ConversionError(f"unsupported attributes or inputs for {op}: {msg}") from None
        raise


def convert_body(ctx: Ctx, body: GraphProto, formal: Sequence[TensorType],
                 ) -> tuple[Graph, list[Value]]:
    """The IR graph of subgraph ``body`` whose inputs have the types ``formal`` (known from
    the node's operands: a body's own declarations often leave shapes out), and the outer
    values it captured, bound in order to its inputs after the formal ones."""
    if len(body.input) != len(formal):
        raise ctx.fail(f"subgraph {body.name!r} declares {len(body.input)} inputs, the node "
                       f"passes {len(formal)}")
    g = Graph(_safe(body.name or "body"))
    scope = Scope(g, ctx.scope)
    for inp, t in zip(body.input, formal):
        scope.env[inp.name] = g.add_input(g.fresh_name(_safe(inp.name)), t)
    for t in body.initializer:
        from compiler.frontend.importer import initializer_array

        scope.env[t.name] = g.add_const(initializer_array(t), _safe(t.name))
    sub = Ctx(g, ctx.opset, scope=scope, declared=ctx.declared,
              budget=ctx.budget)
    outer = ctx.node_name, ctx.op_type, ctx.out_hints
    convert_nodes(sub, body.node, scope)
    ctx.node_name, ctx.op_type, ctx.out_hints = outer
    try:
        outs = [scope.lookup(o.name) for o in body.output]
    except KeyError as e:
        raise ctx.fail(f"subgraph {body.name!r} output {e} is not produced") from None
    for o, v in zip(body.output, outs):
        if isinstance(v, (Seq, Opt)):
            raise ctx.fail(
                f"subgraph {body.name!r} gives {o.name!r}, a sequence or optional; qnnc "
                "resolves those at compile time, so this body must be inlined or unrolled at "
                "import: the If's condition or the Loop's trip count and condition must be "
                "known at compile time")
    g.outputs = [v for v in outs if isinstance(v, Value)]
    g.prune_constants()
    return g, scope.captured


def inline_body(ctx: Ctx, body: GraphProto, bound: Sequence[Resolved] = ()) -> list[Resolved]:
    """Convert ``body`` straight into the current graph, its inputs bound to ``bound``
    (tensors, sequences or optionals): an If whose condition is known at compile time
    becomes the branch it takes, and an unrolled SequenceMap or Loop one copy of its body
    per iteration. Outer names are read directly, sequences too."""
    if len(body.input) != len(bound):
        raise ctx.fail(f"subgraph {body.name!r} declares {len(body.input)} inputs, the node "
                       f"passes {len(bound)}")
    scope = Scope(ctx.graph, ctx.scope, inline=True)
    for inp, v in zip(body.input, bound):
        scope.env[inp.name] = v
    for t in body.initializer:
        from compiler.frontend.importer import initializer_array

        scope.env[t.name] = ctx.graph.add_const(initializer_array(t), _safe(t.name))
    sub = Ctx(ctx.graph, ctx.opset, scope=scope, declared=ctx.declared,
              budget=ctx.budget)
    outer = ctx.node_name, ctx.op_type, ctx.out_hints
    convert_nodes(sub, body.node, scope)
    ctx.node_name, ctx.op_type, ctx.out_hints = outer
    try:
        return [scope.lookup(o.name) for o in body.output]
    except KeyError as e:
        raise ctx.fail(f"subgraph {body.name!r} output {e} is not produced") from None
