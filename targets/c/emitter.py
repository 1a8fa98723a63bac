"""The per-op emitter registry and the layer-function framework.

Every IR op kind has ONE emitter, registered by op name::

    @emits("Relu", "Sigmoid", inplace=True)
    def unary(ctx: LayerCtx) -> str:
        return ctx.loop_all(f"{ctx.o(0)}[i] = ...;")

An emitter returns the body of one ``static void`` C function (never inlined into the
caller); the framework writes the signature, the comment naming the model nodes it
computes, and the call in ``qnnc_run``
(an emitter registered with ``checks=True`` gets a ``static int`` function that returns 1
for an index out of range, and ``qnnc_run`` stops with that layer's status). The
emitter names an operand by asking for it (``ctx.i(k)``, ``ctx.o(k)``): a constant input is the
weight array's global name, anything else becomes a pointer parameter named after its value
(plus a ``scratch`` pointer when the emitter asked for one). What nobody asked for is neither
a parameter nor, for a constant, a weight. Shapes and strides are Python ints written into the
C as literals, so the C compiler sees compile-time constants and specialises every loop.

Targets differ by a :class:`Renderer` subclass (a few class attributes and small methods),
not by copies of the emitters; the INT8 emitters register into the same table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ir.errors import UnsupportedModelError
from ir.graph import Graph, Node, Value
from ir.ops.cost import rule_of, window
from ir.ops.registry import get_op
from ir.types import DType, TensorType
from targets.c.expr import Expr, Var, add, lift
from targets.c.names import c_comment
from targets.c.stmt import loop
from targets.c.wrap import comment_block, table_rows

C_TYPES: dict[DType, str] = {
    DType.f32: "float", DType.f64: "double",
    DType.i8: "int8_t", DType.i16: "int16_t", DType.i32: "int32_t", DType.i64: "int64_t",
    DType.u8: "uint8_t", DType.u16: "uint16_t", DType.u32: "uint32_t", DType.u64: "uint64_t",
    DType.bool: "uint8_t",
}


class CodegenError(UnsupportedModelError):
    """A node the C code generator cannot emit (op, dtype or attribute not supported)."""


EmitFn = Callable[["LayerCtx"], str]
#: bytes of scratch a node needs, given the threads the code runs on
ScratchFn = Callable[[Node, int], int]


@dataclass(frozen=True)
class Emitter:
    fn: EmitFn
    inplace: bool = False  # output may share storage with a same-shaped dying input
    scratch: ScratchFn | None = None  # bytes of temporary space the layer needs
    #: the layer checks data it reads at run time (indices): its body may ``return 1;``
    #: (never from inside an OpenMP loop) and qnnc_run then stops with the layer's status
    checks: bool = False


EMITTERS: dict[str, Emitter] = {}


def emits(
    *ops: str, inplace: bool = False, scratch: ScratchFn | None = None, checks: bool = False
) -> Callable[[EmitFn], EmitFn]:
    """Register ``fn`` as the emitter of IR ops ``ops``."""

    def deco(fn: EmitFn) -> EmitFn:
        for op in ops:
            if op in EMITTERS:
                raise ValueError(f"op {op!r} has two emitters")
            EMITTERS[op] = Emitter(fn, inplace, scratch, checks)
        return fn

    return deco


#: the emitter of a layer that runs in the epilogue of the product before it: no code
FUSED = Emitter(lambda ctx: "")


def emitter_for(node: Node) -> Emitter:
    em = EMITTERS.get(node.op)
    if em is None:
        raise CodegenError(
            f"node {node.name!r}: op {node.op} has no C emitter yet; the C targets support: "
            f"{', '.join(sorted(EMITTERS))}"
        )
    return em


class Renderer:
    """What differs between C targets. Subclasses override class attributes."""

    name = "c"
    restrict = "QNNC_RESTRICT"
    #: generates control flow (If, Loop, Scan: targets/c/control.py)
    regions = True
    #: csrc headers model.c includes (qnnc_pool.h: the parallel loops' fork and join, defined
    #: in model.c alone)
    headers: tuple[str, ...] = ("qnnc_runtime.h", "qnnc_gemm_f32.h", "qnnc_int8.h",
                                 "qnnc_int8_u8s8.h", "qnnc_int8_implicit.h", "qnnc_vmath.h",
                                 "qnnc_pool.h")

    #: bytes of guard zone after every arena tensor, poisoned while the model runs (the
    #: sanitizer build, targets/c/guards.py); 0: none
    guard_bytes = 0
    #: time every top-level layer (the profiling build, targets/host/profile.py): qnnc_run
    #: calls qnnc_prof_start() first and qnnc_prof_tick(k) after layer k, which the
    #: renderer's prelude defines
    profile_layers = False
    #: the u8 x s8 GEMM tile of the build is exact for any int8 weights (AVX-512 VNNI's
    #: vpdpbusd), so every product with int8 weight codes may use it; else only weights that
    #: keep the pair rule do (targets/c/q8_gemm.py)
    u8_any_weights = False

    def __init__(self, threads: int = 1) -> None:
        self.threads = max(1, int(threads))

    # -- hooks for targets that generate some layers differently -------------------------
    def prepare(self, graph: Any) -> None:
        """Called once before a graph is generated."""

    def emitter(self, node: Node) -> Emitter:
        """The emitter of ``node`` (the registry's, unless a target has its own; nothing
        for a layer the product before it runs in its epilogue)."""
        if node.attrs.get("fused") == "epilogue":
            return FUSED
        return emitter_for(node)

    def nbytes(self, value: Any) -> int:
        """Bytes a value occupies in memory (its layout may pad it)."""
        return int(value.type.nbytes)

    def contiguous(self, value: Any) -> bool:
        """Whether a value is stored row-major, exactly its elements (no target layout)."""
        return True

    def header_extra(self) -> str:
        """Extra declarations for model.h (e.g. run-time counters a target exports)."""
        return ""

    #: symbols besides qnnc_run/qnnc_model_info the target's model.c defines for the linker
    exports: tuple[str, ...] = ()

    def export_decl(self, new: str, name: str) -> str:
        """The C declaration of exported symbol ``name`` under the name ``new`` (for the
        model.h of several shape profiles; "" when callers need none)."""
        return ""

    def prelude(self) -> str:
        """Extra declarations for model.c (after the arena), e.g. a chip's static buffers."""
        return ""

    def omp_for(self, collapse: int = 1) -> str:
        """A ``#pragma omp parallel for`` line when threads are on, else nothing."""
        if self.threads <= 1:
            return ""
        extra = f" collapse({collapse})" if collapse > 1 else ""
        return f"QNNC_OMP_FOR(num_threads({self.team()}){extra})\n"

    def team(self) -> str:
        """The C expression of the threads a parallel loop runs with: ``qnnc_team``, which
        qnnc_run sets per run (at most ``threads``: csrc/qnnc_runtime.h), or 1."""
        return "qnnc_team" if self.threads > 1 else "1"


@dataclass
class WeightTable:
    """Constant arrays the layers use; emitters may add derived ones (e.g. transposed).
    Arrays with equal dtype, shape and bytes are stored once."""

    names: Any  # targets.c.names.NameTable
    arrays: list[tuple[str, np.ndarray]] = field(default_factory=list)
    _by_key: dict[int, str] = field(default_factory=dict)
    _by_content: dict[tuple[Any, ...], str] = field(default_factory=dict)
    _keep: list[Any] = field(default_factory=list)

    def add(self, array: np.ndarray, hint: str, key: object | None = None) -> str:
        k = id(key) if key is not None else None
        if k is not None and k in self._by_key:
            return self._by_key[k]
        a = np.ascontiguousarray(array)
        if a.dtype == np.bool_:
            a = a.astype(np.uint8)
        if DType.from_numpy(a.dtype) not in C_TYPES:
            raise CodegenError(f"constant {hint!r}: dtype {a.dtype} has no C type here")
        content = (a.dtype.str, a.shape, hashlib.sha256(a.tobytes()).digest())
        name = self._by_content.get(content)  # equal arrays (e.g. of two shape profiles)
        if name is None:
            name = self.names.claim("w", hint)
            self.arrays.append((name, a))
            self._by_content[content] = name
        if k is not None:
            self._by_key[k] = name
            self._keep.append(key)
        return name

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for _, a in self.arrays)


class Operands(Protocol):
    """How a layer's body refers to the node's inputs and outputs; asking is using."""

    def input(self, k: int) -> str: ...

    def output(self, k: int) -> str: ...


@dataclass
class Bound:
    """Operands bound to fixed C expressions (a body inlined into another function's)."""

    inputs: Sequence[str]
    outputs: Sequence[str]
    asked: set[int] = field(default_factory=set)  # the inputs the body reads

    def input(self, k: int) -> str:
        self.asked.add(k)
        return self.inputs[k]

    def output(self, k: int) -> str:
        return self.outputs[k]


@dataclass
class LayerCtx:
    """What an emitter sees of one node: types, operand names, attributes, helpers."""

    node: Node
    renderer: Renderer
    weights: WeightTable
    operands: Operands
    inplace: bool = False
    same_storage: Callable[[int, int], bool] = lambda i, o: False
    #: emit the layer for one thread whatever the build's count (the serial twin of a
    #: threaded layer: targets/c/model.py)
    serial: bool = False
    #: positions of the inputs the arena planner computed in place inside the result (a
    #: Concat's blocks: targets/c/memory.py), which the layer need not copy
    placed: frozenset[int] = frozenset()
    #: the element-wise layer this layer runs in its epilogue (targets/fusion.py), or None
    epilogue: Node | None = None

    # -- names and types ----------------------------------------------------------------
    def _index(self, k: int | str) -> int:
        """Input position of operand ``k``: a position, or a name the op declares."""
        return k if isinstance(k, int) else get_op(self.node.op).operand_index(k)

    def i(self, k: int | str) -> str:
        """The C name of input ``k`` (which this marks as used)."""
        return self.operands.input(self._index(k))

    def o(self, k: int = 0) -> str:
        """The C name of output ``k`` (which this marks as used)."""
        return self.operands.output(k)

    def extra(self, v: Value, write: bool = False) -> str:
        """The C name of a tensor outside the node's operands that the layer reads or
        (``write``) writes: an element-wise layer run in this layer's epilogue."""
        value = getattr(self.operands, "value", None)
        if value is None:
            raise self.fail("this layer's operands are bound; it cannot take a fused layer")
        return value(v, write)

    def it(self, k: int | str) -> TensorType:
        v = self.node.inputs[self._index(k)]
        assert v is not None
        return v.type

    def ot(self, k: int = 0) -> TensorType:
        return self.node.outputs[k].type

    def has(self, k: int | str) -> bool:
        j = self._index(k)
        return len(self.node.inputs) > j and self.node.inputs[j] is not None

    def ctype(self, t: TensorType) -> str:
        return c_type(t.dtype, self.node)

    @property
    def a(self) -> dict[str, Any]:
        return self.node.attrs

    def const(self, k: int | str) -> np.ndarray | None:
        """Input ``k``'s data if it is a compile-time constant."""
        v = self.node.inputs[self._index(k)] if self.has(k) else None
        return None if v is None else v.data

    def weight(self, array: np.ndarray, hint: str) -> str:
        """A derived constant (a transposed or folded weight) as a C array name."""
        return self.weights.add(array, f"{self.node.name}_{hint}")

    def fail(self, why: str) -> CodegenError:
        return CodegenError(f"node {self.node.name!r} ({self.node.op}): {why}")

    def require_float(self) -> str:
        """The C float type of the output, or a clear error for other dtypes."""
        t = self.ot(0).dtype
        if t not in (DType.f32, DType.f64):
            raise self.fail(f"the C emitter handles f32/f64 here, not {t.value}")
        return C_TYPES[t]

    def fn(self, name: str) -> str:
        """libm function for the output's float type: expf for f32, exp for f64."""
        return name + ("f" if self.ot(0).dtype is DType.f32 else "")

    def lit(self, x: float) -> str:
        """A float literal of the output type (exact, via repr)."""
        return float_lit(x, self.ot(0).dtype)

    @property
    def threads(self) -> int:
        """The threads this layer's loops are shared out among: the renderer's, or one for a
        layer too small to share out (worth_threads), or one for a serial twin."""
        return 1 if self.serial else layer_threads(self.node, self.renderer.threads)

    def omp(self, collapse: int = 1) -> str:
        """The renderer's parallel-loop pragma, or nothing when the layer runs on one
        thread."""
        return self.renderer.omp_for(collapse) if self.threads > 1 else ""


#: the estimated one-thread time (ns) below which a layer runs on one thread: a parallel
#: loop costs its fork and join, a few microseconds while the other threads still spin and
#: tens of microseconds where they must be woken (a virtual machine), more than such a layer
#: would gain. PP-OCR's direction classifier, 16 M MACs over 50 layers, ran 3.4x slower at 2
#: threads than at 1 when every layer was shared out.
MIN_PARALLEL_NS = 10_000
#: nanoseconds per unit of work on one core, by kind (measured on the u8 VNNI tiles; an AVX2
#: core is slower, which only makes the estimate cautious): a multiply-accumulate of a
#: dense convolution or GEMM; of a depthwise convolution, bound by loads and
#: requantisation; a float operation; an output element of a layer without products, a pass
#: over memory
NS_PER_MAC = 0.007
NS_PER_DEPTHWISE_MAC = 0.08
NS_PER_FLOP = 0.005
NS_PER_ELEMENT = 0.25
#: nanoseconds per tap of a pooling window (its FLOPs): 0.05 where the taps run along
#: vectors (a 3x3 max pool over 64 x 55 x 55), 0.13-0.19 over small planes (Inception v1's
#: 3x3 pools over 832 x 6 x 6, 37-53 us at one thread where NS_PER_FLOP estimated 1.4 us and
#: the per-element rate 7.5, so they stayed on one thread)
NS_PER_TAP = 0.05
#: nanoseconds per byte of a copy in contiguous runs (a Transpose that keeps its last axis:
#: ShuffleNet's channel shuffles, 351 KB in 9.5 us on one core, where the per-element rate
#: estimated 88 us and shared them out, each then 2-3x slower at two threads than at one)
NS_PER_BYTE_COPIED = 0.03
#: the estimated one-thread time (ns) below which such a copy runs on one thread: its data
#: is in the caches of the cores that produced it, and a second thread adds traffic between
#: cores, not speed (that 351 KB shuffle: 9.5 us at one thread, 19 us at two), until the
#: copy is larger than a core's L2 (about 3 MB at NS_PER_BYTE_COPIED)
MIN_PARALLEL_COPY_NS = 100_000


def estimated_ns(node: Node) -> float:
    """A rough one-thread time of ``node`` on the host (for :func:`worth_threads`); inf when
    its cost rule does not know the node."""
    try:
        macs, flops = rule_of(node)(node)
    except (KeyError, ValueError, TypeError, AttributeError):
        return float("inf")
    group = int(node.attrs.get("group", 1) or 1)
    x, y = node.first_operand(), node.outputs[0] if node.outputs else None
    # one input and one output channel per group, as the C emitters' depthwise path takes
    depthwise = group > 1 and x is not None and y is not None and x.type.rank >= 2 \
        and x.type.shape[1] == group and y.type.shape[1] == group
    if copies_runs(node):
        return node.outputs[0].type.nbytes * NS_PER_BYTE_COPIED
    elements = sum(v.type.size for v in node.outputs)
    per_flop = NS_PER_TAP if rule_of(node) is window else NS_PER_FLOP
    return max(int(macs) * (NS_PER_DEPTHWISE_MAC if depthwise else NS_PER_MAC),
               int(flops) * per_flop, elements * NS_PER_ELEMENT)


def copies_runs(node: Node) -> bool:
    """Whether ``node`` is a Transpose whose innermost output axis (of more than one
    element) is also its input's innermost: it copies contiguous runs, not single
    elements."""
    if node.op != "Transpose" or not node.outputs:
        return False
    x = node.first_operand()
    perm = list(node.attrs.get("perm") or [])
    if x is None or not perm:  # no perm: the axes reversed, the last one moved
        return False
    shape = x.type.shape
    kept = [a for a in perm if shape[a] != 1]
    inner = [a for a in range(len(shape)) if shape[a] != 1]
    return bool(kept) and kept[-1] == inner[-1]


def worth_threads(node: Node) -> bool:
    """Whether ``node``'s loops are worth sharing out among threads (MIN_PARALLEL_NS, or
    MIN_PARALLEL_COPY_NS for a copy of contiguous runs)."""
    least = MIN_PARALLEL_COPY_NS if copies_runs(node) else MIN_PARALLEL_NS
    return estimated_ns(node) >= least


#: the estimated one-thread time (ns) of a model's shareable layers together below which the
#: whole model is built for one thread: two threads could save at most half of it, and each
#: of its parallel loops still costs a fork and a join, on a virtual machine a wake-up.
#: PP-OCRv4's direction classifier (14 shareable layers, 0.44 ms estimated, 0.6 ms measured
#: at one thread) ran 0.92-1.02x as fast at two threads as at one over many runs, never
#: clearly faster; ShuffleNet (3.1 ms estimated, the smallest example over the bound) and
#: every larger model keep their threads.
MIN_SHARED_NS = 1_000_000


def shared_ns(graph: Graph) -> float:
    """The estimated one-thread time (ns) of ``graph``'s layers worth sharing out."""
    return sum(estimated_ns(n) for n in graph.nodes if worth_threads(n))


def layer_threads(node: Node, threads: int) -> int:
    """``threads``, or 1 where ``node`` is not worth sharing out."""
    return threads if threads > 1 and worth_threads(node) else 1


def c_type(dt: DType, node: Node | None = None) -> str:
    if dt not in C_TYPES:
        where = f"node {node.name!r} ({node.op}): " if node is not None else ""
        raise CodegenError(f"{where}element type {dt.value} is not supported by the C targets")
    return C_TYPES[dt]


def float_lit(x: float, dt: DType = DType.f32) -> str:
    x = float(x)
    if np.isnan(x):
        return "NAN"
    if np.isinf(x):
        return "INFINITY" if x > 0 else "-INFINITY"
    s = repr(x)
    if "e" not in s and "." not in s:
        s += ".0"
    return s + ("f" if dt is DType.f32 else "")


#: width of a table's rows inside a function body (which may sit a few blocks deep)
TABLE_WIDTH = 100


def c_table(name: str, ctype: str, values: Sequence[object]) -> str:
    """``static const ctype name[n] = {...};`` on one line if it is short, else in rows."""
    vals = [str(v) for v in values] or ["0"]
    head = f"static const {ctype} {name}[{len(vals)}] = {{"
    one = f"{head}{', '.join(vals)}}};"
    if len(one) <= TABLE_WIDTH:
        return one
    return "\n".join([head, *table_rows(vals, "    ", TABLE_WIDTH), "};"])


def strides_of(shape: Sequence[int]) -> list[int]:
    out, acc = [0] * len(shape), 1
    for k in range(len(shape) - 1, -1, -1):
        out[k] = acc
        acc *= shape[k]
    return out


def offset(idx: Sequence[str | Expr], strides: Sequence[int], base: int = 0) -> str:
    """``i0 * 12 + i1 * 4 + i2``, simplified (zero strides and indices, unit factors)."""
    return str(offset_expr(idx, strides, base))


def offset_expr(idx: Sequence[str | Expr], strides: Sequence[int], base: int = 0) -> Expr:
    return add(base, *(_index(v) * st for v, st in zip(idx, strides)))


def plus(ptr: str, off: Expr | int) -> str:
    """``ptr + off``, or ``ptr`` itself where the offset is 0."""
    e = lift(off)
    return ptr if e.value == 0 else f"{ptr} + {e}"


def _index(v: str | Expr) -> Expr:
    return Var(v) if isinstance(v, str) else lift(v)


def nested_loops(shape: Sequence[int], body: Callable[[list[Expr]], str], var: str = "i",
                 omp: str = "", names: Sequence[str] = ()) -> str:
    """Loops over ``shape`` with indices ``i0, i1, ...`` (or ``names``) around
    ``body(indices)``; an axis of one element has no loop, its index is 0 (so ``body`` must
    build its offsets from the index expressions it is given)."""
    heads, idx = [], []
    for k, n in enumerate(shape):
        h, e = loop(names[k] if names else f"{var}{k}", n)
        heads.append(h)
        idx.append(e)
    lines, ind = [], ""
    open_ = [h for h in heads if h is not None]
    for k, h in enumerate(open_):
        if k == 0 and omp:
            lines.append(omp.rstrip("\n"))
        lines.append(f"{ind}{h} {{")
        ind += "    "
    text = body(idx)
    if not open_:
        return text
    lines += [ind + ln for ln in text.splitlines()]
    for _ in open_:
        ind = ind[4:]
        lines.append(ind + "}")
    return "\n".join(lines)


def layer_comment(node: Node, indent: str = "") -> str:
    """The comment above a layer function: the op and the model nodes it computes, shapes,
    quantisation and attributes; names pass through c_comment, lines fit the width."""
    def tdesc(t: TensorType | None) -> str:
        if t is None:
            return "-"
        s = f"{t.dtype.value}{list(t.shape)}"
        q = t.quant
        if q is not None:
            zps = sorted({int(z) for z in q.zero_point})
            zp = str(zps[0]) if len(zps) == 1 else f"{len(q.zero_point)} zero points"
            scale = f"scale {float(q.scale[0]):.6g}" if len(q.scale) == 1 else \
                f"{len(q.scale)} scales"
            s += f" q({scale}, zp {zp})"
        return s

    head = f"{node.op} {c_comment(repr(node.name))}"
    if node.origin() != ((node.op, node.name),):
        head += ": " + " + ".join(f"{c_comment(op)} {c_comment(name)}"
                                  for op, name in node.origin())
    lines = [head, "in:  " + ", ".join(tdesc(v.type if v is not None else None)
                                       for v in node.inputs),
             "out: " + ", ".join(tdesc(v.type) for v in node.outputs)]
    attrs = ", ".join(f"{k}={_short(v)}" for k, v in node.attrs.items())
    if attrs:
        lines.append(c_comment("attrs: " + attrs, 2000))
    return comment_block(lines, indent)


def _short(v: Any) -> str:
    if isinstance(v, list) and len(v) > 16:
        return f"[{', '.join(map(str, v[:16]))}, ... ({len(v)} values)]"
    return str(v)
