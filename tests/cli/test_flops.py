"""MAC/FLOP/parameter counts of single IR nodes, each worked out by hand."""

from __future__ import annotations

import numpy as np

from compiler.flops import graph_totals, human, node_cost
from ir.build import make_node
from ir.graph import Graph, Value
from ir.types import DType, TensorType


def _in(g: Graph, name: str, *shape: int) -> Value:
    return g.add_input(name, TensorType(tuple(shape), DType.f32))


def _w(g: Graph, name: str, *shape: int) -> Value:
    return g.add_const(np.ones(shape, np.float32), name)


def test_conv_with_bias() -> None:
    g = Graph()
    x, w, b = _in(g, "x", 1, 3, 8, 8), _w(g, "w", 4, 3, 3, 3), _w(g, "b", 4)
    n = make_node(g, "Conv", [x, w, b], {"strides": [1, 1], "pads": [1, 1, 1, 1],
                                         "dilations": [1, 1]})
    c = node_cost(n)
    assert c.outputs[0].shape == (1, 4, 8, 8)
    assert (c.macs, c.flops, c.params) == (256 * 27, 2 * 256 * 27 + 256, 112)


def test_grouped_strided_conv() -> None:
    # depthwise 3x3, stride 2 over 8 channels of 16x16 -> 8x8x8 outputs, 9 taps each
    g = Graph()
    x, w = _in(g, "x", 2, 8, 16, 16), _w(g, "w", 8, 1, 3, 3)
    n = make_node(g, "Conv", [x, w], {"strides": [2, 2], "pads": [1, 1, 1, 1],
                                      "dilations": [1, 1], "group": 8})
    c = node_cost(n)
    assert c.outputs[0].shape == (2, 8, 8, 8)
    assert (c.macs, c.flops, c.params) == (2 * 512 * 9, 2 * 2 * 512 * 9, 72)


def test_conv_transpose() -> None:
    # each of the 1*2*4*4 input cells scatters into 3 channels x 2x2 taps
    g = Graph()
    x, w = _in(g, "x", 1, 2, 4, 4), _w(g, "w", 2, 3, 2, 2)
    n = make_node(g, "ConvTranspose", [x, w], {"strides": [2, 2], "pads": [0, 0, 0, 0],
                                               "dilations": [1, 1], "output_padding": [0, 0]})
    c = node_cost(n)
    assert c.outputs[0].shape == (1, 3, 8, 8)
    assert (c.macs, c.flops) == (32 * 12, 2 * 32 * 12)


def test_batched_matmul_and_gemm() -> None:
    g = Graph()
    a, b = _in(g, "a", 5, 2, 3), _in(g, "b", 5, 3, 7)
    c = node_cost(make_node(g, "MatMul", [a, b]))
    assert (c.macs, c.flops, c.params) == (5 * 2 * 7 * 3, 2 * 210, 0)
    at, wt, bias = _in(g, "at", 6, 4), _w(g, "wt", 6, 9), _w(g, "bias", 9)
    c = node_cost(make_node(g, "Gemm", [at, wt, bias], {"transA": True}))
    assert c.outputs[0].shape == (4, 9)
    assert (c.macs, c.flops, c.params) == (36 * 6, 2 * 216 + 36, 54 + 9)


def test_einsum_counts_the_joint_index_space() -> None:
    g = Graph()
    a, b = _in(g, "a", 2, 3, 4), _in(g, "b", 2, 4, 5)
    c = node_cost(make_node(g, "Einsum", [a, b], {"equation": "bij,bjk->bik"}))
    assert (c.macs, c.flops) == (2 * 3 * 4 * 5, 240)


def test_pooling_elementwise_and_data_movement() -> None:
    g = Graph()
    x = _in(g, "x", 1, 2, 6, 6)
    pool = make_node(g, "MaxPool", [x], {"kernel_shape": [3, 3], "strides": [3, 3],
                                         "pads": [0, 0, 0, 0], "dilations": [1, 1]})
    c = node_cost(pool)
    assert c.outputs[0].shape == (1, 2, 2, 2)
    assert (c.macs, c.flops) == (0, 8 * 9)
    c = node_cost(make_node(g, "Relu", [x]))
    assert (c.macs, c.flops) == (0, 72)  # the default: one per output element
    c = node_cost(make_node(g, "Identity", [x]))
    assert (c.macs, c.flops) == (0, 0)


def test_totals_count_a_shared_weight_once() -> None:
    g = Graph()
    x, w = _in(g, "x", 2, 3), _w(g, "w", 3, 3)
    h = make_node(g, "MatMul", [x, w]).outputs[0]
    y = make_node(g, "MatMul", [h, w]).outputs[0]
    g.outputs = [y]
    t = graph_totals(g)
    assert (t.params, t.macs, t.flops) == (9, 36, 72)
    assert t.op_counts == {"MatMul": 2}


def test_human() -> None:
    assert [human(n) for n in (0, 999, 1234, 4_100_000_000)] == ["0", "999", "1.23K", "4.10G"]
