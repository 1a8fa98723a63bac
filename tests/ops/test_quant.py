"""Cast, CastLike, QuantizeLinear and DequantizeLinear: qnnc against onnx.reference, and
property tests that hit QuantizeLinear's .5 ties (rounded to even) and its saturation edges."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from compiler.errors import ConversionError, UnsupportedModelError
from compiler.frontend.importer import import_model
from ir.graph import Graph
from ir.interpreter import run
from ir.ops.registry import OpError, get_op
from ir.types import DType, TensorType

QUANT_TYPES = [np.uint8, np.int8, np.uint16, np.int16]


def _model(
    op: str, feeds: dict[str, np.ndarray], consts: dict[str, np.ndarray | None], opset: int,
    **attrs: Any,
) -> Any:
    """One ``op`` node; a None constant is an omitted optional input."""
    names = list(feeds) + [k if v is not None else "" for k, v in consts.items()]
    while names and not names[-1]:
        names.pop()
    node = helper.make_node(op, names, ["y"], **attrs)
    vin = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
           for k, v in feeds.items()]
    vout = [helper.make_tensor_value_info("y", TensorProto.UNDEFINED, None)]
    inits = [numpy_helper.from_array(v, k) for k, v in consts.items() if v is not None]
    graph = helper.make_graph([node], "t", vin, vout, initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _both(
    op: str, feeds: dict[str, np.ndarray], consts: dict[str, np.ndarray | None] | None = None,
    opset: int = 21, ref_opset: int | None = None, **attrs: Any,
) -> tuple[Graph, np.ndarray, np.ndarray]:
    """(IR graph, qnnc's output, onnx.reference's output) for one node. ``ref_opset`` runs the
    reference at another opset where it lacks the model's (DequantizeLinear before 19)."""
    model = _model(op, feeds, consts or {}, opset, **attrs)
    graph = import_model(model)
    got = run(graph, feeds)[graph.outputs[0].name]
    ref = _model(op, feeds, consts or {}, ref_opset or opset, **attrs)
    (want,) = ReferenceEvaluator(ref).run(None, feeds)
    return graph, got, np.asarray(want)


def _exact(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


# -- Cast ---------------------------------------------------------------------------------

@pytest.mark.parametrize("to", [np.float16, np.float32, np.float64, np.int8, np.uint8,
                                np.int16, np.int32, np.int64, np.uint16, np.bool_])
def test_cast_from_float_matches_reference(to: type) -> None:
    # Values in every target's range; fractions check truncation toward zero.
    x = np.array([[-100.75, -2.5, -1.9, -0.4], [0.0, 0.6, 1.5, 99.99]], dtype=np.float32)
    if np.dtype(to).kind == "u":
        x = np.abs(x)
    _, got, want = _both("Cast", {"x": x}, opset=19, to=helper.np_dtype_to_tensor_dtype(
        np.dtype(to)))
    _exact(got, want)


def test_cast_truncates_toward_zero() -> None:
    (y,) = get_op("Cast").compute([np.array([-1.9, -0.5, 0.5, 1.9], np.float32)], {"to": "i8"})
    np.testing.assert_array_equal(y, [-1, 0, 0, 1])


@pytest.mark.parametrize("src", [np.int32, np.int64, np.uint8, np.bool_])
def test_cast_from_int_and_bool(src: type) -> None:
    x = np.array([0, 1, 2, 100], dtype=np.int64).astype(src)
    for to in (TensorProto.FLOAT, TensorProto.INT16, TensorProto.BOOL):
        _, got, want = _both("Cast", {"x": x}, opset=13, to=to)
        _exact(got, want)


def test_cast_to_the_same_type_is_no_op_and_unknown_types_are_unsupported() -> None:
    x = np.ones((2,), np.float32)
    g = import_model(_model("Cast", {"x": x}, {}, 19, to=TensorProto.FLOAT))
    assert [n.op for n in g.nodes] == ["Identity"]  # only to name the graph output
    with pytest.raises(UnsupportedModelError, match="COMPLEX64"):
        import_model(_model("Cast", {"x": x}, {}, 19, to=TensorProto.COMPLEX64))


def test_cast_like_takes_the_type_of_its_second_input() -> None:
    x = np.array([1.7, -3.2], np.float32)
    like = np.zeros((3,), np.int32)
    g, got, want = _both("CastLike", {"x": x, "like": like}, opset=15)
    _exact(got, want)
    assert [n.op for n in g.nodes] == ["Cast"]
    assert g.nodes[0].attrs == {"to": "i32", "saturate": True, "round_mode": "up"}


# -- QuantizeLinear / DequantizeLinear against the reference --------------------------------

@pytest.mark.parametrize("opset", [10, 13, 19, 21, 23, 25])
@pytest.mark.parametrize("zp_type", [np.uint8, np.int8, None])
def test_quantize_per_tensor_matches_reference(opset: int, zp_type: type | None) -> None:
    x = np.random.default_rng(opset).uniform(-300, 300, size=(2, 3, 4)).astype(np.float32)
    zp = None if zp_type is None else np.array(3, zp_type)
    _, got, want = _both("QuantizeLinear", {"x": x},
                         {"scale": np.array(1.7, np.float32), "zp": zp}, opset=opset)
    _exact(got, want)


@pytest.mark.parametrize("opset", [13, 19, 21])
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("zp_type", [np.uint8, np.int8])
def test_quantize_per_axis_matches_reference(opset: int, axis: int, zp_type: type) -> None:
    rng = np.random.default_rng(opset + axis)
    x = rng.uniform(-100, 100, size=(2, 3, 4)).astype(np.float32)
    n = x.shape[axis]
    scale = rng.uniform(0.1, 2, size=n).astype(np.float32)
    zp = rng.integers(0, 100, size=n).astype(zp_type)
    g, got, want = _both("QuantizeLinear", {"x": x}, {"scale": scale, "zp": zp}, opset=opset,
                         axis=axis)
    _exact(got, want)
    assert g.nodes[0].attrs["axis"] == axis % 3


@pytest.mark.parametrize("out", [np.uint16, np.int16, np.int8])
def test_quantize_output_dtype_without_zero_point(out: type) -> None:
    x = np.random.default_rng(1).uniform(-1e5, 1e5, size=(5, 4)).astype(np.float32)
    g, got, want = _both("QuantizeLinear", {"x": x}, {"scale": np.array(3.0, np.float32)},
                         opset=21, output_dtype=helper.np_dtype_to_tensor_dtype(np.dtype(out)))
    _exact(got, want)
    zp = g.nodes[0].inputs[2]
    assert zp.is_const and zp.type == TensorType((), DType.from_numpy(out))


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("block", [2, 3])
def test_blocked_quantize_and_dequantize(axis: int, block: int) -> None:
    rng = np.random.default_rng(block + 7 * axis)
    x = rng.uniform(-50, 50, size=(6, 5)).astype(np.float32)
    sshape = tuple(-(-d // block) if i == axis else d for i, d in enumerate(x.shape))
    scale = rng.uniform(0.2, 1.0, size=sshape).astype(np.float32)
    zp = rng.integers(-10, 10, size=sshape).astype(np.int8)
    _, q, want = _both("QuantizeLinear", {"x": x}, {"scale": scale, "zp": zp}, opset=21,
                       axis=axis, block_size=block)
    _exact(q, want)
    _, got, want = _both("DequantizeLinear", {"q": q}, {"scale": scale, "zp": zp}, opset=21,
                         axis=axis, block_size=block)
    _exact(got, want)


def test_quantize_half_input_and_half_scale() -> None:
    x = np.random.default_rng(2).uniform(-20, 20, size=(8,)).astype(np.float16)
    _, got, want = _both("QuantizeLinear", {"x": x}, {"scale": np.array(0.25, np.float16),
                                                      "zp": np.array(-4, np.int8)}, opset=19)
    _exact(got, want)


@pytest.mark.parametrize(("xt", "opset"), [
    (np.uint8, 13), (np.int8, 13), (np.uint8, 21), (np.int8, 21), (np.uint16, 21),
    (np.int16, 21),  # 16-bit types arrived in opset 21
])
@pytest.mark.parametrize("per_axis", [False, True])
def test_dequantize_matches_reference(xt: type, opset: int, per_axis: bool) -> None:
    rng = np.random.default_rng(3)
    info = np.iinfo(xt)
    x = rng.integers(info.min, info.max, size=(3, 4), endpoint=True).astype(xt)
    shape = (4,) if per_axis else ()
    scale = rng.uniform(0.01, 1, size=shape).astype(np.float32)
    zp = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(xt)
    g, got, want = _both("DequantizeLinear", {"x": x}, {"scale": scale, "zp": zp}, opset=opset,
                         ref_opset=21, axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert got.dtype == np.float32
    assert g.nodes[0].attrs == {"axis": 1 if per_axis else 0, "block_size": 0, "dtype": "f32"}


def test_dequantize_int32_without_zero_point_and_half_output() -> None:
    x = np.array([-(2**20), -7, 0, 7, 2**20], np.int32)
    _, got, want = _both("DequantizeLinear", {"x": x}, {"scale": np.array(0.5, np.float32)},
                         opset=10, ref_opset=19)
    _exact(got, want)
    _, got, want = _both("DequantizeLinear", {"x": x.astype(np.int8) // 2},
                         {"scale": np.array(0.5, np.float32)}, opset=23,
                         output_dtype=TensorProto.FLOAT16)
    _exact(got, want)


def test_quantize_converter_errors() -> None:
    x = np.ones((2, 3), np.float32)
    scale, zp = np.array(1.0, np.float32), np.array(0, np.int8)
    with pytest.raises(ConversionError, match="differs from the zero point"):
        import_model(_model("QuantizeLinear", {"x": x}, {"s": scale, "z": zp}, 21,
                            output_dtype=TensorProto.UINT8))
    with pytest.raises(ConversionError, match="cannot quantise to i32"):
        import_model(_model("QuantizeLinear", {"x": x}, {"s": scale}, 21,
                            output_dtype=TensorProto.INT32))
    with pytest.raises(ConversionError, match=r"per-axis scale must have shape \[3\]"):
        import_model(_model("QuantizeLinear", {"x": x}, {"s": np.ones(2, np.float32)}, 13))


def test_quantize_infer_rejects_bad_types() -> None:
    f = TensorType((2,), DType.f32)
    attrs = {"axis": 0, "block_size": 0, "precision": "f32"}
    with pytest.raises(OpError, match="cannot quantise to i32"):
        get_op("QuantizeLinear").infer([f, TensorType((), DType.f32),
                                        TensorType((), DType.i32)], attrs)
    with pytest.raises(OpError, match="zero point type"):
        get_op("DequantizeLinear").infer(
            [TensorType((2,), DType.u8), TensorType((), DType.f32), TensorType((), DType.i8)],
            {"axis": 0, "block_size": 0, "dtype": "f32"})


# -- Ties to even and saturation, as properties --------------------------------------------

def _round_half_even(k: np.ndarray) -> np.ndarray:
    """Where x/scale = k + 0.5 exactly, the even neighbour: k if k is even, else k + 1."""
    return np.where(k % 2 == 0, k, k + 1)


def _quantize(x: np.ndarray, scale: np.ndarray, zp: np.ndarray, axis: int) -> np.ndarray:
    model = _model("QuantizeLinear", {"x": x}, {"scale": scale, "zp": zp}, 21, axis=axis)
    got = run(import_model(model), {"x": x})["y"]
    (want,) = ReferenceEvaluator(model).run(None, {"x": x})
    _exact(got, np.asarray(want))
    return got


@settings(max_examples=150, deadline=None)
@given(
    dtype=st.sampled_from([np.uint8, np.int8]),
    ks=st.lists(st.integers(-400, 400), min_size=1, max_size=12),
    exp=st.integers(-6, 4),
    zp_frac=st.floats(0, 1),
)
def test_quantize_ties_round_to_even_then_saturate(
    dtype: type, ks: list[int], exp: int, zp_frac: float
) -> None:
    """x = (k + 0.5)·scale with a power-of-two scale, so x/scale is exactly k + 0.5."""
    info = np.iinfo(dtype)
    zp = np.array(round(info.min + zp_frac * (info.max - info.min)), dtype)
    scale = np.float32(2.0**exp)
    k = np.array(ks, np.int64)
    x = ((k + 0.5) * scale).astype(np.float32)
    got = _quantize(x, np.array(scale), zp, 1)
    want = np.clip(_round_half_even(k) + int(zp), info.min, info.max)
    np.testing.assert_array_equal(got, want)


@settings(max_examples=100, deadline=None)
@given(
    dtype=st.sampled_from([np.uint8, np.int8]),
    exps=st.lists(st.integers(-4, 3), min_size=3, max_size=3),
    zps=st.lists(st.floats(0, 1), min_size=3, max_size=3),
    offsets=st.lists(st.sampled_from([-1.5, -0.5, 0.0, 0.5, 1.5]), min_size=4, max_size=4),
)
def test_quantize_per_axis_at_the_saturation_edges(
    dtype: type, exps: list[int], zps: list[float], offsets: list[float]
) -> None:
    """Per channel, values at and half a step around both ends of the output range."""
    info = np.iinfo(dtype)
    scale = np.array([2.0**e for e in exps], np.float32)
    zp = np.array([round(info.min + f * (info.max - info.min)) for f in zps], np.int64)
    # For channel c: q = x/scale[c] + zp[c] at lo + offset and hi + offset.
    edges = np.array([[info.min - 1.5] + [info.min + o for o in offsets]
                      + [info.max + o for o in offsets] + [info.max + 1.5]])
    k = edges - zp[:, None]  # (3, 10): the value of x / scale before adding the zero point
    x = (k * scale[:, None]).astype(np.float32)
    got = _quantize(x, scale, zp.astype(dtype), 0)
    frac = k - np.floor(k)
    rounded = np.where(frac == 0.5, _round_half_even(np.floor(k)), np.rint(k))
    want = np.clip(rounded + zp[:, None], info.min, info.max)
    np.testing.assert_array_equal(got, want)
    assert got[:, 0].tolist() == [info.min] * 3 and got[:, -1].tolist() == [info.max] * 3


def test_quantize_nan_gives_the_zero_point_and_inf_saturates() -> None:
    x = np.array([np.nan, np.inf, -np.inf, 2.5], np.float32)
    attrs = {"axis": 0, "block_size": 0, "precision": "f32"}
    (y,) = get_op("QuantizeLinear").compute(
        [x, np.array(1.0, np.float32), np.array(10, np.uint8)], attrs)
    np.testing.assert_array_equal(y, [10, 255, 0, 12])
