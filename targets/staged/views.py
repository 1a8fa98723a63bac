"""How a staged layer's operands sit in global memory: element offsets per kernel kind.

Every staged kernel sees its activation input as (n, channel, row, col), its weights as
(n, m, c, kh, kw) and its output as (n, m, row, col); a view turns those logical coordinates
into the C offset of the element in the stored tensor (its layout included).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ir import layouts
from ir.graph import Node, Value

Offset = Callable[..., str]


@dataclass(frozen=True)
class Views:
    x: Offset  # (n, chan, r, col)
    w: Offset | None  # (n, m, c, kh, kw)
    y: Offset  # (n, m, r, col)
    x_dims: tuple[int, int, int, int]  # N, channels, rows, cols of the input
    y_dims: tuple[int, int, int, int]


def _nd(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(n, channels, rows) of an elementwise operand, as targets/tiling/ops.py sees it."""
    if len(shape) >= 3:
        return shape[0], shape[1], math.prod(shape[2:])
    return 1, shape[-1], math.prod(shape[:-1])


def views(node: Node, kind: str, layout_of: Callable[[Value], str],
          weight_layout: str) -> Views:
    x = node.inputs[0]
    y = node.outputs[0]
    assert x is not None
    xs, ys = x.type.shape, y.type.shape
    lx, ly = layout_of(x), str(node.attrs.get("layout", ""))
    if kind in ("conv", "dwconv", "pool"):
        w = node.inputs[1] if kind != "pool" else None
        wf: Offset | None = None
        if w is not None:
            ws = w.type.shape
            wl = weight_layout if kind == "conv" else ""
            wf = lambda n, m, c, kh, kw: layouts.offset_expr(wl, ws, (m, c, kh, kw))  # noqa: E731
        return Views(
            x=lambda n, ch, r, col: layouts.offset_expr(lx, xs, (n, ch, r, col)),
            w=wf,
            y=lambda n, m, r, col: layouts.offset_expr(ly, ys, (n, m, r, col)),
            x_dims=(xs[0], xs[1], xs[2], xs[3]), y_dims=(ys[0], ys[1], ys[2], ys[3]))
    if kind == "linear":
        k = xs[-1]
        rows = math.prod(xs[:-1])
        cols = ys[-1]
        return Views(x=lambda n, ch, r, col: f"({r})*{k} + ({ch})",
                     w=lambda n, m, c, kh, kw: f"({m})*{k} + ({c})",
                     y=lambda n, m, r, col: f"({r})*{cols} + ({m})",
                     x_dims=(1, k, rows, 1), y_dims=(1, cols, rows, 1))
    if kind == "matmul":
        k, rows, cols = xs[-1], xs[-2], ys[-1]
        b = math.prod(ys[:-2])
        return Views(x=lambda n, ch, r, col: f"(({n})*{rows} + ({r}))*{k} + ({ch})",
                     w=lambda n, m, c, kh, kw: f"(({n})*{k} + ({c}))*{cols} + ({m})",
                     y=lambda n, m, r, col: f"(({n})*{rows} + ({r}))*{cols} + ({m})",
                     x_dims=(b, k, rows, 1), y_dims=(b, cols, rows, 1))
    if kind == "eltwise4d":
        wid = ys[3]

        def four(lay: str, shape: tuple[int, ...]) -> Offset:
            return lambda n, ch, r, col: layouts.offset_expr(
                lay, shape, (n, ch, f"({r})/{wid}", f"({r})%{wid}"))

        nn, cc, hh, ww = ys
        return Views(x=four(lx, xs), w=None, y=four(ly, ys),
                     x_dims=(nn, cc, hh * ww, 1), y_dims=(nn, cc, hh * ww, 1))
    n, c, rows = _nd(ys)
    if len(ys) >= 3:
        def flat(n_: str, ch: str, r: str, col: str) -> str:
            return f"(({n_})*{c} + ({ch}))*{rows} + ({r})"
    else:
        def flat(n_: str, ch: str, r: str, col: str) -> str:
            return f"({r})*{c} + ({ch})"
    return Views(x=flat, w=None, y=flat, x_dims=(n, c, rows, 1), y_dims=(n, c, rows, 1))
