"""A program that runs the model on a board without TVM's runtime or Python: the kernels
TVM compiled for the board's architecture, called in order by a small generated C ``main``,
linked statically.

The plan is read off the lowered module (lower.py): Relax ``main`` is one ``call_tir`` per
node on the graph's inputs, Relax constants (weights, tables) and earlier results, so the
program holds one DLTensor per tensor, the weights in one blob (assembled into the program
with ``.incbin``) and a buffer per intermediate, and calls each kernel through TVM's packed
C calling convention (``__tvm_ffi_<symbol>``). What the kernels need of a runtime is
provided by the program: the error setter (a failed index check prints its node number; the
build's tvm_signature.json names the node), workspace allocation, and a serial
parallel-launch.

Files (written into the build folder): ``run_model.c``, ``weights.bin``, ``weights.S``,
``kernels.o`` (TVM's object code for the architecture), and ``model_run``, the program
itself, linked with :func:`targets.tvm.toolchains.static_compiler`. Usage on the board::

    ./model_run INPUT0.bin INPUT1.bin ...

one raw little-endian file per input (numpy's ``a.tofile``), in the order and with the
dtypes and shapes of tvm_signature.json; writes output0.bin, output1.bin, ... beside. If the
program cannot be linked here (a cross gcc without that architecture's static libc), the
build still succeeds with the library and its loader; a warning gives the command that links
the sources on the board.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ir.errors import QnncError
from targets.tvm.api import relax, require_tvm, tir
from targets.tvm.toolchains import static_compiler

SOURCE = "run_model.c"
WEIGHTS = "weights.bin"
WEIGHTS_ASM = "weights.S"
KERNELS = "kernels.o"
PROGRAM = "model_run"
ALIGN = 64  # TVM's kernels assume 64-byte aligned buffers

log = logging.getLogger("qnnc.tvm")

#: numpy dtype name -> DLPack (code, bits)
DL_TYPES = {"bool": (6, 8), "int8": (0, 8), "int16": (0, 16), "int32": (0, 32),
            "int64": (0, 64), "uint8": (1, 8), "uint16": (1, 16), "uint32": (1, 32),
            "uint64": (1, 64), "float32": (2, 32), "float64": (2, 64)}


@dataclass
class Tensor:
    shape: list[int]
    dtype: str
    kind: str  # input, const, temp
    offset: int = 0  # consts: byte offset in the weights blob

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


@dataclass
class Plan:
    tensors: list[Tensor] = field(default_factory=list)
    calls: list[tuple[str, list[int]]] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    weights: bytearray = field(default_factory=bytearray)


def plan_of(mod: Any) -> Plan:
    """The tensors and kernel calls of ``mod``'s main (lower.py's form)."""
    require_tvm()
    import tvm

    call_tir = tvm.ir.Op.get("relax.call_tir")
    plan = Plan()
    ids: dict[Any, int] = {}
    consts: dict[Any, int] = {}

    def add(shape: Any, dtype: str, kind: str) -> int:
        plan.tensors.append(Tensor([int(d) for d in shape], str(dtype), kind))
        return len(plan.tensors) - 1

    def tensor_of(expr: Any) -> int:
        if isinstance(expr, tvm.ir.expr.Constant):
            if expr not in consts:
                data = np.asarray(expr.value.numpy(), order="C")  # keeps 0-d arrays 0-d
                k = add(data.shape, data.dtype.name, "const")
                pad = -len(plan.weights) % ALIGN
                plan.weights.extend(b"\0" * pad)
                plan.tensors[k].offset = len(plan.weights)
                plan.weights.extend(data.tobytes())
                consts[expr] = k
            return consts[expr]
        return ids[expr]

    main = mod["main"]
    for p in main.params:
        ids[p] = add(p.ty.shape.values, p.ty.dtype, "input")
        plan.inputs.append(ids[p])
    for block in main.body.blocks:
        for binding in block.bindings:
            value = binding.value
            if isinstance(value, relax.Call) and value.op.same_as(call_tir):
                args = [tensor_of(a) for a in value.args[1].fields]
                ty = binding.var.ty
                outs = ty.fields if isinstance(ty, relax.TupleType) else [ty]
                made = [add(t.shape.values, t.dtype, "temp") for t in outs]
                plan.calls.append((value.args[0].name_hint, args + made))
                ids[binding.var] = made if len(made) > 1 else made[0]
            elif isinstance(value, relax.TupleGetItem):
                ids[binding.var] = ids[value.tuple_value][value.index]
            elif isinstance(value, relax.Tuple):
                ids[binding.var] = [tensor_of(f) for f in value.fields]
            else:
                raise QnncError(f"the standalone program cannot run a {type(value).__name__} "
                                "binding of main")
    result = main.body.body
    plan.outputs = list(ids[result]) if isinstance(ids[result], list) else [ids[result]]
    return plan


def kernels_module(mod: Any) -> Any:
    """The IRModule of ``mod``'s PrimFuncs alone (the kernels, untouched by Relax passes)."""
    tvm = require_tvm()
    return tvm.IRModule({gv: f for gv, f in mod.functions.items()
                         if isinstance(f, tir.PrimFunc)})


def tuned(kernels: Any, target: Any, database: Path) -> tuple[Any, int]:
    """``kernels`` with the best schedule the tuning database in ``database`` holds for each
    (others keep TVM's default), and how many took one."""
    require_tvm()
    from tvm.s_tir import meta_schedule as ms

    from targets.tvm.tune import tuning_target

    db = ms.database.JSONDatabase(work_dir=str(database))
    with tuning_target(target), db:
        kernels = relax.transform.MetaScheduleApplyDatabase(enable_warning=False)(kernels)
    count = sum(1 for f in kernels.functions.values()
                if isinstance(f, tir.PrimFunc) and f.attrs is not None
                and bool(f.attrs.get("tirx.is_scheduled", False)))
    return kernels, count


def _shape_list(t: Tensor) -> str:
    return ", ".join(str(d) for d in t.shape) or "0"


def source(plan: Plan) -> str:
    """The C program of ``plan`` (see the module doc)."""
    lines = [
        "/* Generated by qnnc: runs the model by calling TVM's kernels in order, without",
        " * TVM's runtime. Usage: model_run INPUT0.bin ... (raw little-endian arrays in",
        " * tvm_signature.json's order); writes output0.bin ... */",
        "#include <stdint.h>", "#include <stdio.h>", "#include <stdlib.h>",
        "#include <string.h>", "",
        "typedef struct { int32_t device_type, device_id; } Device;",
        "typedef struct { uint8_t code, bits; uint16_t lanes; } DataType;",
        "typedef struct { void *data; Device device; int32_t ndim; DataType dtype;",
        "                 int64_t *shape, *strides; uint64_t byte_offset; } DLTensor;",
        "typedef struct { int32_t type_index; uint32_t zero_padding;",
        "                 union { int64_t v_int64; void *v_ptr; }; } Any;",
        "typedef int (*Kernel)(void *self, const Any *args, int32_t num_args, Any *result);",
        "enum { kNone = 0, kDLTensorPtr = 7 };", "",
        "extern const unsigned char qnnc_weights[];",
        "static char failure[512];", "",
        "/* what the kernels call of a runtime */",
        "void TVMFFIErrorSetRaisedFromCStrParts(const char *kind, const char **parts, int32_t n) {",
        "  size_t used = 0;",
        "  failure[0] = 0;",
        "  for (int32_t i = -1; i < n; ++i) {",
        "    const char *p = i < 0 ? kind : parts[i];",
        "    if (!p) continue;",
        "    const char *fmt = i < 0 ? \"%s: \" : \"%s\";",
        "    int w = snprintf(failure + used, sizeof failure - used, fmt, p);",
        "    if (w < 0 || (size_t)w >= sizeof failure - used) break;",
        "    used += (size_t)w;",
        "  }",
        "}",
        "static void *alloc_workspace(int dev, int id, uint64_t n, int code, int bits) {",
        "  (void)dev; (void)id; (void)code; (void)bits;",
        f"  return aligned_alloc({ALIGN}, (n + {ALIGN - 1}) / {ALIGN} * {ALIGN});",
        "}",
        "static int free_workspace(int dev, int id, void *p) { (void)dev; (void)id; free(p); "
        "return 0; }",
        "typedef struct { void *sync_handle; int32_t num_task; } ParallelEnv;",
        "typedef int (*ParallelLambda)(int task, ParallelEnv *env, void *data);",
        "static int parallel_launch(ParallelLambda f, void *data, int num_task) {",
        "  ParallelEnv env = {0, 1};",
        "  (void)num_task;",
        "  return f(0, &env, data);",
        "}",
        "static int parallel_barrier(int task, ParallelEnv *env) { (void)task; (void)env; "
        "return 0; }",
        "void *(*__TVMBackendAllocWorkspace)(int, int, uint64_t, int, int) = alloc_workspace;",
        "int (*__TVMBackendFreeWorkspace)(int, int, void *) = free_workspace;",
        "int (*__TVMBackendParallelLaunch)(ParallelLambda, void *, int) = parallel_launch;",
        "int (*__TVMBackendParallelBarrier)(int, ParallelEnv *) = parallel_barrier;", "",
    ]
    for symbol in sorted({s for s, _ in plan.calls}):
        lines.append(f"int __tvm_ffi_{symbol}(void *, const Any *, int32_t, Any *);")
    lines.append("")
    n = len(plan.tensors)
    for k, t in enumerate(plan.tensors):
        lines.append(f"static int64_t shape{k}[] = {{{_shape_list(t)}}};")
    lines.append(f"static DLTensor tensors[{n}] = {{")
    for k, t in enumerate(plan.tensors):
        code, bits = DL_TYPES[t.dtype]
        lines.append(f"  {{0, {{1, 0}}, {len(t.shape)}, {{{code}, {bits}, 1}}, shape{k}, 0, 0}},")
    lines += ["};", f"static const size_t nbytes[{n}] = {{"
              + ", ".join(str(t.nbytes) for t in plan.tensors) + "};", ""]
    most = max((len(args) for _, args in plan.calls), default=1)
    lines += [
        f"static Any args[{most}];  /* the most tensors a kernel takes */",
        "static int call(Kernel f, const int *ids, int count, int step) {",
        "  Any result;",
        "  for (int i = 0; i < count; ++i) {",
        "    args[i].type_index = kDLTensorPtr; args[i].zero_padding = 0;",
        "    args[i].v_ptr = &tensors[ids[i]];",
        "  }",
        "  result.type_index = kNone; result.zero_padding = 0; result.v_int64 = 0;",
        "  if (f(0, args, count, &result) != 0) {",
        "    fprintf(stderr, \"model_run: kernel %d failed: %s\\n\", step, failure);",
        "    return 1;",
        "  }",
        "  return 0;",
        "}", "",
        "static int load(const char *path, int id) {",
        "  FILE *f = fopen(path, \"rb\");",
        "  if (!f) { fprintf(stderr, \"model_run: cannot open %s\\n\", path); return 1; }",
        "  size_t got = fread(tensors[id].data, 1, nbytes[id], f);",
        "  int extra = fgetc(f) != EOF;",
        "  fclose(f);",
        "  if (got != nbytes[id] || extra) {",
        "    fprintf(stderr, \"model_run: %s must hold exactly %zu bytes\\n\", path, nbytes[id]);",
        "    return 1;",
        "  }",
        "  return 0;",
        "}", "",
        "int main(int argc, char **argv) {",
        f"  if (argc != {len(plan.inputs) + 1}) {{",
        f"    fprintf(stderr, \"usage: %s{' INPUT.bin' * len(plan.inputs)} "
        "(raw arrays, tvm_signature.json's order)\\n\", argv[0]);",
        "    return 2;",
        "  }",
    ]
    for k, t in enumerate(plan.tensors):  # the blob is aligned: constants point into it
        if t.kind == "const":
            lines.append(f"  tensors[{k}].data = (void *)(qnnc_weights + {t.offset});")
    lines += [
        f"  for (int k = 0; k < {n}; ++k) {{",
        "    if (tensors[k].data) continue;",
        f"    tensors[k].data = aligned_alloc({ALIGN}, (nbytes[k] + {ALIGN}) / {ALIGN} * {ALIGN});",
        "    if (!tensors[k].data) { fprintf(stderr, \"model_run: out of memory\\n\"); return 1; }",
        "  }",
    ]
    for i, k in enumerate(plan.inputs):
        lines.append(f"  if (load(argv[{i + 1}], {k})) return 1;")
    for step, (symbol, args) in enumerate(plan.calls):
        ids = ", ".join(str(a) for a in args)
        lines.append(f"  {{ static const int ids[] = {{{ids}}};")
        lines.append(f"    if (call(__tvm_ffi_{symbol}, ids, {len(args)}, {step})) return 1; }}")
    for i, k in enumerate(plan.outputs):
        lines += [
            f"  {{ FILE *f = fopen(\"output{i}.bin\", \"wb\");",
            f"    if (!f || fwrite(tensors[{k}].data, 1, nbytes[{k}], f) != nbytes[{k}]) {{",
            f"      fprintf(stderr, \"model_run: cannot write output{i}.bin\\n\"); return 1; }}",
            "    fclose(f); }",
        ]
    lines += ["  return 0;", "}", ""]
    return "\n".join(lines)


def weights_asm() -> str:
    return (f"\t.section .rodata\n\t.balign {ALIGN}\n\t.globl qnnc_weights\n"
            f"qnnc_weights:\n\t.incbin \"{WEIGHTS}\"\n\t.byte 0\n")


def write(mod: Any, target: Any, arch: str, folder: Path,
          database: Path | None = None) -> list[str]:
    """Write the program's files for ``mod`` (lowered), its kernels compiled for ``target``
    (a TVM target of ``arch``) with the schedules of the tuning ``database`` if given, into
    ``folder``; link ``model_run`` there. The file names."""
    tvm = require_tvm()
    plan = plan_of(mod)
    kernels = kernels_module(mod)
    if database is not None:
        kernels, _ = tuned(kernels, target, database)
    tvm.compile(kernels, target=target).mod.write_to_file(str(folder / KERNELS))
    (folder / SOURCE).write_text(source(plan))
    (folder / WEIGHTS).write_bytes(bytes(plan.weights))
    (folder / WEIGHTS_ASM).write_text(weights_asm())
    cc = static_compiler(arch)
    command = [*cc, "-O2", "-static", "-o", PROGRAM, SOURCE, WEIGHTS_ASM, KERNELS, "-lm"]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    names = [SOURCE, WEIGHTS, WEIGHTS_ASM, KERNELS]
    if done.returncode != 0:  # the library and its loader are still there: say, do not fail
        log.warning("tvm: the standalone program for %s was not linked (%s failed: %s); its "
                    "sources are in the build folder, link them on the board with: cc -O2 "
                    "-static -o %s %s %s %s -lm", arch, " ".join(cc),
                    done.stderr.strip()[-500:], PROGRAM, SOURCE, WEIGHTS_ASM, KERNELS)
        return names
    return [*names, PROGRAM]
