"""Print a graph as IR text.

The text is deterministic (same graph, same bytes) and exact: parse_graph reads it back into a
structurally equal graph, constants bit for bit. Constants with more than ``max_inline``
elements print as a named reference ``@name`` to a side blob instead of their data; pass a
dict as ``blobs`` to collect those arrays (save_ir does, and writes them to a .npz).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import numpy as np

from ir.graph import Graph, Node, Value
from ir.text.syntax import format_float, ident, quote, sigil_name
from ir.types import DType, QuantParams, TensorType

DEFAULT_MAX_INLINE = 16


def print_graph(
    graph: Graph,
    *,
    blobs: MutableMapping[str, np.ndarray] | None = None,
    max_inline: int | None = DEFAULT_MAX_INLINE,
    shared: bool = False,
) -> str:
    """The IR text of ``graph``. ``max_inline=None`` prints every constant inline.
    ``shared``: ``blobs`` already holds other graphs' arrays (several graphs saved with one
    blob file): an equal array under the same name is referred to, not stored again, and a
    different one gets a name of its own."""
    keys: dict[str, int] = {}
    if shared and blobs is not None:
        keys = {k: -1 for k in blobs}  # taken by other graphs (id -1 is no value's)
        for c in graph.constants:
            if c.name in blobs and c.data is not None and _same(blobs[c.name], c.data):
                keys[c.name] = id(c)
    return "\n".join(_graph_lines(graph, blobs, max_inline, "", keys)) + "\n"


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _graph_lines(graph: Graph, blobs: MutableMapping[str, np.ndarray] | None,
                 max_inline: int | None, indent: str, keys: dict[str, int]) -> list[str]:
    """A graph, its statements indented two spaces more; region bodies nest under their
    node, two spaces deeper still. ``keys`` are the blob names taken so far: a constant of a
    body named like one of another scope gets its blob name with a suffix (``@w.1``)."""
    params = ", ".join(f"{sigil_name('%', v.name)}: {format_type(v.type)}" for v in graph.inputs)
    outs = ", ".join(sigil_name("%", v.name) for v in graph.outputs)
    lines = [f"{indent}graph {sigil_name('@', graph.name)}({params}) -> ({outs}) {{"]
    for c in graph.constants:
        key, k = c.name, 0
        while key in keys and keys[key] != id(c):
            k += 1
            key = f"{c.name}.{k}"
        keys[key] = id(c)
        lines.append(indent + "  " + format_const(c, blobs, max_inline, key))
    for n in graph.nodes:
        lines.append(indent + "  " + format_node(n))
        for body in n.regions:
            lines += _graph_lines(body, blobs, max_inline, indent + "    ", keys)
    lines.append(indent + "}")
    return lines


def format_type(t: TensorType) -> str:
    dims = ",".join(str(d) for d in t.shape)
    q = "" if t.quant is None else format_quant(t.quant)
    return f"{t.dtype.value}[{dims}]{q}"


def format_quant(q: QuantParams) -> str:
    if q.axis is None:
        return f"{{scale={format_float(q.scale[0])}, zp={q.zero_point[0]}}}"
    scales = ", ".join(format_float(s) for s in q.scale)
    zps = ", ".join(str(z) for z in q.zero_point)
    return f"{{scale=[{scales}], zp=[{zps}], axis={q.axis}}}"


def format_const(
    c: Value, blobs: MutableMapping[str, np.ndarray] | None, max_inline: int | None,
    key: str = "",
) -> str:
    data = c.data
    assert data is not None, f"constant %{c.name} has no data"
    head = f"{sigil_name('%', c.name)} = const {format_type(c.type)}"
    if max_inline is not None and data.size > max_inline:
        key = key or c.name
        if blobs is not None:
            blobs[key] = data
        return f"{head} {sigil_name('@', key)}"
    return f"{head} dense<[{', '.join(format_elements(data))}]>"


def format_elements(data: np.ndarray) -> list[str]:
    """Every element of ``data``, flat in C order, spelled exactly for its element type."""
    flat = data.reshape(-1)
    dtype = DType.from_numpy(data.dtype)
    if dtype.is_float:
        return [format_float(x) for x in flat]
    if dtype is DType.bool:
        return ["true" if x else "false" for x in flat.tolist()]
    if dtype.is_storage_only:  # int4, int2 (ml_dtypes scalars)
        return [str(int(x)) for x in flat]
    return [str(x) for x in flat.tolist()]


def format_node(n: Node) -> str:
    results = ", ".join(f"{sigil_name('%', v.name)}: {format_type(v.type)}" for v in n.outputs)
    args = ", ".join("_" if v is None else sigil_name("%", v.name) for v in n.inputs)
    text = f"{results} = " if n.outputs else ""
    text += f"{ident(n.op)}({args})"
    if n.attrs:
        items = (f"{ident(k)}={format_attr(n.attrs[k])}" for k in sorted(n.attrs))
        text += " {" + ", ".join(items) + "}"
    if n.name or n.sources:
        text += f" loc({quote(n.name)}"
        if n.sources:
            text += " from [" + ", ".join(f"{ident(op)} {quote(name)}"
                                          for op, name in n.sources) + "]"
        text += ")"
    return text


def format_attr(v: Any) -> str:
    """An attribute value. Floats always carry a '.', an exponent or inf/nan, so the kind of
    every scalar is visible in the text; lists print element by element. An empty list is
    ``[]`` whatever its kind: attribute values are plain Python lists, and the kind (ints,
    floats or strs) is the one the op declares in the registry, which the verifier checks."""
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return format_float(np.float64(v))
    if isinstance(v, str):
        return quote(v)
    if isinstance(v, (list, tuple, np.ndarray)):
        items = [format_attr(x) for x in v]
        if all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in v):
            return "[" + ",".join(items) + "]"
        return "[" + ", ".join(items) + "]"
    raise TypeError(f"attribute value {v!r} of type {type(v).__name__} cannot be printed")
