"""The IR core: types, graph construction, the registry's attribute handling, the verifier and
the interpreter's checks of its feeds."""

from __future__ import annotations

import numpy as np
import pytest

from ir import DType, Graph, QuantParams, TensorType, make_node
from ir.interpreter import InterpreterError, Schedule, run
from ir.ops.registry import Attr, OpError, get_op
from ir.verifier import VerifyError, verify


def _relu_graph() -> Graph:
    g = Graph("g")
    x = g.add_input("x", TensorType((2, 3), DType.f32))
    c = g.add_const(np.arange(3, dtype=np.float32), "c")
    s = make_node(g, "Add", [x, c], name="add").outputs[0]
    g.outputs = make_node(g, "Relu", [s], name="relu").outputs
    return g


def test_types_roundtrip_numpy_dtypes() -> None:
    for dt in DType:
        assert DType.from_numpy(dt.np) is dt
    with pytest.raises(TypeError):
        DType.from_numpy(np.complex64)


def test_quant_params_validation() -> None:
    qp = QuantParams.per_tensor(0.5, 3)
    assert not qp.per_channel and qp.scale == (0.5,)
    with pytest.raises(ValueError):
        QuantParams((0.0,), (0,))
    with pytest.raises(ValueError):
        QuantParams((1.0, 2.0), (0, 0), None)
    with pytest.raises(ValueError):
        QuantParams((1.0,), (0, 1), 0)
    for bad in (float("inf"), float("nan"), -0.5, np.float32("inf"), np.float64("nan")):
        with pytest.raises(ValueError, match="positive and finite"):
            QuantParams((1.0, bad), (0, 0), 0)  # any channel's scale
    assert QuantParams((np.float32(0.25), np.float64(2.0)), (0, 0), 0).per_channel


def test_tensor_type_rejects_bad_dims() -> None:
    with pytest.raises(ValueError):
        TensorType((1, -1), DType.f32)
    assert TensorType((2, 3), DType.i8).nbytes == 6


def test_graph_names_are_unique_and_fresh() -> None:
    g = Graph()
    g.add_input("x", TensorType((1,), DType.f32))
    with pytest.raises(ValueError):
        g.add_input("x", TensorType((1,), DType.f32))
    assert g.fresh_name("x") == "x_1"


def test_interpreter_runs_and_checks_feeds() -> None:
    g = _relu_graph()
    verify(g)
    x = np.array([[-5, 0, 1], [1, -2, -3]], dtype=np.float32)
    (y,) = run(g, {"x": x}).values()
    np.testing.assert_array_equal(y, np.maximum(x + np.arange(3), 0))
    with pytest.raises(InterpreterError, match="shape"):
        run(g, {"x": np.zeros((3, 2), np.float32)})
    with pytest.raises(InterpreterError, match="unknown input"):
        run(g, {"x": x, "z": x})
    with pytest.raises(InterpreterError, match="not given"):
        run(g, {})
    with pytest.raises(InterpreterError, match="dtype"):
        run(g, {"x": x.astype(np.complex64)})


def test_interpreter_keep_returns_intermediates() -> None:
    g = _relu_graph()
    vals = run(g, {"x": np.ones((2, 3), np.float32)}, keep=True)
    assert set(vals) >= {"x", "add", "relu"}


def test_interpreter_schedule_is_reused_and_never_stale() -> None:
    """A Schedule made once runs the graph as a fresh run does, every node observed; one
    made for another graph is not used for this one."""
    g, other = _relu_graph(), _relu_graph()
    x = np.array([[-5, 0, 1], [1, -2, -3]], dtype=np.float32)
    plan = Schedule(g)
    seen: list[str] = []
    for _ in range(2):
        got = run(g, {"x": x}, schedule=plan, observe=lambda n, _o: seen.append(n.name))
        np.testing.assert_array_equal(got["relu"], run(g, {"x": x})["relu"])
    assert seen == ["add", "relu"] * 2
    other.nodes[1].op = "Neg"  # a different graph: its own schedule is made
    np.testing.assert_array_equal(run(other, {"x": x}, schedule=plan)["relu"],
                                  -(x + np.arange(3)))


def test_verifier_catches_use_before_def_and_bad_types() -> None:
    g = _relu_graph()
    g.nodes.reverse()
    with pytest.raises(VerifyError, match="before it is defined"):
        verify(g)
    g = _relu_graph()
    g.nodes[1].outputs[0].type = TensorType((9,), DType.f32)
    with pytest.raises(VerifyError, match="expected"):
        verify(g)
    g = _relu_graph()
    g.nodes[0].attrs["bogus"] = 1
    with pytest.raises(VerifyError, match="unknown attribute"):
        verify(g)


def test_attr_coercion() -> None:
    assert Attr("ints", []).coerce((1, 2), "x") == [1, 2]
    assert Attr("float").coerce(1, "x") == 1.0
    with pytest.raises(OpError):
        Attr("int").coerce(1.5, "x")
    with pytest.raises(OpError):
        Attr("ints").coerce("12", "x")
    with pytest.raises(OpError):
        Attr("bool").coerce(2, "x")


def test_registry_rejects_wrong_arity() -> None:
    with pytest.raises(OpError, match="takes"):
        get_op("Add").check_arity(3)


def test_graph_equality_is_structural() -> None:
    assert _relu_graph() == _relu_graph()
    other = _relu_graph()
    other.constants[0].data = other.constants[0].data + 1
    assert other != _relu_graph()
