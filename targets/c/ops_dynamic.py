"""Emitters of the ops with data-dependent extents: NonZero, Compress, Unique,
NonMaxSuppression (ir/ops/dynamic.py).

Each fills its outputs up to their static bound (zeros past the true extent) and writes that
extent, counted at run time, to its last output (an int64_t scalar); qnnc_run copies it to
``qnnc_output_rows`` for the graph outputs it reaches (targets/c/model.py).
"""

from __future__ import annotations

import numpy as np

from ir.ops.dynamic import nms_bound
from ir.types import DType
from targets.c.emitter import LayerCtx, emits, float_lit, nested_loops, offset, plus, strides_of
from targets.c.expr import Expr
from targets.c.stmt import loop, nested


def _count_out(ctx: LayerCtx) -> str:
    return f"{ctx.o(len(ctx.node.outputs) - 1)}[0] = cnt;"


def _zero(ctx: LayerCtx, k: int) -> list[str]:
    n = ctx.ot(k).nbytes
    return [f"memset({ctx.o(k)}, 0, {n});"] if n else []


@emits("NonZero")
def non_zero(ctx: LayerCtx) -> str:
    """In row-major order, each non-zero element appends its multi-index as a column."""
    x = ctx.it("x").shape
    size = int(np.prod(x))
    y, xin = ctx.o(0), ctx.i("x")

    def element(i: list[Expr]) -> str:
        cols = [f"{y}[{k * size} + cnt] = {i[k]};" if k else f"{y}[cnt] = {i[k]};"
                for k in range(len(x))]
        return "\n".join([f"if ({xin}[{offset(i, strides_of(x))}] != 0) {{",
                          *("    " + c for c in cols), "    ++cnt;", "}"])

    return "\n".join(["int64_t cnt = 0;", *_zero(ctx, 0),
                      nested_loops(x, element) if size else "", _count_out(ctx)])


@emits("Compress")
def compress(ctx: LayerCtx) -> str:
    """Slice j of the axis is appended to y where condition[j] is true."""
    x = (ctx.it("x").size,) if ctx.a["flatten"] else ctx.it("x").shape
    axis = 0 if ctx.a["flatten"] else ctx.a["axis"]
    bound = ctx.ot(0).shape[axis]
    outer, d, inner = int(np.prod(x[:axis])), x[axis], int(np.prod(x[axis + 1:]))
    size = ctx.ot(0).dtype.np.itemsize
    ctx.ctype(ctx.ot(0))
    hj, j = loop("j", bound)
    ho, o = loop("o", outer)
    copy = nested([ho], [f"memcpy({ctx.o(0)} + ({o * bound} + cnt) * {inner}, "
                         f"{plus(ctx.i('x'), (o * d + j) * inner)}, {inner * size});"])
    body = [f"if ({ctx.i('condition')}[{j}]) {{", *("    " + c for c in copy), "    ++cnt;",
            "}"]
    lines = ["int64_t cnt = 0;", *_zero(ctx, 0)]
    if bound and inner and outer:
        lines += nested([hj], body)
    return "\n".join([*lines, _count_out(ctx)])


@emits("Unique")
def unique(ctx: LayerCtx) -> str:
    """Slices are compared element by element (the first difference orders them). Pass 1
    finds each slice's first occurrence (indices) and counts them; with ``sorted`` an
    insertion sort orders the distinct slices; pass 2 finds each slice's entry (inverse);
    then y gathers the distinct slices."""
    x = (ctx.it("x").size,) if ctx.a["flatten"] else ctx.it("x").shape
    axis = 0 if ctx.a["flatten"] else ctx.a["axis"]
    outer, n, inner = int(np.prod(x[:axis])), x[axis], int(np.prod(x[axis + 1:]))
    elems = outer * inner
    ct = ctx.ctype(ctx.ot(0))
    xin, y = ctx.i("x"), ctx.o(0)
    first, inverse, counts = ctx.o(1), ctx.o(2), ctx.o(3)

    def at(row: str) -> str:
        if outer == 1:
            return f"{row} * {inner} + e" if inner > 1 else row
        if inner == 1:
            return f"e * {n} + {row}"
        return f"(e / {inner} * {n} + {row}) * {inner} + e % {inner}"

    def compare(a: str, b: str) -> list[str]:
        """``c`` = the order of slices ``a`` and ``b`` (-1, 0, 1)."""
        return ["int c = 0;",
                f"for (int e = 0; e < {elems} && c == 0; ++e) {{",
                f"    const {ct} p = {xin}[{at(a)}], q = {xin}[{at(b)}];",
                "    c = p < q ? -1 : (p > q ? 1 : 0);", "}"]

    lines = ["int64_t cnt = 0;", *_zero(ctx, 0), *_zero(ctx, 1), *_zero(ctx, 3)]
    if n == 0:
        return "\n".join([*lines, _count_out(ctx)])
    lines += [f"for (int j = 0; j < {n}; ++j) {{", "    int64_t u = 0;",
              "    for (; u < cnt; ++u) {",
              *("        " + ln for ln in compare(f"{first}[u]", "j")),
              "        if (c == 0) break;", "    }",
              f"    if (u == cnt) {first}[cnt++] = j;", f"    ++{counts}[u];", "}"]
    if ctx.a["sorted"]:
        lines += ["for (int64_t s = 1; s < cnt; ++s) {",
                  f"    const int64_t f = {first}[s], k = {counts}[s];", "    int64_t t = s;",
                  "    for (; t > 0; --t) {",
                  *("        " + ln for ln in compare(f"{first}[t - 1]", "f")),
                  "        if (c <= 0) break;",
                  f"        {first}[t] = {first}[t - 1];",
                  f"        {counts}[t] = {counts}[t - 1];",
                  "    }", f"    {first}[t] = f;", f"    {counts}[t] = k;", "}"]
    lines += [f"for (int j = 0; j < {n}; ++j) {{", "    int64_t u = 0;",
              "    for (; u < cnt; ++u) {",
              *("        " + ln for ln in compare(f"{first}[u]", "j")),
              "        if (c == 0) break;", "    }", f"    {inverse}[j] = u;", "}",
              "for (int64_t u = 0; u < cnt; ++u) {",
              f"    for (int e = 0; e < {elems}; ++e) "
              f"{y}[{at('u')}] = {xin}[{at(first + '[u]')}];", "}"]
    return "\n".join([*lines, _count_out(ctx)])


@emits("NonMaxSuppression")
def non_max_suppression(ctx: LayerCtx) -> str:
    """Per batch and class, candidates are visited in descending score order (ties: lower
    index first) by finding, each time, the best one after the last visited; a candidate is
    kept unless its IoU (in f32, as the reference) with a kept box exceeds the threshold."""
    a = ctx.a
    nb, nbox = ctx.it("boxes").shape[:2]
    ncls = ctx.it("scores").shape[1]
    bound = nms_bound(ctx.it("boxes").shape, ctx.it("scores").shape, a)
    y = ctx.o(0)
    lines = ["int64_t cnt = 0;", *_zero(ctx, 0)]
    if bound == 0:
        return "\n".join([*lines, _count_out(ctx)])
    thr = float_lit(a["score_threshold"], DType.f32)  # f32 compares, as the reference
    iou = float_lit(a["iou_threshold"], DType.f32)
    hb, b = loop("b", nb)
    hc, c = loop("c", ncls)
    scores, boxes = ctx.i("scores"), ctx.i("boxes")
    body = [
        f"const float *s = {plus(scores, (b * ncls + c) * nbox)};",
        f"const float *bx = {plus(boxes, b * (nbox * 4))};",
        "const int64_t from = cnt;",
        "float last = INFINITY;",
        "int last_i = -1;",
        "for (;;) {",
        "    int best = -1;",
        f"    for (int i = 0; i < {nbox}; ++i) {{",
        f"        if (!(s[i] > {thr})) continue;",
        "        if (!(s[i] < last || (s[i] == last && i > last_i))) continue;",
        "        if (best < 0 || s[i] > s[best]) best = i;",
        "    }",
        "    if (best < 0) break;",
        "    last = s[best];",
        "    last_i = best;",
        "    int keep = 1;",
        "    for (int64_t k = from; k < cnt && keep; ++k) {",
        *("        " + ln for ln in _iou_test(a["center_point_box"], iou, y)),
        "    }",
        "    if (!keep) continue;",
        f"    {y}[cnt * 3] = {b};",
        f"    {y}[cnt * 3 + 1] = {c};",
        f"    {y}[cnt * 3 + 2] = best;",
        "    ++cnt;",
        f"    if (cnt - from >= {a['max_output_boxes_per_class']}) break;",
        "}",
    ]
    return "\n".join([*lines, *nested([hb, hc], body), _count_out(ctx)])


def _iou_test(center: int, iou: str, y: str) -> list[str]:
    """Clears ``keep`` when box ``best`` overlaps kept box ``k`` by more than ``iou``."""
    if center:
        corners = ["const float ax0 = p[0] - p[2] / 2.0f, ax1 = p[0] + p[2] / 2.0f;",
                   "const float ay0 = p[1] - p[3] / 2.0f, ay1 = p[1] + p[3] / 2.0f;",
                   "const float bx0 = q[0] - q[2] / 2.0f, bx1 = q[0] + q[2] / 2.0f;",
                   "const float by0 = q[1] - q[3] / 2.0f, by1 = q[1] + q[3] / 2.0f;"]
    else:
        corners = ["const float ax0 = fminf(p[1], p[3]), ax1 = fmaxf(p[1], p[3]);",
                   "const float ay0 = fminf(p[0], p[2]), ay1 = fmaxf(p[0], p[2]);",
                   "const float bx0 = fminf(q[1], q[3]), bx1 = fmaxf(q[1], q[3]);",
                   "const float by0 = fminf(q[0], q[2]), by1 = fmaxf(q[0], q[2]);"]
    return [
        "const float *p = bx + best * 4;",
        f"const float *q = bx + {y}[k * 3 + 2] * 4;",
        *corners,
        "const float ix = fminf(ax1, bx1) - fmaxf(ax0, bx0);",
        "const float iy = fminf(ay1, by1) - fmaxf(ay0, by0);",
        "if (ix <= 0 || iy <= 0) continue;",
        "const float inter = ix * iy;",
        "const float area_a = (ax1 - ax0) * (ay1 - ay0), area_b = (bx1 - bx0) * (by1 - by0);",
        "const float uni = area_a + area_b - inter;",
        "if (area_a <= 0 || area_b <= 0 || uni <= 0) continue;",
        f"if (inter / uni > {iou}) keep = 0;",
    ]
