"""Data-movement emitters: views, Transpose, Concat, Slice, Gather, Pad, Resize, Expand.

Index arithmetic that depends only on shapes is done here, in Python: the C gets literal
strides, and per-axis index tables (Pad, Resize) as ``static const`` arrays.
"""

from __future__ import annotations

import math

import numpy as np

from ir.ops.resize import axis_taps, source_coords
from targets.c.cond import all_of, cond_text, ge
from targets.c.emitter import (
    LayerCtx,
    c_table,
    emits,
    float_lit,
    nested_loops,
    offset,
    plus,
    strides_of,
)
from targets.c.expr import Expr, Var, add
from targets.c.ops_elementwise import broadcast_strides
from targets.c.stmt import loop, nested


@emits("Reshape", "Identity")
def view(ctx: LayerCtx) -> str:
    """No data moves when the planner gave input and output the same storage."""
    if ctx.same_storage(0, 0):
        return ""
    return f"memcpy({ctx.o(0)}, {ctx.i(0)}, {ctx.ot(0).nbytes});"


def _sized_loops(ctx: LayerCtx, src_base: int, src_strides: list[int], shape: tuple[int, ...],
                 src: str = "", threaded: bool = False) -> str:
    """y[flat] = x[base + Σ i_k * src_strides[k]] over ``shape`` (unit axes dropped); if
    ``threaded``, the two outer loops shared out among the layer's threads (a detection
    head's few anchors times its rows)."""
    keep = [k for k, n in enumerate(shape) if n != 1]
    dims = [shape[k] for k in keep]
    y, x = ctx.o(0), src or ctx.i(0)
    omp = ctx.omp(min(2, len(dims) - 1)) if threaded and len(dims) > 1 else ""
    return nested_loops(dims, lambda idx: (
        f"{y}[{offset(idx, strides_of(dims))}] = "
        f"{x}[{offset(idx, [src_strides[k] for k in keep], src_base)}];"), omp=omp)


@emits("Transpose")
def transpose(ctx: LayerCtx) -> str:
    st = strides_of(ctx.it(0).shape)
    return _sized_loops(ctx, 0, [st[p] for p in ctx.a["perm"]], ctx.ot(0).shape,
                        threaded=True)


@emits("Expand")
def expand(ctx: LayerCtx) -> str:
    return _sized_loops(ctx, 0, broadcast_strides(ctx.it(0).shape, ctx.ot(0).shape),
                        ctx.ot(0).shape)


@emits("Slice")
def slice_(ctx: LayerCtx) -> str:
    st = strides_of(ctx.it(0).shape)
    base = sum(s * k for s, k in zip(ctx.a["starts"], st))
    return _sized_loops(ctx, base, [step * k for step, k in zip(ctx.a["steps"], st)],
                        ctx.ot(0).shape)


#: a Concat of at least this many inputs copies in a loop over a table of its inputs, not
#: one memcpy per input: gcc's dead-store elimination is quadratic in a function's copies
#: (5,000 inputs: 30 s of -O3)
CONCAT_TABLE_MIN = 64


@emits("Concat")
def concat(ctx: LayerCtx) -> str:
    axis, out = ctx.a["axis"], ctx.ot(0).shape
    outer = int(np.prod(out[:axis]))
    inner = int(np.prod(out[axis + 1:]))
    size = ctx.ot(0).dtype.np.itemsize
    pieces, at = [], 0  # (input, where its chunk starts in a row of y, chunk)
    for k in range(len(ctx.node.inputs)):
        chunk = ctx.it(k).shape[axis] * inner
        if chunk and k not in ctx.placed:  # placed: its producer wrote it there
            pieces.append((k, at, chunk))
        at += chunk
    ho, o = loop("o", outer)
    y = ctx.o(0)
    row = out[axis] * inner
    if len(pieces) >= CONCAT_TABLE_MIN:
        ct = ctx.ctype(ctx.ot(0))
        hk, k = loop("k", len(pieces))
        return "\n".join([
            f"const {ct} *const src[{len(pieces)}] = {{"
            + ", ".join(ctx.i(j) for j, _, _ in pieces) + "};",
            c_table("at", "int64_t", [a for _, a, _ in pieces]),
            c_table("len", "int64_t", [c for _, _, c in pieces]),
            *nested([hk, ho], [f"memcpy({plus(y, o * row)} + at[{k}], src[{k}] + "
                               f"{o} * len[{k}], len[{k}] * {size});" if outer > 1 else
                               f"memcpy({y} + at[{k}], src[{k}], len[{k}] * {size});"])])
    lines = []
    for k, at, chunk in pieces:
        lines += nested([ho], [f"memcpy({plus(y, o * row + at)}, "
                               f"{plus(ctx.i(k), o * chunk)}, {chunk * size});"])
    return "\n".join(lines)


@emits("Gather", checks=True)
def gather(ctx: LayerCtx) -> str:
    """An index outside the axis (which the reference rejects too) stops the run with this
    layer's status before anything is read with it."""
    axis, x = ctx.a["axis"], ctx.it(0).shape
    outer, d, inner = int(np.prod(x[:axis])), x[axis], int(np.prod(x[axis + 1:]))
    nidx = ctx.it(1).size
    size = ctx.ot(0).dtype.np.itemsize
    ho, o = loop("o", outer)
    hj, j = loop("j", nidx)
    x, ix = ctx.i(0), ctx.i(1)
    return "\n".join(nested([ho, hj], [
        f"int64_t t = (int64_t){ix}[{j}];",
        f"if (t < 0) t += {d};",
        f"{ctx.ctype(ctx.ot(0))} *y = {plus(ctx.o(0), (o * nidx + j) * inner)};",
        f"if (t < 0 || t >= {d}) return 1;",
        f"memcpy(y, {plus(x, (o * d + Var('t')) * inner)}, {inner * size});",
    ]))


def _pad_index(i: int, before: int, after: int, d: int, mode: str) -> int:
    """Source index of output ``i`` on one axis (-1: the fill value). Negative pads crop
    first; the other modes then mirror/extend/wrap the kept part, as the reference does."""
    lo, hi = max(-before, 0), d - max(-after, 0)
    kept = hi - lo
    s = i - max(before, 0)
    if 0 <= s < kept:
        return lo + s
    if mode == "constant" or kept <= 0:
        return -1
    if mode == "edge":
        return lo + min(max(s, 0), kept - 1)
    if mode == "wrap":
        return lo + s % kept
    period = 2 * (kept - 1)  # reflect, without repeating the edge
    if period == 0:
        return lo
    s = abs(s) % period
    return lo + (period - s if s >= kept else s)


@emits("Pad")
def pad(ctx: LayerCtx) -> str:
    if ctx.has("value"):
        raise ctx.fail("Pad with a run-time pad value has no C emitter")
    x, y = ctx.it(0).shape, ctx.ot(0).shape
    r, mode, pads = len(x), ctx.a["mode"], ctx.a["pads"]
    lines = []
    st = strides_of(x)
    tables = []
    for k in range(r):
        table = [_pad_index(i, pads[k], pads[k + r], x[k], mode) for i in range(y[k])]
        tables.append(table)
        if table != list(range(y[k])):  # an axis without padding reads its own index
            lines.append(c_table(f"src{k}", "int", table))
    ct = ctx.ctype(ctx.ot(0))
    value = ctx.a["value"]
    fill = float_lit(value, ctx.ot(0).dtype) if ctx.ot(0).dtype.is_float else str(int(value))
    xin, yout = ctx.i(0), ctx.o(0)

    def element(i: list[Expr]) -> str:
        src = [i[k] if t == list(range(y[k])) else
               Var(f"src{k}[{i[k]}]", min(t, default=0), max(t, default=0))
               for k, t in enumerate(tables)]
        inside = all_of(*(ge(e, 0) for e in src))
        read = f"{xin}[{offset(src, st)}]"
        value = read if inside is True else f"({cond_text(inside)}) ? {read} : ({ct}){fill}"
        return f"{yout}[{offset(i, strides_of(y))}] = {value};"

    return "\n".join(lines + [nested_loops(y, element)])


@emits("Resize")
def resize(ctx: LayerCtx) -> str:
    """Separable taps per axis, computed here with the reference's own index maths."""
    ct = ctx.require_float()
    a = ctx.a
    if a["coordinate_transformation_mode"] == "tf_crop_and_resize":
        raise ctx.fail("Resize tf_crop_and_resize has no C emitter")
    x, y = ctx.it(0).shape, ctx.ot(0).shape
    r = len(x)
    lines, xst = [], strides_of(x)
    tap_loops: list[tuple[int, int]] = []
    for k in range(r):
        if y[k] == x[k] and math.isclose(a["scales"][k], 1.0):
            continue
        src = source_coords(a["coordinate_transformation_mode"], y[k], x[k], a["scales"][k], (0, 1))
        idx, w = axis_taps(src, x[k], a["scales"][k], a)
        ntap = idx.shape[1]
        lines.append(c_table(f"ix{k}", "int", [int(v) for v in idx.reshape(-1)]))
        lines.append(c_table(f"wt{k}", ct, [float_lit(v, ctx.ot(0).dtype)
                                            for v in w.reshape(-1)]))
        tap_loops.append((k, ntap))
    resized = {k for k, _ in tap_loops}

    def element(i: list[Expr]) -> str:
        taps = {k: loop(f"t{k}", n) for k, n in tap_loops}
        src = add(*(Var(f"ix{k}[{i[k] * n + taps[k][1]}]") * xst[k] for k, n in tap_loops),
                  *(i[k] * xst[k] for k in range(r) if k not in resized and x[k] > 1))
        weight = " * ".join(f"wt{k}[{i[k] * n + taps[k][1]}]" for k, n in tap_loops) or "1"
        acc = nested([taps[k][0] for k, _ in tap_loops],
                     [f"acc += {weight} * {ctx.i(0)}[{src}];"], indent="    ")
        return "\n".join([f"{ct} acc = 0;", *acc, f"{ctx.o(0)}[{offset(i, strides_of(y))}] = acc;"])

    return "\n".join(lines + [nested_loops(y, element)])
