"""Converters of ONNX ops that index, scatter, or make data-dependent shapes: GatherND,
ScatterND, ScatterElements (and its old name Scatter), TensorScatter, OneHot,
ReverseSequence, CenterCropPad, Col2Im, NonZero, Compress, Unique, NonMaxSuppression.

Shape-deciding inputs (OneHot's depth, Col2Im's shapes, NonMaxSuppression's limits) must be
compile-time constants and become attributes. A data-dependent op whose inputs are all
constant folds to its exact result; otherwise its IR op has a static bound and a run-time
count (ir/ops/dynamic.py), and Compress with a constant condition is a Gather.
"""

from __future__ import annotations

import numpy as np

from compiler.frontend.context import Ctx
from compiler.frontend.ops.shape import axes_arg, axis_arg, reshape_to
from compiler.frontend.registry import converter
from ir.graph import Value
from ir.ops.dynamic import trim
from ir.ops.registry import OpError, get_op


@converter("GatherND")
def gather_nd(ctx: Ctx, data: Value, indices: Value, *, batch_dims: int = 0) -> Value:
    return ctx.op("GatherND", [data, indices], batch_dims=batch_dims)


@converter("ScatterND")
def scatter_nd(ctx: Ctx, data: Value, indices: Value, updates: Value, *,
               reduction: str = "none") -> Value:
    return ctx.op("ScatterND", [data, indices, updates], reduction=reduction)


@converter("ScatterElements", note="Scatter (opsets 9-10) is the same op")
def scatter_elements(ctx: Ctx, data: Value, indices: Value, updates: Value, *, axis: int = 0,
                     reduction: str = "none") -> Value:
    return ctx.op("ScatterElements", [data, indices, updates],
                  axis=axis_arg(ctx, axis, data.type.rank), reduction=reduction)


@converter("Scatter", ir_ops=("ScatterElements",),
           note="deprecated alias of ScatterElements (no reductions)")
def scatter(ctx: Ctx, data: Value, indices: Value, updates: Value, *, axis: int = 0) -> Value:
    return scatter_elements(ctx, data, indices, updates, axis=axis)


@converter("TensorScatter")
def tensor_scatter(ctx: Ctx, past_cache: Value, update: Value,
                   write_indices: Value | None = None, *, mode: str = "linear",
                   axis: int = -2) -> Value:
    return ctx.op("TensorScatter", [past_cache, update, write_indices], mode=mode,
                  axis=axis_arg(ctx, axis, past_cache.type.rank))


@converter("OneHot", note="depth must be a compile-time constant")
def one_hot(ctx: Ctx, indices: Value, depth: Value, values: Value, *, axis: int = -1) -> Value:
    d = np.asarray(ctx.value_of(depth, "depth")).reshape(-1)
    if d.size != 1:
        raise ctx.fail(f"depth must hold one value, got {d.size}")
    return ctx.op("OneHot", [indices, values], depth=int(d[0]),
                  axis=axis_arg(ctx, axis, indices.type.rank + 1))


@converter("ReverseSequence")
def reverse_sequence(ctx: Ctx, x: Value, sequence_lens: Value, *, batch_axis: int = 1,
                     time_axis: int = 0) -> Value:
    return ctx.op("ReverseSequence", [x, sequence_lens], batch_axis=batch_axis,
                  time_axis=time_axis)


@converter("CenterCropPad", ir_ops=("Pad",),
           note="a Pad whose negative pads crop; the target shape must be constant")
def center_crop_pad(ctx: Ctx, x: Value, shape: Value, *, axes: list[int] | None = None
                    ) -> Value:
    rank = x.type.rank
    want = ctx.ints_of(shape, "shape")
    which = axes_arg(ctx, list(axes), rank) if axes is not None else list(range(rank))
    if len(want) != len(which):
        raise ctx.fail(f"shape {want} needs one size for each of the axes {which}")
    pads = [0] * (2 * rank)
    for ax, n in zip(which, want):
        d = x.type.shape[ax]
        before = (n - d) // 2 if n >= d else -((d - n) // 2)  # crops start rounded down
        pads[ax], pads[ax + rank] = before, n - d - before
    if not any(pads):
        return x
    return ctx.op("Pad", [x], pads=pads, mode="constant", value=0.0)


@converter("Col2Im", note="image_shape and block_shape must be compile-time constants")
def col2im(ctx: Ctx, x: Value, image_shape: Value, block_shape: Value, *,
           dilations: list[int] | None = None, pads: list[int] | None = None,
           strides: list[int] | None = None) -> Value:
    img = ctx.ints_of(image_shape, "image_shape")
    blk = ctx.ints_of(block_shape, "block_shape")
    r = len(img)
    return ctx.op("Col2Im", [x], image_shape=img, block_shape=blk,
                  dilations=dilations or [1] * r, pads=pads or [0] * (2 * r),
                  strides=strides or [1] * r)


# -- data-dependent shapes --------------------------------------------------------------------


def _counted(ctx: Ctx, op: str, inputs: list[Value | None], **attrs: object) -> list[Value]:
    """The outputs of a data-dependent op (without its count); constants fold to the exact
    result, of the true size."""
    if not all(v is None or v.is_const for v in inputs):
        return ctx.ops(op, inputs, **attrs)[:-1]
    opdef = get_op(op)
    try:
        full = opdef.normalize_attrs(attrs)
        types = opdef.infer([None if v is None else v.type for v in inputs], full)
    except OpError as e:
        raise ctx.fail(str(e)) from None
    results = opdef.compute([None if v is None else v.data for v in inputs], full)
    assert opdef.counted is not None
    count = int(results[-1])
    out = []
    for r, t, axis in zip(results, types, opdef.counted(full)):
        r = r if axis is None else trim(r, axis, count)
        out.append(ctx.const(np.ascontiguousarray(r, dtype=t.dtype.np)))
    return out


@converter("NonZero", note="a static bound [rank, numel] and a run-time count")
def non_zero(ctx: Ctx, x: Value) -> Value:
    return _counted(ctx, "NonZero", [x])[0]


@converter("Compress", ir_ops=("Compress", "Gather"),
           note="a constant condition is a Gather; else a static bound and a run-time count")
def compress(ctx: Ctx, x: Value, condition: Value, *, axis: int | None = None) -> Value:
    flat = axis is None
    ax = 0 if flat else axis_arg(ctx, axis, x.type.rank)
    if condition.is_const and not x.is_const:
        data = reshape_to(ctx, x, [x.type.size]) if flat else x
        dim = data.type.shape[ax]
        cond = np.asarray(condition.data).reshape(-1)[:dim].astype(bool)
        picks = ctx.const(np.flatnonzero(cond).astype(np.int64), "compress_indices")
        return ctx.op("Gather", [data, picks], axis=ax)
    return _counted(ctx, "Compress", [x, condition], axis=ax, flatten=flat)[0]


@converter("Unique", note="static bounds (the axis length) and a run-time count")
def unique(ctx: Ctx, x: Value, *, axis: int | None = None, sorted: int = 1) -> list[Value]:
    flat = axis is None
    ax = 0 if flat else axis_arg(ctx, axis, x.type.rank)
    return _counted(ctx, "Unique", [x], axis=ax, flatten=flat, sorted=bool(sorted))


@converter("NonMaxSuppression",
           note="the limits and thresholds must be compile-time constants; a static bound "
                "and a run-time count")
def non_max_suppression(ctx: Ctx, boxes: Value, scores: Value,
                        max_output_boxes_per_class: Value | None = None,
                        iou_threshold: Value | None = None,
                        score_threshold: Value | None = None, *,
                        center_point_box: int = 0) -> Value:
    def scalar(v: Value | None, what: str, default: float) -> float:
        if v is None:
            return default
        arr = np.asarray(ctx.value_of(v, what)).reshape(-1)
        return default if arr.size == 0 else float(arr[0])

    keep = int(scalar(max_output_boxes_per_class, "max_output_boxes_per_class", 0))
    return _counted(ctx, "NonMaxSuppression", [boxes, scores],
                    max_output_boxes_per_class=keep,
                    iou_threshold=scalar(iou_threshold, "iou_threshold", 0.0),
                    score_threshold=scalar(score_threshold, "score_threshold", float("-inf")),
                    center_point_box=center_point_box)[0]
