"""Whole-graph C generation: model.c, model.h and the weights (weights.c, or a blob).

model.c holds one ``static void`` function per node (see emitter.py), the static arena, and
``qnnc_run``, which calls the layers in order with pointers into the arena, the caller's
input/output buffers, or the weights. model.h declares ``qnnc_run`` and ``qnnc_model_info``
(names, shapes, dtypes of the inputs and outputs, arena and weight bytes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

# importing the op families registers their emitters
import targets.c.ops_elementwise
import targets.c.ops_layout
import targets.c.ops_linalg
import targets.c.ops_movement
import targets.c.ops_norm
import targets.c.ops_pool
import targets.c.ops_quant
import targets.c.ops_reduce
import targets.c.ops_shape  # noqa: F401
from ir.graph import Graph, Value
from ir.types import DType
from targets.c.emitter import (
    C_TYPES,
    LayerCtx,
    Renderer,
    WeightTable,
    c_type,
    layer_comment,
)
from targets.c.memory import ALIGN, MemoryPlan, Storage, align, plan_memory
from targets.c.names import NameTable, c_comment, c_string

#: weights above this many bytes go to weights.bin, embedded with .incbin, instead of C text
BLOB_THRESHOLD = 1 << 20

_DTYPE_ENUM = {
    DType.f32: "QNNC_F32", DType.f64: "QNNC_F64", DType.i8: "QNNC_I8", DType.i16: "QNNC_I16",
    DType.i32: "QNNC_I32", DType.i64: "QNNC_I64", DType.u8: "QNNC_U8", DType.u16: "QNNC_U16",
    DType.u32: "QNNC_U32", DType.u64: "QNNC_U64", DType.bool: "QNNC_BOOL",
}


@dataclass
class LayerInfo:
    fn: str
    node: str
    op: str
    inplace: bool


@dataclass
class CSources:
    """The generated files (name -> text or bytes) and what the report needs."""

    files: dict[str, str | bytes]
    arena_bytes: int
    weight_bytes: int
    layers: list[LayerInfo] = field(default_factory=list)


def generate(graph: Graph, renderer: Renderer | None = None, *,
             blob_threshold: int = BLOB_THRESHOLD, version: str = "") -> CSources:
    """Generate the C sources of ``graph`` (raises CodegenError naming any unsupported node)."""
    r = renderer or Renderer()
    r.prepare(graph)
    for node in graph.nodes:  # every unsupported op is found before any work is done
        r.emitter(node)
    for v in list(graph.inputs) + list(graph.outputs):
        c_type(v.type.dtype)
    names = NameTable()
    weights = WeightTable(names)
    plan = plan_memory(
        graph,
        inplace_ok=lambda n: r.emitter(n).inplace,
        scratch_bytes=lambda n: (r.emitter(n).scratch or (lambda _n: 0))(n),
        nbytes_of=r.nbytes,
    )
    consts = {id(v): v for v in graph.constants}
    funcs, calls, layers = [], [], []
    for i, node in enumerate(graph.nodes):
        fn = names.claim(f"layer_{i:03d}", node.name or node.op)
        st_in = [plan.storage_of[id(v)] if v is not None else None for v in node.inputs]
        st_out = [plan.storage_of[id(v)] for v in node.outputs]
        aliased = i in plan.inplace or any(
            s is o for s in st_in if s is not None for o in st_out)
        ctx = LayerCtx(node, r, weights, inplace=i in plan.inplace,
                       same_storage=lambda a, b, si=st_in, so=st_out: si[a] is so[b])
        body = r.emitter(node).fn(ctx)
        params, args = [], []
        rq = "" if aliased else f"{r.restrict} "
        for k, v in enumerate(node.inputs):
            if v is None:
                continue
            ct = c_type(v.type.dtype, node)
            params.append(f"const {ct} *{rq}in{k}")
            used = re.search(rf"\bin{k}\b", body) is not None
            args.append(_ref(v, plan, consts, weights, graph) if used else "NULL")
        for k, v in enumerate(node.outputs):
            params.append(f"{c_type(v.type.dtype, node)} *{rq}out{k}")
            args.append(_ref(v, plan, consts, weights, graph))
        if i in plan.scratch:
            params.append("void *QNNC_RESTRICT scratch")
            args.append(f"qnnc_arena + {plan.scratch[i].offset}")
        sig = f"static void {fn}({', '.join(params) or 'void'})"
        indented = "\n".join(("    " + ln) if ln else "" for ln in body.splitlines())
        funcs.append(f"{layer_comment(node)}\n{sig} {{\n{indented}\n}}\n")
        calls.append(f"    {fn}({', '.join(args)});")
        layers.append(LayerInfo(fn, node.name, node.op, i in plan.inplace))
    for v, k in plan.copies:
        calls.append(f"    memcpy(outputs[{k}], {_ref(v, plan, consts, weights, graph)}, "
                     f"{v.type.nbytes});")
    files: dict[str, str | bytes] = {}
    wdecl, wfiles = _weights(weights, blob_threshold)
    files.update(wfiles)
    files["model.h"] = _header(graph, plan, weights.nbytes, version, r.header_extra())
    files["model.c"] = _model_c(graph, r, plan, weights.nbytes, wdecl, funcs, calls, version)
    return CSources(files, plan.arena_bytes, weights.nbytes, layers)


def _ref(v: Value, plan: MemoryPlan, consts: dict[int, Value], weights: WeightTable,
         graph: Graph) -> str:
    """The C expression of the buffer holding ``v``."""
    s: Storage = plan.storage_of[id(v)]
    ct = C_TYPES[v.type.dtype]
    if s.kind == "input":
        return f"(const {ct} *)inputs[{s.index}]"
    if s.kind == "output":
        return f"({ct} *)outputs[{s.index}]"
    if s.kind == "const":
        root = consts[s.members[0]]
        assert root.data is not None
        name = weights.add(root.data, root.name, key=root)
        return name if root.type.dtype == v.type.dtype else f"(const {ct} *){name}"
    return f"({ct} *)(qnnc_arena + {s.offset})"


def _weights(weights: WeightTable, threshold: int) -> tuple[str, dict[str, str | bytes]]:
    """(declarations for model.c, weight files). Small models get readable C arrays."""
    head = "/* Generated by qnnc: the model's constant tensors. */\n#include \"qnnc_runtime.h\"\n\n"
    if weights.nbytes <= threshold:
        decl, defs = [], [head]
        for name, a in weights.arrays:
            ct = C_TYPES[DType.from_numpy(a.dtype)]
            n = max(a.size, 1)
            decl.append(f"extern const {ct} {name}[{n}];")
            defs.append(f"const {ct} {name}[{n}] QNNC_ALIGNED(64) = {{\n{_c_values(a)}\n}};\n")
        return "\n".join(decl), {"weights.c": "\n".join(defs)}
    blob, decl, at = bytearray(), ["extern const uint8_t qnnc_weight_blob[];"], 0
    for name, a in weights.arrays:
        at = align(len(blob), ALIGN)
        blob += b"\0" * (at - len(blob)) + a.tobytes()
        ct = C_TYPES[DType.from_numpy(a.dtype)]
        decl.append(f"#define {name} ((const {ct} *)(qnnc_weight_blob + {at}))")
    asm = (head + "/* weights.bin (raw little-endian arrays, 64-byte aligned) embedded at link "
           "time; offsets are in model.c. */\n"
           "__asm__(\".section .rodata\\n.balign 64\\n.globl qnnc_weight_blob\\n"
           "qnnc_weight_blob:\\n.incbin \\\"weights.bin\\\"\\n.previous\\n\");\n")
    return "\n".join(decl), {"weights.c": asm, "weights.bin": bytes(blob)}


def _c_values(a: np.ndarray, per_line: int = 8) -> str:
    flat = a.reshape(-1)
    if a.dtype.kind == "f":
        vals = [_hexf(float(x), a.dtype == np.float32) for x in flat.tolist()]
    else:
        vals = [str(int(x)) for x in flat.tolist()]
        if a.dtype == np.int64:
            vals = [f"{v}LL" if abs(int(v)) > 2**31 - 1 else v for v in vals]
    if not vals:
        vals = ["0"]
    return "\n".join("    " + ", ".join(vals[k:k + per_line]) + ","
                     for k in range(0, len(vals), per_line))


def _hexf(x: float, single: bool) -> str:
    """Exact float literal (C99 hex float) so the bits survive the round trip."""
    if x != x:
        return "NAN"
    if x in (float("inf"), float("-inf")):
        return "INFINITY" if x > 0 else "-INFINITY"
    return float.hex(x) + ("f" if single else "")


def _infos(vals: list[Value], what: str) -> str:
    rows = []
    for v in vals:
        shape = list(v.type.shape)
        dims = ", ".join(str(d) for d in shape) or "0"
        rows.append(f"    {{{c_string(v.name)}, {_DTYPE_ENUM[v.type.dtype]}, {len(shape)}, "
                    f"{{{dims}}}, {v.type.nbytes}}},")
    body = "\n".join(rows) or "    {0}"
    return f"static const qnnc_tensor_info qnnc_{what}[{max(len(vals), 1)}] = {{\n{body}\n}};"


def _header(graph: Graph, plan: MemoryPlan, wbytes: int, version: str, extra: str = "") -> str:
    lines = [
        f"/* Generated by qnnc {c_comment(version)} from graph {c_comment(repr(graph.name))}.",
        " *",
        " * int qnnc_run(const void *const *inputs, void *const *outputs):",
        " *   inputs[k] / outputs[k] point to dense row-major arrays, in this order:",
    ]
    for k, v in enumerate(graph.inputs):
        lines.append(f" *   input  {k}: {c_comment(repr(v.name))} {v.type.dtype.value}"
                     f"{list(v.type.shape)}")
    for k, v in enumerate(graph.outputs):
        lines.append(f" *   output {k}: {c_comment(repr(v.name))} {v.type.dtype.value}"
                     f"{list(v.type.shape)}")
    lines += [
        " *   returns 0. Not reentrant: the activations live in one static arena.",
        f" * arena: {plan.arena_bytes} bytes; weights: {wbytes} bytes. */",
        "#ifndef QNNC_MODEL_H",
        "#define QNNC_MODEL_H",
        "",
        "#include \"qnnc_runtime.h\"",
        "",
        f"#define QNNC_NUM_INPUTS {len(graph.inputs)}",
        f"#define QNNC_NUM_OUTPUTS {len(graph.outputs)}",
        "",
        "#ifdef __cplusplus",
        "extern \"C\" {",
        "#endif",
        "extern const qnnc_model_info_t qnnc_model_info;",
        "int qnnc_run(const void *const *inputs, void *const *outputs);",
        *([extra] if extra else []),
        "#ifdef __cplusplus",
        "}",
        "#endif",
        "",
        "#endif /* QNNC_MODEL_H */",
        "",
    ]
    return "\n".join(lines)


def _model_c(graph: Graph, r: Renderer, plan: MemoryPlan, wbytes: int, wdecl: str,
             funcs: list[str], calls: list[str], version: str) -> str:
    includes = "\n".join(f"#include \"{h}\"" for h in r.headers if h != "qnnc_runtime.h")
    parts = [
        f"/* Generated by qnnc {c_comment(version)} for target {r.name}: "
        f"{len(graph.nodes)} layers. */",
        "#include \"model.h\"",
        includes,
        "",
        f"#define QNNC_ARENA_BYTES {max(plan.arena_bytes, 1)}",
        "static uint8_t qnnc_arena[QNNC_ARENA_BYTES] QNNC_ALIGNED(64) QNNC_UNUSED;",
        "",
        "/* weights (weights.c) */",
        wdecl,
        "",
        r.prelude(),
        *funcs,
        _infos(list(graph.inputs), "inputs"),
        _infos(list(graph.outputs), "outputs"),
        "",
        "const qnnc_model_info_t qnnc_model_info = {",
        f"    {c_string(graph.name)}, {len(graph.inputs)}, {len(graph.outputs)},",
        f"    qnnc_inputs, qnnc_outputs, {plan.arena_bytes}, {wbytes}",
        "};",
        "",
        "int qnnc_run(const void *const *inputs, void *const *outputs) {",
        "    (void)inputs; (void)outputs;",
        *calls,
        "    return 0;",
        "}",
        "",
    ]
    return "\n".join(parts)
