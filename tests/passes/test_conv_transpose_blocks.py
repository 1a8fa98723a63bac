"""conv-transpose-blocks computes what the ConvTranspose did (compiler/passes/
conv_transpose_blocks.py): block sizes, channel counts, batches, with and without a bias,
against the interpreter's ConvTranspose; the IR-text case is tests/passes/cases/."""

from __future__ import annotations

import numpy as np
import pytest

from compiler.passes.conv_transpose_blocks import conv_transpose_blocks
from ir.build import make_node
from ir.graph import Graph
from ir.interpreter import run
from ir.types import DType, TensorType


@pytest.mark.parametrize(("n", "c", "m", "b", "bias"), [
    (1, 3, 2, 2, True), (2, 5, 3, 3, False), (1, 1, 4, 4, True), (1, 8, 1, 2, False),
])
def test_blocks_compute_the_conv_transpose(n: int, c: int, m: int, b: int, bias: bool) -> None:
    rng = np.random.default_rng(n * 100 + c * 10 + m + b)
    g = Graph("up")
    x = g.add_input("x", TensorType((n, c, 4, 5), DType.f32))
    w = g.add_const(rng.standard_normal((c, m, b, b)).astype(np.float32), "w")
    ins = [x, w] + ([g.add_const(rng.standard_normal(m).astype(np.float32), "b")]
                    if bias else [])
    node = make_node(g, "ConvTranspose", ins, {"strides": [b, b], "pads": [0, 0, 0, 0],
                                                "dilations": [1, 1], "output_padding": [0, 0],
                                                "group": 1}, name="up")
    g.outputs = list(node.outputs)
    feeds = {"x": rng.standard_normal((n, c, 4, 5)).astype(np.float32)}
    want = run(g, feeds)
    conv_transpose_blocks(g)
    assert [nd.op for nd in g.nodes] == ["Conv", "DepthToSpace"]
    got = run(g, feeds)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-5)
