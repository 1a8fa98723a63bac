"""A small convolution's columns gathered by one precomputed index (ir/ops/conv.py
_gathered_cols) against the padded, strided and copied columns they replace: the same
convolution bit for bit, over random geometries. Calibration ranges come from these sums, so
a change in their rounding would change compiled models."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ir.ops.conv as conv_mod
from ir.ops.conv import _gathered_cols, conv


def _without_gather(*args: object) -> np.ndarray:
    with pytest.MonkeyPatch.context() as m:
        m.setattr(conv_mod, "GATHER_COLS_MAX", 0)
        m.setattr(conv_mod, "_gather_plans", {})
        return conv(*args)  # type: ignore[arg-type]


@st.composite
def geometries(draw: st.DrawFn) -> tuple[object, ...]:
    nsp = draw(st.integers(1, 3))
    g = draw(st.sampled_from([1, 1, 2, 3]))
    cg = draw(st.integers(1 if g == 1 else 2, 5))  # cg == 1 with groups: depthwise paths
    mg = draw(st.integers(1, 4))
    kern = tuple(draw(st.integers(1, 4)) for _ in range(nsp))
    strides = [draw(st.integers(1, 3)) for _ in range(nsp)]
    dilations = [draw(st.integers(1, 2)) for _ in range(nsp)]
    pads = [draw(st.integers(0, 2)) for _ in range(2 * nsp)]
    span = [(k - 1) * d + 1 for k, d in zip(kern, dilations)]
    size = tuple(max(1, s - pads[i] - pads[nsp + i]) + draw(st.integers(0, 6))
                 for i, s in enumerate(span))
    n = draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([np.float32, np.float32, np.int8]))
    seed = draw(st.integers(0, 2**32 - 1))
    return n, g * cg, g * mg, size, kern, strides, dilations, pads, g, dtype, seed


@settings(max_examples=300, deadline=None)
@given(geometries())
def test_gathered_columns_give_the_same_convolution(geo: tuple) -> None:
    n, c, m, size, kern, strides, dilations, pads, g, dtype, seed = geo
    rng = np.random.default_rng(seed)
    if dtype == np.float32:
        x = rng.standard_normal((n, c, *size)).astype(np.float32)
        w = rng.standard_normal((m, c // g, *kern)).astype(np.float32)
    else:
        x = rng.integers(-128, 128, (n, c, *size)).astype(dtype)
        w = rng.integers(-128, 128, (m, c // g, *kern)).astype(dtype)
    got = conv(x, w, strides, pads, dilations, g)
    want = _without_gather(x, w, strides, pads, dilations, g)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got.view(np.uint8), want.view(np.uint8))  # every bit


def test_most_small_geometries_take_the_gather() -> None:
    """The property compares a path that runs: of 200 random small 1-D and 2-D layers
    without groups, most gather their columns."""
    rng = np.random.default_rng(0)
    taken = 0
    for _ in range(200):
        nsp = int(rng.integers(1, 3))
        kern = tuple(int(k) for k in rng.integers(1, 4, nsp))
        size = tuple(int(s) for s in rng.integers(4, 9, nsp))
        pads = [int(p) for p in rng.integers(0, 2, 2 * nsp)]
        out = tuple(size[i] + pads[i] + pads[nsp + i] - kern[i] + 1 for i in range(nsp))
        x = np.ones((1, int(rng.integers(1, 6)), *size), np.float32)
        taken += _gathered_cols(x, kern, [1] * nsp, pads, [1] * nsp, out, 1) is not None
    assert taken > 100, taken


def test_the_gather_serves_a_vad_layer() -> None:
    """silero-vad's encoder layer (129 -> 128 channels, kernel 3, padding 1, 4 frames) takes
    the gather: the property above is about a path that runs."""
    x = np.ones((1, 129, 4), np.float32)
    assert _gathered_cols(x, (3,), [1], [1, 1], [1], (4,), 1) is not None


def test_columns_numpy_views_are_not_gathered() -> None:
    """Where the strided columns reshape into a view (one output position whose window
    covers the padded input), the matmul reads that view: no gather, the same operand."""
    x = np.ones((1, 4, 3), np.float32)  # padded to 3 + 0: kernel 3 covers it, one pixel
    assert _gathered_cols(x, (3,), [1], [0, 0], [1], (1,), 1) is None


def test_non_contiguous_input_is_not_gathered() -> None:
    x = np.ones((1, 6, 8), np.float32)[:, ::2]
    assert _gathered_cols(x, (3,), [1], [1, 1], [1], (8,), 1) is None
