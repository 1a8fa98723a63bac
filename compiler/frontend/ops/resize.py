"""Converters of ONNX resampling ops: Resize (opsets 10-19), Upsample, DepthToSpace and
SpaceToDepth.

Resize's scales, sizes and roi arrive as tensor inputs; they must be compile-time constants
and become the IR op's full-rank ``sizes`` / ``scales`` / ``roi`` attributes. Upsample is
Resize with asymmetric coordinates, so it lowers to the IR Resize.
"""

from __future__ import annotations

import math

import numpy as np

from compiler.frontend.context import Ctx
from compiler.frontend.registry import converter
from ir.graph import Value


def _full(values: list, axes: list[int], fill: list) -> list:
    """Scatter per-axis ``values`` (given for ``axes``) into the full-rank list ``fill``."""
    out = list(fill)
    for v, ax in zip(values, axes):
        out[ax] = v
    return out


def _nearest_before_11(ctx: Ctx, scales: list[float]) -> str:
    """Opset < 11 nearest resize (and Upsample) rounds down when enlarging and up when
    shrinking (onnxruntime's behaviour); the IR has one nearest_mode for every axis."""
    up = any(s > 1 for s in scales)
    down = any(s < 1 for s in scales)
    if up and down:
        raise ctx.fail("nearest resize that enlarges some axes and shrinks others is only "
                       "supported from opset 11 (set nearest_mode explicitly)")
    return "ceil" if down else "floor"


@converter("Resize", ir_ops=("Resize",))
def resize(
    ctx: Ctx, x: Value, roi: Value | None = None, scales: Value | None = None,
    sizes: Value | None = None, *, antialias: int = 0, axes: list[int] | None = None,
    coordinate_transformation_mode: str = "half_pixel", cubic_coeff_a: float = -0.75,
    exclude_outside: int = 0, extrapolation_value: float = 0.0,
    keep_aspect_ratio_policy: str = "stretch", mode: str = "nearest",
    nearest_mode: str = "round_prefer_floor",
) -> Value:
    shape = x.type.shape
    r = len(shape)
    if ctx.opset < 11:  # Resize-10: (X, scales), Upsample's semantics
        return _upsample_like(ctx, x, [float(s) for s in ctx.value_of(roi, "scales").ravel()],
                              mode)
    axes = [a % r if -r <= a < r else a for a in axes] if axes else list(range(r))
    if any(not 0 <= a < r for a in axes) or len(set(axes)) != len(axes):
        raise ctx.fail(f"axes {axes} are invalid for rank {r}")
    scale_vals = [] if scales is None else [
        float(s) for s in np.asarray(ctx.value_of(scales, "scales")).ravel()]
    size_vals = [] if sizes is None else ctx.ints_of(sizes, "sizes")
    if bool(scale_vals) == bool(size_vals):
        raise ctx.fail("exactly one of scales and sizes must be given")
    if scale_vals:
        if len(scale_vals) != len(axes):
            raise ctx.fail(f"scales has {len(scale_vals)} entries for {len(axes)} axes")
        full_scales = _full(scale_vals, axes, [1.0] * r)
        out = [int(math.floor(s * d)) for s, d in zip(full_scales, shape)]
    else:
        if len(size_vals) != len(axes):
            raise ctx.fail(f"sizes has {len(size_vals)} entries for {len(axes)} axes")
        out = _full(size_vals, axes, list(shape))
        full_scales = [o / d for o, d in zip(out, shape)]
        if keep_aspect_ratio_policy != "stretch":
            picks = [full_scales[a] for a in axes]
            if keep_aspect_ratio_policy == "not_larger":
                scale = min(picks)
            elif keep_aspect_ratio_policy == "not_smaller":
                scale = max(picks)
            else:
                raise ctx.fail(f"unknown keep_aspect_ratio_policy {keep_aspect_ratio_policy!r}")
            full_scales = _full([scale] * len(axes), axes, [1.0] * r)
            out = _full([int(scale * shape[a] + 0.5) for a in axes], axes, list(shape))
    if any(o < 1 for o in out):
        raise ctx.fail(f"the output shape {out} would be empty")
    attrs: dict = {"sizes": out, "scales": full_scales, "mode": mode,
                   "coordinate_transformation_mode": coordinate_transformation_mode}
    if mode == "nearest":
        attrs["nearest_mode"] = nearest_mode
    else:
        attrs["antialias"] = antialias
        attrs["exclude_outside"] = exclude_outside
    if mode == "cubic":
        attrs["cubic_coeff_a"] = cubic_coeff_a
    if coordinate_transformation_mode == "tf_crop_and_resize":
        vals = [float(v) for v in np.asarray(ctx.value_of(roi, "roi")).ravel()]
        if len(vals) != 2 * len(axes):
            raise ctx.fail(f"roi has {len(vals)} entries, expected {2 * len(axes)}")
        n = len(axes)
        attrs["roi"] = (_full(vals[:n], axes, [0.0] * r) + _full(vals[n:], axes, [1.0] * r))
        attrs["extrapolation_value"] = extrapolation_value
    return ctx.op("Resize", [x], **attrs)


def _upsample_like(ctx: Ctx, x: Value, scales: list[float], mode: str) -> Value:
    shape = x.type.shape
    if len(scales) != len(shape):
        raise ctx.fail(f"scales has {len(scales)} entries, the input has rank {len(shape)}")
    if mode in ("bilinear", "trilinear"):
        mode = "linear"
    if mode not in ("nearest", "linear"):
        raise ctx.fail(f"unknown mode {mode!r}")
    out = [int(math.floor(s * d)) for s, d in zip(scales, shape)]
    extra = {"nearest_mode": _nearest_before_11(ctx, scales)} if mode == "nearest" else {}
    return ctx.op("Resize", [x], sizes=out, scales=scales, mode=mode,
                  coordinate_transformation_mode="asymmetric", **extra)


@converter("Upsample", ir_ops=("Resize",), note="lowered to Resize (asymmetric)")
def upsample(ctx: Ctx, x: Value, scales: Value | list[float] | None = None, *,
             mode: str = "nearest") -> Value:
    # opset 7 has a `scales` attribute (arriving here as a list), opset 9+ a `scales` input
    if isinstance(scales, Value):
        vals = [float(s) for s in np.asarray(ctx.value_of(scales, "scales")).ravel()]
    elif scales is not None:
        vals = [float(s) for s in scales]
    else:
        raise ctx.fail("scales is required")
    return _upsample_like(ctx, x, vals, mode)


@converter("DepthToSpace")
def depth_to_space(ctx: Ctx, x: Value, *, blocksize: int, mode: str = "DCR") -> Value:
    return ctx.op("DepthToSpace", [x], blocksize=blocksize, mode=mode)


@converter("SpaceToDepth")
def space_to_depth(ctx: Ctx, x: Value, *, blocksize: int, mode: str = "DCR") -> Value:
    return ctx.op("SpaceToDepth", [x], blocksize=blocksize, mode=mode)
