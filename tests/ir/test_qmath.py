"""Property tests of the integer primitives against exact rational references."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ir.qmath import (
    MIN_SCALE,
    choose_qparams,
    dequantize,
    lookup,
    make_lut,
    multiplier_value,
    qrange,
    quantize,
    quantize_multiplier,
    quantize_multipliers,
    requantize,
    requantize_raw,
)
from ir.types import DType

multipliers = st.floats(min_value=2.0**-40, max_value=2.0**20, allow_nan=False)
accs = st.integers(min_value=-(2**31) + 1, max_value=2**31 - 1)


@given(multipliers)
def test_multiplier_encoding_is_normalised_and_close(m: float) -> None:
    m0, shift = quantize_multiplier(m)
    if m0 == 0:
        assert m < 2.0**-32
        return
    assert 2**30 <= m0 < 2**31
    assert abs(multiplier_value(m0, shift) - m) <= m * 2.0**-31


@given(st.lists(st.one_of(multipliers, st.floats(2.0**-80, 2.0**-30),
                         st.sampled_from([0.5, 1.0, 2.0**-31, 2.0**-32, 1 - 2.0**-33])),
                min_size=1, max_size=20))
def test_array_encoding_equals_the_scalar_definition(ms: list[float]) -> None:
    """The vectorised encoding (used for per-channel layers) is the scalar one, element for
    element, including multipliers so small they encode as (0, 0) and mantissas that round
    up to 1.0."""
    m0, shift = quantize_multipliers(np.array(ms))
    assert [(int(a), int(b)) for a, b in zip(m0, shift)] == [quantize_multiplier(m) for m in ms]


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan, 2.0**40])
def test_array_encoding_refuses_what_the_scalar_refuses(bad: float) -> None:
    with pytest.raises(ValueError, match="multiplier"):
        quantize_multipliers(np.array([0.25, bad]))


@given(accs, multipliers)
def test_requantize_is_round_half_up_of_exact_product(acc: int, m: float) -> None:
    m0, shift = quantize_multiplier(m)
    got = int(requantize_raw(np.array([acc], dtype=np.int32), m0, shift)[0])
    if m0 == 0:
        assert got == 0 and abs(acc * m) < 0.5
        return
    exact = Fraction(acc * m0, 2 ** (31 + shift))
    assert got == math.floor(exact + Fraction(1, 2))


@given(st.integers(-1000, 1000), st.integers(1, 20))
def test_requantize_ties_round_towards_plus_infinity(k: int, n: int) -> None:
    # multiplier exactly 2^-n: acc = k * 2^n + 2^(n-1) sits on a tie
    m0, shift = quantize_multiplier(2.0**-n)
    acc = k * 2**n + 2 ** (n - 1)
    assert int(requantize_raw(np.array([acc]), m0, shift)[0]) == k + 1
    assert int(requantize_raw(np.array([-acc]), m0, shift)[0]) == -k


@given(accs, multipliers, st.integers(-128, 127))
def test_requantize_saturates_and_clamps(acc: int, m: float, zp: int) -> None:
    m0, shift = quantize_multiplier(m)
    y = int(requantize(np.array([acc]), m0, shift, zp, DType.i8)[0])
    raw = int(requantize_raw(np.array([acc]), m0, shift)[0]) + zp
    assert y == min(max(raw, -128), 127)
    y6 = int(requantize(np.array([acc]), m0, shift, zp, DType.i8, clamp=(zp, zp + 6))[0])
    assert zp <= y6 <= min(zp + 6, 127)


def test_per_channel_requantize_uses_each_channel_multiplier() -> None:
    acc = np.array([[100, 100, 100]] * 2, dtype=np.int32)
    enc = [quantize_multiplier(m) for m in (0.5, 0.25, 1.0)]
    m0 = np.array([e[0] for e in enc])
    sh = np.array([e[1] for e in enc])
    y = requantize_raw(acc, m0, sh, axis=1)
    np.testing.assert_array_equal(y, [[50, 25, 100]] * 2)


@given(st.integers(-300, 300), st.floats(1e-3, 10.0), st.sampled_from([DType.u8, DType.i8]),
       st.integers(-20, 20))
def test_quantize_ties_to_even_and_saturates(k: int, scale: float, dt: DType, zp: int) -> None:
    scale = float(np.float32(scale))
    lo, hi = qrange(dt)
    zp = min(max(zp + (128 if dt is DType.u8 else 0), lo), hi)
    x = np.float32((k + 0.5) * scale)
    assume(float(np.float32(x / np.float32(scale))) == k + 0.5)  # an exact tie in float32
    q = int(quantize(np.array([x]), scale, zp, dt)[0])
    even = k if k % 2 == 0 else k + 1
    assert q == min(max(even + zp, lo), hi)


def test_quantize_per_axis_and_saturation_edges() -> None:
    x = np.array([[1.0, -1.0], [1000.0, -1000.0]], dtype=np.float32)
    q = quantize(x, np.array([0.5, 0.25], np.float32), np.array([0, 10]), DType.i8, axis=0)
    np.testing.assert_array_equal(q, [[2, -2], [127, -128]])
    qu = quantize(np.array([-5.0, 1e9, np.inf, -np.inf]), 1.0, 0, DType.u8)
    np.testing.assert_array_equal(qu, [0, 255, 255, 0])


@given(st.floats(-100, 0), st.floats(0, 100), st.sampled_from([DType.u8, DType.i8]),
       st.booleans())
def test_choose_qparams_represents_zero_exactly(
    lo: float, hi: float, dt: DType, symmetric: bool
) -> None:
    scale, zp = choose_qparams(lo, hi, dt, symmetric=symmetric)
    qmin, qmax = qrange(dt)
    assert scale > 0 and math.isfinite(scale) and qmin <= zp <= qmax
    assert dequantize(quantize(np.array([0.0]), scale, zp, dt), scale, zp)[0] == 0.0
    assert scale >= MIN_SCALE
    if hi - lo > 1e-3:  # the range is covered to within one step
        top = dequantize(np.array([qmax]), scale, zp)[0]
        assert top >= hi - scale * 1.01 or symmetric


def test_lut_matches_float_function_within_half_a_step() -> None:
    s_in, z_in, s_out, z_out = 0.05, 0, 1.0 / 256, -128
    table = make_lut(np.tanh, s_in, z_in, DType.i8, 2.0 / 255, 0, DType.i8)
    q = np.arange(-128, 128)
    y = dequantize(lookup(q, table, DType.i8), 2.0 / 255, 0)
    ref = np.tanh(dequantize(q, s_in, z_in).astype(np.float64))
    assert np.max(np.abs(y - ref)) <= 0.5 * (2.0 / 255) + 1e-7
    sig = make_lut(lambda v: 1 / (1 + np.exp(-v)), s_in, z_in, DType.i8, s_out, z_out, DType.u8)
    assert sig.dtype == np.uint8 and sig.shape == (256,)
