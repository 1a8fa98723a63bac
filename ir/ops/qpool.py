"""Quantised average pooling: QAveragePool and QGlobalAveragePool.

The window sum of (x - zx) is exact (int64); dividing by the element count and rescaling
are one requantisation, M = s_x / (s_y * count), so the division rounds exactly as every
other requantisation does. Counts vary only near the borders; each distinct count gets its
own (M0, shift), and compute applies them elementwise.
"""

from __future__ import annotations

import itertools

import numpy as np

from ir import qmath
from ir.ops import cost
from ir.ops.common import require_inputs
from ir.ops.conv import check_spatial, pad_spatial, tap
from ir.ops.pool import AveragePool, pool_out
from ir.ops.qcommon import OUT_ATTRS, centered, out_type, pool_multipliers, quantized
from ir.ops.registry import Attrs, register, require
from ir.types import TensorType


def _requant_counts(acc: np.ndarray, counts: np.ndarray, xt: TensorType,
                    y: TensorType, op: str) -> np.ndarray:
    """zy + requant_raw(acc, s_x / (s_y * count)) with count broadcast against acc."""
    assert y.quant is not None
    distinct, inverse = np.unique(counts, return_inverse=True)
    m0, shift = pool_multipliers(xt, y, distinct, op)
    full = np.broadcast_to(inverse.reshape(counts.shape), acc.shape).reshape(-1)
    out = qmath.requantize(acc.reshape(-1), m0[full], shift[full], y.quant.zero_point[0],
                           y.dtype, axis=0)
    return out.reshape(acc.shape)


def window_counts(shape: tuple[int, ...], out: list[int], a: Attrs) -> np.ndarray:
    """The number of elements each output position averages (separable per axis), shaped
    to broadcast over (N, C, *out): taps inside x, or inside x and its pads with
    count_include_pad; taps past the pads (ceil_mode) never count."""
    nsp = len(shape) - 2
    k, s, d, p = a["kernel_shape"], a["strides"], a["dilations"], a["pads"]
    count = np.ones((1, 1) + (1,) * nsp, dtype=np.int64)
    for i in range(nsp):
        size = shape[2 + i]
        lo, hi = (-p[i], size + p[nsp + i]) if a["count_include_pad"] else (0, size)
        pos = (np.arange(out[i]) * s[i] - p[i])[:, None] + (np.arange(k[i]) * d[i])[None, :]
        n = ((pos >= lo) & (pos < hi)).sum(axis=1)
        count = count * n.reshape((1, 1) + tuple(out[i] if j == i else 1 for j in range(nsp)))
    return count


def _out_sizes(shape: tuple[int, ...], a: Attrs) -> list[int]:
    nsp = len(shape) - 2
    k, s, d, p = a["kernel_shape"], a["strides"], a["dilations"], a["pads"]
    return [pool_out(shape[2 + i], k[i], s[i], d[i], p[i], p[nsp + i], a["ceil_mode"])
            for i in range(nsp)]


@register
class QAveragePool:
    """acc = window sum of (x - zx) (padding contributes 0); count as AveragePool's divisor;
    y = clamp(zy + requant_raw(acc, s_x / (s_y * count))). Geometry as AveragePool."""

    operands = ("x",)
    flops = cost.window
    tiled = "pool"
    staged = True
    typed = True
    attrs = {**AveragePool.attrs, **OUT_ATTRS}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("QAveragePool", ins, 1)
        quantized("QAveragePool", x, "x")
        check_spatial("QAveragePool", x, a, ("kernel_shape", "strides", "dilations"))
        require(all(v >= 0 for v in a["pads"]), "QAveragePool: pads must be >= 0")
        out = _out_sizes(x.shape, a)
        require(all(o >= 1 for o in out), f"QAveragePool: the window does not fit, {out}")
        y = out_type("QAveragePool", x.shape[:2] + tuple(out), a)
        counts = window_counts(x.shape, out, a)
        require(bool((counts > 0).all()), "QAveragePool: a window covers no element")
        pool_multipliers(x, y, np.unique(counts))
        return [y]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs, types: list[TensorType | None],
                outs: list[TensorType]) -> list[np.ndarray]:
        x, xt = ins[0], types[0]
        assert x is not None and xt is not None and xt.quant is not None
        nsp = x.ndim - 2
        k, s, d, p = a["kernel_shape"], a["strides"], a["dilations"], a["pads"]
        out = _out_sizes(x.shape, a)
        after = [max(0, (out[i] - 1) * s[i] + (k[i] - 1) * d[i] + 1 - p[i] - x.shape[2 + i])
                 for i in range(nsp)]
        xp = pad_spatial(centered(x, xt.quant), p[:nsp], after, 0)
        taps = list(itertools.product(*(range(n) for n in k)))
        acc = tap(xp, taps[0], s, d, out).copy()
        for t in taps[1:]:
            acc += tap(xp, t, s, d, out)
        counts = window_counts(x.shape, out, a)
        return [_requant_counts(acc, counts, xt, outs[0], "QAveragePool")]


@register
class QGlobalAveragePool:
    """acc[n, c] = sum of (x - zx) over all spatial positions;
    y = clamp(zy + requant_raw(acc, s_x / (s_y * H*W...)))."""

    operands = ("x",)
    flops = cost.reduction
    tiled = "pool"
    staged = True
    typed = True
    attrs = dict(OUT_ATTRS)

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("QGlobalAveragePool", ins, 1)
        quantized("QGlobalAveragePool", x, "x")
        require(x.rank >= 3, "QGlobalAveragePool: input must be N x C x spatial...")
        y = out_type("QGlobalAveragePool", x.shape[:2] + (1,) * (x.rank - 2), a)
        pool_multipliers(x, y, np.asarray([max(1, int(np.prod(x.shape[2:])))]),
                         "QGlobalAveragePool")
        return [y]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs, types: list[TensorType | None],
                outs: list[TensorType]) -> list[np.ndarray]:
        x, xt = ins[0], types[0]
        assert x is not None and xt is not None and xt.quant is not None
        axes = tuple(range(2, x.ndim))
        acc = centered(x, xt.quant).sum(axis=axes, keepdims=True)
        count = np.asarray([int(np.prod(x.shape[2:]))], dtype=np.int64).reshape(())
        return [_requant_counts(acc, count, xt, outs[0], "QGlobalAveragePool")]

