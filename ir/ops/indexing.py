"""Ops that read or write elements at computed positions: GatherND, ScatterND,
ScatterElements, TensorScatter, OneHot, ReverseSequence, and Col2Im (which sums columns back
into an image).

Indices are tensor operands (they may be computed by the model); every shape-deciding input
(OneHot's depth, Col2Im's image and block shapes) is a canonical attribute. Negative indices
count from the end of their axis, as ONNX says. An index outside [-dim, dim) is invalid in
ONNX: the reference (``compute``) raises, the generated C stops the run with the same error
before touching memory with it, and constant indices that prove it are rejected at compile
time (the ``domain`` trait); see docs/architecture.md "Defined meaning". OneHot is the
exception ONNX defines itself: an out-of-range index gives a row of off values.
"""

from __future__ import annotations

import numpy as np

from ir import qforms
from ir.graph import Node
from ir.ops.common import require_inputs, same_dtype
from ir.ops.registry import OPS, Attr, Attrs, register, require
from ir.ops.shape import moved
from ir.types import TensorType

_INDEX_DTYPES = ("i32", "i64")
REDUCTIONS = ("none", "add", "mul", "max", "min")
_REDUCE = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


def _indices(op: str, t: TensorType) -> None:
    require(t.dtype.value in _INDEX_DTYPES, f"{op}: indices must be i32 or i64, got {t}")


def index_problem(idx: np.ndarray | None, dim: int, what: str = "index") -> str | None:
    """Why constant indices ``idx`` leave an axis of ``dim`` entries, or None (also for
    indices only known at run time): the ``domain`` trait of the indexing ops."""
    if idx is None or not idx.size:
        return None
    if idx.size == 1 and -dim <= int(idx.item()) < dim:  # one index (a decode step's
        return None  # position, a cache slot): its numpy mask costs more than the read
    idx = np.asarray(idx, dtype=np.int64)
    bad = idx[(idx < -dim) | (idx >= dim)]
    if not bad.size:
        return None
    return (f"{what} {int(bad[0])} is outside [{-dim}, {dim}), the axis it indexes "
            f"({bad.size} such of {idx.size})")


def _tuples_problem(idx: np.ndarray | None, dims: tuple[int, ...]) -> str | None:
    """The first component of constant index tuples (last axis of ``idx``) outside ``dims``."""
    if idx is None:
        return None
    for k, d in enumerate(dims[:idx.shape[-1]]):
        bad = index_problem(idx[..., k], d, f"tuple entry {k}")
        if bad:
            return bad
    return None


def wrap(op: str, idx: np.ndarray, dim: int) -> np.ndarray:
    """Negative indices counted from the end; out of range is an error (module docstring)."""
    idx = np.asarray(idx, dtype=np.int64)
    if idx.size == 1:  # one index, checked and wrapped in Python
        v = int(idx.item())
        if not -dim <= v < dim:
            raise IndexError(f"{op}: an index is out of range [{-dim}, {dim})")
        return np.full(idx.shape, v + dim if v < 0 else v, np.int64)
    if idx.size and (idx.min() < -dim or idx.max() >= dim):
        raise IndexError(f"{op}: an index is out of range [{-dim}, {dim})")
    return np.where(idx < 0, idx + dim, idx)


def _distinct(tuples: np.ndarray, dims: tuple[int, ...]) -> bool:
    """Whether no index tuple (a row of ``tuples``, wrapped into ``dims``) comes twice."""
    if len(tuples) <= 1:
        return True
    flat = np.ravel_multi_index(tuple(tuples.T), dims)
    return bool(np.unique(flat).size == flat.size)


def _apply(out: np.ndarray, at: tuple, value: np.ndarray, reduction: str) -> None:
    out[at] = value if reduction == "none" else _REDUCE[reduction](out[at], value)


def scatter_on_codes(ctx: qforms.QuantContext, node: Node) -> None:
    """A scatter runs on 8-bit codes, its data and updates requantised to the parameters of
    its result (whose calibrated range covers both, as a Concat's does: a KV cache that is
    all zeros before its first write must not clip the keys written into it). Exact for
    replacing and for max/min (quantisation is monotone); adding or multiplying codes would
    not be, so those stay float."""
    qforms.needs(node.attrs.get("reduction", "none") in ("none", "max", "min"))
    first, *rest = OPS[node.op].operands
    target = ctx.out_params(node.outputs[0])
    ins: list = []
    for name in [first, *rest]:
        v = node.operand(name)
        if name in (first, "updates", "update"):
            q = ctx.act(v)
            uq = q.type.quant
            assert uq is not None
            if (q.type.dtype, uq.scale[0], uq.zero_point[0]) != (
                    target.dtype, target.scale, target.zero_point):
                q = ctx.rescale(v, target, node)
            ins.append(q)
        else:
            ins.append(ctx.other(v))
    while ins and ins[-1] is None:
        ins.pop()
    ctx.emit(node.op, ins, dict(node.attrs), [node], list(node.outputs))


@register
class GatherND:
    """y[b..., i...] = data[b..., indices[b..., i..., 0], ..., indices[b..., i..., q-1], ...]

    The first ``batch_dims`` axes of data and indices are shared batch axes; each index tuple
    (the last axis of indices, q entries) picks a slice of data:
    y.shape = indices.shape[:-1] + data.shape[batch_dims + q:].
    """

    operands = ("data", "indices")
    moves_data = True
    quantized = qforms.on_codes
    attrs = {"batch_dims": Attr("int", 0, doc="leading axes shared by data and indices")}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        x, idx = require_inputs("GatherND", ins, 2)
        _indices("GatherND", idx)
        b = a["batch_dims"]
        require(idx.rank >= 1 and 0 <= b < min(x.rank, idx.rank),
                f"GatherND: batch_dims {b} must be below the ranks of {x} and {idx}")
        q = idx.shape[-1]
        require(x.shape[:b] == idx.shape[:b],
                f"GatherND: the batch axes of {x} and {idx} differ")
        require(1 <= q <= x.rank - b,
                f"GatherND: index tuples of {q} entries do not fit {x} after {b} batch axes")
        return [moved(x, idx.shape[:-1] + x.shape[b + q:])]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, idx = ins[0], ins[1]
        assert x is not None and idx is not None
        b, q = a["batch_dims"], idx.shape[-1]
        nb = int(np.prod(x.shape[:b]))
        xs = x.reshape((nb,) + x.shape[b:])
        tuples = idx.reshape(nb, -1, q)
        wrapped = [wrap("GatherND", tuples[..., k], x.shape[b + k]) for k in range(q)]
        rows = np.arange(nb)[:, None]
        y = xs[(rows, *wrapped)]
        return [y.reshape(idx.shape[:-1] + x.shape[b + q:])]

    @staticmethod
    def domain(consts: list[np.ndarray | None], types: list[TensorType | None], a: Attrs
               ) -> str | None:
        x = types[0]
        assert x is not None
        return _tuples_problem(consts[1], x.shape[a["batch_dims"]:])


@register
class ScatterND:
    """y = data; then for each index tuple t = indices[i..., :] in order:
    y[t] = reduction(y[t], updates[i...]) (none: replace; add, mul, max, min).

    updates.shape = indices.shape[:-1] + data.shape[q:] (q = indices.shape[-1]). With
    reduction none, a position written twice keeps the last write (ONNX leaves it undefined).
    """

    operands = ("data", "indices", "updates")
    moves_data = True
    quantized = scatter_on_codes
    attrs = {"reduction": Attr("str", "none", doc="none, add, mul, max or min")}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        x, idx, upd = require_inputs("ScatterND", ins, 3)
        _indices("ScatterND", idx)
        same_dtype("ScatterND", [x, upd])
        require(a["reduction"] in REDUCTIONS,
                f"ScatterND: reduction {a['reduction']!r} is not one of {list(REDUCTIONS)}")
        q = idx.shape[-1] if idx.rank else 0
        require(idx.rank >= 1 and 1 <= q <= x.rank,
                f"ScatterND: index tuples of {idx} do not fit {x}")
        require(upd.shape == idx.shape[:-1] + x.shape[q:],
                f"ScatterND: updates {upd} must have shape "
                f"{list(idx.shape[:-1] + x.shape[q:])}")
        return [x]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, idx, upd = ins[0], ins[1], ins[2]
        assert x is not None and idx is not None and upd is not None
        q = idx.shape[-1]
        y = x.copy()
        if idx.size == q:  # one tuple (a KV cache's new row): written by basic indexing
            at = tuple(int(wrap("ScatterND", idx[..., k], x.shape[k]).item())
                       for k in range(q))
            _apply(y, at, upd.reshape(x.shape[q:]), a["reduction"])
            return [y]
        tuples = np.stack([wrap("ScatterND", idx[..., k], x.shape[k]) for k in range(q)], -1)
        tuples = tuples.reshape(-1, q)
        slabs = upd.reshape((len(tuples),) + x.shape[q:])
        if a["reduction"] == "none" and _distinct(tuples, x.shape[:q]):
            y[tuple(tuples.T)] = slabs  # no tuple twice: the order of the writes is moot
            return [y]
        for t, u in zip(tuples, slabs):
            _apply(y, tuple(int(v) for v in t), u, a["reduction"])
        return [y]

    @staticmethod
    def domain(consts: list[np.ndarray | None], types: list[TensorType | None], a: Attrs
               ) -> str | None:
        x = types[0]
        assert x is not None
        return _tuples_problem(consts[1], x.shape)


@register
class ScatterElements:
    """y = data; then for each position p of indices in row-major order, with p' = p with
    its ``axis`` entry replaced by indices[p]: y[p'] = reduction(y[p'], updates[p]).

    (ONNX's Scatter, opsets 9-10, is this op without reductions.)
    """

    operands = ("data", "indices", "updates")
    moves_data = True
    quantized = scatter_on_codes
    attrs = {
        "axis": Attr("int", doc="non-negative axis the indices select along"),
        "reduction": Attr("str", "none", doc="none, add, mul, max or min"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        x, idx, upd = require_inputs("ScatterElements", ins, 3)
        _indices("ScatterElements", idx)
        same_dtype("ScatterElements", [x, upd])
        axis = a["axis"]
        require(0 <= axis < x.rank, f"ScatterElements: axis {axis} is not in [0, {x.rank})")
        require(a["reduction"] in REDUCTIONS,
                f"ScatterElements: reduction {a['reduction']!r} is not one of "
                f"{list(REDUCTIONS)}")
        require(upd.shape == idx.shape and idx.rank == x.rank and all(
            i <= d for k, (i, d) in enumerate(zip(idx.shape, x.shape)) if k != axis),
            f"ScatterElements: indices {idx} and updates {upd} do not fit data {x}")
        return [x]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, idx, upd = ins[0], ins[1], ins[2]
        assert x is not None and idx is not None and upd is not None
        axis = a["axis"]
        y = x.copy()
        target = wrap("ScatterElements", idx, x.shape[axis])
        for p in np.ndindex(*idx.shape):
            at = p[:axis] + (int(target[p]),) + p[axis + 1:]
            _apply(y, at, upd[p], a["reduction"])
        return [y]

    @staticmethod
    def domain(consts: list[np.ndarray | None], types: list[TensorType | None], a: Attrs
               ) -> str | None:
        x = types[0]
        assert x is not None
        return index_problem(consts[1], x.shape[a["axis"]])


@register
class TensorScatter:
    """y = past_cache; for each prefix p of the axes before ``axis`` (batch b = p[0]) and each
    s < update.shape[axis]: y[p, w, ...] = update[p, s, ...] with w = write_indices[b] + s
    (0 without write_indices), taken modulo the axis length in mode circular.

    A linear write past the end of the axis is invalid (the reference raises; C drops it).
    """

    operands = ("past_cache", "update", "write_indices?")
    moves_data = True
    quantized = scatter_on_codes
    attrs = {
        "axis": Attr("int", doc="non-negative sequence axis (not the batch axis 0)"),
        "mode": Attr("str", "linear", doc="linear or circular"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        x, upd = require_inputs("TensorScatter", ins, 2)
        same_dtype("TensorScatter", [x, upd])
        axis, mode = a["axis"], a["mode"]
        require(mode in ("linear", "circular"),
                f"TensorScatter: mode {mode!r} is not linear or circular")
        require(1 <= axis < x.rank, f"TensorScatter: axis {axis} is not in [1, {x.rank})")
        require(upd.rank == x.rank and upd.shape[axis] <= x.shape[axis] and all(
            u == d for k, (u, d) in enumerate(zip(upd.shape, x.shape)) if k != axis),
            f"TensorScatter: update {upd} does not fit cache {x} outside axis {axis}")
        w = ins[2] if len(ins) > 2 else None
        if w is not None:
            _indices("TensorScatter", w)
            require(w.shape == (x.shape[0],),
                    f"TensorScatter: write_indices {w} needs one entry per batch of {x}")
        return [x]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, upd = ins[0], ins[1]
        assert x is not None and upd is not None
        w = ins[2] if len(ins) > 2 and ins[2] is not None else np.zeros(x.shape[0], np.int64)
        axis = a["axis"]
        n = x.shape[axis]
        y = x.copy()
        for p in np.ndindex(*x.shape[:axis]):
            for s in range(upd.shape[axis]):
                at = int(w[p[0]]) + s
                at = at % n if a["mode"] == "circular" else at
                if not 0 <= at < n:
                    raise IndexError(f"TensorScatter: write position {at} is past the axis "
                                     f"({n})")
                y[p + (at,)] = upd[p + (s,)]
        return [y]


@register
class OneHot:
    """y[i..., j, k...] = values[1] if int(indices[i..., k...]) == j (mod depth, for
    negative indices) else values[0]; ``axis`` is where the new axis of ``depth`` entries
    sits in y. An index outside [-depth, depth) gives a row of off values (values[0])."""

    operands = ("indices", "values")
    attrs = {
        "depth": Attr("int", doc="number of classes (a compile-time constant)"),
        "axis": Attr("int", doc="non-negative position of the new axis in y"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        idx, vals = require_inputs("OneHot", ins, 2)
        require(vals.size == 2 and vals.rank == 1,
                f"OneHot: values must be [off, on], got {vals}")
        require(a["depth"] >= 1, f"OneHot: depth must be positive, got {a['depth']}")
        require(0 <= a["axis"] <= idx.rank,
                f"OneHot: axis {a['axis']} is not in [0, {idx.rank}]")
        ax = a["axis"]
        return [TensorType(idx.shape[:ax] + (a["depth"],) + idx.shape[ax:], vals.dtype)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        idx, vals = ins[0], ins[1]
        assert idx is not None and vals is not None
        depth, ax = a["depth"], a["axis"]
        k = idx.astype(np.int64)
        k = np.where(k < 0, k + depth, k)
        classes = np.arange(depth).reshape((depth,) + (1,) * (idx.ndim - ax))
        hot = np.expand_dims(k, ax) == classes
        return [np.where(hot, vals[1], vals[0]).astype(vals.dtype)]


@register
class ReverseSequence:
    """y[.., b, .., t, ..] = x[.., b, .., lens[b] - 1 - t, ..] for t < lens[b], else
    x[.., b, .., t, ..]: the first lens[b] steps of each batch entry reversed along
    ``time_axis`` (a length outside [0, steps] is an error on every path)."""

    operands = ("x", "sequence_lens")
    moves_data = True
    quantized = qforms.on_codes
    attrs = {
        "batch_axis": Attr("int", 1, doc="axis of the batch (0 or 1)"),
        "time_axis": Attr("int", 0, doc="axis reversed (the other of 0 and 1)"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        x, lens = require_inputs("ReverseSequence", ins, 2)
        _indices("ReverseSequence", lens)
        b, t = a["batch_axis"], a["time_axis"]
        require(x.rank >= 2 and {b, t} == {0, 1},
                f"ReverseSequence: batch_axis {b} and time_axis {t} must be 0 and 1 of {x}")
        require(lens.shape == (x.shape[b],),
                f"ReverseSequence: sequence_lens {lens} needs one length per batch of {x}")
        return [moved(x, x.shape)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, lens = ins[0], ins[1]
        assert x is not None and lens is not None
        b, t = a["batch_axis"], a["time_axis"]
        steps = x.shape[t]
        if lens.size and (lens.min() < 0 or lens.max() > steps):
            raise IndexError(f"ReverseSequence: a length is outside [0, {steps}]")
        xb = np.moveaxis(x, (b, t), (0, 1))
        y = xb.copy()
        for i, n in enumerate(lens):
            y[i, :n] = xb[i, :n][::-1]
        return [np.moveaxis(y, (0, 1), (b, t))]


@register
class Col2Im:
    """y[n, c, p...] = Σ x[n, c·B + k, l] over the block offsets k (B = prod(block_shape))
    and column positions l with l_d·strides[d] − pads[d] + k_d·dilations[d] = p_d on every
    spatial axis d: the columns of an im2col put back into the image, overlaps summed."""

    operands = ("x",)
    attrs = {
        "image_shape": Attr("ints", doc="spatial shape of y"),
        "block_shape": Attr("ints", doc="spatial shape of a block"),
        "dilations": Attr("ints", doc="one per spatial axis"),
        "pads": Attr("ints", doc="begin pads of every spatial axis, then end pads"),
        "strides": Attr("ints", doc="one per spatial axis"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("Col2Im", ins, 1)
        require(x.dtype.is_float, f"Col2Im: needs a float input, got {x}")
        img, blk = a["image_shape"], a["block_shape"]
        r = len(img)
        require(x.rank == 3 and len(blk) == r and len(a["dilations"]) == r
                and len(a["strides"]) == r and len(a["pads"]) == 2 * r,
                f"Col2Im: needs x [N, C*prod(block), L] and one entry per spatial axis; "
                f"got {x}, image_shape {img}, block_shape {blk}")
        nb = int(np.prod(blk))
        require(nb >= 1 and x.shape[1] % nb == 0,
                f"Col2Im: dim 1 of {x} is not a multiple of the block size {nb}")
        require(x.shape[2] == int(np.prod(col_grid(a))),
                f"Col2Im: dim 2 of {x} must be the {list(col_grid(a))} block positions")
        return [TensorType((x.shape[0], x.shape[1] // nb, *img), x.dtype)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        img, blk, grid = a["image_shape"], a["block_shape"], col_grid(a)
        r, nb = len(img), int(np.prod(blk))
        n, c = x.shape[0], x.shape[1] // nb
        y = np.zeros((n, c, *img), np.float64)
        cols = x.reshape(n, c, nb, *grid).astype(np.float64)
        for k, kpos in enumerate(np.ndindex(*blk)):
            for lpos in np.ndindex(*grid):
                p = [lpos[d] * a["strides"][d] - a["pads"][d] + kpos[d] * a["dilations"][d]
                     for d in range(r)]
                if all(0 <= p[d] < img[d] for d in range(r)):
                    y[(slice(None), slice(None), *p)] += cols[(slice(None), slice(None), k,
                                                               *lpos)]
        return [y.astype(x.dtype)]


def col_grid(a: Attrs) -> tuple[int, ...]:
    """Block positions per spatial axis: (img + pads − dilation·(block − 1) − 1) // stride + 1."""
    img, blk, r = a["image_shape"], a["block_shape"], len(a["image_shape"])
    return tuple(
        (img[d] + a["pads"][d] + a["pads"][d + r] - a["dilations"][d] * (blk[d] - 1) - 1)
        // a["strides"][d] + 1 for d in range(r))
