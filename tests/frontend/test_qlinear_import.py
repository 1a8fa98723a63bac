"""QOperator models (ONNX's QLinear*/Integer ops and onnxruntime's com.microsoft QLinear*)
imported by qnnc and run by its interpreter, against onnxruntime on the same model.

Requantisation rounding differs by design (qnnc: fixed-point, ties up; onnxruntime: float,
ties to even, or its own fixed point), so integer outputs must agree within one quantisation
step on every element; the fraction that is bit-exact is printed (pytest -s shows it).

Weights of the u8 x i8 convolutions use 7 bits ([-64, 63]): onnxruntime's x86 u8s8 kernels
add pairs of products in saturating int16 (as its quantisation tool's reduce_range avoids),
so full-range weights make onnxruntime itself wrong; there, qnnc is checked against the onnx
reference evaluator instead, which it matches exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from onnx import ModelProto, TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from compiler.errors import UnsupportedModelError
from compiler.frontend.importer import import_model
from compiler.frontend.loader import check_model
from ir.interpreter import run

MS = "com.microsoft"


def _model(nodes: list[Any], feeds: dict[str, np.ndarray], consts: dict[str, np.ndarray],
           outputs: list[str]) -> ModelProto:
    vin = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
           for k, v in feeds.items()]
    vout = [helper.make_empty_tensor_value_info(o) for o in outputs]
    inits = [numpy_helper.from_array(v, k) for k, v in consts.items()]
    g = helper.make_graph(nodes, "q", vin, vout, initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                            helper.make_opsetid(MS, 1)])
    return m


def compare(m: ModelProto, feeds: dict[str, np.ndarray], label: str) -> float:
    """Every integer output within 1 of onnxruntime's; returns (and prints) the bit-exact
    fraction."""
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, feeds)
    graph = import_model(m)
    got = run(graph, feeds)
    same = total = 0
    for v, w in zip(graph.outputs, want):
        g = got[v.name]
        assert g.dtype == w.dtype and g.shape == w.shape, (label, g.dtype, g.shape, w.shape)
        diff = np.abs(g.astype(np.int64) - w.astype(np.int64))
        assert diff.max(initial=0) <= 1, f"{label}: off by {diff.max()}"
        same += int((diff == 0).sum())
        total += diff.size
    frac = same / max(total, 1)
    print(f"{label}: {100 * frac:.1f}% of {total} elements bit-exact with onnxruntime")
    return frac


def s(v: float) -> np.ndarray:
    return np.array(v, np.float32)


def u8(v: int) -> np.ndarray:
    return np.array(v, np.uint8)


def i8(v: int) -> np.ndarray:
    return np.array(v, np.int8)


@pytest.mark.parametrize("seed", range(3))
def test_qlinearconv_per_channel_groups(seed: int) -> None:
    rng = np.random.default_rng(seed)
    g = [1, 2, 4][seed]
    x = rng.integers(0, 256, (1, 4, 9, 8)).astype(np.uint8)
    w = rng.integers(-64, 64, (8, 4 // g, 3, 3)).astype(np.int8)
    consts = {
        "xs": s(0.02), "xz": u8(120), "w": w,
        "ws": rng.uniform(0.002, 0.01, 8).astype(np.float32), "wz": np.zeros(8, np.int8),
        "ys": s(0.15), "yz": u8(60), "b": rng.integers(-3000, 3000, 8).astype(np.int32),
    }
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"],
                            ["y"], group=g, pads=[1, 0, 1, 2], strides=[2, 1],
                            dilations=[1, 2])
    assert compare(_model([node], {"x": x}, consts, ["y"]), {"x": x}, f"QLinearConv g={g}") > 0.9


def test_qlinearconv_full_range_weights_match_onnx_reference() -> None:
    rng = np.random.default_rng(8)
    x = rng.integers(0, 256, (1, 4, 9, 8)).astype(np.uint8)
    consts = {
        "xs": s(0.02), "xz": u8(120), "w": rng.integers(-127, 128, (8, 4, 3, 3)).astype(np.int8),
        "ws": rng.uniform(0.002, 0.01, 8).astype(np.float32), "wz": np.zeros(8, np.int8),
        "ys": s(0.15), "yz": u8(60), "b": rng.integers(-3000, 3000, 8).astype(np.int32),
    }
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"],
                            ["y"], pads=[1, 0, 1, 2], strides=[2, 1], dilations=[1, 2])
    m = _model([node], {"x": x}, consts, ["y"])
    (want,) = ReferenceEvaluator(m).run(None, {"x": x})
    graph = import_model(m)
    got = run(graph, {"x": x})[graph.outputs[0].name]
    diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
    assert diff.max() <= 1
    print(f"QLinearConv full-range: {100 * (diff == 0).mean():.1f}% bit-exact with onnx.reference")


def test_qlinearmatmul_constant_and_activation_operands() -> None:
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (2, 3, 16)).astype(np.uint8)
    b = rng.integers(-128, 128, (16, 5)).astype(np.int8)
    consts = {"as": s(0.03), "az": u8(128), "b": b, "bs": s(0.01), "bz": i8(0),
              "ys": s(0.07), "yz": u8(100)}
    fc = helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"],
                          ["y"])
    m = _model([fc], {"a": a}, consts, ["y"])
    assert [n.op for n in import_model(m).nodes] == ["Retype", "QLinear"]
    compare(m, {"a": a}, "QLinearMatMul (weight)")
    a2 = rng.integers(0, 256, (3, 8, 4)).astype(np.uint8)
    b2 = rng.integers(0, 256, (3, 4, 6)).astype(np.uint8)
    consts2 = {"as": s(0.03), "az": u8(128), "bs": s(0.05), "bz": u8(7), "ys": s(0.2),
               "yz": u8(3)}
    mm = helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"],
                          ["y"])
    m2 = _model([mm], {"a": a2, "b": b2}, consts2, ["y"])
    assert "QMatMul" in [n.op for n in import_model(m2).nodes]
    compare(m2, {"a": a2, "b": b2}, "QLinearMatMul (activations)")


def test_integer_ops() -> None:
    rng = np.random.default_rng(9)
    x = rng.integers(0, 256, (1, 3, 6, 6)).astype(np.uint8)
    w = rng.integers(0, 256, (4, 3, 2, 2)).astype(np.uint8)
    a = rng.integers(0, 256, (5, 7)).astype(np.uint8)
    b = rng.integers(0, 256, (7, 3)).astype(np.uint8)
    nodes = [
        helper.make_node("ConvInteger", ["x", "w", "xz", "wz"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("MatMulInteger", ["a", "b", "az", "bz"], ["m"]),
        helper.make_node("DynamicQuantizeLinear", ["f"], ["q", "qs", "qz"]),
    ]
    f = rng.normal(size=(4, 5)).astype(np.float32)
    consts = {"w": w, "xz": u8(128), "wz": u8(3), "az": u8(10), "bz": u8(200)}
    feeds = {"x": x, "a": a, "b": b, "f": f}
    m = _model(nodes, feeds, consts, ["c", "m", "q", "qs", "qz"])
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, feeds)
    graph = import_model(m)
    got = run(graph, feeds)
    for v, w_ in zip(graph.outputs, want):
        np.testing.assert_array_equal(got[v.name], w_)  # no requantisation: exact


def test_ms_add_mul_broadcast() -> None:
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (2, 3, 4, 4)).astype(np.uint8)
    b = rng.integers(0, 256, (1, 3, 1, 4)).astype(np.uint8)
    consts = {"as": s(0.05), "az": u8(100), "bs": s(0.013), "bz": u8(17),
              "cs": s(0.06), "cz": u8(90)}
    ins = ["a", "as", "az", "b", "bs", "bz", "cs", "cz"]
    nodes = [helper.make_node("QLinearAdd", ins, ["y"], domain=MS),
             helper.make_node("QLinearMul", ins, ["z"], domain=MS)]
    m = _model(nodes, {"a": a, "b": b}, consts, ["y", "z"])
    del m.graph.output[:]
    m.graph.output.extend([helper.make_tensor_value_info(o, TensorProto.UINT8, a.shape)
                           for o in ("y", "z")])
    check_model(m)  # the loader accepts the com.microsoft opset import
    compare(m, {"a": a, "b": b}, "QLinearAdd + QLinearMul")


@pytest.mark.parametrize("include_pad", [0, 1])
def test_ms_pools(include_pad: int) -> None:
    rng = np.random.default_rng(include_pad)
    x = rng.integers(0, 256, (1, 3, 7, 7)).astype(np.uint8)
    consts = {"xs": s(0.1), "xz": u8(128), "ys": s(0.09), "yz": u8(120)}
    nodes = [
        helper.make_node("QLinearAveragePool", ["x", "xs", "xz", "ys", "yz"], ["p"],
                         domain=MS, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                         count_include_pad=include_pad),
        helper.make_node("QLinearGlobalAveragePool", ["x", "xs", "xz", "ys", "yz"], ["g"],
                         domain=MS),
    ]
    compare(_model(nodes, {"x": x}, consts, ["p", "g"]), {"x": x},
            f"QLinearAveragePool(count_include_pad={include_pad}) + global")


def test_ms_concat_sigmoid_leakyrelu() -> None:
    rng = np.random.default_rng(4)
    x = rng.integers(-128, 128, (1, 2, 3, 3)).astype(np.int8)
    y = rng.integers(-128, 128, (1, 3, 3, 3)).astype(np.int8)
    consts = {"xs": s(0.05), "xz": i8(3), "ys": s(0.08), "yz": i8(-4), "os": s(0.08),
              "oz": i8(-4), "ss": s(1 / 256), "sz": i8(-128), "ls": s(0.04), "lz": i8(10)}
    nodes = [
        helper.make_node("QLinearConcat", ["os", "oz", "x", "xs", "xz", "y", "ys", "yz"],
                         ["c"], domain=MS, axis=1),
        helper.make_node("QLinearSigmoid", ["x", "xs", "xz", "ss", "sz"], ["sg"], domain=MS),
        helper.make_node("QLinearLeakyRelu", ["x", "xs", "xz", "ls", "lz"], ["lr"],
                         domain=MS, alpha=0.1),
    ]
    compare(_model(nodes, {"x": x, "y": y}, consts, ["c", "sg", "lr"]), {"x": x, "y": y},
            "QLinearConcat + QLinearSigmoid + QLinearLeakyRelu")


def test_qoperator_chain() -> None:
    """conv -> maxpool (keeps the quantisation) -> add -> global pool, all in u8."""
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (1, 3, 8, 8)).astype(np.uint8)
    consts = {
        "xs": s(0.02), "xz": u8(128), "w": rng.integers(-64, 64, (4, 3, 3, 3)).astype(np.int8),
        "ws": s(0.004), "wz": i8(0), "ys": s(0.05), "yz": u8(0), "as": s(0.1), "az": u8(5),
    }
    nodes = [
        helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["c"],
                         pads=[1, 1, 1, 1]),
        helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("QLinearAdd", ["p", "ys", "yz", "p", "ys", "yz", "as", "az"], ["a"],
                         domain=MS),
        helper.make_node("QLinearGlobalAveragePool", ["a", "as", "az", "ys", "yz"], ["g"],
                         domain=MS),
    ]
    m = _model(nodes, {"x": x}, consts, ["g", "p"])
    graph = import_model(m)
    pool = next(n for n in graph.nodes if n.op == "MaxPool")
    assert pool.outputs[0].type.quant is not None
    compare(m, {"x": x}, "QOperator chain")


def test_unknown_domain_op_is_reported() -> None:
    node = helper.make_node("QLinearSoftmax", ["x"], ["y"], domain=MS)
    x = np.zeros((2, 2), np.uint8)
    with pytest.raises(UnsupportedModelError, match="com.microsoft.QLinearSoftmax"):
        import_model(_model([node], {"x": x}, {}, ["y"]))
