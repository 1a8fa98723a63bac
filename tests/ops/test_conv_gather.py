"""The small-image convolution's columns made by one gather (ir/ops/conv.py _column_index)
against the strided im2col view they replace: the same columns, so the same matmul and the
same bits, in float32 (calibration's sums), float64 and int64 (the exact integer products
of QConv), with padding, strides, dilations, groups and 1-3 spatial axes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ir.ops.conv as conv_mod
from ir.ops.conv import conv


def _both(x: np.ndarray, w: np.ndarray, strides: list[int], pads: list[int],
          dil: list[int], g: int) -> tuple[np.ndarray, np.ndarray]:
    saved = conv_mod.GATHER_MAX
    try:
        conv_mod.GATHER_MAX = 1 << 30
        gathered = conv(x, w, strides, pads, dil, g)
        conv_mod.GATHER_MAX = 0
        strided = conv(x, w, strides, pads, dil, g)
    finally:
        conv_mod.GATHER_MAX = saved
    return gathered, strided


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 3).flatmap(lambda nsp: st.tuples(
    st.just(nsp), st.integers(1, 2), st.sampled_from([(1, 1), (2, 1), (3, 2), (4, 4)]),
    st.integers(1, 3),
    st.lists(st.integers(1, 9), min_size=nsp, max_size=nsp),
    st.lists(st.integers(1, 4), min_size=nsp, max_size=nsp),
    st.lists(st.integers(1, 3), min_size=nsp, max_size=nsp),
    st.lists(st.integers(1, 2), min_size=nsp, max_size=nsp),
    st.lists(st.integers(0, 3), min_size=2 * nsp, max_size=2 * nsp))),
    st.sampled_from([np.float32, np.float64, np.int64]), st.integers(0, 2**32 - 1))
def test_gathered_columns_equal_the_strided_ones(case: tuple, dtype: type, seed: int) -> None:
    nsp, n, (cg, g), mg, sp, kern, strides, dil, pads = case
    if g > 1 and cg == 1:
        cg = 2  # depthwise layers take their own paths (test_depthwise_paths.py)
    if any(s + pads[i] + pads[nsp + i] < (k - 1) * d + 1
           for i, (s, k, d) in enumerate(zip(sp, kern, dil))):
        return  # the kernel does not fit: Conv's type inference refuses it
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, cg * g, *sp)) * 50).astype(dtype)
    w = (rng.standard_normal((g * mg, cg, *kern)) * 50).astype(dtype)
    gathered, strided = _both(x, w, strides, pads, dil, g)
    assert gathered.dtype == strided.dtype and gathered.shape == strided.shape
    np.testing.assert_array_equal(gathered, strided)


def test_small_layers_gather_and_large_ones_do_not(monkeypatch: pytest.MonkeyPatch) -> None:
    """The digits CNN's 8 x 8 layers take the gather; a 64-channel 56 x 56 layer (whose
    index would be 1.8 M entries) keeps the strided view."""
    calls: list[tuple[int, ...]] = []
    real = conv_mod._column_index

    def spy(*args: object) -> np.ndarray:
        calls.append(args[1])  # type: ignore[arg-type]
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(conv_mod, "_column_index", spy)
    rng = np.random.default_rng(0)
    conv(rng.standard_normal((1, 8, 8, 8)).astype(np.float32),
         rng.standard_normal((16, 8, 3, 3)).astype(np.float32), [1, 1], [1] * 4, [1, 1], 1)
    conv(rng.standard_normal((1, 64, 56, 56)).astype(np.float32),
         rng.standard_normal((8, 64, 3, 3)).astype(np.float32), [1, 1], [1] * 4, [1, 1], 1)
    assert calls == [(8, 8)]
