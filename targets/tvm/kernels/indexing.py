"""Pad, Gather and ScatterND: data movement by index arithmetic, on any element type (codes
or floats), so exact. Indices only known at run time are checked before use (checks.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

from targets.tvm.api import te, tir
from targets.tvm.context import Kernel, Tensor
from targets.tvm.registry import kernel


def _source(o: Any, before: int, kept: int, start: int, mode: str) -> tuple[Any, Any]:
    """(index into x, inside) for output index ``o`` along one axis: ``before`` cells are
    padded first, ``kept`` cells of x from ``start`` are copied (ir/ops/gather.Pad)."""
    p = o - before
    inside = tir.all(p >= 0, p < kept)
    if mode == "edge":
        p = tir.max(tir.min(p, kept - 1), 0)
    elif mode == "reflect":  # the mirror image without the edge (pads are below kept)
        p = tir.Select(p < 0, -p, tir.Select(p >= kept, 2 * (kept - 1) - p, p))
    elif mode == "wrap":
        p = tir.floormod(p, kept)
    else:  # constant: any index inside; the fill is chosen by ``inside``
        p = tir.max(tir.min(p, kept - 1), 0)
    return p + start, inside


@kernel("Pad")
def pad(k: Kernel) -> list[Tensor]:
    """y = x cropped by the negative and padded by the positive ``pads``: new cells hold the
    fill (mode constant: the value input, else the ``value`` attribute in x's type), the
    mirror image without the edge (reflect), the edge (edge) or the other side (wrap)."""
    (y,) = k.out_types
    xt = k.type_of("x")
    x = k.operand("x")
    pads, mode, rank = k.attrs["pads"], k.attrs["mode"], xt.rank
    dt = xt.dtype.np.name
    if mode == "constant":
        if k.has("value"):
            v = k.operand("value")
            fill: Any = v[(0,) * k.type_of("value").rank]
        else:
            fill = k.table(np.asarray([k.attrs["value"]]).astype(dt), "fill")[0]
    axes = []
    for a in range(rank):
        b, e = pads[a], pads[a + rank]
        axes.append((max(b, 0), xt.shape[a] + min(b, 0) + min(e, 0), max(-b, 0)))

    def body(*o: Any) -> Any:
        src, inside = [], []
        for a in range(rank):
            s, ok = _source(o[a], *axes[a], mode)
            src.append(s)
            inside.append(ok)
        if mode != "constant":
            return x[tuple(src)]
        return tir.Select(tir.all(*inside), x[tuple(src)], fill)

    return [te.compute(y.shape, body, name="y")]


@kernel("Gather")
def gather(k: Kernel) -> list[Tensor]:
    """y[i..., j..., k...] = x[i..., indices[j...], k...] along ``axis``, negative indices
    counting from the end; indices read at run time are checked first (checks.py)."""
    (y,) = k.out_types
    xt = k.type_of("data")
    x = k.operand("data")
    axis = k.attrs["axis"]
    idx = k.indices("indices", [xt.shape[axis]])
    rank = k.type_of("indices").rank

    def body(*o: Any) -> Any:
        at = o[axis:axis + rank]
        return x[(*o[:axis], idx[at] if rank else idx[()], *o[axis + rank:])]

    return [te.compute(y.shape, body, name="y")]


def _reduce(how: str, old: Any, new: Any, dt: str) -> Any:
    if how == "none":
        return new
    if how == "add":
        return old + new
    if how == "mul":
        return old * new
    pick = tir.max(old, new) if how == "max" else tir.min(old, new)
    if dt.startswith("float"):  # nan propagates, as numpy.maximum / minimum
        pick = tir.Select(tir.isnan(old), old, tir.Select(tir.isnan(new), new, pick))
    return pick


@kernel("ScatterND")
def scatter_nd(k: Kernel) -> list[Tensor]:
    """y = data; then, for each index tuple t = indices[i..., :] in row-major order,
    y[t, s...] = reduction(y[t, s...], updates[i..., s...]) (none: replace, so a position
    written twice keeps the last write; add, mul, max, min). One sequential kernel, in the
    interpreter's order; indices read at run time are checked first (checks.py)."""
    (y,) = k.out_types
    xt, it = k.type_of("data"), k.type_of("indices")
    x, upd = k.operand("data"), k.operand("updates")
    q = it.shape[-1]
    idx = k.indices("indices", list(xt.shape[:q]))
    how, dt = k.attrs["reduction"], y.dtype.np.name
    tuples = list(it.shape[:-1])
    slab = list(xt.shape[q:])

    def body(ins: list[Any], outs: list[Any]) -> Any:
        xb, ib, ub = ins
        (yb,) = outs
        every = [tir.Var(f"c{n}", "int64") for n in range(len(xt.shape))]
        copy = _loops(every, list(xt.shape), tir.BufferStore(yb, tir.BufferLoad(xb, every),
                                                                 every))
        ts = [tir.Var(f"t{n}", "int64") for n in range(len(tuples))]
        ss = [tir.Var(f"s{n}", "int64") for n in range(len(slab))]
        at = [tir.BufferLoad(ib, [*ts, tir.const(e, "int64")]) for e in range(q)] + ss
        new = _reduce(how, tir.BufferLoad(yb, at), tir.BufferLoad(ub, [*ts, *ss]), dt)
        write = _loops(ts, tuples, _loops(ss, slab, tir.BufferStore(yb, new, at)))
        return tir.SeqStmt([copy, write])

    return [te.extern([list(xt.shape)], [x, idx, upd], body, dtype=dt, name="y")]


def _loops(loops: list[Any], shape: list[int], body: Any) -> Any:
    """``body`` inside serial loops ``loops`` over ``shape`` (outermost first)."""
    for lv, n in reversed(list(zip(loops, shape))):
        body = tir.For(lv, tir.const(0, "int64"), tir.const(n, "int64"), tir.ForKind.SERIAL,
                       body)
    return body
