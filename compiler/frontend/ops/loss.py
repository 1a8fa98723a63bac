"""Converters of ONNX loss ops: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.

SoftmaxCrossEntropyLoss is lowered at import: LogSoftmax over the class axis 1, then
NegativeLogLikelihoodLoss on the log-probabilities (which are also its optional second
output), exactly ONNX's definition of it.
"""

from __future__ import annotations

from compiler.frontend.context import Ctx
from compiler.frontend.registry import converter
from ir.graph import Value
from ir.ops.loss import REDUCTIONS


def _loss(ctx: Ctx, x: Value, target: Value, weight: Value | None, reduction: str,
          ignore_index: int | None) -> Value:
    if reduction not in REDUCTIONS:
        raise ctx.fail(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
    ins = [x, target] + ([weight] if weight is not None else [])
    return ctx.op("NegativeLogLikelihoodLoss", ins, reduction=reduction,
                  ignore_index=[] if ignore_index is None else [ignore_index])


@converter("NegativeLogLikelihoodLoss")
def negative_log_likelihood_loss(
    ctx: Ctx, x: Value, target: Value, weight: Value | None = None, *,
    ignore_index: int | None = None, reduction: str = "mean",
) -> Value:
    return _loss(ctx, x, target, weight, reduction, ignore_index)


@converter("SoftmaxCrossEntropyLoss", ir_ops=("LogSoftmax", "NegativeLogLikelihoodLoss"),
           note="lowered at import to LogSoftmax (axis 1) + NegativeLogLikelihoodLoss")
def softmax_cross_entropy_loss(
    ctx: Ctx, scores: Value, labels: Value, weights: Value | None = None, *,
    ignore_index: int | None = None, reduction: str = "mean",
) -> list[Value]:
    if len(scores.type.shape) < 2:
        raise ctx.fail(f"scores must have rank >= 2 (N, C, ...), got {list(scores.type.shape)}")
    hints = ctx.out_hints
    want_log_prob = len(hints) > 1 and bool(hints[1])
    ctx.out_hints = [hints[1] if want_log_prob else f"{hints[0]}_log_prob"]
    try:
        log_prob = ctx.op("LogSoftmax", [scores], axis=1)
    finally:
        ctx.out_hints = hints[:1]
    try:
        loss = _loss(ctx, log_prob, labels, weights, reduction, ignore_index)
    finally:
        ctx.out_hints = hints
    return [loss, log_prob] if want_log_prob else [loss]
