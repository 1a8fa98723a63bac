"""Broadcasting binary and variadic ops against onnx's reference evaluator, on random shapes
that broadcast (hypothesis), plus the integer semantics ONNX pins down: truncating Div, the
two Mod conventions, Pow with mixed element types, BitShift past the bit width.

Integers and bools compare exactly; floats with rtol 1e-6 (a few float32 ulp).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes
from onnx import helper
from onnx.reference import ReferenceEvaluator

from compiler.frontend.importer import import_model
from ir.interpreter import run
from ir.ops.registry import OpError, get_op
from ir.types import DType, TensorType
from tests.ops.test_elementwise import check_same, onnx_model, qnnc_and_reference

ARITH = ["Add", "Sub", "Mul", "Div", "Max", "Min", "Mod", "Pow"]
COMPARE = ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"]
LOGIC = ["And", "Or", "Xor"]


def random_array(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return rng.random(shape) > 0.5
    if dt.kind == "f":
        return rng.uniform(-5, 5, shape).astype(dt)
    lo = -20 if dt.kind == "i" else 0
    return rng.integers(lo, 20, shape).astype(dt)


def nonzero(x: np.ndarray) -> np.ndarray:
    """``x`` with zeros replaced, for divisors (ONNX leaves integer x / 0 undefined)."""
    return np.where(x == 0, np.ones_like(x), x)


shapes2 = mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4)


@settings(max_examples=25, deadline=None)
@given(shapes=shapes2, seed=st.integers(0, 2**16), op=st.sampled_from(ARITH),
       dtype=st.sampled_from([np.float32, np.int32, np.int64, np.uint8]))
def test_arithmetic_broadcasts_like_reference(shapes: Any, seed: int, op: str, dtype: Any) -> None:
    rng = np.random.default_rng(seed)
    a, b = (random_array(rng, s, dtype) for s in shapes.input_shapes)
    if op in ("Div", "Mod"):
        b = nonzero(b)
    if op == "Pow":
        a = np.abs(a) % 5 + (1 if np.dtype(dtype).kind != "f" else 0.5)
        b = np.abs(b) % 4  # non-negative integer exponents: numpy rejects negative ones
    got, ref = qnnc_and_reference(op, [a, b], 15 if op == "Pow" else 14)
    assert got.shape == shapes.result_shape
    check_same(got, ref)


@settings(max_examples=25, deadline=None)
@given(shapes=shapes2, seed=st.integers(0, 2**16), op=st.sampled_from(COMPARE),
       dtype=st.sampled_from([np.float32, np.int8, np.uint16, np.int64]))
def test_comparisons_broadcast_like_reference(
    shapes: Any, seed: int, op: str, dtype: Any
) -> None:
    rng = np.random.default_rng(seed)
    # values from a small range, so that ties (where <, <= and == differ) are common
    a, b = (rng.integers(0, 4, s).astype(dtype) for s in shapes.input_shapes)
    got, ref = qnnc_and_reference(op, [a, b], 16)
    assert got.dtype == np.bool_
    check_same(got, ref)


@settings(max_examples=15, deadline=None)
@given(shapes=shapes2, seed=st.integers(0, 2**16), op=st.sampled_from(LOGIC + ["Equal"]))
def test_bool_ops_broadcast_like_reference(shapes: Any, seed: int, op: str) -> None:
    rng = np.random.default_rng(seed)
    a, b = (random_array(rng, s, np.bool_) for s in shapes.input_shapes)
    check_same(*qnnc_and_reference(op, [a, b], 16))


@settings(max_examples=20, deadline=None)
@given(shapes=mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=4, max_side=3),
       seed=st.integers(0, 2**16), dtype=st.sampled_from([np.float32, np.int64, np.bool_]))
def test_where_broadcasts_three_ways(shapes: Any, seed: int, dtype: Any) -> None:
    rng = np.random.default_rng(seed)
    sc, sx, sy = shapes.input_shapes
    cond = random_array(rng, sc, np.bool_)
    x, y = random_array(rng, sx, dtype), random_array(rng, sy, dtype)
    got, ref = qnnc_and_reference("Where", [cond, x, y], 16)
    assert got.shape == shapes.result_shape
    check_same(got, ref)


@settings(max_examples=30, deadline=None)
@given(data=st.data(), n=st.integers(1, 4), op=st.sampled_from(["Sum", "Mean", "Max", "Min"]),
       seed=st.integers(0, 2**16))
def test_variadic_ops(data: st.DataObject, n: int, op: str, seed: int) -> None:
    shapes = data.draw(
        mutually_broadcastable_shapes(num_shapes=n, min_dims=0, max_dims=3, max_side=3)
    )
    rng = np.random.default_rng(seed)
    dtype = np.float32 if op == "Mean" else data.draw(st.sampled_from([np.float32, np.int32]))
    xs = [random_array(rng, s, dtype) for s in shapes.input_shapes]
    got, ref = qnnc_and_reference(op, xs, 13, oracle="onnxruntime" if op == "Mean" else "")
    assert got.shape == shapes.result_shape
    check_same(got, ref)


def test_variadic_lowers_to_a_binary_chain_named_after_the_output() -> None:
    xs = [np.ones((2, 3), np.float32)] * 3
    graph = import_model(onnx_model("Mean", xs, 13))
    assert [n.op for n in graph.nodes] == ["Add", "Add", "Div"]
    assert graph.outputs[0].name == "out0"


# -- integer semantics -----------------------------------------------------------------
def test_integer_div_truncates_toward_zero() -> None:
    a = np.array([-7, 7, -7, 7, -6, 0, -128], np.int8)
    b = np.array([2, 2, -2, -2, 3, -5, 1], np.int8)
    got, ref = qnnc_and_reference("Div", [a, b], 14)
    np.testing.assert_array_equal(got, [-3, 3, 3, -3, -2, 0, -128])
    check_same(got, ref)


@pytest.mark.parametrize("fmod", [0, 1])
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float32, np.float64])
def test_mod_sign_conventions(fmod: int, dtype: Any) -> None:
    a = np.array([-7, 7, -7, 7, 6, -6], dtype)
    b = np.array([3, 3, -3, -3, 3, -3], dtype)
    got, ref = qnnc_and_reference("Mod", [a, b], 13, fmod=fmod)
    want = [2, 1, -1, -2, 0, 0] if fmod == 0 else [-1, 1, -1, 1, 0, 0]
    np.testing.assert_array_equal(got, np.array(want, dtype))
    check_same(got, ref)


@pytest.mark.parametrize("base,exp", [
    (np.float32, np.int64), (np.int64, np.float32), (np.float32, np.int32),
    (np.int32, np.float32), (np.float32, np.uint32), (np.int32, np.int32),
    (np.float16, np.float32), (np.uint8, np.int64),
])
def test_pow_keeps_the_base_type(base: Any, exp: Any) -> None:
    a = np.array([1, 2, 3, 4, 5], base)
    b = np.array([0, 1, 2, 3, 2], exp)
    got, ref = qnnc_and_reference("Pow", [a, b], 15)
    assert got.dtype == np.dtype(base)
    check_same(got, ref)


def test_pow_integer_edges() -> None:
    pw = get_op("Pow")
    a = np.array([2, -1, -1, 1, 5, 3, 2], np.int32)
    b = np.array([-1, -3, -2, -7, 0, 2, 31], np.int32)
    (got,) = pw.compute([a, b], {})
    np.testing.assert_array_equal(got, [0, -1, 1, 1, 1, 9, np.int32(-(2**31))])  # 2**31 wraps
    (got,) = pw.compute([np.array([2, 9], np.int64), np.array([0.5, 0.5], np.float32)], {})
    np.testing.assert_array_equal(got, [1, 3])  # trunc(sqrt(2)), sqrt(9)


@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.uint64])
def test_bitshift_including_out_of_range_amounts(direction: str, dtype: Any) -> None:
    bits = np.dtype(dtype).itemsize * 8
    signed = np.dtype(dtype).kind == "i"
    a = np.array([1, 3, 64, -5 if signed else 250, -1 if signed else 7, 12], dtype)
    b = np.array([1, 2, 1, 1, bits, -1 if signed else bits + 3], dtype)
    got, ref = qnnc_and_reference("BitShift", [a, b], 28, direction=direction)
    check_same(got, ref)
    if signed and direction == "RIGHT":
        assert got[4] == -1  # sign fill of a negative x shifted by >= the width


def test_bitshift_needs_a_direction() -> None:
    model = onnx_model("BitShift", [np.ones(2, np.uint8)] * 2, 11, direction="UP")
    with pytest.raises(Exception, match="LEFT"):
        import_model(model)


# -- PRelu -----------------------------------------------------------------------------
@pytest.mark.parametrize("slope_shape", [(), (1,), (3, 1, 1), (4, 5), (2, 3, 4, 5)])
def test_prelu_slope_broadcasts_to_x(slope_shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    slope = rng.uniform(0, 1, slope_shape).astype(np.float32)
    got, ref = qnnc_and_reference("PRelu", [x, slope], 16)
    check_same(got, ref)


def test_prelu_slope_must_not_grow_x() -> None:
    with pytest.raises(OpError, match="does not broadcast"):
        get_op("PRelu").infer([TensorType((3,), DType.f32), TensorType((2, 3), DType.f32)], {})


# -- type errors -----------------------------------------------------------------------
def test_mismatched_types_and_shapes_are_rejected() -> None:
    add = get_op("Add")
    with pytest.raises(OpError, match="one element type"):
        add.infer([TensorType((2,), DType.f32), TensorType((2,), DType.i32)], {})
    with pytest.raises(OpError, match="do not broadcast"):
        add.infer([TensorType((2, 3), DType.f32), TensorType((4,), DType.f32)], {})
    with pytest.raises(OpError, match="bool"):
        get_op("And").infer([TensorType((2,), DType.i8), TensorType((2,), DType.i8)], {})
    with pytest.raises(OpError, match="condition"):
        get_op("Where").infer([TensorType((2,), DType.i8), TensorType((2,), DType.f32),
                               TensorType((2,), DType.f32)], {})


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_float_division_by_zero_follows_ieee() -> None:
    a = np.array([1.0, -1.0, 0.0], np.float32)
    got, ref = qnnc_and_reference("Div", [a, np.zeros(3, np.float32)], 14)
    np.testing.assert_array_equal(got, [np.inf, -np.inf, np.nan])
    assert got.dtype == np.float32


def test_ops_fold_when_every_input_is_constant() -> None:
    a = np.array([1, 2, 3], np.int64)
    node = helper.make_node("Mul", ["a", "b"], ["y"])
    graph = helper.make_graph(
        [node], "t", [], [helper.make_tensor_value_info("y", 7, None)],
        [helper.make_tensor("a", 7, [3], a), helper.make_tensor("b", 7, [], [4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    g = import_model(model)
    assert not any(n.op == "Mul" for n in g.nodes)
    np.testing.assert_array_equal(run(g, {})[g.outputs[0].name], [4, 8, 12])
    np.testing.assert_array_equal(ReferenceEvaluator(model).run(None, {})[0], [4, 8, 12])
