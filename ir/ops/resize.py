"""Resampling and block rearrangement: Resize, DepthToSpace, SpaceToDepth.

Resize is canonical and static: the frontend turns ONNX's scales-or-sizes inputs, axes and
keep_aspect_ratio_policy into a full-rank ``sizes`` (the output shape) plus a full-rank
``scales`` (which the coordinate transforms need: with scales given, the scale is not
out/in). Attributes a mode does not read are left at their defaults.

Interpolation is separable, so compute resamples one axis at a time: per output coordinate,
a few source taps and their weights (nearest: 1 tap; linear: 2; cubic: 4; antialias widens
the filter by 1/scale when downsampling), then one gather and a weighted sum over the taps.
"""

from __future__ import annotations

import math

import numpy as np

from ir import qforms
from ir.ops.common import require_inputs
from ir.ops.registry import Attr, Attrs, register, require
from ir.ops.shape import moved
from ir.types import DType, TensorType

MODES = ("nearest", "linear", "cubic")
COORD_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
               "asymmetric", "tf_crop_and_resize")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


@register
class Resize:
    """y[i...] = sum over taps t of weight(t) * x[..., clamp(src(i) + t), ...], axis by axis.

    src maps an output coordinate to the input per coordinate_transformation_mode (ONNX's
    formulas, with scale = scales[axis]); out-of-range taps repeat the edge (or get weight 0
    and the rest renormalised, with exclude_outside). tf_crop_and_resize samples the region
    roi (begins..., ends..., as fractions of the input) and writes extrapolation_value where
    the source lies outside the input.
    """

    operands = ("x",)
    quantized = qforms.on_codes  # mode nearest only: it selects elements
    attrs = {
        "sizes": Attr("ints", doc="output shape, every axis"),
        "scales": Attr("floats", doc="scale per axis used by the coordinate transform"),
        "mode": Attr("str", "nearest"),
        "coordinate_transformation_mode": Attr("str", "half_pixel"),
        "nearest_mode": Attr("str", "round_prefer_floor"),
        "cubic_coeff_a": Attr("float", -0.75),
        "exclude_outside": Attr("bool", False),
        "antialias": Attr("bool", False),
        "roi": Attr("floats", [], doc="tf_crop_and_resize only: begins then ends"),
        "extrapolation_value": Attr("float", 0.0),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("Resize", ins, 1)
        r = len(x.shape)
        require(len(a["sizes"]) == r and all(s >= 1 for s in a["sizes"]),
                f"Resize: sizes needs {r} positive entries, got {a['sizes']}")
        require(len(a["scales"]) == r and all(s > 0 for s in a["scales"]),
                f"Resize: scales needs {r} positive entries, got {a['scales']}")
        require(a["mode"] in MODES, f"Resize: mode must be one of {MODES}")
        require(a["coordinate_transformation_mode"] in COORD_MODES,
                f"Resize: coordinate_transformation_mode must be one of {COORD_MODES}")
        require(a["nearest_mode"] in NEAREST_MODES,
                f"Resize: nearest_mode must be one of {NEAREST_MODES}")
        require(len(a["roi"]) in (0, 2 * r), f"Resize: roi needs {2 * r} entries or none")
        require(x.dtype is not DType.bool, "Resize: needs a numeric input")
        require(x.quant is None or a["mode"] == "nearest",
                f"Resize: mode {a['mode']!r} interpolates; a quantised input needs nearest")
        return [moved(x, a["sizes"])]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        r = x.ndim
        roi = a["roi"] or [0.0] * r + [1.0] * r
        crop = a["coordinate_transformation_mode"] == "tf_crop_and_resize"
        y = x.astype(np.float64)
        for axis in range(r):
            out, scale = a["sizes"][axis], a["scales"][axis]
            same = out == x.shape[axis] and math.isclose(scale, 1.0)
            if same and (not crop or (roi[axis] == 0.0 and roi[r + axis] == 1.0)):
                continue
            y = _resize_axis(y, axis, out, scale, (roi[axis], roi[r + axis]), a)
        if x.dtype.kind in "iu":
            info = np.iinfo(x.dtype)
            y = np.clip(np.rint(y), info.min, info.max)
        return [y.astype(x.dtype)]


def source_coords(mode: str, out: int, size: int, scale: float,
            roi: tuple[float, float]) -> np.ndarray:
    """The input coordinate each output index samples, per ONNX's transformation modes."""
    y = np.arange(out, dtype=np.float64)
    width = scale * size  # the (possibly fractional) output length the scale implies
    if mode == "half_pixel":
        return (y + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        offset = size / 2 * (1 - out / width)
        return offset + (y + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return np.full(out, -0.5) if width == 1 else (y + 0.5) / scale - 0.5
    if mode == "align_corners":
        return np.zeros(out) if width == 1 else y * (size - 1) / (width - 1)
    if mode == "asymmetric":
        return y / scale
    lo, hi = roi  # tf_crop_and_resize
    if width == 1:
        return np.full(out, (hi - lo) * (size - 1) / 2 + lo * (size - 1))
    return y * (hi - lo) * (size - 1) / (width - 1) + lo * (size - 1)


def _cubic(t: np.ndarray, a: float) -> np.ndarray:
    t = np.abs(t)
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return np.where(t <= 1, near, np.where(t < 2, far, 0.0))


def axis_taps(src: np.ndarray, size: int, scale: float, a: Attrs) -> tuple[np.ndarray, np.ndarray]:
    """(indices, weights), each (out, taps): the input cells each output mixes, and how."""
    mode = a["mode"]
    if mode == "nearest":
        nm = a["nearest_mode"]
        if nm == "round_prefer_floor":
            idx = np.ceil(src - 0.5)
        elif nm == "round_prefer_ceil":
            idx = np.floor(src + 0.5)
        else:
            idx = np.floor(src) if nm == "floor" else np.ceil(src)
        idx = idx.astype(np.int64)[:, None]
        return np.clip(idx, 0, size - 1), np.ones(idx.shape)
    stretch = min(scale, 1.0) if a["antialias"] else 1.0
    radius = (1.0 if mode == "linear" else 2.0) / stretch
    start = math.floor(-radius) + 1
    idx = np.floor(src).astype(np.int64)[:, None] + np.arange(start, 2 - start)[None, :]
    dist = (idx - src[:, None]) * stretch
    if mode == "linear":
        w = np.clip(1 - np.abs(dist), 0, None)
    else:
        w = _cubic(dist, a["cubic_coeff_a"])
    if a["exclude_outside"]:
        w = np.where((idx < 0) | (idx >= size), 0.0, w)
    if a["antialias"] or a["exclude_outside"]:
        total = w.sum(axis=1, keepdims=True)
        w = w / np.where(total == 0, 1.0, total)
    return np.clip(idx, 0, size - 1), w


def _resize_axis(x: np.ndarray, axis: int, out: int, scale: float, roi: tuple[float, float],
                 a: Attrs) -> np.ndarray:
    size = x.shape[axis]
    cmode = a["coordinate_transformation_mode"]
    src = source_coords(cmode, out, size, scale, roi)
    idx, w = axis_taps(src, size, scale, a)
    gathered = np.take(x, idx, axis=axis)  # (..., out, taps, ...)
    wshape = (1,) * axis + w.shape + (1,) * (x.ndim - axis - 1)
    y = (gathered * w.reshape(wshape)).sum(axis=axis + 1)
    if cmode == "tf_crop_and_resize":
        outside = (src < 0) | (src > size - 1)
        mask = outside.reshape((1,) * axis + (out,) + (1,) * (x.ndim - axis - 1))
        y = np.where(mask, a["extrapolation_value"], y)
    return y


# -- DepthToSpace / SpaceToDepth ---------------------------------------------------------------


def _block_infer(op: str, ins: list[TensorType | None], a: Attrs, to_space: bool) -> TensorType:
    (x,) = require_inputs(op, ins, 1)
    require(len(x.shape) == 4, f"{op}: input must be N x C x H x W, got {list(x.shape)}")
    require(a["mode"] in ("DCR", "CRD"), f"{op}: mode must be DCR or CRD, got {a['mode']!r}")
    b = a["blocksize"]
    require(b >= 1, f"{op}: blocksize must be >= 1")
    n, c, h, w = x.shape
    if to_space:
        require(c % (b * b) == 0, f"{op}: channels {c} are not a multiple of {b * b}")
        return moved(x, (n, c // (b * b), h * b, w * b))
    require(h % b == 0 and w % b == 0, f"{op}: H and W must be multiples of {b}")
    return moved(x, (n, c * b * b, h // b, w // b))


@register
class DepthToSpace:
    """Moves channel blocks into b x b spatial blocks. DCR: channel = (by*b + bx)*C' + c;
    CRD: channel = c*b*b + by*b + bx. y[n, c, h*b + by, w*b + bx] = x[n, channel, h, w]."""

    operands = ("x",)
    moves_data = True
    quantized = qforms.on_codes
    attrs = {"blocksize": Attr("int"), "mode": Attr("str", "DCR")}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        return [_block_infer("DepthToSpace", ins, a, to_space=True)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        n, c, h, w = x.shape
        b = a["blocksize"]
        if a["mode"] == "DCR":
            t = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
        else:
            t = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
        return [t.reshape(n, c // (b * b), h * b, w * b)]


@register
class SpaceToDepth:
    """The inverse of DepthToSpace with the same mode: each b x b spatial block becomes
    b*b channels, ordered as DepthToSpace would read them back."""

    operands = ("x",)
    moves_data = True
    quantized = qforms.on_codes
    attrs = {"blocksize": Attr("int"), "mode": Attr("str", "DCR")}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        return [_block_infer("SpaceToDepth", ins, a, to_space=False)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        n, c, h, w = x.shape
        b = a["blocksize"]
        t = x.reshape(n, c, h // b, b, w // b, b)
        if a["mode"] == "DCR":
            t = t.transpose(0, 3, 5, 1, 2, 4)
        else:
            t = t.transpose(0, 1, 3, 5, 2, 4)
        return [t.reshape(n, c * b * b, h // b, w // b)]
