"""The attention family's lowerings (compiler/frontend/ops/attention.py) run by the
interpreter against onnx's reference evaluator, on the cases onnx's node tests leave out:
a runtime nonpad_kv_seqlen with causal and window rules and a fully masked row, a float
mask shorter than the keys, a constant float mask with -inf entries, GQA with a bool mask,
softcap and each qk_matmul_output mode, softmax_precision, partial interleaved RoPE from
3-D input, and SwiGLU's alpha. Float32 against the reference: rtol 1e-5 / atol 1e-6."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from compiler.frontend.importer import import_model
from ir.interpreter import run

RNG = np.random.default_rng(0)
F, B, I = TensorProto.FLOAT, TensorProto.BOOL, TensorProto.INT64


def f32(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def check(op: str, feeds: dict[str, np.ndarray], ins: list[str], outs: list[str], opset: int,
          consts: dict[str, np.ndarray] | None = None, oracle: str = "reference",
          **attrs: Any) -> None:
    node = helper.make_node(op, ins, outs, **attrs)
    vin = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
           for k, v in feeds.items()]
    inits = [numpy_helper.from_array(v, k) for k, v in (consts or {}).items()]
    g = helper.make_graph([node], op.lower(), vin,
                          [helper.make_empty_tensor_value_info(o) for o in outs if o],
                          initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    if oracle == "onnxruntime":
        import onnxruntime as ort

        sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        want = sess.run(None, feeds)
    else:
        want = ReferenceEvaluator(m).run(None, feeds)
    graph = import_model(m)
    got = run(graph, feeds)
    for v, w in zip(graph.outputs, want):
        assert got[v.name].shape == w.shape
        np.testing.assert_allclose(got[v.name], w, rtol=1e-5, atol=1e-6, err_msg=v.name)


@pytest.mark.parametrize("causal,left,right", [(1, -1, -1), (1, 1, -1), (0, 2, 1)])
def test_attention_runtime_nonpad(causal: int, left: int, right: int) -> None:
    feeds = {"q": f32(2, 2, 3, 4), "k": f32(2, 2, 6, 4), "v": f32(2, 2, 6, 5),
             "n": np.array([6, 2], np.int64)}  # batch 1: offset -1, its first row sees no key
    check("Attention", feeds, ["q", "k", "v", "", "", "", "n"], ["y"], 25, is_causal=causal,
          left_window_size=left, right_window_size=right)


def test_attention_constant_nonpad_and_short_float_mask() -> None:
    feeds = {"q": f32(2, 2, 3, 4), "k": f32(2, 2, 6, 4), "v": f32(2, 2, 6, 4),
             "m": f32(3, 4)}  # 4 of the 6 keys: the rest pad with -inf
    check("Attention", feeds, ["q", "k", "v", "m", "", "", "n"], ["y"], 24,
          consts={"n": np.array([5, 4], np.int64)}, is_causal=1)


def test_attention_constant_float_mask_with_neg_inf() -> None:
    mask = f32(3, 5)
    mask[1, :] = -np.inf  # a fully masked row
    mask[0, 2] = -np.inf
    feeds = {"q": f32(1, 2, 3, 4), "k": f32(1, 2, 5, 4), "v": f32(1, 2, 5, 4)}
    check("Attention", feeds, ["q", "k", "v", "m"], ["y", "", "", "qk"], 23, consts={"m": mask},
          qk_matmul_output_mode=3)


@pytest.mark.parametrize("mode", [0, 1, 2, 3])
def test_attention_gqa_boolmask_softcap_qk_modes(mode: int) -> None:
    mask = RNG.random((2, 1, 3, 5)) > 0.3
    mask[0, 0, 1] = False  # a fully masked row
    feeds = {"q": f32(2, 3, 16), "k": f32(2, 5, 8), "v": f32(2, 5, 12), "m": mask}
    # mode 0 is the raw product (the spec, and onnxruntime); onnx's reference evaluator
    # returns it soft-capped, so onnxruntime is the oracle there
    check("Attention", feeds, ["q", "k", "v", "m"], ["y", "", "", "qk"], 23, q_num_heads=4,
          kv_num_heads=2, softcap=1.5, qk_matmul_output_mode=mode,
          oracle="onnxruntime" if mode == 0 else "reference")


def test_attention_3d_past_present_and_softmax_precision() -> None:
    feeds = {"q": f32(1, 2, 8), "k": f32(1, 2, 8), "v": f32(1, 2, 8),
             "pk": f32(1, 2, 3, 4), "pv": f32(1, 2, 3, 4)}
    check("Attention", feeds, ["q", "k", "v", "", "pk", "pv"], ["y", "pkey", "pval"], 23,
          q_num_heads=2, kv_num_heads=2, is_causal=1, softmax_precision=1, scale=0.2)


@pytest.mark.parametrize("interleaved", [0, 1])
def test_rotary_partial_3d(interleaved: int) -> None:
    feeds = {"x": f32(2, 3, 2 * 8), "pos": RNG.integers(0, 10, (2, 3)).astype(np.int64)}
    consts = {"cos": f32(10, 2), "sin": f32(10, 2)}
    check("RotaryEmbedding", feeds, ["x", "cos", "sin", "pos"], ["y"], 23, consts=consts,
          interleaved=interleaved, rotary_embedding_dim=4, num_heads=2)


def test_swiglu_alpha() -> None:
    feeds = {"a": f32(3, 7), "b": f32(3, 7)}
    check("SwiGLU", feeds, ["a", "b"], ["y"], 28, alpha=1.7)
