"""Vision ops that sample or pool at computed positions: GridSample, AffineGrid, RoiAlign,
MaxRoiPool, MaxUnpool.

Their positions come from data (a grid, regions of interest, argmax indices), so the
references gather with numpy fancy indexing over all outputs at once, tap by tap, and the C
emitters loop over the outputs and compute each position as the formula says.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from ir.ops import cost
from ir.ops.common import require_inputs
from ir.ops.registry import Attr, Attrs, register, require
from ir.types import DType, TensorType

SAMPLE_MODES = ("linear", "nearest", "cubic")
PADDING_MODES = ("zeros", "border", "reflection")
CUBIC_A = -0.75  # Keys' cubic convolution parameter, as ONNX's GridSample fixes it


def _float(op: str, t: TensorType, what: str) -> None:
    require(t.dtype.is_float, f"{op}: {what} must be a float tensor, got {t.dtype.value}")


def denormalize(g: np.ndarray, size: int, align_corners: bool) -> np.ndarray:
    """A normalised coordinate in [-1, 1] as a pixel position along an axis of ``size``:
    -1 and 1 are the centres (align_corners) or the outer edges of the end pixels."""
    if align_corners:
        return (g + 1) / 2 * (size - 1)
    return ((g + 1) * size - 1) / 2


def reflect(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``x`` reflected at the borders ``lo`` and ``hi`` until it lies between them."""
    span = hi - lo
    if span <= 0:
        return np.full_like(x, lo)
    below, above = x < lo, x > hi
    dx = np.where(below, lo - x, x - hi)
    n = np.floor(dx / span)
    r = dx - n * span
    even = n % 2 == 0
    y = np.where(below, np.where(even, lo + r, hi - r), np.where(even, hi - r, lo + r))
    return np.where(below | above, y, x)


def cubic_weights(t: np.ndarray) -> list[np.ndarray]:
    """Keys' weights of the taps floor - 1 .. floor + 2 for the fraction ``t``."""
    a = CUBIC_A

    def near(d: np.ndarray) -> np.ndarray:  # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d: np.ndarray) -> np.ndarray:  # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


@register
class GridSample:
    """y[n, c, o...] = x[n, c] interpolated at the position grid[n, o...] gives, which is
    normalised to [-1, 1] and lists the axes last first (x = width, then y = height, ...).

    Each coordinate is denormalised (see ``denormalize``); nearest rounds it half to even.
    A coordinate outside [-0.5, size - 0.5] ([0, size - 1] with align_corners) is clamped to
    [0, size - 1] (padding border) or reflected into that range (reflection). Linear
    interpolation weights the taps floor and floor + 1 by 1 - f and f, cubic the four taps
    around it by Keys' weights (a = -0.75), separably per axis; a tap outside the input reads
    0 (zeros), its clamped index (border) or its reflected index (reflection).
    """

    operands = ("x", "grid")
    flops = cost.per_element(8)
    attrs = {
        "mode": Attr("str", "linear", "linear, nearest or cubic"),
        "padding_mode": Attr("str", "zeros", "zeros, border or reflection"),
        "align_corners": Attr("bool", False, "-1 and 1 are the end pixels' centres"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        op = "GridSample"
        x, grid = require_inputs(op, ins, 2)
        _float(op, x, "x")
        _float(op, grid, "grid")
        nsp = len(x.shape) - 2
        require(nsp >= 1, f"{op}: x must be N x C x spatial..., got {list(x.shape)}")
        require(grid.shape == (x.shape[0], *grid.shape[1:-1], nsp) and len(grid.shape) == nsp + 2,
                f"{op}: grid must be (N, out..., {nsp}) for x {list(x.shape)}, got "
                f"{list(grid.shape)}")
        require(a["mode"] in SAMPLE_MODES, f"{op}: mode must be one of {SAMPLE_MODES}")
        require(a["padding_mode"] in PADDING_MODES,
                f"{op}: padding_mode must be one of {PADDING_MODES}")
        return [TensorType(x.shape[:2] + grid.shape[1:-1], x.dtype)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, grid = ins
        assert x is not None and grid is not None
        sizes = x.shape[2:]
        nsp, align, pad = len(sizes), a["align_corners"], a["padding_mode"]
        per_axis = []
        for i, size in enumerate(sizes):
            c = denormalize(grid[..., nsp - 1 - i].astype(np.float64), size, align)
            lo, hi = (0.0, size - 1.0) if align else (-0.5, size - 0.5)
            if a["mode"] == "nearest":
                c = np.rint(c)
            if pad == "border":
                c = np.where((c < lo) | (c > hi), np.clip(c, 0, size - 1), c)
            elif pad == "reflection":
                c = reflect(c, lo, hi)
            per_axis.append(_taps(c, a["mode"], size, pad, lo, hi))
        n = np.arange(x.shape[0]).reshape((-1,) + (1,) * (grid.ndim - 2))
        xt = np.moveaxis(x, 1, -1)
        y = np.zeros(grid.shape[:-1] + (x.shape[1],), np.float64)
        for combo in itertools.product(*per_axis):
            idx = tuple(t[0] for t in combo)
            w = math.prod(t[1] for t in combo)
            y += xt[(n, *idx)] * w[..., None]
        return [np.moveaxis(y, -1, 1).astype(x.dtype)]


def _taps(c: np.ndarray, mode: str, size: int, pad: str, lo: float, hi: float,
          ) -> list[tuple[np.ndarray, np.ndarray]]:
    """(index, weight) per tap of one axis; a zero-padded tap outside has weight 0."""
    if mode == "nearest":
        first, weights = c, [np.ones_like(c)]
    else:
        first = np.floor(c)
        t = c - first
        if mode == "linear":
            weights = [1 - t, t]
        else:
            first, weights = first - 1, cubic_weights(t)
    out = []
    for k, w in enumerate(weights):
        i = first + k
        if pad == "zeros":
            w = np.where((i >= 0) & (i < size), w, 0)
        elif pad == "reflection":
            i = np.trunc(reflect(i, lo, hi))
        out.append((np.clip(i, 0, size - 1).astype(np.int64), w))
    return out


@register
class AffineGrid:
    """grid[n, o..., :] = theta[n] @ (x_w, y_h[, z_d], 1): the sampling grid of an affine map,
    for an output of spatial ``size`` (H, W) or (D, H, W). The base coordinates run over
    [-1, 1]: the pixel centres -1 + (2i + 1) / L, or from -1 to 1 in L steps with
    align_corners. theta is (N, 2, 3) for 2-D, (N, 3, 4) for 3-D."""

    operands = ("theta",)
    flops = cost.per_element(4)
    attrs = {
        "size": Attr("ints", doc="the output's N, C and spatial sizes (ONNX's size input)"),
        "align_corners": Attr("bool", False, "-1 and 1 are the end pixels' centres"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        op = "AffineGrid"
        (theta,) = require_inputs(op, ins, 1)
        _float(op, theta, "theta")
        size = a["size"]
        require(len(size) in (4, 5), f"{op}: size must be (N, C, H, W) or (N, C, D, H, W)")
        nsp = len(size) - 2
        require(theta.shape == (size[0], nsp, nsp + 1),
                f"{op}: theta must be ({size[0]}, {nsp}, {nsp + 1}), got {list(theta.shape)}")
        return [TensorType((size[0], *size[2:], nsp), theta.dtype)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        theta = ins[0]
        assert theta is not None
        sp = a["size"][2:]
        axes = [base_coords(s, a["align_corners"]) for s in sp]
        mesh = np.meshgrid(*axes, indexing="ij")  # (D,) H, W
        base = np.stack([*mesh[::-1], np.ones_like(mesh[0])], axis=-1)  # x, y(, z), 1
        grid = np.einsum("...k,njk->n...j", base, theta.astype(np.float64))
        return [grid.astype(theta.dtype)]


def base_coords(size: int, align_corners: bool) -> np.ndarray:
    i = np.arange(size, dtype=np.float64)
    if align_corners:
        return -1 + 2 * i / (size - 1) if size > 1 else np.full(1, -1.0)
    return -1 + (2 * i + 1) / size


@register
class RoiAlign:
    """y[r, c, ph, pw] = the average (or maximum) of bilinear samples of x[b[r], c] on a
    regular grid inside bin (ph, pw) of region r.

    A region (x1, y1, x2, y2) is scaled by ``spatial_scale`` and, for half_pixel, shifted
    by -0.5 (output_half_pixel: not shifted, but at least 1 x 1); each bin takes
    sampling_ratio samples per axis (0: ceil(region size / output size)) at the sub-bin
    centres. A sample beyond [-1, size] reads 0; otherwise it is clamped at 0 and at the
    last pixel. mode max takes the maximum over samples of the largest of the four weighted
    corner terms (weight * value), which is what onnxruntime and the ONNX reference compute.
    """

    operands = ("x", "rois", "batch_indices")
    flops = cost.per_element(16)
    attrs = {
        "mode": Attr("str", "avg", "avg or max"),
        "output_height": Attr("int", 1),
        "output_width": Attr("int", 1),
        "sampling_ratio": Attr("int", 0, "samples per bin and axis; 0: adaptive"),
        "spatial_scale": Attr("float", 1.0, "from region to input coordinates"),
        "half_pixel": Attr("bool", True, "coordinate_transformation_mode half_pixel"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        op = "RoiAlign"
        x, rois, bi = require_inputs(op, ins, 3)
        _float(op, x, "x")
        _float(op, rois, "rois")
        require(len(x.shape) == 4, f"{op}: x must be (N, C, H, W), got {list(x.shape)}")
        require(len(rois.shape) == 2 and rois.shape[1] == 4,
                f"{op}: rois must be (num_rois, 4), got {list(rois.shape)}")
        require(bi.shape == rois.shape[:1] and bi.dtype in (DType.i32, DType.i64),
                f"{op}: batch_indices must be int64[{rois.shape[0]}], got {bi}")
        require(a["mode"] in ("avg", "max"), f"{op}: mode must be avg or max")
        require(a["output_height"] >= 1 and a["output_width"] >= 1 and a["sampling_ratio"] >= 0,
                f"{op}: output sizes must be >= 1 and sampling_ratio >= 0")
        return [TensorType((rois.shape[0], x.shape[1], a["output_height"], a["output_width"]),
                           x.dtype)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, rois, bi = ins
        assert x is not None and rois is not None and bi is not None
        oh, ow = a["output_height"], a["output_width"]
        y = np.zeros((rois.shape[0], x.shape[1], oh, ow), x.dtype)
        for r in range(rois.shape[0]):
            y[r] = _roi_align_one(x[int(bi[r])], rois[r].astype(np.float64), a)
        return [y]


def roi_geometry(roi: np.ndarray, a: Attrs) -> tuple[float, float, float, float, int, int]:
    """(start_h, start_w, bin_h, bin_w, samples_h, samples_w) of one region."""
    off = 0.5 if a["half_pixel"] else 0.0
    x1, y1, x2, y2 = (float(v) * a["spatial_scale"] - off for v in roi)
    rh, rw = y2 - y1, x2 - x1
    if not a["half_pixel"]:
        rh, rw = max(rh, 1.0), max(rw, 1.0)
    oh, ow, sr = a["output_height"], a["output_width"], a["sampling_ratio"]
    gh = sr if sr > 0 else math.ceil(rh / oh)
    gw = sr if sr > 0 else math.ceil(rw / ow)
    return y1, x1, rh / oh, rw / ow, gh, gw


def _roi_align_one(x: np.ndarray, roi: np.ndarray, a: Attrs) -> np.ndarray:
    h, w = x.shape[1:]
    y0, x0, bh, bw, gh, gw = roi_geometry(roi, a)
    oh, ow = a["output_height"], a["output_width"]
    if gh * gw == 0:
        return np.zeros((x.shape[0], oh, ow), x.dtype)
    # sample positions per axis: (output bins, samples per bin)
    ys = y0 + np.arange(oh)[:, None] * bh + (np.arange(gh)[None, :] + 0.5) * bh / gh
    xs = x0 + np.arange(ow)[:, None] * bw + (np.arange(gw)[None, :] + 0.5) * bw / gw
    (ylo, yhi, ly, yok), (xlo, xhi, lx, xok) = _corners(ys, h), _corners(xs, w)
    # broadcast to (C, oh, gh, ow, gw)
    ylo, yhi, ly, yok = (v[None, :, :, None, None] for v in (ylo, yhi, ly, yok))
    xlo, xhi, lx, xok = (v[None, None, None, :, :] for v in (xlo, xhi, lx, xok))
    ok = yok & xok
    c = np.arange(x.shape[0])[:, None, None, None, None]
    terms = [(1 - ly) * (1 - lx) * x[c, ylo, xlo], (1 - ly) * lx * x[c, ylo, xhi],
             ly * (1 - lx) * x[c, yhi, xlo], ly * lx * x[c, yhi, xhi]]
    if a["mode"] == "avg":
        v = np.where(ok, sum(terms), 0)
        return (v.sum(axis=(2, 4)) / (gh * gw)).astype(x.dtype)
    v = np.where(ok, np.maximum.reduce(terms), 0)
    return v.max(axis=(2, 4)).astype(x.dtype)


def _corners(p: np.ndarray, size: int) -> tuple[np.ndarray, ...]:
    """(low index, high index, fraction, inside) of sample positions ``p`` along an axis."""
    ok = (p >= -1.0) & (p <= size)
    q = np.maximum(p, 0)
    lo = np.floor(q).astype(np.int64)
    last = lo >= size - 1
    lo = np.where(last, size - 1, lo)
    hi = np.where(last, size - 1, lo + 1)
    frac = np.where(last, 0.0, q - lo)
    return lo, hi, frac, ok


def roi_pool_bins(roi: np.ndarray, scale: float, pooled: list[int], hw: tuple[int, int],
                  ) -> list[list[tuple[int, int]]]:
    """[per axis (h, w)] the [start, end) of each bin of one region (x1, y1, x2, y2 already
    without the batch index), Caffe's ROIPool: corners scaled and rounded half away from
    zero, the region at least 1 x 1, bins floor/ceil of equal shares, clipped to the input."""
    def rnd(v: float) -> int:
        return int(math.floor(abs(v) * scale + 0.5) * (1 if v * scale >= 0 else -1))

    x1, y1, x2, y2 = (float(v) for v in roi)
    out = []
    for lo, hi, n, size in ((rnd(y1), rnd(y2), pooled[0], hw[0]),
                            (rnd(x1), rnd(x2), pooled[1], hw[1])):
        b = max(hi - lo + 1, 1) / n
        out.append([(min(max(math.floor(k * b) + lo, 0), size),
                     min(max(math.ceil((k + 1) * b) + lo, 0), size)) for k in range(n)])
    return out


@register
class MaxRoiPool:
    """y[r, c, ph, pw] = max of x[rois[r, 0], c] over bin (ph, pw) of region r (0 for an
    empty bin); a region is (batch index, x1, y1, x2, y2), binned as ``roi_pool_bins``."""

    operands = ("x", "rois")
    flops = cost.per_element(4)
    attrs = {
        "pooled_shape": Attr("ints", doc="output (height, width)"),
        "spatial_scale": Attr("float", 1.0, "from region to input coordinates"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        op = "MaxRoiPool"
        x, rois = require_inputs(op, ins, 2)
        _float(op, x, "x")
        _float(op, rois, "rois")
        require(len(x.shape) == 4, f"{op}: x must be (N, C, H, W), got {list(x.shape)}")
        require(len(rois.shape) == 2 and rois.shape[1] == 5,
                f"{op}: rois must be (num_rois, 5), got {list(rois.shape)}")
        ps = a["pooled_shape"]
        require(len(ps) == 2 and min(ps) >= 1, f"{op}: pooled_shape must be two sizes >= 1")
        return [TensorType((rois.shape[0], x.shape[1], *ps), x.dtype)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, rois = ins
        assert x is not None and rois is not None
        ph, pw = a["pooled_shape"]
        y = np.zeros((rois.shape[0], x.shape[1], ph, pw), x.dtype)
        for r, roi in enumerate(rois):
            xb = x[int(roi[0])]
            hs, ws = roi_pool_bins(roi[1:], a["spatial_scale"], [ph, pw], x.shape[2:])
            for i, (h0, h1) in enumerate(hs):
                for j, (w0, w1) in enumerate(ws):
                    if h1 > h0 and w1 > w0:
                        y[r, :, i, j] = xb[:, h0:h1, w0:w1].max(axis=(1, 2))
        return [y]


@register
class MaxUnpool:
    """y = zeros(output_shape); y.flat[indices.flat[i]] = x.flat[i] for every i (flat
    indices into the whole output, as MaxPool's Indices output gives them; an index outside
    the output is skipped, and of repeated indices the last write wins)."""

    operands = ("x", "indices")
    moves_data = True
    attrs = {"output_shape": Attr("ints", doc="the full output shape")}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        op = "MaxUnpool"
        x, idx = require_inputs(op, ins, 2)
        require(idx.shape == x.shape and idx.dtype is DType.i64,
                f"{op}: indices must be int64 of x's shape {list(x.shape)}, got {idx}")
        shape = tuple(a["output_shape"])
        require(len(shape) == len(x.shape) and shape[:2] == x.shape[:2],
                f"{op}: output_shape {list(shape)} must keep x's N and C {list(x.shape[:2])}")
        return [TensorType(shape, x.dtype)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, idx = ins
        assert x is not None and idx is not None
        y = np.zeros(math.prod(a["output_shape"]), x.dtype)
        flat = idx.reshape(-1)
        ok = (flat >= 0) & (flat < y.size)
        y[flat[ok]] = x.reshape(-1)[ok]
        return [y.reshape(a["output_shape"])]
