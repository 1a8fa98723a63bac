"""Window ops: QAveragePool, QGlobalAveragePool and MaxPool (any element type)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ir.ops.qcommon import pool_multipliers, zero_points
from ir.ops.qpool import window_counts
from ir.types import TensorType
from targets.tvm.api import te, tir
from targets.tvm.context import Kernel, Tensor
from targets.tvm.kernels.common import I64, requantize
from targets.tvm.registry import kernel


def window_taps(k: Kernel, xt: TensorType) -> tuple[list[Any], Any]:
    """The window's reduce axes and, for an output index and those axes, (inside, x index):
    whether the tap reads x, and where (padding and ceil-mode overhang read nothing)."""
    a = k.attrs
    nsp = xt.rank - 2
    s, d, p = a["strides"], a["dilations"], a["pads"]
    axes = [te.reduce_axis((0, a["kernel_shape"][i]), name=f"rk{i}") for i in range(nsp)]

    def where(n: Any, c: Any, o: tuple[Any, ...]) -> tuple[Any, tuple[Any, ...]]:
        pos = [o[i] * s[i] + axes[i] * d[i] - p[i] for i in range(nsp)]
        inside = tir.all(*[tir.all(pos[i] >= 0, pos[i] < xt.shape[2 + i])
                           for i in range(nsp)])
        safe = [tir.max(tir.min(pos[i], xt.shape[2 + i] - 1), 0) for i in range(nsp)]
        return inside, (n, c, *safe)

    return axes, where


@kernel("QAveragePool")
def qaverage_pool(k: Kernel) -> list[Tensor]:
    """acc = window sum of (x - zx), padding contributing 0; y = clamp(zy +
    requant_raw(acc, s_x / (s_y * count))), count as AveragePool divides by (per output
    position, qpool.window_counts), one (M0, shift) per position."""
    (y,) = k.out_types
    xt = k.type_of("x")
    assert xt.quant is not None and y.quant is not None
    x = k.operand("x")
    zx = int(zero_points(xt.quant)[0])
    out = list(y.shape[2:])
    counts = np.broadcast_to(window_counts(xt.shape, out, k.attrs)[0, 0], out)
    distinct, inverse = np.unique(counts, return_inverse=True)
    m0s, shifts = pool_multipliers(xt, y, distinct)
    m0 = k.table(m0s[inverse].reshape(out).astype(np.int64), "m0")
    shift = k.table(shifts[inverse].reshape(out).astype(np.int64), "shift")
    axes, where = window_taps(k, xt)

    def window(n: Any, c: Any, *o: Any) -> Any:
        inside, idx = where(n, c, o)
        v = tir.if_then_else(inside, x[idx].astype(I64) - zx, tir.const(0, I64))
        return te.sum(v, axis=axes)

    acc = te.compute(y.shape, window, name="acc")
    return [te.compute(y.shape, lambda n, c, *o: requantize(
        acc[(n, c, *o)], m0[o], shift[o], y.quant.zero_point[0], y.dtype), name="y")]


@kernel("QGlobalAveragePool")
def qglobal_average_pool(k: Kernel) -> list[Tensor]:
    """acc[n, c] = sum over every spatial position of (x - zx);
    y = clamp(zy + requant_raw(acc, s_x / (s_y * H*W...)))."""
    (y,) = k.out_types
    xt = k.type_of("x")
    assert xt.quant is not None and y.quant is not None
    x = k.operand("x")
    zx = int(zero_points(xt.quant)[0])
    count = max(1, int(np.prod(xt.shape[2:])))
    (m0,), (shift,) = pool_multipliers(xt, y, np.asarray([count]), "QGlobalAveragePool")
    axes = [te.reduce_axis((0, d), name=f"rk{i}") for i, d in enumerate(xt.shape[2:])]
    acc = te.compute(y.shape, lambda n, c, *o: te.sum(
        x[(n, c, *axes)].astype(I64) - zx, axis=axes), name="acc")
    return [te.compute(y.shape, lambda *i: requantize(
        acc[i], int(m0), int(shift), y.quant.zero_point[0], y.dtype), name="y")]


@kernel("MaxPool", accepts=lambda node: not node.attrs.get("indices"))
def max_pool(k: Kernel) -> list[Tensor]:
    """y[n, c, o...] = max over taps t of x[n, c, o*s - pads_begin + t*d], taps outside x
    (padding, ceil-mode overhang) ignored (read as -inf, or the integer type's lowest
    value). Nodes that also return the argmax (indices) have no kernel here."""
    (y,) = k.out_types
    xt = k.type_of("x")
    x = k.operand("x")
    axes, where = window_taps(k, xt)
    dt = y.dtype.np.name
    lowest = tir.const(float("-inf"), dt) if y.dtype.is_float else tir.min_value(dt)

    # te.max starts from the type's lowest finite value; a float max must start at -inf
    largest = te.comm_reducer(lambda p, q: tir.max(p, q), lambda t: lowest, name="largest")

    def window(n: Any, c: Any, *o: Any) -> Any:
        inside, idx = where(n, c, o)
        return largest(tir.if_then_else(inside, x[idx], lowest), axis=axes)

    return [te.compute(y.shape, window, name="y")]
