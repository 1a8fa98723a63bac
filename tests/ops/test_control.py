"""If, Loop, Scan: ONNX models with subgraphs imported and interpreted, against onnxruntime
(float32, tolerance 1e-5 relative). The model builders are shared with the C tests."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from compiler.errors import ConversionError
from compiler.frontend.importer import import_model
from ir.interpreter import run as interpret
from ir.verifier import verify

F, B, I64 = TensorProto.FLOAT, TensorProto.BOOL, TensorProto.INT64


def _vi(name: str, t: int, shape: list[int] | None) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, t, shape)


def _model(nodes: list, inputs: list, outputs: list, inits: list = (), opset: int = 17,
           ) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "m", inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def _const(name: str, value: np.ndarray) -> onnx.TensorProto:
    return onnx.numpy_helper.from_array(np.asarray(value), name)


def if_model(const_cond: bool | None = None, computed: bool = False) -> onnx.ModelProto:
    """y = relu(2x + k) if c else -x; k an outer initializer, 2x an outer value (captures).
    ``computed``: c = sum(x) > 0, a condition computed at run time (silero-vad's If on its
    sample rate is one)."""
    then_g = helper.make_graph(
        [helper.make_node("Add", ["w", "k"], ["t0"]), helper.make_node("Relu", ["t0"], ["t"])],
        "then", [], [_vi("t", F, [2, 3])])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [],
                               [_vi("e", F, [2, 3])])
    nodes = [helper.make_node("Mul", ["x", "two"], ["w"]),
             helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)]
    inits = [_const("two", np.float32(2)), _const("k", np.full((2, 3), -1.5, np.float32))]
    inputs = [_vi("x", F, [2, 3])]
    if computed:
        nodes[:0] = [helper.make_node("ReduceSum", ["x"], ["tot"], keepdims=0),
                     helper.make_node("Greater", ["tot", "zero"], ["c"])]
        inits.append(_const("zero", np.float32(0)))
    elif const_cond is None:
        inputs.append(_vi("c", B, []))
    else:
        inits.append(_const("c", np.array(const_cond)))
    return _model(nodes, inputs, [_vi("y", F, [2, 3])], inits)


def loop_model(trip: int = 4) -> onnx.ModelProto:
    """acc += x for m iterations; scan output acc * acc; an If on the sum of acc inside the
    body reads the outermost x (a capture through two levels)."""
    inner_then = helper.make_graph([helper.make_node("Add", ["a2", "x"], ["p"])], "it", [],
                                   [_vi("p", F, [2])])
    inner_else = helper.make_graph([helper.make_node("Sub", ["a2", "x"], ["q"])], "ie", [],
                                   [_vi("q", F, [2])])
    body = helper.make_graph(
        [helper.make_node("Add", ["acc", "x"], ["a2"]),
         helper.make_node("Mul", ["a2", "a2"], ["s"]),
         helper.make_node("ReduceSum", ["a2"], ["tot"], keepdims=0),
         helper.make_node("Less", ["tot", "two"], ["small"]),
         helper.make_node("If", ["small"], ["a3"], then_branch=inner_then,
                          else_branch=inner_else),
         helper.make_node("Identity", ["cin"], ["cout"])],
        "body", [_vi("i", I64, []), _vi("cin", B, []), _vi("acc", F, [2])],
        [_vi("cout", B, []), _vi("a3", F, [2]), _vi("s", F, [2])])
    nodes = [helper.make_node("Loop", ["m", "", "x0"], ["acc_out", "scan"], body=body)]
    inits = [_const("m", np.int64(trip)), _const("two", np.float32(2))]
    return _model(nodes, [_vi("x", F, [2]), _vi("x0", F, [2])],
                  [_vi("acc_out", F, [2]), _vi("scan", F, [trip, 2])], inits)


def while_model() -> onnx.ModelProto:
    """Doubles x until its sum exceeds 50: a condition computed at run time, no m."""
    body = helper.make_graph(
        [helper.make_node("Mul", ["v", "two"], ["v2"]),
         helper.make_node("ReduceSum", ["v2"], ["tot"], keepdims=0),
         helper.make_node("Less", ["tot", "lim"], ["go"])],
        "body", [_vi("i", I64, []), _vi("cin", B, []), _vi("v", F, [3])],
        [_vi("go", B, []), _vi("v2", F, [3])])
    nodes = [helper.make_node("Loop", ["", "c", "x"], ["y"], body=body)]
    inits = [_const("two", np.float32(2)), _const("lim", np.float32(50)),
             _const("c", np.array(True))]
    return _model(nodes, [_vi("x", F, [3])], [_vi("y", F, [3])], inits)


def scan_model(reverse: int = 0, out_axis: int = 0) -> onnx.ModelProto:
    """s = tanh(s + x_t) * w; y_t = s + 1; scanned along axis 1 of x [2, 3, 4]."""
    body = helper.make_graph(
        [helper.make_node("Add", ["s", "xt"], ["a"]), helper.make_node("Tanh", ["a"], ["b"]),
         helper.make_node("Mul", ["b", "w"], ["s2"]),
         helper.make_node("Add", ["s2", "one"], ["yt"])],
        "body", [_vi("s", F, [2, 4]), _vi("xt", F, [2, 4])],
        [_vi("s2", F, [2, 4]), _vi("yt", F, [2, 4])])
    node = helper.make_node("Scan", ["s0", "x"], ["s_out", "ys"], body=body, num_scan_inputs=1,
                            scan_input_axes=[1], scan_input_directions=[reverse],
                            scan_output_axes=[out_axis])
    ys = [3, 2, 4] if out_axis == 0 else [2, 4, 3]
    return _model([node], [_vi("s0", F, [2, 4]), _vi("x", F, [2, 3, 4]), _vi("w", F, [2, 4])],
                  [_vi("s_out", F, [2, 4]), _vi("ys", F, ys)],
                  [_const("one", np.float32(1))])


def feeds_for(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for i in model.graph.input:
        tt = i.type.tensor_type
        shape = [d.dim_value for d in tt.shape.dim]
        if tt.elem_type == B:
            out[i.name] = np.array(rng.random() < 0.5)
        else:
            out[i.name] = rng.standard_normal(shape).astype(np.float32)
    return out


def _check(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> None:
    g = import_model(model)
    verify(g)
    got = interpret(g, feeds)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, feeds)
    for o, w in zip(model.graph.output, want):
        np.testing.assert_allclose(got[o.name], w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cond", [True, False])
def test_if_at_run_time(cond: bool) -> None:
    model = if_model()
    g = import_model(model)
    (node,) = [n for n in g.nodes if n.op == "If"]
    # x is captured (the else branch reads it), w = 2x too; k, a constant, is copied in
    assert len(node.captures) == 2 and all(not v.is_const for v in node.captures)
    feeds = feeds_for(model)
    feeds["c"] = np.array(cond)
    _check(model, feeds)


@pytest.mark.parametrize("cond", [True, False])
def test_if_on_a_constant_becomes_its_branch(cond: bool) -> None:
    model = if_model(const_cond=cond)
    g = import_model(model)
    assert "If" not in g.op_counts()
    _check(model, feeds_for(model))


def test_if_branches_of_different_shapes_are_named() -> None:
    model = if_model()
    (else_g,) = [a.g for a in model.graph.node[1].attribute if a.name == "else_branch"]
    else_g.node[0].op_type = "Transpose"  # else: [3, 2]
    else_g.output[0].type.tensor_type.shape.Clear()
    with pytest.raises(ConversionError, match="If_1.*different types"):
        import_model(model)


def test_loop_with_scan_outputs_and_nested_capture() -> None:
    model = loop_model()
    g = import_model(model)
    (node,) = g.nodes
    assert node.op == "Loop" and node.attrs["trip_count"] == 4
    inner = [n for n in node.regions[0].nodes if n.op == "If"]
    assert len(inner) == 1 and len(inner[0].captures) == 2  # a2 and the outermost x
    _check(model, feeds_for(model))


def test_loop_until_a_run_time_condition() -> None:
    model = while_model()
    _check(model, {"x": np.array([0.5, 1.0, 0.25], np.float32)})


def test_loop_scan_outputs_need_a_static_trip_count() -> None:
    model = loop_model()
    model.graph.initializer.pop(0)  # m becomes an input of unknown value
    model.graph.input.append(_vi("m", I64, []))
    model.graph.output[1].type.tensor_type.shape.dim[0].dim_param = "T"
    with pytest.raises(ConversionError, match="Loop_0.*static trip count|run-time length"):
        import_model(model)


@pytest.mark.parametrize("reverse, out_axis", [(0, 0), (1, 2)])
def test_scan(reverse: int, out_axis: int) -> None:
    model = scan_model(reverse, out_axis)
    _check(model, feeds_for(model))


def test_scan_of_opset_8_with_a_batch_of_two() -> None:
    """Opset 8's batch axis: each batch element scans on its own (one IR Scan each)."""
    body = helper.make_graph(
        [helper.make_node("Add", ["s", "xt"], ["s2"]), helper.make_node("Tanh", ["s2"], ["y"])],
        "body", [_vi("s", F, [3]), _vi("xt", F, [3])], [_vi("s2", F, [3]), _vi("y", F, [3])])
    node = helper.make_node("Scan", ["", "s0", "x"], ["s_out", "ys"], body=body,
                            num_scan_inputs=1, directions=[1])
    model = _model([node], [_vi("s0", F, [2, 3]), _vi("x", F, [2, 4, 3])],
                   [_vi("s_out", F, [2, 3]), _vi("ys", F, [2, 4, 3])], opset=8)
    assert import_model(model).op_counts()["Scan"] == 2
    _check(model, feeds_for(model))


def test_loop_without_a_cond_operand_still_stops_on_the_body_cond() -> None:
    """With cond omitted (a for loop of m trips in ONNX's prose), the body's cond output,
    false from the first iteration on, still stops the loop, as in onnxruntime."""
    body = helper.make_graph(
        [helper.make_node("Add", ["v", "one"], ["v2"]),
         helper.make_node("ReduceSum", ["v2"], ["tot"], keepdims=0),
         helper.make_node("Greater", ["tot", "big"], ["stop"]),
         helper.make_node("Not", ["stop"], ["go"])],
        "body", [_vi("i", I64, []), _vi("cin", B, []), _vi("v", F, [2])],
        [_vi("go", B, []), _vi("v2", F, [2])])
    nodes = [helper.make_node("Loop", ["m", "", "x"], ["y"], body=body)]
    model = _model(nodes, [_vi("x", F, [2])], [_vi("y", F, [2])],
                   [_const("m", np.int64(3)), _const("one", np.float32(1)),
                    _const("big", np.float32(-100))])
    got = interpret(import_model(model), {"x": np.zeros(2, np.float32)})
    assert got["y"].tolist() == [1, 1]
    _check(model, {"x": np.zeros(2, np.float32)})
