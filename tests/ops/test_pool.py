"""Pooling ops and LRN against onnx.reference on random data, plus the IR attributes the
converters emit (explicit pads, argmax only when the model asks for it)."""

from __future__ import annotations

import numpy as np
import pytest

from compiler.frontend.importer import import_model
from ir.build import make_node
from ir.graph import Graph
from ir.ops.registry import OpError
from ir.types import DType, TensorType
from tests.ops.test_conv import check, model_of, rand, run_qnnc

MAX_CASES = [
    ((1, 2, 7, 7), {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    ((1, 2, 8, 8), {"kernel_shape": [3, 3], "strides": [3, 3], "pads": [1, 1, 1, 1],
                    "ceil_mode": 1}),  # the last window would start in the padding
    ((2, 3, 9, 10), {"kernel_shape": [2, 3], "strides": [2, 1], "dilations": [2, 2],
                     "pads": [1, 0, 0, 2]}),
    ((1, 2, 6, 6), {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ((1, 2, 6, 7), {"kernel_shape": [2, 2], "auto_pad": "SAME_LOWER"}),
    ((1, 3, 11), {"kernel_shape": [3], "strides": [2], "ceil_mode": 1}),  # 1-D
    ((1, 2, 5, 6, 7), {"kernel_shape": [2, 2, 3], "strides": [2, 2, 2]}),  # 3-D
]


@pytest.mark.parametrize("shape,attrs", MAX_CASES)
def test_max_pool_matches_reference(shape: tuple, attrs: dict) -> None:
    check("MaxPool", {"x": rand(*shape)}, {}, **attrs)


@pytest.mark.parametrize("storage_order", [0, 1])
@pytest.mark.parametrize("attrs", [
    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
    {"kernel_shape": [2, 2], "strides": [2, 1], "dilations": [1, 2], "ceil_mode": 1},
])
def test_max_pool_indices(storage_order: int, attrs: dict) -> None:
    x = rand(2, 3, 7, 6)
    x[0, 0, 1, 1] = x[0, 0, 1, 2] = 9.0  # a tie: the first position wins
    check("MaxPool", {"x": x}, {}, n_out=2, storage_order=storage_order, **attrs)


def test_max_pool_uint8() -> None:
    x = np.random.default_rng(1).integers(0, 256, (1, 2, 6, 6)).astype(np.uint8)
    check("MaxPool", {"x": x}, {}, kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2])


def test_max_pool_without_indices_output_skips_argmax() -> None:
    model = model_of("MaxPool", {"x": rand(1, 1, 4, 4)}, {}, kernel_shape=[2, 2])
    (node,) = import_model(model).nodes
    assert node.attrs["indices"] is False and len(node.outputs) == 1
    assert node.attrs["pads"] == [0, 0, 0, 0] and node.attrs["strides"] == [1, 1]


AVG_CASES = [
    ((1, 2, 7, 7), {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    ((1, 2, 7, 8), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
                    "ceil_mode": 1}),
    ((2, 3, 9, 10), {"kernel_shape": [2, 3], "strides": [2, 1], "dilations": [2, 2],
                     "pads": [1, 0, 0, 2]}),
    ((1, 2, 6, 6), {"kernel_shape": [3, 3], "auto_pad": "SAME_LOWER", "strides": [2, 2]}),
    ((1, 2, 5, 6, 7), {"kernel_shape": [2, 3, 3], "pads": [1, 1, 1, 0, 1, 1]}),
]


@pytest.mark.parametrize("shape,attrs", AVG_CASES)
@pytest.mark.parametrize("count_include_pad", [0, 1])
def test_average_pool_matches_reference(shape: tuple, attrs: dict,
                                        count_include_pad: int) -> None:
    check("AveragePool", {"x": rand(*shape)}, {}, count_include_pad=count_include_pad,
          **attrs)


@pytest.mark.parametrize("count_include_pad", [0, 1])
def test_average_pool_ceil_mode_overhang(count_include_pad: int) -> None:
    """The last window runs 2 cells past the padded input. onnx.reference shifts every window
    by one cell here (it spreads the overhang over both ends), so onnxruntime is the oracle."""
    check("AveragePool", {"x": rand(1, 3, 11)}, {}, oracle="onnxruntime", kernel_shape=[4],
          strides=[3], pads=[2, 1], ceil_mode=1, count_include_pad=count_include_pad)


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
@pytest.mark.parametrize("shape", [(2, 3, 5), (1, 4, 3, 6), (1, 2, 3, 2, 4)])
def test_global_pools(op: str, shape: tuple) -> None:
    # onnx.reference's GlobalMaxPool only handles 2-D images
    check(op, {"x": rand(*shape)}, {}, oracle="onnxruntime" if op == "GlobalMaxPool" and
          len(shape) != 4 else "reference")


@pytest.mark.parametrize("beta", [0.6, 0.75])  # 0.75: sqrt(t) * sqrt(sqrt(t)), not pow
@pytest.mark.parametrize("size", [1, 3, 5])
def test_lrn(size: int, beta: float) -> None:
    # onnx.reference's LRN loops over the batch instead of the channels: onnxruntime it is
    check("LRN", {"x": rand(2, 7, 3, 4)}, {}, oracle="onnxruntime", opset=13, size=size,
          alpha=0.01, beta=beta, bias=2.0)


@pytest.mark.parametrize("size", [2, 4])
def test_lrn_even_size_window(size: int) -> None:
    """Even windows reach one channel further up than down (the spec's floor/ceil); no
    oracle accepts them, so the spec's formula is spelled out channel by channel."""
    x = rand(1, 6, 2, 3)
    model = model_of("LRN", {"x": x}, {}, opset=13, size=size, alpha=0.5, beta=0.75)
    (got,) = run_qnnc(model, {"x": x})[1]
    for c in range(6):
        lo, hi = max(0, c - (size - 1) // 2), min(5, c + size // 2)
        square_sum = (x[:, lo:hi + 1] ** 2).sum(axis=1)
        want = x[:, c] / (1.0 + 0.5 / size * square_sum) ** 0.75
        np.testing.assert_allclose(got[:, c], want, rtol=1e-5)


def test_pool_infer_rejects_window_larger_than_input() -> None:
    g = Graph("g")
    x = g.add_input("x", TensorType((1, 1, 3, 3), DType.f32))
    attrs = {"kernel_shape": [5, 5], "strides": [1, 1], "pads": [0, 0, 0, 0],
             "dilations": [1, 1]}
    with pytest.raises(OpError, match="does not fit"):
        make_node(g, "AveragePool", [x], attrs)


@pytest.mark.parametrize("p", [1, 2, 3])
@pytest.mark.parametrize("attrs", [
    {"kernel_shape": [2, 3], "strides": [2, 1], "dilations": [1, 2]},
    {"kernel_shape": [3], "strides": [2], "ceil_mode": 1},
])
def test_lp_pool_matches_onnxruntime(p: int, attrs: dict) -> None:
    # not onnx.reference: it computes kernel size * average, which scales a window that
    # ceil_mode lets overhang the input by (kernel size / taps inside)
    shape = (1, 2, 7, 8) if len(attrs["kernel_shape"]) == 2 else (2, 3, 10)
    check("LpPool", {"x": rand(*shape)}, {}, p=p, oracle="ort", **attrs)


@pytest.mark.parametrize("p", [1, 2, 3])
def test_global_lp_pool_matches_onnxruntime(p: int) -> None:
    check("GlobalLpPool", {"x": rand(2, 3, 4, 5)}, {}, p=p, oracle="ort")
