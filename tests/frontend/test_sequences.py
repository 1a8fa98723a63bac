"""ONNX sequences and optionals, resolved at import (docs/architecture.md, "Sequences and
optionals"): every Sequence*/Optional* op against onnx.reference, the IR they leave behind
(tensor ops only), the errors for what cannot be resolved at compile time, and one model
compiled to C against onnxruntime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from compiler.backend import QnncBackend
from compiler.errors import ConversionError, UnsupportedModelError
from compiler.frontend.context import Opt, Seq
from compiler.frontend.importer import import_model, import_with_outputs
from ir.interpreter import run as interpret

F, I64, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL
SEQ_F = helper.make_sequence_type_proto(helper.make_tensor_type_proto(F, None))
SIMPLE_DIR = Path(onnx.__file__).parent / "backend" / "test" / "data" / "simple"
TENSOR_OPS = {"Split", "Reshape", "Concat", "Identity", "Mul", "Add", "Relu"}


def _model(nodes: list[onnx.NodeProto], inputs: dict[str, list[int]],
           outputs: dict[str, onnx.TypeProto], consts: dict[str, Any] | None = None,
           opset: int = 18) -> onnx.ModelProto:
    """Float inputs of the given shapes, int64 constants, outputs typed as given."""
    graph = helper.make_graph(
        nodes, "seq",
        [helper.make_tensor_value_info(k, F, s) for k, s in inputs.items()],
        [helper.make_value_info(k, t) for k, t in outputs.items()],
        [numpy_helper.from_array(np.asarray(v, dtype=np.int64), k)
         for k, v in (consts or {}).items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _feeds(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for i in model.graph.input:
        shape = [d.dim_value for d in i.type.tensor_type.shape.dim]
        out[i.name] = rng.standard_normal(shape).astype(np.float32)
    return out


def _same(got: Any, want: Any, where: str) -> None:
    if isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {got!r}"
        for k, (g, w) in enumerate(zip(got, want)):
            _same(g, w, f"{where}[{k}]")
        return
    if want is None:
        assert got is None, where
        return
    w = np.asarray(want)
    assert got.dtype == w.dtype and got.shape == w.shape, f"{where}: {got.dtype}{got.shape}"
    np.testing.assert_array_equal(got, w, err_msg=where)  # only moves data: exact


def _reference(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[Any]:
    """onnx.reference's outputs; onnxruntime's for models with Optional, which
    onnx.reference (1.23) wraps as a one-item list that OptionalGetElement does not unwrap."""
    if not any(n.op_type == "Optional" for n in model.graph.node):
        return ReferenceEvaluator(model).run(None, feeds)
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _check(model: onnx.ModelProto) -> None:
    """qnnc (the backend API, which gives sequences as lists) agrees with the reference."""
    onnx.checker.check_model(model, full_check=True)
    feeds = _feeds(model)
    want = _reference(model, feeds)
    got = QnncBackend.prepare(model).run(feeds)
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        _same(g, w, model.graph.output[k].name)
    graph = import_model(model)
    assert {n.op for n in graph.nodes} <= TENSOR_OPS


def _n(op: str, ins: list[str], outs: list[str], **attrs: Any) -> onnx.NodeProto:
    return helper.make_node(op, ins, outs, name=f"{op.lower()}_{outs[0]}", **attrs)


def T(*shape: int, dtype: int = F) -> onnx.TypeProto:  # noqa: N802
    """A tensor output's type."""
    return helper.make_tensor_type_proto(dtype, list(shape))


CASES = {
    "construct_at": _model(
        [_n("SequenceConstruct", ["a", "b", "c"], ["s"]),
         _n("SequenceAt", ["s", "m1"], ["y"]), _n("SequenceAt", ["s", "zero"], ["z"])],
        {"a": [2, 3], "b": [1, 3], "c": [4]}, {"y": T(4), "z": T(2, 3)}, {"m1": -1, "zero": 0}),
    "empty_insert_length": _model(
        [_n("SequenceEmpty", [], ["e"]), _n("SequenceInsert", ["e", "a"], ["s1"]),
         _n("SequenceInsert", ["s1", "b", "zero"], ["s2"]),
         _n("SequenceInsert", ["s2", "c", "m1"], ["s3"]),
         _n("SequenceLength", ["s3"], ["n"]), _n("SequenceLength", ["e"], ["n0"])],
        {"a": [2], "b": [3], "c": [1, 1]},
        {"s3": SEQ_F, "n": T(dtype=I64), "n0": T(dtype=I64)}, {"zero": 0, "m1": -1}),
    "erase": _model(
        [_n("SequenceConstruct", ["a", "b", "c"], ["s"]), _n("SequenceErase", ["s"], ["s1"]),
         _n("SequenceErase", ["s", "m3"], ["s2"]), _n("SequenceErase", ["s", "one"], ["s3"])],
        {"a": [2], "b": [3], "c": [4]}, {"s1": SEQ_F, "s2": SEQ_F, "s3": SEQ_F},
        {"m3": -3, "one": 1}),
    "split_keepdims": _model(
        [_n("SplitToSequence", ["x"], ["s"], axis=1),
         _n("SplitToSequence", ["x"], ["t"], axis=-1, keepdims=0)],
        {"x": [2, 3, 2]}, {"s": SEQ_F, "t": SEQ_F}),
    "split_sizes": _model(
        [_n("SplitToSequence", ["x", "three"], ["s"], axis=0),
         _n("SplitToSequence", ["x", "sizes"], ["t"], axis=1, keepdims=0)],
        {"x": [7, 5]}, {"s": SEQ_F, "t": SEQ_F}, {"three": 3, "sizes": [1, 4]}),
    "concat_from_sequence": _model(
        [_n("SequenceConstruct", ["a", "b"], ["s"]),
         _n("ConcatFromSequence", ["s"], ["y"], axis=-1),
         _n("ConcatFromSequence", ["s"], ["z"], axis=-1, new_axis=1),
         _n("ConcatFromSequence", ["s"], ["w"], axis=0, new_axis=1),
         _n("SequenceConstruct", ["a"], ["one"]),
         _n("ConcatFromSequence", ["one"], ["v"], axis=0, new_axis=1)],
        {"a": [2, 3], "b": [2, 3]},
        {"y": T(2, 6), "z": T(2, 3, 2), "w": T(2, 2, 3), "v": T(1, 2, 3)}),
    "optional_present_absent": _model(
        [_n("Optional", ["a"], ["o"]), _n("OptionalHasElement", ["o"], ["has"]),
         _n("OptionalGetElement", ["o"], ["y"]),
         _n("Optional", [], ["none"], type=helper.make_tensor_type_proto(F, [2])),
         _n("OptionalHasElement", ["none"], ["has_none"]),
         _n("OptionalHasElement", ["a"], ["has_tensor"])],
        {"a": [2]}, {"has": T(dtype=B), "y": T(2), "has_none": T(dtype=B),
                     "has_tensor": T(dtype=B)}),
    "optional_sequence": _model(
        [_n("SplitToSequence", ["x"], ["s"], axis=0), _n("Optional", ["s"], ["o"]),
         _n("OptionalGetElement", ["o"], ["s2"]), _n("SequenceAt", ["s2", "one"], ["y"]),
         _n("Identity", ["s2"], ["s3"]), _n("Relu", ["y"], ["r"])],
        {"x": [3, 2]}, {"r": T(1, 2), "s3": SEQ_F}, {"one": 1}),
}


@pytest.mark.parametrize("name", CASES)
def test_matches_onnx_reference(name: str) -> None:
    _check(CASES[name])


def test_sequence_outputs_become_named_tensor_outputs() -> None:
    graph, results = import_with_outputs(CASES["split_sizes"])
    s, t = results
    assert isinstance(s, Seq) and isinstance(t, Seq)
    assert [v.name for v in graph.outputs] == ["s_0", "s_1", "s_2", "t_0", "t_1"]
    assert [v.type.shape for v in t.items] == [(7, 1), (7, 4)]  # keepdims only without split
    assert [n.op for n in graph.nodes] == ["Split", "Split"]
    graph, results = import_with_outputs(CASES["optional_present_absent"])
    assert not any(isinstance(r, (Seq, Opt)) for r in results)  # all tensors, constants too
    assert graph.nodes and all(n.op == "Identity" for n in graph.nodes)


def test_onnx_sequence_models_against_their_stored_outputs() -> None:
    """onnx's own sequence models (positions fed as inputs, which the backend specialises)."""
    for k in range(1, 9):
        folder = SIMPLE_DIR / f"test_sequence_model{k}"
        model = onnx.load(folder / "model.onnx")
        data = folder / "test_data_set_0"
        ins = [numpy_helper.to_array(onnx.load_tensor(p))
               for p in sorted(data.glob("input_*.pb"))]
        outs = [numpy_helper.to_array(onnx.load_tensor(p))
                for p in sorted(data.glob("output_*.pb"))]
        got = QnncBackend.prepare(model).run(ins)
        for g, w in zip(got, outs, strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-6, err_msg=folder.name)


def _insert_model(position_is_input: bool) -> onnx.ModelProto:
    nodes = [_n("SequenceConstruct", ["a", "b"], ["s"]),
             _n("SequenceInsert", ["s", "a", "pos"], ["s2"]),
             _n("ConcatFromSequence", ["s2"], ["y"], axis=0)]
    m = _model(nodes, {"a": [2], "b": [2]}, {"y": T(6)}, {} if position_is_input else {"pos": 1})
    if position_is_input:
        m.graph.input.append(helper.make_tensor_value_info("pos", I64, []))
    return m


def test_a_position_from_the_model_inputs_is_a_clear_error() -> None:
    import_model(_insert_model(False))
    with pytest.raises(ConversionError, match=r"node 'sequenceinsert_s2' \(SequenceInsert\):"
                       r".*known at compile time.*sequence positions must be constants"):
        import_model(_insert_model(True))
    m = _model([_n("SplitToSequence", ["x", "k"], ["s"]), _n("SequenceLength", ["s"], ["n"])],
               {"x": [4]}, {"n": T(dtype=I64)})
    m.graph.input.append(helper.make_tensor_value_info("k", I64, []))
    with pytest.raises(ConversionError, match="split.*known at compile time"):
        import_model(m)


def test_what_cannot_be_resolved_at_compile_time_is_a_clear_error() -> None:
    seq_in = _model([_n("SequenceAt", ["s", "zero"], ["y"])], {}, {"y": T(2)}, {"zero": 0})
    seq_in.graph.input.append(helper.make_value_info("s", SEQ_F))
    with pytest.raises(UnsupportedModelError, match="input 's' is a sequence, not a tensor"):
        import_model(seq_in)
    cases = {
        "is a sequence, but Relu takes tensors": [
            _n("SequenceConstruct", ["a"], ["s"]), _n("Relu", ["s"], ["y"])],
        "the optional is empty": [
            _n("Optional", [], ["o"], type=helper.make_tensor_type_proto(F, [2])),
            _n("OptionalGetElement", ["o"], ["y"])],
        r"position 2 is out of range for a sequence of 2 tensors": [
            _n("SequenceConstruct", ["a", "a"], ["s"]), _n("SequenceAt", ["s", "two"], ["y"])],
        "cannot concatenate an empty sequence": [
            _n("SequenceEmpty", [], ["s"]), _n("ConcatFromSequence", ["s"], ["y"], axis=0)],
        "does not match the sequence's element type i64": [
            _n("SequenceEmpty", [], ["s"], dtype=I64), _n("SequenceInsert", ["s", "a"], ["t"]),
            _n("SequenceAt", ["t", "two"], ["y"])],
    }
    for msg, nodes in cases.items():
        with pytest.raises(ConversionError, match=msg):
            import_model(_model(nodes, {"a": [2]}, {"y": T(2)}, {"two": 2}))


def test_split_and_concat_from_sequence_compile_to_c_like_onnxruntime(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    from tests.codegen.harness import run_c

    model = _model(
        [_n("SplitToSequence", ["x", "two"], ["s"], axis=1),
         _n("SequenceAt", ["s", "m1"], ["last"]), _n("Mul", ["last", "x2"], ["twice"]),
         _n("SequenceInsert", ["s", "twice", "zero"], ["s2"]),
         _n("ConcatFromSequence", ["s2"], ["stacked"], axis=0, new_axis=1),
         _n("SplitToSequence", ["x"], ["cols"], axis=1, keepdims=0),
         _n("ConcatFromSequence", ["cols"], ["y"], axis=0)],
        {"x": [3, 6], "x2": [3, 2]}, {"stacked": T(4, 3, 2), "y": T(18)},
        {"two": 2, "m1": -1, "zero": 0})
    feeds = _feeds(model, seed=1)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, feeds)
    graph = import_model(model)
    assert {n.op for n in graph.nodes} == {"Split", "Mul", "Reshape", "Concat"}
    got = run_c(graph, feeds, tmp_path)
    assert interpret(graph, feeds).keys() == got.keys()
    for v, w in zip(graph.outputs, want, strict=True):
        assert got[v.name].shape == w.shape
        np.testing.assert_allclose(got[v.name], w, rtol=1e-6, err_msg=v.name)
