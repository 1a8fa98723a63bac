"""The conversion context a converter receives: the graph being built, the opset, and
helpers that emit IR ops, folding them on the spot when every input is a constant."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from compiler.budget import DEFAULT_MAX_TENSOR_BYTES, over_budget
from compiler.errors import ConversionError
from ir.build import make_node
from ir.graph import Graph, Value
from ir.ops.registry import OpError, get_op
from ir.types import DType


@dataclass(frozen=True)
class Seq:
    """An ONNX sequence, resolved at import into its tensors: the IR has no sequence type, so
    a sequence's length and every element are known at compile time ("Sequences and
    optionals" in docs/architecture.md). ``dtype`` is the element type (SequenceEmpty's,
    when there are no items yet)."""

    items: tuple[Value, ...]
    dtype: DType


@dataclass(frozen=True)
class Opt:
    """An ONNX optional, resolved at import: its value (a tensor or a sequence), or None
    when it is absent."""

    value: Value | Seq | None


# What an ONNX value name maps to during import (the importer's env): an IR tensor value, or
# a sequence or optional resolved at compile time.
Resolved = Value | Seq | Opt


class Ctx:
    """What a converter sees: the graph being built, the opset, and helpers to emit ops."""

    def __init__(self, graph: Graph, opset: int, *, scope: Any = None,
                 declared: Mapping[str, tuple[int, ...]] | None = None,
                 budget: int = DEFAULT_MAX_TENSOR_BYTES) -> None:
        self.graph = graph
        self.opset = opset
        self.scope = scope  # compiler.frontend.scope.Scope: names of this graph and outer ones
        self.declared = dict(declared or {})  # static shapes the model declares, by name
        self.budget = budget  # bytes: the largest tensor an op may make (compiler/budget.py)
        self.node_name = ""
        self.op_type = ""
        self.out_hints: list[str] = []

    # -- emitting ---------------------------------------------------------------------
    def ops(self, op: str, inputs: Sequence[Value | None], regions: Sequence[Graph] = (),
            **attrs: Any) -> list[Value]:
        """Emit IR ``op`` and return all its outputs, folding it if every input is constant.
        An IR op other than the ONNX node's records that node as its source (Flatten becomes
        a Reshape from Flatten "flatten_1"). ``regions``: the bodies of a control-flow op."""
        sources = [(self.op_type, self.node_name)] if op != self.op_type and self.op_type else []
        try:
            node = make_node(
                self.graph, op, list(inputs), attrs, name=self.node_name,
                out_names=self.out_hints, append=False, sources=sources, regions=regions,
            )
        except OpError as e:
            raise ConversionError(str(e)) from None
        for v in node.outputs:
            self.check_size(v.type.shape, v.type.dtype.np.itemsize)
        present = [v for v in inputs if v is not None]
        if all(v.is_const for v in present):
            args = [None if v is None else v.data for v in inputs]
            results = get_op(op).evaluate(
                args, node.attrs, [None if v is None else v.type for v in inputs],
                [v.type for v in node.outputs], regions)
            out = []
            for v, r in zip(node.outputs, results):
                self.graph.release_name(v.name)
                c = self.const(np.asarray(r, dtype=v.type.dtype.np), v.name)
                c.type = v.type  # keeps quant params, which TensorType.of cannot know
                out.append(c)
            return out
        self.graph.add_node(node)
        return node.outputs

    def check_size(self, shape: Sequence[int], itemsize: int) -> None:
        """Refuse a tensor of ``shape`` over the size budget, before it is allocated."""
        big = over_budget("its output",
                          shape, itemsize, self.budget)
        if big:
            raise ConversionError(big)

    def op(self, op: str, inputs: Sequence[Value | None], **attrs: Any) -> Value:
        """Emit a single-output IR op (see :meth:`ops`)."""
        return self.ops(op, inputs, **attrs)[0]

    def const(self, array: Any, hint: str = "") -> Value:
        """A new IR constant holding ``array``."""
        return self.graph.add_const(np.asarray(array), hint or (self.out_hints or ["c"])[0])

    # -- reading ----------------------------------------------------------------------
    def value_of(self, v: Value | None, what: str) -> np.ndarray:
        """The data of input ``v``, which must be a constant known at compile time."""
        if v is None:
            raise ConversionError(f"input {what!r} is required")
        if v.data is None:
            raise ConversionError(
                f"input {what!r} (%{v.name}) must be known at compile time, but it depends on "
                "the model's inputs; qnnc compiles static graphs only"
            )
        return v.data

    def ints_of(self, v: Value | None, what: str) -> list[int]:
        return [int(x) for x in np.asarray(self.value_of(v, what)).reshape(-1)]

    def fail(self, msg: str) -> ConversionError:
        return ConversionError(msg)
