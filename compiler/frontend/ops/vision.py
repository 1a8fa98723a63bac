"""Converters of ONNX vision ops: GridSample, AffineGrid, RoiAlign, MaxRoiPool, MaxUnpool.

Sizes that ONNX passes as tensors (AffineGrid's size, MaxUnpool's output_shape) must be
compile-time constants and become attributes; GridSample's opset-16 mode names (bilinear,
bicubic) map to opset 20's (linear, cubic).
"""

from __future__ import annotations

from compiler.frontend.context import Ctx
from compiler.frontend.registry import converter
from ir.graph import Value
from ir.ops.vision import PADDING_MODES, SAMPLE_MODES

_OLD_MODES = {"bilinear": "linear", "bicubic": "cubic"}


@converter("GridSample", note="opset 16 (bilinear/bicubic) and 20 (linear/cubic, N-D)")
def grid_sample(
    ctx: Ctx, x: Value, grid: Value, *, align_corners: int = 0, mode: str | None = None,
    padding_mode: str = "zeros",
) -> Value:
    m = mode if mode is not None else ("linear" if ctx.opset >= 20 else "bilinear")
    m = _OLD_MODES.get(m, m) if ctx.opset < 20 else m
    if m not in SAMPLE_MODES:
        raise ctx.fail(f"GridSample mode {mode!r} is not one of {', '.join(SAMPLE_MODES)}")
    if padding_mode not in PADDING_MODES:
        raise ctx.fail(f"GridSample padding_mode {padding_mode!r} is not one of "
                       f"{', '.join(PADDING_MODES)}")
    return ctx.op("GridSample", [x, grid], mode=m, padding_mode=padding_mode,
                  align_corners=align_corners)


@converter("AffineGrid")
def affine_grid(ctx: Ctx, theta: Value, size: Value, *, align_corners: int = 0) -> Value:
    return ctx.op("AffineGrid", [theta], size=ctx.ints_of(size, "size"),
                  align_corners=align_corners)


@converter("RoiAlign")
def roi_align(
    ctx: Ctx, x: Value, rois: Value, batch_indices: Value, *,
    coordinate_transformation_mode: str | None = None, mode: str = "avg",
    output_height: int = 1, output_width: int = 1, sampling_ratio: int = 0,
    spatial_scale: float = 1.0,
) -> Value:
    # RoiAlign-10 had no attribute and did not shift by half a pixel; 16's default does.
    ctm = coordinate_transformation_mode or ("half_pixel" if ctx.opset >= 16
                                             else "output_half_pixel")
    if ctm not in ("half_pixel", "output_half_pixel"):
        raise ctx.fail(f"RoiAlign coordinate_transformation_mode {ctm!r} is not half_pixel or "
                       "output_half_pixel")
    if mode not in ("avg", "max"):
        raise ctx.fail(f"RoiAlign mode {mode!r} is not avg or max")
    return ctx.op("RoiAlign", [x, rois, batch_indices], mode=mode, output_height=output_height,
                  output_width=output_width, sampling_ratio=sampling_ratio,
                  spatial_scale=spatial_scale, half_pixel=ctm == "half_pixel")


@converter("MaxRoiPool")
def max_roi_pool(ctx: Ctx, x: Value, rois: Value, *, pooled_shape: list[int],
                 spatial_scale: float = 1.0) -> Value:
    return ctx.op("MaxRoiPool", [x, rois], pooled_shape=pooled_shape,
                  spatial_scale=spatial_scale)


@converter("MaxUnpool")
def max_unpool(
    ctx: Ctx, x: Value, indices: Value, output_shape: Value | None = None, *,
    kernel_shape: list[int], pads: list[int] | None = None, strides: list[int] | None = None,
) -> Value:
    nsp = len(x.type.shape) - 2
    if output_shape is not None:
        shape = ctx.ints_of(output_shape, "output_shape")
    else:
        p = list(pads) if pads else [0] * (2 * nsp)
        s = list(strides) if strides else [1] * nsp
        if len(kernel_shape) != nsp or len(p) != 2 * nsp or len(s) != nsp:
            raise ctx.fail(f"kernel_shape, strides and pads must match {nsp} spatial axes")
        shape = list(x.type.shape[:2]) + [
            (x.type.shape[2 + i] - 1) * s[i] - (p[i] + p[nsp + i]) + kernel_shape[i]
            for i in range(nsp)]
    return ctx.op("MaxUnpool", [x, indices], output_shape=shape)
