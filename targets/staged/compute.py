"""The compute of one level-1 tile: multiply-accumulate (matrix or depthwise), pooling, or an
elementwise op (its host emitter run over the whole box)."""

from __future__ import annotations

from ir.graph import Value
from targets.c.emitter import LayerCtx, c_type
from targets.staged.layer import Geo, Staged, geometry
from targets.staged.tiles import slot_of, w_box, x_box
from targets.staged.visits import acc_idx, obox_idx
from targets.tiling.problem import OH, OW, C, M, N


def valid_extents(st: Staged) -> list[str]:
    t, s = st.nest.tile(1), st.prob.sizes
    out = []
    for k, d in zip(("vn", "vm", "voh", "vow", "vc"), (N, M, OH, OW, C)):
        o = st.nest.origin(1, d)
        out.append(f"int {k} = {s[d]} - {o}; if ({k} > {t[d]}) {k} = {t[d]};")
    return out


def _window(g: Geo, inner: list[str]) -> list[str]:
    """Loops over the kernel taps of output (oh, ow) that fall inside the input."""
    return [f"for (int kh = 0; kh < {g.kh}; ++kh) {{",
            f"  const int r = oh*{g.sh} - {g.pt} + kh*{g.dh};",
            f"  if (r < 0 || r >= {g.H}) continue;",
            f"  for (int kw = 0; kw < {g.kw}; ++kw) {{",
            f"    const int col = ow*{g.sw} - {g.pl} + kw*{g.dw};",
            f"    if (col < 0 || col >= {g.W}) continue;",
            *("    " + ln for ln in inner), "  }", "}"]


def _x_at(st: Staged, gi: str, c: str) -> str:
    _, _, tc, ch, sh, sw = x_box(st, 1)
    return (f"x1[((n - x1n)*{ch} + ({gi})*{tc} + ({c}) - x1c)*{sh * sw} + "
            f"({slot_of(st, 1, 0, 'r')})*{sw} + ({slot_of(st, 1, 1, 'col')})]")


def compute_macs(st: Staged, zx: int, zw: str) -> list[str]:
    """Convolution / product tile: acc1 += (x - zx) . (w - zw)."""
    p, g = st.prob, geometry(st)
    _, tmw, tcw, taps = w_box(st, 1)
    gi = f"m / {g.per_group} - x1g" if p.inputs_depend_on_m else "0"
    wn = "(n - w1n)" if p.weights_batched else "0"
    o = {d: st.nest.origin(1, d) for d in range(5)}
    inner = [f"s += ((int32_t){_x_at(st, 'gi', 'c')} - {zx}) * "
             f"((int32_t)wp[kh*{g.kw} + kw] - zw);"]
    return [
        "for (int bn = 0; bn < vn; ++bn) for (int ohi = 0; ohi < voh; ++ohi)",
        "for (int owi = 0; owi < vow; ++owi) {",
        f"  const int n = {o[N]} + bn, oh = {o[OH]} + ohi, ow = {o[OW]} + owi;",
        "  for (int mi = 0; mi < vm; ++mi) {",
        f"    const int m = {o[M]} + mi, gi = {gi}; (void)gi;",
        f"    const int32_t zw = {zw};",
        "    int32_t s = 0;",
        "    for (int ci = 0; ci < vc; ++ci) {",
        f"      const int c = {o[C]} + ci;",
        f"      const {c_type(st.node.inputs[1].type.dtype)} *wp = w1 + (({wn}*{tmw} + "
        f"(m - w1m))*{tcw} + (c - w1c))*{taps};",
        *("      " + ln for ln in _window(g, inner)),
        "    }",
        f"    acc1[{acc_idx(st)}] += s;",
        "  }",
        "}",
    ]


def compute_pool(st: Staged, zx: int, yct: str, counts: tuple[str, str] | None) -> list[str]:
    """Pooling tile into the level-1 output region: max, or requantised window sums."""
    g = geometry(st)
    o = {d: st.nest.origin(1, d) for d in range(5)}
    xv = _x_at(st, "m - x1g", "0")
    is_max = st.node.op in ("MaxPool", "GlobalMaxPool")
    if is_max:
        init, inner = "int32_t best = INT32_MIN;", [f"if ((int32_t){xv} > best) best = {xv};"]
        value = f"({yct})best"
    else:
        assert counts is not None
        init, inner = "int64_t s = 0;", [f"s += (int64_t){xv} - {zx};"]
        value = counts[1]
    return [
        "for (int bn = 0; bn < vn; ++bn) for (int mi = 0; mi < vm; ++mi)",
        "for (int ohi = 0; ohi < voh; ++ohi) for (int owi = 0; owi < vow; ++owi) {",
        f"  const int n = {o[N]} + bn, m = {o[M]} + mi, oh = {o[OH]} + ohi, ow = {o[OW]} + owi;",
        f"  {init}",
        *("  " + ln for ln in _window(g, inner)),
        *(["  const int cnt = " + counts[0] + ";"] if counts else []),
        f"  o1[{obox_idx(st, 1)}] = {value};",
        "}",
    ]


def compute_eltwise(st: Staged, yct: str) -> list[str]:
    """Elementwise tile: the op's own host emitter, run over the whole box."""
    from ir.graph import Node as _Node
    from targets.c.emitter import emitter_for

    bn, _, _, ch, sh, sw = x_box(st, 1)
    e = bn * ch * sh * sw
    ins = [Value(f"t{k}", v.type.with_shape((e,)) if v is not None else v.type)  # type: ignore
           for k, v in enumerate(st.node.inputs)]
    y = st.node.outputs[0]
    vy = Value("ty", y.type.with_shape((e,)))
    vnode = _Node(st.node.op, ins, [vy], dict(st.node.attrs), st.node.name)  # type: ignore
    em = emitter_for(vnode)
    if em.scratch is not None:
        raise st.fail("this elementwise op needs scratch space; not staged")
    body = em.fn(LayerCtx(vnode, st.ctx.renderer, st.ctx.weights))
    xct = c_type(st.node.inputs[0].type.dtype)
    head = [f"const {xct} *in{k} = x1 + {k * e};" for k in range(len(ins))]
    return ["{", *("  " + ln for ln in head), f"  {yct} *out0 = o1;",
            *("  " + ln for ln in body.splitlines()), "}"]


