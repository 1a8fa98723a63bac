"""Vision emitters: GridSample, AffineGrid, RoiAlign, MaxRoiPool, MaxUnpool, DeformConv,
CausalConvWithState.

Positions come from data, so each output computes its own taps the way the reference's
formula says (coordinates in double), then reads the input through them; see ir/ops/vision.py
for the meaning of every step.
"""

from __future__ import annotations

import math

from ir.ops.vision import CUBIC_A
from ir.types import DType
from targets.c.emitter import LayerCtx, emits, float_lit, plus, strides_of
from targets.c.expr import Var
from targets.c.stmt import loop, nested


def _d(x: float) -> str:
    """A double literal."""
    return float_lit(x, DType.f64)


def _reflect(var: str, lo: float, hi: float) -> list[str]:
    """``var`` (a double) reflected at ``lo`` and ``hi`` until it lies between them."""
    if hi - lo <= 0:
        return [f"{var} = {_d(lo)};"]
    return [
        f"if ({var} < {_d(lo)} || {var} > {_d(hi)}) {{",
        f"  const double dx = {var} < {_d(lo)} ? {_d(lo)} - {var} : {var} - {_d(hi)};",
        f"  const double turns = floor(dx / {_d(hi - lo)}), r = dx - turns * {_d(hi - lo)};",
        f"  {var} = ({var} < {_d(lo)}) == (fmod(turns, 2.0) == 0) ? {_d(lo)} + r : {_d(hi)} - r;",
        "}",
    ]


def _axis_taps(ctx: LayerCtx, i: int, size: int, g: str) -> tuple[list[str], int]:
    """C computing the taps ``i{i}[]`` and weights ``w{i}[]`` of spatial axis ``i`` from the
    normalised coordinate ``g``; returns (lines, taps)."""
    mode, pad, align = ctx.a["mode"], ctx.a["padding_mode"], ctx.a["align_corners"]
    lo, hi = (0.0, size - 1.0) if align else (-0.5, size - 0.5)
    c = f"c{i}"
    den = (f"({g} + 1) / 2 * {size - 1}" if align else f"(({g} + 1) * {size} - 1) / 2")
    lines = [f"double {c} = {den};"]
    if mode == "nearest":
        lines.append(f"{c} = nearbyint({c});")
    if pad == "border":
        lines.append(f"if ({c} < {_d(lo)} || {c} > {_d(hi)}) "
                     f"{c} = {c} < 0 ? 0 : {c} > {size - 1} ? {size - 1} : {c};")
    elif pad == "reflection":
        lines += _reflect(c, lo, hi)
    taps = {"nearest": 1, "linear": 2, "cubic": 4}[mode]
    lines.append(f"int i{i}[{taps}]; double w{i}[{taps}];")
    if mode == "nearest":
        lines += [f"const double f{i} = {c};", f"w{i}[0] = 1;"]
    else:
        lines.append(f"const double f{i} = floor({c}), t{i} = {c} - f{i};")
        t = f"t{i}"
        if mode == "linear":
            lines.append(f"w{i}[0] = 1 - {t}; w{i}[1] = {t};")
        else:
            a = _d(CUBIC_A)

            def far(d: str) -> str:
                return f"(({a} * {d} - 5 * {a}) * {d} + 8 * {a}) * {d} - 4 * {a}"

            def near(d: str) -> str:
                return f"(({a} + 2) * {d} - ({a} + 3)) * {d} * {d} + 1"

            lines += [f"w{i}[0] = {far(f'({t} + 1)')};", f"w{i}[1] = {near(t)};",
                      f"w{i}[2] = {near(f'(1 - {t})')};", f"w{i}[3] = {far(f'(2 - {t})')};"]
    first = f"f{i}" if mode != "cubic" else f"f{i} - 1"
    body = [f"double j = {first} + k;"]
    if pad == "zeros":
        body.append(f"if (j < 0 || j >= {size}) w{i}[k] = 0;")
    elif pad == "reflection":
        body += _reflect("j", lo, hi) + ["j = trunc(j);"]
    body.append(f"i{i}[k] = j < 0 ? 0 : j > {size - 1} ? {size - 1} : (int)j;")
    lines += [f"for (int k = 0; k < {taps}; ++k) {{", *("  " + b for b in body), "}"]
    return lines, taps


@emits("GridSample")
def grid_sample(ctx: LayerCtx) -> str:
    ct = ctx.require_float()
    xs, out = ctx.it("x").shape, ctx.ot(0).shape
    n, c, sizes = xs[0], xs[1], xs[2:]
    nsp, plane, points = len(sizes), math.prod(sizes), math.prod(out[2:])
    hn, n_ = loop("n", n)
    o = Var("o")
    head = [f"const {ct} *g = {plus(ctx.i('grid'), (n_ * points + o) * nsp)};"]
    taps = []
    for i, size in enumerate(sizes):
        lines, t = _axis_taps(ctx, i, size, f"g[{nsp - 1 - i}]")
        head += lines
        taps.append(t)
    st = strides_of(sizes)
    weight = " * ".join(f"w{i}[t{i}]" for i in range(nsp))
    index = " + ".join(f"i{i}[t{i}] * {st[i]}" if st[i] != 1 else f"i{i}[t{i}]"
                       for i in range(nsp))
    tap_loops = [f"for (int t{i} = 0; t{i} < {t}; ++t{i})" for i, t in enumerate(taps)]
    channel = [
        f"const {ct} *xc = {plus(ctx.i('x'), (n_ * c + Var('ch')) * plane)};",
        "double acc = 0;",
        *nested(tap_loops, [f"acc += {weight} * xc[{index}];"]),
        f"{ctx.o(0)}[{(n_ * c + Var('ch')) * points + o}] = ({ct})acc;",
    ]
    body = head + nested([f"for (int ch = 0; ch < {c}; ++ch)"], channel)
    return "\n".join(nested([hn, f"for (int o = 0; o < {points}; ++o)"], body))


@emits("AffineGrid")
def affine_grid(ctx: LayerCtx) -> str:
    """grid[n, o, j] = sum_k theta[n, j, k] * base_k(o), base = (x_w, y_h[, z_d], 1)."""
    ct = ctx.require_float()
    size, align = ctx.a["size"], ctx.a["align_corners"]
    sp = size[2:]
    nsp = len(sp)
    st = strides_of(sp)
    hn, n_ = loop("n", size[0])
    lines = [f"const {ct} *th = {plus(ctx.i('theta'), n_ * (nsp * (nsp + 1)))};"]
    # base coordinate of spatial axis a (x is the last axis), from the flat position o
    for a, s in enumerate(sp):
        idx = f"(o / {st[a]} % {s})" if st[a] != 1 else f"(o % {s})"
        if align:
            val = f"-1 + 2.0 * {idx} / {s - 1}" if s > 1 else "-1.0"
        else:
            val = f"-1 + (2.0 * {idx} + 1) / {s}"
        lines.append(f"const double b{nsp - 1 - a} = {val};")  # b0 = x, b1 = y, b2 = z

    def row(j: int) -> str:
        terms = [f"th[{j * (nsp + 1) + k}] * b{k}" for k in range(nsp)]
        return " + ".join(terms + [f"th[{j * (nsp + 1) + nsp}]"])

    at = (n_ * math.prod(sp) + Var("o")) * nsp
    lines += [f"{ctx.o(0)}[{at + j}] = ({ct})({row(j)});" for j in range(nsp)]
    return "\n".join(nested([hn, f"for (int o = 0; o < {math.prod(sp)}; ++o)"], lines))


def _corner(var: str, p: str, size: int) -> list[str]:
    """RoiAlign's clamped corners of a sample position ``p``: ``{var}lo``, ``{var}hi`` and
    the fraction ``{var}f`` (positions inside [-1, size] only; the caller checks)."""
    return [
        f"const double {var}q = {p} < 0 ? 0 : {p};",
        f"const int {var}last = (int){var}q >= {size - 1};",
        f"const int {var}lo = {var}last ? {size - 1} : (int){var}q;",
        f"const int {var}hi = {var}last ? {size - 1} : {var}lo + 1;",
        f"const double {var}f = {var}last ? 0 : {var}q - {var}lo;",
    ]


@emits("RoiAlign")
def roi_align(ctx: LayerCtx) -> str:
    ct = ctx.require_float()
    _, c, h, w = ctx.it("x").shape
    a = ctx.a
    oh, ow, sr = a["output_height"], a["output_width"], a["sampling_ratio"]
    off = 0.5 if a["half_pixel"] else 0.0
    scale = _d(a["spatial_scale"])
    avg = a["mode"] == "avg"
    o = _d(off)
    roi = [f"const {ctx.ctype(ctx.it('rois'))} *roi = {ctx.i('rois')} + r * 4;",
           f"const double x0 = roi[0] * {scale} - {o}, y0 = roi[1] * {scale} - {o};",
           f"double rw = roi[2] * {scale} - {o} - x0, rh = roi[3] * {scale} - {o} - y0;"]
    if not a["half_pixel"]:
        roi += ["if (rw < 1) rw = 1;", "if (rh < 1) rh = 1;"]
    roi += [
        f"const double bh = rh / {oh}, bw = rw / {ow};",
        f"const int gh = {sr if sr > 0 else f'(int)ceil(rh / {oh})'}, "
        f"gw = {sr if sr > 0 else f'(int)ceil(rw / {ow})'};",
        f"const {ct} *xb = {ctx.i('x')} + (long){ctx.i('batch_indices')}[r] * {c * h * w};",
    ]
    terms = ["(1 - yf) * (1 - xf) * xc[ylo * W + xlo]", "(1 - yf) * xf * xc[ylo * W + xhi]",
             "yf * (1 - xf) * xc[yhi * W + xlo]", "yf * xf * xc[yhi * W + xhi]"]
    terms = [t.replace("W", str(w)) for t in terms]
    if avg:
        take = [f"acc += {' + '.join(terms)};"]
    else:
        take = [f"double v = {terms[0]};"] + [f"if ({t} > v) v = {t};" for t in terms[1:]] + \
            ["if (first || v > acc) acc = v;"]
    sample = [
        "const double yy = y0 + ph * bh + (iy + 0.5) * bh / gh;",
        "const double xx = x0 + pw * bw + (ix + 0.5) * bw / gw;",
        f"if (yy < -1.0 || yy > {h} || xx < -1.0 || xx > {w}) {{",
        *(["  continue;"] if avg else
          ["  if (first || 0 > acc) acc = 0;", "  first = 0;", "  continue;"]),
        "}",
        *_corner("y", "yy", h), *_corner("x", "xx", w),
        *take,
    ] + ([] if avg else ["first = 0;"])
    done = "acc / (gh * gw > 0 ? gh * gw : 1)" if avg else "acc"
    per_bin = [
        f"const {ct} *xc = xb + ch * {h * w};",
        "double acc = 0;" + ("" if avg else " int first = 1;"),
        *nested(["for (int iy = 0; iy < gh; ++iy)", "for (int ix = 0; ix < gw; ++ix)"],
                sample),
        f"{ctx.o(0)}[((r * {c} + ch) * {oh} + ph) * {ow} + pw] = ({ct})({done});",
    ]
    nrois = ctx.it("rois").shape[0]
    bins = nested([f"for (int ch = 0; ch < {c}; ++ch)", f"for (int ph = 0; ph < {oh}; ++ph)",
                   f"for (int pw = 0; pw < {ow}; ++pw)"], per_bin)
    return "\n".join(nested([f"for (int r = 0; r < {nrois}; ++r)"], roi + bins))


@emits("MaxRoiPool")
def max_roi_pool(ctx: LayerCtx) -> str:
    ct = ctx.require_float()
    _, c, h, w = ctx.it("x").shape
    ph, pw = ctx.a["pooled_shape"]
    scale = _d(ctx.a["spatial_scale"])
    nrois = ctx.it("rois").shape[0]

    def bins(axis: str, lo: str, hi: str, n: int, size: int) -> list[str]:
        return [
            f"const int {axis}0 = (int)round({lo} * {scale}),"
            f" {axis}1 = (int)round({hi} * {scale});",
            f"const double b{axis} = ({axis}1 - {axis}0 + 1 > 1 ? {axis}1 - {axis}0 + 1 : 1) "
            f"/ (double){n};",
            f"int {axis}s = (int)floor(p{axis} * b{axis}) + {axis}0, "
            f"{axis}e = (int)ceil((p{axis} + 1) * b{axis}) + {axis}0;",
            f"{axis}s = {axis}s < 0 ? 0 : {axis}s > {size} ? {size} : {axis}s;",
            f"{axis}e = {axis}e < 0 ? 0 : {axis}e > {size} ? {size} : {axis}e;",
        ]

    body = [
        f"const {ctx.ctype(ctx.it('rois'))} *roi = {ctx.i('rois')} + r * 5;",
        *bins("h", "roi[2]", "roi[4]", ph, h), *bins("w", "roi[1]", "roi[3]", pw, w),
        f"const {ct} *xc = {ctx.i('x')} + ((long)roi[0] * {c} + ch) * {h * w};",
        f"{ct} m = hs < he && ws < we ? -INFINITY : 0;",
        f"for (int i = hs; i < he; ++i) for (int j = ws; j < we; ++j) "
        f"if (xc[i * {w} + j] > m) m = xc[i * {w} + j];",
        f"{ctx.o(0)}[((r * {c} + ch) * {ph} + ph) * {pw} + pw] = m;",
    ]
    return "\n".join(nested([f"for (int r = 0; r < {nrois}; ++r)",
                             f"for (int ch = 0; ch < {c}; ++ch)",
                             f"for (int ph = 0; ph < {ph}; ++ph)",
                             f"for (int pw = 0; pw < {pw}; ++pw)"], body))


@emits("MaxUnpool")
def max_unpool(ctx: LayerCtx) -> str:
    total = math.prod(ctx.ot(0).shape)
    y = ctx.o(0)
    return "\n".join([
        f"for (int i = 0; i < {total}; ++i) {y}[i] = 0;",
        f"for (int i = 0; i < {math.prod(ctx.it('x').shape)}; ++i) {{",
        f"  const int64_t k = {ctx.i('indices')}[i];",
        f"  if (k >= 0 && k < {total}) {y}[k] = {ctx.i('x')}[i];",
        "}",
    ])


@emits("DeformConv")
def deform_conv(ctx: LayerCtx) -> str:
    ct = ctx.require_float()
    n, c, h, w = ctx.it("x").shape
    m, cpg, kh, kw = ctx.it("w").shape
    _, _, oh, ow = ctx.ot(0).shape
    a = ctx.a
    (sh, sw), (dh, dw), pads = a["strides"], a["dilations"], a["pads"]
    g, og, kk = a["group"], a["offset_group"], kh * kw
    plane = oh * ow
    mask = (f"{ctx.i('mask')}[((n * {og} + og) * {kk} + k) * {plane} + p]" if ctx.has("mask")
            else "1")
    tap = [
        f"const {ct} *of = {ctx.i('offset')} + ((n * {og} + og) * {2 * kk} + 2 * k) * {plane} + p;",
        f"const double py = oy * {sh} - {pads[0]} + k / {kw} * {dh} + of[0];",
        f"const double px = ox * {sw} - {pads[1]} + k % {kw} * {dw} + of[{plane}];",
        "const double fy = floor(py), fx = floor(px);",
        "double v = 0;",
        "for (int dy = 0; dy < 2; ++dy) for (int dx = 0; dx < 2; ++dx) {",
        "  const int yi = (int)fy + dy, xi = (int)fx + dx;",
        f"  if (yi < 0 || yi >= {h} || xi < 0 || xi >= {w}) continue;",
        "  v += (dy ? py - fy : 1 - (py - fy)) * (dx ? px - fx : 1 - (px - fx)) * "
        f"xc[yi * {w} + xi];",
        "}",
        f"acc += {ctx.i('w')}[(oc * {cpg} + ci) * {kk} + k] * ({mask}) * v;",
    ]
    per_channel = [
        f"const int c = oc / {m // g} * {cpg} + ci, og = c / {c // og};",
        f"const {ct} *xc = {ctx.i('x')} + (n * {c} + c) * {h * w};",
        *nested([f"for (int k = 0; k < {kk}; ++k)"], tap),
    ]
    bias = f"{ctx.i('b')}[oc]" if ctx.has("b") else "0"
    per_out = [
        f"const int oy = p / {ow}, ox = p % {ow};",
        f"double acc = {bias};",
        *nested([f"for (int ci = 0; ci < {cpg}; ++ci)"], per_channel),
        f"{ctx.o(0)}[(n * {m} + oc) * {plane} + p] = ({ct})acc;",
    ]
    return "\n".join(nested([f"for (int n = 0; n < {n}; ++n)", f"for (int oc = 0; oc < {m}; ++oc)",
                             f"for (int p = 0; p < {plane}; ++p)"], per_out))


@emits("CausalConvWithState")
def causal_conv_with_state(ctx: LayerCtx) -> str:
    """Per (n, c): the taps read p = concat(past_state, x), position m of p being
    past_state[m] for m < k - 1 and x[m - (k - 1)] after; present_state is p's tail."""
    ct = ctx.require_float()
    n, c, length = ctx.it("x").shape
    k = ctx.it("w").shape[2]
    row = Var("n") * c + Var("c")
    past = f"pc[q + {k - 1}]" if ctx.has("past_state") else ctx.lit(0.0)

    def at(q: str) -> str:
        return f"({q} < 0 ? {past} : xc[{q}])"

    body = [f"const {ct} *xc = {plus(ctx.i('x'), row * length)};"]
    if ctx.has("past_state"):
        body.append(f"const {ct} *pc = {plus(ctx.i('past_state'), row * (k - 1))};")
    acc = f"{ctx.i('b')}[c]" if ctx.has("b") else ctx.lit(0.0)
    step = [f"{ct} acc = {acc};",
            f"for (int j = 0; j < {k}; ++j) {{",
            f"  const int q = t + j - {k - 1};",
            f"  acc += {ctx.i('w')}[c * {k} + j] * {at('q')};",
            "}"]
    if ctx.a["activation"] == "silu":
        step.append(f"acc = acc / (1 + {ctx.fn('exp')}(-acc));")
    step.append(f"{ctx.o(0)}[{row * length + Var('t')}] = acc;")
    body += nested([f"for (int t = 0; t < {length}; ++t)"], step)
    if k > 1:
        body += nested([f"for (int i = 0; i < {k - 1}; ++i)"], [
            f"const int q = {length - (k - 1)} + i;",
            f"{ctx.o(1)}[{row * (k - 1) + Var('i')}] = {at('q')};"])
    return "\n".join(nested([f"for (int n = 0; n < {n}; ++n)",
                             f"for (int c = 0; c < {c}; ++c)"], body))
