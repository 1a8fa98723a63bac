"""Ops whose output extent depends on the data: NonZero, Compress, Unique, NonMaxSuppression;
and the graph rule for the values they make.

qnnc plans one static arena, so such an op's outputs have a static upper-bound shape (NonZero:
[rank, numel(x)]; NonMaxSuppression: [batches·classes·min(max_per_class, boxes), 3]; ...) and
the op has one more output, last: an i64 scalar, the true extent of the data-dependent axis
(the op's ``counted`` trait says which axis of which output). Entries past the count are
zeros. Such a value may reach only graph outputs (directly or through Identity); the
interpreter and the compiled model's run() return it cut to its count. Any other reader is
a compile error naming the node (:func:`check_counted`). See docs/architecture.md
"Data-dependent shapes".
"""

from __future__ import annotations

import numpy as np

from ir.errors import ConversionError
from ir.graph import Graph, Value
from ir.ops.common import require_inputs
from ir.ops.registry import OPS, Attr, Attrs, register, require
from ir.types import DType, TensorType

_COUNT = TensorType((), DType.i64)


def _padded(a: np.ndarray, axis: int, bound: int) -> np.ndarray:
    """``a`` extended with zeros along ``axis`` to ``bound`` entries."""
    width = [(0, 0)] * a.ndim
    width[axis] = (0, bound - a.shape[axis])
    return np.pad(a, width)


@register
class NonZero:
    """y[:, k] = the multi-index of the k-th non-zero element of x (row-major order),
    for k < count; y has the bound shape [rank(x), numel(x)]."""

    operands = ("x",)
    outputs = 2
    attrs: dict[str, Attr] = {}

    @staticmethod
    def counted(a: Attrs) -> list[int | None]:
        return [1]

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("NonZero", ins, 1)
        require(x.rank >= 1, f"NonZero: needs an input of rank 1 or more, got {x}")
        return [TensorType((x.rank, x.size), DType.i64), _COUNT]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        y = np.array(np.nonzero(x), dtype=np.int64).reshape(x.ndim, -1)
        return [_padded(y, 1, x.size), np.array(y.shape[1], np.int64)]


@register
class Compress:
    """y = the slices of x along ``axis`` (of x flattened, with ``flatten``) at the positions
    where condition is true; condition may be shorter than the axis (the rest is false).
    Bound: min(len(condition), dim) slices."""

    operands = ("x", "condition")
    outputs = 2
    moves_data = True
    attrs = {
        "axis": Attr("int", 0, doc="non-negative axis (ignored with flatten)"),
        "flatten": Attr("bool", False, doc="select elements of x flattened"),
    }

    @staticmethod
    def counted(a: Attrs) -> list[int | None]:
        return [0 if a["flatten"] else a["axis"]]

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        x, cond = require_inputs("Compress", ins, 2)
        require(cond.dtype is DType.bool and cond.rank == 1,
                f"Compress: condition must be a 1-D bool tensor, got {cond}")
        shape = (x.size,) if a["flatten"] else x.shape
        axis = 0 if a["flatten"] else a["axis"]
        require(0 <= axis < len(shape), f"Compress: axis {axis} is not in [0, {x.rank})")
        bound = min(cond.size, shape[axis])
        return [TensorType(shape[:axis] + (bound,) + shape[axis + 1:], x.dtype, x.quant),
                _COUNT]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, cond = ins[0], ins[1]
        assert x is not None and cond is not None
        axis = 0 if a["flatten"] else a["axis"]
        data = x.reshape(-1) if a["flatten"] else x
        bound = min(cond.size, data.shape[axis])
        y = np.compress(cond[:bound], data, axis=axis)
        return [_padded(y, axis, bound), np.array(y.shape[axis], np.int64)]


@register
class Unique:
    """The distinct slices of x along ``axis`` (elements of x flattened, with ``flatten``):
    y (ascending with ``sorted``, else in order of first occurrence), indices (the first
    occurrence of each in x), inverse_indices (for each slice of x, its entry in y; a static
    shape) and counts. Bound: the axis length."""

    operands = ("x",)
    outputs = 5
    attrs = {
        "sorted": Attr("bool", True, doc="y in ascending order, else in order of appearance"),
        "axis": Attr("int", 0, doc="non-negative axis (ignored with flatten)"),
        "flatten": Attr("bool", True, doc="unique elements of x flattened"),
    }

    @staticmethod
    def counted(a: Attrs) -> list[int | None]:
        return [0 if a["flatten"] else a["axis"], 0, None, 0]

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("Unique", ins, 1)
        shape = (x.size,) if a["flatten"] else x.shape
        axis = 0 if a["flatten"] else a["axis"]
        require(0 <= axis < len(shape), f"Unique: axis {axis} is not in [0, {x.rank})")
        n = (shape[axis],)
        idx = TensorType(n, DType.i64)
        return [TensorType(shape, x.dtype, x.quant), idx, idx, idx, _COUNT]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        axis = 0 if a["flatten"] else a["axis"]
        data = x.reshape(-1) if a["flatten"] else x
        n = data.shape[axis]
        _, first, inverse, counts = np.unique(data, return_index=True, return_inverse=True,
                                              return_counts=True, axis=axis)
        inverse = inverse.reshape(-1)
        if not a["sorted"]:  # renumber by first appearance
            order = np.argsort(first, kind="stable")
            rank = np.empty_like(order)
            rank[order] = np.arange(len(order))
            first, counts, inverse = first[order], counts[order], rank[inverse]
        y = np.take(data, first, axis=axis)
        as64 = [np.asarray(v, np.int64) for v in (first, inverse, counts)]
        return [_padded(y, axis, n), _padded(as64[0], 0, n), as64[1], _padded(as64[2], 0, n),
                np.array(len(first), np.int64)]


@register
class NonMaxSuppression:
    """y[k] = (batch, class, box) of the k-th box kept: per batch and class, boxes with a
    score above ``score_threshold`` in descending score order (ties: lower index first), each
    kept unless its IoU with a box already kept exceeds ``iou_threshold``, at most
    ``max_output_boxes_per_class``. IoU is computed in f32 as ONNX's reference does (a pair
    with no overlap or no area never suppresses). Bound: batches·classes·min(max, boxes)."""

    operands = ("boxes", "scores")
    outputs = 2
    attrs = {
        "max_output_boxes_per_class": Attr("int", 0, doc="boxes kept per batch and class"),
        "iou_threshold": Attr("float", 0.0, doc="suppress above this IoU"),
        "score_threshold": Attr("float", float("-inf"), doc="keep only scores above this"),
        "center_point_box": Attr("int", 0, doc="0: [y1, x1, y2, x2]; 1: [xc, yc, w, h]"),
    }

    @staticmethod
    def counted(a: Attrs) -> list[int | None]:
        return [0]

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        boxes, scores = require_inputs("NonMaxSuppression", ins, 2)
        require(boxes.dtype is DType.f32 and scores.dtype is DType.f32,
                f"NonMaxSuppression: boxes and scores must be f32, got {boxes}, {scores}")
        require(boxes.rank == 3 and boxes.shape[2] == 4 and scores.rank == 3
                and scores.shape[0] == boxes.shape[0] and scores.shape[2] == boxes.shape[1],
                f"NonMaxSuppression: needs boxes [B, N, 4] and scores [B, C, N], got "
                f"{boxes}, {scores}")
        require(a["center_point_box"] in (0, 1), "NonMaxSuppression: center_point_box is 0 or 1")
        return [TensorType((nms_bound(boxes.shape, scores.shape, a), 3), DType.i64), _COUNT]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        boxes, scores = ins[0], ins[1]
        assert boxes is not None and scores is not None
        keep_max = max(a["max_output_boxes_per_class"], 0)
        thr = np.float32(a["score_threshold"])
        rows = []
        for b in range(boxes.shape[0]):
            for c in range(scores.shape[1]):
                s = scores[b, c]
                order = sorted((i for i in range(len(s)) if s[i] > thr),
                               key=lambda i: (-s[i], i))
                kept: list[int] = []
                for i in order:
                    if len(kept) >= keep_max:
                        break
                    if not any(_suppresses(boxes[b, i], boxes[b, j], a) for j in kept):
                        kept.append(i)
                rows += [(b, c, i) for i in kept]
        bound = nms_bound(boxes.shape, scores.shape, a)
        y = np.zeros((bound, 3), np.int64)
        if rows:
            y[:len(rows)] = rows
        return [y, np.array(len(rows), np.int64)]


def nms_bound(boxes: tuple[int, ...], scores: tuple[int, ...], a: Attrs) -> int:
    return boxes[0] * scores[1] * min(max(a["max_output_boxes_per_class"], 0), boxes[1])


def box_corners(box: np.ndarray, center: int) -> tuple[np.float32, ...]:
    """(x_min, x_max, y_min, y_max) of a box in f32."""
    f = np.float32
    if center:
        xc, yc, w, h = (f(v) for v in box)
        return xc - w / f(2), xc + w / f(2), yc - h / f(2), yc + h / f(2)
    y1, x1, y2, x2 = (f(v) for v in box)
    return min(x1, x2), max(x1, x2), min(y1, y2), max(y1, y2)


def _suppresses(p: np.ndarray, q: np.ndarray, a: Attrs) -> bool:
    ax0, ax1, ay0, ay1 = box_corners(p, a["center_point_box"])
    bx0, bx1, by0, by1 = box_corners(q, a["center_point_box"])
    ix = min(ax1, bx1) - max(ax0, bx0)
    iy = min(ay1, by1) - max(ay0, by0)
    if ix <= 0 or iy <= 0:
        return False
    inter = ix * iy
    area_a, area_b = (ax1 - ax0) * (ay1 - ay0), (bx1 - bx0) * (by1 - by0)
    union = area_a + area_b - inter
    if area_a <= 0 or area_b <= 0 or union <= 0:
        return False
    return bool(inter / union > np.float32(a["iou_threshold"]))


# -- the graph rule ---------------------------------------------------------------------------


def counted_outputs(graph: Graph) -> dict[int, tuple[Value, int]]:
    """For each graph output (by position) whose extent is data-dependent: (the count value,
    the axis it gives)."""
    made: dict[int, tuple[Value, int]] = {}
    for node in graph.nodes:
        counted = OPS[node.op].counted
        if counted is not None:
            for v, axis in zip(node.outputs, counted(node.attrs)):
                if axis is not None:
                    made[id(v)] = (node.outputs[-1], axis)
        elif node.op == "Identity" and node.inputs and id(node.inputs[0]) in made:
            made[id(node.outputs[0])] = made[id(node.inputs[0])]
    return {k: made[id(v)] for k, v in enumerate(graph.outputs) if id(v) in made}


def check_counted(graph: Graph) -> None:
    """Raise ConversionError naming the first node that reads a data-dependent value and is
    neither an Identity nor the end of the graph (the rule in the module docstring)."""
    dynamic: dict[int, str] = {}
    for node in graph.nodes:
        for v in node.inputs:
            if v is not None and id(v) in dynamic and node.op != "Identity":
                raise ConversionError(
                    f"node {node.name!r} ({node.op}) reads %{v.name}, {dynamic[id(v)]}; such "
                    "a value can only be a graph output (see 'Data-dependent shapes' in "
                    "docs/architecture.md)")
        counted = OPS[node.op].counted
        if counted is not None:
            what = f"whose extent is only known at run time (from {node.op} {node.name!r})"
            for v, axis in zip(node.outputs, counted(node.attrs)):
                if axis is not None:
                    dynamic[id(v)] = what
        elif node.op == "Identity" and node.inputs and id(node.inputs[0]) in dynamic:
            dynamic[id(node.outputs[0])] = dynamic[id(node.inputs[0])]


def trim(a: np.ndarray, axis: int, count: int) -> np.ndarray:
    """``a`` cut to its first ``count`` entries along ``axis``."""
    return np.take(a, np.arange(min(int(count), a.shape[axis])), axis=axis)
