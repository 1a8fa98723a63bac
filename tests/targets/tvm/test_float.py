"""The float islands quantised graphs keep (Softmax, LayerNormalization, RMSNormalization)
through the tvm
target, within stated tolerances of the interpreter: their exp and sqrt come from LLVM and
their sums run in another order than numpy's pairwise ones."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("tvm", reason="the tvm target needs Apache TVM (pip install apache-tvm)")

from tests.targets.tvm.harness import Operand, assert_close, feeds_of, one_node  # noqa: E402

SETTINGS = settings(max_examples=25, deadline=None)
shapes = st.lists(st.integers(1, 6), min_size=1, max_size=4).map(tuple)
#: float32 results a few ulp apart per element
RTOL, ATOL = 1e-5, 1e-6


def floats(data: st.DataObject, shape: tuple[int, ...], const: bool = False) -> Operand:
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    scale = data.draw(st.sampled_from([1.0, 10.0, 80.0]))
    return (rng.standard_normal(shape) * scale).astype(np.float32), None, const


@SETTINGS
@given(st.data())
def test_softmax_within_tolerance(data: st.DataObject) -> None:
    shape = data.draw(shapes)
    x = floats(data, shape)
    axis = data.draw(st.integers(0, len(shape) - 1))
    assert_close(one_node("Softmax", [x], axis=axis), feeds_of([x]), RTOL, ATOL)


@SETTINGS
@given(st.data())
def test_layer_normalization_within_tolerance(data: st.DataObject) -> None:
    shape = data.draw(shapes)
    axis = data.draw(st.integers(0, len(shape) - 1))
    tail = shape[axis:][data.draw(st.integers(0, len(shape) - axis)):]
    ops = [floats(data, shape), floats(data, tail, True)]
    if data.draw(st.booleans()):
        ops.append(floats(data, tail, data.draw(st.booleans())))
    eps = data.draw(st.sampled_from([1e-5, 1e-12, 0.1]))
    # the normalised values are O(1) times the scale: tolerances relative to that
    scale = float(np.abs(ops[1][0]).max(initial=1.0))
    assert_close(one_node("LayerNormalization", ops, axis=axis, epsilon=eps), feeds_of(ops),
                 1e-5, 1e-5 * scale)


@SETTINGS
@given(st.data())
def test_rms_normalization_within_tolerance(data: st.DataObject) -> None:
    """Statistics in float32 or float64 (stash), scale of the normalised axes or fewer."""
    shape = data.draw(shapes)
    axis = data.draw(st.integers(0, len(shape) - 1))
    tail = shape[axis:][data.draw(st.integers(0, len(shape) - axis)):]
    ops = [floats(data, shape), floats(data, tail, data.draw(st.booleans()))]
    eps = data.draw(st.sampled_from([1e-5, 1e-12, 0.1]))
    stash = data.draw(st.sampled_from(["f32", "f64"]))
    scale = float(np.abs(ops[1][0]).max(initial=1.0))
    assert_close(one_node("RMSNormalization", ops, axis=axis, epsilon=eps, stash=stash),
                 feeds_of(ops), 1e-5, 1e-5 * scale)


@SETTINGS
@given(st.data())
def test_lrn_within_tolerance(data: st.DataObject) -> None:
    shape = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 8)),
             *data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=2)))
    x = floats(data, tuple(shape))
    attrs = {"size": data.draw(st.integers(1, 6)),
             "alpha": data.draw(st.sampled_from([1e-4, 1e-2, 0.5])),
             "beta": data.draw(st.sampled_from([0.75, 0.5, 1.0])),
             "bias": data.draw(st.sampled_from([1.0, 2.0, 0.5]))}
    assert_close(one_node("LRN", [x], **attrs), feeds_of([x]), RTOL, ATOL)
