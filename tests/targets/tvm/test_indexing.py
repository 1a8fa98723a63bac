"""Pad, Gather, ScatterND and the ReduceX ops through the tvm target against the
interpreter: data movement exact on codes and floats (every pad mode, crops, negative
indices, indices fed at run time and their range check), max/min exact, float sums and means
within rtol 1e-5 (float64 there, numpy's pairwise float32 here)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("tvm", reason="the tvm targets need Apache TVM (pip install 'qnnc[tvm]')")

from ir.interpreter import run as interpret  # noqa: E402
from ir.types import DType, QuantParams  # noqa: E402
from tests.targets.tvm.harness import (  # noqa: E402
    Operand,
    assert_close,
    assert_exact,
    codes,
    feeds_of,
    one_node,
)

SETTINGS = settings(max_examples=20, deadline=None)


def tensor(draw: Any, shape: tuple[int, ...], kind: str) -> Operand:
    if kind == "u8":
        return codes(draw, shape, DType.u8), QuantParams.per_tensor(0.1, 128), False
    if kind == "i32":
        return codes(draw, shape, DType.i32) // 7, None, False
    seed = draw(st.integers(0, 2**32 - 1))
    return (np.random.default_rng(seed).standard_normal(shape).astype(np.float32) * 3,
            None, False)


@SETTINGS
@given(st.data())
def test_pad_every_mode_exact(data: st.DataObject) -> None:
    rank = data.draw(st.integers(1, 3))
    shape = tuple(data.draw(st.integers(2, 5)) for _ in range(rank))
    mode = data.draw(st.sampled_from(["constant", "reflect", "edge", "wrap"]))
    kind = data.draw(st.sampled_from(["u8", "f32"]))
    lo = -1 if mode == "constant" else 0
    pads = [data.draw(st.integers(lo, shape[i % rank] - 1)) for i in range(2 * rank)]
    x = tensor(data.draw, shape, kind)
    value = 7.0 if kind == "u8" else -2.5
    attrs: dict[str, Any] = {"pads": pads, "mode": mode}
    if mode == "constant":
        attrs["value"] = value
    assert_exact(one_node("Pad", [x], **attrs), feeds_of([x]))


@SETTINGS
@given(st.data())
def test_gather_constant_indices_exact(data: st.DataObject) -> None:
    rank = data.draw(st.integers(1, 3))
    shape = tuple(data.draw(st.integers(1, 5)) for _ in range(rank))
    axis = data.draw(st.integers(0, rank - 1))
    ishape = tuple(data.draw(st.integers(1, 3)) for _ in range(data.draw(st.integers(0, 2))))
    n = shape[axis]
    seed = data.draw(st.integers(0, 2**32 - 1))
    idx = np.random.default_rng(seed).integers(-n, n, size=ishape).astype(np.int64)
    x = tensor(data.draw, shape, data.draw(st.sampled_from(["u8", "f32"])))
    operands: list[Operand | None] = [x, (idx, None, True)]
    assert_exact(one_node("Gather", operands, axis=axis), feeds_of(operands))


@SETTINGS
@given(st.data())
def test_reductions(data: st.DataObject) -> None:
    rank = data.draw(st.integers(1, 4))
    shape = tuple(data.draw(st.integers(1, 6)) for _ in range(rank))
    axes = sorted(data.draw(st.sets(st.integers(0, rank - 1), max_size=rank)))
    keep = data.draw(st.booleans())
    op = data.draw(st.sampled_from(["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin"]))
    kind = "f32" if op in ("ReduceSum", "ReduceMean") else data.draw(
        st.sampled_from(["f32", "i32"]))
    x = tensor(data.draw, shape, kind)
    g = one_node(op, [x], axes=axes, keepdims=keep)
    if op in ("ReduceMax", "ReduceMin"):
        assert_exact(g, feeds_of([x]))
    else:  # sums of up to 1296 terms of size ~3: absolute error scaled to the magnitude
        assert_close(g, feeds_of([x]), rtol=1e-5, atol=1e-5 * float(np.abs(x[0]).sum()))


def index_operand(draw: Any, dims: list[int], shape: tuple[int, ...], const: bool,
                  dtype: Any = np.int64) -> Operand:
    """Indices of ``shape`` valid for axes of ``dims`` (one dim, or one per entry of the last
    axis), negative ones included."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if len(dims) == 1:
        idx = rng.integers(-dims[0], dims[0], size=shape)
    else:
        idx = np.stack([rng.integers(-d, d, size=shape[:-1]) for d in dims], -1)
    return idx.astype(dtype), None, const


@SETTINGS
@given(st.data())
def test_gather_runtime_indices_exact(data: st.DataObject) -> None:
    """Indices fed at run time (int32 or int64, negative ones too, scalar indices too)."""
    rank = data.draw(st.integers(1, 3))
    shape = tuple(data.draw(st.integers(1, 5)) for _ in range(rank))
    axis = data.draw(st.integers(0, rank - 1))
    ishape = tuple(data.draw(st.integers(1, 3)) for _ in range(data.draw(st.integers(0, 2))))
    dtype = data.draw(st.sampled_from([np.int32, np.int64]))
    x = tensor(data.draw, shape, data.draw(st.sampled_from(["u8", "f32"])))
    operands: list[Operand | None] = [x, index_operand(data.draw, [shape[axis]], ishape,
                                                       False, dtype)]
    assert_exact(one_node("Gather", operands, axis=axis), feeds_of(operands))


@SETTINGS
@given(st.data())
def test_scatter_nd_every_reduction_exact(data: st.DataObject) -> None:
    """Index tuples of 1..rank entries, constant or fed, repeated positions (the last write
    wins with reduction none; add, mul, max, min accumulate in order)."""
    rank = data.draw(st.integers(1, 3))
    shape = tuple(data.draw(st.integers(1, 4)) for _ in range(rank))
    q = data.draw(st.integers(1, rank))
    tuples = tuple(data.draw(st.integers(1, 3)) for _ in range(data.draw(st.integers(1, 2))))
    how = data.draw(st.sampled_from(["none", "add", "mul", "max", "min"]))
    kind = "f32" if how in ("add", "mul") else data.draw(st.sampled_from(["u8", "f32"]))
    x = tensor(data.draw, shape, kind)
    idx = index_operand(data.draw, list(shape[:q]), (*tuples, q), data.draw(st.booleans()))
    upd = tensor(data.draw, (*tuples, *shape[q:]), kind)
    if kind == "u8":
        upd = (upd[0], x[1], False)  # one tensor type for data and updates
    operands: list[Operand | None] = [x, idx, upd]
    assert_exact(one_node("ScatterND", operands, reduction=how), feeds_of(operands))


def test_an_index_out_of_range_stops_the_run_naming_the_node() -> None:
    """Gather and ScatterND with an index past the axis, or before -n: the run raises the
    interpreter's error naming the node, and in-range feeds still run after it."""
    from ir.errors import InputError
    from targets.tvm.build import TvmSession, compile_graph, signature

    x = (np.arange(12, dtype=np.float32).reshape(4, 3), None, False)
    gather = one_node("Gather", [x, (np.array([0, 1], np.int64), None, False)], axis=0)
    scatter = one_node("ScatterND", [x, (np.array([[1], [2]], np.int64), None, False),
                                     (np.ones((2, 3), np.float32), None, True)])
    for g, bad in ((gather, np.array([0, 4])), (gather, np.array([-5, 0])),
                   (scatter, np.array([[1], [4]]))):
        session = TvmSession(compile_graph(g), signature(g))
        names = [v.name for v in g.outputs]
        with pytest.raises(InputError, match=rf"node '{g.nodes[0].name}' \({g.nodes[0].op}\)"):
            session.run(names, {"x0": x[0], "x1": bad})
        good = {"x0": x[0], "x1": np.clip(bad, -3, 3)}
        np.testing.assert_array_equal(session.run(names, good)[0],
                                      interpret(g, good)[names[0]])
