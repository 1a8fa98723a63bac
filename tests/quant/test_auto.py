"""Automatic mixed precision on the digits CNN: budgets that need no, some, or every layer
in f32, judged by output SQNR or by top-1 accuracy on the held-out images."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from compiler.errors import QnncError
from compiler.frontend import load
from compiler.passes import DEFAULT_PIPELINE, run_pipeline
from compiler.quant.accuracy import compare
from compiler.quant.auto import AutoStep, auto_mixed_precision, quant_layers
from compiler.quant.calibrate import calibrate
from compiler.quant.quantize import QuantConfig, quantize_graph
from ir import Graph

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "digits_cnn.onnx"


@pytest.fixture(scope="module")
def digits() -> tuple[Graph, dict, dict, np.ndarray]:
    from compiler.datasets import digits_split

    g = run_pipeline(load(FIXTURE), DEFAULT_PIPELINE)
    xtr, _, xte, yte = digits_split()
    ranges = calibrate(g, {"input": xtr[:200, None]}, "minmax")
    return g, ranges, {"input": xte[:, None]}, yte


def _top1(labels: np.ndarray):  # noqa: ANN202 - a metric closure
    def metric(outputs: list[dict[str, np.ndarray]]) -> float:
        return float(np.mean([o["logits"].argmax() == y for o, y in zip(outputs, labels)]))

    return metric


def test_layers_are_the_integer_ops_with_their_fused_activations(digits: tuple) -> None:
    g, ranges, _, _ = digits
    layers = quant_layers(g, ranges, QuantConfig())
    assert [(x.name, x.op) for x in layers] == [
        ("conv1", "QConv"), ("conv2", "QConv"), ("conv3", "QConv"), ("fc", "QLinear")]
    assert layers[0].members == {"conv1", "conv1.relu"}
    assert layers[3].members == {"fc"}


def test_loose_sqnr_budget_keeps_everything_int8(digits: tuple) -> None:
    g, ranges, held, _ = digits
    steps: list[AutoStep] = []
    res = auto_mixed_precision(g, ranges, held, min_sqnr_db=30.0, progress=steps.append)
    assert res.met and res.skip_layers == frozenset() and res.layers_f32 == ()
    assert res.achieved.sqnr_db >= 30.0 and res.achieved == res.baseline
    assert [s.phase for s in steps] == ["baseline"] and res.evaluations == 1


def test_tight_sqnr_budget_keeps_the_most_sensitive_layer_f32(digits: tuple) -> None:
    g, ranges, held, _ = digits
    steps: list[AutoStep] = []
    res = auto_mixed_precision(g, ranges, held, min_sqnr_db=45.0, progress=steps.append)
    assert res.baseline.sqnr_db < 45.0  # the budget does force a change
    assert res.met and res.layers_f32 == ("fc",) and res.skip_layers == {"fc"}
    assert res.achieved.sqnr_db >= 45.0
    assert res.ranking[0].layer == "fc"
    assert [s.sqnr_db for s in res.ranking] == sorted(s.sqnr_db for s in res.ranking)
    assert [s.phase for s in steps] == ["baseline"] + ["rank"] * 4 + ["search"]
    # the figure it reports is what the chosen configuration really gives
    q = quantize_graph(g, ranges, res.config())
    assert q.op_counts().get("Gemm") == 1 and q.op_counts().get("QConv") == 3
    assert compare(g, q, held).output_sqnr_db == pytest.approx(res.achieved.sqnr_db)
    assert "fc" in res.format()


def test_accuracy_budget(digits: tuple) -> None:
    g, ranges, held, labels = digits
    metric = _top1(labels)
    loose = auto_mixed_precision(g, ranges, held, max_drop=0.01, metric=metric)
    assert loose.met and loose.skip_layers == frozenset()
    assert loose.achieved.drop is not None and loose.achieved.drop <= 0.01
    assert loose.float_metric is not None and loose.float_metric > 0.95
    # the all-int8 model misclassifies at least one image the float model gets right
    assert loose.baseline.drop is not None and loose.baseline.drop > 0
    strict = auto_mixed_precision(g, ranges, held, max_drop=0.0, metric=metric)
    assert strict.met and strict.layers_f32 == ("fc",) and strict.skip_layers == {"fc"}
    assert strict.achieved.drop is not None and strict.achieved.drop <= 0.0


def test_impossible_budget_says_so_and_keeps_the_model_f32(digits: tuple) -> None:
    g, ranges, held, _ = digits
    steps: list[AutoStep] = []
    res = auto_mixed_precision(g, ranges, held, min_sqnr_db=80.0, progress=steps.append)
    assert not res.met
    assert "cannot be met" in res.message
    assert max(s.sqnr_db for s in res.ranking) < 80.0  # no layer meets it even alone
    assert [s.phase for s in steps] == ["baseline"] + ["rank"] * 4  # no pointless search
    q = quantize_graph(g, ranges, res.config())
    assert not any(n.op.startswith("Q") for n in q.nodes)
    assert res.achieved.sqnr_db == math.inf


def test_a_budget_is_required(digits: tuple) -> None:
    g, ranges, held, _ = digits
    with pytest.raises(QnncError, match="budget"):
        auto_mixed_precision(g, ranges, held)
    with pytest.raises(QnncError, match="metric"):
        auto_mixed_precision(g, ranges, held, max_drop=0.01)
