"""Relayout: copy a 4-D tensor between storage layouts (ir/layouts.py), padding with zeros."""

from __future__ import annotations

from ir import layouts
from targets.c.emitter import LayerCtx, emits


@emits("Relayout")
def relayout(ctx: LayerCtx) -> str:
    src, dst = str(ctx.a.get("from_layout", "")), str(ctx.a["layout"])
    t = ctx.it(0)
    ct = ctx.ctype(t)
    if t.rank != 4:
        if src or dst:
            raise ctx.fail(f"layout {dst or src!r} needs a 4-D tensor")
        return f"memcpy({ctx.o(0)}, {ctx.i(0)}, {t.nbytes});"
    n, c, h, w = t.shape
    size = layouts.physical_size(dst, t.shape)
    idx = ("i0", "i1", "i2", "i3")
    return "\n".join([
        f"/* {src or 'plain'} -> {dst or 'plain'} */",
        f"memset({ctx.o(0)}, 0, {size} * sizeof({ct}));",
        f"for (int i0 = 0; i0 < {n}; ++i0) for (int i1 = 0; i1 < {c}; ++i1)",
        f"for (int i2 = 0; i2 < {h}; ++i2) for (int i3 = 0; i3 < {w}; ++i3)",
        f"  {ctx.o(0)}[{layouts.offset_expr(dst, t.shape, idx)}] = "
        f"{ctx.i(0)}[{layouts.offset_expr(src, t.shape, idx)}];",
    ])
