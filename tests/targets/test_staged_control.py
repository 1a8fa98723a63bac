"""Control flow on accelerator targets: If and Loop run as host C in ``qnnc_run`` around the
staged layers (their bodies too, in plain layout); the staged layers outside them run staged
as before. The compiled folder's outputs equal the interpreter's on the quantised graph, bit
for bit, on both branches of a run-time If; the counters still equal the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from compiler.api import compile_model, load_compiled
from ir.interpreter import run
from targets.staged.plans import modelled_counters
from tests.ops.test_control import _const, _model, _vi

F, B, I64 = TensorProto.FLOAT, TensorProto.BOOL, TensorProto.INT64
FM = [1, 4, 6, 6]


def if_loop_model() -> onnx.ModelProto:
    """conv -> If(sum(x) > 0: relu else sigmoid) -> conv -> Loop(3x: acc += y1) -> conv:
    the If's condition is computed at run time, the Loop body reads an outer value."""
    rng = np.random.default_rng(0)
    then_g = helper.make_graph([helper.make_node("Relu", ["h"], ["t"])], "then", [],
                               [_vi("t", F, FM)])
    else_g = helper.make_graph([helper.make_node("Sigmoid", ["h"], ["e"])], "else", [],
                               [_vi("e", F, FM)])
    body = helper.make_graph(
        [helper.make_node("Add", ["acc", "y1"], ["a2"]),
         helper.make_node("Identity", ["cin"], ["cout"])],
        "body", [_vi("i", I64, []), _vi("cin", B, []), _vi("acc", F, FM)],
        [_vi("cout", B, []), _vi("a2", F, FM)])
    nodes = [helper.make_node("Conv", ["x", "w"], ["h"]),
             helper.make_node("ReduceSum", ["x"], ["tot"], keepdims=0),
             helper.make_node("Greater", ["tot", "zero"], ["c"]),
             helper.make_node("If", ["c"], ["y0"], then_branch=then_g, else_branch=else_g),
             helper.make_node("Conv", ["y0", "w2"], ["y1"]),
             helper.make_node("Loop", ["m", "", "y1"], ["acc"], body=body),
             helper.make_node("Conv", ["acc", "w3"], ["y"])]
    return _model(nodes, [_vi("x", F, [1, 3, 8, 8])], [_vi("y", F, [1, 2, 6, 6])],
                  [_const("w", rng.standard_normal((4, 3, 3, 3)).astype(np.float32)),
                   _const("w2", rng.standard_normal((4, 4, 1, 1)).astype(np.float32)),
                   _const("w3", rng.standard_normal((2, 4, 1, 1)).astype(np.float32)),
                   _const("m", np.int64(3)), _const("zero", np.float32(0))])


def _calibration() -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    return [{"x": rng.standard_normal((1, 3, 8, 8)).astype(np.float32)} for _ in range(3)]


@pytest.mark.parametrize("target", ["ascend910b", "mlu370x8"])
def test_if_and_loop_run_on_the_host_around_staged_layers(target: str, tmp_path: Path) -> None:
    model, cal = if_loop_model(), _calibration()
    ref = compile_model(model, precision="int8", calibration=cal)
    compile_model(model, precision="int8", calibration=cal, target=target,
                  output_dir=tmp_path / "out")
    cm = load_compiled(tmp_path / "out")  # run through the compiled folder
    ops = [n.op for n in cm.graph.nodes]
    assert ops.count("QConv") == 3 and "If" in ops and "Loop" in ops
    for n in cm.graph.nodes:
        if n.regions:  # the layout pass left the control flow and its bodies plain
            assert not n.attrs.get("layout") and "tile" not in n.attrs
            assert all(not cm.graph.producers()[id(v)].attrs.get("layout")
                       for v in n.inputs if v is not None and id(v) in cm.graph.producers())
            for body in n.regions:
                assert all("layout" not in b.attrs and "tile" not in b.attrs
                           for b in body.nodes)
    model_c = (tmp_path / "out" / "model.c").read_text()
    assert "if (*" in model_c and "for (; qnnc_i0 < qnnc_m0" in model_c
    rng = np.random.default_rng(2)
    cm.reset_counters()
    for sign in (1.0, -1.0):  # sum(x) > 0 and < 0: both branches of the If
        x = np.abs(rng.standard_normal((1, 3, 8, 8))).astype(np.float32) * sign
        want = run(ref.graph, {"x": x})
        (got,) = cm.run(None, {"x": x})
        assert want["y"].dtype == got.dtype and np.array_equal(got, want["y"])
    plans = cm.plans()
    counters = cm.counters()
    assert {p.op for p in plans} >= {"QConv"} and set(counters) == {p.node for p in plans}
    for p in plans:  # two runs: every staged layer counted twice what the model says
        measured = {k: v for k, v in counters[p.node].items() if v}
        assert measured == {k: 2 * v for k, v in modelled_counters(p).items()}, p.node


def test_report_says_the_control_flow_and_its_bodies_ran_on_the_host(tmp_path: Path) -> None:
    compile_model(if_loop_model(), precision="int8", calibration=_calibration(),
                  target="ascend910b", output_dir=tmp_path / "out")
    cm = load_compiled(tmp_path / "out")
    data = cm.report()
    host = {d["name"]: d["why"] for d in data["untiled"]}
    assert all(d["ran"] == "host" for d in data["untiled"])
    assert all(d["ran"] == "staged" for d in data["layers"])
    assert {d["op"] for d in data["layers"]} == {"Quantize", "QConv", "Dequantize"}
    ctl = {n.op: n for n in cm.graph.nodes if n.regions}
    assert set(ctl) == {"If", "Loop"}
    want = {}
    for op, node in ctl.items():
        want[node.name] = "control flow: host C around its bodies"
        for body in node.regions:
            for n in body.nodes:
                want[f"{node.name}/{body.name}/{n.name}"] = (
                    f"control flow: in the body of {node.name} ({op})")
    assert len(want) >= 5 and {k: host.get(k) for k in want} == want
    text = (tmp_path / "out" / "report.txt").read_text()
    for name, why in want.items():
        (row,) = [ln for ln in text.splitlines() if ln.split()[:1] == [name]]  # the time
        (block,) = [ln for ln in text.splitlines() if ln.startswith(f"- {name} (")]
        assert f"host: {why}" in block


@pytest.mark.parametrize("name", ["scan", "nested"])
def test_scan_and_a_loop_with_an_if_inside_run_on_the_host_side(name: str,
                                                                 tmp_path: Path) -> None:
    """A Scan, and a Loop whose body holds an If, on thinker2: float bodies (Tanh calls
    libm), so the outputs equal the host C build's bit for bit and the interpreter's to
    1e-5 relative."""
    from tests.ops.test_control import feeds_for, loop_model, scan_model

    model = scan_model() if name == "scan" else loop_model()
    feeds = feeds_for(model)
    cal = [{k: (v + np.float32(0.1 * j)).astype(v.dtype) for k, v in feeds.items()}
           for j in range(2)]
    ref = compile_model(model, precision="int8", calibration=cal)
    host = compile_model(ref.graph, target="host", cache_dir=tmp_path / "c")
    cm = compile_model(model, precision="int8", calibration=cal, target="thinker2",
                       cache_dir=tmp_path / "c")
    assert any(n.regions for n in cm.graph.nodes)
    want = run(ref.graph, feeds)
    for (k, w), h, g in zip(want.items(), host.run(None, feeds), cm.run(None, feeds)):
        assert np.array_equal(g, h), k
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6, err_msg=k)
