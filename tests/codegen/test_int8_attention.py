"""INT8 on a model built around ONNX's Attention op (opset 23): calibrated, quantised and
compiled to host C, then compared with the reference interpreter on the quantised graph.

The frontend lowers Attention into MatMul/Softmax/elementwise ops, so the quantiser treats
its Q·Kᵀ and P·V products like any product of two activations (QMatMul, integer kernels)
and the projections around it as fully connected layers (QLinear). What has no integer
form stays a float island between a Dequantize and a Quantize: the causal select (Where),
the Softmax, and here the output of the last projection. Every integer tensor that leaves
for a float island is made an output and must match exactly; float results agree within
rtol 1e-4 / atol 1e-5 (libm and the vectorised softmax row against numpy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import ModelProto, TensorProto, helper, numpy_helper

from compiler.frontend.importer import import_model
from compiler.passes import DEFAULT_PIPELINE, run_pipeline
from compiler.quant.calibrate import calibrate
from compiler.quant.quantize import quantize_graph
from tests.codegen.harness import check_codes_exact, expose_island_inputs

SEQ, HIDDEN, Q_HEADS, KV_HEADS, HEAD = 8, 32, 4, 2, 8


def attention_block(seed: int, mask: bool) -> ModelProto:
    """x -> q, k, v projections -> Attention (3-D, GQA 4 over 2 heads, causal, optionally a
    bool key mask input) -> output projection."""
    rng = np.random.default_rng(seed)
    inits, nodes = [], []

    def linear(x: str, n_out: int, name: str) -> str:
        w = (rng.standard_normal((HIDDEN, n_out)) / np.sqrt(HIDDEN)).astype(np.float32)
        b = (rng.standard_normal(n_out) * 0.1).astype(np.float32)
        inits.extend([numpy_helper.from_array(w, f"{name}.w"),
                      numpy_helper.from_array(b, f"{name}.b")])
        nodes.append(helper.make_node("MatMul", [x, f"{name}.w"], [f"{name}.mm"]))
        nodes.append(helper.make_node("Add", [f"{name}.mm", f"{name}.b"], [name]))
        return name

    q = linear("x", Q_HEADS * HEAD, "q")
    k = linear("x", KV_HEADS * HEAD, "k")
    v = linear("x", KV_HEADS * HEAD, "v")
    ins = [q, k, v] + (["mask"] if mask else [])
    nodes.append(helper.make_node("Attention", ins, ["ctx"], q_num_heads=Q_HEADS,
                                  kv_num_heads=KV_HEADS, is_causal=1, name="attention"))
    linear("ctx", HIDDEN, "y")
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, SEQ, HIDDEN])]
    if mask:
        inputs.append(helper.make_tensor_value_info("mask", TensorProto.BOOL, [1, 1, SEQ, SEQ]))
    g = helper.make_graph(nodes, "attention_block", inputs,
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                         [1, SEQ, HIDDEN])], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 23)])


def feeds(seed: int, mask: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {"x": rng.standard_normal((1, SEQ, HIDDEN)).astype(np.float32)}
    if mask:
        keys = np.broadcast_to(np.arange(SEQ) != 2, (SEQ, SEQ))  # key 2 is padding
        out["mask"] = keys.reshape(1, 1, SEQ, SEQ).copy()
    return out


@pytest.mark.parametrize("mask", [False, True], ids=["causal", "causal_boolmask"])
def test_attention_int8_host_c(mask: bool, tmp_path: Path) -> None:
    model = attention_block(0, mask)
    g = run_pipeline(import_model(model), DEFAULT_PIPELINE)
    calib = [feeds(10 + k, mask) for k in range(16)]
    q = quantize_graph(g, calibrate(g, {k: np.stack([c[k] for c in calib]) for k in calib[0]},
                                    "minmax"))
    ops = q.op_counts()
    assert ops.get("QMatMul") == 2 and ops.get("QLinear") == 4, ops
    # a runtime mask adds the fully-masked-row guard: a second Where on the probabilities
    assert ops.get("Softmax") == 1 and ops.get("Where") == (2 if mask else 1), ops
    expose_island_inputs(q)
    x = feeds(3, mask)
    want = check_codes_exact(q, x, tmp_path)
    # and the integer model still computes attention: near onnxruntime's float result
    # (16 calibration samples, minmax: about 6% of the largest output at worst)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (ref,) = sess.run(None, x)
    y = want[q.outputs[0].name]
    assert np.abs(y - ref).max() < 0.1 * np.abs(ref).max()
