"""Output tiles: the visits of nest.py at each staged level: zeroed or refilled with partial
sums on entry, written out on exit, as final values (requantised) on the last visit."""

from __future__ import annotations

from targets.staged.layer import Staged
from targets.staged.tiles import staged_levels
from targets.tiling.problem import OH, OW, M, N, pad

_OUT_DIMS = frozenset((N, M, OH, OW))


def o_box(st: Staged, lv: int) -> tuple[int, int, int, int]:
    t = st.nest.tile(lv)
    return t[N], pad(t[M], st.prof.layout.channel_block), t[OH], t[OW]


def _valid(st: Staged) -> str:
    """C condition: the element at (n, m, oh, ow) is inside the output tensor."""
    s = st.prob.sizes
    return f"n < {s[N]} && m < {s[M]} && oh < {s[OH]} && ow < {s[OW]}"


def _walk(st: Staged, lv: int, tm: int | None = None) -> list[str]:
    """Loops over the level-``lv`` output tile (positions relative and absolute)."""
    bn, chb, toh, tow = o_box(st, lv)
    return [f"for (int bn = 0; bn < {bn}; ++bn) for (int mi = 0; mi < {tm or chb}; ++mi)",
            f"for (int ohi = 0; ohi < {toh}; ++ohi) for (int owi = 0; owi < {tow}; ++owi) {{",
            f"  const int n = y{lv}n + bn, m = y{lv}m + mi, oh = y{lv}r + ohi, ow = y{lv}w + owi;",
            "  (void)n; (void)m; (void)oh; (void)ow;"]


def obox_idx(st: Staged, lv: int, rel: str = "") -> str:
    """Index into the level-``lv`` output region of the current element (``rel``: the level
    whose walk variables are in scope; their tile sits inside level ``lv``'s)."""
    _, chb, toh, tow = o_box(st, lv)
    if not rel or rel == str(lv):
        return f"((bn*{chb} + mi)*{toh} + ohi)*{tow} + owi"
    return (f"(((n - y{lv}n)*{chb} + (m - y{lv}m))*{toh} + (oh - y{lv}r))*{tow} + (ow - y{lv}w)")


def _part(st: Staged, lv: int) -> tuple[str, str]:
    """(declaration, index expression) of the global-memory partial-sum area of level lv."""
    s, t = st.prob.sizes, st.nest.tile(lv)
    nt = [-(-s[d] // t[d]) for d in (N, M, OH, OW)]
    box = 1
    for v in o_box(st, lv):
        box *= v
    decl = f"static int32_t part{lv}[{nt[0] * nt[1] * nt[2] * nt[3] * box}];"
    tix = (f"((((y{lv}n/{t[N]})*{nt[1]} + y{lv}m/{t[M]})*{nt[2]} + y{lv}r/{t[OH]})*{nt[3]}"
           f" + y{lv}w/{t[OW]})")
    return decl, f"part{lv}[{tix}*{box} + {obox_idx(st, lv)}]"


def acc_idx(st: Staged) -> str:
    t = st.nest.tile(1)
    if st.prob.unit == "matrix":
        _, _, n0 = st.prof.matrix.block[st.prob.dtype]
        return f"((bn*{t[OH]} + ohi)*{t[OW]} + owi)*{pad(t[M], n0)} + mi"
    return f"((bn*{t[M]} + mi)*{t[OH]} + ohi)*{t[OW]} + owi"


def gen_outputs(st: Staged, yct: str, final: str) -> None:
    """Visits of the output tiles. ``final`` is the C expression of the finished value of
    the current accumulator element (requantisation); None-acc kinds store their region."""
    p = st.prob
    levels = staged_levels(st, "outputs")
    if 1 not in levels or len(levels) > 2:
        raise st.fail(f"target {st.prof.name!r}: outputs staged at levels {levels} are not "
                      "supported (level 1, optionally level 2)")
    acc = st.region("acc", 1)
    out1 = st.region("outputs", 1)
    box = {lv: o_box(st, lv) for lv in levels}
    nbox = {lv: box[lv][0] * box[lv][1] * box[lv][2] * box[lv][3] for lv in levels}
    for lv in levels:
        st.decl.append(f"int y{lv}n = 0, y{lv}m = 0, y{lv}r = 0, y{lv}w = 0; "
                       f"(void)y{lv}n; (void)y{lv}m; (void)y{lv}r; (void)y{lv}w;")
    vis = {lv: st.nest.visit_point(lv, _OUT_DIMS) for lv in levels}
    first = {lv: st.nest.first_expr(lv, vis[lv]) for lv in levels}
    last = {lv: st.nest.last_expr(lv, vis[lv]) for lv in levels}
    origins = {lv: [f"y{lv}{k} = {st.nest.origin(lv, d)};"
                    for k, d in zip("nmrw", (N, M, OH, OW))] for lv in levels}
    gm = "out0[" + st.v.y("n", "m", "oh", "ow") + "]"
    valid = _valid(st)
    t1m = st.nest.tile(1)[M]
    r2 = st.region("outputs", 2) if 2 in levels else None
    if r2 is not None:
        ct2 = "int32_t" if r2.elem == p.acc_bytes and p.acc_bytes else yct
        st.ptr(r2, "y2", ct2)
        link2 = st.link("outputs", 2)
        start2 = [st.flip(r2, "y2", ct2), *origins[2]]
        end2 = [f"if ({last[2]}) {{", *("  " + ln for ln in _walk(st, 2)),
                f"    if ({valid}) {gm} = ({yct})y2[{obox_idx(st, 2)}];", "  }",
                "  " + st.count(link2, nbox[2] * p.out_bytes), "}"]
        if first[2] != "1":
            if ct2 != "int32_t":
                raise st.fail("internal: partial sums would pass through an 8-bit region")
            decl, pidx = _part(st, 2)
            st.decl.append(decl)
            start2 += [f"if (!({first[2]})) {{", *("  " + ln for ln in _walk(st, 2)),
                       f"    y2[{obox_idx(st, 2)}] = {pidx};", "  }",
                       "  " + st.count(link2, nbox[2] * p.acc_bytes), "}"]
            end2 += ["else {", *("  " + ln for ln in _walk(st, 2)),
                     f"    {pidx} = y2[{obox_idx(st, 2)}];", "  }",
                     "  " + st.count(link2, nbox[2] * p.acc_bytes), "}"]
        st.at(st.before, vis[2], [ln for ln in start2 if ln])
    link1 = st.link("outputs", 1)
    if acc is None:  # pooling / elementwise: the compute writes the level-1 output region
        assert out1 is not None and r2 is None
        st.ptr(out1, "o1", yct)
        st.at(st.before, vis[1], [ln for ln in [st.flip(out1, "o1", yct), *origins[1]] if ln])
        st.at(st.after, vis[1], [*_walk(st, 1, t1m),
                                 f"  if ({valid}) {gm} = o1[{obox_idx(st, 1)}];", "}",
                                 st.count(link1, nbox[1] * p.out_bytes)])
        return
    st.ptr(acc, "acc1", "int32_t")
    if out1 is not None:
        st.ptr(out1, "o1", yct)
    start1 = [st.flip(acc, "acc1", "int32_t"),
              st.flip(out1, "o1", yct) if out1 is not None else "", *origins[1]]
    if r2 is not None:
        dest_final = f"y2[{obox_idx(st, 2, '1')}]"
        dest_part = dest_final
        partial_ok = r2.elem == p.acc_bytes
    else:
        dest_final = gm
        partial_ok = True
        dest_part = ""
    if first[1] != "1":
        if not partial_ok:
            raise st.fail("internal: partial sums would pass through an 8-bit region")
        if r2 is None:
            decl, dest_part = _part(st, 1)
            st.decl.append(decl)
        start1 += [f"if ({first[1]}) memset(acc1, 0, {acc.nbytes});", "else {",
                   *("  " + ln for ln in _walk(st, 1, t1m)),
                   f"    acc1[{acc_idx(st)}] = {dest_part};", "  }",
                   "  " + st.count(link1, nbox[1] * p.acc_bytes), "}"]
    else:
        start1.append(f"memset(acc1, 0, {acc.nbytes});")
    st.at(st.before, vis[1], [ln for ln in start1 if ln])
    if out1 is not None:  # through the level-1 output buffer
        store = [*_walk(st, 1, t1m),
                 f"  o1[{obox_idx(st, 1)}] = ({valid}) ? ({yct})({final}) : 0;", "}",
                 *_walk(st, 1, t1m),
                 f"  if ({valid}) {dest_final} = o1[{obox_idx(st, 1)}];", "}"]
    else:
        store = [*_walk(st, 1, t1m), f"  if ({valid}) {dest_final} = ({final});", "}"]
    end1 = [f"if ({last[1]}) {{", *("  " + ln for ln in store),
            "  " + st.count(link1, nbox[1] * p.out_bytes), "}"]
    if first[1] != "1":
        end1 += ["else {", *("  " + ln for ln in _walk(st, 1, t1m)),
                 f"    {dest_part} = acc1[{acc_idx(st)}];", "  }",
                 "  " + st.count(link1, nbox[1] * p.acc_bytes), "}"]
    st.at(st.after, vis[1], end1)
    if r2 is not None:
        st.at(st.after, vis[2], [ln for ln in end2 if ln])


