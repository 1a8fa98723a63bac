"""Reductions: ReduceMean/Sum/Max/Min/SumSquare/L1/L2 over compile-time axes."""

from __future__ import annotations

import numpy as np

from targets.c.emitter import LayerCtx, emits, nested_loops, offset, strides_of

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


@emits(*_REDUCE)
def reduce(ctx: LayerCtx) -> str:
    ct = ctx.require_float()
    x = ctx.it(0).shape
    axes = set(ctx.a["axes"])
    init, step, final = _REDUCE[ctx.node.op]
    n = int(np.prod([x[k] for k in axes])) if axes else 1
    st = strides_of(x)
    kept = [k for k in range(len(x)) if k not in axes]
    red = sorted(axes)
    xoff = offset([f"i{k}" for k in kept] + [f"j{k}" for k in red],
                  [st[k] for k in kept] + [st[k] for k in red])
    inner = f"const double v = {ctx.i(0)}[{xoff}];\n{step}"
    for k in reversed(red):
        inner = f"for (int j{k} = 0; j{k} < {x[k]}; ++j{k}) {{\n" + \
            "\n".join("    " + ln for ln in inner.splitlines()) + "\n}"
    body = (f"double acc = {init};\n{inner}\n"
            f"{ctx.o(0)}[o++] = ({ct})({final.format(n=n)});")
    dims = [x[k] for k in kept]
    # the loop variables must be named after the axis, so rename i0.. to i{k}
    loops = nested_loops(dims, body, var="q")
    for pos, k in enumerate(kept):
        loops = loops.replace(f"q{pos}", f"i{k}")
    return "int o = 0;\n" + (loops if dims else "{\n" + body + "\n}")
