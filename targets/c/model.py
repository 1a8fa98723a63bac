"""Whole-graph C generation: model.c, model.h and the weights (weights.c, or a blob).

model.c holds one ``static void`` function per node (see emitter.py; a view, which moves
nothing, has none), the static arena, and ``qnnc_run``, which calls the layers in order with
pointers into the arena or the caller's input/output buffers; the weights are globals the
layers name themselves. model.h declares ``qnnc_run`` and ``qnnc_model_info`` (names,
shapes, dtypes of the inputs and outputs, arena and weight bytes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# importing the op families registers their emitters
import targets.c.ops_conv_transpose
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
    plus,
)
from targets.c.memory import MemoryPlan, Storage, plan_memory
from targets.c.names import NameTable, c_comment, c_string
from targets.c.params import Params
from targets.c.weights_file import weight_files
from targets.c.wrap import WIDTH, comment_block, wrap_line, wrap_lines

#: weights above this many bytes go to weights.bin, embedded with .incbin, instead of C text
BLOB_THRESHOLD = 1 << 20

#: identifiers the signature itself uses, which no parameter may take
_SIGNATURE_WORDS = {"scratch", "QNNC_RESTRICT", "restrict", "void", *C_TYPES.values()}

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

    passed: set[str] = set()  # storage kinds qnnc_run passes on: does it read inputs?

    def ref(v: Value) -> str:
        passed.add(plan.storage_of[id(v)].kind)
        return _ref(v, plan, consts, weights)

    def const_ref(v: Value) -> str:
        text = ref(v)
        return text if text.isidentifier() else f"({text})"

    for i, node in enumerate(graph.nodes):
        st_in = [plan.storage_of[id(v)] if v is not None else None for v in node.inputs]
        st_out = [plan.storage_of[id(v)] for v in node.outputs]
        params = Params(node, lambda v: plan.storage_of[id(v)].kind == "const", const_ref)
        ctx = LayerCtx(node, r, weights, params, inplace=i in plan.inplace,
                       same_storage=lambda a, b, si=st_in, so=st_out: si[a] is so[b])
        body = r.emitter(node).fn(ctx)
        if not body.strip():  # a view: its output is its input's bytes
            calls.append(f"    /* {node.op} {c_comment(repr(node.name))}: nothing to move */")
            layers.append(LayerInfo("", node.name, node.op, i in plan.inplace))
            continue
        fn = names.claim(f"layer_{i:03d}", node.name or node.op)
        stores = [plan.storage_of[id(v)] for v in params.values]
        aliased = len({id(s) for s in stores}) < len(stores)
        decls, body, values = params.finish(body, "" if aliased else f"{r.restrict} ",
                                            _SIGNATURE_WORDS)
        args = [ref(v) for v in values]
        if i in plan.scratch:
            decls.append(f"void *{r.restrict} scratch")
            args.append(plus("qnnc_arena", plan.scratch[i].offset))
        sig = f"static void {fn}({', '.join(decls) or 'void'})"
        indented = "\n".join(("    " + ln) if ln else "" for ln in body.splitlines())
        funcs.append(wrap_lines(f"{layer_comment(node)}\n{sig} {{\n{indented}\n}}\n"))
        calls += wrap_line(f"    {fn}({', '.join(args)});")
        layers.append(LayerInfo(fn, node.name, node.op, i in plan.inplace))
    for v, k in plan.copies:
        calls += wrap_line(f"    memcpy(outputs[{k}], {ref(v)}, {v.type.nbytes});")
    files: dict[str, str | bytes] = {}
    wdecl, wfiles = weight_files(weights, blob_threshold)
    files.update(wfiles)
    files["model.h"] = _header(graph, plan, weights.nbytes, version, r.header_extra())
    unused = [f"(void){k}s;" for k in ("input", "output") if k not in passed]
    if unused:  # a graph that never reads its inputs (or writes no output buffer)
        calls.insert(0, "    " + " ".join(unused))
    files["model.c"] = _model_c(graph, r, plan, weights.nbytes, wdecl, funcs, calls, version)
    return CSources(files, plan.arena_bytes, weights.nbytes, layers)


def _ref(v: Value, plan: MemoryPlan, consts: dict[int, Value], weights: WeightTable) -> str:
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
    return f"({ct} *)({plus('qnnc_arena', s.offset)})" if s.offset else f"({ct} *)qnnc_arena"


def _infos(vals: list[Value], what: str) -> str:
    rows = []
    for v in vals:
        shape = list(v.type.shape)
        dims = ", ".join(str(d) for d in shape) or "0"
        name = c_string(v.name, width=WIDTH - 40, indent="     ")
        rows += wrap_line(f"    {{{name}, {_DTYPE_ENUM[v.type.dtype]}, {len(shape)}, "
                          f"{{{dims}}}, {v.type.nbytes}}},")
    body = "\n".join(rows) or "    {0}"
    return f"static const qnnc_tensor_info qnnc_{what}[{max(len(vals), 1)}] = {{\n{body}\n}};"


def _made_by(version: str) -> str:
    return f"Generated by qnnc {c_comment(version)}" if version else "Generated by qnnc"


def _header(graph: Graph, plan: MemoryPlan, wbytes: int, version: str, extra: str = "") -> str:
    about = [
        f"{_made_by(version)} from graph {c_comment(repr(graph.name))}.",
        "",
        "int qnnc_run(const void *const *inputs, void *const *outputs):",
        "  inputs[k] / outputs[k] point to dense row-major arrays, in this order:",
    ]
    for what, vals in (("input ", graph.inputs), ("output", graph.outputs)):
        about += [f"  {what} {k}: {c_comment(repr(v.name))} {v.type.dtype.value}"
                  f"{list(v.type.shape)}" for k, v in enumerate(vals)]
    about += [
        "  returns 0. Not reentrant: the activations live in one static arena.",
        f"arena: {plan.arena_bytes} bytes; weights: {wbytes} bytes.",
    ]
    lines = [
        comment_block(about),
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
        comment_block([f"{_made_by(version)} for target {c_comment(r.name)}: "
                       f"{len(graph.nodes)} layers."]),
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
        f"    {c_string(graph.name, width=WIDTH - 40, indent='    ')}, {len(graph.inputs)}, "
        f"{len(graph.outputs)},",
        f"    qnnc_inputs, qnnc_outputs, {plan.arena_bytes}, {wbytes}",
        "};",
        "",
        "int qnnc_run(const void *const *inputs, void *const *outputs) {",
        *calls,
        "    return 0;",
        "}",
        "",
    ]
    return "\n".join(parts)
