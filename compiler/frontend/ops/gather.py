"""Converters of ONNX ops that select or pad data: Slice, Gather, GatherElements, Pad.

Slice bounds and pads are read as constants (attributes in old opsets, inputs in new ones)
and canonicalised here, so the IR holds one explicit entry per axis. Gather's indices stay a
tensor operand: they may be data computed by the model.
"""

from __future__ import annotations

import numpy as np

from compiler.frontend.context import Ctx
from compiler.frontend.ops.shape import axes_arg, axis_arg, ints_arg
from compiler.frontend.registry import converter
from ir.graph import Value
from ir.ops.gather import PAD_MODES, canonical_slice
from ir.ops.registry import OpError
from ir.types import DType


@converter("Slice")
def slice_(
    ctx: Ctx, x: Value, starts_in: Value | None = None, ends_in: Value | None = None,
    axes_in: Value | None = None, steps_in: Value | None = None, *,
    starts: list[int] | None = None, ends: list[int] | None = None,
    axes: list[int] | None = None,
) -> Value:
    if ctx.opset >= 10:
        begin = ctx.ints_of(starts_in, "starts")
        end = ctx.ints_of(ends_in, "ends")
    else:
        if starts is None or ends is None:
            raise ctx.fail("Slice needs the attributes starts and ends")
        begin, end = list(starts), list(ends)
    which = ints_arg(ctx, axes, axes_in, "axes")
    steps = ints_arg(ctx, None, steps_in, "steps")
    try:
        s, e, st = canonical_slice(x.type.shape, begin, end, which, steps)
    except OpError as err:
        raise ctx.fail(str(err)) from None
    if s == [0] * len(s) and e == list(x.type.shape) and st == [1] * len(st):
        return x
    return ctx.op("Slice", [x], starts=s, ends=e, steps=st)


@converter("Gather")
def gather(ctx: Ctx, x: Value, indices: Value, *, axis: int = 0) -> Value:
    return ctx.op("Gather", [x, indices], axis=axis_arg(ctx, axis, x.type.rank))


@converter("GatherElements")
def gather_elements(ctx: Ctx, x: Value, indices: Value, *, axis: int = 0) -> Value:
    return ctx.op("GatherElements", [x, indices], axis=axis_arg(ctx, axis, x.type.rank))


@converter("Pad")
def pad(
    ctx: Ctx, x: Value, pads_in: Value | None = None, value_in: Value | None = None,
    axes_in: Value | None = None, *, mode: str = "constant", pads: list[int] | None = None,
    paddings: list[int] | None = None, value: float = 0.0,
) -> Value:
    if mode not in PAD_MODES:
        raise ctx.fail(f"mode {mode!r} is not one of {list(PAD_MODES)}")
    rank = x.type.rank
    given = ints_arg(ctx, pads if pads is not None else paddings, pads_in, "pads")
    if given is None:
        raise ctx.fail("Pad needs pads")
    axes = axes_arg(ctx, ctx.ints_of(axes_in, "axes"), rank) if axes_in else list(range(rank))
    if len(given) != 2 * len(axes):
        raise ctx.fail(f"pads {given} needs 2 entries for each of the axes {axes}")
    full = [0] * (2 * rank)
    for i, ax in enumerate(axes):
        full[ax], full[ax + rank] = given[i], given[i + len(axes)]
    if not any(full):
        return x
    extra: list[Value] = []
    if value_in is not None and mode == "constant":
        if value_in.is_const and _exact_as_float(value_in.data):
            value = float(np.asarray(value_in.data).reshape(-1)[0])
        else:
            extra = [value_in]  # the pad value is only known at run time
    return ctx.op("Pad", [x, *extra], pads=full, mode=mode, value=value)


def _exact_as_float(data: np.ndarray | None) -> bool:
    """Whether a one-element array survives the trip through a float attribute."""
    arr = np.asarray(data).reshape(-1)
    if arr.size != 1:
        return False
    if arr.dtype.kind in "fb" or DType.from_numpy(arr.dtype).is_float:
        return True
    return abs(int(arr[0])) < 2**53
