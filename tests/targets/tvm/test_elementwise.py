"""Requantize, QAdd, QMul, QLut, Quantize and Dequantize through the tvm target: bit-exact
with the interpreter (broadcasting, zero points, clamps, shifts over the encodable range,
rounding ties of both requantisation and float-to-integer rounding, NaN and infinities)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("tvm", reason="the tvm target needs Apache TVM (pip install apache-tvm)")

from ir import qmath  # noqa: E402
from ir.types import DType, QuantParams  # noqa: E402
from tests.targets.tvm.harness import (  # noqa: E402
    ACT,
    Operand,
    act_params,
    assert_exact,
    codes,
    feeds_of,
    multiplier,
    one_node,
    out_attrs,
)

SETTINGS = settings(max_examples=25, deadline=None)
shapes = st.lists(st.integers(1, 5), min_size=0, max_size=4).map(tuple)


def broadcast_pair(draw: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Two shapes that broadcast together (ones and missing leading axes on either side)."""
    full = draw(shapes)
    a = tuple(1 if draw(st.integers(0, 3)) == 0 else d for d in full)
    b = tuple(1 if draw(st.integers(0, 3)) == 0 else d for d in full)
    return a[draw(st.integers(0, len(a))):], b[draw(st.integers(0, len(b))):]


def operand(draw: Any, shape: tuple[int, ...], const: bool = False) -> Operand:
    dt, zp, scale = act_params(draw)
    return codes(draw, shape, dt), QuantParams.per_tensor(scale, zp), const


@SETTINGS
@given(st.data())
def test_requantize_bit_exact(data: st.DataObject) -> None:
    x = operand(data.draw, data.draw(shapes))
    assert x[1] is not None
    attrs = out_attrs(data.draw, x[1].scale[0] / multiplier(data.draw, (-1, 7)))
    assert_exact(one_node("Requantize", [x], **attrs), feeds_of([x]))


@SETTINGS
@given(st.data())
def test_qadd_bit_exact(data: st.DataObject) -> None:
    sa, sb = broadcast_pair(data.draw)
    a, b = operand(data.draw, sa), operand(data.draw, sb, data.draw(st.booleans()))
    assert a[1] is not None and b[1] is not None
    big = 2 * max(a[1].scale[0], b[1].scale[0])
    # s / (2^L s_y) is the output multiplier: draw it over its range
    scale = big / (2.0**20 * multiplier(data.draw, (17, 27)))
    attrs = out_attrs(data.draw, scale, act=True)
    assert_exact(one_node("QAdd", [a, b], **attrs), feeds_of([a, b]))


@SETTINGS
@given(st.data())
def test_qmul_bit_exact(data: st.DataObject) -> None:
    sa, sb = broadcast_pair(data.draw)
    a, b = operand(data.draw, sa), operand(data.draw, sb, data.draw(st.booleans()))
    assert a[1] is not None and b[1] is not None
    attrs = out_attrs(data.draw, a[1].scale[0] * b[1].scale[0]
                      / multiplier(data.draw, (4, 15)))
    assert_exact(one_node("QMul", [a, b], **attrs), feeds_of([a, b]))


@SETTINGS
@given(st.data())
def test_qlut_bit_exact(data: st.DataObject) -> None:
    x = operand(data.draw, data.draw(shapes))
    out_dt, zp, scale = act_params(data.draw)
    table = [int(v) for v in codes(data.draw, (256,), out_dt)]
    attrs = {"table": table, "out_dtype": out_dt.value, "out_scale": scale, "out_zp": zp}
    assert_exact(one_node("QLut", [x], **attrs), feeds_of([x]))


def floats_for(draw: Any, shape: tuple[int, ...], scales: np.ndarray, axis: int | None,
               zps: np.ndarray) -> np.ndarray:
    """Float inputs that land on rounding ties (x / scale = k + 0.5), on the saturation
    edges and past them, and NaN and +-inf."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    s = scales.reshape([-1 if k == axis else 1 for k in range(len(shape))]) \
        if axis is not None else scales.reshape(())
    steps = rng.integers(-300, 300, size=shape) + rng.choice([0.0, 0.5, 0.25], size=shape)
    x = (steps * s).astype(np.float32)
    special = rng.choice(np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, 0.0],
                                  dtype=np.float32), size=shape)
    return np.where(rng.random(size=shape) < 0.1, special, x).astype(np.float32)


@SETTINGS
@given(st.data())
def test_quantize_bit_exact(data: st.DataObject) -> None:
    shape = data.draw(st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple))
    dt = data.draw(st.sampled_from([*ACT, DType.u16, DType.i16]))
    lo, hi = qmath.qrange(dt)
    axis = data.draw(st.integers(0, len(shape) - 1)) if data.draw(st.booleans()) else None
    n = shape[axis] if axis is not None else 1
    scales = np.asarray([act_params(data.draw)[2] for _ in range(n)], dtype=np.float32)
    zps = np.asarray([data.draw(st.integers(lo, hi)) for _ in range(n)], dtype=np.int64)
    x = floats_for(data.draw, shape, scales, axis, zps)
    attrs = {"dtype": dt.value, "scale": [float(s) for s in scales],
             "zero_point": [int(z) for z in zps], "axis": axis if axis is not None else 0}
    ops: list[Operand | None] = [(x, None, False)]
    assert_exact(one_node("Quantize", ops, **attrs), feeds_of(ops))


@SETTINGS
@given(st.data())
def test_dequantize_bit_exact(data: st.DataObject) -> None:
    shape = data.draw(st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple))
    dt = data.draw(st.sampled_from([*ACT, DType.i32]))
    axis = data.draw(st.integers(0, len(shape) - 1)) if data.draw(st.booleans()) else None
    n = shape[axis] if axis is not None else 1
    lo, hi = qmath.qrange(dt) if dt is not DType.i32 else (-(2**31), 2**31 - 1)
    scales = tuple(act_params(data.draw)[2] for _ in range(n))
    zps = tuple(data.draw(st.integers(max(lo, -1000), min(hi, 1000))) for _ in range(n))
    q = QuantParams(scales, zps, axis) if axis is not None else QuantParams(scales, zps)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = rng.integers(lo, hi, size=shape, endpoint=True).astype(dt.np)
    ops: list[Operand | None] = [(x, q, False)]
    assert_exact(one_node("Dequantize", ops), feeds_of(ops))
