"""An elementwise layer whose last tile hangs over the end of the tensor: its input box starts
at the tile (not moved back inside the tensor), so the output tile stores the elements it
computed. PP-OCR's recogniser ends in such a Dequantize ([1, 20, 6625], 16-row tiles on
mlu370x8), where the last element of every row came out wrong."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from compiler.api import compile_model
from ir.interpreter import run


def test_a_partial_last_tile_of_an_elementwise_layer_is_stored_exactly() -> None:
    rows = 6625  # 414 whole 16-row tiles and one row
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((8, rows)).astype(np.float32), "w")
    vi = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "tail",
        [vi("x", TensorProto.FLOAT, [1, 20, 8])], [vi("y", TensorProto.FLOAT, [1, 20, rows])],
        [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    cal = [{"x": rng.standard_normal((1, 20, 8)).astype(np.float32)} for _ in range(2)]
    ref = compile_model(model, precision="int8", calibration=cal)
    cm = compile_model(model, precision="int8", calibration=cal, target="mlu370x8")
    (dq,) = [n for n in cm.graph.nodes if n.op == "Dequantize"]
    assert rows % dq.attrs["tile"][2] != 0  # the tile plan leaves a partial last tile
    x = {"x": rng.standard_normal((1, 20, 8)).astype(np.float32)}
    (got,) = cm.run(None, x)
    np.testing.assert_array_equal(got, run(ref.graph, x)["y"])
