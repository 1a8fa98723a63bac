"""Emitters of Where (an elementwise select with numpy broadcasting) and Cast (an elementwise
type conversion), which masked attention and mask arithmetic lower to."""

from __future__ import annotations

from ir.types import DType
from targets.c.emitter import LayerCtx, emits, nested_loops, offset, strides_of
from targets.c.ops_elementwise import broadcast_strides, collapse


@emits("Where")
def where(ctx: LayerCtx) -> str:
    to = ctx.ot(0)
    dims, (sc, sx, sy, so) = collapse(to.shape, [
        broadcast_strides(ctx.it(k).shape, to.shape) for k in range(3)] + [strides_of(to.shape)])
    ctx.ctype(to)  # a clear error for an element type C has no type for
    c, x, y, z = ctx.i(0), ctx.i(1), ctx.i(2), ctx.o(0)
    return nested_loops(dims, lambda i: (
        f"{z}[{offset(i, so)}] = {c}[{offset(i, sc)}] ? {x}[{offset(i, sx)}] : "
        f"{y}[{offset(i, sy)}];"), omp=ctx.omp())


@emits("Cast")
def cast(ctx: LayerCtx) -> str:
    """C's conversions, as the IR's Cast defines them: float -> int truncates toward zero,
    anything nonzero -> bool is 1."""
    src, dst = ctx.it(0), ctx.ot(0)
    ct = ctx.ctype(dst)
    x, y = ctx.i(0), ctx.o(0)
    expr = "x != 0" if dst.dtype is DType.bool else "x"
    return nested_loops([dst.size], lambda i: (
        f"const {ctx.ctype(src)} x = {x}[{i[0]}];\n{y}[{i[0]}] = ({ct})({expr});"),
        var="i", omp=ctx.omp())
