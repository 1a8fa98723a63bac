"""Comparisons, boolean logic, Where and integer arithmetic through the tvm target, exact
against the interpreter on every element type they take (nan compared as IEEE says;
integer sums and products wrapping as numpy's do)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("tvm", reason="the tvm target needs Apache TVM (pip install apache-tvm)")

from tests.targets.tvm.harness import Operand, assert_exact, feeds_of, one_node  # noqa: E402

SETTINGS = settings(max_examples=20, deadline=None)
shapes = st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple)
NUMERIC = ["float32", "float64", "int64", "int32", "uint8", "int8"]


def tensor(draw: Any, shape: tuple[int, ...], dtype: str, const: bool = False) -> Operand:
    """Values of ``dtype`` with repeats (so equality holds often), the type's extremes for
    integers and nan and infinities for floats."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if dtype == "bool":
        return rng.random(shape) < 0.5, None, const
    if dtype.startswith("float"):
        pool = np.array([0.0, -0.0, 1.5, -2.0, 3.25, np.nan, np.inf, -np.inf], dtype)
    else:
        info = np.iinfo(dtype)
        pool = np.array([info.min, info.max, 0, 1, -1 if info.min < 0 else 2, 7], dtype)
    return rng.choice(pool, size=shape), None, const


def broadcast_pair(draw: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Two shapes that broadcast: the second a suffix of the first with some axes 1."""
    a = draw(shapes)
    b = tuple(1 if draw(st.booleans()) else d for d in a[draw(st.integers(0, len(a))):])
    return (a, b) if draw(st.booleans()) else (b, a)


@SETTINGS
@given(st.data())
def test_comparisons(data: st.DataObject) -> None:
    op = data.draw(st.sampled_from(["Equal", "Less", "Greater", "LessOrEqual",
                                    "GreaterOrEqual"]))
    dtype = data.draw(st.sampled_from(NUMERIC))
    sa, sb = broadcast_pair(data.draw)
    ops = [tensor(data.draw, sa, dtype), tensor(data.draw, sb, dtype, data.draw(st.booleans()))]
    assert_exact(one_node(op, ops), feeds_of(ops))


@SETTINGS
@given(st.data())
def test_boolean_logic(data: st.DataObject) -> None:
    op = data.draw(st.sampled_from(["And", "Or", "Xor", "Equal", "Not"]))
    sa, sb = broadcast_pair(data.draw)
    ops = [tensor(data.draw, sa, "bool")]
    if op != "Not":
        ops.append(tensor(data.draw, sb, "bool"))
    assert_exact(one_node(op, ops), feeds_of(ops))


@SETTINGS
@given(st.data())
def test_where_broadcasts_all_three(data: st.DataObject) -> None:
    dtype = data.draw(st.sampled_from([*NUMERIC, "bool"]))
    sa, sb = broadcast_pair(data.draw)
    sc = sa[data.draw(st.integers(0, len(sa))):]
    ops = [tensor(data.draw, sc, "bool"), tensor(data.draw, sa, dtype),
           tensor(data.draw, sb, dtype, data.draw(st.booleans()))]
    assert_exact(one_node("Where", ops), feeds_of(ops))


@SETTINGS
@given(st.data())
def test_integer_arithmetic_wraps(data: st.DataObject) -> None:
    op = data.draw(st.sampled_from(["Add", "Sub", "Mul", "Max", "Min"]))
    dtype = data.draw(st.sampled_from(["int64", "int32", "uint8", "int8"]))
    sa, sb = broadcast_pair(data.draw)
    ops = [tensor(data.draw, sa, dtype), tensor(data.draw, sb, dtype, data.draw(st.booleans()))]
    with np.errstate(over="ignore"):
        assert_exact(one_node(op, ops), feeds_of(ops))
