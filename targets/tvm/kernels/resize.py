"""Resize on float, u8 and i8 tensors (quantised codes included: nearest selects elements).

Which input cells each output cell mixes, and with what weights, is decided at compile time
by the interpreter's own functions (ir/ops/resize.py ``source_coords`` and ``axis_taps``: every
coordinate transformation, nearest rounding mode, cubic coefficient, exclude_outside and
antialias), and stored as tables. nearest then gathers: exact for every type. linear and
cubic, on float tensors, resample axis by axis in float64, as the interpreter does, and round
once to the float type. No kernel here: linear and cubic on u8 / i8 (the interpreter rounds a
float64 sum to an integer, and a sum in another order or with fused multiply-adds can land on
the other side of a half: not exact), and tf_crop_and_resize.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ir.graph import Node
from ir.ops.resize import axis_taps, source_coords
from targets.tvm.api import te
from targets.tvm.context import Kernel, Tensor
from targets.tvm.registry import kernel

FLOATS = ("float32", "float64")
CODES = ("uint8", "int8")
F64 = "float64"


def _supported(node: Node) -> bool:
    x, y = node.operand("x"), node.outputs[0]
    dt = x.type.dtype.np.name
    types = FLOATS + CODES if node.attrs["mode"] == "nearest" else FLOATS
    return (dt in types and y.type.dtype == x.type.dtype
            and node.attrs["coordinate_transformation_mode"] != "tf_crop_and_resize")


def _resampled(shape: tuple[int, ...], a: dict[str, Any]) -> list[int]:
    """The axes the interpreter resamples (it skips those of equal size and scale 1)."""
    return [axis for axis, size in enumerate(shape)
            if not (a["sizes"][axis] == size and math.isclose(a["scales"][axis], 1.0))]


def _axis_taps(size: int, out: int, scale: float, a: dict[str, Any]) -> tuple[
        np.ndarray, np.ndarray]:
    src = source_coords(a["coordinate_transformation_mode"], out, size, scale, (0.0, 1.0))
    idx, w = axis_taps(src, size, scale, a)
    return idx.astype(np.int32), w.astype(np.float64)


def _mixer(src: Tensor, ax: int, idx: Tensor, w: Tensor, t: Any) -> Any:
    """The compute of one resampled axis: sum_t w[o, t] * src[..., idx[o, t], ...]."""

    def mix(*i: Any) -> Any:
        at = (*i[:ax], idx[i[ax], t], *i[ax + 1:])
        return te.sum(w[i[ax], t] * src[at], axis=t)

    return mix


@kernel("Resize", accepts=_supported)
def resize(k: Kernel) -> list[Tensor]:
    """nearest: y[i...] = x[idx_0[i_0], idx_1[i_1], ...]; linear / cubic, per resampled
    axis in turn, in float64: v'[..., o, ...] = sum_t w[o, t] * v[..., idx[o, t], ...];
    then y = v cast to x's float type. idx and w are ir/ops/resize.py's taps (tables); an
    axis of equal size and scale 1 is not read through a table."""
    a = k.attrs
    (y,) = k.out_types
    xt = k.type_of("x")
    x = k.operand("x")
    dt = y.dtype.np.name
    axes = _resampled(xt.shape, a)
    taps = {ax: _axis_taps(xt.shape[ax], a["sizes"][ax], a["scales"][ax], a) for ax in axes}
    if a["mode"] == "nearest":
        index = {ax: k.table(np.ascontiguousarray(taps[ax][0][:, 0]), f"idx{ax}")
                 for ax in axes}
        return [te.compute(y.shape, lambda *i: x[tuple(
            index[ax][i[ax]] if ax in index else i[ax] for ax in range(len(i)))], name="y")]
    v = te.compute(xt.shape, lambda *i: x[i].astype(F64), name="v")
    shape = list(xt.shape)
    for ax in axes:
        idx_np, w_np = taps[ax]
        idx, w = k.table(idx_np, f"idx{ax}"), k.table(w_np, f"w{ax}")
        shape[ax] = a["sizes"][ax]
        t = te.reduce_axis((0, idx_np.shape[1]), name=f"t{ax}")
        v = te.compute(tuple(shape), _mixer(v, ax, idx, w, t), name=f"v{ax}")
    return [te.compute(y.shape, lambda *i: v[i].astype(dt), name="y")]
