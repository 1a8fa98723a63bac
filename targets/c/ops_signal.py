"""Signal emitters: DFT and STFT as direct O(N^2) sums (not FFTs) over a precomputed twiddle
table, cos and sin of 2 pi t / N for t < N as constant double weights (the values the
reference's ir.ops.signal.twiddles gives), indexed by t = (k * n) mod N, which the inner
loop keeps by adding k and wrapping. Sums run in double and round once to the output's type.
"""

from __future__ import annotations

import numpy as np

from ir.ops.signal import twiddles
from targets.c.emitter import LayerCtx, emits, nested_loops, offset
from targets.c.expr import Var


def _tables(ctx: LayerCtx, n: int) -> tuple[str, str]:
    """The C names of cos(2 pi t / n) and sin(2 pi t / n), t < n."""
    w = twiddles(n)
    return ctx.weight(np.ascontiguousarray(w.real), "cos"), \
        ctx.weight(np.ascontiguousarray(-w.imag), "sin")


def _accumulate(sign: str, xr: str, xi: str | None) -> list[str]:
    """re/im += (xr + i xi) * (cos t -+ i sin t): '-' forward, '+' inverse."""
    if xi is None:
        return [f"re += {xr} * c[t];", f"im {'-' if sign == '-' else '+'}= {xr} * s[t];"]
    if sign == "-":
        return [f"re += {xr} * c[t] + {xi} * s[t];", f"im += {xi} * c[t] - {xr} * s[t];"]
    return [f"re += {xr} * c[t] - {xi} * s[t];", f"im += {xi} * c[t] + {xr} * s[t];"]


@emits("DFT")
def dft(ctx: LayerCtx) -> str:
    """y[k] = sum_n x[n] e^(-+2 pi i k n / N) (/ N when inverse) per (outer, inner) position;
    inverse and onesided: the real x[n] = 1/N sum_k c_k Re(y[k] e^(2 pi i k n / N))."""
    ct = ctx.require_float()
    xs, a = ctx.it(0).shape, ctx.a
    ax, n = a["axis"], a["length"]
    outer, length, inner = int(np.prod(xs[:ax])), xs[ax], int(np.prod(xs[ax + 1:-1]))
    cin, cout = xs[-1], ctx.ot(0).shape[-1]
    bins = ctx.ot(0).shape[ax]
    cos_t, sin_t = _tables(ctx, n)
    x, y = ctx.i(0), ctx.o(0)
    irfft = a["inverse"] and a["onesided"]
    terms = min(length, n // 2 + 1) if irfft else min(length, n)
    m = Var("m", 0, terms - 1)

    def x_at(o: object, i: object, part: int) -> str:
        return offset([o, m, i], [length * inner * cin, inner * cin, cin], part)

    def body(idx: list) -> str:
        o, k, i = idx
        xr = f"{x}[{x_at(o, i, 0)}]"
        xi = f"{x}[{x_at(o, i, 1)}]" if cin == 2 else None
        head = [f"const double *c = {cos_t}, *s = {sin_t};", "double re = 0, im = 0;",
                "int t = 0;"]
        if irfft:  # here k is the output sample, m the bin
            edge = f"m == 0 || 2 * m == {n}" if n % 2 == 0 else "m == 0"
            weight = f"({edge} ? 1.0 : 2.0)"  # c_k: bins 0 and N/2 stand for themselves alone
            yi = f" - {xi} * s[t]" if xi else ""
            step = [f"re += {weight} * ({xr} * c[t]{yi});"]
            head[1] = "double re = 0;"
        else:
            step = _accumulate("+" if a["inverse"] else "-", xr, xi)
        loop_ = [f"for (int m = 0; m < {terms}; ++m) {{", *("    " + s for s in step),
                 f"    t += {k}; if (t >= {n}) t -= {n};", "}"]
        scale = f" / {n}" if a["inverse"] else ""
        out = offset([o, k, i], [bins * inner * cout, inner * cout, cout])
        store = [f"{y}[{out}] = ({ct})(re{scale});"]
        if cout == 2:
            out_im = offset([o, k, i], [bins * inner * cout, inner * cout, cout], 1)
            store.append(f"{y}[{out_im}] = ({ct})(im{scale});")
        return "\n".join(head + loop_ + store)

    return nested_loops([outer, bins, inner], body, names=["o", "k", "i"], omp=ctx.omp())


@emits("STFT")
def stft(ctx: LayerCtx) -> str:
    """y[b, f, k] = sum_m x[b, f * step + m] w[m] e^(-2 pi i k m / L)."""
    ct = ctx.require_float()
    batch, total, cin = ctx.it(0).shape
    a = ctx.a
    step, n = a["frame_step"], a["frame_length"]
    _, frames, bins, _ = ctx.ot(0).shape
    cos_t, sin_t = _tables(ctx, n)
    x, y = ctx.i(0), ctx.o(0)
    win = ctx.i("window") if ctx.has("window") else None
    m = Var("m", 0, n - 1)

    def body(idx: list) -> str:
        b, f, k = idx
        at = offset([b, f * step + m], [total * cin, cin])
        w = f" * {win}[m]" if win else ""
        xr = f"{x}[{at}]"
        xi = f"{x}[{offset([b, f * step + m], [total * cin, cin], 1)}]" if cin == 2 else None
        vals = [f"const double xr = (double){xr}{w};"]
        if xi:
            vals.append(f"const double xi = (double){xi}{w};")
        out = offset([b, f, k], [frames * bins * 2, bins * 2, 2])
        out_im = offset([b, f, k], [frames * bins * 2, bins * 2, 2], 1)
        return "\n".join([
            f"const double *c = {cos_t}, *s = {sin_t};", "double re = 0, im = 0;", "int t = 0;",
            f"for (int m = 0; m < {n}; ++m) {{", *("    " + v for v in vals),
            *("    " + s for s in _accumulate("-", "xr", "xi" if xi else None)),
            f"    t += {k}; if (t >= {n}) t -= {n};", "}",
            f"{y}[{out}] = ({ct})re;", f"{y}[{out_im}] = ({ct})im;"])

    return nested_loops([batch, frames, bins], body, names=["b", "f", "k"], omp=ctx.omp())
