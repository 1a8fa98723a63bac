"""Emitters of the indexing ops: GatherND, ScatterND, ScatterElements, TensorScatter, OneHot,
ReverseSequence, Col2Im.

Indices are read at run time, so every one is checked before use: a negative index counts
from the end of its axis, and one still outside the axis stops the run (the layer returns 1,
qnnc_run its status) before any memory is touched with it, as the reference rejects it
(docs/architecture.md "Defined meaning"). The data-movement ops serve every
dtype; they only copy (the scatters' add/mul/max/min combine in the element type).
"""

from __future__ import annotations

import numpy as np

from ir.ops.indexing import col_grid
from targets.c.emitter import LayerCtx, emits, nested_loops, offset, plus, strides_of
from targets.c.expr import Expr, Var, add
from targets.c.stmt import let, loop, nested


def _prod(shape: tuple[int, ...] | list[int]) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _size(ctx: LayerCtx) -> int:
    ctx.ctype(ctx.ot(0))  # a clear error for dtypes the C targets lack
    return ctx.ot(0).dtype.np.itemsize


def read_index(var: str, src: str, dim: int) -> list[str]:
    """``int64_t var`` = the index at ``src``, negative ones counted from the end of ``dim``."""
    return [f"int64_t {var} = (int64_t){src};", f"if ({var} < 0) {var} += {dim};"]


def inside(var: str, dim: int) -> str:
    return f"{var} >= 0 && {var} < {dim}"


def _combine(reduction: str, dst: str, src: str) -> str:
    """``dst`` updated with ``src`` by a scatter's reduction."""
    if reduction == "none":
        return f"{dst} = {src};"
    if reduction in ("add", "mul"):
        return f"{dst} {'+' if reduction == 'add' else '*'}= {src};"
    cmp = ">" if reduction == "max" else "<"
    return f"if ({src} {cmp} {dst}) {dst} = {src};"


def _copy_data(ctx: LayerCtx) -> list[str]:
    """A scatter starts from a copy of its data (nothing to copy when they share storage)."""
    if ctx.same_storage(0, 0):
        return []
    return [f"memcpy({ctx.o(0)}, {ctx.i(0)}, {ctx.ot(0).nbytes});"]


def _tuple_offset(ctx: LayerCtx, tup: str, dims: tuple[int, ...]) -> list[str]:
    """``at`` = the element offset of the index tuple at ``tup`` over ``dims`` (row-major),
    ``ok`` whether every entry is inside its axis."""
    st = strides_of(dims)
    lines = ["int64_t at = 0;", "int ok = 1;"]
    for k, d in enumerate(dims):
        lines += read_index(f"t{k}", f"{tup}[{k}]", d)
        lines += [f"ok = ok && {inside(f't{k}', d)};",
                  f"at += t{k};" if st[k] == 1 else f"at += t{k} * {st[k]};"]
    return lines


@emits("GatherND", checks=True)
def gather_nd(ctx: LayerCtx) -> str:
    """Each index tuple picks a slab of ``s`` elements: a memcpy."""
    x, ishape = ctx.it("data").shape, ctx.it("indices").shape
    b, q = ctx.a["batch_dims"], ishape[-1]
    nb, m, s = _prod(x[:b]), _prod(ishape[b:-1]), _prod(x[b + q:])
    size = _size(ctx)
    hb, bb = loop("b", nb)
    hm, mm = loop("m", m)
    row = bb * m + mm
    body = [f"const {ctx.ctype(ctx.it('indices'))} *tup = {plus(ctx.i('indices'), row * q)};",
            *_tuple_offset(ctx, "tup", x[b:b + q]),
            f"{ctx.ctype(ctx.ot(0))} *y = {plus(ctx.o(0), row * s)};",
            "if (!ok) return 1;",
            f"memcpy(y, {plus(ctx.i('data'), bb * _prod(x[b:]))} + at * {s}, "
            f"{s * size});"]
    return "\n".join(nested([hb, hm], body)) if s else "/* empty */"


@emits("ScatterND", checks=True)
def scatter_nd(ctx: LayerCtx) -> str:
    """In order, each index tuple's slab of y is combined with its slab of updates."""
    x, ishape = ctx.it("data").shape, ctx.it("indices").shape
    q = ishape[-1]
    m, s = _prod(ishape[:-1]), _prod(x[q:])
    hj, j = loop("j", m)
    he, e = loop("e", s)
    y, u = ctx.o(0), ctx.i("updates")
    update = nested([he], [_combine(ctx.a["reduction"], f"{y}[{add(Var('at') * s, e)}]",
                                    f"{u}[{j * s + e}]")])
    body = [f"const {ctx.ctype(ctx.it('indices'))} *tup = {plus(ctx.i('indices'), j * q)};",
            *_tuple_offset(ctx, "tup", x[:q]), "if (!ok) return 1;", *update]
    if m == 0:
        return "\n".join(_copy_data(ctx)) or "/* nothing to scatter */"
    return "\n".join([*_copy_data(ctx), *nested([hj], body)])


@emits("ScatterElements", checks=True)
def scatter_elements(ctx: LayerCtx) -> str:
    """y at p with its ``axis`` entry replaced by indices[p], for each position p."""
    axis, x, ishape = ctx.a["axis"], ctx.it("data").shape, ctx.it("indices").shape
    xst = strides_of(x)
    y, u, ix = ctx.o(0), ctx.i("updates"), ctx.i("indices")

    def element(i: list[Expr]) -> str:
        at = offset([v for k, v in enumerate(i) if k != axis],
                    [st for k, st in enumerate(xst) if k != axis])
        flat = offset(i, strides_of(ishape))
        dst = f"{y}[{at} + t * {xst[axis]}]" if xst[axis] != 1 else f"{y}[{at} + t]"
        return "\n".join([*read_index("t", f"{ix}[{flat}]", x[axis]),
                          f"if (!({inside('t', x[axis])})) return 1;",
                          _combine(ctx.a["reduction"], dst, f"{u}[{flat}]")])

    if _prod(ishape) == 0:
        return "\n".join(_copy_data(ctx)) or "/* nothing to scatter */"
    return "\n".join([*_copy_data(ctx), nested_loops(ishape, element)])


@emits("TensorScatter", checks=True)
def tensor_scatter(ctx: LayerCtx) -> str:
    """Each prefix's rows of update go to the cache from its batch's write index on."""
    axis, x, upd = ctx.a["axis"], ctx.it("past_cache").shape, ctx.it("update").shape
    n, rows, inner = x[axis], upd[axis], _prod(x[axis + 1:])
    per_batch = _prod(x[1:axis])
    size = _size(ctx)
    hp, p = loop("p", _prod(x[:axis]))
    hs, s = loop("s", rows)
    start = (f"(int64_t){ctx.i('write_indices')}[{_batch(p, per_batch)}]"
             if ctx.has("write_indices") else "")
    at = " + ".join(t for t in (start, "" if rows == 1 else str(s)) if t) or "0"
    body = [f"int64_t at = {at};"]
    if ctx.a["mode"] == "circular":
        body += [f"at %= {n};", f"if (at < 0) at += {n};"]
    copy = (f"memcpy({plus(ctx.o(0), p * (n * inner))} + at * {inner}, "
            f"{plus(ctx.i('update'), (p * rows + s) * inner)}, {inner * size});")
    if ctx.a["mode"] != "circular":
        body.append(f"if (!({inside('at', n)})) return 1;")
    body.append(copy)
    if rows == 0 or inner == 0:
        return "\n".join(_copy_data(ctx)) or "/* nothing to scatter */"
    return "\n".join([*_copy_data(ctx), *nested([hp, hs], body)])


def _batch(p: Expr, per_batch: int) -> str:
    return str(p) if per_batch == 1 else f"{p} / {per_batch}"


@emits("OneHot")
def one_hot(ctx: LayerCtx) -> str:
    """y[o, j, i] = values[1] where indices[o, i] (wrapped) is j, else values[0]."""
    ishape, depth, ax = ctx.it("indices").shape, ctx.a["depth"], ctx.a["axis"]
    outer, inner = _prod(ishape[:ax]), _prod(ishape[ax:])
    ho, o = loop("o", outer)
    hi, i = loop("i", inner)
    hj, j = loop("j", depth)
    v, y = ctx.i("values"), ctx.o(0)
    body = [*read_index("k", f"{ctx.i('indices')}[{o * inner + i}]", depth),
            *nested([hj], [f"{y}[{(o * depth + j) * inner + i}] = k == {j} ? {v}[1] : {v}[0];"])]
    return "\n".join(nested([ho, hi], body)) if outer * inner else "/* empty */"


@emits("ReverseSequence", checks=True)
def reverse_sequence(ctx: LayerCtx) -> str:
    """Row t of batch entry b reads row lens[b] - 1 - t while t < lens[b], else row t; a
    length outside [0, time steps] stops the run."""
    x = ctx.it("x").shape
    bax, steps = ctx.a["batch_axis"], x[ctx.a["time_axis"]]
    inner = _prod(x[2:])
    size = _size(ctx)
    h0, i0 = loop("i0", x[0])
    h1, i1 = loop("i1", x[1])
    b, t = (i0, i1) if bax == 0 else (i1, i0)
    row_of = (lambda r: add(r * x[1], i1)) if bax == 1 else (lambda r: add(i0 * x[1], r))
    body = [f"int64_t n = (int64_t){ctx.i('sequence_lens')}[{b}];",
            f"if (n < 0 || n > {steps}) return 1;",
            f"const int64_t r = {t} < n ? n - 1 - {t} : {t};",
            f"memcpy({plus(ctx.o(0), (i0 * x[1] + i1) * inner)}, "
            f"{ctx.i('x')} + ({row_of(Var('r', 0, steps - 1))}) * {inner}, {inner * size});"]
    return "\n".join(nested([h0, h1], body)) if _prod(x) else "/* empty */"


@emits("Col2Im")
def col2im(ctx: LayerCtx) -> str:
    """y = 0; then every column entry x[n, c, k, l] adds into the image at
    l·strides − pads + k·dilations, where that lands inside."""
    ctx.require_float()
    a = ctx.a
    img, blk, grid = a["image_shape"], a["block_shape"], col_grid(a)
    r = len(img)
    n, c = ctx.it("x").shape[0], ctx.ot(0).shape[1]
    nb, nl, pix = _prod(blk), _prod(grid), _prod(img)
    x, y = ctx.i("x"), ctx.o(0)
    hc, nc = loop("nc", n * c)
    ist = strides_of(img)

    def element(i: list[Expr]) -> str:
        k, lpos = i[:r], i[r:]
        decls, pos, conds = [], [], []
        for d in range(r):
            e = add(lpos[d] * a["strides"][d], k[d] * a["dilations"][d], -a["pads"][d])
            decl, v = let(f"p{d}", e)
            decls += decl
            pos.append(v)
            if e.lo is None or e.lo < 0:
                conds.append(f"{v} >= 0")
            if e.hi is None or e.hi >= img[d]:
                conds.append(f"{v} < {img[d]}")
        at = add(nc * pix, *(pos[d] * ist[d] for d in range(r)))
        src = add(nc * (nb * nl), offset_flat(k, blk) * nl, offset_flat(lpos, grid))
        line = f"{y}[{at}] += {x}[{src}];"
        return "\n".join(decls + [f"if ({' && '.join(conds)}) {line}" if conds else line])

    body = nested_loops(list(blk) + list(grid), element,
                        names=[f"k{d}" for d in range(r)] + [f"l{d}" for d in range(r)])
    lines = [f"memset({y}, 0, {ctx.ot(0).nbytes});"]
    if n * c and nb * nl:
        lines += nested([hc], body.splitlines())
    return "\n".join(lines)


def offset_flat(idx: list[Expr], shape: tuple[int, ...] | list[int]) -> Expr:
    return add(*(v * st for v, st in zip(idx, strides_of(shape))))
