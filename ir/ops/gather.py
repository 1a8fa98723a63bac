"""Ops that select or pad data: Slice, Gather, GatherElements, Pad.

Slice and Pad carry canonical, fully explicit attributes (one entry per axis, bounds already
clamped), so a code generator emits plain loops without re-deriving ONNX's clamping rules.
Gather's indices are a real tensor operand: they may be computed at run time.
"""

from __future__ import annotations

import math

import numpy as np

from ir import qforms
from ir.ops.common import norm_axis, require_inputs, same_dtype
from ir.ops.indexing import index_problem
from ir.ops.registry import Attr, Attrs, OpError, register, require
from ir.ops.shape import moved
from ir.types import DType, TensorType

_INDEX_DTYPES = (DType.i32, DType.i64)
PAD_MODES = ("constant", "reflect", "edge", "wrap")


def canonical_slice(
    shape: tuple[int, ...],
    starts: list[int],
    ends: list[int],
    axes: list[int] | None = None,
    steps: list[int] | None = None,
) -> tuple[list[int], list[int], list[int]]:
    """ONNX Slice operands → one (start, end, step) per axis, clamped as ONNX specifies.

    Negative bounds count from the end; then for a positive step start and end are clamped
    to [0, dim], for a negative step start to [0, dim-1] and end to [-1, dim-1], where an
    end of -1 means "up to and including index 0".
    """
    rank = len(shape)
    axes = list(range(len(starts))) if axes is None else list(axes)
    steps = [1] * len(starts) if steps is None else list(steps)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise OpError(f"Slice: starts {starts}, ends {ends}, axes {axes} and steps {steps} "
                      "must have the same length")
    out_s, out_e, out_st = [0] * rank, list(shape), [1] * rank
    seen: set[int] = set()
    for s, e, ax, st in zip(starts, ends, axes, steps):
        ax = norm_axis("Slice", ax, rank)
        if not 0 <= ax < rank:  # norm_axis lets axis 0 through for a scalar
            raise OpError(f"Slice: axis {ax} is out of range for rank {rank}")
        if ax in seen:
            raise OpError(f"Slice: axis {ax} is given twice")
        seen.add(ax)
        if st == 0:
            raise OpError("Slice: steps must not be 0")
        dim = shape[ax]
        s = s + dim if s < 0 else s
        e = e + dim if e < 0 else e
        if dim == 0:
            s, e = 0, 0
        elif st > 0:
            s, e = min(max(s, 0), dim), min(max(e, 0), dim)
        else:
            s, e = min(max(s, 0), dim - 1), min(max(e, -1), dim - 1)
        out_s[ax], out_e[ax], out_st[ax] = s, e, st
    return out_s, out_e, out_st


def _slice_len(start: int, end: int, step: int) -> int:
    return max(0, math.ceil((end - start) / step))


@register
class Slice:
    """y = x[starts[0]:ends[0]:steps[0], ..., starts[r-1]:ends[r-1]:steps[r-1]]

    Bounds are canonical (see ``canonical_slice``): y.shape[k] = max(0, ceil((e-s)/step));
    with a negative step, end -1 means the slice runs through index 0.
    """

    operands = ("x",)
    moves_data = True
    quantized = qforms.on_codes
    attrs = {
        "starts": Attr("ints", doc="one clamped start per axis"),
        "ends": Attr("ints", doc="one clamped end per axis (-1: through 0, negative steps)"),
        "steps": Attr("ints", doc="one non-zero step per axis"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("Slice", ins, 1)
        starts, ends, steps = a["starts"], a["ends"], a["steps"]
        require(len(starts) == len(ends) == len(steps) == x.rank,
                f"Slice: needs one start, end and step per axis of {x}")
        shape = []
        for dim, s, e, st in zip(x.shape, starts, ends, steps):
            ok = st > 0 and 0 <= s <= dim and 0 <= e <= dim
            ok = ok or (st < 0 and 0 <= s <= max(dim - 1, 0) and -1 <= e <= max(dim - 1, 0))
            require(ok, f"Slice: bounds {s}:{e}:{st} are not canonical for a dim of {dim}")
            shape.append(_slice_len(s, e, st))
        return [moved(x, shape)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        index = tuple(
            slice(s, None if e < 0 else e, st)
            for s, e, st in zip(a["starts"], a["ends"], a["steps"])
        )
        return [x[index].copy()]


@register
class Gather:
    """y[i..., j..., k...] = x[i..., indices[j...], k...] along ``axis``; negative indices
    count from the end of the axis."""

    operands = ("data", "indices")
    moves_data = True
    quantized = qforms.on_codes
    attrs = {"axis": Attr("int", doc="non-negative axis of x")}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        x, idx = require_inputs("Gather", ins, 2)
        axis = a["axis"]
        require(0 <= axis < x.rank, f"Gather: axis {axis} is not in [0, {x.rank})")
        require(idx.dtype in _INDEX_DTYPES, f"Gather: indices must be i32 or i64, got {idx}")
        return [moved(x, x.shape[:axis] + idx.shape + x.shape[axis + 1:])]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, idx = ins[0], ins[1]
        assert x is not None and idx is not None
        bad = index_problem(idx, x.shape[a["axis"]])
        if bad:
            raise IndexError(f"Gather: {bad}")
        return [x.take(idx, axis=a["axis"])]  # np.take's wrapper costs more than the read

    @staticmethod
    def domain(consts: list[np.ndarray | None], types: list[TensorType | None], a: Attrs
               ) -> str | None:
        x = types[0]
        assert x is not None
        return index_problem(consts[1], x.shape[a["axis"]])


@register
class GatherElements:
    """y[i][j][k] = x[indices[i][j][k]][j][k] (for axis 0; likewise for other axes).

    y has the shape of ``indices``, whose dims other than ``axis`` are at most x's.
    """

    operands = ("data", "indices")
    moves_data = True
    attrs = {"axis": Attr("int", doc="non-negative axis of x")}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        x, idx = require_inputs("GatherElements", ins, 2)
        axis = a["axis"]
        require(0 <= axis < x.rank, f"GatherElements: axis {axis} is not in [0, {x.rank})")
        require(idx.dtype in _INDEX_DTYPES,
                f"GatherElements: indices must be i32 or i64, got {idx}")
        require(idx.rank == x.rank and all(
            i <= d for k, (i, d) in enumerate(zip(idx.shape, x.shape)) if k != axis),
            f"GatherElements: indices {idx} do not fit data {x} outside axis {axis}")
        return [moved(x, idx.shape)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, idx = ins[0], ins[1]
        assert x is not None and idx is not None
        axis = a["axis"]
        dim = x.shape[axis]
        bad = index_problem(idx, dim)
        if bad:
            raise IndexError(f"GatherElements: {bad}")
        window = tuple(
            slice(None) if k == axis else slice(0, n) for k, n in enumerate(idx.shape)
        )
        wrapped = np.where(idx < 0, idx + dim, idx)
        return [np.take_along_axis(x[window], wrapped, axis=axis)]

    @staticmethod
    def domain(consts: list[np.ndarray | None], types: list[TensorType | None], a: Attrs
               ) -> str | None:
        x = types[0]
        assert x is not None
        return index_problem(consts[1], x.shape[a["axis"]])


def _reflect(x: np.ndarray, width: list[tuple[int, int]]) -> np.ndarray:
    """``np.pad(x, width, mode="reflect")`` for pads smaller than their axis, as one
    concatenation per padded axis (np.pad's general path costs tens of microseconds, a lot
    for the short frames of a streaming model's every call)."""
    y = x
    for axis, (b, e) in enumerate(width):
        if b == 0 and e == 0:
            continue
        n = y.shape[axis]

        def part(lo: int, hi: int, axis: int = axis, y: np.ndarray = y) -> np.ndarray:
            at = [slice(None)] * y.ndim
            at[axis] = slice(lo, hi)
            return np.flip(y[tuple(at)], axis)

        y = np.concatenate([part(1, b + 1), y, part(n - 1 - e, n - 1)], axis)
    return y.copy() if y is x else y


@register
class Pad:
    """y = x cropped by the negative and padded by the positive entries of ``pads``
    ([begin_0, ..., begin_{r-1}, end_0, ..., end_{r-1}]).

    New cells hold ``value`` (mode constant; a scalar second input overrides it when the pad
    value is only known at run time), the mirror image without the edge (reflect), the edge
    value (edge), or the opposite side's cells (wrap).
    """

    operands = ("x", "value?")
    moves_data = True
    quantized = qforms.on_codes
    attrs = {
        "pads": Attr("ints", doc="begin pads of every axis, then end pads; negative crops"),
        "mode": Attr("str", "constant", doc="constant, reflect, edge or wrap"),
        "value": Attr("float", 0.0, doc="fill value of mode constant"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("Pad", ins, 1)
        pads, mode = a["pads"], a["mode"]
        require(mode in PAD_MODES, f"Pad: mode {mode!r} is not one of {list(PAD_MODES)}")
        require(len(pads) == 2 * x.rank, f"Pad: needs 2 pads per axis of {x}, got {pads}")
        value = ins[1] if len(ins) > 1 else None
        if value is not None:
            same_dtype("Pad", [x, value])
            require(value.size == 1 and mode == "constant",
                    f"Pad: a pad value input must be one element, with mode constant; got "
                    f"{value} with mode {mode!r}")
        shape = []
        for k, d in enumerate(x.shape):
            b, e = pads[k], pads[k + x.rank]
            n = d + b + e
            require(n >= 0, f"Pad: pads {b}, {e} crop more than dim {k} ({d}) of {x}")
            kept = d + min(b, 0) + min(e, 0)
            require(mode == "constant" or kept > 0 or (b <= 0 and e <= 0),
                    f"Pad: mode {mode!r} cannot pad axis {k} of {x}: nothing left to copy")
            require(mode != "reflect" or max(b, e) < max(kept, 1),
                    f"Pad: reflect pads {b}, {e} must be smaller than dim {k} ({kept})")
            shape.append(n)
        return [moved(x, shape)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        pads, mode = a["pads"], a["mode"]
        r = x.ndim
        crop = tuple(
            slice(max(-pads[k], 0), x.shape[k] - max(-pads[k + r], 0)) for k in range(r)
        )
        width = [(max(pads[k], 0), max(pads[k + r], 0)) for k in range(r)]
        kept = x[crop]
        if mode == "constant":
            v = ins[1] if len(ins) > 1 and ins[1] is not None else a["value"]
            fill = np.asarray(v).reshape(()).astype(x.dtype)
            out = np.full([d + b + e for d, (b, e) in zip(kept.shape, width)], fill, x.dtype)
            out[tuple(slice(b, b + d) for d, (b, _) in zip(kept.shape, width))] = kept
            return [out]
        if mode == "reflect":  # infer keeps every pad below its axis: one mirror image each
            return [_reflect(kept, width)]
        return [np.pad(kept, width, mode=mode)]
