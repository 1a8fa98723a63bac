"""Loss ops imported from one-node ONNX models, run on the interpreter, against
onnx.reference (f32: rtol/atol 1e-5)."""

from __future__ import annotations

import numpy as np
import pytest

from ir.ops.registry import OpError, get_op
from ir.types import DType, TensorType
from tests.ops.test_norm import close, ops_of, rand, run_both

RNG = np.random.default_rng(7)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss_ignore_index(reduction: str, weighted: bool) -> None:
    target = RNG.integers(0, 4, (2, 3, 5)).astype(np.int64)
    target[0, 0, :2] = 1  # the ignored class occurs
    feeds = {"x": rand(2, 4, 3, 5), "t": target}
    if weighted:
        feeds["w"] = RNG.random(4).astype(np.float32)
    graph, got, want = run_both("NegativeLogLikelihoodLoss", feeds, ["y"], 13,
                                reduction=reduction, ignore_index=1)
    assert ops_of(graph) == ["NegativeLogLikelihoodLoss"]
    close(got[0], want[0])


def test_sce_lowers_to_log_softmax_and_nll_with_log_prob() -> None:
    feeds = {"x": rand(3, 5, 2), "t": RNG.integers(0, 5, (3, 2)).astype(np.int32),
             "w": RNG.random(5).astype(np.float32)}
    graph, got, want = run_both("SoftmaxCrossEntropyLoss", feeds, ["loss", "log_prob"], 13,
                                reduction="mean", ignore_index=0)
    assert ops_of(graph) == ["LogSoftmax", "NegativeLogLikelihoodLoss"]
    assert [v.name for v in graph.outputs] == ["loss", "log_prob"]
    for g, w in zip(got, want):
        close(g, w)


def test_nll_loss_rejects_mismatched_target() -> None:
    with pytest.raises(OpError, match="target shape"):
        get_op("NegativeLogLikelihoodLoss").infer(
            [TensorType((2, 4, 3), DType.f32), TensorType((2, 4), DType.i64)],
            {"reduction": "mean", "ignore_index": []})
