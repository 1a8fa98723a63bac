"""Control flow: If, Loop and Scan, the ops that own regions (graph bodies, ``node.regions``).

Regions are isolated from above (ir/graph.py): every outer value a body reads is an operand
of the node, bound in order to an input of the body, so a body is a complete graph of its
own. The operands and the body inputs line up as each op's docstring says; ``infer`` checks
that they do, and ``compute`` runs the bodies with the reference interpreter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ir.ops.registry import Attr, Attrs, OpError, register, require
from ir.types import DType, TensorType

BOOL = TensorType((), DType.bool)
ITER = TensorType((), DType.i64)


def _run(body: Any, args: Sequence[np.ndarray]) -> list[np.ndarray]:
    from ir.interpreter import run_body  # the interpreter runs ops: imported when running

    return run_body(body, list(args))


def _is_flag(t: TensorType | None) -> bool:
    return t is not None and t.dtype is DType.bool and t.size == 1


def check_inputs(op: str, body: Any, want: Sequence[TensorType | None], label: str) -> None:
    """The body's inputs must have the types ``want`` (None: any type)."""
    got = [v.type for v in body.inputs]
    require(len(got) == len(want), f"{op}: body @{body.name} ({label}) has {len(got)} "
            f"inputs, the node binds {len(want)}")
    for k, (g, w) in enumerate(zip(got, want)):
        require(w is None or g == w, f"{op}: input {k} (%{body.inputs[k].name}) of body "
                f"@{body.name} ({label}) has type {g}, the node binds {w}")


def _flag(a: np.ndarray | None, default: bool = True) -> bool:
    return default if a is None else bool(np.asarray(a).reshape(-1)[0])


@register
class If:
    """y = then_branch(captures...) if cond else else_branch(captures...)

    Operands: cond (one bool), then the captured outer values, which both bodies take as
    their inputs, in order (a branch may leave some unread). Both bodies' outputs have the
    same types: they are the node's results.
    """

    operands = ("cond", "captures*")
    min_inputs = 1
    regions = ("then_branch", "else_branch")
    attrs: dict[str, Attr] = {}
    outputs = -1

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs, regions: list[Any]) -> list[TensorType]:
        require(_is_flag(ins[0]), f"If: cond must be one bool, got {ins[0]}")
        for body, label in zip(regions, If.regions):
            check_inputs("If", body, ins[1:], label)
        then_t = [v.type for v in regions[0].outputs]
        else_t = [v.type for v in regions[1].outputs]
        if then_t != else_t:
            raise OpError(
                "If: the branches give different types: then_branch "
                f"({', '.join(map(str, then_t))}) vs else_branch "
                f"({', '.join(map(str, else_t))}); qnnc needs static shapes")
        return then_t

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs, regions: list[Any]) -> list[np.ndarray]:
        return _run(regions[0] if _flag(ins[0]) else regions[1], ins[1:])  # type: ignore[arg-type]


def loop_split(n_inputs: int, captures: int) -> int:
    """The number of loop-carried values of a Loop with ``n_inputs`` operands."""
    return n_inputs - 2 - captures


@register
class Loop:
    """for (i = 0; i < m && cond; ++i) {cond, carried..., scans_i...} = body(i, cond, carried...,
    captures...)

    Operands: m (i64 trip count; omitted = unbounded), cond (bool; omitted = true; the body's
    cond output is obeyed either way, as onnxruntime does), the initial
    loop-carried values, then ``captures`` captured outer values. The body takes (i, cond,
    carried..., captures...) and gives (cond, carried..., scan slices...). Results: the final
    carried values, then each scan output: its slices stacked on a new first axis of
    ``trip_count`` rows, the static number of iterations the node promises (-1 when it has no
    scan outputs); a run with another count is an error.
    """

    operands = ("m?", "cond?", "state*")
    regions = ("body",)
    attrs = {
        "captures": Attr("int", 0, "trailing operands that are captured outer values"),
        "trip_count": Attr("int", -1, "iterations the scan outputs stack (-1: none)"),
    }
    outputs = -1

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs, regions: list[Any]) -> list[TensorType]:
        m, cond = ins[0], ins[1] if len(ins) > 1 else None
        require(m is None or (m.dtype is DType.i64 and m.size == 1),
                f"Loop: m must be one i64, got {m}")
        require(cond is None or _is_flag(cond), f"Loop: cond must be one bool, got {cond}")
        n = loop_split(len(ins), a["captures"])
        require(n >= 0 and a["captures"] >= 0, f"Loop: {len(ins)} operands cannot hold "
                f"m, cond and {a['captures']} captures")
        body = regions[0]
        check_inputs("Loop", body, [ITER, BOOL, *ins[2:]], "body")
        outs = [v.type for v in body.outputs]
        require(len(outs) >= 1 + n and _is_flag(outs[0]),
                f"Loop: body @{body.name} must give cond (one bool) and {n} carried values")
        for k in range(n):
            require(outs[1 + k] == ins[2 + k], f"Loop: carried value {k} enters as {ins[2 + k]}"
                    f" but the body gives {outs[1 + k]}")
        scans = outs[1 + n:]
        t = a["trip_count"]
        require(not scans or t >= 0, "Loop: scan outputs need a static trip_count")
        return [*outs[1:1 + n], *(s.with_shape((t, *s.shape)) for s in scans)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs, regions: list[Any]) -> list[np.ndarray]:
        ins = list(ins) + [None] * (2 - len(ins))
        body = regions[0]
        n = loop_split(len(ins), a["captures"])
        limit = None if ins[0] is None else int(np.asarray(ins[0]).reshape(-1)[0])
        cond = _flag(ins[1])
        carried = list(ins[2:2 + n])
        captured = list(ins[2 + n:])
        n_scans = len(body.outputs) - 1 - n
        rows: list[list[np.ndarray]] = [[] for _ in range(n_scans)]
        i = 0
        while (limit is None or i < limit) and cond:
            outs = _run(body, [np.array(i, np.int64), np.array(cond), *carried, *captured])
            cond = _flag(outs[0])
            carried = outs[1:1 + n]
            for k, s in enumerate(outs[1 + n:]):
                rows[k].append(s)
            i += 1
        t = a["trip_count"]
        if n_scans and i != t:
            raise OpError(f"Loop: ran {i} iterations, but its scan outputs were given a "
                          f"static trip count of {t}")
        stacked = [np.stack(r) if r else np.zeros((0, *v.type.shape), v.type.dtype.np)
                   for r, v in zip(rows, body.outputs[1 + n:])]
        return [*carried, *stacked]


def scan_axes(a: Attrs, key: str, count: int) -> list[int]:
    """An axes/directions attribute of Scan, [] meaning all zeros."""
    vals = list(a[key]) or [0] * count
    require(len(vals) == count, f"Scan: {key} has {len(vals)} entries for {count} values")
    return vals


@register
class Scan:
    """{state..., ys_t...} = body(state..., xs[t along axis]..., captures...) for t in 0..T-1

    Operands: the initial state values, ``num_scan_inputs`` scanned inputs, then ``captures``
    captured outer values. Each scanned input is cut along its scan_input_axes entry (from the
    end where scan_input_directions is 1) into T slices; the body takes (state..., slices...,
    captures...) and gives (state..., scan output slices...). Results: the final state, then
    each scan output: its T slices stacked along its scan_output_axes entry (in reverse
    order where scan_output_directions is 1). ONNX opset 9+ semantics.
    """

    operands = ("values*",)
    min_inputs = 1
    regions = ("body",)
    attrs = {
        "num_scan_inputs": Attr("int"),
        "captures": Attr("int", 0, "trailing operands that are captured outer values"),
        "scan_input_axes": Attr("ints", []),
        "scan_input_directions": Attr("ints", []),
        "scan_output_axes": Attr("ints", []),
        "scan_output_directions": Attr("ints", []),
    }
    outputs = -1

    @staticmethod
    def layout(ins: Sequence[Any], a: Attrs, body: Any) -> tuple[int, int]:
        """(state count, scan output count) of a Scan node."""
        k, c = a["num_scan_inputs"], a["captures"]
        n = len(ins) - k - c
        require(k >= 1 and c >= 0 and n >= 0, f"Scan: {len(ins)} operands cannot hold "
                f"{k} scanned inputs and {c} captures")
        return n, len(body.outputs) - n

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs, regions: list[Any]) -> list[TensorType]:
        body = regions[0]
        n, n_out = Scan.layout(ins, a, body)
        k = a["num_scan_inputs"]
        xs = [t for t in ins[n:n + k] if t is not None]
        require(len(xs) == k, "Scan: a scanned input is missing")
        axes = scan_axes(a, "scan_input_axes", k)
        scan_axes(a, "scan_input_directions", k)
        lengths = set()
        slices = []
        for x, ax in zip(xs, axes):
            require(-x.rank <= ax < x.rank, f"Scan: axis {ax} is out of range for {x}")
            ax %= x.rank
            lengths.add(x.shape[ax])
            slices.append(x.with_shape(x.shape[:ax] + x.shape[ax + 1:]))
        require(len(lengths) == 1, f"Scan: scanned inputs have different lengths {lengths}")
        t = lengths.pop()
        check_inputs("Scan", body, [*ins[:n], *slices, *ins[n + k:]], "body")
        outs = [v.type for v in body.outputs]
        require(n_out >= 0, f"Scan: body @{body.name} gives fewer than {n} state values")
        for j in range(n):
            require(outs[j] == ins[j], f"Scan: state {j} enters as {ins[j]} but the body "
                    f"gives {outs[j]}")
        oaxes = scan_axes(a, "scan_output_axes", n_out)
        scan_axes(a, "scan_output_directions", n_out)
        stacked = []
        for s, ax in zip(outs[n:], oaxes):
            require(-(s.rank + 1) <= ax <= s.rank, f"Scan: output axis {ax} is out of range")
            ax %= s.rank + 1
            stacked.append(s.with_shape(s.shape[:ax] + (t,) + s.shape[ax:]))
        return [*outs[:n], *stacked]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs, regions: list[Any]) -> list[np.ndarray]:
        body = regions[0]
        n, n_out = Scan.layout(ins, a, body)
        k = a["num_scan_inputs"]
        xs = [np.asarray(x) for x in ins[n:n + k]]
        axes = [ax % x.ndim for ax, x in zip(scan_axes(a, "scan_input_axes", k), xs)]
        dirs = scan_axes(a, "scan_input_directions", k)
        t = xs[0].shape[axes[0]]
        state = list(ins[:n])
        captured = list(ins[n + k:])
        rows: list[list[np.ndarray]] = [[] for _ in range(n_out)]
        for step in range(t):
            cut = [np.take(x, t - 1 - step if d else step, axis=ax)
                   for x, ax, d in zip(xs, axes, dirs)]
            outs = _run(body, [*state, *cut, *captured])
            state = outs[:n]
            for j, y in enumerate(outs[n:]):
                rows[j].append(y)
        stacked = []
        odirs = scan_axes(a, "scan_output_directions", n_out)
        for r, ax, d, v in zip(rows, scan_axes(a, "scan_output_axes", n_out), odirs,
                               body.outputs[n:]):
            rank = len(v.type.shape) + 1
            seq = r[::-1] if d else r
            stacked.append(np.stack(seq, axis=ax % rank) if seq else
                           np.zeros((0, *v.type.shape), v.type.dtype.np))
        return [*state, *stacked]


# -- the groups of a node's operands and of its body's inputs, for passes and generators ----
def loop_parts(node: Any) -> tuple[Any, Any, list[Any], list[Any]]:
    """(m, cond, initial carried values, captures) of a Loop node."""
    rest = list(node.state)
    n = len(rest) - node.attrs["captures"]
    return node.m, node.cond, rest[:n], rest[n:]


def loop_body_parts(node: Any) -> tuple[Any, Any, list[Any], list[Any]]:
    """(iteration, cond, carried, captures) inputs of a Loop node's body."""
    body = node.regions[0]
    n = len(loop_parts(node)[2])
    return body.inputs[0], body.inputs[1], body.inputs[2:2 + n], body.inputs[2 + n:]


def scan_parts(node: Any) -> tuple[list[Any], list[Any], list[Any]]:
    """(initial state, scanned inputs, captures) of a Scan node."""
    vals = list(node.values)
    k, c = node.attrs["num_scan_inputs"], node.attrs["captures"]
    n = len(vals) - k - c
    return vals[:n], vals[n:n + k], vals[n + k:]


def _capture_inputs(node: Any) -> tuple[int, int]:
    """(position of the first captured operand, of the first capture input of its bodies)."""
    if node.op == "If":
        return 1, 0
    c = node.attrs["captures"]
    first = len(node.inputs) - c
    body = node.regions[0]
    return first, len(body.inputs) - c


def drop_unread_captures(node: Any) -> None:
    """Remove the captured operands that no body of ``node`` reads (dce does this)."""
    if node.op not in ("If", "Loop", "Scan"):
        return
    first, at = _capture_inputs(node)
    count = len(node.inputs) - first
    read = [False] * count
    for body in node.regions:
        used = {id(v) for n in body.nodes for v in n.inputs if v is not None}
        used |= {id(v) for v in body.outputs}
        for j in range(count):
            read[j] = read[j] or id(body.inputs[at + j]) in used
    if all(read):
        return
    node.inputs = node.inputs[:first] + [v for v, r in zip(node.inputs[first:], read) if r]
    for body in node.regions:
        gone = [v for v, r in zip(body.inputs[at:], read) if not r]
        body.inputs = body.inputs[:at] + [v for v, r in zip(body.inputs[at:], read) if r]
        for v in gone:
            body.release_name(v.name)
    if node.op != "If":
        node.attrs["captures"] = sum(read)
