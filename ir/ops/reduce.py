"""Reductions and ordering ops: ReduceX, ArgMax/ArgMin, CumSum, TopK.

Every ReduceX op takes its reduced axes as an explicit, sorted, non-negative list: the frontend
resolves ONNX's "no axes means all axes" and negative axes, so a pass or a code generator never
has to. ``axes = []`` reduces over no axis, i.e. each output element is the reduction of a
one-element set (ReduceL2 gives |x|, ReduceLogSum gives log x): that is what ONNX's function
bodies and its reference give for ``noop_with_empty_axes``.

Reducing an empty set gives the reduction's identity (0 for sums, 1 for products, -inf or the
type's minimum for max, -inf for the log-sums), as the ONNX spec says; ReduceMean of an empty
set is 0/0 = NaN (the spec leaves it undefined).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ir.ops import cost
from ir.ops.common import norm_axis, require_inputs
from ir.ops.registry import Attr, Attrs, OpError, register, require
from ir.types import DType, TensorType

Axes = tuple[int, ...]
ReduceFn = Callable[[np.ndarray, Axes], np.ndarray]


def _reduced_shape(shape: tuple[int, ...], axes: Axes, keepdims: bool) -> tuple[int, ...]:
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _check_axes(op: str, axes: list[int], rank: int) -> Axes:
    """Axes must already be canonical: sorted, unique, in [0, rank)."""
    for ax in axes:
        require(0 <= ax < rank, f"{op}: axis {ax} is out of range for rank {rank}")
    require(list(axes) == sorted(set(axes)), f"{op}: axes {axes} must be sorted and unique")
    return tuple(axes)


def _accumulator(x: np.ndarray) -> np.dtype:
    """Half floats accumulate in f32 (as onnxruntime does); everything else in its own type."""
    return np.dtype(np.float32) if x.dtype == np.float16 else x.dtype


def _as_float(x: np.ndarray) -> np.ndarray:
    """Float view for the log/sqrt reductions: ints go through f64, f16 through f32."""
    if x.dtype.kind in "iub":
        return x.astype(np.float64)
    return x.astype(_accumulator(x), copy=False)


def _sum(x: np.ndarray, axes: Axes) -> np.ndarray:
    # np.add.reduce is what np.sum calls, without its Python wrapper's cost
    return np.add.reduce(x, axis=axes, keepdims=True, dtype=_accumulator(x))


def _mean(x: np.ndarray, axes: Axes) -> np.ndarray:
    n = math.prod(x.shape[a] for a in axes)
    with np.errstate(invalid="ignore", divide="ignore"):
        if x.dtype.kind in "iu":
            # Integer mean truncates toward zero, like numpy's integer mean.
            return np.trunc(np.sum(x, axis=axes, keepdims=True, dtype=np.float64) / n)
        return _sum(x, axes) / n


def _max(x: np.ndarray, axes: Axes) -> np.ndarray:
    return np.maximum.reduce(x, axis=axes, keepdims=True, initial=_lowest(x.dtype))


def _min(x: np.ndarray, axes: Axes) -> np.ndarray:
    return np.minimum.reduce(x, axis=axes, keepdims=True, initial=_highest(x.dtype))


def _lowest(dt: np.dtype) -> object:
    if dt.kind == "b":
        return False
    return np.iinfo(dt).min if dt.kind in "iu" else -np.inf


def _highest(dt: np.dtype) -> object:
    if dt.kind == "b":
        return True
    return np.iinfo(dt).max if dt.kind in "iu" else np.inf


def _prod(x: np.ndarray, axes: Axes) -> np.ndarray:
    return np.prod(x, axis=axes, keepdims=True, dtype=_accumulator(x))


def _l1(x: np.ndarray, axes: Axes) -> np.ndarray:
    return _sum(np.abs(x), axes)


def _l2(x: np.ndarray, axes: Axes) -> np.ndarray:
    f = _as_float(x)
    return np.sqrt(np.sum(f * f, axis=axes, keepdims=True))


def _sum_square(x: np.ndarray, axes: Axes) -> np.ndarray:
    return _sum(x * x, axes)


def _log_sum(x: np.ndarray, axes: Axes) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(np.sum(_as_float(x), axis=axes, keepdims=True))


def _log_sum_exp(x: np.ndarray, axes: Axes) -> np.ndarray:
    """log Σ exp(x), shifted by the maximum so that large inputs do not overflow."""
    f = _as_float(x)
    m = np.maximum.reduce(f, axis=axes, keepdims=True, initial=-np.inf)
    m = np.where(np.isfinite(m), m, 0).astype(f.dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(np.sum(np.exp(f - m), axis=axes, keepdims=True)) + m


def _reduction(name: str, fn: ReduceFn, doc: str, dtypes: str = "numeric") -> None:
    """Register ReduceX: ``y = fn(x over axes)``, same element type as ``x``.

    ``dtypes`` is "numeric" (no bool) or "any" (bool too: ReduceMax/ReduceMin).
    """

    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs(name, ins, 1)
        if dtypes == "numeric" and x.dtype is DType.bool:
            raise OpError(f"{name}: needs a numeric input, got bool")
        axes = _check_axes(name, a["axes"], x.rank)
        return [TensorType(_reduced_shape(x.shape, axes, a["keepdims"]), x.dtype)]

    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        axes = tuple(a["axes"])
        y = np.asarray(fn(x, axes))
        if not a["keepdims"]:
            y = y.reshape(_reduced_shape(x.shape, axes, False))
        return [y.astype(x.dtype, copy=False)]

    cls = type(name, (), {
        "__doc__": doc,
        "name": name,
        "operands": ("x",),
        "attrs": {
            "axes": Attr("ints", doc="reduced axes: sorted, unique, non-negative"),
            "keepdims": Attr("bool", True, "keep reduced axes as size-1 dimensions"),
        },
        "infer": staticmethod(infer),
        "compute": staticmethod(compute),
        "flops": cost.reduction,
    })
    register(cls)


_reduction("ReduceSum", _sum, "y = Σ x over axes (0 for an empty set)")
_reduction("ReduceMean", _mean, "y = Σ x / n over axes (ints truncate toward zero)")
_reduction("ReduceMax", _max, "y = max x over axes (-inf / type minimum / false if empty)", "any")
_reduction("ReduceMin", _min, "y = min x over axes (+inf / type maximum / true if empty)", "any")
_reduction("ReduceProd", _prod, "y = Π x over axes (1 for an empty set)")
_reduction("ReduceL1", _l1, "y = Σ |x| over axes")
_reduction("ReduceL2", _l2, "y = sqrt(Σ x²) over axes")
_reduction("ReduceSumSquare", _sum_square, "y = Σ x² over axes")
_reduction("ReduceLogSum", _log_sum, "y = log(Σ x) over axes (-inf for an empty set)")
_reduction("ReduceLogSumExp", _log_sum_exp, "y = log(Σ exp x) over axes, computed max-shifted")


def _arg_infer(op: str, ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
    (x,) = require_inputs(op, ins, 1)
    require(x.rank >= 1, f"{op}: needs an input of rank >= 1")
    ax = a["axis"]
    require(0 <= ax < x.rank, f"{op}: axis {ax} is out of range for rank {x.rank}")
    require(x.shape[ax] > 0, f"{op}: axis {ax} is empty; there is no index to return")
    return [TensorType(_reduced_shape(x.shape, (ax,), a["keepdims"]), DType.i64)]


def _arg_compute(x: np.ndarray, a: Attrs, pick: Callable[..., np.ndarray]) -> np.ndarray:
    ax = a["axis"]
    if a["select_last_index"]:
        # The first hit in the reversed axis is the last hit in the original.
        idx = x.shape[ax] - 1 - pick(np.flip(x, ax), axis=ax, keepdims=True)
    else:
        idx = pick(x, axis=ax, keepdims=True)
    if not a["keepdims"]:
        idx = np.squeeze(idx, axis=ax)
    return idx.astype(np.int64)


_ARG_ATTRS = {
    "axis": Attr("int", doc="non-negative axis"),
    "keepdims": Attr("bool", True),
    "select_last_index": Attr("bool", False, "on ties, the last index instead of the first"),
}


@register
class ArgMax:
    """y = index of the maximum of x along axis (first one on ties unless select_last_index)"""

    operands = ("x",)
    flops = cost.reduction
    attrs = _ARG_ATTRS

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        return _arg_infer("ArgMax", ins, a)

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        assert ins[0] is not None
        return [_arg_compute(ins[0], a, np.argmax)]


@register
class ArgMin:
    """y = index of the minimum of x along axis (first one on ties unless select_last_index)"""

    operands = ("x",)
    flops = cost.reduction
    attrs = _ARG_ATTRS

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        return _arg_infer("ArgMin", ins, a)

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        assert ins[0] is not None
        return [_arg_compute(ins[0], a, np.argmin)]


@register
class CumSum:
    """y[..., i, ...] = Σ x[..., j, ...] for j <= i along axis (j < i if exclusive; j >= i, or
    j > i, if reverse). Integers accumulate in their own type, wrapping like the C they become."""

    operands = ("x",)
    flops = cost.reduction
    attrs = {
        "axis": Attr("int", doc="non-negative axis"),
        "exclusive": Attr("bool", False, "leave out the element itself"),
        "reverse": Attr("bool", False, "sum from the end of the axis"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("CumSum", ins, 1)
        require(x.dtype is not DType.bool, "CumSum: needs a numeric input, got bool")
        require(x.rank >= 1, "CumSum: needs an input of rank >= 1")
        require(0 <= a["axis"] < x.rank, f"CumSum: axis {a['axis']} is out of range")
        return [TensorType(x.shape, x.dtype)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        ax = a["axis"]
        if a["reverse"]:
            x = np.flip(x, ax)
        y = np.cumsum(x, axis=ax, dtype=x.dtype)
        if a["exclusive"]:
            y = y - x  # exact for ints (same wrap-around); float error is one rounding
        if a["reverse"]:
            y = np.flip(y, ax)
        return [np.ascontiguousarray(y)]


@register
class TopK:
    """(values, indices) = the k largest (or smallest) elements of x along axis, in order;
    equal values come lowest index first. Indices are i64."""

    operands = ("x",)
    flops = cost.reduction
    outputs = 2
    attrs = {
        "k": Attr("int", doc="how many elements to keep, 0 <= k <= x.shape[axis]"),
        "axis": Attr("int", doc="non-negative axis"),
        "largest": Attr("bool", True, "the k largest (else the k smallest)"),
        "sorted": Attr("bool", True, "kept for ONNX fidelity; results are always sorted"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("TopK", ins, 1)
        require(x.rank >= 1, "TopK: needs an input of rank >= 1")
        ax = a["axis"]
        require(0 <= ax < x.rank, f"TopK: axis {ax} is out of range for rank {x.rank}")
        k = a["k"]
        require(0 <= k <= x.shape[ax], f"TopK: k={k} is outside [0, {x.shape[ax]}]")
        shape = tuple(k if i == ax else d for i, d in enumerate(x.shape))
        return [TensorType(shape, x.dtype), TensorType(shape, DType.i64)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        ax, k = a["axis"], a["k"]
        n = x.shape[ax]
        if a["largest"]:
            # A stable ascending sort of the reversed axis, read backwards, is descending
            # with ties in ascending original index (works for unsigned and bool too).
            order = np.argsort(np.flip(x, ax), axis=ax, kind="stable")
            order = n - 1 - np.flip(order, ax)
        else:
            order = np.argsort(x, axis=ax, kind="stable")
        idx = np.take(order, np.arange(k), axis=ax)
        return [np.take_along_axis(x, idx, axis=ax), idx.astype(np.int64)]


def canonical_axes(op: str, axes: list[int], rank: int) -> list[int]:
    """Sorted, unique, non-negative axes (for converters and passes building ReduceX)."""
    out = sorted({norm_axis(op, ax, rank) for ax in axes})
    if len(out) != len(axes):
        raise OpError(f"{op}: axes {axes} name an axis twice")
    return out
