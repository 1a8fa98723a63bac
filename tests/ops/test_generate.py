"""ONNX ops that become constants at import (Shape, Size, Constant, ConstantOfShape, Range,
Dropout), and the folding that makes static shape arithmetic vanish from the IR."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from compiler.errors import ConversionError, UnsupportedModelError
from compiler.frontend.importer import import_model
from ir.interpreter import run
from tests.ops.test_shape import check_against_reference, ints, one_node_model, ops_of, rand


def constant_output(model: onnx.ModelProto) -> np.ndarray:
    """Import a model whose output is a constant and return that constant's data."""
    graph = import_model(model)
    assert "Shape" not in ops_of(graph) and all(n.op == "Identity" for n in graph.nodes)
    (out,) = graph.outputs
    data = run(graph, {v.name: np.zeros(v.type.shape, v.type.dtype.np) for v in graph.inputs})
    return data[out.name]


def test_shape_chain_folds_to_a_single_reshape() -> None:
    # Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])): the classic exported flatten.
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Constant", [], ["zero"],
                         value=numpy_helper.from_array(np.array(0, np.int64))),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], axis=0),
        helper.make_node("Unsqueeze", ["batch", "axes"], ["batch1"]),
        helper.make_node("Concat", ["batch1", "minus_one"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "flatten_by_shape",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 3, 4, 5])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(ints(0), "axes"),
                     numpy_helper.from_array(ints(-1), "minus_one")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    ir = import_model(model)
    assert len(ir.nodes) == 1
    (node,) = ir.nodes
    assert node.op == "Reshape" and node.attrs["shape"] == [2, 60]
    assert node.inputs == ir.inputs and not ir.constants
    x = rand(2, 3, 4, 5)
    (want,) = ReferenceEvaluator(model).run(None, {"x": x})
    np.testing.assert_array_equal(run(ir, {"x": x})["y"], want)


@pytest.mark.parametrize("start, end", [
    (None, None), (1, None), (None, -1), (-2, None), (1, 3), (-100, 100), (3, 1),
])
def test_shape_start_end(start: int | None, end: int | None) -> None:
    attrs = {k: v for k, v in (("start", start), ("end", end)) if v is not None}
    x = rand(2, 3, 4, 5)
    model = one_node_model("Shape", [x], opset=15, **attrs)
    (want,) = ReferenceEvaluator(model).run(None, {"in0": x})
    got = constant_output(model)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)


def test_size_is_an_int64_scalar() -> None:
    got = constant_output(one_node_model("Size", [rand(2, 3, 4)]))
    assert got.dtype == np.int64 and got.shape == () and got == 24


@pytest.mark.parametrize("attr, value, want", [
    ("value", numpy_helper.from_array(np.arange(6, dtype=np.int8).reshape(2, 3)),
     np.arange(6, dtype=np.int8).reshape(2, 3)),
    ("value_float", 2.5, np.array(2.5, np.float32)),
    ("value_floats", [1.0, -2.0], np.array([1.0, -2.0], np.float32)),
    ("value_int", 7, np.array(7, np.int64)),
    ("value_ints", [3, -1], np.array([3, -1], np.int64)),
])
def test_constant_attribute_forms(attr: str, value: object, want: np.ndarray) -> None:
    got = constant_output(one_node_model("Constant", [], **{attr: value}))
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_constant_rejects_strings_and_sparse_tensors() -> None:
    with pytest.raises(UnsupportedModelError, match="string"):
        import_model(one_node_model("Constant", [], value_string="hello"))
    sparse = helper.make_sparse_tensor(
        numpy_helper.from_array(np.array([1.0], np.float32), "v"),
        numpy_helper.from_array(ints(2), "i"), [4],
    )
    with pytest.raises(UnsupportedModelError, match="sparse"):
        import_model(one_node_model("Constant", [], sparse_value=sparse))


@pytest.mark.parametrize("value", [None, np.array([3], np.int32), np.array([1.5], np.float64)])
def test_constant_of_shape(value: np.ndarray | None) -> None:
    attrs = {} if value is None else {"value": numpy_helper.from_array(value)}
    shape = ints(2, 3)
    model = one_node_model("ConstantOfShape", [shape], consts=(0,), **attrs)
    (want,) = ReferenceEvaluator(model).run(None, {})
    got = constant_output(model)
    assert got.dtype == want.dtype == (np.float32 if value is None else value.dtype)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("start, limit, delta", [
    (np.int64(0), np.int64(10), np.int64(3)),
    (np.int32(10), np.int32(-2), np.int32(-4)),
    (np.float32(1.0), np.float32(2.0), np.float32(0.25)),
    (np.float32(1.0), np.float32(0.0), np.float32(0.5)),  # empty
])
def test_range_of_constants(start: np.generic, limit: np.generic, delta: np.generic) -> None:
    inputs = [np.array(v) for v in (start, limit, delta)]
    model = one_node_model("Range", inputs, consts=(0, 1, 2), opset=11)
    (want,) = ReferenceEvaluator(model).run(None, {})
    got = constant_output(model)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_range_of_runtime_values_is_a_clear_error() -> None:
    inputs = [np.array(v, np.float32) for v in (0.0, 5.0, 1.0)]
    with pytest.raises(ConversionError, match="'limit'.*known at compile time"):
        import_model(one_node_model("Range", inputs, consts=(0, 2), opset=11))


@pytest.mark.parametrize("opset", [12, 13])
def test_dropout_is_identity_with_all_true_mask(opset: int) -> None:
    x = rand(3, 4)
    ratio = np.array(0.3, np.float32)  # a runtime ratio: irrelevant in inference
    g = check_against_reference("Dropout", [x, ratio], opset=opset, n_outputs=2)
    assert all(n.op == "Identity" for n in g.nodes)
    mask = run(g, {"in0": x, "in1": ratio})[g.outputs[1].name]
    assert mask.dtype == np.bool_ and mask.all() and mask.shape == x.shape


def test_dropout_mask_before_opset_10_has_the_input_type() -> None:
    # Dropout-7's schema types the mask T (the data's type); the reference evaluator
    # returns bool regardless, so the spec is the oracle here.
    x = rand(3, 4)
    g = import_model(one_node_model("Dropout", [x], opset=7, n_outputs=2, ratio=0.2))
    got = run(g, {"in0": x})
    np.testing.assert_array_equal(got[g.outputs[0].name], x)
    mask = got[g.outputs[1].name]
    assert mask.dtype == np.float32 and (mask == 1).all()


def test_dropout_refuses_training_mode() -> None:
    inputs = [rand(2, 2), np.array(0.5, np.float32), np.array(True)]
    with pytest.raises(UnsupportedModelError, match="training mode"):
        import_model(one_node_model("Dropout", inputs, consts=(1, 2), opset=13))
    inputs[2] = np.array(False)
    g = check_against_reference("Dropout", inputs, consts=(1, 2), opset=13)
    assert ops_of(g) == ["Identity"]
