"""Trilu, CumProd, Det and EyeLike: qnnc's import and interpreter against onnx's reference
evaluator (Det against numpy's float64 determinant, rtol 1e-5 in float32)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from compiler.errors import ConversionError
from compiler.frontend.importer import import_model
from ir.interpreter import run
from tests.ops.test_elementwise import check_same

rng = np.random.default_rng(3)


def both(op: str, feeds: dict[str, np.ndarray], consts: dict[str, np.ndarray],
         opset: int, **attrs: Any) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(the IR ops, qnnc's output, onnx.reference's output) of one node; ``consts`` are
    initializers (the inputs ONNX lets be dynamic that qnnc needs constant)."""
    names = list(feeds) + list(consts)
    node = helper.make_node(op, names, ["y"], **attrs)
    vin = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
           for k, v in feeds.items()]
    out = helper.make_tensor_value_info("y", TensorProto.UNDEFINED, None)
    inits = [numpy_helper.from_array(v, k) for k, v in consts.items()]
    model = helper.make_model(helper.make_graph([node], "t", vin, [out], initializer=inits),
                              opset_imports=[helper.make_opsetid("", opset)])
    g = import_model(model)
    got = run(g, {v.name: feeds[v.name] for v in g.inputs})[g.outputs[0].name]
    (ref,) = ReferenceEvaluator(model).run(None, feeds)
    # a constant output reaches the graph's output through an Identity
    return [n.op for n in g.nodes if n.op != "Identity"], np.asarray(got), np.asarray(ref)


@pytest.mark.parametrize("shape", [(4, 4), (2, 3, 5), (2, 1, 6, 3)])
@pytest.mark.parametrize("upper", [0, 1])
@pytest.mark.parametrize("k", [None, 0, 2, -1, 7, -9])
def test_trilu(shape: tuple, upper: int, k: int | None) -> None:
    x = rng.integers(-9, 10, shape).astype(np.int32)
    consts = {} if k is None else {"k": np.array(k, np.int64)}
    ops, got, ref = both("Trilu", {"x": x}, consts, 14, upper=upper)
    assert ops == ["Trilu"]
    check_same(got, ref)


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("exclusive,reverse", [(0, 0), (1, 0), (0, 1), (1, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.uint8])
def test_cumprod(axis: int, exclusive: int, reverse: int, dtype: type) -> None:
    x = rng.integers(1, 9, (3, 5)).astype(dtype)  # uint8 products wrap, as numpy's do
    ops, got, ref = both("CumProd", {"x": x}, {"axis": np.array(axis, np.int64)}, 26,
                         exclusive=exclusive, reverse=reverse)
    assert ops == ["CumProd"]
    check_same(got, ref)


def test_cumprod_rejects_a_bad_axis() -> None:
    with pytest.raises(ConversionError, match="axis"):
        both("CumProd", {"x": np.ones((2, 3), np.float32)}, {"axis": np.array(2, np.int64)}, 26)


@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 4), (2, 2, 1, 1), (5, 5)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_det(shape: tuple, dtype: type) -> None:
    x = rng.standard_normal(shape).astype(dtype)
    ops, got, ref = both("Det", {"x": x}, {}, 22)
    assert ops == ["Det"] and got.dtype == dtype and got.shape == shape[:-2]
    want = np.linalg.det(x.astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=1e-5 if dtype is np.float32 else 1e-12,
                               atol=1e-6 if dtype is np.float32 else 1e-13)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_det_of_a_singular_matrix_is_zero() -> None:
    x = np.array([[1, 2, 3], [2, 4, 6], [0, 1, 1]], np.float32)
    _, got, _ = both("Det", {"x": x}, {}, 22)
    assert abs(float(got)) < 1e-6


@pytest.mark.parametrize("shape,k", [((3, 3), 0), ((3, 5), 2), ((4, 2), -1), ((2, 3), 5)])
@pytest.mark.parametrize("dtype", [None, TensorProto.INT32, TensorProto.DOUBLE])
def test_eyelike_folds_to_a_constant(shape: tuple, k: int, dtype: int | None) -> None:
    attrs = {"k": k} | ({} if dtype is None else {"dtype": dtype})
    ops, got, ref = both("EyeLike", {"x": rng.standard_normal(shape).astype(np.float32)}, {},
                         22, **attrs)
    assert ops == []
    check_same(got, ref)
