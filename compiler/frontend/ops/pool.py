"""Converters of ONNX pooling ops and LRN.

auto_pad is resolved to explicit pads here (as for Conv); MaxPool's optional Indices output
switches on the IR op's ``indices`` attribute, so plain max pooling never pays for argmax.
"""

from __future__ import annotations

from compiler.frontend.context import Ctx
from compiler.frontend.ops.conv import spatial_attrs
from compiler.frontend.registry import converter
from ir.graph import Value


def _window(
    ctx: Ctx, x: Value, kernel_shape: list[int] | None, strides: list[int] | None,
    dilations: list[int] | None, pads: list[int] | None, auto_pad: str,
) -> dict[str, list[int]]:
    if not kernel_shape:
        raise ctx.fail("kernel_shape is required")
    s, d, p = spatial_attrs(ctx, x, list(kernel_shape), strides, dilations, pads, auto_pad)
    return {"kernel_shape": list(kernel_shape), "strides": s, "dilations": d, "pads": p}


@converter("MaxPool")
def max_pool(
    ctx: Ctx, x: Value, *, auto_pad: str = "NOTSET", ceil_mode: int = 0,
    dilations: list[int] | None = None, kernel_shape: list[int] | None = None,
    pads: list[int] | None = None, storage_order: int = 0, strides: list[int] | None = None,
) -> list[Value]:
    win = _window(ctx, x, kernel_shape, strides, dilations, pads, auto_pad)
    want_indices = len(ctx.out_hints) > 1 and bool(ctx.out_hints[1])
    return ctx.ops("MaxPool", [x], ceil_mode=ceil_mode, indices=want_indices,
                   storage_order=storage_order, **win)


@converter("AveragePool")
def average_pool(
    ctx: Ctx, x: Value, *, auto_pad: str = "NOTSET", ceil_mode: int = 0,
    count_include_pad: int = 0, dilations: list[int] | None = None,
    kernel_shape: list[int] | None = None, pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> Value:
    win = _window(ctx, x, kernel_shape, strides, dilations, pads, auto_pad)
    return ctx.op("AveragePool", [x], ceil_mode=ceil_mode,
                  count_include_pad=count_include_pad, **win)


@converter("LpPool")
def lp_pool(
    ctx: Ctx, x: Value, *, auto_pad: str = "NOTSET", ceil_mode: int = 0,
    dilations: list[int] | None = None, kernel_shape: list[int] | None = None, p: int = 2,
    pads: list[int] | None = None, strides: list[int] | None = None,
) -> Value:
    if p < 1:
        raise ctx.fail(f"LpPool needs p >= 1, got p = {p}")
    win = _window(ctx, x, kernel_shape, strides, dilations, pads, auto_pad)
    return ctx.op("LpPool", [x], ceil_mode=ceil_mode, p=p, **win)


@converter("GlobalLpPool")
def global_lp_pool(ctx: Ctx, x: Value, *, p: int = 2) -> Value:
    if p < 1:
        raise ctx.fail(f"GlobalLpPool needs p >= 1, got p = {p}")
    return ctx.op("GlobalLpPool", [x], p=p)


@converter("GlobalAveragePool")
def global_average_pool(ctx: Ctx, x: Value) -> Value:
    return ctx.op("GlobalAveragePool", [x])


@converter("GlobalMaxPool")
def global_max_pool(ctx: Ctx, x: Value) -> Value:
    return ctx.op("GlobalMaxPool", [x])


@converter("LRN")
def lrn(
    ctx: Ctx, x: Value, *, size: int, alpha: float = 0.0001, beta: float = 0.75,
    bias: float = 1.0,
) -> Value:
    return ctx.op("LRN", [x], size=size, alpha=alpha, beta=beta, bias=bias)
