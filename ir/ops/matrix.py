"""Ops over the last two axes as matrices (Trilu, Det) and the running product (CumProd).

ONNX's EyeLike never reaches the IR: its output depends only on its input's static shape, so
the frontend folds it to a constant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ir.ops import cost
from ir.ops.common import reject_quant, require_inputs
from ir.ops.registry import Attr, Attrs, register, require
from ir.types import DType, TensorType

if TYPE_CHECKING:
    from ir.graph import Node


@register
class Trilu:
    """upper: y[..., i, j] = x[..., i, j] if j - i >= k else 0;
    lower: y[..., i, j] = x[..., i, j] if j - i <= k else 0."""

    operands = ("x",)
    moves_data = True
    attrs = {
        "upper": Attr("bool", True, "keep the upper triangle (else the lower)"),
        "k": Attr("int", 0, "the diagonal that bounds the kept part (0 = the main one)"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("Trilu", ins, 1)
        reject_quant("Trilu", [x])
        require(x.rank >= 2, f"Trilu: needs an input of rank >= 2, got rank {x.rank}")
        return [TensorType(x.shape, x.dtype)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        return [np.triu(x, a["k"]) if a["upper"] else np.tril(x, a["k"])]


@register
class CumProd:
    """y[..., i, ...] = prod x[..., j, ...] for j <= i along axis (j < i if exclusive; j >= i,
    or j > i, if reverse); an empty product is 1. Integers multiply in their own type,
    wrapping like the C they become."""

    operands = ("x",)
    flops = cost.reduction
    attrs = {
        "axis": Attr("int", doc="non-negative axis"),
        "exclusive": Attr("bool", False, "leave out the element itself"),
        "reverse": Attr("bool", False, "multiply from the end of the axis"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("CumProd", ins, 1)
        reject_quant("CumProd", [x])
        require(x.dtype is not DType.bool, "CumProd: needs a numeric input, got bool")
        require(x.rank >= 1, "CumProd: needs an input of rank >= 1")
        require(0 <= a["axis"] < x.rank, f"CumProd: axis {a['axis']} is out of range")
        return [TensorType(x.shape, x.dtype)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        ax = a["axis"]
        if a["reverse"]:
            x = np.flip(x, ax)
        if a["exclusive"]:  # shift by one along the axis, a 1 first: no division
            ones = np.ones_like(np.take(x, [0], axis=ax))
            x = np.concatenate([ones, np.take(x, np.arange(x.shape[ax] - 1), axis=ax)], ax)
        with np.errstate(all="ignore"):
            y = np.cumprod(x, axis=ax, dtype=x.dtype)
        if a["reverse"]:
            y = np.flip(y, ax)
        return [np.ascontiguousarray(y)]


def _det_flops(node: Node) -> tuple[int, int]:
    """Gaussian elimination: about 2 n^3 / 3 FLOPs per n x n matrix (no MACs: cost.py counts
    those for the multiply-accumulate layers only)."""
    count, n = node.outputs[0].type.size, node.x.type.shape[-1]
    return 0, count * (2 * n**3 // 3 + n)


@register
class Det:
    """y[...] = det(x[..., :, :]) over square matrices in the last two axes, computed in
    float64 (LU with partial pivoting) and rounded once."""

    operands = ("x",)
    flops = _det_flops
    attrs: dict[str, Attr] = {}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("Det", ins, 1)
        reject_quant("Det", [x])
        require(x.dtype.is_float, f"Det: needs a float input, got {x.dtype.value}")
        require(x.rank >= 2 and x.shape[-1] == x.shape[-2],
                f"Det: needs square matrices in the last two axes, got {list(x.shape)}")
        return [TensorType(x.shape[:-2], x.dtype)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        return [np.asarray(np.linalg.det(x.astype(np.float64))).astype(x.dtype)]
