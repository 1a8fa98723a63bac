"""Bit-level ops (BitwiseAnd/Or/Xor/Not, BitCast, IsNaN, IsInf): qnnc's import and
interpreter against onnx's reference evaluator; integers and bools must be equal."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from compiler.errors import ConversionError
from compiler.frontend.importer import import_model
from ir.ops.registry import OpError, get_op
from ir.types import DType, TensorType
from tests.ops.test_elementwise import check_same, onnx_model, qnnc_and_reference

rng = np.random.default_rng(5)


def ints(dtype: type, shape: tuple[int, ...]) -> np.ndarray:
    info = np.iinfo(dtype)
    return rng.integers(info.min, int(info.max) + 1, shape, dtype=dtype)


@pytest.mark.parametrize("op", ["BitwiseAnd", "BitwiseOr", "BitwiseXor"])
@pytest.mark.parametrize("dtype,sa,sb", [
    (np.int8, (2, 3), (2, 3)), (np.uint16, (2, 1, 4), (3, 1)), (np.int64, (5,), (2, 5)),
    (np.uint64, (1, 4), (4,)),
])
def test_bitwise_binary(op: str, dtype: type, sa: tuple, sb: tuple) -> None:
    got, ref = qnnc_and_reference(op, [ints(dtype, sa), ints(dtype, sb)], opset=18)
    check_same(got, ref)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.uint64])
def test_bitwise_not(dtype: type) -> None:
    got, ref = qnnc_and_reference("BitwiseNot", [ints(dtype, (3, 4))], opset=18)
    check_same(got, ref)


def test_bitwise_ops_reject_floats() -> None:
    with pytest.raises(OpError, match="integer"):
        get_op("BitwiseAnd").infer([TensorType((2,), DType.f32)] * 2, {})
    with pytest.raises(OpError, match="integer"):
        get_op("BitwiseNot").infer([TensorType((2,), DType.bool)], {})


@pytest.mark.parametrize("src,to", [
    (np.float32, np.int32), (np.int32, np.float32), (np.float64, np.uint64),
    (np.float16, np.int16), (np.int8, np.uint8), (np.bool_, np.uint8),
])
def test_bitcast(src: type, to: type) -> None:
    x = rng.standard_normal((2, 3)) * 100
    x = (x > 0) if src is np.bool_ else x.astype(src)
    to_elem = int(helper.np_dtype_to_tensor_dtype(np.dtype(to)))
    got, ref = qnnc_and_reference("BitCast", [x], opset=26, to=to_elem)
    assert got.dtype == ref.dtype and got.shape == ref.shape
    assert got.tobytes() == ref.tobytes()  # nan payloads included


def test_bitcast_rejects_a_width_change() -> None:
    from onnx import TensorProto

    model = onnx_model("BitCast", [np.zeros((2,), np.float32)], 26, to=TensorProto.INT64)
    with pytest.raises(ConversionError, match="width"):
        import_model(model)


SPECIAL = np.array([[np.nan, np.inf, -np.inf, 0.0], [-0.0, 1e4, -3.5, np.nan]])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_isnan(dtype: type) -> None:
    got, ref = qnnc_and_reference("IsNaN", [SPECIAL.astype(dtype)], opset=20)
    check_same(got, ref)


@pytest.mark.parametrize("neg,pos", [(1, 1), (0, 1), (1, 0), (0, 0)])
def test_isinf(neg: int, pos: int) -> None:
    got, ref = qnnc_and_reference("IsInf", [SPECIAL.astype(np.float32)], opset=20,
                                  detect_negative=neg, detect_positive=pos)
    check_same(got, ref)
