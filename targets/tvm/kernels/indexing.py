"""Pad and Gather: data movement by index arithmetic, on any element type (codes or floats),
so exact."""

from __future__ import annotations

from typing import Any

import numpy as np

from ir.graph import Node
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


def _constant_indices(node: Node) -> bool:
    """Gather with constant indices (checked at compile time, so no read leaves x)."""
    v = node.operand("indices")
    return v is not None and v.data is not None


@kernel("Gather", accepts=_constant_indices)
def gather(k: Kernel) -> list[Tensor]:
    """y[i..., j..., k...] = x[i..., indices[j...], k...] along ``axis``, negative indices
    counting from the end (the indices are constants, in range: the verifier's domain
    check)."""
    (y,) = k.out_types
    xt = k.type_of("data")
    x = k.operand("data")
    axis = k.attrs["axis"]
    idx_np = np.asarray(k.node.operand("indices").data, dtype=np.int64)
    idx_np = np.where(idx_np < 0, idx_np + xt.shape[axis], idx_np).astype(np.int32)
    flat = k.table(idx_np.reshape(-1) if idx_np.size else np.zeros(1, np.int32), "indices")
    ishape = idx_np.shape

    def body(*o: Any) -> Any:
        lead, rest = o[:axis], o[axis + len(ishape):]
        pos: Any = tir.const(0, "int32")
        for d, i in zip(ishape, o[axis:axis + len(ishape)]):
            pos = pos * d + i
        return x[(*lead, flat[pos], *rest)]

    return [te.compute(y.shape, body, name="y")]
