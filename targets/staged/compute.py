"""The compute of one level-1 tile: multiply-accumulate (matrix or depthwise), pooling, or an
elementwise op (its host emitter run over the whole box)."""

from __future__ import annotations

from collections.abc import Callable

from ir.graph import Node, Value
from targets.c.cond import all_of, ge, lt
from targets.c.emitter import Bound, LayerCtx, c_type, emitter_for, plus
from targets.c.expr import Const, Expr, Var, at
from targets.c.stmt import Scope, guarded, loop, nested, reads
from targets.staged.layer import Geo, Staged, geometry
from targets.staged.tiles import slot_of, w_box, x_box
from targets.staged.visits import acc_idx, o_box
from targets.tiling.problem import OH, OW, C, M, N

#: the valid extent of the tile in each dim, by the name the C gives it
EXTENTS = (("vn", N), ("vm", M), ("voh", OH), ("vow", OW), ("vc", C))


def valid_extents(st: Staged) -> tuple[list[str], dict[str, Expr]]:
    """(declarations, extents): the part of the level-1 tile inside the problem, per dim; a
    constant where every tile is whole."""
    t, s = st.nest.tile(1), st.prob.sizes
    lines, out = [], {}
    for name, d in EXTENTS:
        e = s[d] - st.nest.origin(1, d, st.nest.inside)
        if e.value is not None or (e.lo is not None and e.lo >= t[d]):
            out[name] = Const(min(t[d], e.value if e.value is not None else t[d]))
        elif e.hi is not None and e.hi <= t[d]:
            lines.append(f"const int {name} = {e};")
            out[name] = Var(name, e.lo, e.hi)
        else:
            lines.append(f"int {name} = {e}; if ({name} > {t[d]}) {name} = {t[d]};")
            out[name] = Var(name, None if e.lo is None else min(e.lo, t[d]), t[d])
    return lines, out


def any_work(ext: dict[str, Expr]) -> object:
    """Whether the tile holds any element of the problem (a C condition, or True)."""
    return all_of(*(lt(0, v) for v in ext.values()))


Block = tuple[list[str], set[str]]  # statements, and the variables they read
#: an average pool's divisor: (the taps of output (oh, ow), the requantised sum given them)
Counts = tuple[Callable[[Expr, Expr], Expr], Callable[[Expr], str]]


def _window(g: Geo, oh: Expr, ow: Expr,
            inner: Callable[[Expr, Expr, Expr, Expr], Block]) -> Block:
    """Loops over the kernel taps of output (oh, ow) that fall inside the input:
    ``inner(r, col, kh, kw)`` gives the statements of one tap."""
    hkh, kh = loop("kh", g.kh)
    hkw, kw = loop("kw", g.kw)
    sr, sc = Scope(), Scope()
    r = sr.let("r", oh * g.sh - g.pt + kh * g.dh)
    col = sc.let("col", ow * g.sw - g.pl + kw * g.dw)
    row_ok, col_ok = all_of(ge(r, 0), lt(r, g.H)), all_of(ge(col, 0), lt(col, g.W))
    body, used = inner(r, col, kh, kw)
    taps, used = sc.close(guarded(col_ok, body), used | reads(col_ok))
    rows, used = sr.close(guarded(row_ok, nested([hkw], taps, scoped=True)),
                          used | reads(row_ok))
    return nested([hkh], rows, scoped=True), used


def _x_at(st: Staged, n: Expr, gi: Expr, c: Expr, r: Expr, col: Expr) -> Expr:
    """The level-1 input box's element of batch ``n``, group ``gi`` (in the box), channel
    ``c``, at input row ``r`` and column ``col``."""
    _, _, tc, ch, sh, sw = x_box(st, 1)
    x1 = st.box["x1"]
    return ((n - x1["n"]) * ch + gi * tc + c - x1["c"]) * (sh * sw) \
        + slot_of(st, 1, 0, r) * sw + slot_of(st, 1, 1, col)


def compute_macs(st: Staged, zx: int, zw: Callable[[Expr], Expr], ext: dict[str, Expr],
                 wct: str) -> list[str]:
    """Convolution / product tile: acc1 += (x - zx) . (w - zw)."""
    p, g = st.prob, geometry(st)
    _, tmw, tcw, taps = w_box(st, 1)
    o = {d: st.nest.origin(1, d, st.nest.inside) for d in range(5)}
    x1, w1 = st.box["x1"], st.box["w1"]
    hb, bn = loop("bn", ext["vn"])
    hoh, ohi = loop("ohi", ext["voh"])
    how, owi = loop("owi", ext["vow"])
    hmi, mi = loop("mi", ext["vm"])
    hci, ci = loop("ci", ext["vc"])
    pos, per_m, per_c = Scope(), Scope(), Scope()
    n = pos.let("n", o[N] + bn)
    oh = pos.let("oh", o[OH] + ohi)
    ow = pos.let("ow", o[OW] + owi)
    m = per_m.let("m", o[M] + mi)
    gi = per_m.let("gi", m // g.per_group - x1["g"]) if p.inputs_depend_on_m else Const(0)
    zwv = per_m.let("zw", zw(m), "int32_t")
    c = per_c.let("c", o[C] + ci)
    wn = (n - w1["n"]) if p.weights_batched else Const(0)
    wp_at = ((wn * tmw + (m - w1["m"])) * tcw + (c - w1["c"])) * taps

    def tap(r: Expr, col: Expr, kh: Expr, kw: Expr) -> Block:
        xv = at("x1", _x_at(st, n, gi, c, r, col), cast="int32_t")
        wv = at("wp", kh * g.kw + kw, cast="int32_t")
        return [f"s += {(xv - zx) * (wv - zwv)};"], reads(xv, wv, zwv)

    window, used = _window(g, oh, ow, tap)
    channel, used = per_c.close([f"const {wct} *wp = {plus('w1', wp_at)};", *window],
                                used | reads(wp_at))
    acc = at("acc1", acc_idx(st, (bn, mi, ohi, owi)))
    out_ch, used = per_m.close(["int32_t s = 0;", *nested([hci], channel, scoped=True),
                                f"{acc} += s;"], used | reads(acc))
    tile, _ = pos.close(nested([hmi], out_ch, scoped=True), used)
    return nested([hb, hoh, how], tile, scoped=True)


def compute_pool(st: Staged, zx: int, yct: str, ext: dict[str, Expr],
                 counts: Counts | None) -> list[str]:
    """Pooling tile into the level-1 output region: max, or requantised window sums."""
    g = geometry(st)
    o = {d: st.nest.origin(1, d, st.nest.inside) for d in range(5)}
    loops = [loop(name, ext[v]) for name, v in
             (("bn", "vn"), ("mi", "vm"), ("ohi", "voh"), ("owi", "vow"))]
    bn, mi, ohi, owi = (e for _, e in loops)
    sc = Scope()
    n = sc.let("n", o[N] + bn)
    m = sc.let("m", o[M] + mi)
    oh = sc.let("oh", o[OH] + ohi)
    ow = sc.let("ow", o[OW] + owi)
    gi = m - st.box["x1"]["g"]
    is_max = st.node.op in ("MaxPool", "GlobalMaxPool")

    def tap(r: Expr, col: Expr, kh: Expr, kw: Expr) -> Block:
        xv = at("x1", _x_at(st, n, gi, Const(0), r, col))
        if is_max:
            return [f"if ((int32_t){xv} > best) best = {xv};"], reads(xv)
        wide = Var(f"(int64_t){xv}", reads=xv.vars())
        return [f"s += {wide - zx};"], reads(xv)

    window, used = _window(g, oh, ow, tap)
    _, chb, toh, tow = o_box(st, 1)
    dest = at("o1", ((bn * chb + mi) * toh + ohi) * tow + owi)
    if is_max:
        init, value, extra = "int32_t best = INT32_MIN;", f"({yct})best", []
    else:
        assert counts is not None
        cnt = counts[0](oh, ow)
        init, value = "int64_t s = 0;", counts[1](Var("cnt"))
        extra = [] if cnt.value is not None else [f"const int cnt = {cnt};"]
        used |= reads(cnt)
    body, _ = sc.close([init, *window, *extra, f"{dest} = {value};"], used | reads(dest))
    return nested([h for h, _ in loops], body, scoped=True)


def eltwise_over_box(st: Staged, node: Node, e: int, inputs: list[str],
                     output: str) -> tuple[list[str], Bound]:
    """The body of element-wise ``node``'s own host emitter run over a box of ``e``
    elements: operand k bound to the C pointer ``inputs[k]``, its result to ``output``.
    Returns the lines and the binding (which inputs the body reads)."""
    ins = [Value(f"t{k}", v.type.with_shape((e,))) if v is not None else None
           for k, v in enumerate(node.inputs)]
    y = node.outputs[0]
    vnode = Node(node.op, ins, [Value("ty", y.type.with_shape((e,)))],  # type: ignore
                 dict(node.attrs), node.name)
    em = emitter_for(vnode)
    if em.scratch is not None:
        raise st.fail(f"the element-wise layer {node.name!r} ({node.op}) needs scratch "
                      "space; not staged")
    bound = Bound(inputs, [output])
    return em.fn(LayerCtx(vnode, st.ctx.renderer, st.ctx.weights, bound)).splitlines(), bound


def compute_eltwise(st: Staged, yct: str) -> list[str]:
    """Elementwise tile: the op's own host emitter, run over the whole box."""
    bn, _, _, ch, sh, sw = x_box(st, 1)
    e = bn * ch * sh * sw
    body, bound = eltwise_over_box(st, st.node, e,
                                   [f"tile_in{k}" for k in range(len(st.node.inputs))], "o1")
    xct = c_type(st.node.first_operand().type.dtype)  # type: ignore[union-attr]
    head = [f"const {xct} *{bound.inputs[k]} = {plus('x1', k * e)};" for k in sorted(bound.asked)]
    return ["{", *("  " + ln for ln in head), *("  " + ln for ln in body), "}"]
