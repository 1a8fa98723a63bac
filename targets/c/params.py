"""The parameters of one layer function, decided by what its emitter asks for.

An emitter names an operand through ``ctx.i(k)`` / ``ctx.o(k)``. A constant input (a weight,
a bias, or a view of one) answers with the weight array's global name, entering the weight
table then; every other operand becomes a pointer parameter. The parameter's C name is its
value's name, made safe (targets/c/names.py), but it can only be chosen once the body is
written, because a value called ``x`` must not take the name of a local ``x`` the body
declares: the body is written with a placeholder per parameter, which is replaced by the
final name, one that none of the body's identifiers uses.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ir.graph import Node, Value
from targets.c.emitter import CodegenError, c_type
from targets.c.names import NameTable

_PLACEHOLDER = "qnnc_operand_{}_"
_PLACEHOLDER_RE = re.compile(r"\bqnnc_operand_(\d+)_\b")
_IDENT = re.compile(r"[A-Za-z_]\w*")


@dataclass
class Params:
    """Operands of one layer: global names for constants, parameters for the rest."""

    node: Node
    is_const: Callable[[Value], bool]
    const_ref: Callable[[Value], str]  # a constant's global name (an expression)
    values: list[Value] = field(default_factory=list)  # parameters, in order of first use
    outputs: set[int] = field(default_factory=set)  # ids of the parameters written

    def input(self, k: int) -> str:
        v = self.node.inputs[k] if k < len(self.node.inputs) else None
        if v is None:
            raise CodegenError(f"node {self.node.name!r} ({self.node.op}): input {k} is "
                               "omitted but the C emitter reads it")
        if self.is_const(v):
            return self.const_ref(v)
        return self._param(v)

    def output(self, k: int) -> str:
        v = self.node.outputs[k]
        self.outputs.add(id(v))
        return self._param(v)

    def value(self, v: Value, written: bool = False) -> str:
        """A tensor that is not one of the node's operands but that its layer reads or
        (``written``) writes: an element-wise layer fused into this one's epilogue."""
        if written:
            self.outputs.add(id(v))
        elif self.is_const(v):
            return self.const_ref(v)
        return self._param(v)

    def _param(self, v: Value) -> str:
        for k, w in enumerate(self.values):
            if w is v:
                return _PLACEHOLDER.format(k)
        self.values.append(v)
        return _PLACEHOLDER.format(len(self.values) - 1)

    def ordered(self) -> list[int]:
        """Parameter positions: the node's inputs in operand order, then its outputs."""
        order = [v for v in self.node.inputs if v is not None] + list(self.node.outputs)
        rank = {}
        for k, v in enumerate(order):
            rank.setdefault(id(v), k)
        for k, v in enumerate(self.values):  # tensors of a fused layer: after the node's own
            rank.setdefault(id(v), len(order) + k)
        return sorted(range(len(self.values)), key=lambda k: rank[id(self.values[k])])

    def finish(self, body: str, restrict: str,
               reserved: set[str]) -> tuple[list[str], str, list[Value]]:
        """(parameter declarations, the body with their final names, the values to pass)."""
        taken = set(_IDENT.findall(body)) | reserved
        table = NameTable(taken)
        names = {k: table.claim_plain(self.values[k].name) for k in self.ordered()}
        decls = []
        for k in self.ordered():
            v = self.values[k]
            ct = c_type(v.type.dtype, self.node)
            const = "" if id(v) in self.outputs else "const "
            decls.append(f"{const}{ct} *{restrict}{names[k]}")
        text = _PLACEHOLDER_RE.sub(lambda m: names[int(m.group(1))], body)
        return decls, text, [self.values[k] for k in self.ordered()]
