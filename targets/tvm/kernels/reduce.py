"""ReduceSum, ReduceMean, ReduceMax and ReduceMin over explicit axes (ir/ops/reduce.py).

Max and min are exact on every type. Sums and means of floats run in float64 and round once
to the float type (numpy sums float32 pairwise, so the two agree within a few ulps, the float
tolerance); sums and means of integers are left to the host target (numpy's integer sums wrap
in the element type, its integer means truncate a float64 quotient).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ir.graph import Node
from targets.tvm.api import te, tir
from targets.tvm.context import Kernel, Tensor
from targets.tvm.registry import kernel


def _float(node: Node) -> bool:
    v = node.operand("x")
    return v is not None and v.type.dtype.is_float and v.type.quant is None


def _reduce(k: Kernel, combine: str) -> list[Tensor]:
    (y,) = k.out_types
    xt = k.type_of("x")
    x = k.operand("x")
    axes, keep = list(k.attrs["axes"]), k.attrs["keepdims"]
    dt = xt.dtype.np.name
    if not axes:  # each output reduces a one-element set: itself
        return [te.compute(y.shape, lambda *o: x[o], name="y")]
    rs = [te.reduce_axis((0, xt.shape[a]), name=f"r{a}") for a in axes]

    def index(o: tuple[Any, ...]) -> tuple[Any, ...]:
        out, it, r = [], iter(o), iter(rs)
        for a in range(xt.rank):
            if a in axes:
                out.append(next(r))
                if keep:
                    next(it)
            else:
                out.append(next(it))
        return tuple(out)

    if combine in ("max", "min"):
        fn = te.max if combine == "max" else te.min
        if xt.dtype.is_float:  # -inf / +inf for an empty set, as numpy's initial
            inf = tir.const(float("inf") if combine == "min" else -float("inf"), dt)
            red = te.comm_reducer(lambda a, b: tir.max(a, b) if combine == "max"
                                  else tir.min(a, b), lambda t: inf, name=combine)
            return [te.compute(y.shape, lambda *o: red(x[index(o)], axis=rs), name="y")]
        return [te.compute(y.shape, lambda *o: fn(x[index(o)], axis=rs), name="y")]
    total = te.compute(y.shape, lambda *o: te.sum(x[index(o)].astype("float64"), axis=rs),
                       name="total")
    if combine == "sum":
        return [te.compute(y.shape, lambda *o: total[o].astype(dt), name="y")]
    n = int(np.prod([xt.shape[a] for a in axes], dtype=np.int64))
    return [te.compute(y.shape, lambda *o: (total[o] / tir.const(float(n), "float64"))
                       .astype(dt), name="y")]


@kernel("ReduceSum", accepts=_float)
def reduce_sum(k: Kernel) -> list[Tensor]:
    """y = sum of x over ``axes`` (in float64, rounded once)."""
    return _reduce(k, "sum")


@kernel("ReduceMean", accepts=_float)
def reduce_mean(k: Kernel) -> list[Tensor]:
    """y = (sum of x over ``axes``) / n (in float64, rounded once)."""
    return _reduce(k, "mean")


def _not_bool(node: Node) -> bool:
    v = node.operand("x")
    return v is not None and v.type.dtype.np.kind != "b"


@kernel("ReduceMax", accepts=_not_bool)
def reduce_max(k: Kernel) -> list[Tensor]:
    """y = max of x over ``axes`` (-inf / the type's minimum for an empty set)."""
    return _reduce(k, "max")


@kernel("ReduceMin", accepts=_not_bool)
def reduce_min(k: Kernel) -> list[Tensor]:
    """y = min of x over ``axes`` (+inf / the type's maximum for an empty set)."""
    return _reduce(k, "min")
