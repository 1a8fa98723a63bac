"""Loss emitters: NegativeLogLikelihoodLoss (SoftmaxCrossEntropyLoss arrives lowered to
LogSoftmax + NegativeLogLikelihoodLoss)."""

from __future__ import annotations

import numpy as np

from targets.c.emitter import LayerCtx, emits
from targets.c.stmt import loop, nested


@emits("NegativeLogLikelihoodLoss")
def nll_loss(ctx: LayerCtx) -> str:
    """Per (n, d): the class t (clamped into [0, C) as the reference does), its weight (0 for
    ignore_index), and -x[n, t, d] * w; the reductions sum in double."""
    ct = ctx.require_float()
    shape = ctx.it("x").shape
    n, c, d = shape[0], shape[1], int(np.prod(shape[2:]))
    tt = ctx.ctype(ctx.it("target"))
    red, ignore = ctx.a["reduction"], ctx.a["ignore_index"]
    hn, n_ = loop("n", n)
    hd, d_ = loop("d", d)
    at = n_ * d + d_
    weight = f"{ctx.i('weight')}[k]" if ctx.has("weight") else ctx.lit(1.0)
    skip = f"t == {ignore[0]} ? 0 : " if ignore else ""
    body = [
        f"const {tt} t = {ctx.i('target')}[{at}];",
        f"const int k = t < 0 ? 0 : t >= {c} ? {c - 1} : (int)t;",
        f"const {ct} w = {skip}{weight};",
        f"const {ct} l = -{ctx.i('x')}[{(n_ * c) * d + d_} + k * {d}] * w;",
    ]
    if red == "none":
        return "\n".join(nested([hn, hd], body + [f"{ctx.o(0)}[{at}] = l;"]))
    body.append("sum += l;" + (" wsum += w;" if red == "mean" else ""))
    result = "sum / wsum" if red == "mean" else "sum"
    return "\n".join([
        "double sum = 0" + (", wsum = 0;" if red == "mean" else ";"),
        *nested([hn, hd], body),
        f"{ctx.o(0)}[0] = ({ct})({result});",
    ])
