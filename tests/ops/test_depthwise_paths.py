"""The depthwise convolution's fast paths (channel blocks, and stride 1 on the flattened padded
image; the C kernel of compiler/interp_kernels.py for 2-D) against the definition they must
equal bit for bit: one multiply-add per kernel tap, in tap order, over the whole image.
Calibration ranges come from these sums, so a change in their rounding would change
compiled models."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ir.ops.conv as conv_mod
from compiler import interp_kernels
from ir import accel
from ir.ops.conv import conv, pad_spatial, tap

interp_kernels.install()


def tap_by_tap(x: np.ndarray, w: np.ndarray, strides: tuple[int, ...], pads: tuple[int, ...],
               dilations: tuple[int, ...]) -> np.ndarray:
    nsp, (n, g), m = x.ndim - 2, x.shape[:2], w.shape[0]
    kern = w.shape[2:]
    out = tuple((x.shape[2 + i] + pads[i] + pads[nsp + i] - ((kern[i] - 1) * dilations[i] + 1))
                // strides[i] + 1 for i in range(nsp))
    xp = pad_spatial(x, pads[:nsp], pads[nsp:])
    y = np.zeros((n, g, m // g) + out, x.dtype)
    wk = w.reshape((g, m // g) + kern)
    bshape = (1, g, m // g) + (1,) * nsp
    for k in itertools.product(*(range(s) for s in kern)):
        xs = tap(xp, k, strides, dilations, out)[:, :, None]
        y += xs * wk[(slice(None),) * 2 + k].reshape(bshape)
    return y.reshape((n, m) + out)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 3).flatmap(lambda nsp: st.tuples(
    st.just(nsp), st.integers(1, 2), st.integers(2, 24), st.integers(1, 2),
    st.lists(st.integers(1, 10), min_size=nsp, max_size=nsp),
    st.lists(st.integers(1, 4), min_size=nsp, max_size=nsp),
    st.lists(st.integers(1, 2), min_size=nsp, max_size=nsp),
    st.lists(st.integers(1, 2), min_size=nsp, max_size=nsp),
    st.lists(st.integers(0, 2), min_size=2 * nsp, max_size=2 * nsp))),
    st.sampled_from([1, 40, 1 << 16]), st.integers(0, 2**32 - 1))
def test_fast_paths_equal_tap_by_tap(case: tuple, block: int, seed: int) -> None:
    nsp, n, g, mg, sp, kern, dil, strides, pads = case
    if any(s + pads[i] + pads[nsp + i] < (k - 1) * d + 1
           for i, (s, k, d) in enumerate(zip(sp, kern, dil))):
        return  # the kernel does not fit: Conv's type inference refuses it
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, g, *sp)).astype(np.float32)
    w = rng.standard_normal((g * mg, 1, *kern)).astype(np.float32)
    want = tap_by_tap(x, w, tuple(strides), tuple(pads), tuple(dil))
    saved = conv_mod.DEPTHWISE_BLOCK
    try:
        conv_mod.DEPTHWISE_BLOCK = block
        with accel.numpy_only():
            got = conv(x, w, strides, pads, dil, g)
    finally:
        conv_mod.DEPTHWISE_BLOCK = saved
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    native = conv(x, w, strides, pads, dil, g)  # the C kernel where it builds (2-D)
    np.testing.assert_array_equal(native, want)


@pytest.mark.parametrize("dtype", [np.float64, np.int64])
def test_other_accumulation_types(dtype: type) -> None:
    x = np.arange(2 * 6 * 7 * 5).reshape(2, 6, 7, 5).astype(dtype) - 30
    w = (np.arange(6 * 9).reshape(6, 1, 3, 3) % 7 - 3).astype(dtype)
    np.testing.assert_array_equal(conv(x, w, (1, 1), (1, 0, 1, 2), (1, 1), 6),
                                  tap_by_tap(x, w, (1, 1), (1, 0, 1, 2), (1, 1)))
