"""Concat inputs computed in place inside the Concat's result (targets/c/memory.py): where
they go in the plan, where they may not, and the generated C equal to the interpreter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ir.build import make_node
from ir.graph import Graph, Value
from ir.interpreter import run as interpret
from ir.types import DType, TensorType
from targets.c.memory import MemoryPlan
from tests.codegen.harness import run_c
from tests.codegen.test_plan_and_cpu import host_plan

F32 = DType.f32


def _plan(g: Graph) -> MemoryPlan:
    return host_plan(g, contiguous=lambda v: True)


def _op(g: Graph, op: str, ins: list[Value], name: str, **attrs: object) -> Value:
    (y,) = make_node(g, op, ins, dict(attrs), name=name).outputs
    return y


def _index(g: Graph, name: str) -> int:
    return next(i for i, n in enumerate(g.nodes) if n.name == name)


def _fire(shape: tuple[int, ...] = (1, 4, 8)) -> tuple[Graph, dict[str, Value]]:
    """x -> a = Neg(x), b = Relu(x) -> y = Concat(a, b) -> z = Abs(y); a read again after."""
    g = Graph("fire")
    x = g.add_input("x", TensorType(shape, F32))
    a = _op(g, "Neg", [x], "a")
    b = _op(g, "Relu", [x], "b")
    y = _op(g, "Concat", [a, b], "y", axis=1)
    z = _op(g, "Abs", [y], "z")
    w = _op(g, "Sigmoid", [a], "w")
    g.outputs = [z, w]
    return g, {"x": x, "a": a, "b": b, "y": y, "z": z}


def test_blocks_of_the_result_are_computed_in_place() -> None:
    g, v = _fire()
    plan = _plan(g)
    y = plan.storage_of[id(v["y"])]
    assert plan.storage_of[id(v["a"])] is y and plan.storage_of[id(v["b"])] is y
    assert (plan.at(v["a"]), plan.at(v["b"]), plan.at(v["y"])) == (0, 4 * 8 * 4, 0)
    assert plan.placed == {_index(g, "y"): frozenset({0, 1})}
    # a is read after the Concat, so the storage lives until then and Abs may not overwrite it
    assert y.last == _index(g, "w")
    assert plan.storage_of[id(v["z"])] is not y


def test_only_whole_blocks_and_values_the_graph_computes_are_placed() -> None:
    g, v = _fire((2, 4, 8))  # two images: each input is two separate rows of the result
    assert not _plan(g).placed
    g = Graph("mixed")
    x = g.add_input("x", TensorType((1, 4, 8), F32))
    a = _op(g, "Neg", [x], "a")
    y = _op(g, "Concat", [x, a, a], "y", axis=1)  # a graph input; a value joined twice
    g.outputs = [_op(g, "Abs", [y], "z")]
    plan = _plan(g)
    assert not plan.placed and plan.storage_of[id(a)] is not plan.storage_of[id(y)]


def test_nested_concats_place_recursively() -> None:
    """DenseNet's growing blocks: c1 = [a, b] placed inside c2 = [c1, d], all one buffer."""
    g = Graph("dense")
    x = g.add_input("x", TensorType((1, 2, 3), F32))
    a = _op(g, "Neg", [x], "a")
    b = _op(g, "Relu", [a], "b")
    c1 = _op(g, "Concat", [a, b], "c1", axis=1)
    d = _op(g, "Abs", [c1], "d")
    c2 = _op(g, "Concat", [c1, d], "c2", axis=1)
    g.outputs = [c2]
    plan = _plan(g)
    out = plan.storage_of[id(c2)]
    assert out.kind == "output"
    assert all(plan.storage_of[id(t)] is out for t in (a, b, c1, d))
    assert [plan.at(t) for t in (a, b, c1, d)] == [0, 24, 0, 48]
    assert plan.arena_bytes == 0


@pytest.mark.parametrize("shape", [(1, 4, 8), (2, 4, 8)])
def test_generated_c_equals_the_interpreter(tmp_path: Path, shape: tuple[int, ...]) -> None:
    g = Graph("concats")
    x = g.add_input("x", TensorType(shape, F32))
    a = _op(g, "Neg", [x], "a")
    b = _op(g, "Relu", [x], "b")
    c1 = _op(g, "Concat", [a, x, b], "c1", axis=1)  # x is copied, a and b placed
    d = _op(g, "Abs", [c1], "d")
    c2 = _op(g, "Concat", [c1, d, d], "c2", axis=1)  # d twice: copied
    e = _op(g, "Relu", [a], "e")  # a read after both Concats (exact, unlike Sigmoid)
    g.outputs = [_op(g, "Neg", [c2], "out"), e]
    feeds = {"x": np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    want = interpret(g, feeds)
    got = run_c(g, feeds, tmp_path)
    for name, w in want.items():
        np.testing.assert_array_equal(got[name], w, err_msg=name)
    text = (tmp_path / "model.c").read_text()
    copies = text.count("memcpy(")
    assert copies == (3 if shape[0] == 1 else 6), text  # x, d, d; or all six inputs
