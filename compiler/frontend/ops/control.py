"""Converters of ONNX control flow: If, Loop, Scan. Their subgraphs are converted through the
same converter table (compiler/frontend/scope.py), outer names they read becoming captured
operands of the IR node (regions are isolated from above)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from onnx import GraphProto

from compiler.frontend.context import Ctx
from compiler.frontend.registry import converter
from compiler.frontend.scope import convert_body, inline_body
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


@converter("Loop", note="scan outputs need a static trip count: m known at compile time, "
           "or the model's declared output shapes")
def loop(ctx: Ctx, m: Value | None = None, cond: Value | None = None, *carried: Value,
         body: GraphProto) -> list[Value]:
    if any(v is None for v in carried):
        raise ctx.fail("a loop-carried value is omitted")
    if m is not None and m.data is not None and int(np.asarray(m.data).reshape(-1)[0]) < 0:
        raise ctx.fail("a negative trip count")
    g, caps = convert_body(ctx, body, [ITER, BOOL, *(v.type for v in carried)])
    n_scans = len(g.outputs) - 1 - len(carried)
    trip = -1
    if n_scans > 0:
        trip = _trip_count(ctx, m, cond, len(carried))
    return ctx.ops("Loop", [m, cond, *carried, *caps], regions=[g], captures=len(caps),
                   trip_count=trip)


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
