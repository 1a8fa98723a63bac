"""Data movement (Reshape, Transpose, Concat, Slice, DepthToSpace) on 8-bit codes through the tvm
target: bit-exact with the interpreter."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("tvm", reason="the tvm target needs Apache TVM (pip install apache-tvm)")

from ir.types import QuantParams  # noqa: E402
from tests.targets.tvm.harness import (  # noqa: E402
    Operand,
    act_params,
    assert_exact,
    codes,
    feeds_of,
    one_node,
)

SETTINGS = settings(max_examples=25, deadline=None)
shapes = st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple)


def quantised(draw: Any, shape: tuple[int, ...]) -> Operand:
    dt, zp, scale = act_params(draw)
    return codes(draw, shape, dt), QuantParams.per_tensor(scale, zp), False


@SETTINGS
@given(st.data())
def test_reshape_bit_exact(data: st.DataObject) -> None:
    x = quantised(data.draw, data.draw(shapes))
    size = x[0].size
    dims = [d for d in range(1, size + 1) if size % d == 0]
    first = data.draw(st.sampled_from(dims))
    shape = [first, size // first] if data.draw(st.booleans()) else [size]
    assert_exact(one_node("Reshape", [x], shape=shape), feeds_of([x]))


@SETTINGS
@given(st.data())
def test_transpose_bit_exact(data: st.DataObject) -> None:
    x = quantised(data.draw, data.draw(shapes))
    perm = data.draw(st.permutations(range(x[0].ndim)))
    assert_exact(one_node("Transpose", [x], perm=list(perm)), feeds_of([x]))


@SETTINGS
@given(st.data())
def test_concat_bit_exact(data: st.DataObject) -> None:
    shape = data.draw(shapes)
    axis = data.draw(st.integers(0, len(shape) - 1))
    dt, zp, scale = act_params(data.draw)
    q = QuantParams.per_tensor(scale, zp)
    parts: list[Operand | None] = []
    for _ in range(data.draw(st.integers(1, 4))):
        part = list(shape)
        part[axis] = data.draw(st.integers(1, 4))
        parts.append((codes(data.draw, tuple(part), dt), q, data.draw(st.booleans())))
    assert_exact(one_node("Concat", parts, axis=axis), feeds_of(parts))


@SETTINGS
@given(st.data())
def test_slice_bit_exact(data: st.DataObject) -> None:
    x = quantised(data.draw, data.draw(shapes))
    starts, ends, steps = [], [], []
    for dim in x[0].shape:
        step = data.draw(st.sampled_from([1, 2, 3, -1, -2, -3]))
        if step > 0:
            s = data.draw(st.integers(0, dim - 1))
            e = data.draw(st.integers(s + 1, dim))
        else:
            s = data.draw(st.integers(0, dim - 1))
            e = data.draw(st.integers(-1, s - 1))
        starts.append(s)
        ends.append(e)
        steps.append(step)
    assert_exact(one_node("Slice", [x], starts=starts, ends=ends, steps=steps), feeds_of([x]))


@SETTINGS
@given(st.data())
def test_tile_bit_exact(data: st.DataObject) -> None:
    shape = data.draw(shapes)
    x = quantised(data.draw, shape)
    repeats = [data.draw(st.integers(0, 3)) for _ in shape]
    assert_exact(one_node("Tile", [x], repeats=repeats), feeds_of([x]))


@SETTINGS
@given(st.data())
def test_depth_to_space_bit_exact(data: st.DataObject) -> None:
    b = data.draw(st.integers(1, 3))
    c = data.draw(st.integers(1, 3))
    shape = (data.draw(st.integers(1, 2)), c * b * b, data.draw(st.integers(1, 4)),
             data.draw(st.integers(1, 4)))
    x = quantised(data.draw, shape)
    mode = data.draw(st.sampled_from(["DCR", "CRD"]))
    assert_exact(one_node("DepthToSpace", [x], blocksize=b, mode=mode), feeds_of([x]))
