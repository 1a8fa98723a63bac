"""Op traits are read from the registry: an op declared once, with its traits, is counted by
the FLOP counter, quantised by the quantiser, tiled by the tiler and staged (or not) by the
accelerator code generator without being listed anywhere else."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from compiler.flops import node_cost
from compiler.quant.quantize import quantize_graph
from ir import qforms
from ir.build import make_node
from ir.graph import Graph
from ir.ops import cost
from ir.ops.common import unary
from ir.ops.registry import OPS, Attrs, register
from ir.types import DType, TensorType
from targets.profiles import load_target
from targets.staged.support import staged_kind
from targets.tiling import problem_of


@pytest.fixture
def new_ops() -> Iterator[None]:
    """Two ops that exist only in this test: a table-able non-linearity and a data mover."""
    unary("TestCube", lambda x, a: x * x * x, "y = x^3 (test only)",
          flops=cost.per_element(2), quantized=qforms.lut, tiled="eltwise")

    @register
    class TestCopy:
        """y = x (test only), any element type, quantised ones keeping their parameters"""

        operands = ("x",)
        moves_data = True
        quantized = qforms.on_codes

        @staticmethod
        def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
            assert ins[0] is not None
            return [ins[0]]

        @staticmethod
        def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
            assert ins[0] is not None
            return [ins[0].copy()]

    yield
    OPS.pop("TestCube"), OPS.pop("TestCopy")


def _graph() -> Graph:
    g = Graph("t")
    x = g.add_input("x", TensorType((1, 2, 4, 4), DType.f32))
    c = make_node(g, "TestCube", [x], name="cube").outputs[0]
    g.outputs = [make_node(g, "TestCopy", [c], name="copy").outputs[0]]
    return g


def test_a_new_op_is_counted_quantised_and_tiled_by_its_traits(new_ops: None) -> None:
    g = _graph()
    cube, copy = g.nodes
    assert (node_cost(cube).macs, node_cost(cube).flops) == (0, 2 * 32)
    assert node_cost(copy).flops == 0  # moves data
    prof = load_target("ascend910b")
    assert problem_of(g, cube, prof) is not None and problem_of(g, copy, prof) is None
    ranges = {v.name: (-1.0, 1.0) for v in g.values()}
    q = quantize_graph(g, ranges)
    ops = [n.op for n in q.nodes]
    assert ops == ["Quantize", "QLut", "TestCopy", "Dequantize"]
    lut = q.nodes[1]
    assert lut.sources == (("TestCube", "cube"),)
    # the table is the op's own compute on every code
    codes = np.arange(256)
    s = lut.x.type.quant.scale[0]
    z = lut.x.type.quant.zero_point[0]
    want = qforms.qmath.quantize(((codes - z) * np.float32(s)) ** 3, lut.attrs["out_scale"],
                                 lut.attrs["out_zp"], DType.u8)
    assert lut.attrs["table"] == [int(v) for v in want]
    assert staged_kind(lut) == "eltwise4d"  # QLut is a staged op
    assert staged_kind(q.nodes[2]) is None  # the new mover has no staged kernel
