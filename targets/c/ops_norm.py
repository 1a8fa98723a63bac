"""Normalisation emitters: BatchNormalization, LayerNormalization, GroupNormalization,
RMSNormalization, Softmax, LogSoftmax, LRN."""

from __future__ import annotations

import numpy as np

from targets.c.emitter import LayerCtx, emits, plus, strides_of
from targets.c.expr import Var
from targets.c.ops_elementwise import broadcast_strides
from targets.c.stmt import loop, nested


@emits("BatchNormalization", inplace=True)
def batchnorm(ctx: LayerCtx) -> str:
    """y = (x - mean[c]) * ((1 / sqrt(var[c] + eps)) * scale[c]) + bias[c], per channel, in
    the reference's order of operations (so INT8 graphs with BatchNorm islands stay exact)."""
    ct = ctx.require_float()
    shape = ctx.it(0).shape
    n, c = shape[0], shape[1] if len(shape) > 1 else 1
    s = int(np.prod(shape[2:]))
    x, sc, b, mu, var = (ctx.i(k) for k in range(5))
    hn, n_ = loop("n", n)
    hc, ch = loop("c", c)
    plane = (n_ * c + ch) * s
    body = [
        f"const {ct} a = ({ctx.lit(1.0)} / {ctx.fn('sqrt')}({var}[{ch}] + "
        f"{ctx.lit(ctx.a['epsilon'])})) * {sc}[{ch}];",
        f"const {ct} m = {mu}[{ch}], b = {b}[{ch}];",
        f"const {ct} *xc = {plus(x, plane)};",
        f"{ct} *yc = {plus(ctx.o(0), plane)};",
        f"for (int i = 0; i < {s}; ++i) yc[i] = (xc[i] - m) * a + b;",
    ]
    loops = [h for h in (hn, hc) if h]
    return ctx.omp(collapse=len(loops)) * bool(loops) + "\n".join(nested(loops, body))


def _trailing(ctx: LayerCtx, k: str, axis: int) -> None:
    """Check that input ``k`` varies only over the normalised trailing axes, contiguously."""
    shape = ctx.ot(0).shape
    st = broadcast_strides(ctx.it(k).shape, shape)
    inner = strides_of(shape[axis:])
    ok = all(s == 0 or d == 1 for s, d in zip(st[:axis], shape[:axis])) and all(
        s == i or d == 1 for s, i, d in zip(st[axis:], inner, shape[axis:]))
    if not ok or int(np.prod(ctx.it(k).shape)) != int(np.prod(shape[axis:])):
        raise ctx.fail(f"{ctx.node.op}'s scale/bias must cover exactly the normalised axes")


@emits("LayerNormalization")
def layernorm(ctx: LayerCtx) -> str:
    ct = ctx.require_float()
    if ctx.a["stats"] or len(ctx.node.outputs) != 1:
        raise ctx.fail("LayerNormalization with statistics outputs has no C emitter")
    shape, axis = ctx.ot(0).shape, ctx.a["axis"]
    outer, inner = int(np.prod(shape[:axis])), int(np.prod(shape[axis:]))
    _trailing(ctx, "scale", axis)
    bias = ""
    if ctx.has("bias"):
        _trailing(ctx, "bias", axis)
        bias = f" + {ctx.i('bias')}[j]"
    hr, r = loop("r", outer)
    return ctx.omp() * (hr is not None) + "\n".join(nested([hr], [
        f"const {ct} *x = {plus(ctx.i(0), r * inner)};",
        f"{ct} *y = {plus(ctx.o(0), r * inner)};",
        *_statistics(ct, inner),
        f"const {ct} inv = ({ct})(1.0 / sqrt(sq / {inner} + {float(ctx.a['epsilon'])!r}));",
        f"const {ct} m = ({ct})mean;",
        f"for (int j = 0; j < {inner}; ++j) y[j] = (x[j] - m) * inv * {ctx.i('scale')}[j]{bias};",
    ]))


def _statistics(ct: str, n: int, mean: bool = True) -> list[str]:
    """C lines declaring ``mean`` (if asked) and ``sq``, the sum of squared deviations from
    it (else of squares), of the n values at ``x``, in double: for float, sixteen running
    sums in a fixed order (csrc/qnnc_vmath.h), not one serial chain per row."""
    if ct == "float":
        if not mean:
            return [f"const double sq = qnnc_sqdev_f64(x, {n}, 0.0);"]
        return [f"const double mean = qnnc_sum_f64(x, {n}) / {n};",
                f"const double sq = qnnc_sqdev_f64(x, {n}, mean);"]
    if not mean:
        return ["double sq = 0;",
                f"for (int j = 0; j < {n}; ++j) sq += (double)x[j] * x[j];"]
    return ["double sum = 0, sq = 0;",
            f"for (int j = 0; j < {n}; ++j) sum += x[j];",
            f"const double mean = sum / {n};",
            f"for (int j = 0; j < {n}; ++j) {{ const double d = x[j] - mean; sq += d * d; }}"]


def _stash_f32(ctx: LayerCtx) -> None:
    """The C emitters keep the statistics in double, which covers an f32 stash type."""
    if ctx.a["stash"] not in ("f32", "f64"):
        raise ctx.fail(f"stash type {ctx.a['stash']} has no C emitter (f32/f64 only)")


@emits("GroupNormalization")
def groupnorm(ctx: LayerCtx) -> str:
    """Per (n, group): mean and variance of its contiguous C/G * spatial block in double
    (:func:`_statistics`), then
    per channel y = (x - mean) * inv * scale + bias (scale and bias per channel or per
    group)."""
    ct = ctx.require_float()
    _stash_f32(ctx)
    shape, g = ctx.it("x").shape, ctx.a["num_groups"]
    n, c, s = shape[0], shape[1], int(np.prod(shape[2:]))
    cg = c // g
    block = cg * s
    hng, ng = loop("ng", n * g)
    k = "gi" if ctx.it("scale").shape[0] != c else "gi * " + str(cg) + " + j"
    return ctx.omp() * (hng is not None) + "\n".join(nested([hng], [
        f"const {ct} *x = {plus(ctx.i('x'), ng * block)};",
        f"{ct} *y = {plus(ctx.o(0), ng * block)};",
        f"const int gi = {ng % g if g > 1 else 0};",
        *_statistics(ct, block),
        f"const {ct} inv = ({ct})(1.0 / sqrt(sq / {block} + {float(ctx.a['epsilon'])!r}));",
        f"const {ct} m = ({ct})mean;",
        f"for (int j = 0; j < {cg}; ++j) {{",
        f"  const {ct} sc = {ctx.i('scale')}[{k}], b = {ctx.i('bias')}[{k}];",
        f"  for (int i = j * {s}; i < (j + 1) * {s}; ++i) y[i] = (x[i] - m) * inv * sc + b;",
        "}",
    ]))


@emits("RMSNormalization")
def rmsnorm(ctx: LayerCtx) -> str:
    """Per row of the normalised axes: the mean square in double, y = x * inv * scale."""
    ct = ctx.require_float()
    _stash_f32(ctx)
    shape, axis = ctx.ot(0).shape, ctx.a["axis"]
    outer, inner = int(np.prod(shape[:axis])), int(np.prod(shape[axis:]))
    _trailing(ctx, "scale", axis)
    hr, r = loop("r", outer)
    return ctx.omp() * (hr is not None) + "\n".join(nested([hr], [
        f"const {ct} *x = {plus(ctx.i('x'), r * inner)};",
        f"{ct} *y = {plus(ctx.o(0), r * inner)};",
        *_statistics(ct, inner, mean=False),
        f"const {ct} inv = ({ct})(1.0 / sqrt(sq / {inner} + {float(ctx.a['epsilon'])!r}));",
        f"for (int j = 0; j < {inner}; ++j) y[j] = x[j] * inv * {ctx.i('scale')}[j];",
    ]))


@emits("Softmax", "LogSoftmax")
def softmax(ctx: LayerCtx) -> str:
    ct = ctx.require_float()
    shape, axis = ctx.ot(0).shape, ctx.a["axis"]
    outer, d, inner = int(np.prod(shape[:axis])), shape[axis], int(np.prod(shape[axis + 1:]))
    exp = ctx.fn("exp")
    ho, o = loop("o", outer)
    if ctx.node.op == "Softmax" and inner == 1 and ct == "float":
        # contiguous rows: csrc/qnnc_vmath.h's vectorised row (its exp is within 2 ulp)
        row = (f"qnnc_softmax_row({plus(ctx.i(0), o * d)}, {plus(ctx.o(0), o * d)}, {d});")
        return ctx.omp() * (ho is not None) + "\n".join(nested([ho], [row]))
    hi, i = loop("i", inner)
    k = Var("k")
    at = str(k * inner)
    if ctx.node.op == "Softmax":
        write = [f"for (int k = 0; k < {d}; ++k) {{ const {ct} e = {exp}(x[{at}] - mx);"
                 f" y[{at}] = e; s += e; }}",
                 f"const {ct} inv = 1 / s;",
                 f"for (int k = 0; k < {d}; ++k) y[{at}] *= inv;"]
    else:
        write = [f"for (int k = 0; k < {d}; ++k) s += {exp}(x[{at}] - mx);",
                 f"const {ct} ls = {ctx.fn('log')}(s);",
                 f"for (int k = 0; k < {d}; ++k) y[{at}] = x[{at}] - mx - ls;"]
    start = o * (d * inner) + i
    loops = [h for h in (ho, hi) if h]
    return ctx.omp(collapse=max(1, len(loops))) * bool(loops) + "\n".join(nested(loops, [
        f"const {ct} *x = {plus(ctx.i(0), start)};",
        f"{ct} *y = {plus(ctx.o(0), start)};",
        f"{ct} mx = -INFINITY, s = 0;",
        f"for (int k = 0; k < {d}; ++k) if (x[{at}] > mx) mx = x[{at}];",
        *write,
    ]))


@emits("LRN")
def lrn(ctx: LayerCtx) -> str:
    """y = x / (bias + alpha/size * Σ x[c']²) ** beta over the window of channels around c.

    The window sum is built in the output itself (no scratch), adding channels from the
    lowest upwards as the reference does, so the sum rounds identically. For beta = 0.75
    the power is the reference's sqrt(t) * sqrt(sqrt(t)), vectorised for f32
    (qnnc_lrn_three_quarters) and bit-exact; other betas call ``pow`` (libm here, numpy's
    there: the same powf on glibc, else a last-bit difference)."""
    ct = ctx.require_float()
    shape, a = ctx.it(0).shape, ctx.a
    n, c, s = shape[0], shape[1], int(np.prod(shape[2:]))
    lo = (a["size"] - 1) // 2
    hi = a["size"] - 1 - lo
    x, y = ctx.i(0), ctx.o(0)
    hn, n_ = loop("n", n)
    channels = f"for (int c = 0; c < {c}; ++c)"
    return ctx.omp(collapse=2 if hn else 1) + "\n".join(nested([hn, channels], [
        f"const {ct} *xn = {plus(x, n_ * (c * s))};",
        f"{ct} *yc = {plus(y, (n_ * c + Var('c')) * s)};",
        f"const int first = c < {lo} ? 0 : c - {lo};",
        f"const int last = c + {hi} < {c} ? c + {hi} : {c - 1};",
        f"for (int i = 0; i < {s}; ++i) yc[i] = 0;",
        "for (int j = first; j <= last; ++j) {",
        f"  const {ct} *xj = xn + j * {s};",
        f"  for (int i = 0; i < {s}; ++i) yc[i] += xj[i] * xj[i];",
        "}",
        f"const {ct} *xc = xn + c * {s};",
        *_lrn_scale(ctx, ct, s),
    ]))


def _lrn_scale(ctx: LayerCtx, ct: str, s: int) -> list[str]:
    """yc[i] = xc[i] / (bias + k * yc[i]) ** beta over the channel's s values."""
    a = ctx.a
    bias, k = ctx.lit(a["bias"]), ctx.lit(a["alpha"] / a["size"])
    if a["beta"] == 0.75 and ct == "float":
        return [f"qnnc_lrn_three_quarters(xc, yc, {s}, {bias}, {k});"]
    if a["beta"] == 0.75:  # the reference's form, in the output's own precision
        sq = ctx.fn("sqrt")
        return [f"for (int i = 0; i < {s}; ++i) {{",
                f"  const {ct} r = {sq}({bias} + {k} * yc[i]);",
                f"  yc[i] = xc[i] / (r * {sq}(r));",
                "}"]
    return [f"for (int i = 0; i < {s}; ++i)",
            f"  yc[i] = xc[i] / {ctx.fn('pow')}({bias} + {k} * yc[i], {ctx.lit(a['beta'])});"]
