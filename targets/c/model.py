"""Whole-graph C generation: model.c, model.h and the weights (weights.c, or a blob).

model.c holds one ``static void`` function per node (see emitter.py; a view, which moves
nothing, has none), the static arena, and ``qnnc_run``, which calls the layers in order with
pointers into the arena or the caller's input/output buffers; the weights are globals the
layers name themselves. model.h declares ``qnnc_run`` and ``qnnc_model_info`` (names,
shapes, dtypes of the inputs and outputs, arena and weight bytes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

# importing the op families registers their emitters
import targets.c.ops_bitwise
import targets.c.ops_conv_transpose
import targets.c.ops_dynamic
import targets.c.ops_elementwise
import targets.c.ops_indexing
import targets.c.ops_layout
import targets.c.ops_linalg
import targets.c.ops_loss
import targets.c.ops_matrix
import targets.c.ops_movement
import targets.c.ops_norm
import targets.c.ops_pool
import targets.c.ops_quant
import targets.c.ops_quant_recurrent
import targets.c.ops_recurrent
import targets.c.ops_reduce
import targets.c.ops_select
import targets.c.ops_shape
import targets.c.ops_signal
import targets.c.ops_vision  # noqa: F401
from ir.graph import Graph, Node, Value
from ir.ops.dynamic import counted_outputs
from ir.types import DType
from targets.c.control import Region, emit_control
from targets.c.emitter import (
    C_TYPES,
    CodegenError,
    LayerCtx,
    Renderer,
    WeightTable,
    c_type,
    layer_comment,
    layer_threads,
    plus,
)
from targets.c.guards import guard_c
from targets.c.memory import MemoryPlan, Storage, plan_memory
from targets.c.names import NameTable, c_comment, c_string
from targets.c.params import Params
from targets.c.weights_file import weight_files
from targets.c.wrap import WIDTH, comment_block, wrap_line, wrap_lines
from targets.fusion import fused_consumer

#: weights above this many bytes go to weights.bin, embedded with .incbin, instead of C text
BLOB_THRESHOLD = 1 << 20

#: qnnc_run's status when a Loop's scan outputs did not run trip_count iterations
LOOP_STATUS = 1
#: qnnc_run's status when the first layer that checks indices finds one out of range (the
#: k-th such layer returns FIRST_CHECK_STATUS + k; CSources.checks names them)
FIRST_CHECK_STATUS = 2

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
    #: each shape profile's arena (one entry for a single-shape model)
    arenas: list[int] = field(default_factory=list)
    #: per shape profile, the (node name, op) of each layer that checks its indices at run
    #: time: qnnc_run returns FIRST_CHECK_STATUS + k when the k-th one finds one out of range
    checks: list[list[tuple[str, str]]] = field(default_factory=list)

    @property
    def c_files(self) -> list[str]:
        """The C units to compile, in a stable order."""
        return sorted(n for n in self.files if n.endswith(".c"))


def generate(graph: Graph, renderer: Renderer | None = None, *,
             blob_threshold: int = BLOB_THRESHOLD, version: str = "") -> CSources:
    """Generate the C sources of ``graph`` (raises CodegenError naming any unsupported node)."""
    weights = WeightTable(NameTable())
    unit = _Unit(graph, renderer or Renderer(), weights)
    wdecl, wfiles = weight_files(weights, blob_threshold)
    files: dict[str, str | bytes] = dict(wfiles)
    files["model.h"] = unit.header(weights.nbytes, version)
    files["model.c"] = unit.source(weights.nbytes, wdecl, version)
    return CSources(files, unit.plan.arena_bytes, weights.nbytes, unit.layers.layers,
                    [unit.plan.arena_bytes], [unit.layers.checks])


_ARENA_DEF = "static uint8_t qnnc_arena[QNNC_ARENA_BYTES] QNNC_ALIGNED(64) QNNC_UNUSED;"

#: the symbols a model.c may define for the linker; a shape profile's unit renames them
EXPORTS = ("qnnc_run", "qnnc_model_info", "qnnc_output_rows", "qnnc_team_runs")


def generate_profiles(graphs: list[Graph], renderers: list[Renderer], titles: list[str], *,
                      blob_threshold: int = BLOB_THRESHOLD, version: str = "") -> CSources:
    """The C of one model compiled for several shape profiles (one graph each): every
    profile's layers, arena plan and ``qnnc_run`` in its own unit ``profile_<k>.c`` (its
    exported symbols renamed with a ``_p<k>`` suffix by macros at the top, so the units
    link together), one weights.c shared by all (identical constants stored once), and a
    model.c/model.h that list the profiles and dispatch to them (``qnnc_run_profile``,
    ``qnnc_select_profile``) and define the one arena they share, as large as the largest
    profile's plan (``CSources.arena_bytes``)."""
    weights = WeightTable(NameTable())
    units = [_Unit(g, r, weights) for g, r in zip(graphs, renderers)]
    wdecl, wfiles = weight_files(weights, blob_threshold)
    files: dict[str, str | bytes] = dict(wfiles)
    files["weights.h"] = "\n".join([
        "/* Generated by qnnc: the constant tensors every shape profile shares. */",
        "#ifndef QNNC_WEIGHTS_H", "#define QNNC_WEIGHTS_H", "#include \"qnnc_runtime.h\"",
        wdecl, "#endif", ""])
    layers: list[LayerInfo] = []
    for k, (unit, title) in enumerate(zip(units, titles)):
        names = EXPORTS + tuple(unit.r.exports)
        renames = [f"#define {n} {n}_p{k}" for n in names]
        head = comment_block([f"Shape profile {k}: {c_comment(title)}; its exported symbols "
                              f"carry the suffix _p{k}."])
        files[f"profile_{k}.h"] = unit.header(weights.nbytes, version)
        body = unit.source(weights.nbytes, "#include \"weights.h\"", version).replace(
            "#include \"model.h\"", f"#include \"profile_{k}.h\"", 1).replace(
            _ARENA_DEF, "/* the arena all profiles share (model.c), as large as the largest "
            "profile's */\nextern uint8_t qnnc_arena_shared[];\n"
            "#define qnnc_arena qnnc_arena_shared", 1)
        files[f"profile_{k}.c"] = "\n".join([head, *renames, "", body])
        layers += [LayerInfo(x.fn and f"{x.fn}_p{k}", x.node, x.op, x.inplace)
                   for x in unit.layers.layers]
    files["model.h"] = _profiles_header(units, titles, weights.nbytes, version)
    files["model.c"] = _profiles_c(units, titles, version)
    arenas = [u.plan.arena_bytes for u in units]
    return CSources(files, max(arenas), weights.nbytes, layers, arenas,
                    [u.layers.checks for u in units])


class _Unit:
    """One graph's layer functions, arena plan and ``qnnc_run``, with the weight table it
    adds its constants to (shared by the shape profiles of one model)."""

    def __init__(self, graph: Graph, r: Renderer, weights: WeightTable) -> None:
        r.prepare(graph)
        _check_supported(graph, r)  # every unsupported op is found before any work is done
        for v in list(graph.inputs) + list(graph.outputs):
            c_type(v.type.dtype)
        self.graph, self.r = graph, r
        # one name table for weights and layers: no parameter can shadow a weight's name
        layers = self.layers = _Layers(r, weights.names, weights)
        layers.rows = counted_outputs(graph)  # outputs whose extent is counted at run time
        plan = self.plan = layers.plan(graph)
        calls = layers.emit(graph, plan, 0, "    ")
        for v, k in plan.copies:
            calls += wrap_line(f"    memcpy(outputs[{k}], {layers.ref(v, plan, 0)}, "
                               f"{v.type.nbytes});")
        if r.guard_bytes:  # the sanitizer build: open the whole arena again
            calls.append("    qnnc_guard(-1);")
        unused = [f"(void){k}s;" for k in ("input", "output") if k not in layers.passed]
        if unused:  # a graph that never reads its inputs (or writes no output buffer)
            calls.insert(0, "    " + " ".join(unused))
        self.calls = calls

    def header(self, wbytes: int, version: str) -> str:
        g, r = self.graph, self.r
        return _header(g, self.plan, wbytes, version,
                       "\n".join(filter(None, [_rows_decl(g, self.layers.rows),
                                               _checks_doc(self.layers.checks),
                                               r.header_extra()])))

    def source(self, wbytes: int, wdecl: str, version: str) -> str:
        rows_def = "int64_t qnnc_output_rows[QNNC_NUM_OUTPUTS];\n" if self.layers.rows else ""
        guards = guard_c(self.plan, len(self.graph.nodes)) if self.r.guard_bytes else ""
        return _model_c(self.graph, self.r, self.plan, wbytes, wdecl,
                        rows_def + guards + self.r.prelude(), self.layers.funcs, self.calls,
                        version)


def _profiles_header(units: list[_Unit], titles: list[str], wbytes: int, version: str) -> str:
    g = units[0].graph
    about = [
        f"{_made_by(version)} from graph {c_comment(repr(g.name))}, compiled for "
        f"{len(units)} shape profiles:",
        *(f"  {k}: {c_comment(t)} (arena {u.plan.arena_bytes} bytes)"
          for k, (u, t) in enumerate(zip(units, titles))),
        "",
        "int qnnc_run_profile(int k, const void *const *inputs, void *const *outputs) runs",
        "  profile k (inputs[i] / outputs[i] as qnnc_profiles[k] lists them); returns 0, or -1",
        "  for a k out of range. qnnc_select_profile(dims) gives the k whose input shapes are",
        "  dims (every input's dimensions, one after another), or -1. Not reentrant.",
        f"weights: {wbytes} bytes, shared by every profile.",
    ]
    lines = [
        comment_block(about),
        "#ifndef QNNC_MODEL_H",
        "#define QNNC_MODEL_H",
        "",
        "#include \"qnnc_runtime.h\"",
        "",
        f"#define QNNC_NUM_PROFILES {len(units)}",
        f"#define QNNC_NUM_INPUTS {len(g.inputs)}",
        f"#define QNNC_NUM_OUTPUTS {len(g.outputs)}",
        "",
        "#ifdef __cplusplus",
        "extern \"C\" {",
        "#endif",
        "extern const qnnc_model_info_t *const qnnc_profiles[QNNC_NUM_PROFILES];",
        "int qnnc_run_profile(int k, const void *const *inputs, void *const *outputs);",
        "int qnnc_select_profile(const int64_t *dims);",
    ]
    for k, u in enumerate(units):
        names = EXPORTS + tuple(u.r.exports)
        lines += [f"extern const qnnc_model_info_t qnnc_model_info_p{k};",
                  f"int qnnc_run_p{k}(const void *const *inputs, void *const *outputs);"]
        if u.layers.rows:
            lines.append(f"extern int64_t qnnc_output_rows_p{k}[QNNC_NUM_OUTPUTS];")
        lines += [u.r.export_decl(f"{n}_p{k}", n) for n in names
                  if n not in EXPORTS and u.r.export_decl(f"{n}_p{k}", n)]
    lines += ["#ifdef __cplusplus", "}", "#endif", "", "#endif /* QNNC_MODEL_H */", ""]
    return "\n".join(lines)


def _profiles_c(units: list[_Unit], titles: list[str], version: str) -> str:
    n = len(units)
    cases = [f"    case {k}: return qnnc_run_p{k}(inputs, outputs);" for k in range(n)]
    return "\n".join([
        comment_block([f"{_made_by(version)}: the table of {n} shape profiles."]),
        "#include \"model.h\"",
        "",
        "/* one arena for every profile (a run uses one profile; runs are not reentrant) */",
        f"uint8_t qnnc_arena_shared[{max(max(u.plan.arena_bytes for u in units), 1)}] "
        "QNNC_ALIGNED(64);",
        "",
        "const qnnc_model_info_t *const qnnc_profiles[QNNC_NUM_PROFILES] = {",
        *(f"    &qnnc_model_info_p{k}," for k in range(n)),
        "};",
        "",
        "int qnnc_run_profile(int k, const void *const *inputs, void *const *outputs) {",
        "    switch (k) {",
        *cases,
        "    default: return -1;",
        "    }",
        "}",
        "",
        "int qnnc_select_profile(const int64_t *dims) {",
        "    for (int k = 0; k < QNNC_NUM_PROFILES; ++k) {",
        "        const qnnc_model_info_t *m = qnnc_profiles[k];",
        "        const int64_t *d = dims;",
        "        int same = 1;",
        "        for (int i = 0; i < m->num_inputs && same; ++i)",
        "            for (int j = 0; j < m->inputs[i].rank; ++j)",
        "                same = same && *d++ == m->inputs[i].shape[j];",
        "        if (same) return k;",
        "    }",
        "    return -1;",
        "}",
        "",
    ])


def _check_supported(graph: Graph, r: Renderer) -> None:
    for _, node in graph.walk():
        if not node.regions:
            r.emitter(node)
        elif not r.regions:
            raise CodegenError(f"node {node.name!r} ({node.op}): target {r.name} does not "
                               "generate control flow (If, Loop, Scan) yet; compile for the host")


class _Layers:
    """The layer functions and the calls in ``qnnc_run`` of a graph and the bodies in it."""

    def __init__(self, r: Renderer, names: NameTable, weights: WeightTable) -> None:
        self.r, self.names, self.weights = r, names, weights
        self.funcs: list[str] = []
        self.layers: list[LayerInfo] = []
        self.passed: set[str] = set()  # storage kinds qnnc_run passes on: does it read inputs?
        self.consts: dict[int, Value] = {}
        self.plans: dict[int, tuple[MemoryPlan, int]] = {}  # id(body) -> (plan, arena base)
        self.count = 0
        self.depth = 0
        self.rows: dict[int, tuple[Value, int]] = {}  # counted outputs (top-level graph only)
        self.checks: list[tuple[str, str]] = []  # (node, op) of the layers that check indices

    def plan(self, graph: Graph, body: bool = False) -> MemoryPlan:
        """The arena plan of ``graph``; each body's plan sits in its node's scratch space."""
        self.consts.update({id(v): v for v in graph.constants})
        sub = {id(b): self.plan(b, True) for n in graph.nodes for b in n.regions}
        r = self.r
        plan = plan_memory(
            graph,
            # a layer run in the epilogue before it writes while that product still reads
            inplace_ok=lambda n: not n.regions and n.attrs.get("fused") != "epilogue"
            and r.emitter(n).inplace,
            scratch_bytes=lambda n: max((sub[id(b)].arena_bytes for b in n.regions),
                                        default=0) if n.regions else
            _scratch(r, n),
            nbytes_of=r.nbytes, body=body, guard=r.guard_bytes,
            written_before=lambda n: n.attrs.get("fused") == "epilogue",
            # a guarded build keeps every tensor apart, with guard zones of its own
            contiguous=(lambda v: False) if r.guard_bytes else r.contiguous,
        )
        for i, n in enumerate(graph.nodes):
            for b in n.regions:
                self.plans[id(b)] = (sub[id(b)], plan.scratch[i].offset if i in plan.scratch
                                     else 0)
        return plan

    def ref(self, v: Value, plan: MemoryPlan, base: int) -> str:
        self.passed.add(plan.storage_of[id(v)].kind)
        return _ref(v, plan, self.consts, self.weights, base)

    def emit(self, graph: Graph, plan: MemoryPlan, base: int, indent: str) -> list[str]:
        """The calls of ``graph``'s layers (its arena at ``base``), defining their functions."""
        r, calls = self.r, []
        timed = r.profile_layers and self.depth == 0
        for i, node in enumerate(graph.nodes):
            if timed:  # the time since the last mark is layer i - 1's
                calls.append(f"{indent}qnnc_prof_tick({i - 1});" if i else
                             f"{indent}qnnc_prof_start();")
            if r.guard_bytes and self.depth == 0:  # poison all but the live tensors
                calls.append(f"{indent}qnnc_guard({i});")
            if node.regions:
                calls += self._control(node, plan, base, indent)
                continue

            def const_ref(v: Value) -> str:
                text = self.ref(v, plan, base)
                return text if text.isidentifier() else f"({text})"

            params = Params(node, lambda v: plan.storage_of[id(v)].kind == "const", const_ref)
            ctx = LayerCtx(node, r, self.weights, params, inplace=i in plan.inplace,
                           same_storage=lambda a, b, n=node: _same_place(plan, n, a, b),
                           placed=plan.placed.get(i, frozenset()),
                           epilogue=_epilogue_of(graph, i))
            em = r.emitter(node)
            body = raw = em.fn(ctx)
            if not body.strip():  # a view: its output is its input's bytes
                what = "computed in the epilogue of the layer before" \
                    if node.attrs.get("fused") == "epilogue" else "nothing to move"
                calls.append(f"{indent}/* {node.op} {c_comment(repr(node.name))}: {what} */")
                self.layers.append(LayerInfo("", node.name, node.op, i in plan.inplace))
                continue
            fn = self.names.claim(f"layer_{self.count:03d}", node.name or node.op)
            self.count += 1
            aliased = plan.any_overlap(params.values, r.nbytes)
            decls, body, values = params.finish(body, "" if aliased else f"{r.restrict} ",
                                                _SIGNATURE_WORDS)
            scratch = plus("qnnc_arena", base + plan.scratch[i].offset) \
                if i in plan.scratch else None

            def ref(v: Value) -> str:
                return self.ref(v, plan, base)

            call = self._define(fn, node, em.checks, decls, body, values, ref, scratch)
            twin = None if em.checks else self._serial_twin(node, ctx, params, raw)
            if twin is not None:  # the runs qnnc_team gives one thread call the twin
                twin_params, twin_body = twin
                tdecls, tbody, tvalues = twin_params.finish(
                    twin_body, "" if aliased else f"{r.restrict} ", _SIGNATURE_WORDS)
                serial = self._define(self.names.claim(fn, "serial"), node, False, tdecls,
                                      tbody, tvalues, ref, scratch)
                call = (f"if (qnnc_team > 1) {{ {call}; "
                        f"qnnc_team_watch(&qnnc_team_state, &qnnc_team); }} else {serial}")
            if em.checks:  # an index out of range stops the run with this layer's status
                status = FIRST_CHECK_STATUS + len(self.checks)
                self.checks.append((node.name or node.op, node.op))
                calls += wrap_line(f"{indent}if ({call}) return {status};")
            else:
                calls += wrap_line(f"{indent}{call};")
            calls += [f"{indent}qnnc_output_rows[{k}] = *{self.ref(count, plan, base)};"
                      for k, (count, _) in self.rows.items() if count in node.outputs]
            self.layers.append(LayerInfo(fn, node.name, node.op, i in plan.inplace))
        if timed and graph.nodes:
            calls.append(f"{indent}qnnc_prof_tick({len(graph.nodes) - 1});")
        return calls

    def _define(self, fn: str, node: Node, checks: bool, decls: list[str], body: str,
                values: list[Value], ref: Callable[[Value], str], scratch: str | None) -> str:
        """Define layer function ``fn`` (``decls`` and ``body`` from Params.finish, plus the
        layer's scratch if it has one); its call (``ref``: a value's C expression)."""
        args = [ref(v) for v in values]
        if scratch is not None:
            decls = [*decls, f"void *{self.r.restrict} scratch"]
            args.append(scratch)
        sig = (f"static QNNC_NOINLINE {'int' if checks else 'void'} "
               f"{fn}({', '.join(decls) or 'void'})")
        if checks:
            body += "\nreturn 0;"
        indented = "\n".join(("    " + ln) if ln else "" for ln in body.splitlines())
        self.funcs.append(wrap_lines(f"{layer_comment(node)}\n{sig} {{\n{indented}\n}}\n"))
        return f"{fn}({', '.join(args)})"

    def _serial_twin(self, node: Node, ctx: LayerCtx, params: Params,
                     body: str) -> tuple[Params, str] | None:
        """(operands, body) of a one-thread copy of a threaded layer, for the runs the
        per-run team gives one thread; None when the layer has no parallel loop. Its code
        may be cut for one thread (a convolution's output positions are cut into one chunk
        per thread, each in its own scratch slice: cut for two, SqueezeNet's 13 x 13 layers
        ran 4% slower on one thread than cut for one), and where only the parallel-loop
        lines differ the copy still pays: the loop gcc outlines for OpenMP runs through a
        team of one and loses its operands' restrict (ShuffleNet, a two-thread build given
        one thread: 2.70 ms with copies of the cut layers only, 2.63 with a copy of every
        threaded layer, 2.64 built for one thread)."""
        if layer_threads(node, self.r.threads) <= 1:
            return None
        twin = Params(node, params.is_const, params.const_ref)
        serial = self.r.emitter(node).fn(replace(ctx, operands=twin, serial=True))
        return None if serial == body else (twin, serial)

    def _control(self, node: Node, plan: MemoryPlan, base: int, indent: str) -> list[str]:
        def body_ref(b: Graph, v: Value) -> str:
            bplan, off = self.plans[id(b)]
            return self.ref(v, bplan, base + off)

        def body_calls(b: Graph, ind: str) -> list[str]:
            bplan, off = self.plans[id(b)]
            self.depth += 1
            try:
                return self.emit(b, bplan, base + off, ind)
            finally:
                self.depth -= 1

        reg = Region(node, lambda v: self.ref(v, plan, base), body_ref, body_calls, self.depth)
        out = []
        for ln in emit_control(reg, indent):
            out += wrap_line(ln)
        self.layers.append(LayerInfo("", node.name, node.op, False))
        return out


def _epilogue_of(graph: Graph, i: int) -> Node | None:
    """The layer node ``i`` runs in its epilogue (targets/fusion.py), checked: an annotated
    layer must directly follow its product, or its code would be lost."""
    node = graph.nodes[i]
    nxt = graph.nodes[i + 1] if i + 1 < len(graph.nodes) else None
    consumer = fused_consumer(graph, node) if node.attrs.get("epilogue") else None
    if nxt is not None and nxt.attrs.get("fused") == "epilogue" and consumer is not nxt:
        raise CodegenError(f"node {nxt.name!r} ({nxt.op}) is marked to run in the epilogue of "
                           f"the layer before it, {node.name!r} ({node.op}), which does not "
                           "run it; re-run the fusion pass")
    if consumer is not None and consumer is not nxt:
        raise CodegenError(f"node {node.name!r} ({node.op}) runs {consumer.name!r} in its "
                           "epilogue but does not directly precede it; re-run the fusion pass")
    if i == 0 and node.attrs.get("fused") == "epilogue":
        raise CodegenError(f"node {node.name!r} ({node.op}) is marked to run in the epilogue "
                           "of the layer before it, but it is the first layer")
    return consumer


def _same_place(plan: MemoryPlan, node: Node, k: int, o: int) -> bool:
    """Whether ``node``'s input ``k`` and output ``o`` start at the same byte of one storage
    (the layer runs in place)."""
    x = node.inputs[k]
    return x is not None and plan.same_place(x, node.outputs[o])


def _scratch(r: Renderer, n: Node) -> int:
    """Bytes of scratch ``n``'s layer needs: at its thread count, and at one thread for the
    serial twin a threaded layer may have."""
    fn = r.emitter(n).scratch
    return 0 if fn is None else max(fn(n, t) for t in {layer_threads(n, r.threads), 1})


def _ref(v: Value, plan: MemoryPlan, consts: dict[int, Value], weights: WeightTable,
         base: int = 0) -> str:
    """The C expression of the buffer holding ``v`` (a body's arena starts at ``base``)."""
    s: Storage = plan.storage_of[id(v)]
    ct = C_TYPES[v.type.dtype]
    if s.kind == "input":
        return f"(const {ct} *)inputs[{s.index}]"
    inside = plan.at(v)  # bytes into its storage: a Concat input placed in the result
    if s.kind == "output":
        out = f"outputs[{s.index}]"
        return f"({ct} *)((char *){out} + {inside})" if inside else f"({ct} *){out}"
    if s.kind == "const":
        root = consts[s.members[0]]
        assert root.data is not None
        name = weights.add(root.data, root.name, key=root)
        return name if root.type.dtype == v.type.dtype else f"(const {ct} *){name}"
    at = base + s.offset + inside
    return f"({ct} *)({plus('qnnc_arena', at)})" if at else f"({ct} *)qnnc_arena"


def _rows_decl(graph: Graph, rows: dict[int, tuple[Value, int]]) -> str:
    """model.h's declaration of the run-time extents of data-dependent outputs."""
    if not rows:
        return ""
    about = ["After qnnc_run, qnnc_output_rows[k] is the true extent of output k along its",
             "data-dependent axis (entries past it are zeros); set for outputs"] + [
        f"  {k} ({c_comment(repr(graph.outputs[k].name))}): axis {axis}"
        for k, (_, axis) in rows.items()]
    return comment_block(about) + "\nextern int64_t qnnc_output_rows[QNNC_NUM_OUTPUTS];"


def _checks_doc(checks: list[tuple[str, str]]) -> str:
    """model.h's list of the statuses qnnc_run returns for an index out of range."""
    if not checks:
        return ""
    return comment_block(["qnnc_run's status when a layer finds an index outside its axis:"] + [
        f"  {FIRST_CHECK_STATUS + k}: node {c_comment(repr(name))} ({op})"
        for k, (name, op) in enumerate(checks)])


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
        f"  returns 0; {LOOP_STATUS} if a Loop's scan outputs did not run their trip count; "
        f"{FIRST_CHECK_STATUS} + k",
        "  if the k-th layer that checks its indices found one outside its axis (the",
        "  outputs are then undefined). Not reentrant: the activations live in one static",
        "  arena.",
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
             prelude: str, funcs: list[str], calls: list[str], version: str) -> str:
    includes = "\n".join(f"#include \"{h}\"" for h in r.headers if h != "qnnc_runtime.h")
    parts = [
        comment_block([f"{_made_by(version)} for target {c_comment(r.name)}: "
                       f"{len(graph.nodes)} layers."]),
        "#include \"model.h\"",
        includes,
        "",
        f"#define QNNC_ARENA_BYTES {max(plan.arena_bytes, 1)}",
        _ARENA_DEF,
        "",
        "/* weights (weights.c) */",
        wdecl,
        "",
        prelude,
        *(["/* the threads of this run's parallel loops (qnnc_run sets it) */",
           f"static int qnnc_team QNNC_UNUSED = {r.threads};"] if r.threads > 1 else []),
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
        *_run_functions(r, calls),
    ]
    return "\n".join(parts)


def _run_functions(r: Renderer, calls: list[str]) -> list[str]:
    """``qnnc_run``: the layers; with threads, around them the per-run choice of the team
    (qnnc_team_begin / qnnc_team_end of csrc/qnnc_runtime.h; a profiling build keeps the
    full team, so that its layer times are of one team)."""
    if r.threads <= 1:
        return ["int qnnc_run(const void *const *inputs, void *const *outputs) {", *calls,
                "    return 0;", "}", ""]
    return [
        f"static qnnc_team_t qnnc_team_state = QNNC_TEAM_INIT({r.threads}, "
        f"{int(r.profile_layers)});",
        "/* runs with the full team [0] and one thread [1] as chosen at their start (a run a",
        " * collapse cut short counts as full): CompiledModel.team_runs */",
        "int64_t qnnc_team_runs[2];",
        "",
        "static int qnnc_run_layers(const void *const *inputs, void *const *outputs) {",
        *calls,
        "    return 0;",
        "}",
        "",
        "int qnnc_run(const void *const *inputs, void *const *outputs) {",
        "    const double start = qnnc_team_begin(&qnnc_team_state, &qnnc_team);",
        "    const int status = qnnc_run_layers(inputs, outputs);",
        "    qnnc_team_end(&qnnc_team_state, start);",
        "    ++qnnc_team_runs[qnnc_team_state.current];",
        "    return status;",
        "}",
        "",
    ]
