"""Block and repeat data movement: Split, Tile, DepthToSpace, SpaceToDepth.

Each of these ops writes its output(s) in row-major order while reading the input through a
fixed affine index map, so all four reduce to one strided copy: the output, seen as a shape
of ``(size, source stride)`` pairs, is filled from ``src[base + Σ i_k * stride_k]``. The
pairs are worked out here in Python from the shapes; the copy then drops unit axes and merges
axes that are contiguous in the source too, so a Split along channels becomes one
``memcpy`` per outer index and a Tile of a row becomes row copies. No arithmetic touches the
elements, so the emitters serve every dtype (f32 and the int8/u8 of quantised graphs alike).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from targets.c.emitter import (
    LayerCtx,
    emits,
    nested_loops,
    offset,
    offset_expr,
    plus,
    strides_of,
)

#: an innermost contiguous run at least this long is copied with memcpy instead of a loop
MEMCPY_MIN = 8


def merge_axes(shape: Sequence[int], src: Sequence[int]) -> tuple[list[int], list[int]]:
    """Drop unit axes and fuse neighbours that are contiguous in the source as well (the
    destination is dense, so it always is)."""
    dims: list[int] = []
    strides: list[int] = []
    for n, s in zip(shape, src):
        if n == 1:
            continue
        if dims and strides[-1] == s * n:
            dims[-1] *= n
            strides[-1] = s
        else:
            dims.append(n)
            strides.append(s)
    return dims, strides


def strided_copy(dst: str, src: str, shape: Sequence[int], src_strides: Sequence[int],
                 itemsize: int, base: int = 0) -> str:
    """C that fills dense ``dst`` (row-major over ``shape``) from
    ``src[base + Σ i_k * src_strides[k]]``."""
    if int(np.prod(shape)) == 0:
        return "/* empty */"
    dims, strides = merge_axes(shape, src_strides)
    if dims and strides[-1] == 1 and dims[-1] >= MEMCPY_MIN:
        run = dims.pop()
        strides.pop()
        dst_st = [s * run for s in strides_of(dims)]
        return nested_loops(dims, lambda idx: (
            f"memcpy({plus(dst, offset_expr(idx, dst_st))}, "
            f"{plus(src, offset_expr(idx, strides, base))}, {run * itemsize});"))
    return nested_loops(dims, lambda idx: f"{dst}[{offset(idx, strides_of(dims))}] = "
                                          f"{src}[{offset(idx, strides, base)}];")


def _itemsize(ctx: LayerCtx) -> int:
    ctx.ctype(ctx.it(0))  # a clear error for dtypes the C targets lack
    return ctx.it(0).dtype.np.itemsize


@emits("Split")
def split(ctx: LayerCtx) -> str:
    """Output k is the slab ``[o_k, o_k + split[k])`` of the axis: base o_k * inner."""
    x, axis = ctx.it(0).shape, ctx.a["axis"]
    outer, d, inner = int(np.prod(x[:axis])), x[axis], int(np.prod(x[axis + 1:]))
    size = _itemsize(ctx)
    parts, at = [], 0
    for k, s in enumerate(ctx.a["split"]):
        code = strided_copy(ctx.o(k), ctx.i(0), (outer, s * inner), (d * inner, 1), size,
                            base=at * inner)
        parts.append(f"/* output {k}: [{at}, {at + s}) of axis {axis} */\n{code}")
        at += s
    return "\n".join(parts)


@emits("Tile")
def tile(ctx: LayerCtx) -> str:
    """y viewed as (r0, d0, r1, d1, ...) reads x at (j0, j1, ...): repeat axes stride 0."""
    x = ctx.it(0).shape
    shape: list[int] = []
    src: list[int] = []
    for n, r, s in zip(x, ctx.a["repeats"], strides_of(x)):
        shape += [r, n]
        src += [0, s]
    return strided_copy(ctx.o(0), ctx.i(0), shape, src, _itemsize(ctx))


@emits("DepthToSpace")
def depth_to_space(ctx: LayerCtx) -> str:
    """y viewed as (n, c, h, by, w, bx) reads x[n, channel(c, by, bx), h, w]."""
    n, c, h, w = ctx.it(0).shape
    b = ctx.a["blocksize"]
    cc, hw = c // (b * b), h * w
    if ctx.a["mode"] == "DCR":  # channel = (by*b + bx)*C' + c
        sc, sby, sbx = hw, b * cc * hw, cc * hw
    else:  # CRD: channel = c*b*b + by*b + bx
        sc, sby, sbx = b * b * hw, b * hw, hw
    return strided_copy(ctx.o(0), ctx.i(0), (n, cc, h, b, w, b),
                        (c * hw, sc, w, sby, 1, sbx), _itemsize(ctx))


@emits("SpaceToDepth")
def space_to_depth(ctx: LayerCtx) -> str:
    """The output channel splits as (by, bx, c) in DCR mode, (c, by, bx) in CRD; each reads
    x[n, c, h*b + by, w*b + bx]."""
    n, c, h, w = ctx.it(0).shape
    b = ctx.a["blocksize"]
    sn, sc, sby, sbx, sh, sw = c * h * w, h * w, w, 1, b * w, b
    if ctx.a["mode"] == "DCR":
        shape, src = (n, b, b, c, h // b, w // b), (sn, sby, sbx, sc, sh, sw)
    else:
        shape, src = (n, c, b, b, h // b, w // b), (sn, sc, sby, sbx, sh, sw)
    return strided_copy(ctx.o(0), ctx.i(0), shape, src, _itemsize(ctx))
