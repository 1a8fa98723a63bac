"""Ops that only move or re-view data: reshape, transpose, expand, tile, concat, split.

Every shape-deciding operand is a canonical attribute: Reshape carries the final shape (no 0,
no -1), Transpose an explicit permutation, Expand the final output shape, Split the size of
every piece. The frontend resolves ONNX's conveniences (inferred dims, default permutations,
squeeze/unsqueeze/flatten, which are all reshapes here) so code generators see one form.
"""

from __future__ import annotations

import numpy as np

from ir import qforms
from ir.ops.common import broadcast_shapes, require_inputs, same_dtype
from ir.ops.registry import Attr, Attrs, register, require
from ir.types import QuantParams, TensorType


def moved(x: TensorType, shape: tuple[int, ...] | list[int]) -> TensorType:
    """``x``'s element type at a new shape.

    Per-tensor quantisation survives any data movement; per-channel parameters name an axis
    that a re-view may move, so they are dropped here and re-derived by the quantiser.
    """
    quant = x.quant if x.quant is not None and not x.quant.per_channel else None
    return TensorType(tuple(int(d) for d in shape), x.dtype, quant)


def shared_quant(types: list[TensorType]) -> QuantParams | None:
    """The one per-tensor quantisation all ``types`` share, else None."""
    qs = {t.quant for t in types}
    if len(qs) == 1:
        (q,) = qs
        return q if q is not None and not q.per_channel else None
    return None


@register
class Identity:
    """y = x"""

    operands = ("x",)
    moves_data = True
    rearranges = True
    quantized = qforms.on_codes
    attrs: dict = {}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("Identity", ins, 1)
        return [x]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        assert ins[0] is not None
        return [ins[0].copy()]


@register
class Reshape:
    """y = x viewed with shape ``shape`` (row-major order kept; same number of elements).

    ``shape`` is final: the frontend has already replaced ONNX's 0 (copy a dim) and -1
    (infer a dim), so a reshape is a pure re-view that codegen can alias.
    """

    operands = ("x",)
    moves_data = True
    rearranges = True
    stacks = "view"
    quantized = qforms.on_codes
    attrs = {"shape": Attr("ints", doc="the output shape, every dim explicit")}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("Reshape", ins, 1)
        shape = list(a["shape"])
        require(all(d >= 0 for d in shape), f"Reshape: shape {shape} must be explicit (>= 0)")
        n = int(np.prod(shape, dtype=np.int64))
        require(n == x.size, f"Reshape: cannot view {x} ({x.size} elements) as {shape} "
                             f"({n} elements)")
        return [moved(x, shape)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        assert ins[0] is not None
        return [ins[0].reshape(a["shape"])]


@register
class Transpose:
    """y[i_perm[0], ..., i_perm[r-1]] = x[i_0, ..., i_{r-1}], i.e. y.shape[k] = x.shape[perm[k]]"""

    operands = ("x",)
    moves_data = True
    rearranges = True
    quantized = qforms.on_codes
    attrs = {"perm": Attr("ints", doc="a permutation of 0..rank-1")}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("Transpose", ins, 1)
        perm = list(a["perm"])
        require(sorted(perm) == list(range(x.rank)),
                f"Transpose: perm {perm} is not a permutation of the {x.rank} axes of {x}")
        return [moved(x, [x.shape[p] for p in perm])]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        assert ins[0] is not None
        return [ins[0].transpose(a["perm"]).copy()]


@register
class Expand:
    """y = x broadcast (numpy rules) to ``shape``, the final output shape."""

    operands = ("x",)
    moves_data = True
    quantized = qforms.on_codes
    attrs = {"shape": Attr("ints", doc="the output shape; x must broadcast to it")}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("Expand", ins, 1)
        shape = tuple(a["shape"])
        require(broadcast_shapes("Expand", x.shape, shape) == shape,
                f"Expand: {x} does not broadcast to {list(shape)}")
        return [moved(x, shape)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        assert ins[0] is not None
        return [np.broadcast_to(ins[0], tuple(a["shape"])).copy()]


@register
class Tile:
    """y = x repeated ``repeats[k]`` times along each axis k (y.shape[k] = x.shape[k]*repeats[k])"""

    operands = ("x",)
    moves_data = True
    quantized = qforms.on_codes
    attrs = {"repeats": Attr("ints", doc="one non-negative count per axis")}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("Tile", ins, 1)
        reps = list(a["repeats"])
        require(len(reps) == x.rank and all(r >= 0 for r in reps),
                f"Tile: repeats {reps} needs one non-negative count per axis of {x}")
        return [moved(x, [d * r for d, r in zip(x.shape, reps)])]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        assert ins[0] is not None
        return [np.tile(ins[0], a["repeats"])]


@register
class Concat:
    """y = the inputs joined along ``axis`` (all other dims equal)."""

    operands = ("values*",)
    moves_data = True
    quantized = qforms.on_codes
    attrs = {"axis": Attr("int", doc="non-negative axis")}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        xs = require_inputs("Concat", ins, len(ins))
        dt = same_dtype("Concat", xs)
        rank = xs[0].rank
        axis = a["axis"]
        require(0 <= axis < rank, f"Concat: axis {axis} is not in [0, {rank})")
        for t in xs:
            same = t.rank == rank and all(
                d == e for k, (d, e) in enumerate(zip(t.shape, xs[0].shape)) if k != axis
            )
            require(same, f"Concat: {t} and {xs[0]} differ outside axis {axis}")
        require(len({t.quant for t in xs}) == 1,
                f"Concat: inputs must share one quantisation, got "
                f"{sorted({str(t.quant) for t in xs})}")
        shape = list(xs[0].shape)
        shape[axis] = sum(t.shape[axis] for t in xs)
        return [TensorType(tuple(shape), dt, shared_quant(xs))]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        arrays = [x for x in ins if x is not None]
        return [np.concatenate(arrays, axis=a["axis"])]


@register
class Split:
    """outputs[i] = x[..., o_i : o_i + split[i], ...] along ``axis``, o_i = sum(split[:i])"""

    operands = ("x",)
    moves_data = True
    quantized = qforms.on_codes
    outputs = -1  # one per entry of ``split``
    attrs = {
        "axis": Attr("int", doc="non-negative axis"),
        "split": Attr("ints", doc="the size of every output along axis; sums to the dim"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("Split", ins, 1)
        axis, split = a["axis"], list(a["split"])
        require(0 <= axis < x.rank, f"Split: axis {axis} is not in [0, {x.rank})")
        require(len(split) > 0 and all(s >= 0 for s in split)
                and sum(split) == x.shape[axis],
                f"Split: sizes {split} do not add up to dim {x.shape[axis]} of {x}")
        outs = []
        for s in split:
            shape = list(x.shape)
            shape[axis] = s
            outs.append(moved(x, shape))
        return outs

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        cuts = np.cumsum(a["split"])[:-1]
        return [p.copy() for p in np.split(x, cuts, axis=a["axis"])]

