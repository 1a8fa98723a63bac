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
from onnx import ModelProto, NodeProto, numpy_helper

import compiler.frontend.ops  # noqa: F401  (registers every converter)
from compiler.errors import ConversionError, UnsupportedModelError
from compiler.frontend.context import Ctx
from compiler.frontend.registry import CONVERTERS, converter_key
from ir.build import make_node
from ir.graph import Graph, Value
from ir.types import DType, TensorType

_DEFAULT_DOMAINS = ("", "ai.onnx")


def onnx_dtype(elem_type: int, what: str) -> DType:
    """Map an ONNX element type to the IR's, or explain that it is unsupported."""
    try:
        np_dt = onnx.helper.tensor_dtype_to_np_dtype(elem_type)
        return DType.from_numpy(np_dt)
    except (KeyError, TypeError, ValueError):
        name = onnx.TensorProto.DataType.Name(elem_type) if elem_type else "UNDEFINED"
        raise UnsupportedModelError(
            f"{what} has element type {name}, which qnnc does not support"
        ) from None


def attr_values(node: NodeProto) -> dict[str, Any]:
    """ONNX attributes as Python values: ints, floats, str, lists, numpy arrays."""
    out: dict[str, Any] = {}
    for a in node.attribute:
        if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            raise UnsupportedModelError(
                f"attribute {a.name!r} holds a subgraph; control flow is not supported"
            )
        if a.ref_attr_name:
            raise UnsupportedModelError(f"attribute {a.name!r} refers to a function attribute")
        v = onnx.helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode("utf-8", errors="replace")
        elif isinstance(v, onnx.TensorProto):
            v = numpy_helper.to_array(v)
        elif isinstance(v, list) and v and isinstance(v[0], bytes):
            v = [s.decode("utf-8", errors="replace") for s in v]
        elif isinstance(v, list) and v and isinstance(v[0], onnx.TensorProto):
            v = [numpy_helper.to_array(t) for t in v]
        out[a.name] = v
    return out


def _node_label(node: NodeProto, index: int) -> str:
    return node.name or f"{node.op_type}_{index}"


def _safe_py_name(name: str) -> str:
    return re.sub(r"\W", "_", name)


def unsupported_ops(model: ModelProto) -> list[tuple[str, str]]:
    """(op_type, node name) for every node qnnc has no converter for."""
    out = []
    for i, n in enumerate(model.graph.node):
        key = converter_key(n.op_type, n.domain)
        if key not in CONVERTERS:
            out.append((key, _node_label(n, i)))
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
) -> Graph:
    """Convert a checked ONNX model to an IR graph (f32 or whatever types it uses).

    ``input_shapes`` fixes the shapes of inputs with symbolic or unknown dimensions.
    Raises :class:`UnsupportedModelError` listing every unsupported op at once, or
    :class:`ConversionError` naming the node that could not be converted.
    """
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
    env: dict[str, Value] = {}
    overrides = parse_dim_overrides(input_shapes)
    inits = {t.name for t in g.initializer}
    known_inputs = {i.name for i in g.input if i.name not in inits}
    unknown = sorted(set(overrides) - known_inputs)
    if unknown:
        raise ConversionError(
            f"--input-shape names {unknown}, but the model's inputs are {sorted(known_inputs)}"
        )
    for t in g.initializer:
        dt = onnx_dtype(t.data_type, f"initializer {t.name!r}")
        arr = numpy_helper.to_array(t).astype(dt.np, copy=False)
        # reshape: ascontiguousarray turns a scalar into shape (1,)
        env[t.name] = graph.add_const(np.ascontiguousarray(arr).reshape(arr.shape), t.name)
    for inp in g.input:
        if inp.name in inits:
            continue
        env[inp.name] = graph.add_input(inp.name, _input_type(inp, overrides.get(inp.name)))
    ctx = Ctx(graph, model_opset(model))
    for i, node in enumerate(g.node):
        label = _node_label(node, i)
        ctx.node_name, ctx.op_type = label, node.op_type
        ctx.out_hints = [o for o in node.output]
        try:
            ins = [env[x] if x else None for x in node.input]
        except KeyError as e:
            raise ConversionError(
                f"node {label!r} ({node.op_type}) reads undefined value {e}"
            ) from None
        try:
            attrs = attr_values(node)
            key = converter_key(node.op_type, node.domain)
            result = _call(CONVERTERS[key].fn, ctx, ins, attrs, node.op_type)
        except (ConversionError, UnsupportedModelError) as e:
            raise type(e)(f"node {label!r} ({node.op_type}): {e}") from None
        outs = [result] if isinstance(result, Value) else list(result)
        wanted = [o for o in node.output]
        if len(outs) < len([o for o in wanted if o]):
            raise ConversionError(
                f"node {label!r} ({node.op_type}): produced {len(outs)} outputs, "
                f"the model names {len(wanted)}"
            )
        for oname, v in zip(wanted, outs):
            if oname:
                env[oname] = v
    graph.outputs = [_bind_output(graph, ctx, env, o.name) for o in g.output]
    graph.prune_constants()
    return graph


def _call(fn: Any, ctx: Ctx, ins: list[Value | None], attrs: dict[str, Any], op: str) -> Any:
    try:
        return fn(ctx, *ins, **attrs)
    except TypeError as e:
        msg = str(e)
        if "unexpected keyword" in msg or "positional argument" in msg:
            raise ConversionError(f"unsupported attributes or inputs for {op}: {msg}") from None
        raise


def _input_type(inp: onnx.ValueInfoProto, override: tuple[int, ...] | None) -> TensorType:
    tt = inp.type.tensor_type
    if not inp.type.HasField("tensor_type"):
        raise UnsupportedModelError(
            f"input {inp.name!r} is not a tensor (sequences/maps are not supported)"
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


def _bind_output(graph: Graph, ctx: Ctx, env: dict[str, Value], name: str) -> Value:
    """The value of ONNX output ``name``, copied by an Identity when it must carry that name."""
    if name not in env:
        raise ConversionError(f"graph output {name!r} is not produced by any node")
    v = env[name]
    if v.name == name and not v.is_const and v not in graph.inputs:
        return v
    if v.name == name and v.is_const:  # a folded constant holds the name: it moves aside
        graph.rename(v, graph.fresh_name(f"{name}_value"))
    ctx.node_name, ctx.out_hints = f"output_{_safe_py_name(name)}", [name]
    node = make_node(graph, "Identity", [v], name=ctx.node_name, out_names=[name])
    return node.outputs[0]
