"""Converters of matrix-shaped ONNX ops: Trilu, Det, CumProd, and EyeLike (a constant).

Trilu's k and CumProd's axis are inputs in ONNX; they must be compile-time constants and
become the IR ops' attributes.
"""

from __future__ import annotations

import numpy as np

from compiler.frontend.context import Ctx
from compiler.frontend.ops.quant import ir_dtype
from compiler.frontend.registry import converter
from ir.graph import Value


@converter("Trilu", note="k must be constant")
def trilu(ctx: Ctx, x: Value, k: Value | None = None, *, upper: int = 1) -> Value:
    ks = [0] if k is None else ctx.ints_of(k, "k")
    if len(ks) != 1:
        raise ctx.fail(f"k must hold one value, got {ks}")
    return ctx.op("Trilu", [x], upper=bool(upper), k=ks[0])


@converter("Det")
def det(ctx: Ctx, x: Value) -> Value:
    return ctx.op("Det", [x])


@converter("CumProd", note="axis must be constant")
def cum_prod(ctx: Ctx, x: Value, axis: Value, *, exclusive: int = 0, reverse: int = 0) -> Value:
    ax = ctx.ints_of(axis, "axis")
    rank = x.type.rank
    if len(ax) != 1 or not -rank <= ax[0] < rank:
        raise ctx.fail(f"axis must be one value in [{-rank}, {rank}), got {ax}")
    return ctx.op("CumProd", [x], axis=ax[0] % rank, exclusive=bool(exclusive),
                  reverse=bool(reverse))


@converter("EyeLike", ir_ops=(), note="a constant: shapes are static")
def eye_like(ctx: Ctx, x: Value, *, dtype: int | None = None, k: int = 0) -> Value:
    """y = ones where column - row = k, zeros elsewhere, of x's 2-D shape."""
    if x.type.rank != 2:
        raise ctx.fail(f"the input must be 2-D, got shape {list(x.type.shape)}")
    dt = x.type.dtype if dtype is None else ir_dtype(dtype, "EyeLike's dtype")
    rows, cols = x.type.shape
    return ctx.const(np.eye(rows, cols, k=k, dtype=dt.np))
