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
from targets.c.expr import Expr, parse

Offset = Callable[..., Expr]
_PLACES = ("a", "b", "y", "x")


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


def _stored(layout: str, shape: tuple[int, ...]) -> Callable[..., Expr]:
    """The offset of element (i0, i1, i2, i3) of a 4-D tensor stored in ``layout``: the
    layout's own formula (ir/layouts.py), over index expressions."""
    formula = layouts.offset_expr(layout, shape, _PLACES)
    return lambda *idx: parse(formula, dict(zip(_PLACES, idx)))


def views(node: Node, kind: str, layout_of: Callable[[Value], str],
          weight_layout: str) -> Views:
    x = node.first_operand()  # the activations, whatever the op calls them
    y = node.outputs[0]
    assert x is not None
    xs, ys = x.type.shape, y.type.shape
    lx, ly = layout_of(x), str(node.attrs.get("layout", ""))
    if kind in ("conv", "dwconv", "pool"):
        w = node.w if kind != "pool" else None
        wf: Offset | None = None
        if w is not None:
            ws = _stored(weight_layout if kind == "conv" else "", w.type.shape)
            wf = lambda n, m, c, kh, kw: ws(m, c, kh, kw)  # noqa: E731
        return Views(x=_stored(lx, xs), w=wf, y=_stored(ly, ys),
                     x_dims=(xs[0], xs[1], xs[2], xs[3]), y_dims=(ys[0], ys[1], ys[2], ys[3]))
    if kind == "linear":
        k = xs[-1]
        rows = math.prod(xs[:-1])
        cols = ys[-1]
        return Views(x=lambda n, ch, r, col: r * k + ch,
                     w=lambda n, m, c, kh, kw: m * k + c,
                     y=lambda n, m, r, col: r * cols + m,
                     x_dims=(1, k, rows, 1), y_dims=(1, cols, rows, 1))
    if kind == "matmul":
        k, rows, cols = xs[-1], xs[-2], ys[-1]
        b = math.prod(ys[:-2])
        return Views(x=lambda n, ch, r, col: (n * rows + r) * k + ch,
                     w=lambda n, m, c, kh, kw: (n * k + c) * cols + m,
                     y=lambda n, m, r, col: (n * rows + r) * cols + m,
                     x_dims=(b, k, rows, 1), y_dims=(b, cols, rows, 1))
    if kind == "eltwise4d":
        wid = ys[3]

        def four(lay: str, shape: tuple[int, ...]) -> Offset:
            at = _stored(lay, shape)
            return lambda n, ch, r, col: at(n, ch, r // wid, r % wid)

        nn, cc, hh, ww = ys
        return Views(x=four(lx, xs), w=None, y=four(ly, ys),
                     x_dims=(nn, cc, hh * ww, 1), y_dims=(nn, cc, hh * ww, 1))
    n, c, rows = _nd(ys)
    if len(ys) >= 3:
        def flat(n_: Expr, ch: Expr, r: Expr, col: Expr) -> Expr:
            return (n_ * c + ch) * rows + r
    else:
        def flat(n_: Expr, ch: Expr, r: Expr, col: Expr) -> Expr:
            return r * c + ch
    return Views(x=flat, w=None, y=flat, x_dims=(n, c, rows, 1), y_dims=(n, c, rows, 1))
