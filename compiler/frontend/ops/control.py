"""Converters of ONNX control flow: If, Loop, Scan. Their subgraphs are converted through the
same converter table (compiler/frontend/scope.py), outer names they read becoming captured
operands of the IR node (regions are isolated from above)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from onnx import GraphProto

from compiler.frontend.context import Ctx, Opt, Resolved, Seq
from compiler.frontend.ops.shape import reshape_to
from compiler.frontend.registry import converter
from compiler.frontend.scope import convert_body, inline_body, subgraphs, walk_nodes
from ir.graph import Graph, Value
from ir.ops.control import BOOL, ITER


def _unify(bodies: Sequence[tuple[Graph, list[Value]]]) -> list[Value]:
    """Give every body one input per captured value of any body, in one order (a body that
    does not read a capture still takes it): the node's capture operands."""
    caps: list[Value] = []
    for _, got in bodies:
        caps += [v for v in got if all(v is not c for c in caps)]
    for g, got in bodies:
        start = len(g.inputs) - len(got)
        formal, mine = g.inputs[:start], g.inputs[start:]
        bound = []
        for c in caps:
            k = next((k for k, v in enumerate(got) if v is c), None)
            bound.append(mine[k] if k is not None else
                         g.add_input(g.fresh_name(f"{c.name}_unused"), c.type))
        g.inputs = formal + bound
    return caps


@converter("If", note="a compile-time condition inlines its branch")
def if_(ctx: Ctx, cond: Value, *, then_branch: GraphProto, else_branch: GraphProto,
        ) -> list[Value]:
    if cond.data is not None:
        flag = bool(np.asarray(cond.data).reshape(-1)[0])
        return inline_body(ctx, then_branch if flag else else_branch)
    bodies = [convert_body(ctx, b, []) for b in (then_branch, else_branch)]
    caps = _unify(bodies)
    then_t = [v.type for v in bodies[0][0].outputs]
    else_t = [v.type for v in bodies[1][0].outputs]
    if then_t != else_t:
        raise ctx.fail(
            f"the branches give different types (then_branch: {', '.join(map(str, then_t))}; "
            f"else_branch: {', '.join(map(str, else_t))}); qnnc compiles static shapes, so "
            "both branches must give the same shapes and types")
    return ctx.ops("If", [cond, *caps], regions=[bodies[0][0], bodies[1][0]])


@converter("Loop", ir_ops=("Loop", "Reshape", "Concat"), sequences=True,
           note="scan outputs need a static trip count: m known at compile time, or the "
           "model's declared output shapes; a loop that carries or reads a sequence or "
           "optional is unrolled at import (m and cond known at compile time)")
def loop(ctx: Ctx, m: Resolved | None = None, cond: Resolved | None = None,
         *carried: Resolved, body: GraphProto) -> list[Resolved]:
    if any(v is None for v in carried):
        raise ctx.fail("a loop-carried value is omitted")
    if any(isinstance(v, (Seq, Opt)) for v in carried) or _reads_sequences(ctx, body):
        return _unroll(ctx, m, cond, list(carried), body)
    for what, v in (("M", m), ("cond", cond)):
        if isinstance(v, (Seq, Opt)):
            raise ctx.fail(f"input {what} must be a tensor")
    assert m is None or isinstance(m, Value)
    assert cond is None or isinstance(cond, Value)
    carried = tuple(v for v in carried if isinstance(v, Value))
    if m is not None and m.data is not None and int(np.asarray(m.data).reshape(-1)[0]) < 0:
        raise ctx.fail("a negative trip count")
    g, caps = convert_body(ctx, body, [ITER, BOOL, *(v.type for v in carried)])
    n_scans = len(g.outputs) - 1 - len(carried)
    trip = -1
    if n_scans > 0:
        trip = _trip_count(ctx, m, cond, len(carried))
    return ctx.ops("Loop", [m, cond, *carried, *caps], regions=[g], captures=len(caps),
                   trip_count=trip)


# An unrolled loop whose condition never turns false at compile time stops here.
MAX_UNROLL = 10_000


def _reads_sequences(ctx: Ctx, body: GraphProto) -> bool:
    """Whether ``body`` (or a subgraph in it) reads an outer sequence or optional."""
    defined = {i.name for i in body.input} | {t.name for t in body.initializer}
    read: set[str] = set()
    for n in walk_nodes(body.node):
        defined.update(n.output)
        read.update(x for x in n.input if x)
        for g in subgraphs(n):
            defined.update(i.name for i in g.input)
            defined.update(t.name for t in g.initializer)
            read.update(o.name for o in g.output)
    read.update(o.name for o in body.output)
    return any(isinstance(ctx.scope.peek(name), (Seq, Opt)) for name in read - defined)


def _known(ctx: Ctx, v: Resolved, what: str) -> np.ndarray:
    if not isinstance(v, Value):
        raise ctx.fail(f"{what} must be a tensor")
    if v.data is None:
        raise ctx.fail(
            f"{what} (%{v.name}) must be known at compile time, but it depends on the "
            "model's inputs: this loop carries or reads a sequence or optional, which qnnc "
            "resolves while compiling, so it unrolls the loop at import")
    return v.data


def _flag(ctx: Ctx, v: Resolved, what: str) -> bool:
    return bool(np.asarray(_known(ctx, v, what)).reshape(-1)[0])


def _unroll(ctx: Ctx, m: Resolved | None, cond: Resolved | None, carried: list[Resolved],
            body: GraphProto) -> list[Resolved]:
    """A Loop carrying or reading sequences, unrolled at import: the body is converted
    inline once per iteration, its iteration number and condition bound to constants, its
    carried values to the previous iteration's. Its scan outputs are stacked with Concat."""
    trip = MAX_UNROLL
    if m is not None:
        trip = int(np.asarray(_known(ctx, m, "the trip count M")).reshape(-1)[0])
        if trip < 0:
            raise ctx.fail("a negative trip count")
    go = True if cond is None else _flag(ctx, cond, "cond")
    hints = ctx.out_hints
    scans: list[list[Value]] = []
    k = 0
    while go and k < trip:
        ctx.out_hints = [f"{h}_{k}" for h in hints]
        it = ctx.const(np.array(k, np.int64), f"{ctx.node_name}_iter")
        flag = ctx.const(np.array(True), f"{ctx.node_name}_cond")
        outs = inline_body(ctx, body, [it, flag, *carried])
        if len(outs) < 1 + len(carried):
            raise ctx.fail(f"the body gives {len(outs)} outputs, it needs at least "
                           f"{1 + len(carried)} (cond and the carried values)")
        go = _flag(ctx, outs[0], "the body's cond output")
        carried = list(outs[1:1 + len(carried)])
        scans.append([_scan_item(ctx, v, j) for j, v in enumerate(outs[1 + len(carried):])])
        k += 1
    if go and m is None:
        raise ctx.fail(f"the loop did not stop within {MAX_UNROLL} iterations when unrolled "
                       "(no trip count, and its condition stays true)")
    n_scans = len(body.output) - 1 - len(carried)
    if n_scans and not scans:
        raise ctx.fail("the unrolled loop runs no iteration, so its scan outputs have no "
                       "known shape")
    stacked = []
    for j in range(n_scans):
        ctx.out_hints = hints[len(carried) + j:len(carried) + j + 1]
        stacked.append(_stack(ctx, [row[j] for row in scans]))
    ctx.out_hints = hints
    return [*carried, *stacked]


def _scan_item(ctx: Ctx, v: Resolved, j: int) -> Value:
    if not isinstance(v, Value):
        raise ctx.fail(f"scan output {j} must be a tensor")
    return v


def _stack(ctx: Ctx, rows: list[Value]) -> Value:
    """Stack the iterations' scan output values on a new leading axis."""
    hints, stacked = ctx.out_hints, []
    for r in rows:
        ctx.out_hints = [f"{r.name}_row"]
        stacked.append(reshape_to(ctx, r, [1, *r.type.shape]))
    ctx.out_hints, rows = hints, stacked
    return rows[0] if len(rows) == 1 else ctx.op("Concat", rows, axis=0)


def _trip_count(ctx: Ctx, m: Value | None, cond: Value | None, n: int) -> int:
    """The static number of rows of a Loop's scan outputs."""
    rows = {ctx.declared[o][0] for o in ctx.out_hints[n:] if o and ctx.declared.get(o)}
    if m is not None and m.data is not None:
        t = int(np.asarray(m.data).reshape(-1)[0])
        if rows and rows != {t}:
            raise ctx.fail(f"the model declares scan outputs of {sorted(rows)} rows, the trip "
                           f"count is {t}")
        return t
    if len(rows) == 1:
        return rows.pop()
    raise ctx.fail(
        "its scan outputs have a run-time length: the trip count m is not known at compile "
        "time and the model declares no static shape for them; qnnc compiles static shapes "
        "(make m a constant, or give the outputs static shapes)")


@converter("Scan", ir_ops=("Scan", "Gather", "Reshape", "Concat"),
           note="opset 8's batch form becomes one opset-9 Scan per batch element")
def scan(ctx: Ctx, *ins: Value | None, body: GraphProto, num_scan_inputs: int,
         scan_input_axes: list[int] | None = None,
         scan_input_directions: list[int] | None = None,
         scan_output_axes: list[int] | None = None,
         scan_output_directions: list[int] | None = None,
         directions: list[int] | None = None) -> list[Value]:
    k = num_scan_inputs
    if ctx.opset < 9:
        return _scan8(ctx, list(ins), body, k, directions)
    vals = [v for v in ins if v is not None]
    if len(vals) != len(ins) or not 1 <= k <= len(vals):
        raise ctx.fail(f"Scan needs {k} scanned inputs and no omitted ones")
    return _scan9(ctx, vals, body, k, scan_input_axes, scan_input_directions,
                  scan_output_axes, scan_output_directions)


def _scan9(ctx: Ctx, vals: list[Value], body: GraphProto, k: int, in_axes: list[int] | None,
           in_dirs: list[int] | None, out_axes_: list[int] | None, out_dirs: list[int] | None,
           ) -> list[Value]:
    n = len(vals) - k
    xs = vals[n:]
    axes = [a % x.type.rank for a, x in zip(in_axes or [0] * k, xs)]
    slices = [x.type.with_shape(x.type.shape[:a] + x.type.shape[a + 1:])
              for x, a in zip(xs, axes)]
    g, caps = convert_body(ctx, body, [*(v.type for v in vals[:n]), *slices])
    n_out = len(g.outputs) - n
    out_axes = [a % (len(g.outputs[n + j].type.shape) + 1)
                for j, a in enumerate(out_axes_ or [0] * n_out)]
    return ctx.ops(
        "Scan", [*vals, *caps], regions=[g], num_scan_inputs=k, captures=len(caps),
        scan_input_axes=axes, scan_input_directions=list(in_dirs or [0] * k),
        scan_output_axes=out_axes, scan_output_directions=list(out_dirs or [0] * n_out))


def _scan8(ctx: Ctx, ins: list[Value | None], body: GraphProto, k: int,
           directions: list[int] | None) -> list[Value]:
    """Opset 8: inputs (sequence_lens?, states..., scanned...) with a leading batch axis, the
    scan axis second. Batch elements are independent scans: each is an opset-9 Scan of its
    slices, and the results are stacked back on the batch axis."""
    if ins and ins[0] is not None:
        raise ctx.fail("Scan's sequence_lens (different lengths per batch element) is not "
                       "supported; omit it")
    vals = [v for v in ins[1:] if v is not None]
    if len(vals) != len(ins) - 1 or not 1 <= k <= len(vals):
        raise ctx.fail(f"Scan needs {k} scanned inputs and no omitted ones")
    batch = vals[0].type.shape[0] if vals[0].type.rank else 0
    if any(not v.type.rank or v.type.shape[0] != batch for v in vals):
        raise ctx.fail("Scan (opset 8): every input needs the same leading batch axis")
    hints, ctx.out_hints = ctx.out_hints, []  # the model's names go to the final values only
    per: list[list[Value]] = []
    for b in range(batch):
        idx = ctx.const(np.array(b, np.int64), "batch")
        part = [ctx.op("Gather", [v, idx], axis=0) for v in vals]
        per.append(_scan9(ctx, part, body, k, None, directions, None, None))
    outs = []
    for j in range(len(per[0])):
        ctx.out_hints = hints[j:j + 1] if batch == 1 else []
        rows = [ctx.op("Reshape", [r[j]], shape=[1, *r[j].type.shape]) for r in per]
        ctx.out_hints = hints[j:j + 1]
        outs.append(rows[0] if batch == 1 else ctx.op("Concat", rows, axis=0))
    ctx.out_hints = hints
    return outs
