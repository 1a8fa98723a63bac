"""QConv, QLinear and QMatMul through the tvm target: bit-exact with the interpreter over
hypothesis-drawn geometry (strides, pads, dilations, groups, 1-3 spatial axes), zero
points, per-channel multipliers with shifts over the whole encodable range, fused clamps
and epilogue tables."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

pytest.importorskip("tvm", reason="the tvm target needs Apache TVM (pip install apache-tvm)")

from ir import qmath  # noqa: E402
from ir.ops.pool import pool_out  # noqa: E402
from ir.types import DType, QuantParams  # noqa: E402
from tests.targets.tvm.harness import (  # noqa: E402
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


def weights(draw: Any, shape: tuple[int, ...], s_x: float, s_y: float,
            useful: tuple[int, int]) -> Operand:
    """int8 weights, per channel (axis 0) or per tensor, whose scales make the multipliers
    s_x * s_w[c] / s_y the drawn ones; zero points usually 0 (the quantiser's), sometimes
    not (the IR allows them)."""
    channels = shape[0] if draw(st.booleans()) else 1
    scales = tuple(multiplier(draw, useful) * s_y / s_x for _ in range(channels))
    zps = tuple(draw(st.integers(-20, 20)) if draw(st.integers(0, 4)) == 0 else 0
                for _ in range(channels))
    q = QuantParams(scales, zps, 0) if channels > 1 else QuantParams(scales, zps)
    data = np.clip(codes(draw, shape, DType.i8), -127, 127).astype(np.int8)
    return data, q, draw(st.booleans())


def bias(draw: Any, n: int) -> Operand | None:
    if not draw(st.booleans()):
        return None
    limit = draw(st.sampled_from([2**10, 2**20, qmath.BIAS_LIMIT]))
    data = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).integers(
        -limit, limit + 1, size=n).astype(np.int32)
    return data, None, True


def lut(draw: Any) -> Operand | None:
    if draw(st.integers(0, 3)) != 0:
        return None
    dt, zp, scale = act_params(draw)
    return codes(draw, (256,), dt), QuantParams.per_tensor(scale, zp), True


@st.composite
def qconv_case(draw: Any) -> tuple[list[Operand | None], dict[str, Any]]:
    nsp = draw(st.sampled_from([1, 2, 2, 2, 3]))
    group = draw(st.integers(1, 3))
    cg, mg = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 6 if nsp < 3 else 3)) for _ in range(nsp)]
    kern = [draw(st.integers(1, 3)) for _ in range(nsp)]
    strides = [draw(st.integers(1, 3)) for _ in range(nsp)]
    dil = [draw(st.integers(1, 2)) for _ in range(nsp)]
    pads = [draw(st.integers(0, 2)) for _ in range(2 * nsp)]
    outs = [pool_out(sizes[i], kern[i], strides[i], dil[i], pads[i], pads[nsp + i], False)
            for i in range(nsp)]
    assume(all(o >= 1 for o in outs))
    xdt, zx, s_x = act_params(draw)
    x = codes(draw, (draw(st.integers(1, 2)), group * cg, *sizes), xdt)
    attrs = out_attrs(draw, 1.0, act=True)
    w = weights(draw, (group * mg, cg, *kern), s_x, attrs["out_scale"], (3, 14))
    attrs.update(strides=strides, pads=pads, dilations=dil, group=group)
    operands = [(x, QuantParams.per_tensor(s_x, zx), False), w, bias(draw, group * mg)]
    table = lut(draw)
    if table is not None:
        operands.append(table)
    return operands, attrs


@SETTINGS
@given(qconv_case())
def test_qconv_bit_exact(case: tuple[list[Operand | None], dict[str, Any]]) -> None:
    operands, attrs = case
    assert_exact(one_node("QConv", operands, **attrs), feeds_of(operands))


@st.composite
def qlinear_case(draw: Any) -> tuple[list[Operand | None], dict[str, Any]]:
    lead = draw(st.lists(st.integers(1, 3), max_size=2))
    k, n = draw(st.integers(1, 40)), draw(st.integers(1, 8))
    xdt, zx, s_x = act_params(draw)
    x = codes(draw, (*lead, k), xdt)
    attrs = out_attrs(draw, 1.0, act=True)
    w = weights(draw, (n, k), s_x, attrs["out_scale"], (3, 14))
    operands = [(x, QuantParams.per_tensor(s_x, zx), False), w, bias(draw, n)]
    table = lut(draw)
    if table is not None:
        operands.append(table)
    return operands, attrs


@SETTINGS
@given(qlinear_case())
def test_qlinear_bit_exact(case: tuple[list[Operand | None], dict[str, Any]]) -> None:
    operands, attrs = case
    assert_exact(one_node("QLinear", operands, **attrs), feeds_of(operands))


@st.composite
def qmatmul_case(draw: Any) -> tuple[list[Operand | None], dict[str, Any]]:
    k = draw(st.integers(1, 24))
    rank_a, rank_b = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    batch = [draw(st.integers(1, 3)) for _ in range(2)]

    def batch_of(rank: int) -> list[int]:
        dims = batch[2 - max(rank - 2, 0):] if rank > 2 else []
        return [1 if draw(st.integers(0, 3)) == 0 else d for d in dims]

    a_shape = [*batch_of(rank_a), draw(st.integers(1, 5)), k][-rank_a:] if rank_a > 1 else [k]
    b_shape = [*batch_of(rank_b), k, draw(st.integers(1, 5))] if rank_b > 1 else [k]
    adt, za, s_a = act_params(draw)
    bdt, zb, s_b = act_params(draw)
    attrs = out_attrs(draw, s_a * s_b / multiplier(draw, (3, 14)))
    operands: list[Operand | None] = [
        (codes(draw, tuple(a_shape), adt), QuantParams.per_tensor(s_a, za), False),
        (codes(draw, tuple(b_shape), bdt), QuantParams.per_tensor(s_b, zb),
         draw(st.booleans()))]
    table = lut(draw)
    if table is not None:
        operands.append(table)
    return operands, attrs


@SETTINGS
@given(qmatmul_case())
def test_qmatmul_bit_exact(case: tuple[list[Operand | None], dict[str, Any]]) -> None:
    operands, attrs = case
    assert_exact(one_node("QMatMul", operands, **attrs), feeds_of(operands))


def test_a_sum_that_outgrows_int32_is_exact() -> None:
    """70,000 products of 255 and 127 sum to 2.27e9, past int32: the accumulator must be
    int64 here (it is int32 only where every partial sum provably fits)."""
    k = 70_000
    x = np.full((1, k), 255, dtype=np.uint8)
    w = np.full((2, k), 127, dtype=np.int8)
    w[1, ::2] = -127  # the second row's sum stays small
    s_x, s_w = 1.0, 1.0
    operands: list[Operand | None] = [
        (x, QuantParams.per_tensor(s_x, 0), False),
        (w, QuantParams.per_tensor(s_w, 0), True), None]
    assert_exact(one_node("QLinear", operands, out_dtype="u8", out_scale=2.0**25, out_zp=0),
                 feeds_of(operands))
