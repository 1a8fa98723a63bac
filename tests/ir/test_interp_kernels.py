"""The interpreter's C kernels (csrc/qnnc_interp.c via compiler/interp_kernels.py) against
its numpy paths, bit for bit: which one runs never changes a value, so calibration ranges,
goldens and every check against the interpreter stay what numpy defines."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler import interp_kernels
from ir import accel
from ir.ops.conv import Conv
from ir.ops.registry import get_op

pytestmark = pytest.mark.skipif(interp_kernels.library() is None,
                                reason="no C compiler to build the interpreter's kernels")


@pytest.fixture(autouse=True)
def _installed() -> None:
    interp_kernels.install()


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(np.uint32)


def _both(fn: Callable[..., np.ndarray], *args: object) -> tuple[np.ndarray, np.ndarray]:
    """(native, numpy) results of ``fn(*args)``."""
    got = fn(*args)
    with accel.numpy_only():
        ref = fn(*args)
    return got, ref


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, strides: list[int],
          pads: list[int], dilations: list[int], group: int) -> np.ndarray:
    ins = [x, w] if b is None else [x, w, b]
    return Conv.compute(ins, {"strides": strides, "pads": pads, "dilations": dilations,
                              "group": group})[0]


@st.composite
def depthwise_cases(draw: st.DrawFn) -> tuple[object, ...]:
    g = draw(st.integers(2, 12))
    mg = draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pads = [draw(st.integers(0, 3)) for _ in range(4)]
    h = draw(st.integers(max(1, (kh - 1) * dh + 1 - pads[0] - pads[2]), 20))
    wd = draw(st.integers(max(1, (kw - 1) * dw + 1 - pads[1] - pads[3]), 40))
    n = draw(st.integers(1, 2))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((n, g, h, wd)).astype(np.float32)
    w = (rng.standard_normal((g * mg, 1, kh, kw)) * 3).astype(np.float32)
    if draw(st.booleans()):  # values whose sums round, cancel and overflow
        x.flat[rng.integers(0, x.size, 5)] = rng.choice(
            np.array([0.0, -0.0, 1e38, -1e38, 3e-39, 65504.0], np.float32), 5)
    b = rng.standard_normal(g * mg).astype(np.float32) if draw(st.booleans()) else None
    return x, w, b, [sh, sw], pads, [dh, dw], g


@settings(max_examples=300, deadline=None)
@given(depthwise_cases())
def test_depthwise_matches_numpy(case: tuple[object, ...]) -> None:
    """Any stride, dilation, padding, multiplier and batch, the unit-stride numpy path and the
    strided one alike."""
    with np.errstate(all="ignore"):  # the overflowing cases warn in numpy
        got, ref = _both(_conv, *case)
    assert got.shape == ref.shape
    np.testing.assert_array_equal(_bits(got), _bits(ref))


def test_depthwise_nan_and_inf_propagate_alike() -> None:
    x = np.ones((1, 3, 6, 19), np.float32)
    x[0, 0, 2, 3], x[0, 1, 4, 17], x[0, 2, 0, 0] = np.nan, np.inf, -np.inf
    w = np.ones((3, 1, 3, 3), np.float32)
    w[2, 0, 1, 1] = 0.0  # 0 * -inf: NaN in both
    with np.errstate(invalid="ignore"):
        got, ref = _both(_conv, x, w, None, [1, 1], [1, 1, 1, 1], [1, 1], 3)
    np.testing.assert_array_equal(_bits(got), _bits(ref))
    assert np.isnan(got).any() and np.isinf(got).any()


def test_declined_shapes_fall_back_to_numpy() -> None:
    """1-D depthwise and float64 are numpy's: the kernel declines, the values are numpy's."""
    x1 = np.random.default_rng(0).standard_normal((1, 4, 30)).astype(np.float32)
    w1 = np.ones((4, 1, 3), np.float32)
    assert interp_kernels.depthwise2d(x1, w1, [1], [1, 1], [1], [30]) is None
    got, ref = _both(_conv, x1, w1, None, [1], [1, 1], [1], 4)
    np.testing.assert_array_equal(got, ref)
    x2 = x1[..., None].astype(np.float64)
    assert interp_kernels.depthwise2d(x2, np.ones((4, 1, 3, 1)), [1, 1], [0] * 4, [1, 1],
                                      [28, 1]) is None


def test_hard_swish_matches_numpy_on_every_kind_of_float() -> None:
    """Random bit patterns over the whole float32 range (NaNs, infinities, subnormals, signed
    zeros), the values where the clip switches (-3, 3) and their neighbours."""
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32)
    edges = np.array([-3.0, 3.0, 0.0, -0.0, np.inf, -np.inf, np.nan], np.float32)
    near = np.concatenate([np.nextafter(edges[:2], np.float32(s)) for s in (-np.inf, np.inf)])
    x = np.concatenate([bits.view(np.float32), edges, near, rng.standard_normal(70_000)
                        .astype(np.float32) * 4]).reshape(-1, 7)
    fn = get_op("HardSwish").compute
    got, ref = _both(lambda v: fn([v], {})[0], x)
    assert got.dtype == np.float32 and got.shape == x.shape
    np.testing.assert_array_equal(_bits(got), _bits(ref))


def test_hard_swish_other_dtypes_are_numpy_s() -> None:
    x = np.linspace(-5, 5, 101)
    assert interp_kernels.hard_swish(x) is None
    assert interp_kernels.hard_swish(x.astype(np.float16)) is None


def test_kernels_are_registered_by_the_api() -> None:
    import compiler.api  # noqa: F401  (registers them)

    assert accel.kernel("depthwise2d") is interp_kernels.depthwise2d
    with accel.numpy_only():
        assert accel.kernel("depthwise2d") is None
