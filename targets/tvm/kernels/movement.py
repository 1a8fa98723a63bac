"""Ops that only move data, on any element type: Reshape (and Identity, Retype, which keep
the elements in order), Transpose, Concat, Slice, Tile and DepthToSpace."""

from __future__ import annotations

from typing import Any

from targets.tvm.api import te, tir
from targets.tvm.context import Kernel, Tensor
from targets.tvm.kernels.common import flat_position, unflatten
from targets.tvm.registry import kernel


@kernel("Reshape", "Identity", "Retype")
def reshape(k: Kernel) -> list[Tensor]:
    """y[i] = x[unflatten(flat(i))]: the elements in row-major order, in y's shape."""
    (y,) = k.out_types
    xt = k.type_of("x")
    x = k.operand("x")
    if tuple(xt.shape) == tuple(y.shape):
        return [te.compute(y.shape, lambda *i: x[i], name="y")]
    return [te.compute(y.shape, lambda *i: x[tuple(unflatten(xt.shape, flat_position(
        y.shape, i)))], name="y")]


@kernel("Transpose")
def transpose(k: Kernel) -> list[Tensor]:
    """y[i_0, ..., i_r-1] = x[j] with j[perm[a]] = i_a."""
    (y,) = k.out_types
    x = k.operand("x")
    perm = list(k.attrs["perm"])

    def body(*i: Any) -> Any:
        j: list[Any] = [None] * len(perm)
        for a, p in enumerate(perm):
            j[p] = i[a]
        return x[tuple(j)]

    return [te.compute(y.shape, body, name="y")]


@kernel("Concat")
def concat(k: Kernel) -> list[Tensor]:
    """y = the values joined along ``axis``: y[..., o + i, ...] = values[v][..., i, ...]
    where o is the total length of the values before v."""
    (y,) = k.out_types
    axis = k.attrs["axis"]
    values = k.operands("values")
    types = [v.type for v in k.node.operand("values")]

    def body(*i: Any) -> Any:
        result: Any = None
        offset = 0
        for v, t in zip(values, types):
            length = t.shape[axis]
            if length == 0:
                continue
            local = tir.max(tir.min(i[axis] - offset, length - 1), 0)
            read = v[(*i[:axis], local, *i[axis + 1:])]
            result = read if result is None else tir.if_then_else(i[axis] >= offset, read,
                                                                  result)
            offset += length
        return result

    return [te.compute(y.shape, body, name="y")]


@kernel("Slice")
def slice_op(k: Kernel) -> list[Tensor]:
    """y[i...] = x[starts + i * steps] per axis (canonical bounds, negative steps too)."""
    (y,) = k.out_types
    x = k.operand("x")
    starts, steps = k.attrs["starts"], k.attrs["steps"]
    return [te.compute(y.shape, lambda *i: x[tuple(
        s + st * ii for s, st, ii in zip(starts, steps, i))], name="y")]


@kernel("Tile")
def tile(k: Kernel) -> list[Tensor]:
    """y[i...] = x[i mod d...]: x repeated ``repeats[a]`` times along each axis a."""
    (y,) = k.out_types
    xt = k.type_of("x")
    x = k.operand("x")
    return [te.compute(y.shape, lambda *i: x[tuple(
        tir.floormod(o, d) for o, d in zip(i, xt.shape))], name="y")]


@kernel("DepthToSpace")
def depth_to_space(k: Kernel) -> list[Tensor]:
    """y[n, c, h, w] = x[n, channel, h // b, w // b] with (by, bx) = (h % b, w % b) and
    channel (by*b + bx)*C + c (DCR) or c*b*b + by*b + bx (CRD), C = y's channels."""
    (y,) = k.out_types
    x = k.operand("x")
    b, cy = k.attrs["blocksize"], y.shape[1]
    dcr = k.attrs["mode"] == "DCR"

    def body(n: Any, c: Any, h: Any, w: Any) -> Any:
        by, bx = tir.floormod(h, b), tir.floormod(w, b)
        ch = (by * b + bx) * cy + c if dcr else c * (b * b) + by * b + bx
        return x[n, ch, tir.floordiv(h, b), tir.floordiv(w, b)]

    return [te.compute(y.shape, body, name="y")]
