"""Reductions and ordering ops (ReduceX, ArgMax/ArgMin, CumSum, TopK): qnnc's import and
interpreter against onnx.reference on random inputs, plus the IR's canonical attributes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from compiler.errors import ConversionError
from compiler.frontend.importer import import_model
from ir.graph import Graph
from ir.interpreter import run
from ir.ops.registry import OpError, get_op

REDUCTIONS = [
    "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
    "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp",
]
# The opset where the axes became an input.
AXES_INPUT_FROM = {op: 13 if op == "ReduceSum" else 18 for op in REDUCTIONS}


def _model(
    op: str,
    feeds: dict[str, np.ndarray],
    consts: dict[str, np.ndarray],
    outputs: list[str],
    opset: int,
    **attrs: Any,
) -> Any:
    inputs = list(feeds) + list(consts)
    node = helper.make_node(op, [n if n else "" for n in inputs], outputs, **attrs)
    vin = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
           for k, v in feeds.items()]
    vout = [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outputs]
    inits = [numpy_helper.from_array(v, k) for k, v in consts.items()]
    graph = helper.make_graph([node], "t", vin, vout, initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _both(
    op: str,
    feeds: dict[str, np.ndarray],
    consts: dict[str, np.ndarray] | None = None,
    outputs: tuple[str, ...] = ("y",),
    opset: int = 18,
    **attrs: Any,
) -> tuple[Graph, list[np.ndarray], list[np.ndarray]]:
    """(IR graph, qnnc's outputs, onnx.reference's outputs) for one node."""
    model = _model(op, feeds, consts or {}, list(outputs), opset, **attrs)
    graph = import_model(model)
    got = run(graph, feeds)
    want = ReferenceEvaluator(model).run(None, feeds)
    return graph, [got[v.name] for v in graph.outputs], [np.asarray(w) for w in want]


def _same(got: list[np.ndarray], want: list[np.ndarray], rtol: float = 1e-6) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        if w.dtype.kind == "f":
            np.testing.assert_allclose(g, w, rtol=rtol, atol=1e-6)
        else:
            np.testing.assert_array_equal(g, w)


def _reduce(
    op: str, x: np.ndarray, axes: list[int] | None, keepdims: int, opset: int, noop: int = 0
) -> tuple[Graph, list[np.ndarray], list[np.ndarray]]:
    attrs: dict[str, Any] = {"keepdims": keepdims}
    consts = {}
    if opset >= AXES_INPUT_FROM[op]:
        attrs["noop_with_empty_axes"] = noop
        if axes is not None:
            consts["axes"] = np.array(axes, dtype=np.int64)
    elif axes is not None:
        attrs["axes"] = axes
    return _both(op, {"x": x}, consts, opset=opset, **attrs)


@pytest.mark.parametrize("op", REDUCTIONS)
@pytest.mark.parametrize("axes", [None, [1], [-1, 0], [0, 1, 2]])
@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("axes_as_input", [False, True])
def test_reductions_match_reference(
    op: str, axes: list[int] | None, keepdims: int, axes_as_input: bool
) -> None:
    rng = np.random.default_rng(len(op) + keepdims)
    x = rng.uniform(0.1, 2.0, size=(3, 4, 5)).astype(np.float32)  # positive for ReduceLogSum
    opset = AXES_INPUT_FROM[op] if axes_as_input else AXES_INPUT_FROM[op] - 1
    graph, got, want = _reduce(op, x, axes, keepdims, opset)
    _same(got, want, rtol=1e-5)
    (node,) = graph.nodes
    assert node.op == op
    assert node.attrs["axes"] == sorted({a % 3 for a in axes} if axes else {0, 1, 2})
    assert node.attrs["keepdims"] is bool(keepdims)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
                                "ReduceSumSquare", "ReduceMean"])
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_reductions_match_reference(op: str, dtype: type) -> None:
    x = np.random.default_rng(3).integers(-9, 9, size=(4, 3)).astype(dtype)
    _, got, want = _reduce(op, x, [1], 0, 18)
    # The spec keeps the input's type; onnx.reference widens int32 ReduceSumSquare to int64.
    assert got[0].dtype == dtype
    np.testing.assert_array_equal(got[0], want[0])


@pytest.mark.parametrize("op", ["ReduceMax", "ReduceMin"])
def test_bool_max_min(op: str) -> None:
    x = np.random.default_rng(4).integers(0, 2, size=(3, 5)).astype(bool)
    _, got, want = _reduce(op, x, [1], 1, 20)
    _same(got, want)


@pytest.mark.parametrize("op", REDUCTIONS)
def test_empty_set_reductions_give_the_identity(op: str) -> None:
    """Reducing a zero-size axis gives the reduction's identity (ReduceMean: NaN)."""
    x = np.zeros((2, 0, 4), dtype=np.float32)
    attrs = {"axes": [1], "keepdims": True}
    (y,) = get_op(op).compute([x], attrs)
    expect = {"ReduceProd": 1.0, "ReduceMax": -np.inf, "ReduceMin": np.inf,
              "ReduceLogSum": -np.inf, "ReduceLogSumExp": -np.inf, "ReduceMean": np.nan}
    assert y.shape == (2, 1, 4) and y.dtype == np.float32
    np.testing.assert_array_equal(y, np.full((2, 1, 4), expect.get(op, 0.0), np.float32))
    ints = get_op("ReduceMax").compute([np.zeros((0, 3), np.int8)], {"axes": [0],
                                                                     "keepdims": False})
    np.testing.assert_array_equal(ints[0], np.full(3, -128, np.int8))


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMax", "ReduceL2", "ReduceLogSum"])
def test_noop_with_empty_axes_reduces_nothing(op: str) -> None:
    """Each element is its own reduction: ONNX's function bodies give sqrt(x²), log(x)..."""
    x = np.random.default_rng(5).uniform(-2, 2, size=(2, 3)).astype(np.float32)
    if op == "ReduceLogSum":
        x = np.abs(x) + 0.1
    graph, got, want = _reduce(op, x, [], 1, AXES_INPUT_FROM[op], noop=1)
    _same(got, want)
    assert graph.nodes[0].attrs["axes"] == []


def test_log_sum_exp_does_not_overflow() -> None:
    x = np.array([[1000.0, 1000.0], [-1000.0, -1001.0]], dtype=np.float32)
    (y,) = get_op("ReduceLogSumExp").compute([x], {"axes": [1], "keepdims": False})
    np.testing.assert_allclose(y, [1000 + np.log(2), -1000 + np.log1p(np.exp(-1))], rtol=1e-6)


def test_half_precision_sum_matches_reference() -> None:
    x = np.random.default_rng(6).uniform(-1, 1, size=(8, 16)).astype(np.float16)
    _, got, want = _reduce("ReduceSum", x, [1], 0, 13)
    assert got[0].dtype == np.float16
    np.testing.assert_allclose(got[0], want[0], rtol=1e-2, atol=1e-2)


def test_reduce_axes_must_be_constant() -> None:
    x = np.ones((2, 3), np.float32)
    model = _model("ReduceSum", {"x": x, "axes": np.array([1], np.int64)}, {}, ["y"], 13)
    with pytest.raises(ConversionError, match="known at compile time"):
        import_model(model)


def test_reduce_infer_rejects_non_canonical_axes() -> None:
    from ir.types import DType, TensorType

    t = TensorType((2, 3), DType.f32)
    with pytest.raises(OpError, match="sorted"):
        get_op("ReduceSum").infer([t], {"axes": [1, 0], "keepdims": True})
    with pytest.raises(OpError, match="out of range"):
        get_op("ReduceSum").infer([t], {"axes": [2], "keepdims": True})
    with pytest.raises(OpError, match="bool"):
        get_op("ReduceSum").infer([TensorType((2,), DType.bool)], {"axes": [0],
                                                                   "keepdims": True})


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("last", [0, 1])
def test_arg_max_min_with_ties(op: str, axis: int, keepdims: int, last: int) -> None:
    x = np.random.default_rng(7).integers(0, 3, size=(4, 5, 3)).astype(np.float32)
    graph, got, want = _both(op, {"x": x}, opset=13, axis=axis, keepdims=keepdims,
                             select_last_index=last)
    _same(got, want)
    assert got[0].dtype == np.int64
    assert graph.nodes[0].attrs["axis"] == axis % 3


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("exclusive", [0, 1])
@pytest.mark.parametrize("reverse", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64])
def test_cumsum_matches_reference(axis: int, exclusive: int, reverse: int, dtype: type) -> None:
    x = np.random.default_rng(8).integers(-50, 50, size=(3, 4)).astype(dtype)
    graph, got, want = _both("CumSum", {"x": x}, {"axis": np.array(axis, np.int64)}, opset=14,
                             exclusive=exclusive, reverse=reverse)
    _same(got, want)
    assert graph.nodes[0].attrs == {"axis": axis % 2, "exclusive": bool(exclusive),
                                    "reverse": bool(reverse)}


@pytest.mark.parametrize("axis", [0, -1])
@pytest.mark.parametrize("largest", [0, 1])
@pytest.mark.parametrize("k", [0, 1, 3, 6])
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.uint64])
def test_top_k_with_ties_matches_reference(axis: int, largest: int, k: int, dtype: type) -> None:
    x = np.random.default_rng(9).integers(0, 4, size=(6, 6)).astype(dtype)
    graph, got, want = _both("TopK", {"x": x}, {"k": np.array([k], np.int64)},
                             outputs=("values", "indices"), opset=11, axis=axis,
                             largest=largest)
    _same(got, want)
    assert got[1].dtype == np.int64
    assert graph.nodes[0].attrs["k"] == k and graph.nodes[0].attrs["axis"] == axis % 2


def test_top_k_orders_equal_values_lowest_index_first() -> None:
    x = np.array([3, 1, 3, 2, 3, 1], dtype=np.float32)
    for largest, want in ((True, [0, 2, 4, 3]), (False, [1, 5, 3, 0])):
        vals, idx = get_op("TopK").compute(
            [x], {"k": 4, "axis": 0, "largest": largest, "sorted": True})
        np.testing.assert_array_equal(idx, want)
        np.testing.assert_array_equal(vals, x[want])


def test_top_k_attribute_form_of_opset_1() -> None:
    x = np.random.default_rng(10).uniform(size=(3, 5)).astype(np.float32)
    _, got, want = _both("TopK", {"x": x}, outputs=("v", "i"), opset=1, k=2)
    _same(got, want)


def test_top_k_rejects_k_beyond_the_axis() -> None:
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ConversionError, match="k=4"):
        import_model(_model("TopK", {"x": x}, {"k": np.array([4], np.int64)}, ["v", "i"], 11))
