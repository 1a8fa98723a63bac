"""Normalisation and softmax-family ops, imported from one-node ONNX models and run on the
interpreter, against onnx.reference (or onnxruntime where the reference is off)."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from compiler.errors import ConversionError
from compiler.frontend.importer import import_model
from ir.graph import Graph
from ir.interpreter import run as interpret
from ir.ops.registry import OpError, get_op
from ir.types import DType, TensorType
from ir.verifier import verify

RNG = np.random.default_rng(0)


def one_node_model(
    op: str, feeds: dict[str, np.ndarray], outputs: list[str], opset: int, **attrs: Any
) -> onnx.ModelProto:
    """A model with one ``op`` node whose inputs are ``feeds`` (all graph inputs)."""
    ins = [
        helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
        for k, v in feeds.items()
    ]
    outs = [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outputs]
    node = helper.make_node(op, list(feeds), outputs, **attrs)
    graph = helper.make_graph([node], "g", ins, outs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def run_qnnc(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> tuple[Graph, list]:
    """The imported IR graph and its outputs, in the model's output order."""
    graph = import_model(model)
    verify(graph)
    got = interpret(graph, feeds)
    return graph, [got[v.name] for v in graph.outputs]


def run_both(
    op: str, feeds: dict[str, np.ndarray], outputs: list[str], opset: int, **attrs: Any
) -> tuple[Graph, list[np.ndarray], list[np.ndarray]]:
    """(imported IR graph, qnnc's outputs, onnx.reference's outputs)."""
    model = one_node_model(op, feeds, outputs, opset, **attrs)
    graph, got = run_qnnc(model, feeds)
    return graph, got, list(ReferenceEvaluator(model).run(None, feeds))


def run_ort(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    for out in model.graph.output:  # onnxruntime wants typed outputs
        out.type.tensor_type.elem_type = model.graph.input[0].type.tensor_type.elem_type
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return list(sess.run(None, feeds))


def close(got: np.ndarray, want: np.ndarray, tol: float = 1e-5) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def ops_of(graph: Graph) -> list[str]:
    return [n.op for n in graph.nodes]


def rand(*shape: int, dtype: Any = np.float32) -> np.ndarray:
    return RNG.standard_normal(shape).astype(dtype)


def bn_feeds(shape: tuple[int, ...], dtype: Any = np.float32) -> dict[str, np.ndarray]:
    c = shape[1]
    return {
        "x": rand(*shape, dtype=dtype), "s": rand(c, dtype=dtype), "b": rand(c, dtype=dtype),
        "m": rand(c, dtype=dtype), "v": RNG.uniform(0.5, 2.0, c).astype(dtype),
    }


# -- BatchNormalization ---------------------------------------------------------------------

@pytest.mark.parametrize("opset", [7, 9, 14, 15])
@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 5), (2, 4, 3, 5)])
def test_batchnorm_inference_every_opset(opset: int, shape: tuple[int, ...]) -> None:
    # onnxruntime is the oracle: onnx.reference's BatchNormalization for opsets 7-8 is broken.
    feeds = bn_feeds(shape)
    model = one_node_model("BatchNormalization", feeds, ["y"], opset, epsilon=1e-3)
    graph, got = run_qnnc(model, feeds)
    want = run_ort(model, feeds)
    assert ops_of(graph) == ["BatchNormalization"]
    assert graph.nodes[0].attrs == {"epsilon": pytest.approx(1e-3)}
    close(got[0], want[0])


def test_batchnorm_float64() -> None:
    _, got, want = run_both("BatchNormalization", bn_feeds((2, 3, 4), np.float64), ["y"], 15)
    close(got[0], want[0], 1e-12)


def test_batchnorm_training_mode_is_a_clear_error() -> None:
    model = one_node_model("BatchNormalization", bn_feeds((2, 3, 4)), ["y", "rm", "rv"], 15,
                           training_mode=1)
    with pytest.raises(ConversionError, match="training_mode=1.*inference"):
        import_model(model)


def test_batchnorm_training_outputs_before_opset14_are_a_clear_error() -> None:
    model = one_node_model("BatchNormalization", bn_feeds((2, 3, 4)), ["y", "m1", "v1"], 9)
    with pytest.raises(ConversionError, match="training mode"):
        import_model(model)


def test_batchnorm_rejects_wrong_parameter_length() -> None:
    feeds = bn_feeds((2, 3, 4))
    feeds["s"] = rand(4)
    with pytest.raises(ConversionError, match=r"scale must have shape \(3,\)"):
        import_model(one_node_model("BatchNormalization", feeds, ["y"], 15))


# -- InstanceNormalization ------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(2, 3, 7), (1, 4, 3, 5)])
def test_instancenorm(shape: tuple[int, ...]) -> None:
    c = shape[1]
    feeds = {"x": rand(*shape) * 3 + 1, "s": rand(c), "b": rand(c)}
    _, got, want = run_both("InstanceNormalization", feeds, ["y"], 6, epsilon=1e-2)
    close(got[0], want[0])


# -- LayerNormalization ---------------------------------------------------------------------

@pytest.mark.parametrize("axis", [-1, 1])
@pytest.mark.parametrize("with_bias", [True, False])
def test_layernorm_with_statistics(axis: int, with_bias: bool) -> None:
    x = rand(2, 3, 4, 5) * 2 + 0.5
    norm_shape = x.shape[axis:]
    feeds = {"x": x, "s": rand(*norm_shape)}
    if with_bias:
        feeds["b"] = rand(*norm_shape)
    graph, got, want = run_both("LayerNormalization", feeds, ["y", "mean", "inv_std"], 17,
                                axis=axis, epsilon=1e-4)
    node = graph.nodes[0]
    assert node.attrs["axis"] == axis % 4 and node.attrs["stats"] is True
    assert len(node.outputs) == 3
    for g, w in zip(got, want):
        close(g, w)
    stat_shape = x.shape[: axis % 4] + (1,) * (4 - axis % 4)
    assert got[1].shape == stat_shape


def test_layernorm_without_statistics_has_one_output() -> None:
    feeds = {"x": rand(3, 8), "s": rand(8), "b": rand(8)}
    graph, got, want = run_both("LayerNormalization", feeds, ["y"], 17)
    assert len(graph.nodes[0].outputs) == 1 and graph.nodes[0].attrs["stats"] is False
    close(got[0], want[0])


def test_layernorm_broadcast_scale() -> None:
    # Scale and B only need to broadcast unidirectionally to X.
    feeds = {"x": rand(2, 3, 4), "s": rand(1, 4), "b": rand(4)}
    _, got, want = run_both("LayerNormalization", feeds, ["y"], 17, axis=1)
    close(got[0], want[0])


def test_layernorm_float16_statistics_are_in_the_stash_type() -> None:
    feeds = {"x": rand(4, 6, dtype=np.float16), "s": rand(6, dtype=np.float16)}
    graph, got, _ = run_both("LayerNormalization", feeds, ["y", "mean", "inv_std"], 17)
    assert got[0].dtype == np.float16
    assert got[1].dtype == got[2].dtype == np.float32  # stash_type=1 (float), as ONNX infers
    xs = feeds["x"].astype(np.float32)
    want_y = (xs - xs.mean(-1, keepdims=True)) / np.sqrt(xs.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(got[0], want_y * feeds["s"].astype(np.float32), atol=1e-2)


def test_layernorm_ir_rejects_non_canonical_axis() -> None:
    with pytest.raises(OpError, match="canonical"):
        get_op("LayerNormalization").infer(
            [TensorType((2, 3), DType.f32), TensorType((3,), DType.f32)],
            {"axis": -1, "epsilon": 1e-5, "stash": "f32", "stats": False},
        )


# -- Softmax, LogSoftmax, Hardmax -----------------------------------------------------------

def run_vs_ort(op: str, x: np.ndarray, opset: int, **attrs: Any) -> tuple[Graph, np.ndarray]:
    """qnnc's graph and output, checked against onnxruntime (onnx.reference ignores the 2-D
    coercion of the softmax family before opset 13, so it cannot be the oracle here)."""
    model = one_node_model(op, {"x": x}, ["y"], opset, **attrs)
    graph, got = run_qnnc(model, {"x": x})
    close(got[0], run_ort(model, {"x": x})[0])
    return graph, got[0]


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
def test_softmax_family_opset11_and_13_differ(op: str) -> None:
    x = rand(2, 3, 4)
    g11, y11 = run_vs_ort(op, x, 11, axis=1)
    g13, y13 = run_vs_ort(op, x, 13, axis=1)
    # Opset 11 normalises over axes 1 and 2 together; opset 13 over axis 1 only.
    assert not np.allclose(y11, y13)
    assert ops_of(g11) == ["Reshape", op, "Reshape"]
    assert ops_of(g13) == [op] and g13.nodes[0].attrs == {"axis": 1}
    if op == "Softmax":
        np.testing.assert_allclose(y11.sum(axis=(1, 2)), 1, rtol=1e-6)
        np.testing.assert_allclose(y13.sum(axis=1), 1, rtol=1e-6)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
@pytest.mark.parametrize("opset", [7, 11, 13])
def test_softmax_family_default_axis(op: str, opset: int) -> None:
    run_vs_ort(op, rand(3, 4, 5), opset)


@pytest.mark.parametrize("opset", [11, 13])
def test_softmax_family_negative_axis(opset: int) -> None:
    run_vs_ort("LogSoftmax", rand(2, 3, 4, 5), opset, axis=-2)


def test_old_softmax_needs_no_reshape_when_the_trailing_axes_are_unit() -> None:
    graph, _ = run_vs_ort("Softmax", rand(2, 1, 6, 1), 11, axis=1)
    assert ops_of(graph) == ["Softmax"] and graph.nodes[0].attrs == {"axis": 2}


def test_softmax_large_values_do_not_overflow() -> None:
    x = np.array([[1000.0, 1001.0, 1002.0], [-1000.0, 0.0, 1000.0]], np.float32)
    _, got, want = run_both("Softmax", {"x": x}, ["y"], 13)
    assert np.isfinite(got[0]).all()
    close(got[0], want[0])


def test_float16_softmax_rounds_like_onnx() -> None:
    # ONNX computes in the input type; f16 models' reference outputs carry that rounding.
    x = rand(4, 3, 16, dtype=np.float16) * 4
    _, got, want = run_both("Softmax", {"x": x}, ["y"], 13)
    assert got[0].dtype == np.float16
    np.testing.assert_array_equal(got[0], want[0])


def test_float16_log_softmax_stays_finite() -> None:
    # onnx.reference takes log(softmax), which is -inf where f16 exp underflows; the IR
    # uses the stable (x - max) - log(sum(exp(x - max))).
    x = rand(4, 3, 16, dtype=np.float16) * 8
    _, got, _ = run_both("LogSoftmax", {"x": x}, ["y"], 13)
    x32 = x.astype(np.float32)
    d = x32 - x32.max(-1, keepdims=True)
    want = d - np.log(np.exp(d).sum(-1, keepdims=True))
    assert got[0].dtype == np.float16 and np.isfinite(got[0]).all()
    np.testing.assert_allclose(got[0].astype(np.float32), want, rtol=2e-3, atol=2e-3)


def test_hardmax_picks_the_first_maximum() -> None:
    x = np.array([[3.0, 1.0, 3.0], [0.0, 2.0, 2.0]], np.float32)
    _, got, _ = run_both("Hardmax", {"x": x}, ["y"], 13)
    np.testing.assert_array_equal(got[0], [[1, 0, 0], [0, 1, 0]])


def test_softmax_axis_out_of_range_is_a_clear_error() -> None:
    with pytest.raises(ConversionError, match="axis 3 is out of range"):
        import_model(one_node_model("Softmax", {"x": rand(2, 3, 4)}, ["y"], 13, axis=3))


# -- MeanVarianceNormalization, LpNormalization ---------------------------------------------

@pytest.mark.parametrize("axes", [None, [1], [-1, 0]])
def test_mean_variance_normalization(axes: list[int] | None) -> None:
    attrs = {} if axes is None else {"axes": axes}
    x = rand(3, 4, 2, 5) * 2 + 1
    _, got, want = run_both("MeanVarianceNormalization", {"x": x}, ["y"], 13, **attrs)
    close(got[0], want[0], 1e-4)


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("axis", [0, -1])
def test_lp_normalization_against_onnxruntime(p: int, axis: int) -> None:
    # onnxruntime is the oracle here: onnx.reference's L1 norm omits the absolute value.
    x = {"x": rand(3, 5)}
    model = one_node_model("LpNormalization", x, ["y"], 13, axis=axis, p=p)
    _, got = run_qnnc(model, x)
    close(got[0], run_ort(model, x)[0])


def test_lp_normalization_zero_slice_stays_zero() -> None:
    x = np.array([[0.0, 0.0], [3.0, -4.0]], np.float32)
    _, got = run_qnnc(one_node_model("LpNormalization", {"x": x}, ["y"], 13), {"x": x})
    np.testing.assert_allclose(got[0], [[0, 0], [0.6, -0.8]], rtol=1e-6)


def test_lp_normalization_rejects_p3() -> None:
    with pytest.raises(ConversionError, match="p = 1 or 2"):
        import_model(one_node_model("LpNormalization", {"x": rand(2, 2)}, ["y"], 13, p=3))


# -- GroupNormalization, RMSNormalization -------------------------------------------------


@pytest.mark.parametrize("opset", [18, 21])
def test_groupnorm_per_group_and_per_channel_params(opset: int) -> None:
    n = 3 if opset == 18 else 6  # opset 18: one scale per group; 21: one per channel
    feeds = {"x": rand(2, 6, 4, 3), "s": rand(n), "b": rand(n)}
    graph, got, want = run_both("GroupNormalization", feeds, ["y"], opset, num_groups=3,
                                epsilon=1e-3)
    assert ops_of(graph) == ["GroupNormalization"]
    close(got[0], want[0])


def test_groupnorm_params_of_the_other_opset_are_rejected() -> None:
    feeds = {"x": rand(1, 4, 3), "s": rand(4), "b": rand(4)}
    with pytest.raises(ConversionError, match=r"scale must have shape \[2\]"):
        run_qnnc(one_node_model("GroupNormalization", feeds, ["y"], 18, num_groups=2), feeds)


@pytest.mark.parametrize("axis,scale_shape", [(-1, (5,)), (1, (3, 5)), (0, (2, 3, 5))])
def test_rmsnorm(axis: int, scale_shape: tuple) -> None:
    feeds = {"x": rand(2, 3, 5), "s": rand(*scale_shape)}
    graph, got, want = run_both("RMSNormalization", feeds, ["y"], 23, axis=axis)
    assert graph.nodes[0].attrs["axis"] == axis % 3
    close(got[0], want[0])


def test_rmsnorm_float16_statistics_are_in_the_stash_type() -> None:
    x = (rand(2, 64) * 300).astype(np.float16)  # x**2 overflows f16, not the f32 stash
    feeds = {"x": x, "s": np.ones(64, np.float16)}
    _, got = run_qnnc(one_node_model("RMSNormalization", feeds, ["y"], 23), feeds)
    xs = x.astype(np.float32)
    want = (xs / np.sqrt((xs * xs).mean(axis=1, keepdims=True) + 1e-5)).astype(np.float16)
    np.testing.assert_allclose(got[0].astype(np.float32), want.astype(np.float32), rtol=2e-3,
                               atol=2e-3)
