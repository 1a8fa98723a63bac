"""`qnnc inspect` (a model summary and a per-layer cost table) and `qnnc ops`."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import ModelProto

from compiler.cli_common import input_shapes_arg, print_json
from compiler.errors import QnncError, UnsupportedModelError
from compiler.flops import graph_costs, graph_totals, human
from compiler.frontend.importer import import_model, unsupported_ops
from compiler.frontend.loader import load_onnx
from compiler.frontend.registry import supported_ops
from compiler.frontend.tensors import elem_type_name
from compiler.shape_profiles import expand, profile_text, signature, suggest
from ir.graph import Graph
from targets.tables import table


def _dims(vi: onnx.ValueInfoProto) -> list[int | str]:
    tt = vi.type.tensor_type
    if not tt.HasField("shape"):
        return []
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tt.shape.dim]


def _elem(vi: onnx.ValueInfoProto) -> str:
    if not vi.type.HasField("tensor_type"):
        return vi.type.WhichOneof("value") or "?"
    et = vi.type.tensor_type.elem_type
    return elem_type_name(et).lower() if et else "undefined"


def _io(vi: onnx.ValueInfoProto) -> dict[str, Any]:
    tt = vi.type.tensor_type
    has_shape = vi.type.HasField("tensor_type") and tt.HasField("shape")
    return {"name": vi.name, "dtype": _elem(vi), "shape": _dims(vi) if has_shape else None}


def model_info(proto: ModelProto, path: str) -> dict[str, Any]:
    """What the ONNX file says about itself, before any import."""
    inits = {t.name for t in proto.graph.initializer}
    producer = " ".join(p for p in (proto.producer_name, proto.producer_version) if p)
    return {
        "file": path,
        "graph": proto.graph.name,
        "producer": producer or "unknown",
        "ir_version": int(proto.ir_version),
        "opsets": {(o.domain or "ai.onnx"): int(o.version) for o in proto.opset_import},
        "onnx_nodes": len(proto.graph.node),
        "initializers": len(inits),
        "inputs": [_io(i) for i in proto.graph.input if i.name not in inits],
        "outputs": [_io(o) for o in proto.graph.output],
    }


def _shape_text(io: dict[str, Any]) -> str:
    if io["shape"] is None:
        return f"{io['dtype']} (no shape)"
    return f"{io['dtype']}[{','.join(str(d) for d in io['shape'])}]"


def unsupported_message(bad: list[tuple[str, str]]) -> str:
    """Every unsupported op with every node that uses it (nothing elided)."""
    by_op: dict[str, list[str]] = {}
    for op, node in bad:
        by_op.setdefault(op, []).append(node)
    parts = [
        f"{op} ({len(nodes)} node{'s' if len(nodes) > 1 else ''}: "
        f"{', '.join(repr(n) for n in nodes)})"
        for op, nodes in sorted(by_op.items())
    ]
    return (
        f"the model uses {len(by_op)} op type(s) qnnc does not support: {'; '.join(parts)}. "
        "Run `qnnc ops` for the supported list."
    )


def report(info: dict[str, Any], graph: Graph | None, bad: list[tuple[str, str]]) -> dict:
    """The whole inspect result as plain data (what --json prints)."""
    data: dict[str, Any] = {"model": info}
    if bad:
        data["unsupported"] = [{"op": op, "node": node} for op, node in bad]
    if graph is not None:
        costs = graph_costs(graph)
        totals = graph_totals(graph, costs)
        data["ir_inputs"] = [{"name": v.name, "type": str(v.type)} for v in graph.inputs]
        data["layers"] = [
            {
                "name": c.name, "op": c.op, "outputs": [str(t) for t in c.outputs],
                "params": c.params, "macs": c.macs, "flops": c.flops,
            }
            for c in costs
        ]
        data["totals"] = {
            "params": totals.params, "macs": totals.macs, "flops": totals.flops,
            "ir_nodes": len(graph.nodes), "op_counts": totals.op_counts,
        }
    return data


def render(data: dict[str, Any]) -> str:
    info = data["model"]
    opsets = ", ".join(f"{d} {v}" for d, v in info["opsets"].items())
    lines = [
        f"model     {info['file']}",
        f"producer  {info['producer']}",
        f"graph     {info['graph'] or '-'} (ONNX IR version {info['ir_version']}, opset {opsets})",
        f"nodes     {info['onnx_nodes']} ONNX nodes, {info['initializers']} initializers",
        "inputs",
    ]
    lines += [f"  {io['name']}: {_shape_text(io)}" for io in info["inputs"]]
    lines.append("outputs")
    lines += [f"  {io['name']}: {_shape_text(io)}" for io in info["outputs"]]
    if "unsupported" in data:
        lines += ["", "unsupported ops"]
        rows = [[u["op"], u["node"]] for u in data["unsupported"]]
        lines.append(table(["op", "node"], rows))
    if "symbolic" in data:
        sym = data["symbolic"]
        counts = ", ".join(f"{op} x{n}" for op, n in sym["onnx_op_counts"].items())
        lines += ["", f"params    {human(sym['params'])} ({sym['params']})",
                  f"ops       {counts or 'none'}", "",
                  "symbolic dimensions: per-layer shapes and FLOPs need sizes; give them "
                  "with --input-shape (several sizes compile shape profiles), e.g."]
        lines += [f"  --input-shape {x['name']}={x['suggest']}" for x in sym["inputs"]]
    if "profiles" in data:
        lines += ["", "shape profiles (the layer table below is the first one's)"]
        lines.append(table(["#", "profile", "IR nodes", "MACs", "FLOPs"], [
            [k, p["shapes"], p["ir_nodes"], human(p["macs"]), human(p["flops"])]
            for k, p in enumerate(data["profiles"])], right=(0, 2, 3, 4)))
    if "layers" in data:
        lines += ["", "inputs as compiled: " + ", ".join(
            f"{v['name']}: {v['type']}" for v in data["ir_inputs"]
        ), ""]
        rows = [
            [i, x["name"], x["op"], x["outputs"][0] if x["outputs"] else "-",
             human(x["params"]), human(x["macs"]), human(x["flops"])]
            for i, x in enumerate(data["layers"])
        ]
        lines.append(table(["#", "node", "op", "output", "params", "MACs", "FLOPs"], rows,
                           right=(0, 4, 5, 6)))
        t = data["totals"]
        counts = ", ".join(f"{op} x{n}" for op, n in t["op_counts"].items()) or "none"
        lines += [
            "",
            f"total     {t['ir_nodes']} IR nodes; params {human(t['params'])} ({t['params']}); "
            f"MACs {human(t['macs'])} ({t['macs']}); FLOPs {human(t['flops'])} ({t['flops']})",
            f"ops       {counts}",
        ]
    return "\n".join(lines)


def cmd_inspect(args: argparse.Namespace) -> int:
    if Path(args.model).is_dir():  # a folder qnnc compile wrote
        from compiler.cli_inspect_folder import inspect_folder

        return inspect_folder(args)
    proto = load_onnx(args.model)
    info = model_info(proto, args.model)
    bad = unsupported_ops(proto)
    sig = signature(proto)
    graph: Graph | None = None
    error: QnncError | None = None
    profiles: list[dict[str, tuple[int, ...]]] = []
    if bad:
        error = UnsupportedModelError(unsupported_message(bad))
    else:
        try:
            profiles = expand(input_shapes_arg(args), sig)
            if profiles or not any(s.symbolic for s in sig):
                graph = import_model(proto, profiles[0] if profiles else None,
                                     max_tensor_bytes=args.max_tensor_size)
        except QnncError as e:
            error = e
    data = report(info, graph, bad)
    open_dims = [s for s in sig if s.symbolic]
    if graph is None and error is None:
        data["symbolic"] = {
            "inputs": [{"name": s.name, "type": s.text(), "suggest": suggest(s)}
                       for s in open_dims],
            "onnx_op_counts": dict(sorted(Counter(n.op_type for n in proto.graph.node)
                                          .items())),
            "params": _declared_params(proto),
        }
    if len(profiles) > 1 and graph is not None:
        data["profiles"] = [_profile_totals(proto, p, args.max_tensor_size) for p in profiles]
    if args.json:
        print_json(data)
    else:
        print(render(data))
    if error is not None:
        raise error
    return 0


def _declared_params(proto: ModelProto) -> int:
    """Elements of the initializers and Constant tensors (the weights, before import)."""
    tensors = list(proto.graph.initializer) + [
        a.t for n in proto.graph.node if n.op_type == "Constant" for a in n.attribute
        if a.type == onnx.AttributeProto.TENSOR]
    return int(sum(int(np.prod(t.dims)) for t in tensors))


def _profile_totals(proto: ModelProto, shapes: dict[str, tuple[int, ...]],
                    max_tensor_bytes: int | None) -> dict[str, Any]:
    g = import_model(proto, shapes, max_tensor_bytes=max_tensor_bytes)
    t = graph_totals(g, graph_costs(g))
    return {"shapes": profile_text(shapes), "ir_nodes": len(g.nodes), "macs": t.macs,
            "flops": t.flops}


def cmd_ops(args: argparse.Namespace) -> int:
    convs = supported_ops()
    if args.json:
        print_json([
            {"onnx_op": c.op_type, "ir_ops": list(c.ir_ops), "note": c.note} for c in convs
        ])
        return 0
    rows = [[c.op_type, ", ".join(c.ir_ops), c.note] for c in convs]
    print(table(["ONNX op", "IR ops", "note"], rows))
    print(f"\n{len(convs)} ONNX ops supported (default domain)")
    return 0
