"""fuse-eltwise end to end on every accelerator: a residual block (two convolutions, the second
one's result added to the block's input, then ReLU) compiles with the add in the second
convolution's epilogue; the staged C runs bit-exact with the interpreter, its counters equal
the cost model with the fusion on, and against the same compile without the pass the fused
layer moves less off-chip data and launches one kernel less.

The pass's IR before/after cases are in tests/passes/cases/fuse-eltwise.ir.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler.api import compile_model
from ir.interpreter import run
from ir.text import parse_graph
from targets.staged.plans import modelled_counters
from tests.targets.test_staged import ACCELERATORS

C, HW = 48, 14  # several tiles per layer on every target


def residual_block(seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    ws = [numpy_helper.from_array((rng.standard_normal((C, C, 3, 3)) * 0.1).astype(np.float32),
                                  f"w{k}") for k in (1, 2)]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Relu", ["a"], ["b"], name="relu1"),
             helper.make_node("Conv", ["b", "w2"], ["c"], pads=[1, 1, 1, 1], name="conv2"),
             helper.make_node("Add", ["c", "x"], ["d"], name="add"),
             helper.make_node("Relu", ["d"], ["y"], name="relu2")]
    shape = [1, C, HW, HW]
    graph = helper.make_graph(
        nodes, "residual", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], ws)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _samples(n: int, seed: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((1, C, HW, HW)).astype(np.float32)} for _ in range(n)]


@pytest.mark.parametrize("target", ACCELERATORS)
def test_a_residual_add_runs_in_the_convolution_epilogue(target: str, tmp_path) -> None:
    model, cal = residual_block(), _samples(2, 0)
    ref = compile_model(model, precision="int8", calibration=cal)
    fused = compile_model(model, precision="int8", calibration=cal, target=target,
                          output_dir=tmp_path / "fused")
    plain = compile_model(model, precision="int8", calibration=cal, target=target,
                          disabled_passes=["fuse-eltwise"])
    ops = {n.name: n for n in fused.graph.nodes}
    assert ops["add"].attrs.get("fused") == "epilogue"
    assert ops["conv2"].attrs.get("epilogue") == "a"
    assert not any(n.attrs.get("fused") for n in plain.graph.nodes)

    feeds = _samples(1, 7)[0]
    want = run(ref.graph, feeds)
    fused.reset_counters()
    got = fused.run(None, feeds)
    for (name, w), g in zip(want.items(), got):
        assert np.array_equal(g, w), name
    counters = fused.counters()
    plans = {p.node: p for p in fused.plans()}
    assert plans["conv2"].problem.epilogue_inputs == 1 and "add" not in plans
    for key, p in plans.items():
        assert {k: v for k, v in counters[key].items() if v} == modelled_counters(p), key

    # against the compile without the pass: the add's separate pass over memory and its
    # launch are gone. (The tiler may pick other tiles for the fused layer, so its moved
    # bytes are compared at the compulsory floor, which no schedule changes.)
    before = {p.node: p.cost for p in plain.plans()}
    after = {p.node: p.cost for p in fused.plans()}
    assert after["conv2"].cycles < before["conv2"].cycles + before["add"].cycles
    if fused.profile.l2 is None:  # (with an L2, residency may differ between the compiles)
        nbytes = int(np.prod(ref.graph.outputs[0].type.shape))  # one 8-bit activation
        assert after["conv2"].compulsory_bytes == \
            before["conv2"].compulsory_bytes + before["add"].compulsory_bytes - 2 * nbytes
    assert sum(c.launch_cycles for c in after.values()) < \
        sum(c.launch_cycles for c in before.values())
    text = (tmp_path / "fused" / "report.txt").read_text()
    assert "add (QAdd)" in text and "in the epilogue of conv2" in text



@pytest.mark.parametrize("target", ("ascend910b", "thinker2"))
def test_a_staged_product_applies_its_epilogue_table(target: str) -> None:
    """A graph whose convolution carries an epilogue table (fuse-epilogue's result, from the
    pass's own test case: its requantised codes are the table's index, not its result) is
    staged on an accelerator: the kernel requantises to the codes and applies the table,
    bit for bit with the interpreter."""
    case = (Path(__file__).parents[1] / "passes" / "cases" / "fuse-epilogue.ir").read_text()
    text = case.split("// CHECK:")[1].split("// -----")[0]
    graph = parse_graph(text)
    conv = next(n for n in graph.nodes if n.op == "QConv")
    assert conv.inputs[3] is not None  # the table
    want = run(graph, {"x": np.random.default_rng(2).integers(0, 256, (1, 2, 3, 3), np.uint8)})
    cm = compile_model(graph.copy(), target=target)
    staged = next(n for n in cm.graph.nodes if n.op == "QConv")
    assert "tile" in staged.attrs
    feeds = {"x": np.random.default_rng(2).integers(0, 256, (1, 2, 3, 3), np.uint8)}
    for (name, w), g in zip(want.items(), cm.run(None, feeds)):
        assert np.array_equal(g, w), name
