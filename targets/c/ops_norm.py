"""Normalisation emitters: BatchNormalization, LayerNormalization, Softmax, LogSoftmax, LRN."""

from __future__ import annotations

import numpy as np

from targets.c.emitter import LayerCtx, emits, strides_of
from targets.c.ops_elementwise import broadcast_strides


@emits("BatchNormalization", inplace=True)
def batchnorm(ctx: LayerCtx) -> str:
    """y = (x - mean[c]) * ((1 / sqrt(var[c] + eps)) * scale[c]) + bias[c], per channel, in
    the reference's order of operations (so INT8 graphs with BatchNorm islands stay exact)."""
    ct = ctx.require_float()
    shape = ctx.it(0).shape
    n, c = shape[0], shape[1] if len(shape) > 1 else 1
    s = int(np.prod(shape[2:]))
    x, sc, b, mu, var = (ctx.i(k) for k in range(5))
    return "\n".join([
        ctx.omp(collapse=2).rstrip("\n"),
        f"for (int n = 0; n < {n}; ++n)",
        f"for (int c = 0; c < {c}; ++c) {{",
        f"  const {ct} a = ({ctx.lit(1.0)} / {ctx.fn('sqrt')}({var}[c] + "
        f"{ctx.lit(ctx.a['epsilon'])})) * {sc}[c];",
        f"  const {ct} m = {mu}[c], b = {b}[c];",
        f"  const {ct} *xc = {x} + (n * {c} + c) * {s};",
        f"  {ct} *yc = {ctx.o(0)} + (n * {c} + c) * {s};",
        f"  for (int i = 0; i < {s}; ++i) yc[i] = (xc[i] - m) * a + b;",
        "}",
    ]).lstrip("\n")


def _trailing(ctx: LayerCtx, k: int, axis: int) -> None:
    """Check that input ``k`` varies only over the normalised trailing axes, contiguously."""
    shape = ctx.ot(0).shape
    st = broadcast_strides(ctx.it(k).shape, shape)
    inner = strides_of(shape[axis:])
    ok = all(s == 0 or d == 1 for s, d in zip(st[:axis], shape[:axis])) and all(
        s == i or d == 1 for s, i, d in zip(st[axis:], inner, shape[axis:]))
    if not ok or int(np.prod(ctx.it(k).shape)) != int(np.prod(shape[axis:])):
        raise ctx.fail("LayerNormalization's scale/bias must cover exactly the normalised axes")


@emits("LayerNormalization")
def layernorm(ctx: LayerCtx) -> str:
    ct = ctx.require_float()
    if ctx.a["stats"] or len(ctx.node.outputs) != 1:
        raise ctx.fail("LayerNormalization with statistics outputs has no C emitter")
    shape, axis = ctx.ot(0).shape, ctx.a["axis"]
    outer, inner = int(np.prod(shape[:axis])), int(np.prod(shape[axis:]))
    _trailing(ctx, 1, axis)
    bias = ""
    if ctx.has(2):
        _trailing(ctx, 2, axis)
        bias = f" + {ctx.i(2)}[j]"
    return "\n".join([
        ctx.omp().rstrip("\n"),
        f"for (int r = 0; r < {outer}; ++r) {{",
        f"  const {ct} *x = {ctx.i(0)} + r * {inner};",
        f"  {ct} *y = {ctx.o(0)} + r * {inner};",
        "  double sum = 0, sq = 0;",
        f"  for (int j = 0; j < {inner}; ++j) sum += x[j];",
        f"  const double mean = sum / {inner};",
        f"  for (int j = 0; j < {inner}; ++j) {{ const double d = x[j] - mean; sq += d * d; }}",
        f"  const {ct} inv = ({ct})(1.0 / sqrt(sq / {inner} + {float(ctx.a['epsilon'])!r}));",
        f"  const {ct} m = ({ct})mean;",
        f"  for (int j = 0; j < {inner}; ++j) y[j] = (x[j] - m) * inv * {ctx.i(1)}[j]{bias};",
        "}",
    ]).lstrip("\n")


@emits("Softmax", "LogSoftmax")
def softmax(ctx: LayerCtx) -> str:
    ct = ctx.require_float()
    shape, axis = ctx.ot(0).shape, ctx.a["axis"]
    outer, d, inner = int(np.prod(shape[:axis])), shape[axis], int(np.prod(shape[axis + 1:]))
    exp = ctx.fn("exp")
    if ctx.node.op == "Softmax" and inner == 1 and ct == "float":
        # contiguous rows: csrc/qnnc_vmath.h's vectorised row (its exp is within 2 ulp)
        return "\n".join([
            ctx.omp().rstrip("\n"),
            f"for (int o = 0; o < {outer}; ++o) qnnc_softmax_row({ctx.i(0)} + o * {d}, "
            f"{ctx.o(0)} + o * {d}, {d});",
        ]).lstrip("\n")
    if ctx.node.op == "Softmax":
        write = [f"  for (int k = 0; k < {d}; ++k) {{ const {ct} e = {exp}(x[k * {inner}] - mx);"
                 f" y[k * {inner}] = e; s += e; }}",
                 f"  const {ct} inv = 1 / s;",
                 f"  for (int k = 0; k < {d}; ++k) y[k * {inner}] *= inv;"]
    else:
        write = [f"  for (int k = 0; k < {d}; ++k) s += {exp}(x[k * {inner}] - mx);",
                 f"  const {ct} ls = {ctx.fn('log')}(s);",
                 f"  for (int k = 0; k < {d}; ++k) y[k * {inner}] = x[k * {inner}] - mx - ls;"]
    return "\n".join([
        ctx.omp(collapse=2).rstrip("\n"),
        f"for (int o = 0; o < {outer}; ++o)",
        f"for (int i = 0; i < {inner}; ++i) {{",
        f"  const {ct} *x = {ctx.i(0)} + o * {d * inner} + i;",
        f"  {ct} *y = {ctx.o(0)} + o * {d * inner} + i;",
        f"  {ct} mx = -INFINITY, s = 0;",
        f"  for (int k = 0; k < {d}; ++k) if (x[k * {inner}] > mx) mx = x[k * {inner}];",
        *write,
        "}",
    ]).lstrip("\n")


@emits("LRN")
def lrn(ctx: LayerCtx) -> str:
    """y = x / (bias + alpha/size * Σ x[c']²) ** beta over the window of channels around c.

    The window sum is built in the output itself (no scratch), adding channels from the
    lowest upwards as the reference does, so the sum rounds identically; only ``pow`` (libm
    here, numpy's there) may differ in the last bit."""
    ct = ctx.require_float()
    shape, a = ctx.it(0).shape, ctx.a
    n, c, s = shape[0], shape[1], int(np.prod(shape[2:]))
    lo = (a["size"] - 1) // 2
    hi = a["size"] - 1 - lo
    x, y = ctx.i(0), ctx.o(0)
    return "\n".join([
        ctx.omp(collapse=2).rstrip("\n"),
        f"for (int n = 0; n < {n}; ++n)",
        f"for (int c = 0; c < {c}; ++c) {{",
        f"  const {ct} *xn = {x} + n * {c * s};",
        f"  {ct} *yc = {y} + (n * {c} + c) * {s};",
        f"  const int first = c < {lo} ? 0 : c - {lo};",
        f"  const int last = c + {hi} < {c} ? c + {hi} : {c - 1};",
        f"  for (int i = 0; i < {s}; ++i) yc[i] = 0;",
        "  for (int j = first; j <= last; ++j) {",
        f"    const {ct} *xj = xn + j * {s};",
        f"    for (int i = 0; i < {s}; ++i) yc[i] += xj[i] * xj[i];",
        "  }",
        f"  const {ct} *xc = xn + c * {s};",
        f"  for (int i = 0; i < {s}; ++i)",
        f"    yc[i] = xc[i] / {ctx.fn('pow')}({ctx.lit(a['bias'])} + "
        f"{ctx.lit(a['alpha'] / a['size'])} * yc[i], {ctx.lit(a['beta'])});",
        "}",
    ]).lstrip("\n")
