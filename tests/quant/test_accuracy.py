"""Per-layer accuracy reports: exact figures on graphs whose errors are known by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from compiler.frontend import load
from compiler.passes import DEFAULT_PIPELINE, run_pipeline
from compiler.quant.accuracy import ErrorStats, compare
from compiler.quant.calibrate import calibrate
from compiler.quant.quantize import quantize_graph
from ir import DType, Graph, TensorType, make_node

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "digits_cnn.onnx"

# two samples; x / 0.5 and x / 0.25 have no .5 ties, so rounding is unambiguous
X = np.array([[[0.2, 1.0, -0.7, 3.1]], [[0.6, -1.3, 0.1, 2.0]]], dtype=np.float32)
# rint(x / 0.5) * 0.5 and rint(x / 0.25) * 0.25, worked out by hand; the errors x − q are
# a: .2 0 −.2 .1 | .1 .2 .1 0    b: −.05 0 .05 .1 | .1 −.05 .1 0    y = a + b: their sums
A_Q = np.array([[[0.0, 1.0, -0.5, 3.0]], [[0.5, -1.5, 0.0, 2.0]]])
B_Q = np.array([[[0.25, 1.0, -0.75, 3.0]], [[0.5, -1.25, 0.0, 2.0]]])
SUM_X2 = 0.04 + 1 + 0.49 + 9.61 + 0.36 + 1.69 + 0.01 + 4  # 17.2
SQNR_A = 10 * math.log10(SUM_X2 / (0.04 + 0.04 + 0.01 + 0.01 + 0.04 + 0.01))  # 20.59 dB
SQNR_B = 10 * math.log10(SUM_X2 / (3 * 0.0025 + 3 * 0.01))  # 26.61 dB
SQNR_Y = 10 * math.log10(4 * SUM_X2 / (3 * 0.0225 + 3 * 0.04))  # 25.65 dB


def _float_graph() -> Graph:
    """a = x, b = x (two layers), y = a + b."""
    g = Graph("f")
    x = g.add_input("x", TensorType((1, 4), DType.f32))
    a = make_node(g, "Identity", [x], name="la", out_names=["a"]).outputs[0]
    b = make_node(g, "Identity", [x], name="lb", out_names=["b"]).outputs[0]
    g.outputs = make_node(g, "Add", [a, b], name="add", out_names=["y"]).outputs
    return g


def _fake_quant_graph(scale_a: float = 0.5, scale_b: float = 0.25) -> Graph:
    """The same, with a and b quantised to i8 (keeping their names) and y computed from
    their dequantised values: the errors of a and b are pure rounding errors."""
    g = Graph("q")
    x = g.add_input("x", TensorType((1, 4), DType.f32))

    def q(scale: float, layer: str, name: str) -> object:
        attrs = {"dtype": "i8", "scale": [scale], "zero_point": [0]}
        return make_node(g, "Quantize", [x], attrs, name=layer, out_names=[name]).outputs[0]

    a, b = q(scale_a, "la", "a"), q(scale_b, "lb", "b")
    af = make_node(g, "Dequantize", [a], name="a_dq", out_names=["a_f"]).outputs[0]
    bf = make_node(g, "Dequantize", [b], name="b_dq", out_names=["b_f"]).outputs[0]
    g.outputs = make_node(g, "Add", [af, bf], name="add", out_names=["y"]).outputs
    return g


def _cosine(ref: np.ndarray, got: np.ndarray) -> float:
    r, q = ref.reshape(-1).astype(np.float64), got.reshape(-1)
    return float(r @ q / np.sqrt((r @ r) * (q @ q)))


def test_identical_graphs_are_exact() -> None:
    g = _float_graph()
    report = compare(g, g, {"x": X})
    assert report.samples == 2
    assert [(r.tensor, r.layer, r.op) for r in report.layers] == [
        ("a", "la", "Identity"), ("b", "lb", "Identity")]
    assert [(r.tensor, r.layer, r.op) for r in report.outputs] == [("y", "add", "Add")]
    for r in report.layers + report.outputs:
        assert r.sqnr_db == math.inf and r.cosine == pytest.approx(1.0, abs=1e-12)
        assert r.max_abs_err == 0.0
    assert report.output_sqnr_db == math.inf


def test_rounding_errors_give_the_hand_computed_figures() -> None:
    report = compare(_float_graph(), _fake_quant_graph(), [{"x": s} for s in X])
    rows = {r.tensor: r for r in report.layers + report.outputs}
    assert [r.layer for r in report.layers] == ["la", "lb"]
    assert rows["a"].op == "Quantize" and rows["y"].op == "Add"
    assert rows["a"].sqnr_db == pytest.approx(SQNR_A, rel=1e-5)
    assert rows["b"].sqnr_db == pytest.approx(SQNR_B, rel=1e-5)
    assert rows["y"].sqnr_db == pytest.approx(SQNR_Y, rel=1e-5)
    assert report.output_sqnr_db == rows["y"].sqnr_db
    assert rows["a"].max_abs_err == pytest.approx(0.2, rel=1e-5)
    assert rows["b"].max_abs_err == pytest.approx(0.1, rel=1e-5)
    assert rows["a"].cosine == pytest.approx(_cosine(X, A_Q), rel=1e-6)
    assert rows["b"].cosine == pytest.approx(_cosine(X, B_Q), rel=1e-6)
    assert rows["y"].cosine == pytest.approx(_cosine(2 * X, A_Q + B_Q), rel=1e-6)


def test_worst_orders_by_sqnr() -> None:
    report = compare(_float_graph(), _fake_quant_graph(0.25, 0.5), {"x": X})
    assert [r.tensor for r in report.worst(1)] == ["b"]  # scale 0.5 is now on b
    assert [r.tensor for r in report.worst(5)] == ["b", "a"]
    assert report.worst(0) == []
    text = report.format()
    assert "SQNR dB" in text and "20.59" in text and "26.6" in text and "2 sample(s)" in text
    assert report.format(worst=1).count("Quantize") == 1


def test_per_channel_counterparts_dequantise_along_their_axis() -> None:
    g = Graph("pc")
    x = g.add_input("x", TensorType((1, 4), DType.f32))
    attrs = {"dtype": "i8", "scale": [0.5, 0.25, 0.5, 0.25], "zero_point": [0, 0, 0, 0],
             "axis": 1}
    a = make_node(g, "Quantize", [x], attrs, name="la", out_names=["a"]).outputs[0]
    g.outputs = make_node(g, "Dequantize", [a], name="dq", out_names=["y"]).outputs
    f = Graph("f")
    fx = f.add_input("x", TensorType((1, 4), DType.f32))
    fa = make_node(f, "Identity", [fx], name="la", out_names=["a"]).outputs[0]
    f.outputs = make_node(f, "Identity", [fa], name="out", out_names=["y"]).outputs
    expected = np.array([[[0.0, 1.0, -0.5, 3.0]], [[0.5, -1.25, 0.0, 2.0]]])
    err2 = float(((X - expected) ** 2).sum())
    report = compare(f, g, {"x": X})
    (row,) = report.layers
    assert row.sqnr_db == pytest.approx(10 * math.log10(SUM_X2 / err2), rel=1e-5)
    (out,) = report.outputs
    assert (out.layer, out.op) == ("la", "Quantize")  # through the Dequantize boundary
    assert out.sqnr_db == pytest.approx(row.sqnr_db)


def test_streaming_sums_match_one_pass_and_edge_cases() -> None:
    rng = np.random.default_rng(0)
    ref, got = rng.standard_normal((3, 50)), rng.standard_normal((3, 50))
    s = ErrorStats()
    for r, q in zip(ref, got):
        s.update(r, q)
    err = ref - got
    assert s.sqnr_db == pytest.approx(10 * np.log10((ref**2).sum() / (err**2).sum()))
    assert s.cosine == pytest.approx(_cosine(ref, got))
    assert s.max_err == pytest.approx(np.abs(err).max()) and s.count == 150
    zero = ErrorStats()
    zero.update(np.zeros(4), np.zeros(4))
    assert zero.sqnr_db == math.inf and zero.cosine == 1.0
    off = ErrorStats()
    off.update(np.zeros(4), np.ones(4))
    assert off.sqnr_db == -math.inf and off.cosine == 0.0
    with pytest.raises(ValueError):
        off.update(np.zeros(3), np.zeros(4))


def test_digits_report_names_quantised_layers() -> None:
    from compiler.datasets import digits_split

    g = run_pipeline(load(FIXTURE), DEFAULT_PIPELINE)
    xtr, _, xte, _ = digits_split()
    q = quantize_graph(g, calibrate(g, {"input": xtr[:200, None]}, "minmax"))
    report = compare(g, q, {"input": xte[:60, None]})
    assert [(r.layer, r.op) for r in report.layers] == [
        ("conv1", "QConv"), ("conv2", "QConv"), ("pool", "MaxPool"), ("conv3", "QConv"),
        ("flatten", "Reshape")]
    assert [(r.tensor, r.layer, r.op) for r in report.outputs] == [("logits", "fc", "QLinear")]
    for r in report.layers + report.outputs:  # 8-bit: tens of dB, never exact
        assert 25.0 < r.sqnr_db < 60.0 and 0.999 < r.cosine < 1.0, r
    d = report.to_dict()
    assert d["samples"] == 60 and d["outputs"][0]["layer"] == "fc"
