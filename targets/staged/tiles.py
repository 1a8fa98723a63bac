"""Input and weight tiles: boxes loaded from global memory or the level above, at the load
points of nest.py, as fixed-size DMA boxes (channels padded to the block, elements outside the
tensor 0; a stride wider than the kernel gives a strided box of only the rows the taps read)."""

from __future__ import annotations

from targets.cost import staged_buffer
from targets.staged.layer import Staged, clamp_lines, geometry
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


def _start(st: Staged, lv: int, axis: int, var: str, first: str, size: int) -> list[str]:
    """Set the box origin ``var``: contiguous boxes are placed inside the tensor."""
    if _strided(st, lv, axis) is not None:
        return [f"{var} = {first};"]
    span = st.prob.span(st.nest.tile(lv)[OH if axis == 0 else OW], axis)
    return clamp_lines(var, first, size - span)


def row_of(st: Staged, lv: int, axis: int, slot: str) -> str:
    """Input row (axis 0) or column of box slot ``slot`` of the level-``lv`` input box."""
    var = f"x{lv}{'r' if axis == 0 else 'w'}"
    sd = _strided(st, lv, axis)
    if sd is None:
        return f"{var} + {slot}"
    s, e = sd
    return f"{var} + ({slot})/{e}*{s} + ({slot})%{e}"


def slot_of(st: Staged, lv: int, axis: int, row: str) -> str:
    """Box slot of input row/column ``row`` (which the box holds)."""
    var = f"x{lv}{'r' if axis == 0 else 'w'}"
    sd = _strided(st, lv, axis)
    if sd is None:
        return f"{row} - {var}"
    s, e = sd
    return f"(({row}) - {var})/{s}*{e} + (({row}) - {var})%{s}"


def staged_levels(st: Staged, operand: str) -> list[int]:
    return [lv for lv in range(1, st.nest.levels + 1)
            if staged_buffer(st.prob, st.prof, operand, lv)]


def x_box(st: Staged, lv: int) -> tuple[int, int, int, int, int, int]:
    """(BN, G, TC, CH, SH, SW) of the level-``lv`` input box."""
    p, t = st.prob, st.nest.tile(lv)
    g = geometry(st)
    gb = groups_touched(p.sizes[M], g.per_group, t[M]) if p.inputs_depend_on_m else 1
    tc = t[C]
    ch = pad(gb * tc, st.prof.layout.channel_block)
    return t[N], gb, tc, ch, p.span(t[OH], 0), p.span(t[OW], 1)


def gen_inputs(st: Staged, xct: str) -> None:
    p, g = st.prob, geometry(st)
    levels = staged_levels(st, "inputs")
    if 1 not in levels:
        raise st.fail(f"target {st.prof.name!r} stages no input tile next to the compute unit")
    ni = p.n_inputs
    srcs = ", ".join(f"in{k}" for k in range(ni))
    st.decl.append(f"const {xct} *const xsrc[{ni}] = {{{srcs}}}; (void)xsrc;")
    for lv in reversed(levels):
        reg = st.region("inputs", lv)
        assert reg is not None
        bn, gb, tc, ch, sh, sw = x_box(st, lv)
        nbytes = ni * bn * ch * sh * sw * p.in_bytes
        if nbytes != p.input_bytes(st.nest.tile(lv), st.prof) or nbytes > reg.nbytes:
            raise st.fail("internal: the input box does not match the tiling model")
        name = f"x{lv}"
        st.ptr(reg, name, xct)
        st.decl.append(f"int {name}n = 0, {name}g = 0, {name}c = 0, {name}r = 0, {name}w = 0;")
        st.decl.append(f"(void){name}n; (void){name}g; (void){name}c; (void){name}r; "
                       f"(void){name}w;")
        o = {d: st.nest.origin(lv, d) for d in range(5)}
        code = [st.flip(reg, name, xct),
                f"{name}n = {o[N]};",
                f"{name}g = {o[M]} / {g.per_group};" if p.inputs_depend_on_m else "",
                f"{name}c = {o[C]};",
                *_start(st, lv, 0, f"{name}r", f"{o[OH]}*{g.sh} - {g.pt}", g.H),
                *_start(st, lv, 1, f"{name}w", f"{o[OW]}*{g.sw} - {g.pl}", g.W)]
        parent = next((k for k in levels if k > lv), None)
        if parent is None:
            src = "xsrc[k][" + st.v.x("n", "chan", "row", "col") + "]"
        else:
            pbn, _, ptc, pch, psh, psw = x_box(st, parent)
            pn = f"x{parent}"
            src = (f"{pn}[((k*{pbn} + (n - {pn}n))*{pch} + (gg - {pn}g)*{ptc} + (cw - {pn}c))"
                   f"*{psh * psw} + ({slot_of(st, parent, 0, 'row')})*{psw} + "
                   f"({slot_of(st, parent, 1, 'col')})]")
        shw = sh * sw
        code += [
            f"for (int k = 0; k < {ni}; ++k)",
            f"for (int bn = 0; bn < {bn}; ++bn) {{",
            f"  const int n = {name}n + bn; (void)n;",
            f"  for (int gi = 0; gi < {gb}; ++gi) {{",
            f"    const int gg = {name}g + gi; (void)gg;",
            f"    for (int ci = 0; ci < {tc}; ++ci) {{",
            f"      const int cw = {name}c + ci;",
            f"      {xct} *d = {name} + ((k*{bn} + bn)*{ch} + gi*{tc} + ci)*{shw};",
            f"      if (n >= {st.v.x_dims[0]} || gg >= {g.groups} || cw >= {g.cg}) "
            f"{{ memset(d, 0, {shw} * sizeof({xct})); continue; }}",
            f"      const int chan = gg*{g.cg} + cw; (void)chan;",
            f"      for (int r = 0; r < {sh}; ++r) for (int cc = 0; cc < {sw}; ++cc)",
            f"        {{ const int row = {row_of(st, lv, 0, 'r')}, "
            f"col = {row_of(st, lv, 1, 'cc')};",
            f"          d[r*{sw} + cc] = (row < 0 || row >= {g.H} || col < 0 || col >= {g.W})"
            f" ? 0 : {src}; }}",
            "    }",
            "  }",
        ]
        if ch > gb * tc:
            code.append(f"  memset({name} + ((k*{bn} + bn)*{ch} + {gb * tc})*{shw}, 0, "
                        f"{(ch - gb * tc) * shw} * sizeof({xct}));")
        code += ["}", st.count(st.link("inputs", lv), nbytes)]
        pos = st.nest.load_point(lv, p.dims_of("inputs"))
        st.at(st.before, pos, [ln for ln in code if ln])


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
        st.decl.append(f"int {name}n = 0, {name}m = 0, {name}c = 0; "
                       f"(void){name}n; (void){name}m; (void){name}c;")
        o = {d: st.nest.origin(lv, d) for d in range(5)}
        parent = next((k for k in levels if k > lv), None)
        if parent is None:
            src = f"{wsrc}[" + st.v.w("n", "m", "c", f"tp / {kw}", f"tp % {kw}") + "]"
        else:
            _, ptm, ptc, _ = w_box(st, parent)
            pn = f"w{parent}"
            src = (f"{pn}[(((n - {pn}n)*{ptm} + (m - {pn}m))*{ptc} + (c - {pn}c))*{taps} + tp]")
        code = [st.flip(reg, name, wct),
                f"{name}n = {o[N] if p.weights_batched else '0'};",
                f"{name}m = {o[M]};", f"{name}c = {o[C]};",
                f"for (int bn = 0; bn < {wb}; ++bn)",
                f"for (int mi = 0; mi < {tm}; ++mi)",
                f"for (int ci = 0; ci < {tc}; ++ci) {{",
                f"  const int n = {name}n + bn, m = {name}m + mi, c = {name}c + ci;",
                f"  {wct} *d = {name} + ((bn*{tm} + mi)*{tc} + ci)*{taps};",
                f"  if (n >= {p.sizes[N] if p.weights_batched else 1} || m >= {p.sizes[M]} || "
                f"c >= {p.sizes[C]}) {{ memset(d, 0, {taps} * sizeof({wct})); continue; }}",
                f"  for (int tp = 0; tp < {taps}; ++tp) d[tp] = {src};",
                "}",
                st.count(st.link("weights", lv), nbytes)]
        pos = st.nest.load_point(lv, p.dims_of("weights"))
        st.at(st.before, pos, [ln for ln in code if ln])


