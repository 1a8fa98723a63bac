"""Relayout: copy a 4-D tensor between storage layouts (ir/layouts.py), padding with zeros."""

from __future__ import annotations

from ir import layouts
from targets.c.emitter import LayerCtx, emits, nested_loops
from targets.c.expr import parse


@emits("Relayout")
def relayout(ctx: LayerCtx) -> str:
    src, dst = str(ctx.a.get("from_layout", "")), str(ctx.a["layout"])
    t = ctx.it(0)
    ct = ctx.ctype(t)
    x, y = ctx.i(0), ctx.o(0)
    if t.rank != 4:
        if src or dst:
            raise ctx.fail(f"layout {dst or src!r} needs a 4-D tensor")
        return f"memcpy({y}, {x}, {t.nbytes});"
    size = layouts.physical_size(dst, t.shape)
    names = ("a", "b", "y", "x")
    to = layouts.offset_expr(dst, t.shape, names)
    frm = layouts.offset_expr(src, t.shape, names)

    def copy(idx: list) -> str:
        env = dict(zip(names, idx))
        return f"{y}[{parse(to, env)}] = {x}[{parse(frm, env)}];"

    pad = [] if size == t.size else [f"memset({y}, 0, {size} * sizeof({ct}));"]
    return "\n".join([f"/* {src or 'plain'} -> {dst or 'plain'} */", *pad,
                      nested_loops(t.shape, copy)])
