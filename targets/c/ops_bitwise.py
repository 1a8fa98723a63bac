"""Bit-level emitters: BitwiseNot, BitCast, IsNaN, IsInf (BitwiseAnd/Or/Xor are binary ops of
ops_elementwise.py's broadcasting emitter)."""

from __future__ import annotations

from targets.c.emitter import LayerCtx, emits, nested_loops


def _each(ctx: LayerCtx, line: str) -> str:
    """``line`` (over ``x``, writing ``y[i]``) for every element."""
    ct = ctx.ctype(ctx.it(0))
    x, y = ctx.i(0), ctx.o(0)
    return nested_loops([ctx.ot(0).size], lambda i: f"const {ct} x = {x}[{i[0]}];\n"
                        + line.format(y=f"{y}[{i[0]}]"), omp=ctx.omp())


@emits("BitwiseNot", inplace=True)
def bitwise_not(ctx: LayerCtx) -> str:
    return _each(ctx, f"{{y}} = ({ctx.ctype(ctx.ot(0))})~x;")


@emits("BitCast")
def bit_cast(ctx: LayerCtx) -> str:
    """The bytes unchanged (the host is little endian, as ONNX's BitCast assumes)."""
    ctx.ctype(ctx.ot(0))  # fails clearly for types C has no name for
    ctx.ctype(ctx.it(0))
    return f"memcpy({ctx.o(0)}, {ctx.i(0)}, {ctx.ot(0).nbytes});"


@emits("IsNaN")
def is_nan(ctx: LayerCtx) -> str:
    return _each(ctx, "{y} = isnan(x) != 0;")


@emits("IsInf")
def is_inf(ctx: LayerCtx) -> str:
    pos, neg = ctx.a["detect_positive"], ctx.a["detect_negative"]
    if pos and neg:
        test = "isinf(x) != 0"
    elif pos or neg:
        test = f"isinf(x) && x {'>' if pos else '<'} 0"
    else:
        return f"memset({ctx.o(0)}, 0, {ctx.ot(0).nbytes});"
    return _each(ctx, f"{{y}} = {test};")
