"""fold-batchnorm on random layers: every BN disappears and results stay within the stated
tolerance, |folded - unfolded| <= 1e-4 * |unfolded| + 1e-5 * max|unfolded| (f32)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from compiler.passes import run_pipeline
from ir.build import make_node
from ir.graph import Graph
from ir.interpreter import run
from ir.text import parse_graph, print_graph
from ir.types import DType, TensorType


def _bn_after(g: Graph, rng: np.random.Generator, channels: int, layer_out: Any) -> None:
    params = [
        rng.normal(1.0, 0.5, channels), rng.normal(0.0, 1.0, channels),
        rng.normal(0.0, 1.0, channels), rng.uniform(0.1, 2.0, channels),
    ]
    consts = [g.add_const(p.astype(np.float32), n)
              for p, n in zip(params, ["gamma", "beta", "mean", "var"])]
    bn = make_node(g, "BatchNormalization", [layer_out, *consts], {"epsilon": 1e-5},
                   out_names=["y"])
    g.outputs = [bn.outputs[0]]


def _conv_graph(seed: int, transpose: bool, group: int, bias: bool) -> Graph:
    rng = np.random.default_rng(seed)
    g = Graph("conv")
    c_in, k = 4, 3
    x = g.add_input("x", TensorType((2, c_in, 7, 7), DType.f32))
    if transpose:
        m = 6
        w = rng.standard_normal((c_in, m // group, k, k)).astype(np.float32)
        attrs = {"strides": [2, 2], "pads": [1, 0, 0, 1], "dilations": [1, 1],
                 "group": group, "output_padding": [1, 0]}
    else:
        m = 8
        w = rng.standard_normal((m, c_in // group, k, k)).astype(np.float32)
        attrs = {"strides": [1, 2], "pads": [1, 1, 0, 2], "dilations": [2, 1], "group": group}
    ins = [x, g.add_const(w, "w")]
    if bias:
        ins.append(g.add_const(rng.standard_normal(m).astype(np.float32), "b"))
    op = "ConvTranspose" if transpose else "Conv"
    node = make_node(g, op, ins, attrs, out_names=["t"])
    _bn_after(g, rng, m, node.outputs[0])
    return g


def _gemm_graph(seed: int, trans_a: bool, trans_b: bool, c_shape: tuple[int, ...] | None
                ) -> Graph:
    rng = np.random.default_rng(seed)
    g = Graph("gemm")
    mm, kk, nn = 5, 6, 3
    a = g.add_input("a", TensorType((kk, mm) if trans_a else (mm, kk), DType.f32))
    b = rng.standard_normal((nn, kk) if trans_b else (kk, nn)).astype(np.float32)
    ins = [a, g.add_const(b, "b")]
    if c_shape is not None:
        ins.append(g.add_const(rng.standard_normal(c_shape).astype(np.float32), "c"))
    attrs = {"alpha": 0.75, "beta": 1.5 if c_shape is not None else 1.0,
             "transA": trans_a, "transB": trans_b}
    node = make_node(g, "Gemm", ins, attrs, out_names=["t"])
    _bn_after(g, rng, nn, node.outputs[0])
    return g


def _check_folds(g: Graph) -> None:
    text = print_graph(g, max_inline=None)
    folded = run_pipeline(parse_graph(text), ["fold-batchnorm", "dce"], verify=True)
    assert [n.op for n in folded.nodes] == [g.nodes[0].op]
    assert [v.name for v in folded.outputs] == ["y"]
    rng = np.random.default_rng(123)
    for _ in range(3):
        feeds = {v.name: rng.standard_normal(v.type.shape).astype(np.float32) for v in g.inputs}
        want = run(g, feeds)["y"].astype(np.float64)
        got = run(folded, feeds)["y"].astype(np.float64)
        bound = 1e-4 * np.abs(want) + 1e-5 * np.abs(want).max()
        assert np.all(np.abs(got - want) <= bound)


@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("group", [1, 2])
@pytest.mark.parametrize("bias", [False, True])
def test_conv_and_convtranspose_fold(transpose: bool, group: int, bias: bool) -> None:
    for seed in range(3):
        _check_folds(_conv_graph(seed, transpose, group, bias))


def test_depthwise_conv_folds() -> None:
    rng = np.random.default_rng(7)
    g = Graph("dw")
    x = g.add_input("x", TensorType((1, 4, 5, 5), DType.f32))
    w = g.add_const(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), "w")
    node = make_node(g, "Conv", [x, w], {"strides": [1, 1], "pads": [1, 1, 1, 1],
                                         "dilations": [1, 1], "group": 4}, out_names=["t"])
    _bn_after(g, rng, 4, node.outputs[0])
    _check_folds(g)


@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("c_shape", [None, (), (3,), (1, 3), (5, 1), (5, 3)])
def test_gemm_folds(trans_a: bool, trans_b: bool, c_shape: tuple[int, ...] | None) -> None:
    _check_folds(_gemm_graph(0, trans_a, trans_b, c_shape))


def test_shared_weights_are_not_rewritten_for_the_other_user() -> None:
    g = _conv_graph(0, False, 1, True)
    x, w, b = g.nodes[0].inputs
    other = make_node(g, "Conv", [x, w, b], g.nodes[0].attrs, out_names=["other"])
    g.outputs.append(other.outputs[0])
    before = print_graph(g, max_inline=None)
    folded = run_pipeline(parse_graph(before), ["fold-batchnorm", "dce"], verify=True)
    assert [n.op for n in folded.nodes] == ["Conv", "Conv"]
    assert [v.name for v in folded.nodes[1].inputs] == ["x", "w", "b"]
    feeds = {"x": np.random.default_rng(1).standard_normal((2, 4, 7, 7)).astype(np.float32)}
    assert run(folded, feeds)["other"].tobytes() == run(g, feeds)["other"].tobytes()
