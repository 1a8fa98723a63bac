"""Float averages of float graphs: AveragePool and GlobalAveragePool on float32 or float64,
summing in that type (float16, which the interpreter sums in float32, has no kernel here).
MaxPool, for every element type, is in pool.py."""

from __future__ import annotations

from typing import Any

import numpy as np

from ir.graph import Node
from ir.ops.qpool import window_counts
from targets.tvm.api import te, tir
from targets.tvm.context import Kernel, Tensor
from targets.tvm.kernels.pool import window_taps
from targets.tvm.registry import kernel

FLOATS = ("float32", "float64")


def _float_unquantised(node: Node) -> bool:
    x, y = node.operand("x"), node.outputs[0]
    return all(v.type.dtype.np.name in FLOATS and v.type.quant is None for v in (x, y))


@kernel("AveragePool", accepts=_float_unquantised)
def average_pool(k: Kernel) -> list[Tensor]:
    """y[n, c, o...] = (sum over taps t of x[n, c, o*s - pads_begin + t*d]) / count[o...],
    taps outside x (padding, ceil-mode overhang) adding nothing; count the taps inside x
    (or inside x and its pads, count_include_pad), as qpool.window_counts, read from a
    table."""
    (y,) = k.out_types
    xt = k.type_of("x")
    x = k.operand("x")
    dt = y.dtype.np.name
    out = list(y.shape[2:])
    counts = np.broadcast_to(window_counts(xt.shape, out, k.attrs)[0, 0], out)
    count = k.table(np.ascontiguousarray(counts).astype(dt), "count")
    axes, where = window_taps(k, xt)
    zero = tir.const(0.0, dt)

    def window(n: Any, c: Any, *o: Any) -> Any:
        inside, idx = where(n, c, o)
        return te.sum(tir.if_then_else(inside, x[idx], zero), axis=axes)

    total = te.compute(y.shape, window, name="total")
    return [te.compute(y.shape, lambda n, c, *o: total[(n, c, *o)] / count[o], name="y")]


@kernel("GlobalAveragePool", accepts=_float_unquantised)
def global_average_pool(k: Kernel) -> list[Tensor]:
    """y[n, c, 1...] = (sum of x[n, c, ...] over every spatial position) / (H*W...), the
    count read from memory."""
    (y,) = k.out_types
    xt = k.type_of("x")
    x = k.operand("x")
    dt = y.dtype.np.name
    count = k.table(np.asarray([max(1, int(np.prod(xt.shape[2:])))], dtype=dt), "count")
    axes = [te.reduce_axis((0, d), name=f"rk{i}") for i, d in enumerate(xt.shape[2:])]
    total = te.compute(y.shape, lambda n, c, *o: te.sum(
        x[(n, c, *axes)], axis=axes), name="total")
    return [te.compute(y.shape, lambda *i: total[i] / count[0], name="y")]
