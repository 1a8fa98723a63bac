"""Conv and ConvTranspose: one-node ONNX models imported and run on the interpreter, compared
with onnx.reference on random data; plus the canonical IR attributes the converters emit."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from compiler.frontend.importer import import_model
from ir.build import make_node
from ir.graph import Graph
from ir.interpreter import run as interpret
from ir.ops.registry import OpError
from ir.types import DType, TensorType
from ir.verifier import verify

RNG = np.random.default_rng(0)


def rand(*shape: int, dtype: Any = np.float32) -> np.ndarray:
    return RNG.standard_normal(shape).astype(dtype)


def model_of(
    op: str, inputs: dict[str, np.ndarray], consts: dict[str, np.ndarray | None],
    n_out: int = 1, opset: int = 19, **attrs: Any,
) -> onnx.ModelProto:
    """One ``op`` node; ``inputs`` are graph inputs, ``consts`` initializers (None: omitted)."""
    vi = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
          for k, v in inputs.items()]
    inits = [numpy_helper.from_array(v, k) for k, v in consts.items() if v is not None]
    names = list(inputs) + [k if v is not None else "" for k, v in consts.items()]
    while names and not names[-1]:
        names.pop()
    outs = [f"y{i}" for i in range(n_out)]
    node = helper.make_node(op, names, outs, **attrs)
    vo = [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outs]
    graph = helper.make_graph([node], "g", vi, vo, initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def run_qnnc(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> tuple[Graph, list]:
    graph = import_model(model)
    verify(graph)
    got = interpret(graph, feeds)
    return graph, [got[v.name] for v in graph.outputs]


def run_ort(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for out in m.graph.output:  # onnxruntime wants typed outputs
        out.type.tensor_type.elem_type = m.graph.input[0].type.tensor_type.elem_type
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return list(sess.run(None, feeds))


def check(op: str, inputs: dict[str, np.ndarray], consts: dict[str, np.ndarray | None],
          n_out: int = 1, opset: int = 19, rtol: float = 1e-4, atol: float = 1e-5,
          oracle: str = "reference", **attrs: Any) -> Graph:
    """Run ``op`` through qnnc and the oracle (onnx.reference, or onnxruntime where the
    reference is wrong or missing); assert equal dtypes, shapes and values."""
    model = model_of(op, inputs, consts, n_out, opset, **attrs)
    graph, got = run_qnnc(model, inputs)
    if oracle == "reference":
        want = ReferenceEvaluator(model).run(None, inputs)
    else:
        want = run_ort(model, inputs)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape, (g.dtype, g.shape, w.dtype, w.shape)
        if w.dtype.kind == "f":
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
        else:
            np.testing.assert_array_equal(g, w)
    return graph


# -- Conv ------------------------------------------------------------------------------------

CONV_CASES = [
    # (x shape, w shape, attrs)
    ((2, 4, 9, 11), (6, 2, 3, 3),
     {"group": 2, "dilations": [2, 1], "pads": [1, 0, 2, 1], "strides": [1, 2]}),
    ((1, 6, 10, 10), (6, 1, 3, 3), {"group": 6, "pads": [1, 1, 1, 1]}),  # depthwise
    ((1, 4, 8, 7), (8, 1, 3, 3), {"group": 4, "strides": [2, 2], "dilations": [1, 2]}),  # x2
    ((1, 3, 12, 12), (5, 3, 7, 7), {"strides": [2, 2], "pads": [3, 3, 3, 3]}),
    ((1, 8, 9, 9), (16, 8, 1, 1), {"strides": [2, 2]}),  # pointwise, subsampled
    ((2, 6, 5, 5), (9, 2, 1, 1), {"group": 3}),  # grouped pointwise
    ((2, 3, 17), (4, 3, 4), {"dilations": [3], "pads": [2, 1]}),  # 1-D
    ((1, 2, 5, 6, 7), (3, 2, 2, 3, 2), {"strides": [1, 2, 1], "pads": [0, 1, 1, 1, 0, 0]}),
    ((1, 3, 10, 9), (4, 3, 3, 2), {"auto_pad": "SAME_UPPER", "strides": [2, 3]}),
    ((1, 3, 10, 9), (4, 3, 4, 3), {"auto_pad": "SAME_LOWER", "strides": [3, 2]}),
    ((1, 3, 10, 9), (4, 3, 3, 3), {"auto_pad": "VALID", "strides": [2, 2]}),
]


@pytest.mark.parametrize("xs,ws,attrs", CONV_CASES)
@pytest.mark.parametrize("bias", [False, True])
def test_conv_matches_reference(xs: tuple, ws: tuple, attrs: dict, bias: bool) -> None:
    b = rand(ws[0]) if bias else None
    check("Conv", {"x": rand(*xs)}, {"w": rand(*ws), "b": b}, **attrs)


def test_conv_weight_as_runtime_input() -> None:
    check("Conv", {"x": rand(1, 4, 6, 6), "w": rand(2, 4, 3, 3)}, {}, pads=[1, 1, 1, 1])


@pytest.mark.parametrize("dtype", [np.float64, np.float16])
def test_conv_keeps_float_dtype(dtype: Any) -> None:
    check("Conv", {"x": rand(1, 3, 6, 6, dtype=dtype)}, {"w": rand(4, 3, 3, 3, dtype=dtype)},
          rtol=1e-2 if dtype == np.float16 else 1e-7, atol=1e-2 if dtype == np.float16 else 0,
          pads=[1, 1, 1, 1])


def test_conv_auto_pad_becomes_explicit_pads() -> None:
    model = model_of("Conv", {"x": rand(1, 2, 7, 7)}, {"w": rand(3, 2, 4, 4)},
                     auto_pad="SAME_LOWER", strides=[2, 2])
    graph = import_model(model)
    (node,) = graph.nodes
    # out = ceil(7/2) = 4; total pad = 3*2 + 4 - 7 = 3, the odd cell at the beginning
    assert node.attrs == {"strides": [2, 2], "pads": [2, 2, 1, 1], "dilations": [1, 1],
                          "group": 1}
    assert graph.outputs[0].type.shape == (1, 3, 4, 4)


def test_conv_integer_inputs_accumulate_exactly() -> None:
    """Integer Conv (as the quantiser's reference) sums exactly; the float64 oracle is exact
    for these magnitudes, float32 would not be."""
    g = Graph("g")
    x = g.add_input("x", TensorType((1, 4, 5, 5), DType.i32))
    wv = RNG.integers(-2000, 2000, (3, 4, 3, 3)).astype(np.int32)
    w = g.add_const(wv, "w")
    attrs = {"strides": [1, 1], "pads": [1, 1, 1, 1], "dilations": [1, 1]}
    y = make_node(g, "Conv", [x, w], attrs).outputs[0]
    g.outputs = [y]
    xv = RNG.integers(-20000, 20000, (1, 4, 5, 5)).astype(np.int32)
    got = interpret(g, {"x": xv})[y.name]
    model = model_of("Conv", {"x": xv.astype(np.float64)}, {"w": wv.astype(np.float64)},
                     pads=[1, 1, 1, 1])
    (want,) = ReferenceEvaluator(model).run(None, {"x": xv.astype(np.float64)})
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, want.astype(np.int64))


@pytest.mark.parametrize("attrs,msg", [
    ({"strides": [1, 1], "pads": [0, 0, 0, 0], "dilations": [1, 1], "group": 3}, "group"),
    ({"strides": [1], "pads": [0, 0, 0, 0], "dilations": [1, 1]}, "strides"),
    ({"strides": [1, 1], "pads": [0, 0], "dilations": [1, 1]}, "pads"),
    ({"strides": [1, 1], "pads": [0, 0, 0, 0], "dilations": [9, 9]}, "does not fit"),
])
def test_conv_infer_rejects_bad_attributes(attrs: dict, msg: str) -> None:
    g = Graph("g")
    x = g.add_input("x", TensorType((1, 4, 8, 8), DType.f32))
    w = g.add_const(rand(2, 4, 3, 3), "w")
    with pytest.raises(OpError, match=msg):
        make_node(g, "Conv", [x, w], attrs)


# -- ConvTranspose ---------------------------------------------------------------------------

CONVT_CASES = [
    ((1, 2, 4, 5), (2, 3, 3, 3), {"strides": [2, 2]}),
    ((2, 4, 3, 3), (4, 2, 3, 2), {"group": 2, "strides": [2, 3], "pads": [1, 0, 0, 1]}),
    ((1, 2, 5, 4), (2, 2, 3, 3), {"strides": [3, 2], "output_padding": [1, 1],
                                  "dilations": [2, 1]}),
    ((1, 2, 4, 4), (2, 2, 3, 3), {"strides": [2, 2], "output_shape": [10, 9]}),
    ((1, 2, 4, 4), (2, 1, 4, 4), {"strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    ((1, 3, 7), (3, 2, 3), {"strides": [2], "pads": [1, 2]}),  # 1-D
    ((1, 2, 3, 3, 3), (2, 2, 2, 2, 2), {"strides": [2, 1, 2]}),  # 3-D
]


@pytest.mark.parametrize("xs,ws,attrs", CONVT_CASES)
@pytest.mark.parametrize("bias", [False, True])
def test_conv_transpose_matches_reference(xs: tuple, ws: tuple, attrs: dict, bias: bool) -> None:
    b = rand(ws[1] * attrs.get("group", 1)) if bias else None
    # onnx.reference mis-assembles groups with more than one output channel each
    oracle = "onnxruntime" if attrs.get("group", 1) > 1 else "reference"
    check("ConvTranspose", {"x": rand(*xs)}, {"w": rand(*ws), "b": b}, oracle=oracle, **attrs)


def test_conv_transpose_output_shape_becomes_pads() -> None:
    model = model_of("ConvTranspose", {"x": rand(1, 1, 3, 3)}, {"w": rand(1, 1, 3, 3)},
                     strides=[2, 2], output_shape=[6, 7])
    (node,) = import_model(model).nodes
    # full output 2*2 + 3 = 7: one cell cropped from the beginning of H (NOTSET), none of W
    assert node.attrs["pads"] == [1, 0, 0, 0]
    assert node.attrs["output_padding"] == [0, 0]
