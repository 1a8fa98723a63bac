"""The per-channel input means calibration collects for bias correction: a convolution's
channels are axis 1 at every rank (a Conv1d's [N, C, L] too), MatMul's and Gemm's the last
axis at every rank; a tensor read both ways gets none."""

from __future__ import annotations

import numpy as np

from compiler.quant.calibrate import calibrate_model
from compiler.quant.quantize import QuantConfig, quantize_graph
from ir import DType, Graph, TensorType, make_node
from ir.interpreter import run

CONV1D = {"strides": [1], "pads": [1, 1], "dilations": [1], "group": 1}


def _conv1d(c: int, length: int, seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)
    g = Graph("conv1d")
    x = g.add_input("x", TensorType((1, c, length), DType.f32))
    w = g.add_const(rng.uniform(-1, 1, (c, c, 3)).astype(np.float32), "w")
    g.outputs = make_node(g, "Conv", [x, w], CONV1D, name="conv").outputs
    return g


def test_conv1d_means_are_per_channel_when_length_equals_channels() -> None:
    """[1, 6, 6]: the channel axis and the length have the same extent, so only the layout
    tells which one the layer's weights multiply."""
    g = _conv1d(6, 6)
    rng = np.random.default_rng(1)
    offsets = np.arange(6, dtype=np.float32)[:, None] * 2.0  # channel c has mean 2c
    data = {"x": (rng.standard_normal((32, 1, 6, 6)) + offsets).astype(np.float32)}
    means = calibrate_model(g, data).channel_means["x"]
    np.testing.assert_allclose(means, data["x"].astype(np.float64).mean(axis=(0, 1, 3)),
                               rtol=1e-6)
    assert means[5] > means[0] + 8  # channels, not positions


def test_conv1d_bias_correction_takes_out_the_mean_error() -> None:
    """Per-tensor weights with one large weight, inputs with a large mean: the corrected
    layer's mean output error is a fraction of the uncorrected one's (it was never corrected
    while Conv1d inputs were summed along their length)."""
    g = _conv1d(8, 12, seed=2)
    w = g.constants[0]
    w.data[0, 0, 0] = 40.0  # type: ignore[index]
    rng = np.random.default_rng(3)
    data = {"x": (rng.standard_normal((24, 1, 8, 12)) + 3.0).astype(np.float32)}
    cal = calibrate_model(g, data)
    assert cal.channel_means["x"].shape == (8,)
    errs = {}
    for bc in (False, True):
        q = quantize_graph(g, cal.ranges, QuantConfig(per_channel=False, bias_correction=bc),
                           cal.channel_means)
        name = g.outputs[0].name
        diff = [run(q, {"x": s})[name] - run(g, {"x": s})[name] for s in data["x"]]
        errs[bc] = np.abs(np.mean(diff, axis=(0, 1, 3))).max()
    assert errs[True] < 0.5 * errs[False], errs


def test_batched_matmul_means_are_on_the_last_axis() -> None:
    """A 4-D MatMul input [B, H, T, K] with H == K: the means are over K's channels."""
    rng = np.random.default_rng(4)
    g = Graph("mm4")
    x = g.add_input("x", TensorType((1, 4, 3, 4), DType.f32))
    w = g.add_const(rng.standard_normal((4, 5)).astype(np.float32), "w")
    g.outputs = make_node(g, "MatMul", [x, w], {}, name="mm").outputs
    data = {"x": (rng.standard_normal((16, 1, 4, 3, 4))
                  + np.arange(4, dtype=np.float32) * 3.0).astype(np.float32)}
    means = calibrate_model(g, data).channel_means["x"]
    np.testing.assert_allclose(means, data["x"].astype(np.float64).mean(axis=(0, 1, 2, 3)),
                               rtol=1e-6)


def test_a_tensor_read_by_a_conv_and_a_matmul_gets_no_means() -> None:
    g = Graph("both")
    rng = np.random.default_rng(5)
    x = g.add_input("x", TensorType((1, 4, 4), DType.f32))
    w = g.add_const(rng.standard_normal((4, 4, 1)).astype(np.float32), "w")
    m = g.add_const(rng.standard_normal((4, 4)).astype(np.float32), "m")
    conv = make_node(g, "Conv", [x, w], {**CONV1D, "pads": [0, 0]}, name="conv")
    mm = make_node(g, "MatMul", [x, m], {}, name="mm")
    g.outputs = [conv.outputs[0], mm.outputs[0]]
    data = {"x": rng.standard_normal((8, 1, 4, 4)).astype(np.float32)}
    assert "x" not in calibrate_model(g, data).channel_means
