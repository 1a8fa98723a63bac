"""Matrix emitters: Trilu, Det (over the last two axes) and CumProd (along one axis)."""

from __future__ import annotations

import numpy as np

from targets.c.cond import ge
from targets.c.emitter import LayerCtx, emits, nested_loops, offset, plus, strides_of
from targets.c.expr import Var
from targets.c.stmt import loop, nested


@emits("Trilu", inplace=True)
def trilu(ctx: LayerCtx) -> str:
    """y = x on the kept side of diagonal k (j - i >= k upper, j - i <= k lower), else 0."""
    shape, k = ctx.ot(0).shape, ctx.a["k"]
    batch = int(np.prod(shape[:-2]))
    dims = [batch, shape[-2], shape[-1]]
    x, y = ctx.i(0), ctx.o(0)

    def body(idx: list) -> str:
        b, i, j = idx
        keep = ge(j - i, k) if ctx.a["upper"] else ge(k, j - i)
        off = offset([b, i, j], strides_of(dims))
        if keep is True:
            return f"{y}[{off}] = {x}[{off}];"
        if keep is False:
            return f"{y}[{off}] = 0;"
        return f"{y}[{off}] = {keep} ? {x}[{off}] : 0;"

    return nested_loops(dims, body, names=["b", "i", "j"], omp=ctx.omp())


@emits("CumProd")
def cum_prod(ctx: LayerCtx) -> str:
    """A running product along the axis per (outer, inner) position; integers multiply as
    uint64_t (the low bits wrap as numpy's fixed-width product does; signed overflow would
    be undefined in C) and floats in their own type, in the reference's order."""
    t = ctx.ot(0)
    ct = ctx.ctype(t)
    ax = ctx.a["axis"]
    outer, n, inner = int(np.prod(t.shape[:ax])), t.shape[ax], int(np.prod(t.shape[ax + 1:]))
    acc_t = ct if t.dtype.is_float else "uint64_t"
    x, y = ctx.i(0), ctx.o(0)
    t_var = Var("t", 0, n - 1)
    along = (n - 1) - t_var if ctx.a["reverse"] else t_var

    def body(ix: list) -> str:
        o, i = ix
        at = offset([o, along, i], [n * inner, inner, 1])
        step = f"acc *= ({acc_t}){x}[{at}];"
        store = f"{y}[{at}] = ({ct})acc;"
        first, then = (store, step) if ctx.a["exclusive"] else (step, store)
        return "\n".join([f"{acc_t} acc = 1;", f"for (int t = 0; t < {n}; ++t) {{",
                          f"    {first}", f"    {then}", "}"])

    return nested_loops([outer, inner], body, names=["o", "i"], omp=ctx.omp())


@emits("Det")
def det(ctx: LayerCtx) -> str:
    """Gaussian elimination with partial pivoting in double, per matrix: det = the product
    of the pivots, negated per row swap."""
    ct = ctx.require_float()
    n = ctx.it(0).shape[-1]
    count = ctx.ot(0).size
    hb, b = loop("b", count)
    fabs = "fabs"
    body = [
        f"const {ct} *m = {plus(ctx.i(0), b * (n * n))};",
        f"double a[{n * n}];",
        f"for (int e = 0; e < {n * n}; ++e) a[e] = m[e];",
        "double det = 1.0;",
        f"for (int c = 0; c < {n}; ++c) {{",
        "    int p = c;",
        f"    for (int r = c + 1; r < {n}; ++r)",
        f"        if ({fabs}(a[r * {n} + c]) > {fabs}(a[p * {n} + c])) p = r;",
        f"    if (a[p * {n} + c] == 0.0) {{ det = 0.0; break; }}",
        "    if (p != c) {",
        f"        for (int j = 0; j < {n}; ++j) {{",
        f"            const double s = a[c * {n} + j];",
        f"            a[c * {n} + j] = a[p * {n} + j];",
        f"            a[p * {n} + j] = s;",
        "        }",
        "        det = -det;",
        "    }",
        f"    det *= a[c * {n} + c];",
        f"    for (int r = c + 1; r < {n}; ++r) {{",
        f"        const double f = a[r * {n} + c] / a[c * {n} + c];",
        f"        for (int j = c + 1; j < {n}; ++j) a[r * {n} + j] -= f * a[c * {n} + j];",
        "    }",
        "}",
        f"{ctx.o(0)}[{b}] = ({ct})det;",
    ]
    return ctx.omp() * (hb is not None) + "\n".join(nested([hb], body, indent="    ", scoped=True))
