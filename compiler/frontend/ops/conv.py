"""Converters of ONNX convolutions: Conv, ConvTranspose, DeformConv, CausalConvWithState.

ONNX lets kernel_shape, strides, pads and dilations be omitted and lets auto_pad or
output_shape decide the padding; the IR wants every one explicit, so the converters resolve
them here from the static input shapes.
"""

from __future__ import annotations

from compiler.frontend.context import Ctx
from compiler.frontend.registry import converter
from ir.graph import Value

_AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def spatial_attrs(
    ctx: Ctx, x: Value, kernel: list[int], strides: list[int] | None,
    dilations: list[int] | None, pads: list[int] | None, auto_pad: str,
) -> tuple[list[int], list[int], list[int]]:
    """Explicit (strides, dilations, pads) for a window of ``kernel`` sliding over ``x``.

    SAME_* pads so that out = ceil(in / stride), the odd cell at the end (UPPER) or at the
    beginning (LOWER); VALID means no padding. Shared with the pooling converters.
    """
    nsp = len(x.type.shape) - 2
    if nsp < 1:
        raise ctx.fail(f"input must be N x C x spatial..., got shape {list(x.type.shape)}")
    strides = list(strides) if strides else [1] * nsp
    dilations = list(dilations) if dilations else [1] * nsp
    if len(kernel) != nsp or len(strides) != nsp or len(dilations) != nsp:
        raise ctx.fail(
            f"kernel {kernel}, strides {strides} and dilations {dilations} must each have "
            f"{nsp} entries for input shape {list(x.type.shape)}"
        )
    if auto_pad not in _AUTO_PADS:
        raise ctx.fail(f"unknown auto_pad {auto_pad!r}")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        before, after = [], []
        for size, k, s, d in zip(x.type.shape[2:], kernel, strides, dilations):
            out = -(-size // s)
            total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
            small, big = total // 2, total - total // 2
            before.append(small if auto_pad == "SAME_UPPER" else big)
            after.append(big if auto_pad == "SAME_UPPER" else small)
        return strides, dilations, before + after
    if auto_pad == "VALID" or not pads:
        return strides, dilations, [0] * (2 * nsp)
    if len(pads) != 2 * nsp:
        raise ctx.fail(f"pads {list(pads)} must have {2 * nsp} entries")
    return strides, dilations, list(pads)


def _kernel(ctx: Ctx, w: Value, kernel_shape: list[int] | None) -> list[int]:
    kernel = list(w.type.shape[2:])
    if kernel_shape and list(kernel_shape) != kernel:
        raise ctx.fail(f"kernel_shape {list(kernel_shape)} disagrees with the weight {kernel}")
    return kernel


@converter("Conv")
def conv(
    ctx: Ctx, x: Value, w: Value, b: Value | None = None, *, auto_pad: str = "NOTSET",
    dilations: list[int] | None = None, group: int = 1, kernel_shape: list[int] | None = None,
    pads: list[int] | None = None, strides: list[int] | None = None,
) -> Value:
    kernel = _kernel(ctx, w, kernel_shape)
    s, d, p = spatial_attrs(ctx, x, kernel, strides, dilations, pads, auto_pad)
    return ctx.op("Conv", [x, w, b], strides=s, pads=p, dilations=d, group=group)


@converter("ConvTranspose")
def conv_transpose(
    ctx: Ctx, x: Value, w: Value, b: Value | None = None, *, auto_pad: str = "NOTSET",
    dilations: list[int] | None = None, group: int = 1, kernel_shape: list[int] | None = None,
    output_padding: list[int] | None = None, output_shape: list[int] | None = None,
    pads: list[int] | None = None, strides: list[int] | None = None,
) -> Value:
    kernel = _kernel(ctx, w, kernel_shape)
    nsp = len(kernel)
    explicit = pads if auto_pad == "NOTSET" else None
    s, d, p = spatial_attrs(ctx, x, kernel, strides, dilations, explicit, "NOTSET")
    opad = list(output_padding) if output_padding else [0] * nsp
    if len(opad) != nsp:
        raise ctx.fail(f"output_padding {opad} must have {nsp} entries")
    size = x.type.shape[2:]
    if auto_pad in ("SAME_UPPER", "SAME_LOWER") and not output_shape:
        output_shape = [size[i] * s[i] for i in range(nsp)]
    if output_shape:
        shape = list(output_shape)[-nsp:]  # some exporters include N and C
        if len(shape) != nsp:
            raise ctx.fail(f"output_shape {list(output_shape)} must have {nsp} entries")
        before, after = [], []
        for i in range(nsp):
            total = s[i] * (size[i] - 1) + opad[i] + (kernel[i] - 1) * d[i] + 1 - shape[i]
            small, big = total // 2, total - total // 2
            before.append(small if auto_pad == "SAME_UPPER" else big)
            after.append(big if auto_pad == "SAME_UPPER" else small)
        p = before + after
    elif auto_pad not in ("NOTSET", "VALID"):
        raise ctx.fail(f"unknown auto_pad {auto_pad!r}")
    return ctx.op("ConvTranspose", [x, w, b], strides=s, pads=p, dilations=d, group=group,
                  output_padding=opad)


@converter("DeformConv")
def deform_conv(
    ctx: Ctx, x: Value, w: Value, offset: Value, b: Value | None = None,
    mask: Value | None = None, *, dilations: list[int] | None = None, group: int = 1,
    kernel_shape: list[int] | None = None, offset_group: int = 1, pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> Value:
    kernel = list(w.type.shape[2:])
    if kernel_shape and list(kernel_shape) != kernel:
        raise ctx.fail(f"kernel_shape {kernel_shape} differs from the weight's {kernel}")
    s, d, p = spatial_attrs(ctx, x, kernel, strides, dilations, pads, "NOTSET")
    return ctx.op("DeformConv", [x, w, offset, b, mask], strides=s, pads=p, dilations=d,
                  group=group, offset_group=offset_group)


@converter("CausalConvWithState")
def causal_conv_with_state(
    ctx: Ctx, x: Value, w: Value, b: Value | None = None, past_state: Value | None = None, *,
    activation: str = "none",
) -> list[Value]:
    act = {"swish": "silu"}.get(activation, activation)
    if act not in ("none", "silu"):
        raise ctx.fail(f"activation {activation!r} is not one of none, silu, swish")
    return ctx.ops("CausalConvWithState", [x, w, b, past_state], activation=act)
