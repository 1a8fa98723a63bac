"""Converters of ONNX normalisation ops and of the softmax family."""

from __future__ import annotations

import math

import onnx

from compiler.frontend.context import Ctx
from compiler.frontend.registry import converter
from ir.graph import Value
from ir.types import DType


def _axis(ctx: Ctx, axis: int, rank: int) -> int:
    """``axis`` in [0, rank), or a ConversionError naming the bad value."""
    if not -rank <= axis < max(rank, 1):
        raise ctx.fail(f"axis {axis} is out of range for an input of rank {rank}")
    return axis % rank if rank else 0


def _extra_outputs(ctx: Ctx) -> list[str]:
    return [o for o in ctx.out_hints[1:] if o]


@converter("BatchNormalization", note="inference form only")
def batch_normalization(
    ctx: Ctx, x: Value, scale: Value, bias: Value, mean: Value, var: Value, *,
    epsilon: float = 1e-5, momentum: float = 0.9, training_mode: int = 0, spatial: int = 1,
    is_test: int = 0, consumed_inputs: list[int] | None = None,
) -> Value:
    # is_test (opset <= 6) and the outputs counted below are the only reliable training
    # signals before opset 14; momentum only matters for running statistics, not inference.
    if training_mode:
        raise ctx.fail(
            "BatchNormalization with training_mode=1 (batch statistics and updated running "
            "mean/var) is not supported: qnnc compiles inference graphs; export the model in "
            "eval mode"
        )
    if _extra_outputs(ctx):
        raise ctx.fail(
            f"BatchNormalization outputs {_extra_outputs(ctx)} (running or saved statistics) "
            "exist only in training mode, which qnnc does not support; export in eval mode"
        )
    if not spatial:
        raise ctx.fail("BatchNormalization with spatial=0 (per-activation statistics, "
                       "opsets 7-8) is not supported")
    return ctx.op("BatchNormalization", [x, scale, bias, mean, var], epsilon=epsilon)


@converter("InstanceNormalization")
def instance_normalization(
    ctx: Ctx, x: Value, scale: Value, bias: Value, *, epsilon: float = 1e-5,
    consumed_inputs: list[int] | None = None,
) -> Value:
    return ctx.op("InstanceNormalization", [x, scale, bias], epsilon=epsilon)


@converter("LayerNormalization")
def layer_normalization(
    ctx: Ctx, x: Value, scale: Value, bias: Value | None = None, *, axis: int = -1,
    epsilon: float = 1e-5, stash_type: int = 1,
) -> list[Value]:
    try:
        stash = DType.from_numpy(onnx.helper.tensor_dtype_to_np_dtype(stash_type))
    except (KeyError, TypeError, ValueError):
        raise ctx.fail(f"stash_type {stash_type} is not a float type qnnc supports") from None
    # The statistics outputs are emitted only when the model uses them.
    stats = bool(_extra_outputs(ctx))
    ins = [x, scale] + ([bias] if bias is not None else [])
    return ctx.ops(
        "LayerNormalization", ins, axis=_axis(ctx, axis, len(x.type.shape)),
        epsilon=epsilon, stash=stash.value, stats=stats,
    )


def _stash(ctx: Ctx, stash_type: int) -> str:
    try:
        stash = DType.from_numpy(onnx.helper.tensor_dtype_to_np_dtype(stash_type))
    except (KeyError, TypeError, ValueError):
        raise ctx.fail(f"stash_type {stash_type} is not a float type qnnc supports") from None
    if not stash.is_float:
        raise ctx.fail(f"stash_type {stash_type} must be a float type")
    return stash.value


@converter("GroupNormalization", note="opset 18 (scale/bias per group) and 21 (per channel)")
def group_normalization(
    ctx: Ctx, x: Value, scale: Value, bias: Value, *, num_groups: int, epsilon: float = 1e-5,
    stash_type: int = 1,
) -> Value:
    # The IR op reads per-group or per-channel parameters from their length; a model whose
    # opset disagrees with the length it gives is malformed (and ambiguous only when the
    # two lengths are equal, where both readings agree).
    c = x.type.shape[1] if len(x.type.shape) > 1 else 0
    want = (c,) if ctx.opset >= 21 else (num_groups,)
    for name, v in (("scale", scale), ("bias", bias)):
        if v.type.shape != want:
            raise ctx.fail(f"GroupNormalization-{21 if ctx.opset >= 21 else 18}: {name} must "
                           f"have shape {list(want)}, got {list(v.type.shape)}")
    return ctx.op("GroupNormalization", [x, scale, bias], num_groups=num_groups,
                  epsilon=epsilon, stash=_stash(ctx, stash_type))


@converter("RMSNormalization")
def rms_normalization(
    ctx: Ctx, x: Value, scale: Value, *, axis: int = -1, epsilon: float = 1e-5,
    stash_type: int = 1,
) -> Value:
    return ctx.op("RMSNormalization", [x, scale], axis=_axis(ctx, axis, len(x.type.shape)),
                  epsilon=epsilon, stash=_stash(ctx, stash_type))


@converter("MeanVarianceNormalization")
def mean_variance_normalization(
    ctx: Ctx, x: Value, *, axes: list[int] | None = None
) -> Value:
    rank = len(x.type.shape)
    canon = sorted({_axis(ctx, a, rank) for a in (axes if axes is not None else [0, 2, 3])})
    return ctx.op("MeanVarianceNormalization", [x], axes=canon)


@converter("LpNormalization")
def lp_normalization(ctx: Ctx, x: Value, *, axis: int = -1, p: int = 2) -> Value:
    if p not in (1, 2):
        raise ctx.fail(f"LpNormalization supports p = 1 or 2, got p = {p}")
    return ctx.op("LpNormalization", [x], axis=_axis(ctx, axis, len(x.type.shape)), p=p)


def _along_axis(ctx: Ctx, op: str, x: Value, axis: int | None) -> Value:
    """Softmax, LogSoftmax and Hardmax share this: from opset 13 ``axis`` (default -1) is the
    one normalised axis. Before, the input was coerced to 2-D [prod(d[:axis]), prod(d[axis:])]
    (default axis 1) and normalised over the whole second dimension."""
    shape = x.type.shape
    rank = len(shape)
    if ctx.opset >= 13:
        return ctx.op(op, [x], axis=_axis(ctx, -1 if axis is None else axis, rank))
    a = _axis(ctx, 1 if axis is None else axis, rank)
    big = [i for i in range(a, rank) if shape[i] != 1]
    if len(big) <= 1:
        # At most one axis of the flattened group is longer than 1: normalising over the
        # group is normalising over that axis, so no reshape is needed.
        return ctx.op(op, [x], axis=big[0] if big else a)
    # The 2-D intermediates get their own names so that the node's output keeps its own.
    hints = ctx.out_hints
    ctx.out_hints = [f"{h}_2d" for h in hints if h]
    try:
        flat = ctx.op("Reshape", [x], shape=[math.prod(shape[:a]), math.prod(shape[a:])])
        y = ctx.op(op, [flat], axis=1)
    finally:
        ctx.out_hints = hints
    return ctx.op("Reshape", [y], shape=list(shape))


@converter("Softmax", ir_ops=("Softmax", "Reshape"))
def softmax(ctx: Ctx, x: Value, *, axis: int | None = None) -> Value:
    return _along_axis(ctx, "Softmax", x, axis)


@converter("LogSoftmax", ir_ops=("LogSoftmax", "Reshape"))
def log_softmax(ctx: Ctx, x: Value, *, axis: int | None = None) -> Value:
    return _along_axis(ctx, "LogSoftmax", x, axis)


@converter("Hardmax", ir_ops=("Hardmax", "Reshape"))
def hardmax(ctx: Ctx, x: Value, *, axis: int | None = None) -> Value:
    return _along_axis(ctx, "Hardmax", x, axis)
