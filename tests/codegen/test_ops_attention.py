"""Generated float C of the attention family against the interpreter: Where, Cast and integer
reductions (which masked attention and onnxruntime's mask arithmetic bring to the C targets),
and whole ONNX Attention / RotaryEmbedding nodes
as the frontend lowers them (GQA, masks, causal, window, softcap, caches, runtime
nonpad_kv_seqlen). The lowered graphs run libm's exp, tanh and the vectorised softmax row, so
floats agree within rtol 1e-4 / atol 1e-5."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper

from compiler.frontend.importer import import_model
from ir.build import make_node
from ir.graph import Graph
from ir.types import DType, TensorType
from tests.codegen.harness import check_graph, random_feeds


def f32(*shape: int) -> TensorType:
    return TensorType(shape, DType.f32)


def test_where_cast_and_integer_reductions(tmp_path: Path) -> None:
    """One graph (one C build) with every form: a broadcasting Where with a scalar -inf,
    Casts f32 -> i32 (truncating), i64 -> f32 and f32 -> bool, and the integer reductions
    onnxruntime's BERT optimiser uses to sum an int32 mask into key lengths."""
    g = Graph("select_cast")
    cond = g.add_input("cond", TensorType((2, 1, 4), DType.bool))
    x = g.add_input("x", f32(3, 4))
    xi = g.add_input("xi", TensorType((6,), DType.i64))
    m = g.add_input("m", TensorType((2, 3, 5), DType.i32))
    ninf = g.add_const(np.float32(-np.inf).reshape(()), "neg_inf")
    outs = [make_node(g, "Where", [cond, x, ninf]).outputs[0]]
    outs += [make_node(g, "Cast", [v], {"to": to}).outputs[0]
             for v, to in ((x, "i32"), (xi, "f32"), (x, "bool"))]
    outs += [make_node(g, op, [m], {"axes": [0, 2], "keepdims": 0}).outputs[0]
             for op in ("ReduceSum", "ReduceMax", "ReduceMin")]
    g.outputs = outs
    feeds = random_feeds(g, seed=5)
    feeds["x"] = np.linspace(-3.7, 3.7, 12, dtype=np.float32).reshape(3, 4)
    feeds["x"][1, 2] = 0.0  # a false for the bool cast
    check_graph(g, tmp_path, feeds=feeds)


def attention_model(inputs: list[tuple[str, int, list[int]]], node_inputs: list[str],
                    outputs: list[str], opset: int = 24, **attrs: Any) -> Any:
    node = helper.make_node("Attention", node_inputs, outputs, name="attn", **attrs)
    g = helper.make_graph([node], "attention",
                          [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                          [helper.make_empty_tensor_value_info(o) for o in outputs if o])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


F, B, I = TensorProto.FLOAT, TensorProto.BOOL, TensorProto.INT64
CASES = {
    # 3-D, GQA (4 query heads over 2), causal, bool mask input
    "gqa_causal_boolmask": ([("q", F, [2, 3, 16]), ("k", F, [2, 5, 8]), ("v", F, [2, 5, 8]),
                             ("m", B, [2, 1, 3, 5])], ["q", "k", "v", "m"], ["y"],
                            {"q_num_heads": 4, "kv_num_heads": 2, "is_causal": 1}),
    # 4-D, float mask, softcap, past/present and the qk output after softmax
    "past_softcap_qk": ([("q", F, [1, 2, 3, 4]), ("k", F, [1, 2, 3, 4]), ("v", F, [1, 2, 3, 6]),
                         ("m", F, [3, 5]), ("pk", F, [1, 2, 2, 4]), ("pv", F, [1, 2, 2, 6])],
                        ["q", "k", "v", "m", "pk", "pv"], ["y", "pkey", "pval", "qk"],
                        {"softcap": 2.0, "qk_matmul_output_mode": 3, "scale": 0.3}),
    # runtime nonpad_kv_seqlen with causal and a sliding window (opset 25)
    "nonpad_window": ([("q", F, [2, 2, 2, 4]), ("k", F, [2, 2, 6, 4]), ("v", F, [2, 2, 6, 4]),
                       ("n", I, [2])], ["q", "k", "v", "", "", "", "n"], ["y"],
                      {"is_causal": 1, "left_window_size": 2}),
}


@pytest.mark.parametrize("case", CASES)
def test_attention_lowered_to_c(case: str, tmp_path: Path) -> None:
    inputs, ins, outs, attrs = CASES[case]
    graph = import_model(attention_model(inputs, ins, outs, opset=25 if "window" in case
                                         else 24, **attrs))
    feeds = random_feeds(graph, seed=3)
    if "n" in feeds:
        feeds["n"] = np.array([4, 1], np.int64)  # the second query block: a fully masked row
    check_graph(graph, tmp_path, feeds=feeds)


def test_rotary_embedding_lowered_to_c(tmp_path: Path) -> None:
    node = helper.make_node("RotaryEmbedding", ["x", "cos", "sin", "pos"], ["y"],
                            interleaved=1, num_heads=2, rotary_embedding_dim=4)
    g = helper.make_graph([node], "rope", [
        helper.make_tensor_value_info("x", F, [1, 3, 12]),
        helper.make_tensor_value_info("cos", F, [8, 2]),
        helper.make_tensor_value_info("sin", F, [8, 2]),
        helper.make_tensor_value_info("pos", I, [1, 3])], [
        helper.make_empty_tensor_value_info("y")])
    graph = import_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 23)]))
    feeds = random_feeds(graph, seed=1)
    feeds["pos"] = np.array([[0, 5, 7]], np.int64)
    check_graph(graph, tmp_path, feeds=feeds)


def test_linear_attention_unrolled_to_c(tmp_path: Path) -> None:
    """gated_delta with GQA (4 query heads over 2 state heads), a past state, per-key decay."""
    node = helper.make_node("LinearAttention", ["q", "k", "v", "s", "g", "b"], ["y", "state"],
                            q_num_heads=4, kv_num_heads=2, update_rule="gated_delta")
    shapes = {"q": [1, 3, 16], "k": [1, 3, 8], "v": [1, 3, 6], "s": [1, 2, 4, 3],
              "g": [1, 3, 8], "b": [1, 3, 2]}
    g = helper.make_graph([node], "linear_attention",
                          [helper.make_tensor_value_info(n, F, s) for n, s in shapes.items()],
                          [helper.make_empty_tensor_value_info(o) for o in ("y", "state")])
    graph = import_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 27)]))
    feeds = random_feeds(graph, seed=2)
    feeds["g"] = -np.abs(feeds["g"])  # log-space decay: a factor in (0, 1]
    feeds["b"] = 1 / (1 + np.exp(-feeds["b"]))
    check_graph(graph, tmp_path, feeds=feeds)
