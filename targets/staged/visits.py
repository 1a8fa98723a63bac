"""Output tiles: the visits of nest.py at each staged level: zeroed or refilled with partial
sums on entry, written out on exit, as final values (requantised) on the last visit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from targets.c.cond import Cond, all_of, lt, negate
from targets.c.expr import Expr, Var, at
from targets.c.stmt import Scope, if_else, let, loop, nested
from targets.staged.layer import Staged
from targets.staged.tiles import staged_levels
from targets.tiling.problem import OH, OW, M, N, pad

_OUT_DIMS = frozenset((N, M, OH, OW))


def o_box(st: Staged, lv: int) -> tuple[int, int, int, int]:
    t = st.nest.tile(lv)
    return t[N], pad(t[M], st.prob.block(st.prof)), t[OH], t[OW]


@dataclass
class Walk:
    """The loops over one output tile: the position in the tile (``rel``: bn, mi, ohi, owi)
    and in the tensor (``pos``: n, m, oh, ow, locals declared only if read)."""

    heads: list[str | None]
    rel: tuple[Expr, Expr, Expr, Expr]
    pos: tuple[Expr, Expr, Expr, Expr]
    scope: Scope

    def body(self, lines: list[str], *uses: Expr | Cond) -> list[str]:
        """``lines`` inside the walk's loops; ``uses``: what the lines read."""
        self.scope.use(*uses)
        return nested(self.heads, [*self.scope.decls(), *lines], scoped=True)


def walk(st: Staged, lv: int, tm: int | None = None) -> Walk:
    """A walk over the level-``lv`` output tile (``tm`` of its channels)."""
    bn, chb, toh, tow = o_box(st, lv)
    loops = [loop(v, n) for v, n in zip(("bn", "mi", "ohi", "owi"), (bn, tm or chb, toh, tow))]
    rel = tuple(e for _, e in loops)
    y = st.box[f"y{lv}"]
    sc = Scope()
    pos = tuple(sc.let(name, y[k] + r) for name, k, r in zip(("n", "m", "oh", "ow"), "nmrw", rel))
    return Walk([h for h, _ in loops], rel, pos, sc)  # type: ignore[arg-type]


def valid_at(st: Staged, w: Walk) -> Cond:
    """The element at the walk's position is inside the output tensor."""
    s = st.prob.sizes
    return all_of(*(lt(e, s[d]) for e, d in zip(w.pos, (N, M, OH, OW))))


def obox_idx(st: Staged, lv: int, w: Walk, rel: int | None = None) -> Expr:
    """Index into the level-``lv`` output region of the walk's element (``rel``: the level
    of the walk, when its tile sits inside level ``lv``'s)."""
    _, chb, toh, tow = o_box(st, lv)
    if rel is None or rel == lv:
        bn, mi, ohi, owi = w.rel
        return ((bn * chb + mi) * toh + ohi) * tow + owi
    y = st.box[f"y{lv}"]
    n, m, oh, ow = w.pos
    return (((n - y["n"]) * chb + (m - y["m"])) * toh + (oh - y["r"])) * tow + (ow - y["w"])


def _part_decl(st: Staged, lv: int) -> str:
    """The global-memory partial-sum area of level ``lv``."""
    s, t = st.prob.sizes, st.nest.tile(lv)
    tiles = 1
    for d in (N, M, OH, OW):
        tiles *= -(-s[d] // t[d])
    box = 1
    for v in o_box(st, lv):
        box *= v
    return f"static int32_t part{lv}[{tiles * box}];"


def _part(st: Staged, lv: int, w: Walk) -> Expr:
    s, t = st.prob.sizes, st.nest.tile(lv)
    nt = [-(-s[d] // t[d]) for d in (N, M, OH, OW)]
    box = 1
    for v in o_box(st, lv):
        box *= v
    y = st.box[f"y{lv}"]
    tix = (((y["n"] // t[N]) * nt[1] + y["m"] // t[M]) * nt[2] + y["r"] // t[OH]) * nt[3] \
        + y["w"] // t[OW]
    return at(f"part{lv}", tix * box + obox_idx(st, lv, w))


def acc_idx(st: Staged, rel: tuple[Expr, ...]) -> Expr:
    """Index into the level-1 accumulators of the element at (bn, mi, ohi, owi) of the tile."""
    t = st.nest.tile(1)
    bn, mi, ohi, owi = rel
    if st.prob.unit == "matrix":
        _, _, n0 = st.prof.matrix.block[st.prob.dtype]
        return ((bn * t[OH] + ohi) * t[OW] + owi) * pad(t[M], n0) + mi
    return ((bn * t[M] + mi) * t[OH] + ohi) * t[OW] + owi


Final = Callable[[Walk], Var]


def _origins(st: Staged, lv: int, point: int) -> list[str]:
    """Declare the origin of the level-``lv`` output tile at the visit at ``point``."""
    y: dict[str, Expr] = {}
    lines: list[str] = []
    for key, d in zip("nmrw", (N, M, OH, OW)):
        decl, y[key] = let(f"y{lv}{key}", st.nest.origin(lv, d, point))
        lines += decl
    st.box[f"y{lv}"] = y
    return lines


#: how a fused epilogue finishes a level-1 tile (targets/staged/epilogue.py): the statements
#: given the walk, the product's value there, and where each result goes
EpilogueFn = Callable[[Staged, Walk, Var, Callable[[Walk], Expr]], list[str]]


def gen_outputs(st: Staged, yct: str, final: Final,
                epilogue: EpilogueFn | None = None) -> None:
    """Visits of the output tiles. ``final`` is the finished value of the walk's accumulator
    element (requantisation); kinds without accumulators store their level-1 region.
    ``epilogue``: the fused element-wise layer's code, which then writes the final values."""
    p = st.prob
    levels = staged_levels(st, "outputs")
    if 1 not in levels or len(levels) > 2:
        raise st.fail(f"target {st.prof.name!r}: outputs staged at levels {levels} are not "
                      "supported (level 1, optionally level 2)")
    acc = st.region("acc", 1)
    out1 = st.region("outputs", 1)
    nbox = {lv: o_box(st, lv)[0] * o_box(st, lv)[1] * o_box(st, lv)[2] * o_box(st, lv)[3]
            for lv in levels}
    vis = {lv: st.nest.visit_point(lv, _OUT_DIMS) for lv in levels}
    first = {lv: st.nest.first(lv, vis[lv]) for lv in levels}
    last = {lv: st.nest.last(lv, vis[lv]) for lv in levels}
    out = st.epi.out if st.epi is not None else st.ctx.o(0)  # fused: the epilogue's result

    def gm(w: Walk) -> Var:
        return at(out, st.v.y(*w.pos))

    t1m = st.nest.tile(1)[M]
    r2 = st.region("outputs", 2) if 2 in levels else None
    end2: list[str] = []
    if r2 is not None:
        ct2 = "int32_t" if r2.elem == p.acc_bytes and p.acc_bytes else yct
        st.ptr(r2, "y2", ct2)
        link2 = st.link("outputs", 2)
        start2 = [*st.flip(r2, "y2", ct2), *_origins(st, 2, vis[2])]
        w = walk(st, 2)
        y2, valid = at("y2", obox_idx(st, 2, w)), valid_at(st, w)
        write = [*w.body(store_if(valid, gm(w), f"({yct}){y2}"), valid, gm(w), y2),
                 st.count(link2, nbox[2] * p.out_bytes)]
        end2 = if_else(last[2], write, [])
        if first[2] is not True:
            if ct2 != "int32_t":
                raise st.fail("internal: partial sums would pass through an 8-bit region")
            st.decl.append(_part_decl(st, 2))
            w, v = walk(st, 2), walk(st, 2)
            refill = [*w.body([f"{at('y2', obox_idx(st, 2, w))} = {_part(st, 2, w)};"],
                              obox_idx(st, 2, w), _part(st, 2, w)),
                      st.count(link2, nbox[2] * p.acc_bytes)]
            start2 += if_else(negate(first[2]), refill, [])
            spill = [*v.body([f"{_part(st, 2, v)} = {at('y2', obox_idx(st, 2, v))};"],
                             obox_idx(st, 2, v), _part(st, 2, v)),
                     st.count(link2, nbox[2] * p.acc_bytes)]
            end2 = if_else(last[2], write, spill)
        st.at(st.before, vis[2], start2)
    link1 = st.link("outputs", 1)
    if acc is None:  # pooling / elementwise: the compute writes the level-1 output region
        assert out1 is not None and r2 is None
        st.ptr(out1, "o1", yct)
        st.at(st.before, vis[1], [*st.flip(out1, "o1", yct), *_origins(st, 1, vis[1])])
        w = walk(st, 1, t1m)
        o1, valid = at("o1", obox_idx(st, 1, w)), valid_at(st, w)
        st.at(st.after, vis[1], [*w.body(store_if(valid, gm(w), str(o1)), valid, gm(w), o1),
                                 st.count(link1, nbox[1] * p.out_bytes)])
        return
    st.ptr(acc, "acc1", "int32_t")
    if out1 is not None:
        st.ptr(out1, "o1", yct)
    start1 = [*st.flip(acc, "acc1", "int32_t"),
              *(st.flip(out1, "o1", yct) if out1 is not None else []), *_origins(st, 1, vis[1])]

    def dest_final(w: Walk) -> Var:
        return at("y2", obox_idx(st, 2, w, 1)) if r2 is not None else gm(w)

    def dest_part(w: Walk) -> Var:
        return dest_final(w) if r2 is not None else _part(st, 1, w)

    zero = f"memset(acc1, 0, {acc.nbytes});"
    if first[1] is not True:
        if r2 is not None and r2.elem != p.acc_bytes:
            raise st.fail("internal: partial sums would pass through an 8-bit region")
        if r2 is None:
            st.decl.append(_part_decl(st, 1))
        w = walk(st, 1, t1m)
        a = at("acc1", acc_idx(st, w.rel))
        refill = [*w.body([f"{a} = {dest_part(w)};"], a, dest_part(w)),
                  st.count(link1, nbox[1] * p.acc_bytes)]
        start1 += if_else(first[1], [zero], refill)
    else:
        start1.append(zero)
    st.at(st.before, vis[1], start1)
    w = walk(st, 1, t1m)
    value = final(w)
    if epilogue is not None:  # through the epilogue in the vector buffer
        store = epilogue(st, w, value, dest_final)
    elif out1 is not None:  # through the level-1 output buffer
        o1 = at("o1", obox_idx(st, 1, w))
        valid = valid_at(st, w)
        put = f"({yct})({value})" if valid is True else f"({valid}) ? ({yct})({value}) : 0"
        v = walk(st, 1, t1m)
        o1v, valid_v = at("o1", obox_idx(st, 1, v)), valid_at(st, v)
        store = [*w.body([f"{o1} = {put};"], o1, value, valid),
                 *v.body(store_if(valid_v, dest_final(v), str(o1v)), valid_v, dest_final(v), o1v)]
    else:
        valid = valid_at(st, w)
        store = w.body(store_if(valid, dest_final(w), str(value)), valid, dest_final(w), value)
    write1 = [*store, st.count(link1, nbox[1] * p.out_bytes)]
    if first[1] is not True:
        w = walk(st, 1, t1m)
        a = at("acc1", acc_idx(st, w.rel))
        spill = [*w.body([f"{dest_part(w)} = {a};"], a, dest_part(w)),
                 st.count(link1, nbox[1] * p.acc_bytes)]
        st.at(st.after, vis[1], if_else(last[1], write1, spill))
    else:
        st.at(st.after, vis[1], if_else(last[1], write1, []))
    if r2 is not None:
        st.at(st.after, vis[2], end2)


def store_if(valid: Cond, dest: Expr, value: str) -> list[str]:
    """``dest = value;`` where the element is inside the tensor."""
    if valid is False:
        return []
    stmt = f"{dest} = {value};"
    return [stmt] if valid is True else [f"if ({valid}) {stmt}"]
