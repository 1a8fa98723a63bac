"""SSA values, nodes and graphs.

A :class:`Graph` owns its inputs, its constants (values bound to numpy arrays), its nodes in
topological order and its outputs. Every value is defined exactly once: as a graph input, a
constant or a node result. Attribute values are plain Python data (int, float, str, bool and
lists of int/float/str), so graphs compare structurally and print as text.

Control flow (If, Loop, Scan) owns *regions*: graph bodies kept on the node
(``node.regions``). Regions are isolated from above: a body reads only its own inputs and
constants, and every outer value it needs is an explicit operand of the node, bound to an
input of the body. So names and values never cross a scope, and every walk of one graph
(values, producers, users, dce) is complete without looking into bodies.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from ir.types import DType, TensorType

AttrValue = Any  # int | float | str | bool | list[int] | list[float] | list[str]


class Value:
    """An SSA value. ``data`` is set for constants, None otherwise."""

    __slots__ = ("name", "type", "data")

    def __init__(self, name: str, type: TensorType, data: np.ndarray | None = None) -> None:
        self.name = name
        self.type = type
        self.data = data
        if data is not None:
            if tuple(data.shape) != type.shape or DType.from_numpy(data.dtype) is not type.dtype:
                raise ValueError(
                    f"constant {name!r}: data {data.dtype}{list(data.shape)} does not match "
                    f"its type {type}"
                )

    @property
    def is_const(self) -> bool:
        return self.data is not None

    def __repr__(self) -> str:
        kind = "const " if self.is_const else ""
        return f"<{kind}%{self.name}: {self.type}>"


Source = tuple[str, str]  # (op, node name) of a node of the source model


class Node:
    """One operation. ``inputs`` may hold None for an omitted optional input.

    Operands are read by the names the op declares (ir/ops/registry.py): ``node.w`` is the
    weight of a Conv, None when an optional operand is omitted, and a list for a variadic
    one (``node.values`` of a Concat). ``sources`` records which nodes of the model this node
    computes when that is more than itself: a QConv that absorbed a Relu has sources
    (("Conv", "conv1"), ("Relu", "relu1")). Empty means the node is its own source.
    """

    __slots__ = ("op", "inputs", "outputs", "attrs", "name", "sources", "regions")

    def __init__(
        self,
        op: str,
        inputs: list[Value | None],
        outputs: list[Value],
        attrs: dict[str, AttrValue] | None = None,
        name: str = "",
        sources: Iterable[Source] = (),
        regions: Iterable[Graph] = (),
    ) -> None:
        self.op = op
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.attrs = dict(attrs or {})
        self.name = name
        self.sources: tuple[Source, ...] = tuple((str(o), str(n)) for o, n in sources)
        self.regions: tuple[Graph, ...] = tuple(regions)  # bodies of If/Loop/Scan, else ()

    # -- named operands -------------------------------------------------------------------
    def _operand_at(self, name: str) -> tuple[int, bool]:
        from ir.ops.registry import get_op

        opdef = get_op(self.op)
        return opdef.operand_index(name), opdef.variadic and name == opdef.operands[-1]

    def operand(self, name: str) -> Any:
        """The value of operand ``name`` (None if omitted; a list if it is variadic)."""
        k, rest = self._operand_at(name)
        if rest:
            return self.inputs[k:]
        return self.inputs[k] if k < len(self.inputs) else None

    def set_operand(self, name: str, value: Value | None) -> None:
        """Make operand ``name`` read ``value`` (omitted optional operands are filled)."""
        k, rest = self._operand_at(name)
        if rest:
            raise ValueError(f"{self.op}: set the variadic operand {name!r} through inputs")
        while len(self.inputs) <= k:
            self.inputs.append(None)
        self.inputs[k] = value
        while self.inputs and self.inputs[-1] is None:
            self.inputs.pop()

    def first_operand(self) -> Value | None:
        """The op's first operand (x, a, data, or the first of a variadic list): the data it
        works on, for code that treats many ops alike (tiling, reports, calibration)."""
        return self.inputs[0] if self.inputs else None

    def __getattr__(self, name: str) -> Any:
        # reached only for names that are not slots: the op's operands
        if name.startswith("_") or name in Node.__slots__:
            raise AttributeError(name)
        return self.operand(name)

    # -- provenance ------------------------------------------------------------------------
    def origin(self) -> tuple[Source, ...]:
        """The model nodes this node computes: its sources, or itself."""
        return self.sources or ((self.op, self.name),)

    def __repr__(self) -> str:
        ins = ", ".join("_" if v is None else f"%{v.name}" for v in self.inputs)
        outs = ", ".join(f"%{v.name}" for v in self.outputs)
        return f"<{outs} = {self.op}({ins}) {self.attrs}>"


class Graph:
    """A dataflow graph in SSA form with nodes kept in topological order."""

    def __init__(self, name: str = "main") -> None:
        self.name = name
        self.inputs: list[Value] = []
        self.outputs: list[Value] = []
        self.constants: list[Value] = []
        self.nodes: list[Node] = []
        self._names: set[str] = set()
        self._counter = 0

    # -- construction -------------------------------------------------------------------
    def fresh_name(self, hint: str = "") -> str:
        """A value name not used yet in this graph, derived from ``hint``."""
        base = hint or "v"
        if base not in self._names:
            return base
        while True:
            self._counter += 1
            cand = f"{base}_{self._counter}"
            if cand not in self._names:
                return cand

    def _claim(self, name: str) -> str:
        if name in self._names:
            raise ValueError(f"value name {name!r} is defined twice")
        self._names.add(name)
        return name

    def add_input(self, name: str, type: TensorType) -> Value:
        v = Value(self._claim(name), type)
        self.inputs.append(v)
        return v

    def add_const(self, data: np.ndarray, name: str = "") -> Value:
        data = np.asarray(data)
        v = Value(self._claim(self.fresh_name(name or "c")), TensorType.of(data), data)
        self.constants.append(v)
        return v

    def new_value(self, type: TensorType, hint: str = "") -> Value:
        """A value that a node about to be added will define."""
        return Value(self._claim(self.fresh_name(hint)), type)

    def add_node(self, node: Node) -> Node:
        self.nodes.append(node)
        return node

    def rename(self, value: Value, new_name: str) -> None:
        """Give ``value`` a new name, which must not be in use."""
        if new_name != value.name:
            self._claim(new_name)
            self._names.discard(value.name)
            value.name = new_name

    def release_name(self, name: str) -> None:
        """Forget a name whose value was removed, so it may be defined again."""
        self._names.discard(name)

    # -- queries ------------------------------------------------------------------------
    def values(self) -> Iterator[Value]:
        yield from self.inputs
        yield from self.constants
        for n in self.nodes:
            yield from n.outputs

    def producers(self) -> dict[int, Node]:
        """id(value) -> the node that defines it."""
        return {id(v): n for n in self.nodes for v in n.outputs}

    def users(self) -> dict[int, list[Node]]:
        """id(value) -> nodes that read it, in graph order."""
        out: dict[int, list[Node]] = {}
        for n in self.nodes:
            for v in n.inputs:
                if v is not None:
                    out.setdefault(id(v), []).append(n)
        return out

    def replace_uses(self, old: Value, new: Value) -> None:
        """Redirect every read of ``old`` (including graph outputs) to ``new``."""
        for n in self.nodes:
            n.inputs = [new if v is old else v for v in n.inputs]
        self.outputs = [new if v is old else v for v in self.outputs]

    def prune_constants(self) -> None:
        """Drop constants nothing reads any more."""
        used = {id(v) for n in self.nodes for v in n.inputs if v is not None}
        used |= {id(v) for v in self.outputs}
        kept = []
        for c in self.constants:
            if id(c) in used:
                kept.append(c)
            else:
                self.release_name(c.name)
        self.constants = kept

    def op_counts(self) -> dict[str, int]:
        """How many nodes of each op, bodies of regions included."""
        counts: dict[str, int] = {}
        for _, n in self.walk():
            counts[n.op] = counts.get(n.op, 0) + 1
        return counts

    def walk(self) -> Iterator[tuple[Graph, Node]]:
        """(graph, node) for every node, each region's nodes right after its owner's."""
        for n in self.nodes:
            yield self, n
            for body in n.regions:
                yield from body.walk()

    def bodies(self) -> Iterator[Graph]:
        """Every region body nested in this graph, innermost first."""
        for n in self.nodes:
            for body in n.regions:
                yield from body.bodies()
                yield body

    def copy(self) -> Graph:
        """A deep copy: new values and nodes (constant data shared, it is never mutated)."""
        g = Graph(self.name)
        g._names, g._counter = set(self._names), self._counter
        new: dict[int, Value] = {}

        def clone(v: Value) -> Value:
            if id(v) not in new:
                new[id(v)] = Value(v.name, v.type, v.data)
            return new[id(v)]

        g.inputs = [clone(v) for v in self.inputs]
        g.constants = [clone(v) for v in self.constants]
        for n in self.nodes:
            g.nodes.append(Node(n.op, [None if v is None else clone(v) for v in n.inputs],
                                [clone(v) for v in n.outputs], dict(n.attrs), n.name,
                                n.sources, [b.copy() for b in n.regions]))
        g.outputs = [clone(v) for v in self.outputs]
        return g

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        return graphs_equal(self, other)

    __hash__ = None  # type: ignore[assignment]


def _values_equal(a: Value | None, b: Value | None) -> bool:
    if a is None or b is None:
        return a is b
    if a.name != b.name or a.type != b.type:
        return False
    if a.is_const != b.is_const:
        return False
    if a.data is not None and b.data is not None:
        return a.data.dtype == b.data.dtype and np.array_equal(a.data, b.data, equal_nan=True)
    return True


def _seq_equal(xs: Iterable[Value | None], ys: Iterable[Value | None]) -> bool:
    xs, ys = list(xs), list(ys)
    return len(xs) == len(ys) and all(_values_equal(a, b) for a, b in zip(xs, ys))


def _attr_equal(x: AttrValue, y: AttrValue) -> bool:
    """``==``, except that NaN equals NaN (a float attribute may legitimately be NaN)."""
    if isinstance(x, list) and isinstance(y, list):
        return len(x) == len(y) and all(_attr_equal(p, q) for p, q in zip(x, y))
    if isinstance(x, float) and isinstance(y, float) and x != x and y != y:
        return True
    return bool(x == y)


def sources_of(*nodes: Node | None) -> tuple[Source, ...]:
    """The model nodes that ``nodes`` compute together, in order, each once: the sources of
    a node that replaces them."""
    out: dict[Source, None] = {}
    for n in nodes:
        if n is not None:
            out.update(dict.fromkeys(n.origin()))
    return tuple(out)


def _attrs_equal(a: dict[str, AttrValue], b: dict[str, AttrValue]) -> bool:
    return a.keys() == b.keys() and all(_attr_equal(a[k], b[k]) for k in a)


def graphs_equal(a: Graph, b: Graph) -> bool:
    """Structural equality: same names, types, constants, nodes, attributes and order."""
    if a.name != b.name or len(a.nodes) != len(b.nodes):
        return False
    if not (_seq_equal(a.inputs, b.inputs) and _seq_equal(a.outputs, b.outputs)):
        return False
    ca = sorted(a.constants, key=lambda v: v.name)
    cb = sorted(b.constants, key=lambda v: v.name)
    if not _seq_equal(ca, cb):
        return False
    for na, nb in zip(a.nodes, b.nodes):
        if na.op != nb.op or na.name != nb.name or na.sources != nb.sources:
            return False
        if not _attrs_equal(na.attrs, nb.attrs):
            return False
        if not (_seq_equal(na.inputs, nb.inputs) and _seq_equal(na.outputs, nb.outputs)):
            return False
        if len(na.regions) != len(nb.regions) or not all(
                graphs_equal(ra, rb) for ra, rb in zip(na.regions, nb.regions)):
            return False
    return True
