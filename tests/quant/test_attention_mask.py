"""Attention scores plus an additive mask (-1e4 or -3.4e38 where a key is hidden) before a
Softmax: the quantiser keeps the Add in f32 (CalibrationContext.masks_scores), so the
mask's magnitude never sets a scale; quantised, the sum's step would be about 40 (or 1e36)
and every visible score would round to one code.

An IR-text before/after case (tests/quant/cases/attention_mask.ir), and the end-to-end
effect on a small attention calibrated on masks of random lengths: the INT8 probabilities'
cosine with f32 is above 0.995 on every sample (measured 0.9986 at worst; 0.9995 on
average) where the quantised Add gave 0.54 on average.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler.api import compile_model
from compiler.quant.quantize import QuantConfig, quantize_graph
from ir.text import parse_graph, print_graph
from ir.verifier import verify

CASE = Path(__file__).with_name("cases") / "attention_mask.ir"
BEFORE, AFTER = CASE.read_text().split("// CHECK:")
RANGES = {"q": (-2.0, 2.0), "k": (-2.0, 2.0), "s": (-6.0, 6.0), "mask": (-1e4, 0.0),
          "sm": (-1e4, 6.0), "p": (0.0, 1.0)}


def test_masked_scores_stay_float_before_after() -> None:
    q = quantize_graph(parse_graph(BEFORE), RANGES, QuantConfig(bias_correction=False))
    verify(q)
    assert print_graph(q).strip() == AFTER.strip()
    assert [n.op for n in q.nodes] == ["Quantize", "Quantize", "QMatMul", "Dequantize", "Add",
                                       "Softmax"]


def test_an_add_read_by_other_ops_is_still_quantised() -> None:
    """The rule is about sums only a Softmax reads: the same Add feeding a Relu is a QAdd."""
    text = BEFORE.replace("Softmax(%sm) {axis=2}", "Relu(%sm)")
    q = quantize_graph(parse_graph(text), RANGES, QuantConfig(bias_correction=False))
    assert "QAdd" in [n.op for n in q.nodes]


T, D = 8, 16


def _model() -> object:
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array((rng.standard_normal((D, D)) / 4).astype(np.float32), n)
             for n in ("wq", "wk")]
    nodes = [helper.make_node("MatMul", ["x", "wq"], ["q"], name="q"),
             helper.make_node("MatMul", ["x", "wk"], ["k"], name="k"),
             helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1], name="kt"),
             helper.make_node("MatMul", ["q", "kt"], ["s"], name="scores"),
             helper.make_node("Add", ["s", "mask"], ["sm"], name="add_mask"),
             helper.make_node("Softmax", ["sm"], ["p"], axis=-1, name="softmax")]
    vi = helper.make_tensor_value_info
    graph = helper.make_graph(
        nodes, "attn", [vi("x", TensorProto.FLOAT, [1, T, D]),
                        vi("mask", TensorProto.FLOAT, [1, T, T])],
        [vi("p", TensorProto.FLOAT, [1, T, T])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _sample(seed: int, fill: float) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = np.zeros((1, T, T), np.float32)
    mask[..., int(rng.integers(3, T + 1)):] = fill
    return {"x": rng.standard_normal((1, T, D)).astype(np.float32), "mask": mask}


@pytest.mark.parametrize("fill", [-1e4, -3.4e38])
def test_int8_attention_with_a_mask_tracks_f32(fill: float) -> None:
    model = _model()
    cm = compile_model(model, precision="int8",
                       calibration=[_sample(s, fill) for s in range(16)])
    ref = compile_model(model)
    assert [n.op for n in cm.graph.nodes if n.name == "add_mask"] == ["Add"]
    for s in range(100, 108):
        feeds = _sample(s, fill)
        got, want = cm.run(None, feeds)[0].ravel(), ref.run(None, feeds)[0].ravel()
        cos = float(got @ want / np.linalg.norm(got) / np.linalg.norm(want))
        assert cos > 0.995, (s, cos)
        assert float(np.abs(got - want).max()) < 0.1
