"""The quantiser: accuracy on a real data set, fusion, mixed precision and float islands."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from compiler.frontend import load
from compiler.passes import DEFAULT_PIPELINE, run_pipeline
from compiler.quant.calibrate import calibrate
from compiler.quant.quantize import QuantConfig, QuantizeError, quantize_graph
from ir import DType, Graph, TensorType, make_node, qmath
from ir.interpreter import run
from ir.verifier import verify

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "digits_cnn.onnx"


@pytest.fixture(scope="module")
def digits() -> tuple[Graph, np.ndarray, np.ndarray, np.ndarray]:
    from compiler.datasets import digits_split

    g = run_pipeline(load(FIXTURE), DEFAULT_PIPELINE)
    xtr, _, xte, yte = digits_split()
    return g, xtr, xte, yte


def _accuracy(g: Graph, x: np.ndarray, y: np.ndarray) -> float:
    hits = sum(int(run(g, {"input": x[i : i + 1]})["logits"].argmax() == y[i])
               for i in range(len(x)))
    return hits / len(x)


@pytest.mark.parametrize("method", ["minmax", "percentile", "entropy", "mse"])
def test_int8_digits_accuracy_within_one_point_of_float(digits: tuple, method: str) -> None:
    g, xtr, xte, yte = digits
    ranges = calibrate(g, {"input": xtr[:200, None]}, method)
    q = quantize_graph(g, ranges)
    verify(q)
    ops = q.op_counts()
    assert ops.get("QConv") == 3 and ops.get("QLinear") == 1
    assert "Relu" not in ops and "Conv" not in ops  # ReLUs fused as clamp bounds
    f_acc, q_acc = _accuracy(g, xte, yte), _accuracy(q, xte, yte)
    assert q_acc >= f_acc - 0.01, (method, f_acc, q_acc)


def _conv_softmax_graph() -> Graph:
    rng = np.random.default_rng(0)
    g = Graph("cs")
    x = g.add_input("x", TensorType((1, 2, 5, 5), DType.f32))
    w = g.add_const(rng.standard_normal((4, 2, 3, 3)).astype(np.float32), "w")
    b = g.add_const(rng.standard_normal(4).astype(np.float32), "b")
    conv = make_node(g, "Conv", [x, w, b], {"strides": [1, 1], "pads": [1, 1, 1, 1],
                                            "dilations": [1, 1], "group": 1}, name="conv")
    relu = make_node(g, "Relu", conv.outputs, name="relu")
    sm = make_node(g, "Softmax", relu.outputs, {"axis": 1}, name="softmax")
    g.outputs = sm.outputs
    return g


def _sample_ranges(g: Graph) -> dict[str, tuple[float, float]]:
    rng = np.random.default_rng(1)
    data = {"x": rng.standard_normal((8, 1, 2, 5, 5)).astype(np.float32)}
    return calibrate(g, data, "minmax")


def test_softmax_stays_a_float_island_between_explicit_boundaries() -> None:
    g = _conv_softmax_graph()
    q = quantize_graph(g, _sample_ranges(g))
    verify(q)
    assert [n.op for n in q.nodes] == ["Quantize", "QConv", "Dequantize", "Softmax"]
    assert [v.name for v in q.outputs] == [v.name for v in g.outputs]
    x = np.random.default_rng(2).standard_normal((1, 2, 5, 5)).astype(np.float32)
    ref, got = run(g, {"x": x}), run(q, {"x": x})
    (name,) = ref
    assert np.max(np.abs(ref[name] - got[name])) < 0.05


def test_skipped_layers_stay_f32() -> None:
    g = _conv_softmax_graph()
    cfg = QuantConfig(skip_layers=frozenset({"conv"}))
    q = quantize_graph(g, _sample_ranges(g), cfg)
    verify(q)
    assert q.op_counts() == {"Conv": 1, "Quantize": 1, "QLut": 1, "Dequantize": 1,
                             "Softmax": 1}
    q2 = quantize_graph(g, _sample_ranges(g), QuantConfig(skip_op_types=frozenset({"Conv",
                                                                                   "Relu"})))
    assert q2.op_counts() == g.op_counts()


def test_missing_range_names_the_tensor() -> None:
    g = _conv_softmax_graph()
    ranges = _sample_ranges(g)
    del ranges["x"]
    with pytest.raises(QuantizeError, match="'x'"):
        quantize_graph(g, ranges)


def test_bias_correction_removes_the_mean_error_of_rounded_weights() -> None:
    """A per-tensor depthwise conv on inputs with a large mean: rounding the weights shifts
    every output channel's mean; bias correction takes that shift out."""
    rng = np.random.default_rng(3)
    g = Graph("dw")
    x = g.add_input("x", TensorType((1, 8, 6, 6), DType.f32))
    w = rng.uniform(-1, 1, (8, 1, 3, 3)).astype(np.float32)
    w[0, 0, 0, 0] = 40.0  # one large weight makes the per-tensor step coarse for the rest
    wv = g.add_const(w, "w")
    conv = make_node(g, "Conv", [x, wv], {"strides": [1, 1], "pads": [0, 0, 0, 0],
                                          "dilations": [1, 1], "group": 8}, name="dw")
    g.outputs = conv.outputs
    data = {"x": (rng.standard_normal((16, 1, 8, 6, 6)) + 3.0).astype(np.float32)}
    from compiler.quant.calibrate import calibrate_model

    cal = calibrate_model(g, data, "minmax")
    errs = {}
    for bc in (False, True):
        q = quantize_graph(g, cal.ranges, QuantConfig(per_channel=False, bias_correction=bc),
                           cal.channel_means)
        diff = [run(q, {"x": s})["dw"] - run(g, {"x": s})["dw"] for s in data["x"]]
        errs[bc] = np.abs(np.mean(diff, axis=(0, 1, 3, 4))).max()
    assert errs[True] < 0.25 * errs[False], errs


def test_concat_inputs_share_the_output_scale() -> None:
    """Inception-style branches: both convs write the Concat's scale, no Requantize."""
    rng = np.random.default_rng(4)
    g = Graph("branches")
    x = g.add_input("x", TensorType((1, 2, 4, 4), DType.f32))
    geo = {"strides": [1, 1], "pads": [0, 0, 0, 0], "dilations": [1, 1], "group": 1}
    outs = []
    for k, gain in enumerate((0.1, 5.0)):  # very different ranges
        w = g.add_const((gain * rng.standard_normal((3, 2, 1, 1))).astype(np.float32), f"w{k}")
        outs.append(make_node(g, "Conv", [x, w], geo, name=f"conv{k}").outputs[0])
    cat = make_node(g, "Concat", outs, {"axis": 1}, name="cat")
    g.outputs = cat.outputs
    data = {"x": rng.standard_normal((8, 1, 2, 4, 4)).astype(np.float32)}
    q = quantize_graph(g, calibrate(g, data, "minmax"))
    verify(q)
    assert "Requantize" not in q.op_counts()
    scales = {n.outputs[0].type.quant.scale for n in q.nodes if n.op == "QConv"}
    assert len(scales) == 1


def test_dead_channel_bias_fits_int32_exactly() -> None:
    """A filter whose weights are all zero (a dead channel after BatchNorm folding, as in
    PP-OCRv4 rec) outputs its bias alone. At the smallest weight scale that bias would need
    far more than 2^31 steps of s_x * s_w and used to saturate; the weight scale is raised
    so the bias code fits, and the channel's output stays exact."""
    rng = np.random.default_rng(4)
    g = Graph("dead")
    x = g.add_input("x", TensorType((1, 3, 4, 4), DType.f32))
    w = rng.standard_normal((3, 3, 1, 1)).astype(np.float32)
    w[1] = 0.0
    b = np.array([0.1, -2.5, 0.3], dtype=np.float32)
    conv = make_node(g, "Conv", [x, g.add_const(w, "w"), g.add_const(b, "b")],
                     {"strides": [1, 1], "pads": [0, 0, 0, 0], "dilations": [1, 1],
                      "group": 1}, name="conv")
    g.outputs = conv.outputs
    data = {"x": (1e-3 * rng.standard_normal((4, 1, 3, 4, 4))).astype(np.float32)}
    q = quantize_graph(g, calibrate(g, data, "minmax"))
    verify(q)
    (qc,) = [n for n in q.nodes if n.op == "QConv"]
    assert qc.b is not None and qc.b.data is not None
    assert np.abs(qc.b.data.astype(np.int64)).max() <= qmath.BIAS_LIMIT
    assert qc.w is not None and qc.w.data is not None and not qc.w.data[1].any()
    s = data["x"][0]
    ref, got = run(g, {"x": s})["conv"], run(q, {"x": s})["conv"]
    step = q.outputs[0].type.quant or qc.outputs[0].type.quant
    np.testing.assert_allclose(got[0, 1], ref[0, 1], atol=float(step.scale[0]) if step else 1e-3)
