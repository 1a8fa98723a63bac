"""The epilogue of a staged product: an element-wise layer run on each finished output tile in
the vector buffer (pass fuse-eltwise, targets/fusion.py).

When a level-1 output tile is final, the product's requantised codes go to the region
``epilogue_y`` of the vector buffer instead of memory; the element-wise layer's other
operands are loaded, box by box at the same coordinates, into ``epilogue_in`` (counted on
the link they cross, as the model's epilogue flow: targets/cost.py); the layer's own host
emitter runs over the box (as a staged element-wise layer's does: targets/staged/compute.py)
into ``epilogue_out``; and that box is what goes on to the level-2 region or to memory, as
the element-wise layer's result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ir.graph import Node, Value
from targets.c.emitter import c_type
from targets.c.expr import Expr, Var, at
from targets.cost import outer_link
from targets.staged.compute import eltwise_over_box
from targets.staged.layer import Staged
from targets.staged.visits import Walk, o_box, obox_idx, store_if, valid_at, walk
from targets.tiling.problem import M


@dataclass(frozen=True)
class Epilogue:
    """The fused element-wise layer: its node, the product's result among its operands,
    and the C names of its other operands and of its result."""

    node: Node
    y: Value  # the product's result, which the epilogue reads from the vector buffer
    operands: tuple[tuple[Value, str], ...]  # its other operands, with their C names
    out: str  # the C name of its result


def epilogue_store(st: Staged, w: Walk, value: Var,
                   dest: Callable[[Walk], Expr]) -> list[str]:
    """The statements that finish one level-1 output tile through the epilogue: ``value``
    is the product's requantised code of the element at ``w``; ``dest(walk)`` where the
    epilogue's result for that element goes."""
    epi = st.epi
    assert epi is not None
    ry, ri, ro = (st.region(r, 1) for r in ("epilogue_y", "epilogue_in", "epilogue_out"))
    if ry is None or ro is None or (epi.operands and ri is None):
        raise st.fail("internal: the epilogue has no regions in the vector buffer")
    bn, chb, toh, tow = o_box(st, 1)
    nbox = bn * chb * toh * tow
    pct = c_type(epi.y.type.dtype)
    oct_ = c_type(epi.node.outputs[0].type.dtype)
    lines: list[str] = []
    for reg, name, ct in ((ry, "ep_y", pct), (ri, "ep_in", "uint8_t"), (ro, "ep_o", oct_)):
        if reg is not None:
            st.ptr(reg, name, ct)
            lines += st.flip(reg, name, ct)
    # the product's codes, 0 outside the tensor (the box is computed whole)
    valid = valid_at(st, w)
    yv = at("ep_y", obox_idx(st, 1, w))
    put = f"({pct})({value})" if valid is True else f"({valid}) ? ({pct})({value}) : 0"
    lines += w.body([f"{yv} = {put};"], yv, value, valid)
    # the other operands' boxes, at the output tile's coordinates
    link = outer_link(st.prob, st.prof, "epilogue")
    inputs: dict[int, str] = {}
    for k, (v, cname) in enumerate(epi.operands):
        ct = c_type(v.type.dtype)
        ptr = f"ep_in{k}"
        lines.append(f"{ct} *{ptr} = ({ct} *)(ep_in + {k * nbox});")
        r = walk(st, 1, st.nest.tile(1)[M])
        ok = valid_at(st, r)
        src = at(cname, st.v.y(*r.pos))
        dst = at(ptr, obox_idx(st, 1, r))
        fill = f"{dst} = {src};" if ok is True else f"{dst} = ({ok}) ? {src} : 0;"
        lines += r.body([fill], ok, src, dst)
        lines.append(st.count(link, nbox))
        inputs[id(v)] = ptr
    # the element-wise layer's own code over the box
    names = ["" if v is None else "ep_y" if v is epi.y else inputs[id(v)]
             for v in epi.node.inputs]
    body, _ = eltwise_over_box(st, epi.node, nbox, names, "ep_o")
    lines += ["{", *("  " + ln for ln in body), "}"]
    # the result, on to the next level or memory
    r = walk(st, 1, st.nest.tile(1)[M])
    ok = valid_at(st, r)
    src = at("ep_o", obox_idx(st, 1, r))
    lines += r.body(store_if(ok, dest(r), str(src)), ok, dest(r), src)
    return lines
