"""Converters of ONNX ops that reshape or re-view data.

Flatten, Squeeze and Unsqueeze are reshapes with a rule for the new shape, so they become
IR Reshape with the final shape; every shape operand (Reshape's shape, Expand's shape, Tile's
repeats, Squeeze's axes from opset 13, ...) must be a compile-time constant.
"""

from __future__ import annotations

import numpy as np

from compiler.frontend.context import Ctx, Resolved
from compiler.frontend.registry import converter
from ir.graph import Value
from ir.ops.common import broadcast_shapes
from ir.ops.registry import OpError


def axis_arg(ctx: Ctx, axis: int, rank: int, what: str = "axis") -> int:
    """``axis`` in [0, rank), counting negative values from the end."""
    if not -rank <= axis < rank:
        raise ctx.fail(f"{what} {axis} is out of range for rank {rank}")
    return axis % rank


def axes_arg(ctx: Ctx, axes: list[int], rank: int) -> list[int]:
    out = [axis_arg(ctx, a, rank) for a in axes]
    if len(set(out)) != len(out):
        raise ctx.fail(f"axes {axes} name an axis twice")
    return out


def ints_arg(ctx: Ctx, attr: list[int] | None, inp: Value | None, what: str) -> list[int] | None:
    """An ints operand given as an attribute (older opsets) or a constant input (newer)."""
    if inp is not None:
        return ctx.ints_of(inp, what)
    return None if attr is None else [int(v) for v in attr]


def reshape_to(ctx: Ctx, x: Value, shape: list[int]) -> Value:
    """IR Reshape, skipped when the shape is unchanged."""
    if tuple(shape) == x.type.shape:
        return x
    return ctx.op("Reshape", [x], shape=shape)


@converter("Identity", ir_ops=(), note="aliases its input (a tensor, sequence or optional)",
           sequences=True)
def identity(ctx: Ctx, x: Resolved) -> Resolved:
    return x


@converter("Reshape")
def reshape(
    ctx: Ctx, x: Value, shape_in: Value | None = None, *, allowzero: int = 0,
    shape: list[int] | None = None,
) -> Value:
    want = ints_arg(ctx, shape, shape_in, "shape")
    if want is None:
        raise ctx.fail("Reshape needs a shape")
    dims = list(x.type.shape)
    out = []
    for k, d in enumerate(want):
        if d == 0 and not allowzero:
            if k >= len(dims):
                raise ctx.fail(f"shape {want}: 0 at position {k} copies a dim {x.type} lacks")
            d = dims[k]
        elif d < -1:
            raise ctx.fail(f"shape {want} has a negative dim other than -1")
        out.append(d)
    if out.count(-1) > 1:
        raise ctx.fail(f"shape {want} has more than one -1")
    if -1 in out:
        known = int(np.prod([d for d in out if d != -1], dtype=np.int64))
        if known == 0 or x.type.size % known:
            raise ctx.fail(f"cannot infer the -1 of shape {want} for {x.type}")
        out[out.index(-1)] = x.type.size // known
    return reshape_to(ctx, x, out)


@converter("Flatten", ir_ops=("Reshape",))
def flatten(ctx: Ctx, x: Value, *, axis: int = 1) -> Value:
    rank = x.type.rank
    if not -rank <= axis <= rank:
        raise ctx.fail(f"axis {axis} is out of range [-{rank}, {rank}]")
    axis = axis + rank if axis < 0 else axis
    shape = x.type.shape
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    return ctx.op("Reshape", [x], shape=[outer, int(np.prod(shape[axis:], dtype=np.int64))])


@converter("Transpose")
def transpose(ctx: Ctx, x: Value, *, perm: list[int] | None = None) -> Value:
    rank = x.type.rank
    order = list(range(rank))[::-1] if perm is None else axes_arg(ctx, perm, rank)
    if order == list(range(rank)):
        return x
    return ctx.op("Transpose", [x], perm=order)


@converter("Squeeze", ir_ops=("Reshape",))
def squeeze(ctx: Ctx, x: Value, axes_in: Value | None = None, *,
            axes: list[int] | None = None) -> Value:
    shape = x.type.shape
    given = ints_arg(ctx, axes, axes_in, "axes")
    if given is None:
        drop = [k for k, d in enumerate(shape) if d == 1]
    else:
        drop = axes_arg(ctx, given, len(shape))
        bad = [k for k in drop if shape[k] != 1]
        if bad:
            raise ctx.fail(f"cannot squeeze axes {bad} of {x.type}: their size is not 1")
    return reshape_to(ctx, x, [d for k, d in enumerate(shape) if k not in drop])


@converter("Unsqueeze", ir_ops=("Reshape",))
def unsqueeze(ctx: Ctx, x: Value, axes_in: Value | None = None, *,
              axes: list[int] | None = None) -> Value:
    given = ints_arg(ctx, axes, axes_in, "axes")
    if given is None:
        raise ctx.fail("Unsqueeze needs axes")
    rank = x.type.rank + len(given)
    new = set(axes_arg(ctx, given, rank))
    dims = iter(x.type.shape)
    return reshape_to(ctx, x, [1 if k in new else next(dims) for k in range(rank)])


@converter("Expand")
def expand(ctx: Ctx, x: Value, shape: Value) -> Value:
    want = tuple(ctx.ints_of(shape, "shape"))
    if any(d < 0 for d in want):
        raise ctx.fail(f"shape {list(want)} has a negative dim")
    try:
        out = broadcast_shapes("Expand", x.type.shape, want)
    except OpError as e:
        raise ctx.fail(str(e)) from None
    if out == x.type.shape:
        return x
    return ctx.op("Expand", [x], shape=list(out))


@converter("Tile")
def tile(ctx: Ctx, x: Value, repeats: Value) -> Value:
    return ctx.op("Tile", [x], repeats=ctx.ints_of(repeats, "repeats"))


@converter("Concat")
def concat(ctx: Ctx, *xs: Value | None, axis: int | None = None) -> Value:
    if axis is None:
        if ctx.opset >= 4:
            raise ctx.fail("Concat needs the attribute axis")
        axis = 1
    inputs = [v for v in xs if v is not None]
    if not inputs:
        raise ctx.fail("Concat needs at least one input")
    return ctx.op("Concat", inputs, axis=axis_arg(ctx, axis, inputs[0].type.rank))


@converter("Split")
def split(
    ctx: Ctx, x: Value, split_in: Value | None = None, *, axis: int = 0,
    split: list[int] | None = None, num_outputs: int | None = None,
) -> list[Value]:
    ax = axis_arg(ctx, axis, x.type.rank)
    dim = x.type.shape[ax]
    sizes = ints_arg(ctx, split, split_in, "split")
    if sizes is None:
        n = num_outputs if num_outputs is not None else len(ctx.out_hints)
        if n <= 0:
            raise ctx.fail(f"cannot split into {n} outputs")
        if num_outputs is None and dim % n:
            raise ctx.fail(f"dim {dim} of {x.type} does not split evenly into {n} outputs")
        chunk = -(-dim // n)  # ONNX: equal chunks of ceil(dim / n), the last one smaller
        sizes = [min(chunk, max(dim - k * chunk, 0)) for k in range(n)]
    if sum(sizes) != dim or any(s < 0 for s in sizes):
        raise ctx.fail(f"split sizes {sizes} do not add up to dim {dim} of {x.type}")
    return ctx.ops("Split", [x], axis=ax, split=sizes)
