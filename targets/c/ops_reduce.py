"""Reductions: ReduceMean/Sum/Max/Min/SumSquare/L1/L2 over compile-time axes."""

from __future__ import annotations

import numpy as np

from targets.c.emitter import LayerCtx, emits, nested_loops, offset, strides_of
from targets.c.expr import Expr
from targets.c.stmt import loop, nested

# (initial value, accumulate step over v, final expression of acc and the count n)
_REDUCE: dict[str, tuple[str, str, str]] = {
    "ReduceSum": ("0", "acc += v;", "acc"),
    "ReduceMean": ("0", "acc += v;", "acc / {n}"),
    "ReduceSumSquare": ("0", "acc += v * v;", "acc"),
    "ReduceL1": ("0", "acc += v < 0 ? -v : v;", "acc"),
    "ReduceL2": ("0", "acc += v * v;", "sqrt(acc)"),
    "ReduceMax": ("-INFINITY", "if (v > acc || v != v) acc = v;", "acc"),
    "ReduceMin": ("INFINITY", "if (v < acc || v != v) acc = v;", "acc"),
}


# integer sums, maxima and minima (onnxruntime's mask arithmetic sums int32 masks): in int64,
# stored in the output's type (wrapping as the interpreter's integer sum does)
_INT_REDUCE: dict[str, tuple[str, str, str]] = {
    "ReduceSum": ("0", "acc += v;", "acc"),
    "ReduceMax": ("INT64_MIN", "if (v > acc) acc = v;", "acc"),
    "ReduceMin": ("INT64_MAX", "if (v < acc) acc = v;", "acc"),
}


@emits(*_REDUCE)
def reduce(ctx: LayerCtx) -> str:
    integer = not ctx.ot(0).dtype.is_float and ctx.node.op in _INT_REDUCE
    ct = ctx.ctype(ctx.ot(0)) if integer else ctx.require_float()
    acc_t = "int64_t" if integer else "double"
    x = ctx.it(0).shape
    axes = set(ctx.a["axes"])
    init, step, final = (_INT_REDUCE if integer else _REDUCE)[ctx.node.op]
    n = int(np.prod([x[k] for k in axes])) if axes else 1
    st = strides_of(x)
    kept = [k for k in range(len(x)) if k not in axes]
    red = sorted(axes)
    x0, y = ctx.i(0), ctx.o(0)

    def per_output(out: list[Expr]) -> str:
        heads, inner = [], []
        for k in red:
            h, e = loop(f"j{k}", x[k])
            heads.append(h)
            inner.append(e)
        xoff = offset(out + inner, [st[k] for k in kept] + [st[k] for k in red])
        yoff = offset(out, strides_of([x[k] for k in kept]))
        return "\n".join([f"{acc_t} acc = {init};",
                          *nested(heads, [f"const {acc_t} v = {x0}[{xoff}];", step],
                                  indent="    "),
                          f"{y}[{yoff}] = ({ct})({final.format(n=n)});"])

    # the loop variables are named after the axis they walk
    return nested_loops([x[k] for k in kept], per_output, names=[f"i{k}" for k in kept])
