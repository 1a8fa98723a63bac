"""Control flow in ``qnnc_run``: If as ``if (...) { ... } else { ... }``, Loop and Scan as C
loops around their bodies' layer calls.

A body's layers are layer functions like any other; its values live in the body's own arena
plan (targets/c/memory.py, ``body=True``), which is the scratch space of the owning node. The
code here only moves data between the node's operands and results and the body's inputs and
outputs: captures and initial loop-carried values are copied in before the body first runs,
carried values copied from the body's outputs back to its inputs after every iteration,
scan slices cut out and written at their offsets, and the final values copied out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ir.graph import Graph, Node, Value
from ir.ops.control import loop_body_parts, loop_parts, scan_axes, scan_parts
from targets.c.emitter import CodegenError
from targets.c.names import c_comment

Ref = Callable[[Value], str]


@dataclass
class Region:
    """What the generator gives the control flow of one node."""

    node: Node
    ref: Ref  # C expression of an outer value's buffer (the node's operands and results)
    body_ref: Callable[[Graph, Value], str]  # ... of a value of one of its bodies
    body_calls: Callable[[Graph, str], list[str]]  # the layer calls of a body, indented
    depth: int  # nesting level, which names the loop variables (qnnc_i0, qnnc_i1, ...)


def _bytes(ref: str, off: str | int = 0, const: bool = False) -> str:
    ptr = f"({'const ' if const else ''}uint8_t *){ref}"
    return ptr if off in (0, "0") else f"{ptr} + {off}"


def _copy(dst: str, src: str, v: Value, ind: str, move: bool = False) -> list[str]:
    if dst == src or v.type.nbytes == 0:
        return []
    fn = "memmove" if move else "memcpy"
    return [f"{ind}{fn}({dst}, {src}, {v.type.nbytes});"]


def _copy_in(reg: Region, body: Graph, pairs: Sequence[tuple[Value, Value]],
             ind: str) -> list[str]:
    """Copy outer values into body inputs: pairs of (outer, body input)."""
    out = []
    for outer, inner in pairs:
        out += _copy(reg.body_ref(body, inner), reg.ref(outer), inner, ind)
    return out


def _carry(reg: Region, body: Graph, pairs: Sequence[tuple[Value, Value]],
           ind: str) -> list[str]:
    """Copy body outputs to the body inputs they carry to: pairs of (output, input). One
    output that is another carried input (a swap) would be overwritten before it is read."""
    srcs = [reg.body_ref(body, s) for s, _ in pairs]
    dsts = [reg.body_ref(body, d) for _, d in pairs]
    for k, src in enumerate(srcs):
        if any(src == d for j, d in enumerate(dsts) if j != k):
            raise CodegenError(f"node {reg.node.name!r} ({reg.node.op}): a loop-carried value "
                               "is another one's previous value (a swap), which the C "
                               "generator does not order yet")
    out = []
    for (_, dst), src, d in zip(pairs, srcs, dsts):
        out += _copy(d, src, dst, ind, move=True)
    return out


def emit_control(reg: Region, ind: str) -> list[str]:
    node = reg.node
    head = f"{ind}/* {node.op} {c_comment(repr(node.name))} */"
    if node.op == "If":
        return [head, *_if(reg, ind)]
    if node.op == "Loop":
        return [head, f"{ind}{{", *_loop(reg, ind + "    "), f"{ind}}}"]
    return [head, f"{ind}{{", *_scan(reg, ind + "    "), f"{ind}}}"]


def _if(reg: Region, ind: str) -> list[str]:
    node = reg.node
    cond = node.cond
    lines = []
    for k, body in enumerate(node.regions):
        inner = ind + "    "
        part = _copy_in(reg, body, list(zip(node.captures, body.inputs)), inner)
        part += reg.body_calls(body, inner)
        for res, v in zip(node.outputs, body.outputs):
            part += _copy(reg.ref(res), reg.body_ref(body, v), v, inner)
        opener = f"{ind}if (*{reg.ref(cond)}) {{" if k == 0 else f"{ind}}} else {{"
        lines += [opener, *part]
    return [*lines, f"{ind}}}"]


def _loop(reg: Region, ind: str) -> list[str]:
    node = reg.node
    body = node.regions[0]
    m, cond, init, captured = loop_parts(node)
    n = len(init)
    trip = node.attrs["trip_count"]
    i, go, limit = f"qnnc_i{reg.depth}", f"qnnc_go{reg.depth}", f"qnnc_m{reg.depth}"
    it, flag, carried, caps = loop_body_parts(node)
    b_cond, b_carried, b_scans = body.outputs[0], body.outputs[1:1 + n], body.outputs[1 + n:]
    lines = [f"{ind}const int64_t {limit} = "
             + (f"*{reg.ref(m)};" if m is not None else "INT64_MAX;"),
             f"{ind}uint8_t {go} = " + (f"*{reg.ref(cond)};" if cond is not None else "1;")]
    lines += _copy_in(reg, body, list(zip(init, carried)), ind)
    lines += _copy_in(reg, body, list(zip(captured, caps)), ind)
    stop = f"{i} < {limit} && {go}" + (f" && {i} < {trip}" if b_scans else "")
    lines.append(f"{ind}int64_t {i} = 0;")
    lines.append(f"{ind}for (; {stop}; ++{i}) {{")
    inner = ind + "    "
    lines += [f"{inner}*{reg.body_ref(body, it)} = {i};",
              f"{inner}*{reg.body_ref(body, flag)} = {go};"]
    lines += reg.body_calls(body, inner)
    lines.append(f"{inner}{go} = *{reg.body_ref(body, b_cond)};")
    lines += _carry(reg, body, list(zip(b_carried, carried)), inner)
    for res, v in zip(node.outputs[n:], b_scans):
        off = f"{i} * {v.type.nbytes}"
        lines += _copy(_bytes(reg.ref(res), off), reg.body_ref(body, v), v, inner)
    lines.append(f"{ind}}}")
    if b_scans:  # the scan outputs were sized for trip_count iterations, no more, no fewer
        lines.append(f"{ind}if ({i} != {trip} || ({i} < {limit} && {go})) return 1;")
    for res, v in zip(node.outputs[:n], carried):
        lines += _copy(reg.ref(res), reg.body_ref(body, v), v, ind)
    return lines


def _slices(big: str, small: str, shape: Sequence[int], axis: int, step: str, esz: int,
            into_big: bool, ind: str, var: str) -> list[str]:
    """Copy slice ``step`` along ``axis`` of the array ``big`` (of ``shape``) from or to
    the dense array ``small``."""
    outer = 1
    for d in shape[:axis]:
        outer *= d
    inner = esz
    for d in shape[axis + 1:]:
        inner *= d
    t = shape[axis]
    if inner == 0:
        return []

    def one(o: str) -> str:
        big_off = f"({o}{t} + {step}) * {inner}" if o else f"{step} * {inner}"
        small_off = f"{o.removesuffix(' * ')} * {inner}" if o else 0
        if into_big:
            return f"memcpy({_bytes(big, big_off)}, {_bytes(small, small_off, True)}, {inner});"
        return f"memcpy({_bytes(small, small_off)}, {_bytes(big, big_off, True)}, {inner});"

    if outer == 1:
        return [ind + one("")]
    return [f"{ind}for (int64_t {var} = 0; {var} < {outer}; ++{var}) {{",
            f"{ind}    {one(f'{var} * ')}", f"{ind}}}"]


def _scan(reg: Region, ind: str) -> list[str]:
    node = reg.node
    body = node.regions[0]
    a = node.attrs
    init, xs, captured = scan_parts(node)
    n, k = len(init), len(xs)
    n_out = len(body.outputs) - n
    axes, dirs = scan_axes(a, "scan_input_axes", k), scan_axes(a, "scan_input_directions", k)
    oaxes = scan_axes(a, "scan_output_axes", n_out)
    odirs = scan_axes(a, "scan_output_directions", n_out)
    first = xs[0]
    assert first is not None
    t = first.type.shape[axes[0]]
    state, cuts, caps = body.inputs[:n], body.inputs[n:n + k], body.inputs[n + k:]
    i, o = f"qnnc_t{reg.depth}", f"qnnc_o{reg.depth}"
    lines = _copy_in(reg, body, list(zip(init, state)), ind)
    lines += _copy_in(reg, body, list(zip(captured, caps)), ind)
    lines.append(f"{ind}for (int64_t {i} = 0; {i} < {t}; ++{i}) {{")
    inner = ind + "    "
    for x, cut, ax, d in zip(xs, cuts, axes, dirs):
        assert x is not None
        step = f"({t - 1} - {i})" if d else i
        lines += _slices(reg.ref(x), reg.body_ref(body, cut), x.type.shape, ax, step,
                         x.type.dtype.np.itemsize, False, inner, o)
    lines += reg.body_calls(body, inner)
    lines += _carry(reg, body, list(zip(body.outputs[:n], state)), inner)
    for res, v, ax, d in zip(node.outputs[n:], body.outputs[n:], oaxes, odirs):
        step = f"({t - 1} - {i})" if d else i
        lines += _slices(reg.ref(res), reg.body_ref(body, v), res.type.shape, ax, step,
                         res.type.dtype.np.itemsize, True, inner, o)
    lines.append(f"{ind}}}")
    for res, v in zip(node.outputs[:n], state):
        lines += _copy(reg.ref(res), reg.body_ref(body, v), v, ind)
    return lines
