"""Loss ops: NegativeLogLikelihoodLoss (SoftmaxCrossEntropyLoss is LogSoftmax followed by it,
lowered so in the frontend).

Losses are cheap gathers and sums, but they appear in exported inference graphs (evaluation
heads, the ONNX node tests), so they run like any other float op.
"""

from __future__ import annotations

import numpy as np

from ir.ops import cost
from ir.ops.common import require_inputs
from ir.ops.registry import Attr, Attrs, register, require
from ir.types import DType, TensorType

REDUCTIONS = ("none", "sum", "mean")


@register
class NegativeLogLikelihoodLoss:
    """l[n, d...] = -x[n, t[n, d...], d...] * w[t[n, d...]], with w = 1 when no weight is
    given and l = 0 (weight 0) where t equals ``ignore_index``.

    reduction none: l (shape of t); sum: sum(l); mean: sum(l) / sum of the weights of the
    targets not ignored (NaN when every target is ignored, as 0 / 0). A target outside
    [0, C) that is not ignored is undefined in ONNX; here it is clamped into range.
    Inputs: x (N, C, d1, ...), t (N, d1, ...) int32/int64, weight (C,).
    """

    operands = ("x", "target", "weight?")
    flops = cost.per_element(2)
    attrs = {
        "reduction": Attr("str", "mean", "none, sum or mean"),
        "ignore_index": Attr("ints", [], "the ignored target: none ([]) or one value"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        op = "NegativeLogLikelihoodLoss"
        x, t = require_inputs(op, ins, 2)
        require(x.dtype.is_float, f"{op}: x must be a float tensor, got {x.dtype.value}")
        require(len(x.shape) >= 2, f"{op}: x must have rank >= 2 (N, C, ...), got {x.shape}")
        require(t.dtype in (DType.i32, DType.i64),
                f"{op}: target must be int32 or int64, got {t.dtype.value}")
        require(t.shape == x.shape[:1] + x.shape[2:],
                f"{op}: target shape {list(t.shape)} must be x's without axis 1")
        w = ins[2] if len(ins) > 2 else None
        if w is not None:
            require(w.shape == (x.shape[1],) and w.dtype is x.dtype,
                    f"{op}: weight must be {x.dtype.value}[{x.shape[1]}], got {w}")
        require(a["reduction"] in REDUCTIONS,
                f"{op}: reduction must be one of {REDUCTIONS}, got {a['reduction']!r}")
        require(len(a["ignore_index"]) <= 1, f"{op}: ignore_index is one value or none")
        shape = t.shape if a["reduction"] == "none" else ()
        return [TensorType(shape, x.dtype)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, t = ins[0], ins[1]
        weight = ins[2] if len(ins) > 2 else None
        assert x is not None and t is not None
        n, c = x.shape[:2]
        x3 = x.reshape(n, c, -1)
        t2 = t.reshape(n, -1).astype(np.int64)
        ignored = (t2 == a["ignore_index"][0]) if a["ignore_index"] else np.zeros(t2.shape, bool)
        cls = np.clip(np.where(ignored, 0, t2), 0, c - 1)
        picked = np.take_along_axis(x3, cls[:, None, :], axis=1)[:, 0, :]
        w = np.ones(cls.shape, x.dtype) if weight is None else weight[cls]
        w = np.where(ignored, 0, w).astype(x.dtype)
        loss = -picked * w
        if a["reduction"] == "none":
            return [loss.reshape(t.shape).astype(x.dtype)]
        acc = np.result_type(np.float32, x.dtype)
        total = loss.sum(dtype=acc)
        if a["reduction"] == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                total = total / w.sum(dtype=acc)
        return [np.asarray(total, dtype=x.dtype)]
