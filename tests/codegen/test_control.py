"""Generated C of If, Loop and Scan against the interpreter (float32): bodies become layer
functions called from C control flow in qnnc_run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from compiler.frontend.importer import import_model
from ir.text import parse_graph
from targets.c.emitter import CodegenError
from targets.c.model import generate
from tests.codegen.harness import check_graph, run_c
from tests.ops.test_control import feeds_for, if_model, loop_model, scan_model, while_model


@pytest.mark.parametrize("cond", [True, False])
def test_if_on_a_run_time_condition(cond: bool, tmp_path: Path) -> None:
    g = import_model(if_model())
    c = generate(g).files["model.c"]
    assert "if (*" in c and "} else {" in c
    feeds = feeds_for(if_model())
    feeds["c"] = np.array(cond)
    check_graph(g, tmp_path, feeds=feeds, rtol=1e-6, atol=0)


def test_if_on_a_computed_condition(tmp_path: Path) -> None:
    model = if_model(computed=True)
    g = import_model(model)
    for seed in (0, 3):  # sums of either sign: both branches run
        feeds = {"x": np.random.default_rng(seed).standard_normal((2, 3)).astype(np.float32)}
        feeds["x"] += 1.0 if seed else -1.0
        check_graph(g, tmp_path, feeds=feeds, rtol=1e-6, atol=0)


@pytest.mark.parametrize("name", ["loop", "while", "scan", "scan_reversed_axis2"])
def test_loops(name: str, tmp_path: Path) -> None:
    model = {"loop": loop_model(), "while": while_model(), "scan": scan_model(),
             "scan_reversed_axis2": scan_model(1, 2)}[name]
    g = import_model(model)
    feeds = feeds_for(model) if name != "while" else {"x": np.array([0.5, 1, .25], np.float32)}
    c = generate(g).files["model.c"]
    assert "for (" in c and "qnnc_run" in c
    check_graph(g, tmp_path, feeds=feeds, rtol=1e-5, atol=1e-6)


def test_a_loop_that_ends_early_against_its_trip_count_returns_an_error(tmp_path: Path) -> None:
    """Scan outputs were sized for trip_count rows: qnnc_run returns 1 when the loop ran
    another number of iterations (the interpreter raises)."""
    g = parse_graph("""graph @m(%n: i64[], %x: f32[2]) -> (%y, %s) {
  %y: f32[2], %s: f32[3,2] = Loop(%n, _, %x) {captures=0, trip_count=3}
    graph @body(%i: i64[], %c: bool[], %x: f32[2]) -> (%c, %t, %t) {
      %d = const f32[2] dense<[1.0, 2.0]>
      %t: f32[2] = Add(%x, %d)
    }
}
""")
    import ctypes

    from targets.host.build import BuildOptions, build_c_library

    lib = ctypes.CDLL(str(build_c_library(g, tmp_path, BuildOptions(werror=True))))
    for n, rc in ((3, 0), (2, 1), (5, 1)):
        ins = [np.array(n, np.int64), np.zeros(2, np.float32)]
        outs = [np.empty(2, np.float32), np.empty((3, 2), np.float32)]
        ip = (ctypes.c_void_p * 2)(*[a.ctypes.data for a in ins])
        op = (ctypes.c_void_p * 2)(*[a.ctypes.data for a in outs])
        assert lib.qnnc_run(ip, op) == rc
        if rc == 0:
            assert outs[1].tolist() == [[1, 2], [2, 4], [3, 6]]


def test_a_swap_of_carried_values_is_refused_clearly() -> None:
    g = parse_graph("""graph @m(%a: f32[2], %b: f32[2]) -> (%p, %q) {
  %n = const i64[] dense<[3]>
  %p: f32[2], %q: f32[2] = Loop(%n, _, %a, %b) {captures=0, trip_count=-1}
    graph @body(%i: i64[], %c: bool[], %a: f32[2], %b: f32[2]) -> (%c, %b, %a) {
    }
}
""")
    with pytest.raises(CodegenError, match="swap"):
        generate(g)


def test_int8_model_with_an_if_around_a_float_body(tmp_path: Path) -> None:
    """The calibration quantiser quantises the convolutions around an If and keeps the If
    (its bodies) float between a Dequantize and a Quantize; the C agrees with the
    interpreter on the quantised graph."""
    from onnx import TensorProto, helper

    from tests.ops.test_control import _const, _model, _vi

    f = TensorProto.FLOAT
    rng = np.random.default_rng(0)
    then_g = helper.make_graph([helper.make_node("Relu", ["h"], ["t"])], "then", [],
                               [_vi("t", f, [1, 4, 6, 6])])
    else_g = helper.make_graph([helper.make_node("Sigmoid", ["h"], ["e"])], "else", [],
                               [_vi("e", f, [1, 4, 6, 6])])
    nodes = [helper.make_node("Conv", ["x", "w"], ["h"]),
             helper.make_node("ReduceSum", ["x"], ["tot"], keepdims=0),
             helper.make_node("Greater", ["tot", "zero"], ["c"]),
             helper.make_node("If", ["c"], ["y0"], then_branch=then_g, else_branch=else_g),
             helper.make_node("Conv", ["y0", "w2"], ["y"])]
    model = _model(nodes, [_vi("x", f, [1, 3, 8, 8])], [_vi("y", f, [1, 2, 6, 6])],
                   [_const("w", rng.standard_normal((4, 3, 3, 3)).astype(np.float32)),
                    _const("w2", rng.standard_normal((2, 4, 1, 1)).astype(np.float32)),
                    _const("zero", np.float32(0))])
    calib = {"x": rng.standard_normal((4, 1, 3, 8, 8)).astype(np.float32)}
    from compiler.frontend.importer import import_model as load
    from compiler.passes import run_pipeline
    from compiler.passes.quantize import Quantize

    samples = [{"x": a} for a in calib["x"]]
    g = run_pipeline(load(model), ["fold-constants", "dce", Quantize(calibration=samples)],
                     verify=True)
    ops = [n.op for n in g.nodes]
    assert ops.count("QConv") == 2 and "If" in ops
    for sign in (1.0, -1.0):  # both branches
        x = np.abs(rng.standard_normal((1, 3, 8, 8))).astype(np.float32) * sign
        check_graph(g, tmp_path, feeds={"x": x}, rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # loading onnx's node tests takes about a minute
@pytest.mark.parametrize("name", ["test_if", "test_scan9_sum", "test_scan_sum"])
def test_onnx_node_tests_in_c(name: str, tmp_path: Path) -> None:
    """onnx's own If/Scan node tests, run as generated C against their expected outputs
    (test_if's branches give constants: the C copies them from the weights)."""
    from tests.conformance.cases import node_cases

    (case,) = [c for c in node_cases() if c.name == name]
    g = import_model(case.model)
    for inputs, expected in case.data_sets:
        feeds = {v.name: np.asarray(a) for v, a in zip(g.inputs, inputs)}
        got = run_c(g, feeds, tmp_path / name)
        for v, e in zip(g.outputs, expected):
            np.testing.assert_allclose(got[v.name], e, rtol=1e-6, atol=1e-6)
