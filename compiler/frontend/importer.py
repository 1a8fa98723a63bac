"""ONNX graph → IR graph.

Each ONNX node goes through its converter (see registry.py). Static shapes are resolved at
import: whenever every input of an emitted op is a constant, the op is evaluated on the spot
with its reference semantics, so Shape → Gather → Concat → Reshape chains fold away and only
real computation reaches the IR.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import ModelProto, NodeProto

import compiler.frontend.ops  # noqa: F401  (registers every converter)
from compiler.budget import model_budget, over_budget
from compiler.errors import ConversionError, UnsupportedModelError
from compiler.frontend.context import Ctx, Opt, Resolved, Seq
from compiler.frontend.registry import CONVERTERS, converter_key
from compiler.frontend.scope import Scope, convert_nodes, node_label, walk_nodes
from compiler.frontend.tensors import elem_type_name, tensor_array
from ir.build import make_node
from ir.graph import Graph, Value
from ir.ops.dynamic import check_counted
from ir.types import DType, TensorType

_DEFAULT_DOMAINS = ("", "ai.onnx")


def onnx_dtype(elem_type: int, what: str) -> DType:
    """Map an ONNX element type to the IR's, or explain that it is unsupported."""
    try:
        np_dt = onnx.helper.tensor_dtype_to_np_dtype(elem_type)
        return DType.from_numpy(np_dt)
    except (KeyError, TypeError, ValueError):
        name = elem_type_name(elem_type) if elem_type else "UNDEFINED"
        raise UnsupportedModelError(
            f"{what} has element type {name}, which qnnc does not support"
        ) from None


def attr_values(node: NodeProto) -> dict[str, Any]:
    """ONNX attributes as Python values: ints, floats, str, lists, numpy arrays; a subgraph
    (If's branches, Loop's and Scan's body) stays a GraphProto for its converter."""
    out: dict[str, Any] = {}
    for a in node.attribute:
        if a.type == onnx.AttributeProto.GRAPHS:
            raise UnsupportedModelError(f"attribute {a.name!r} holds a list of subgraphs")
        if a.ref_attr_name:
            raise UnsupportedModelError(f"attribute {a.name!r} refers to a function attribute")
        try:
            v = onnx.helper.get_attribute_value(a)
        except (ValueError, TypeError):
            raise UnsupportedModelError(
                f"attribute {a.name!r} has attribute type {int(a.type)}, which ONNX does not "
                "define; the file is damaged or written for a newer ONNX") from None
        what = f"tensor of attribute {a.name!r}"
        if isinstance(v, bytes):
            v = v.decode("utf-8", errors="replace")
        elif isinstance(v, onnx.TensorProto):
            v = tensor_array(v, what)
        elif isinstance(v, list) and v and isinstance(v[0], bytes):
            v = [s.decode("utf-8", errors="replace") for s in v]
        elif isinstance(v, list) and v and isinstance(v[0], onnx.TensorProto):
            v = [tensor_array(t, what) for t in v]
        out[a.name] = v
    return out


def _safe_py_name(name: str) -> str:
    return re.sub(r"\W", "_", name)


def unsupported_ops(model: ModelProto) -> list[tuple[str, str]]:
    """(op_type, node name) for every node qnnc has no converter for, in subgraphs too."""
    out = []
    for i, n in enumerate(walk_nodes(model.graph.node)):
        key = converter_key(n.op_type, n.domain)
        if key not in CONVERTERS:
            out.append((key, node_label(n, i)))
    return out


def model_opset(model: ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in _DEFAULT_DOMAINS:
            return int(imp.version)
    return 1


def parse_dim_overrides(shapes: Mapping[str, Sequence[int]] | None) -> dict[str, tuple[int, ...]]:
    return {k: tuple(int(d) for d in v) for k, v in (shapes or {}).items()}


def import_model(
    model: ModelProto,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    name: str | None = None,
    *,
    max_tensor_bytes: int | None = None,
) -> Graph:
    """Convert a checked ONNX model to an IR graph (f32 or whatever types it uses).

    ``input_shapes`` fixes the shapes of inputs with symbolic or unknown dimensions;
    ``max_tensor_bytes`` raises the tensor size budget (compiler/budget.py).
    Raises :class:`UnsupportedModelError` listing every unsupported op at once, or
    :class:`ConversionError` naming the node that could not be converted.
    """
    return import_with_outputs(model, input_shapes, name,
                               max_tensor_bytes=max_tensor_bytes)[0]


def import_with_outputs(
    model: ModelProto,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    name: str | None = None,
    *,
    max_tensor_bytes: int | None = None,
) -> tuple[Graph, list[Resolved]]:
    """:func:`import_model`, also giving what each of the model's outputs became: an IR
    output, or a sequence (or optional) whose tensors are IR outputs of their own."""
    bad = unsupported_ops(model)
    if bad:
        by_op: dict[str, list[str]] = {}
        for op, node in bad:
            by_op.setdefault(op, []).append(node)
        lines = [
            f"  {op}: {len(nodes)} node(s): {', '.join(repr(n) for n in nodes[:5])}"
            + (" ..." if len(nodes) > 5 else "")
            for op, nodes in sorted(by_op.items())
        ]
        raise UnsupportedModelError(
            f"the model uses {len(by_op)} op type(s) qnnc does not support:\n"
            + "\n".join(lines)
            + "\nRun `qnnc ops` for the supported list."
        )
    g = model.graph
    graph = Graph(name or _safe_py_name(g.name or "main") or "main")
    scope = Scope(graph)
    env = scope.env
    overrides = parse_dim_overrides(input_shapes)
    budget = model_budget(model, max_tensor_bytes)
    inits = {t.name for t in g.initializer}
    known_inputs = {i.name for i in g.input if i.name not in inits}
    unknown = sorted(set(overrides) - known_inputs)
    if unknown:
        raise ConversionError(
            f"--input-shape names {unknown}, but the model's inputs are {sorted(known_inputs)}"
        )
    for t in g.initializer:
        env[t.name] = graph.add_const(initializer_array(t), t.name)
    for inp in g.input:
        if inp.name in inits:
            continue
        t = _input_type(inp, overrides.get(inp.name))
        big = over_budget(f"input {inp.name!r}", t.shape, t.dtype.np.itemsize, budget)
        if big:
            raise ConversionError(big)
        env[inp.name] = graph.add_input(inp.name, t)
    ctx = Ctx(graph, model_opset(model), scope=scope, declared=declared_shapes(model),
              budget=budget)
    convert_nodes(ctx, g.node, scope)
    results = [_bind_result(graph, ctx, env, o.name) for o in g.output]
    graph.outputs = [v for r in results for v in _tensors_of(r)]
    check_counted(graph)  # data-dependent extents reach only graph outputs
    graph.prune_constants()
    return graph, results


def initializer_array(t: onnx.TensorProto) -> np.ndarray:
    dt = onnx_dtype(t.data_type, f"initializer {t.name!r}")
    arr = tensor_array(t, f"initializer {t.name!r}").astype(dt.np, copy=False)
    # reshape: ascontiguousarray turns a scalar into shape (1,)
    return np.ascontiguousarray(arr).reshape(arr.shape)


def declared_shapes(model: ModelProto) -> dict[str, tuple[int, ...]]:
    """Fully static shapes the model declares for its values (outputs, value_info), in
    subgraphs too: a Loop's scan outputs take their row count from here when its trip
    count is an input."""
    out: dict[str, tuple[int, ...]] = {}

    def visit(g: onnx.GraphProto) -> None:
        for vi in list(g.output) + list(g.value_info):
            tt = vi.type.tensor_type
            if vi.type.HasField("tensor_type") and tt.HasField("shape") and all(
                    d.HasField("dim_value") for d in tt.shape.dim):
                out[vi.name] = tuple(int(d.dim_value) for d in tt.shape.dim)
        for n in g.node:
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    visit(a.g)

    visit(model.graph)
    return out


def _input_type(inp: onnx.ValueInfoProto, override: tuple[int, ...] | None) -> TensorType:
    tt = inp.type.tensor_type
    if not inp.type.HasField("tensor_type"):
        kind = inp.type.WhichOneof("value") or "untyped"
        raise UnsupportedModelError(
            f"input {inp.name!r} is a {kind.removesuffix('_type')}, not a tensor: qnnc resolves "
            "sequences and optionals at compile time, so a graph input must be a tensor (feed "
            "a sequence's tensors as separate inputs and build it with SequenceConstruct)"
        )
    dt = onnx_dtype(tt.elem_type, f"input {inp.name!r}")
    if override is not None:
        if tt.HasField("shape") and len(tt.shape.dim) != len(override):
            raise ConversionError(
                f"--input-shape for {inp.name!r} has rank {len(override)}, the model's input "
                f"has rank {len(tt.shape.dim)}"
            )
        for d_model, d_user in zip(tt.shape.dim, override):
            if _static_dim(d_model) is not None and d_model.dim_value != d_user:
                raise ConversionError(
                    f"--input-shape for {inp.name!r} gives {list(override)}, but the model "
                    f"fixes a dimension to {d_model.dim_value}"
                )
        if any(d <= 0 for d in override):
            raise ConversionError(
                f"--input-shape for {inp.name!r} must be positive: {list(override)}"
            )
        return TensorType(override, dt)
    if not tt.HasField("shape"):
        raise ConversionError(
            f"input {inp.name!r} has no shape; give one with "
            f"--input-shape {inp.name}=1x3x224x224 (your sizes)"
        )
    dims = [_static_dim(d) for d in tt.shape.dim]
    if None in dims:
        d = tt.shape.dim[dims.index(None)]
        sym = d.dim_param or (str(d.dim_value) if d.HasField("dim_value") else "?")
        raise ConversionError(
            f"input {inp.name!r} has a symbolic or unknown dimension ({sym!r}); qnnc "
            f"compiles static shapes. Fix it with --input-shape {inp.name}="
            f"{suggest_shape(list(tt.shape.dim))} (the model's fixed sizes kept, yours in "
            "place of each <...>; or input_shapes= in the Python API)"
        )
    return TensorType(tuple(d for d in dims if d is not None), dt)


def _static_dim(d: onnx.TensorShapeProto.Dimension) -> int | None:
    """A declared dimension's size, or None when it is symbolic: a name, no value at all, or
    a value of -1 or 0, which exporters (paddle2onnx, some tf2onnx) write for "any size"."""
    return int(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0 else None


def suggest_shape(dims: list[onnx.TensorShapeProto.Dimension]) -> str:
    """An --input-shape value for a declared shape: fixed sizes kept, a symbolic leading
    (batch) dimension 1, every other symbolic one a placeholder named after it: its own name
    when readable, H and W for the spatial dimensions of a 4-d (image) input, else d<i>."""
    out = []
    for i, d in enumerate(dims):
        size = _static_dim(d)
        if size is not None:
            out.append(str(size))
        elif i == 0 and len(dims) > 1:
            out.append("1")
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,15}", d.dim_param):
            out.append(f"<{d.dim_param}>")
        elif len(dims) == 4 and i >= 2:
            out.append("<H>" if i == 2 else "<W>")
        else:
            out.append(f"<d{i}>")
    return "x".join(out) or "1"


def _bind_result(graph: Graph, ctx: Ctx, env: dict[str, Resolved], name: str) -> Resolved:
    """ONNX output ``name`` as IR outputs: a tensor is one, named ``name``; a sequence's
    tensors are ``name_0``, ``name_1``, ...; an optional is its value's, or none if absent."""
    if name not in env:
        raise ConversionError(f"graph output {name!r} is not produced by any node")
    return _bind_resolved(graph, ctx, env[name], name)


def _bind_resolved(graph: Graph, ctx: Ctx, r: Resolved, name: str) -> Resolved:
    if isinstance(r, Seq):
        return Seq(tuple(_bind_output(graph, ctx, v, f"{name}_{i}")
                         for i, v in enumerate(r.items)), r.dtype)
    if isinstance(r, Opt):
        return Opt(None if r.value is None else _bind_resolved(graph, ctx, r.value, name))
    return _bind_output(graph, ctx, r, name)


def _tensors_of(r: Resolved) -> list[Value]:
    if isinstance(r, Seq):
        return list(r.items)
    if isinstance(r, Opt):
        return [] if r.value is None else _tensors_of(r.value)
    return [r]


def _bind_output(graph: Graph, ctx: Ctx, v: Value, name: str) -> Value:
    """IR value ``v`` as the graph output ``name``, copied by an Identity when it must carry
    that name."""
    if v.name == name and not v.is_const and v not in graph.inputs:
        return v
    if v.name == name and v.is_const:  # a folded constant holds the name: it moves aside
        graph.rename(v, graph.fresh_name(f"{name}_value"))
    ctx.node_name, ctx.out_hints = f"output_{_safe_py_name(name)}", [name]
    node = make_node(graph, "Identity", [v], name=ctx.node_name, out_names=[name])
    return node.outputs[0]
