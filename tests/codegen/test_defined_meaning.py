"""One meaning on every path (docs/architecture.md "Defined meaning"): where ONNX leaves a
result undefined, the interpreter, the host C and the staged C of an accelerator give the
same error — at compile time when the model's constants prove it, at run time otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler.api import compile_model
from compiler.errors import ConversionError, InputError
from ir.build import make_node
from ir.graph import Graph
from ir.types import DType, TensorType

#: no target (the interpreter), the host C, and an accelerator's staged C
PATHS = (None, "host", "ascend910b")


def _gather_graph(indices: np.ndarray | None) -> Graph:
    """y = Gather(x, indices) along axis 1 of a 2x5 x; indices constant, or an input."""
    g = Graph("gather")
    x = g.add_input("x", TensorType((2, 5), DType.f32))
    idx = (g.add_const(indices, "idx") if indices is not None
           else g.add_input("idx", TensorType((3,), DType.i64)))
    g.outputs = list(make_node(g, "Gather", [x, idx], {"axis": 1}, name="pick").outputs)
    return g


@pytest.mark.parametrize("target", PATHS[:2])
def test_constant_index_out_of_range_is_a_compile_error(target: str | None,
                                                        tmp_path: Path) -> None:
    g = _gather_graph(np.array([1, 5, 0], np.int64))
    with pytest.raises(ConversionError, match=r"node 'pick' \(Gather\).*index 5 is outside "
                                              r"\[-5, 5\)"):
        compile_model(g, target=target, cache_dir=tmp_path)


@pytest.mark.parametrize("target", PATHS)
def test_run_time_index_out_of_range_is_an_input_error(target: str | None,
                                                       tmp_path: Path) -> None:
    x = np.arange(10, dtype=np.float32).reshape(2, 5)
    good = {"x": x, "idx": np.array([4, -5, 0], np.int64)}
    # the accelerators run INT8: quantised on the good feed, within a step of x
    int8 = {"precision": "int8", "calibration": [good]} if target == PATHS[2] else {}
    cm = compile_model(_gather_graph(None), target=target, cache_dir=tmp_path, **int8)
    (y,) = cm.run(None, good)
    np.testing.assert_allclose(y, x[:, [4, 0, 0]], atol=0.05 if int8 else 0)
    for bad in (5, -6):
        with pytest.raises(InputError, match=r"node 'pick' \(Gather\).*check the input data"):
            cm.run(None, {"x": x, "idx": np.array([0, bad, 1], np.int64)})


def _conv_model(weight: np.ndarray, mask: float = 0.0) -> onnx.ModelProto:
    """x -> Conv(w) -> Add(mask) -> y, opset 17."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Add", ["c", "m"], ["y"], name="mask")]
    inits = [numpy_helper.from_array(weight, "w"),
             numpy_helper.from_array(np.full((1, 2, 3, 3), mask, np.float32), "m")]
    g = helper.make_graph(nodes, "conv", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 1, 5, 5])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [1, 2, 3, 3])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("target", PATHS[:2])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinite_weight_is_a_compile_error(bad: float, target: str | None,
                                                   tmp_path: Path) -> None:
    w = np.ones((2, 1, 3, 3), np.float32)
    w[1, 0, 2, 1] = bad
    what = "NaN" if np.isnan(bad) else "an infinity"
    with pytest.raises(ConversionError, match=rf"initializer 'w', read by node 'conv' "
                                              rf"\(Conv\), holds {what} \(flat position 16"):
        compile_model(_conv_model(w), target=target, cache_dir=tmp_path)


def test_infinite_mask_is_kept_and_agrees(tmp_path: Path) -> None:
    """-inf outside a weight (an attention-style mask) is legal: same answer on both paths."""
    model = _conv_model(np.ones((2, 1, 3, 3), np.float32), mask=-np.inf)
    x = np.ones((1, 1, 5, 5), np.float32)
    want = compile_model(model).run(None, {"x": x})[0]
    got = compile_model(model, target="host", cache_dir=tmp_path).run(None, {"x": x})[0]
    assert np.isneginf(want).all()
    np.testing.assert_array_equal(got, want)


def _pool_model(pads: list[int], count_include_pad: int) -> onnx.ModelProto:
    node = helper.make_node("AveragePool", ["x"], ["y"], name="pool", kernel_shape=[2, 2],
                            pads=pads, count_include_pad=count_include_pad)
    side = 4 + pads[0] + pads[2] - 1
    g = helper.make_graph([node], "pool", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 1, 4, 4])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [1, 1, side, side])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("target", PATHS[:2])
def test_average_pool_window_all_padding_is_a_compile_error(target: str | None,
                                                            tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match=r"node 'pool' \(AveragePool\).*output position "
                                              r"0 of spatial axis 0 averages no input"):
        compile_model(_pool_model([3, 3, 3, 3], 0), target=target, cache_dir=tmp_path)


@pytest.mark.parametrize("include", [0, 1])
def test_average_pool_pads_below_the_kernel_agree(include: int, tmp_path: Path) -> None:
    """The largest legal pads (one less than the kernel): every window averages something,
    identically on the interpreter and the host C."""
    model = _pool_model([1, 1, 1, 1], include)
    x = np.random.default_rng(3).standard_normal((1, 1, 4, 4)).astype(np.float32)
    want = compile_model(model).run(None, {"x": x})[0]
    got = compile_model(model, target="host", cache_dir=tmp_path).run(None, {"x": x})[0]
    assert np.isfinite(want).all()
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
