"""SequenceMap and Loops over sequences, unrolled at import (docs/architecture.md, "Sequences
and optionals"): results against onnxruntime (onnx.reference 1.23's SequenceMap takes at most
one input besides the sequence, and its Loop gave back the initial carried tensor for the
trip count 2 case here), the IR they leave behind (no Loop, one copy of the body per
position), a tensor-only Loop left a region, the errors for what cannot be unrolled, and one
unrolled model compiled to C."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler.backend import QnncBackend
from compiler.errors import ConversionError
from compiler.frontend.importer import import_model
from ir.interpreter import run as interpret

F, I64, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def _t(dtype: int, *shape: int) -> onnx.TypeProto:
    return helper.make_tensor_type_proto(dtype, list(shape))


def _seq_t(dtype: int) -> onnx.TypeProto:
    return helper.make_sequence_type_proto(helper.make_tensor_type_proto(dtype, None))


def _model(nodes: list[onnx.NodeProto], inputs: dict[str, onnx.TypeProto],
           outputs: dict[str, onnx.TypeProto], consts: dict[str, np.ndarray]) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "seqmap", [helper.make_value_info(k, t) for k, t in inputs.items()],
        [helper.make_value_info(k, t) for k, t in outputs.items()],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _body(name: str, nodes: list[onnx.NodeProto], inputs: dict[str, onnx.TypeProto],
          outputs: dict[str, onnx.TypeProto]) -> onnx.GraphProto:
    return helper.make_graph(nodes, name,
                             [helper.make_value_info(k, t) for k, t in inputs.items()],
                             [helper.make_value_info(k, t) for k, t in outputs.items()])


def _feeds(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {i.name: rng.standard_normal([d.dim_value for d in i.type.tensor_type.shape.dim])
            .astype(np.float32) for i in model.graph.input}


def _same(got: Any, want: Any, where: str) -> None:
    if isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {got!r}"
        for k, (g, w) in enumerate(zip(got, want)):
            _same(g, w, f"{where}[{k}]")
        return
    w = np.asarray(want)
    assert got.dtype == w.dtype and got.shape == w.shape, f"{where}: {got.dtype}{got.shape}"
    # the same float32 numpy arithmetic in the same order on both sides
    np.testing.assert_array_equal(got, w, err_msg=where)


def _reference(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[Any]:
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _check(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    onnx.checker.check_model(model, full_check=True)
    feeds = _feeds(model)
    want = _reference(model, feeds)
    got = QnncBackend.prepare(model).run(feeds)
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        _same(g, w, model.graph.output[k].name)
    return feeds


def seq_map_model() -> onnx.ModelProto:
    """Two sequences of differently shaped pieces and a tensor mapped through a body that
    also reads an outer tensor and the length of an outer sequence."""
    body = _body("map_body", [
        helper.make_node("Mul", ["a", "b"], ["ab"]),
        helper.make_node("Add", ["ab", "c"], ["abc"]),
        helper.make_node("SequenceLength", ["s"], ["n"]),
        helper.make_node("Cast", ["n"], ["nf"], to=F),
        helper.make_node("Mul", ["abc", "nf"], ["abcn"]),
        helper.make_node("Add", ["abcn", "w"], ["out"]),
        helper.make_node("Shape", ["a"], ["shape"]),
    ], {"a": _t(F, 3, 0), "b": _t(F, 3, 0), "c": _t(F, 3, 1)},
        {"out": _t(F, 3, 0), "shape": _t(I64, 2)})
    for t in (*body.input[:2], body.output[0]):  # widths differ per position
        t.type.tensor_type.shape.dim[1].Clear()
    nodes = [
        helper.make_node("SplitToSequence", ["x", "split"], ["s"], axis=1),
        helper.make_node("SplitToSequence", ["x2", "split"], ["s2"], axis=1),
        helper.make_node("SequenceMap", ["s", "s2", "t"], ["r", "shapes"], body=body),
        helper.make_node("ConcatFromSequence", ["r"], ["y"], axis=1),
    ]
    return _model(nodes, {"x": _t(F, 3, 6), "x2": _t(F, 3, 6), "t": _t(F, 3, 1),
                          "w": _t(F, 1, 1)},
                  {"y": _t(F, 3, 6), "shapes": _seq_t(I64)},
                  {"split": np.array([1, 2, 3], np.int64)})


def seq_loop_model(m: int = 5, stop_after: int = 2) -> onnx.ModelProto:
    """A Loop carrying a sequence and a tensor, with a scan output; its condition turns
    false (at compile time) after iteration ``stop_after``."""
    body = _body("loop_body", [
        helper.make_node("Add", ["acc_in", "x"], ["acc_out"]),
        helper.make_node("SequenceInsert", ["s_in", "acc_out"], ["s_out"]),
        helper.make_node("Less", ["i", "stop"], ["cond_out"]),
        helper.make_node("Mul", ["acc_out", "acc_out"], ["sq"]),
    ], {"i": _t(I64), "c": _t(B), "s_in": _seq_t(F), "acc_in": _t(F, 2)},
        {"cond_out": _t(B), "s_out": _seq_t(F), "acc_out": _t(F, 2), "sq": _t(F, 2)})
    nodes = [
        helper.make_node("SequenceEmpty", [], ["s0"], dtype=F),
        helper.make_node("Loop", ["m", "go", "s0", "x"], ["s", "acc", "sqs"], body=body),
        helper.make_node("ConcatFromSequence", ["s"], ["y"], axis=0, new_axis=1),
    ]
    return _model(nodes, {"x": _t(F, 2)},
                  {"y": _t(F, stop_after + 1, 2), "acc": _t(F, 2),
                   "sqs": _t(F, stop_after + 1, 2)},
                  {"m": np.array(m, np.int64), "go": np.array(True),
                   "stop": np.array(stop_after, np.int64)})


def test_sequence_map_is_unrolled_like_onnx_reference() -> None:
    model = seq_map_model()
    _check(model)
    graph = import_model(model)
    ops = [n.op for n in graph.nodes]
    assert ops.count("Mul") == 6 and ops.count("Add") == 6  # one body per position
    assert "Loop" not in ops and "If" not in ops


def test_a_loop_carrying_a_sequence_is_unrolled_until_its_condition_is_false() -> None:
    for m, stop in ((5, 2), (2, 7)):  # the condition stops it; the trip count does
        model = seq_loop_model(m, stop)
        if stop >= m:
            for o in (model.graph.output[0], model.graph.output[2]):
                o.type.tensor_type.shape.dim[0].dim_value = m
        _check(model)
        graph = import_model(model)
        assert "Loop" not in {n.op for n in graph.nodes}
        assert [n.op for n in graph.nodes].count("Add") == min(m, stop + 1)


def test_a_tensor_only_loop_stays_a_loop_region() -> None:
    body = _body("b", [helper.make_node("Identity", ["c"], ["c_out"]),
                       helper.make_node("Add", ["acc_in", "x"], ["acc_out"])],
                 {"i": _t(I64), "c": _t(B), "acc_in": _t(F, 2)},
                 {"c_out": _t(B), "acc_out": _t(F, 2)})
    model = _model([helper.make_node("Loop", ["m", "", "x"], ["acc"], body=body)],
                   {"x": _t(F, 2)}, {"acc": _t(F, 2)}, {"m": np.array(3, np.int64)})
    _check(model)
    assert [n.op for n in import_model(model).nodes] == ["Loop"]


def test_what_cannot_be_unrolled_is_a_clear_error() -> None:
    m_input = seq_loop_model()
    del m_input.graph.initializer[0]
    m_input.graph.input.append(helper.make_tensor_value_info("m", I64, []))
    with pytest.raises(ConversionError, match=r"\(Loop\): the trip count M \(%m\) must be known "
                       r"at compile time.*carries or reads a sequence"):
        import_model(m_input)
    run_time_cond = seq_loop_model()
    body = run_time_cond.graph.node[1].attribute[0].g
    body.node[2].CopyFrom(helper.make_node("Less", ["acc_out", "x"], ["lt"]))
    body.node.append(helper.make_node("ReduceMin", ["lt_f"], ["cond_f"], keepdims=0))
    body.node.insert(3, helper.make_node("Cast", ["lt"], ["lt_f"], to=F))
    body.node.append(helper.make_node("Cast", ["cond_f"], ["cond_out"], to=B))
    with pytest.raises(ConversionError, match=r"the body's cond output \(%\w+\) must be known at "
                       "compile time"):
        import_model(run_time_cond)
    branch = _body("branch", [helper.make_node("SequenceConstruct", ["x"], ["s"])], {},
                   {"s": _seq_t(F)})
    if_seq = _model([helper.make_node("ReduceMin", ["x"], ["lo"], keepdims=0),
                     helper.make_node("Cast", ["lo"], ["flag"], to=B),
                     helper.make_node("If", ["flag"], ["r"], then_branch=branch,
                                      else_branch=branch),
                     helper.make_node("ConcatFromSequence", ["r"], ["y"], axis=0)],
                    {"x": _t(F, 2)}, {"y": _t(F, 2)}, {})
    with pytest.raises(ConversionError, match=r"\(If\): subgraph 'branch' gives 's', a sequence "
                       r"or optional.*the If's condition .* must be known at compile time"):
        import_model(if_seq)
    lengths = seq_map_model()
    lengths.graph.node[1].CopyFrom(helper.make_node("SplitToSequence", ["x2"], ["s2"], axis=1))
    with pytest.raises(ConversionError, match=r"\(SequenceMap\): input 1 is a sequence of 6 "
                       "tensors, input_sequence of 3"):
        import_model(lengths)


def test_an_unrolled_model_compiles_to_c_like_onnxruntime(tmp_path: Path) -> None:
    from tests.codegen.harness import run_c

    model = seq_map_model()
    del model.graph.output[1]  # the shapes are constants: no C output of their own
    feeds = _feeds(model)
    want = _reference(model, feeds)
    graph = import_model(model)
    got = run_c(graph, feeds, tmp_path)
    assert interpret(graph, feeds).keys() == got.keys()
    for v, w in zip(graph.outputs, want, strict=True):
        assert got[v.name].shape == w.shape
        np.testing.assert_allclose(got[v.name], w, rtol=1e-6, err_msg=v.name)
