"""The onnxruntime peer (compiler/ort_compare.py): quantize_static does not look inside If
branches, so a model whose layers sit in a branch a constant chooses is inlined first and
comes back quantised, computing what the float model does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

ort = pytest.importorskip("onnxruntime", reason="the peer needs onnxruntime (a test extra)")

from compiler.ort_compare import inline_ifs, ort_quantize, ort_session  # noqa: E402


def _switched_conv() -> onnx.ModelProto:
    """y = Conv(x, w) in the then-branch of an If on a constant (Silero VAD's sample-rate
    switch in small), Conv(x, -w) in the else-branch."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    y_info = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])

    def branch(name: str, weights: np.ndarray) -> onnx.GraphProto:
        conv = helper.make_node("Conv", ["x", f"{name}_w"], ["y_" + name], pads=[1, 1, 1, 1])
        out = helper.make_tensor_value_info("y_" + name, TensorProto.FLOAT, [1, 4, 6, 6])
        return helper.make_graph([conv], name, [], [out],
                                 [numpy_helper.from_array(weights, f"{name}_w")])

    nodes = [helper.make_node("Constant", [], ["cond"],
                              value=numpy_helper.from_array(np.array(True))),
             helper.make_node("If", ["cond"], ["y"], then_branch=branch("then", w),
                              else_branch=branch("else", -w))]
    graph = helper.make_graph(nodes, "switched", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 2, 6, 6])], [y_info])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _dequantizes(graph: onnx.GraphProto) -> int:
    return sum(n.op_type == "DequantizeLinear" for n in graph.node)


def test_a_constant_if_is_inlined_then_quantised(tmp_path: Path) -> None:
    model = _switched_conv()
    inlined = inline_ifs(model)
    assert [n.op_type for n in inlined.graph.node] == ["Conv"]
    rng = np.random.default_rng(1)
    calib = [{"x": rng.standard_normal((1, 2, 6, 6)).astype(np.float32)} for _ in range(8)]
    q = onnx.load(ort_quantize(model, calib, tmp_path))
    assert _dequantizes(q.graph) >= 3  # input, weight, output: the branch's conv is quantised
    want = ort_session(model.SerializeToString(), 1).run(None, calib[0])[0]
    # the QDQ model's meaning, its Q/DQ pairs left unfused so the convolution runs in float:
    # onnxruntime's fused u8 x s8 kernel on an AVX2 CPU without VNNI saturates int16 pair
    # sums for full-range weights (10% off here)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    got = ort.InferenceSession(q.SerializeToString(), opts,
                               providers=["CPUExecutionProvider"]).run(None, calib[0])[0]
    assert np.abs(got - want).max() < 0.05 * np.abs(want).max()
