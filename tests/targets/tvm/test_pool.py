"""QAveragePool, QGlobalAveragePool and MaxPool through the tvm target: bit-exact with the
interpreter over window geometry (kernel, strides, dilations, pads, ceil_mode,
count_include_pad, 1-3 spatial axes), zero points and multipliers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

pytest.importorskip("tvm", reason="the tvm target needs Apache TVM (pip install apache-tvm)")

from ir.ops.pool import pool_out  # noqa: E402
from ir.ops.qpool import window_counts  # noqa: E402
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


def window(draw: Any, nsp: int, sizes: list[int]) -> dict[str, Any]:
    kern = [draw(st.integers(1, 3)) for _ in range(nsp)]
    strides = [draw(st.integers(1, 3)) for _ in range(nsp)]
    dil = [draw(st.integers(1, 2)) for _ in range(nsp)]
    pads = [draw(st.integers(0, 2)) for _ in range(2 * nsp)]
    ceil = draw(st.booleans())
    outs = [pool_out(sizes[i], kern[i], strides[i], dil[i], pads[i], pads[nsp + i], ceil)
            for i in range(nsp)]
    assume(all(o >= 1 for o in outs))
    return {"kernel_shape": kern, "strides": strides, "dilations": dil, "pads": pads,
            "ceil_mode": ceil}


def spatial(draw: Any) -> tuple[int, list[int]]:
    nsp = draw(st.sampled_from([1, 2, 2, 3]))
    return nsp, [draw(st.integers(1, 6 if nsp < 3 else 3)) for _ in range(nsp)]


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_qaverage_pool_bit_exact(data: st.DataObject) -> None:
    nsp, sizes = spatial(data.draw)
    attrs = window(data.draw, nsp, sizes)
    # without the pads counted, border windows divide by fewer: several multipliers
    attrs["count_include_pad"] = data.draw(st.integers(0, 3)) == 0
    shape = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3)), *sizes)
    outs = [pool_out(sizes[i], attrs["kernel_shape"][i], attrs["strides"][i],
                     attrs["dilations"][i], attrs["pads"][i], attrs["pads"][nsp + i],
                     attrs["ceil_mode"]) for i in range(nsp)]
    assume(bool((window_counts(shape, outs, attrs) > 0).all()))
    dt, zp, scale = act_params(data.draw)
    x: Operand = (codes(data.draw, shape, dt), QuantParams.per_tensor(scale, zp), False)
    # the count divides the multiplier further: keep it above 2^-33 and below 2^30
    attrs.update(out_attrs(data.draw, scale / min(multiplier(data.draw, (-1, 6)), 2.0**28)))
    assert_exact(one_node("QAveragePool", [x], **attrs), feeds_of([x]))


@SETTINGS
@given(st.data())
def test_qglobal_average_pool_bit_exact(data: st.DataObject) -> None:
    nsp, sizes = spatial(data.draw)
    shape = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3)), *sizes)
    dt, zp, scale = act_params(data.draw)
    x: Operand = (codes(data.draw, shape, dt), QuantParams.per_tensor(scale, zp), False)
    attrs = out_attrs(data.draw, scale / min(multiplier(data.draw, (-1, 6)), 2.0**28))
    assert_exact(one_node("QGlobalAveragePool", [x], **attrs), feeds_of([x]))


@SETTINGS
@given(st.data())
def test_max_pool_bit_exact(data: st.DataObject) -> None:
    nsp, sizes = spatial(data.draw)
    attrs = window(data.draw, nsp, sizes)
    shape = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3)), *sizes)
    dt = data.draw(st.sampled_from([DType.u8, DType.i8, DType.f32]))
    if dt is DType.f32:
        rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
        values = rng.standard_normal(shape).astype(np.float32)
        x: Operand = (np.where(rng.random(shape) < 0.1, -np.inf, values).astype(np.float32),
                      None, False)
    else:
        _, zp, scale = act_params(data.draw, dt)
        x = (codes(data.draw, shape, dt), QuantParams.per_tensor(scale, zp), False)
    assert_exact(one_node("MaxPool", [x], **attrs), feeds_of([x]))


@pytest.mark.parametrize(("ceil", "include_pad"), [(False, False), (True, False), (True, True)])
def test_qaverage_pool_border_windows_exact(ceil: bool, include_pad: bool) -> None:
    """Windows at the borders average fewer elements than the inner ones: each count has
    its own multiplier (an 8x8 input, 3x3 windows, stride 2, pads 1)."""
    rng = np.random.default_rng(7)
    x: Operand = (rng.integers(0, 256, (1, 3, 8, 8)).astype(np.uint8),
                  QuantParams.per_tensor(0.05, 7), False)
    attrs = {"kernel_shape": [3, 3], "strides": [2, 2], "dilations": [1, 1],
             "pads": [1, 1, 1, 1], "ceil_mode": ceil, "count_include_pad": include_pad,
             "out_dtype": "u8", "out_scale": 0.07, "out_zp": 3}
    g = one_node("QAveragePool", [x], **attrs)
    shape = g.outputs[0].type.shape
    counts = window_counts((1, 3, 8, 8), list(shape[2:]), attrs)
    assert len(np.unique(counts)) > 1
    assert_exact(g, feeds_of([x]))
