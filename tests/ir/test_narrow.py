"""The narrow element types (bfloat16, float8, float4, int4, int2): conversions against
onnx.reference, the IR text round trip, and where they may not go."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from compiler.frontend.importer import import_model
from ir.build import make_node
from ir.graph import Graph
from ir.interpreter import run
from ir.ops.registry import OpError
from ir.text import parse_graph, print_graph
from ir.types import DType, TensorType

NARROW = [d for d in DType if d.is_storage_only or d is DType.bf16]
ONNX_OF = {
    DType.bf16: TensorProto.BFLOAT16, DType.f8e4m3fn: TensorProto.FLOAT8E4M3FN,
    DType.f8e4m3fnuz: TensorProto.FLOAT8E4M3FNUZ, DType.f8e5m2: TensorProto.FLOAT8E5M2,
    DType.f8e5m2fnuz: TensorProto.FLOAT8E5M2FNUZ, DType.f8e8m0: TensorProto.FLOAT8E8M0,
    DType.f4e2m1: TensorProto.FLOAT4E2M1, DType.i4: TensorProto.INT4,
    DType.u4: TensorProto.UINT4, DType.i2: TensorProto.INT2, DType.u2: TensorProto.UINT2,
}

# values around every boundary: ties, overflow, subnormals, infinities, NaN, signs
EDGE = np.array([0.0, -0.0, 0.3, 1.5, 2.5, -2.5, 3.75, 7.0, 57344.0, 60000.0, 1e6, -1e6,
                 448.0, 464.0, 240.0, 1e-9, 2.0**-130, 6.0, 7.5, np.inf, -np.inf, np.nan,
                 0.75, 1.25, 3.0, 1e38, 2.0**127 * 1.5, -3.0], np.float32)


def _cast_model(to: int, attrs: dict) -> onnx.ModelProto:
    node = helper.make_node("Cast", ["x"], ["y"], to=to, **attrs)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                     [EDGE.size])],
                          [helper.make_tensor_value_info("y", to, [EDGE.size])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 25)])


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal bit patterns, read through float64 (every narrow value widens exactly)."""
    fa, fb = a.astype(np.float64), b.astype(np.float64)
    return bool(np.array_equal(fa, fb, equal_nan=True)) and a.dtype == b.dtype


@pytest.mark.parametrize("dtype", [d for d in NARROW if d.is_float])
@pytest.mark.parametrize("saturate", [0, 1])
def test_cast_to_narrow_float_matches_onnx_reference(dtype: DType, saturate: int) -> None:
    modes = ["up", "down", "nearest"] if dtype is DType.f8e8m0 else ["up"]
    for mode in modes:
        attrs = {"saturate": saturate}
        if dtype is DType.f8e8m0:
            attrs["round_mode"] = mode
        model = _cast_model(ONNX_OF[dtype], attrs)
        want = ReferenceEvaluator(model).run(None, {"x": EDGE})[0]
        got = run(import_model(model), {"x": EDGE})["y"]
        assert _same(got, want), (dtype, saturate, mode, got, want)


@pytest.mark.parametrize("dtype", [d for d in NARROW if not d.is_float])
def test_quantize_dequantize_narrow_ints(dtype: DType) -> None:
    x = np.linspace(-9, 9, 37, dtype=np.float32)
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])]
    z = helper.make_tensor("z", ONNX_OF[dtype], [], [1])
    s = helper.make_tensor("s", TensorProto.FLOAT, [], [0.75])
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                     [37])],
                          [helper.make_tensor_value_info("q", ONNX_OF[dtype], [37]),
                           helper.make_tensor_value_info("y", TensorProto.FLOAT, [37])],
                          initializer=[s, z])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 25)])
    want = ReferenceEvaluator(model).run(None, {"x": x})
    got = run(import_model(model), {"x": x})
    assert _same(got["q"], want[0])
    np.testing.assert_array_equal(got["y"], want[1])


@pytest.mark.parametrize("dtype", NARROW)
def test_narrow_constants_round_trip_through_text(dtype: DType) -> None:
    g = Graph()
    vals = [0.5, -1.5, 2.0, 0.0, np.nan] if dtype.is_float else [0, 1, 1, 0, 1]
    c = g.add_const(np.array(vals, np.float32).astype(dtype.np), "c")
    g.outputs = [make_node(g, "Cast", [c], {"to": "f32"}).outputs[0]]
    text = print_graph(g)
    again = parse_graph(text)
    assert print_graph(again) == text
    assert _same(again.constants[0].data, c.data)


def test_storage_only_types_reach_no_arithmetic() -> None:
    g = Graph()
    x = g.add_input("x", TensorType((3,), DType.f8e4m3fn))
    with pytest.raises(OpError, match="only holds data.*Cast or DequantizeLinear"):
        make_node(g, "Add", [x, x])
    # data movement and conversion take them
    t = make_node(g, "Transpose", [x], {"perm": [0]}).outputs[0]
    assert make_node(g, "Cast", [t], {"to": "f32"}).outputs[0].type.dtype is DType.f32


def test_c_generator_refuses_narrow_types_by_name(tmp_path) -> None:
    from targets.c import CodegenError, generate

    g = Graph()
    x = g.add_input("x", TensorType((3, 2), DType.f8e4m3fn))
    g.outputs = [make_node(g, "Transpose", [x], {"perm": [1, 0]}, name="t").outputs[0]]
    with pytest.raises(CodegenError, match="f8e4m3fn"):
        generate(g)
