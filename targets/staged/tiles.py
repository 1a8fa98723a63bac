"""Input and weight tiles: boxes loaded from global memory or the level above, at the load
points of nest.py, as fixed-size DMA boxes (channels padded to the block, elements outside the
tensor 0; a stride wider than the kernel gives a strided box of only the rows the taps read)."""

from __future__ import annotations

from targets.c.cond import all_of, any_of, cond_text, ge, lt
from targets.c.emitter import plus
from targets.c.expr import Expr, at
from targets.c.stmt import Scope, if_else, let, loop, nested
from targets.cost import staged_buffer
from targets.staged.layer import Staged, clamped, geometry
from targets.tiling.problem import OH, OW, C, M, N, groups_touched, pad


def _strided(st: Staged, lv: int, axis: int) -> tuple[int, int] | None:
    """(stride, taps extent) when the level-``lv`` input box holds, per output row, only the
    rows its taps read (stride wider than the kernel extent: the model's span skips the
    gaps, so the box is a strided DMA); None when the box is contiguous rows."""
    p = st.prob
    s = p.strides[axis]
    e = (p.kernel[axis] - 1) * p.dilations[axis] + 1
    t = st.nest.tile(lv)[OH if axis == 0 else OW]
    if s <= e or p.span(t, axis) >= p.in_hw[axis]:
        return None
    return s, e


def row_of(st: Staged, lv: int, axis: int, slot: Expr) -> Expr:
    """Input row (axis 0) or column of box slot ``slot`` of the level-``lv`` input box."""
    start = st.box[f"x{lv}"]["r" if axis == 0 else "w"]
    sd = _strided(st, lv, axis)
    if sd is None:
        return start + slot
    s, e = sd
    return start + slot // e * s + slot % e


def slot_of(st: Staged, lv: int, axis: int, row: Expr) -> Expr:
    """Box slot of input row/column ``row`` (which the box holds)."""
    rel = row - st.box[f"x{lv}"]["r" if axis == 0 else "w"]
    sd = _strided(st, lv, axis)
    if sd is None:
        return rel
    s, e = sd
    return rel // s * e + rel % s


def staged_levels(st: Staged, operand: str) -> list[int]:
    return [lv for lv in range(1, st.nest.levels + 1)
            if staged_buffer(st.prob, st.prof, operand, lv)]


def x_box(st: Staged, lv: int) -> tuple[int, int, int, int, int, int]:
    """(BN, G, TC, CH, SH, SW) of the level-``lv`` input box."""
    p, t = st.prob, st.nest.tile(lv)
    g = geometry(st)
    gb = groups_touched(p.sizes[M], g.per_group, t[M]) if p.inputs_depend_on_m else 1
    tc = t[C]
    ch = pad(gb * tc, p.block(st.prof))
    return t[N], gb, tc, ch, p.span(t[OH], 0), p.span(t[OW], 1)


def _start(st: Staged, lv: int, axis: int, name: str, first: Expr,
           size: int) -> tuple[list[str], Expr]:
    """The box origin ``name``: contiguous boxes are placed inside the tensor, except an
    elementwise op's, which starts at its tile (rows past the tensor read as 0): its compute
    runs over the box in box order, and the output tile is stored from that order."""
    if _strided(st, lv, axis) is not None or st.kind in ("eltwise", "eltwise4d"):
        return let(name, first)
    span = st.prob.span(st.nest.tile(lv)[OH if axis == 0 else OW], axis)
    return clamped(name, first, size - span)


def gen_inputs(st: Staged, xct: str) -> None:
    p, g = st.prob, geometry(st)
    levels = staged_levels(st, "inputs")
    if 1 not in levels:
        raise st.fail(f"target {st.prof.name!r} stages no input tile next to the compute unit")
    ni = p.n_inputs
    srcs = [st.ctx.i(k) for k in range(ni)]
    hk, k = loop("k", ni)
    if hk is not None:
        st.decl.append(f"const {xct} *const xsrc[{ni}] = {{{', '.join(srcs)}}};")
    for lv in reversed(levels):
        reg = st.region("inputs", lv)
        assert reg is not None
        bn, gb, tc, ch, sh, sw = x_box(st, lv)
        nbytes = ni * bn * ch * sh * sw * p.in_bytes
        if nbytes != p.input_bytes(st.nest.tile(lv), st.prof) or nbytes > reg.nbytes:
            raise st.fail("internal: the input box does not match the tiling model")
        name = f"x{lv}"
        st.ptr(reg, name, xct)
        pos = st.nest.load_point(lv, p.dims_of("inputs"))
        o = {d: st.nest.origin(lv, d, pos) for d in range(5)}
        code = st.flip(reg, name, xct)
        box: dict[str, Expr] = {}
        origins = [("n", o[N]), ("g", o[M] // g.per_group if p.inputs_depend_on_m else 0),
                   ("c", o[C])]
        for key, e in origins:
            decl, box[key] = let(name + key, e)
            code += decl
        for key, axis, first, size in (("r", 0, o[OH] * g.sh - g.pt, g.H),
                                       ("w", 1, o[OW] * g.sw - g.pl, g.W)):
            decl, box[key] = _start(st, lv, axis, name + key, first, size)
            code += decl
        st.box[name] = box
        parent = next((q for q in levels if q > lv), None)
        hbn, bi = loop("bn", bn)
        hgi, gi = loop("gi", gb)
        hci, ci = loop("ci", tc)
        hr, r = loop("r", sh)
        hcc, cc = loop("cc", sw)
        box_of_k = k * bn + bi
        sc = Scope()
        n = sc.let("n", box["n"] + bi)
        gg = sc.let("gg", box["g"] + gi)
        cw = sc.let("cw", box["c"] + ci)
        chan = sc.let("chan", gg * g.cg + cw)
        outside = any_of(ge(n, st.v.x_dims[0]), ge(gg, g.groups), ge(cw, g.cg))
        row, col = row_of(st, lv, 0, r), row_of(st, lv, 1, cc)
        inside = all_of(ge(row, 0), lt(row, g.H), ge(col, 0), lt(col, g.W))
        if parent is None:
            src = at("xsrc[k]" if hk else srcs[0], st.v.x(n, chan, row, col))
        else:
            pbn, _, ptc, pch, psh, psw = x_box(st, parent)
            pb = st.box[f"x{parent}"]
            src = at(f"x{parent}", ((k * pbn + (n - pb["n"])) * pch
                                    + (gg - pb["g"]) * ptc + (cw - pb["c"])) * (psh * psw)
                     + slot_of(st, parent, 0, row) * psw + slot_of(st, parent, 1, col))
        sc.use(outside, src, inside)
        value = str(src) if inside is True else f"({cond_text(inside)}) ? {src} : 0"
        fill = nested([hr, hcc], [f"d[{r * sw + cc}] = {value};"])
        shw = sh * sw
        d_at = (box_of_k * ch + gi * tc + ci) * shw
        elem = [*sc.decls(), f"{xct} *d = {plus(name, d_at)};",
                *if_else(outside, [f"memset(d, 0, {nbytes_of(shw, xct)});"], fill)]
        block = nested([hgi, hci], elem, scoped=True)
        if ch > gb * tc:
            block.append(f"memset({plus(name, (box_of_k * ch + gb * tc) * shw)}, 0, "
                         f"{nbytes_of((ch - gb * tc) * shw, xct)});")
        code += [*nested([hk, hbn], block), st.count(st.link("inputs", lv), nbytes)]
        st.at(st.before, pos, code)


def nbytes_of(n: int, ctype: str) -> str:
    """The size of ``n`` elements of ``ctype``, as C."""
    return f"sizeof({ctype})" if n == 1 else f"{n} * sizeof({ctype})"


def w_box(st: Staged, lv: int) -> tuple[int, int, int, int]:
    """(WB, TM, TC, taps) of the level-``lv`` weight box."""
    p, t = st.prob, st.nest.tile(lv)
    taps = p.kernel[0] * p.kernel[1]
    wb = t[N] if p.weights_batched else 1
    if p.unit == "vector":
        return wb, t[M], t[C], taps
    _, k0, n0 = st.prof.matrix.block[p.dtype]
    return wb, pad(t[M], n0), pad(t[C], k0), taps


def gen_weights(st: Staged, wct: str, wsrc: str) -> None:
    p = st.prob
    levels = staged_levels(st, "weights")
    if 1 not in levels:
        raise st.fail(f"target {st.prof.name!r} stages no weight tile next to the compute unit")
    assert st.v.w is not None
    kw = p.kernel[1]
    for lv in reversed(levels):
        reg = st.region("weights", lv)
        assert reg is not None
        wb, tm, tc, taps = w_box(st, lv)
        nbytes = wb * tm * tc * taps * p.w_bytes
        if nbytes != p.weight_bytes(st.nest.tile(lv), st.prof) or nbytes > reg.nbytes:
            raise st.fail("internal: the weight box does not match the tiling model")
        name = f"w{lv}"
        st.ptr(reg, name, wct)
        pos = st.nest.load_point(lv, p.dims_of("weights"))
        o = {d: st.nest.origin(lv, d, pos) for d in range(5)}
        code = st.flip(reg, name, wct)
        box: dict[str, Expr] = {}
        for key, e in (("n", o[N] if p.weights_batched else 0), ("m", o[M]), ("c", o[C])):
            decl, box[key] = let(name + key, e)
            code += decl
        st.box[name] = box
        parent = next((q for q in levels if q > lv), None)
        hbn, bi = loop("bn", wb)
        hmi, mi = loop("mi", tm)
        hci, ci = loop("ci", tc)
        htp, tp = loop("tp", taps)
        sc = Scope()
        n = sc.let("n", box["n"] + bi)
        m = sc.let("m", box["m"] + mi)
        c = sc.let("c", box["c"] + ci)
        outside = any_of(ge(n, p.sizes[N] if p.weights_batched else 1), ge(m, p.sizes[M]),
                         ge(c, p.sizes[C]))
        if parent is None:
            src = at(wsrc, st.v.w(n, m, c, tp // kw, tp % kw))
        else:
            _, ptm, ptc, _ = w_box(st, parent)
            pb = st.box[f"w{parent}"]
            src = at(f"w{parent}", (((n - pb["n"]) * ptm + (m - pb["m"])) * ptc
                                    + (c - pb["c"])) * taps + tp)
        sc.use(outside, src)
        elem = [f"{wct} *d = {plus(name, ((bi * tm + mi) * tc + ci) * taps)};",
                *if_else(outside, [f"memset(d, 0, {nbytes_of(taps, wct)});"],
                          nested([htp], [f"d[{tp}] = {src};"]))]
        code += [*nested([hbn, hmi, hci], [*sc.decls(), *elem], scoped=True),
                 st.count(st.link("weights", lv), nbytes)]
        st.at(st.before, pos, code)
