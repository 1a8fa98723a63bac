"""Convolutions: Conv and ConvTranspose over 1, 2 or 3 spatial axes (NC + spatial layout),
and the 2-D DeformConv, whose taps move by learned offsets, and the causal depthwise 1-D
CausalConvWithState of decode steps.

Attributes are canonical: strides, pads (begin..., end...) and dilations always have one entry
per spatial axis (pads two), the kernel shape comes from the weight, and ONNX's auto_pad and
output_shape are resolved to pads by the frontend. The output shape therefore follows from the
attributes and the input shapes alone.

The reference compute is vectorised: Conv gathers the receptive fields through a strided view
(im2col) and does one batched matmul over groups; depthwise convolutions, where a matmul per
channel would be tiny, accumulate one kernel tap at a time over the whole image instead.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ir import accel
from ir.graph import Node
from ir.ops import cost
from ir.ops.common import reject_quant, require_inputs, same_dtype
from ir.ops.registry import Attr, Attrs, register, require
from ir.qforms import QuantContext, fused_activation, needs, result_attrs, with_input_means
from ir.types import DType, TensorType

# -- shared by the convolution and pooling ops ------------------------------------------------


def check_spatial(op: str, x: TensorType, a: Attrs, names: Sequence[str]) -> int:
    """Check the per-axis attributes ``names`` (plus pads) against x's rank; return #spatial."""
    nsp = len(x.shape) - 2
    require(nsp >= 1, f"{op}: input must be N x C x spatial..., got shape {list(x.shape)}")
    for n in names:
        require(len(a[n]) == nsp, f"{op}: {n} needs {nsp} entries, got {a[n]}")
        require(all(v >= 1 for v in a[n]), f"{op}: {n} must be positive, got {a[n]}")
    require(len(a["pads"]) == 2 * nsp, f"{op}: pads needs {2 * nsp} entries, got {a['pads']}")
    return nsp


def pad_spatial(x: np.ndarray, before: Sequence[int], after: Sequence[int],
                value: float | int = 0) -> np.ndarray:
    """``x`` with its spatial axes (2...) padded by ``value``; ``x`` itself when no padding."""
    if not any(before) and not any(after):
        return x
    shape = x.shape[:2] + tuple(s + b + e for s, b, e in zip(x.shape[2:], before, after))
    out = np.zeros(shape, x.dtype) if value == 0 else np.full(shape, value, dtype=x.dtype)
    inner = tuple(slice(b, b + s) for s, b in zip(x.shape[2:], before))
    out[(slice(None), slice(None)) + inner] = x
    return out


def windows(xp: np.ndarray, kernel: Sequence[int], strides: Sequence[int],
            dilations: Sequence[int], out: Sequence[int]) -> np.ndarray:
    """A read-only view (N, C, *out, *kernel) of every receptive field of the padded ``xp``."""
    sp = xp.strides[2:]
    shape = xp.shape[:2] + tuple(out) + tuple(kernel)
    st = xp.strides[:2] + tuple(a * s for a, s in zip(sp, strides)) + tuple(
        a * d for a, d in zip(sp, dilations)
    )
    if not xp.flags.c_contiguous or not xp.size:
        return as_strided(xp, shape, st, writeable=False)
    # the same view made directly on xp's buffer (as_strided's wrapper costs more than a
    # small convolution's arithmetic)
    view = np.ndarray(shape, xp.dtype, buffer=xp, strides=st)
    view.flags.writeable = False
    return view


def tap(xp: np.ndarray, k: Sequence[int], strides: Sequence[int], dilations: Sequence[int],
        out: Sequence[int]) -> np.ndarray:
    """The (N, C, *out) view of kernel tap ``k`` across all output positions."""
    sl = tuple(
        slice(ki * d, ki * d + (o - 1) * s + 1, s)
        for ki, d, s, o in zip(k, dilations, strides, out)
    )
    return xp[(slice(None), slice(None)) + sl]


def _conv_out(size: int, k: int, s: int, d: int, pb: int, pe: int) -> int:
    return (size + pb + pe - ((k - 1) * d + 1)) // s + 1


def _accum_dtype(dt: np.dtype) -> np.dtype:
    """Integers accumulate in 64 bits (numpy's int matmul would wrap at the input width),
    float16 in float32 (as every real kernel does; a float16 sum drifts past ONNX's rtol)."""
    if dt.kind in "iu":
        return np.dtype(np.int64)
    return np.dtype(np.float32) if dt == np.float16 else dt


# -- Conv --------------------------------------------------------------------------------------


@with_input_means("w", channels_last=False)
def quantize_conv(ctx: QuantContext, node: Node) -> None:
    """Conv → QConv: weights int8 per output channel, bias int32 at s_x·s_w[c], a following
    Relu/Clip (the only reader) as clamp bounds."""
    x, w, b = node.x, node.w, node.b
    needs(x is not None and ctx.is_constant(w) and (b is None or ctx.is_constant(b)))
    act, result = fused_activation(ctx, node.outputs[0])
    out = result_attrs(ctx, result, act)
    xq = ctx.act(x)
    wq, bq = ctx.weights(node, x, xq, w, b, groups=node.attrs["group"])
    ctx.emit("QConv", [xq, wq, bq], {**node.attrs, **out}, [node, act], [result])


@register
class Conv:
    """y[n, m, o...] = b[m] + sum_{c in group(m), k...} x_pad[n, c, o*s + k*d] * w[m, c', k...]

    x: (N, C, *S); w: (M, C/group, *K); b: (M,) optional. Output channel m reads the input
    channels of its group, m // (M/group). x_pad is x with pads zeros before/after each axis;
    out[i] = (S[i] + pads_begin[i] + pads_end[i] - ((K[i]-1)*dilations[i] + 1)) // strides[i] + 1.
    """

    operands = ("x", "w", "b?")
    flops = cost.conv
    tiled = "conv"
    stacks = "together"  # one matmul per sample either way (tests/quant/test_sample_stack.py)
    quantized = quantize_conv
    attrs = {
        "strides": Attr("ints", doc="step per spatial axis"),
        "pads": Attr("ints", doc="zero padding: begin per axis, then end per axis"),
        "dilations": Attr("ints", doc="spacing of kernel taps per axis"),
        "group": Attr("int", 1, doc="channel groups; group == C is depthwise"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        x, w = require_inputs("Conv", ins, 2)
        nsp = check_spatial("Conv", x, a, ("strides", "dilations"))
        types = [x, w] + ([ins[2]] if len(ins) > 2 and ins[2] is not None else [])
        reject_quant("Conv", types)
        dt = same_dtype("Conv", types)
        require(dt is not DType.bool, "Conv: needs numeric inputs")
        require(len(w.shape) == nsp + 2, f"Conv: weight must have rank {nsp + 2}, got {w.shape}")
        g, m, c = a["group"], w.shape[0], x.shape[1]
        require(g >= 1 and c % g == 0 and m % g == 0,
                f"Conv: group {g} must divide input channels {c} and output channels {m}")
        require(w.shape[1] * g == c,
                f"Conv: weight has {w.shape[1]} channels per group, input has {c // g}")
        if len(types) == 3:
            require(types[2].shape == (m,), f"Conv: bias must have shape [{m}]")
        pads = a["pads"]
        require(all(p >= 0 for p in pads), f"Conv: pads must be >= 0, got {pads}")
        out = tuple(
            _conv_out(x.shape[2 + i], w.shape[2 + i], a["strides"][i], a["dilations"][i],
                      pads[i], pads[nsp + i])
            for i in range(nsp)
        )
        require(all(o >= 1 for o in out), f"Conv: the kernel does not fit, output {list(out)}")
        return [TensorType((x.shape[0], m) + out, dt)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, w, b = ins[0], ins[1], ins[2] if len(ins) > 2 else None
        assert x is not None and w is not None
        y = conv(x, w, a["strides"], a["pads"], a["dilations"], a["group"])
        if b is not None:
            y += b.reshape((1, -1) + (1,) * (y.ndim - 2)).astype(y.dtype)
        return [y.astype(x.dtype, copy=False)]


def conv(x: np.ndarray, w: np.ndarray, strides: Sequence[int], pads: Sequence[int],
         dilations: Sequence[int], group: int) -> np.ndarray:
    """Convolution without bias, in the accumulation dtype; see :class:`Conv`."""
    nsp = x.ndim - 2
    n, c = x.shape[:2]
    m, kern = w.shape[0], w.shape[2:]
    g, cg, mg = group, c // group, m // group
    out = tuple(
        _conv_out(x.shape[2 + i], kern[i], strides[i], dilations[i], pads[i], pads[nsp + i])
        for i in range(nsp)
    )
    acc = _accum_dtype(x.dtype)
    x = x.astype(acc, copy=False)
    w = w.astype(acc, copy=False)
    npix = math.prod(out)
    if all(k == 1 for k in kern) and not any(pads):
        # pointwise: a strided subsample, then a plain matmul
        xs = x[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in strides)]
        cols = xs.reshape(n, g, cg, npix)
        y = np.matmul(w.reshape(g, mg, cg), cols)
        return y.reshape((n, m) + out)
    if cg == 1 and g > 1 and (fast := accel.kernel("depthwise2d")) is not None and (
            y := fast(x, w, strides, pads, dilations, out)) is not None:
        return y.reshape((n, m) + out)
    if cg == 1 and g > 1 and all(s == 1 for s in strides):
        return _depthwise_unit_stride(x, w, pads, dilations, out).reshape((n, m) + out)
    cols = _gathered_cols(x, tuple(kern), strides, pads, dilations, out, g)
    if cols is None:
        xp = pad_spatial(x, pads[:nsp], pads[nsp:])
        if cg == 1 and g > 1:
            return _depthwise(xp, w, strides, dilations, out).reshape((n, m) + out)
        cols = _im2col(xp, kern, strides, dilations, out, g)
    y = np.matmul(w.reshape(g, mg, -1), cols)
    return y.reshape((n, m) + out)


def _im2col(xp: np.ndarray, kern: Sequence[int], strides: Sequence[int],
            dilations: Sequence[int], out: Sequence[int], g: int) -> np.ndarray:
    """The columns (N, groups, C/groups * K, pixels) of the padded ``xp``, in (C*K, pixels)
    order: long contiguous runs along the last spatial axis. A view where numpy's reshape
    can make one (the matmul then reads it strided), else a copy."""
    n, c, nsp = xp.shape[0], xp.shape[1], len(out)
    win = windows(xp, kern, strides, dilations, out)
    perm = (0, 1) + tuple(range(2 + nsp, 2 + 2 * nsp)) + tuple(range(2, 2 + nsp))
    return win.transpose(perm).reshape(n, g, c // g * math.prod(kern), math.prod(out))


#: convolutions whose columns hold at most this many elements per sample gather them with one
#: index made once per geometry (:func:`_gathered_cols`)
GATHER_COLS_MAX = 1 << 16
#: the gathering indices per geometry (None: not gathered), at most GATHER_PLANS of them
_gather_plans: dict[tuple[object, ...], np.ndarray | None] = {}
GATHER_PLANS = 256


def _gathered_cols(x: np.ndarray, kern: tuple[int, ...], strides: Sequence[int],
                   pads: Sequence[int], dilations: Sequence[int], out: tuple[int, ...],
                   g: int) -> np.ndarray | None:
    """:func:`_im2col` of the padded ``x`` for a small convolution, made by one gather from
    x with a zero appended (padding reads the zero): the same values in the same C-ordered
    array as _im2col's copy, without its padding, strided view and copy, whose numpy calls
    cost a small layer more than its matmul. None where _im2col is to be used: large
    columns, x not C-contiguous, depthwise, or where _im2col gives a view (the matmul
    would read another operand layout, and might round otherwise)."""
    if not x.flags.c_contiguous:
        return None
    key = (x.shape[1:], kern, tuple(strides), tuple(pads), tuple(dilations), g)
    plan = _gather_plans.get(key, False)
    if plan is False:
        plan = _gather_plan(x.shape[1:], kern, strides, pads, dilations, out, g)
        if len(_gather_plans) >= GATHER_PLANS:
            _gather_plans.clear()
        _gather_plans[key] = plan
    if plan is None:
        return None
    n = x.shape[0]
    flat = np.zeros((n, x[0].size + 1), x.dtype)  # the last column: the zero padding reads
    flat[:, :-1] = x.reshape(n, -1)
    return flat.take(plan, axis=1)


def _gather_plan(shape: tuple[int, ...], kern: tuple[int, ...], strides: Sequence[int],
                 pads: Sequence[int], dilations: Sequence[int], out: tuple[int, ...], g: int
                 ) -> np.ndarray | None:
    """Where :func:`_gathered_cols` reads each column element in x (C, *S) flattened, with
    C*S for padding: _im2col run on the positions themselves."""
    c, nsp = shape[0], len(out)
    size = math.prod(shape)
    if c == g and g > 1 or c // g * math.prod(kern) * math.prod(out) * g > GATHER_COLS_MAX:
        return None
    where = np.arange(size, dtype=np.intp).reshape((1, *shape))
    padded = pad_spatial(where, pads[:nsp], pads[nsp:], size)
    cols = _im2col(padded, kern, strides, dilations, out, g)
    if np.may_share_memory(cols, padded):  # a view: _im2col's operand layout differs
        return None
    return cols[0]


#: elements of one channel block of a depthwise convolution's output (its taps accumulate
#: while the block stays in the L2 cache)
DEPTHWISE_BLOCK = 1 << 16


def _depthwise(xp: np.ndarray, w: np.ndarray, strides: Sequence[int],
               dilations: Sequence[int], out: Sequence[int]) -> np.ndarray:
    """Depthwise convolution of the padded ``xp`` as (N, groups, M/groups, *out): one
    multiply-add per kernel tap, taps in order, over blocks of channels small enough to stay
    in cache (every output element sees the same additions in the same order whatever the
    block)."""
    n, g = xp.shape[:2]
    mg, kern, nsp = w.shape[0] // g, w.shape[2:], len(out)
    y = np.zeros((n, g, mg) + tuple(out), dtype=xp.dtype)
    wk = w.reshape((g, mg) + tuple(kern))
    per = max(1, DEPTHWISE_BLOCK // max(1, n * mg * math.prod(out)))
    taps = list(itertools.product(*(range(s) for s in kern)))
    for c0 in range(0, g, per):
        c1 = min(g, c0 + per)
        yb, xb = y[:, c0:c1], xp[:, c0:c1]
        term = np.empty_like(yb)  # one product buffer for every tap
        bshape = (1, c1 - c0, mg) + (1,) * nsp
        for k in taps:
            xs = tap(xb, k, strides, dilations, out)[:, :, None]
            np.multiply(xs, wk[(slice(c0, c1), slice(None)) + k].reshape(bshape), out=term)
            yb += term
    return y


def _depthwise_unit_stride(x: np.ndarray, w: np.ndarray, pads: Sequence[int],
                           dilations: Sequence[int], out: Sequence[int]) -> np.ndarray:
    """:func:`_depthwise` for stride 1 (of the unpadded ``x``), on the flattened padded image:
    a tap is then one contiguous run per channel, computed for every padded column of the
    output rows (the columns past the output width are dropped at the end). Each kept output
    element gets exactly the products and additions of the tap-by-tap loop, in the same
    order."""
    n, g = x.shape[:2]
    nsp = x.ndim - 2
    mg, kern = w.shape[0] // g, w.shape[2:]
    padded = tuple(s + pads[i] + pads[nsp + i] for i, s in enumerate(x.shape[2:]))
    inner = [math.prod(padded[i + 1:]) for i in range(nsp)]
    length = out[0] * inner[0]  # the output rows at the padded width
    offsets = [sum(k * d * st for k, d, st in zip(ks, dilations, inner))
               for ks in itertools.product(*(range(s) for s in kern))]
    total = math.prod(padded)
    flat = np.zeros((n, g, max(total, max(offsets) + length)), dtype=x.dtype)
    body = flat[:, :, :total].reshape((n, g) + padded)
    body[(slice(None), slice(None)) + tuple(slice(pads[i], pads[i] + s)
                                            for i, s in enumerate(x.shape[2:]))] = x
    wk = w.reshape(g, mg, -1)
    y = np.zeros((n, g, mg, length), dtype=x.dtype)
    per = max(1, DEPTHWISE_BLOCK // max(1, n * mg * length))
    for c0 in range(0, g, per):
        c1 = min(g, c0 + per)
        yb = y[:, c0:c1]
        term = np.empty_like(yb)
        for t, off in enumerate(offsets):
            np.multiply(flat[:, c0:c1, None, off:off + length], wk[None, c0:c1, :, t, None],
                        out=term)
            yb += term
    wide = y.reshape((n, g, mg, out[0]) + tuple(padded[1:]))
    return np.ascontiguousarray(wide[(Ellipsis,) + tuple(slice(0, o) for o in out[1:])])


# -- ConvTranspose -----------------------------------------------------------------------------


def _convt_out(size: int, k: int, s: int, d: int, pb: int, pe: int, op: int) -> int:
    return s * (size - 1) + op + (k - 1) * d + 1 - pb - pe


@register
class ConvTranspose:
    """The gradient of Conv with respect to its input: every x[n, c, i...] scatters
    x * w[c, m', k...] into y_full[n, m, i*s + k*d]; y = y_full cropped by pads, plus b[m].

    x: (N, C, *S); w: (C, M/group, *K); b: (M,) optional.
    out[i] = s*(S-1) + output_padding + (K-1)*d + 1 - pads_begin - pads_end; output_padding
    cells (and negative pads) that no input reaches hold just the bias.
    """

    operands = ("x", "w", "b?")
    flops = cost.conv_transpose
    attrs = {
        "strides": Attr("ints"),
        "pads": Attr("ints", doc="cropped from the full output: begin per axis, then end"),
        "dilations": Attr("ints"),
        "group": Attr("int", 1),
        "output_padding": Attr("ints", doc="extra cells at the end of each axis"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        x, w = require_inputs("ConvTranspose", ins, 2)
        nsp = check_spatial("ConvTranspose", x, a, ("strides", "dilations"))
        types = [x, w] + ([ins[2]] if len(ins) > 2 and ins[2] is not None else [])
        reject_quant("ConvTranspose", types)
        dt = same_dtype("ConvTranspose", types)
        require(dt is not DType.bool, "ConvTranspose: needs numeric inputs")
        require(len(w.shape) == nsp + 2,
                f"ConvTranspose: weight must have rank {nsp + 2}, got {w.shape}")
        g, c = a["group"], x.shape[1]
        require(g >= 1 and c % g == 0, f"ConvTranspose: group {g} must divide channels {c}")
        require(w.shape[0] == c, f"ConvTranspose: weight has {w.shape[0]} input channels, x {c}")
        m = w.shape[1] * g
        if len(types) == 3:
            require(types[2].shape == (m,), f"ConvTranspose: bias must have shape [{m}]")
        opad = a["output_padding"]
        require(len(opad) == nsp and all(p >= 0 for p in opad),
                f"ConvTranspose: output_padding needs {nsp} entries >= 0, got {opad}")
        pads = a["pads"]
        out = tuple(
            _convt_out(x.shape[2 + i], w.shape[2 + i], a["strides"][i], a["dilations"][i],
                       pads[i], pads[nsp + i], opad[i])
            for i in range(nsp)
        )
        require(all(o >= 1 for o in out), f"ConvTranspose: empty output {list(out)}")
        return [TensorType((x.shape[0], m) + out, dt)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, w, b = ins[0], ins[1], ins[2] if len(ins) > 2 else None
        assert x is not None and w is not None
        nsp = x.ndim - 2
        n, c = x.shape[:2]
        g = a["group"]
        cg, mg, kern = c // g, w.shape[1], w.shape[2:]
        s, d, pads, opad = a["strides"], a["dilations"], a["pads"], a["output_padding"]
        acc = _accum_dtype(x.dtype)
        size = x.shape[2:]
        # one matmul gives every (output channel, tap) contribution of every input pixel
        wt = w.astype(acc, copy=False).reshape(g, cg, -1).transpose(0, 2, 1)
        cols = np.matmul(wt, x.astype(acc, copy=False).reshape(n, g, cg, -1))
        cols = cols.reshape((n, g, mg) + tuple(kern) + tuple(size))
        full = [s[i] * (size[i] - 1) + opad[i] + (kern[i] - 1) * d[i] + 1 for i in range(nsp)]
        lo = [max(0, -pads[i]) for i in range(nsp)]
        buf_shape = tuple(lo[i] + full[i] + max(0, -pads[nsp + i]) for i in range(nsp))
        buf = np.zeros((n, g, mg) + buf_shape, dtype=acc)
        lead = (slice(None),) * 3
        for k in itertools.product(*(range(kk) for kk in kern)):
            dst = tuple(
                slice(lo[i] + k[i] * d[i], lo[i] + k[i] * d[i] + (size[i] - 1) * s[i] + 1, s[i])
                for i in range(nsp)
            )
            buf[lead + dst] += cols[lead + k]
        out = [full[i] - pads[i] - pads[nsp + i] for i in range(nsp)]
        crop = tuple(slice(lo[i] + pads[i], lo[i] + pads[i] + out[i]) for i in range(nsp))
        y = buf[lead + crop].reshape((n, g * mg) + tuple(out))
        if b is not None:
            y = y + b.astype(acc).reshape((1, -1) + (1,) * nsp)
        return [np.ascontiguousarray(y).astype(x.dtype, copy=False)]


# -- DeformConv ----------------------------------------------------------------------------


@register
class DeformConv:
    """Conv whose kernel taps move: y[n, m, oh, ow] = b[m] + sum_{c, k} w[m, c', k] *
    mask[n, g, k, oh, ow] * bilinear(x[n, c], oh*s_h - pad_top + kh*d_h + off_y,
    ow*s_w - pad_left + kw*d_w + off_x), with (off_y, off_x) = offset[n, g, k, 0/1, oh, ow]
    for the offset group g = c // (C / offset_group) (mask 1 when omitted). The bilinear
    sample weights the four surrounding pixels, a pixel outside x reading 0. 2-D only.
    Inputs: x (N, C, H, W), w (M, C/group, kH, kW), offset (N, og*2*kH*kW, oH, oW),
    b (M,), mask (N, og*kH*kW, oH, oW).
    """

    operands = ("x", "w", "offset", "b?", "mask?")
    flops = cost.conv
    attrs = {
        "strides": Attr("ints", doc="step per spatial axis"),
        "pads": Attr("ints", doc="zero padding: begin per axis, then end per axis"),
        "dilations": Attr("ints", doc="spacing of kernel taps per axis"),
        "group": Attr("int", 1, doc="channel groups"),
        "offset_group": Attr("int", 1, doc="channel groups that share offsets and mask"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        op = "DeformConv"
        x, w, off = require_inputs(op, ins, 3)
        nsp = check_spatial(op, x, a, ("strides", "dilations"))
        require(nsp == 2, f"{op}: only 2-D inputs (N, C, H, W) are supported, got {x.shape}")
        require(x.dtype.is_float and w.dtype is x.dtype and off.dtype is x.dtype,
                f"{op}: x, w and offset must be float tensors of one type")
        require(len(w.shape) == 4, f"{op}: weight must have rank 4, got {w.shape}")
        g, og, m, c = a["group"], a["offset_group"], w.shape[0], x.shape[1]
        require(g >= 1 and c % g == 0 and m % g == 0 and w.shape[1] * g == c,
                f"{op}: group {g} must divide the channels {c}, {m} (weight {list(w.shape)})")
        require(og >= 1 and c % og == 0, f"{op}: offset_group {og} must divide {c} channels")
        out = tuple(_conv_out(x.shape[2 + i], w.shape[2 + i], a["strides"][i],
                              a["dilations"][i], a["pads"][i], a["pads"][2 + i])
                    for i in range(2))
        kk = w.shape[2] * w.shape[3]
        require(off.shape == (x.shape[0], og * 2 * kk, *out),
                f"{op}: offset must be {[x.shape[0], og * 2 * kk, *out]}, got {list(off.shape)}")
        b = ins[3] if len(ins) > 3 else None
        mask = ins[4] if len(ins) > 4 else None
        if b is not None:
            require(b.shape == (m,), f"{op}: bias must have shape [{m}]")
        if mask is not None:
            require(mask.shape == (x.shape[0], og * kk, *out),
                    f"{op}: mask must be {[x.shape[0], og * kk, *out]}, got {list(mask.shape)}")
        return [TensorType((x.shape[0], m, *out), x.dtype)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, w, off = ins[0], ins[1], ins[2]
        b = ins[3] if len(ins) > 3 else None
        mask = ins[4] if len(ins) > 4 else None
        assert x is not None and w is not None and off is not None
        n, c, h, wd = x.shape
        m, cpg, kh, kw = w.shape
        oh, ow = off.shape[2:]
        og, g, kk = a["offset_group"], a["group"], kh * kw
        (sh, sw), (dh, dw), pads = a["strides"], a["dilations"], a["pads"]
        off = off.astype(np.float64).reshape(n, og, kk, 2, oh, ow)
        msk = (np.ones((n, og, kk, oh, ow)) if mask is None
               else mask.astype(np.float64).reshape(n, og, kk, oh, ow))
        ki, kj = np.divmod(np.arange(kk), kw)
        py = (np.arange(oh) * sh - pads[0])[None, None, None, :, None] + \
            (ki * dh)[None, None, :, None, None] + off[:, :, :, 0]
        px = (np.arange(ow) * sw - pads[1])[None, None, None, None, :] + \
            (kj * dw)[None, None, :, None, None] + off[:, :, :, 1]
        grp = np.arange(c) // (c // og)  # each channel's offset group
        py, px, msk = py[:, grp], px[:, grp], msk[:, grp]  # (N, C, K, oH, oW)
        y0, x0 = np.floor(py), np.floor(px)
        ni = np.arange(n)[:, None, None, None, None]
        ci = np.arange(c)[None, :, None, None, None]
        cols = np.zeros(py.shape)
        for dy, dx in itertools.product((0, 1), (0, 1)):
            yi, xi = y0 + dy, x0 + dx
            wt = (py - y0 if dy else 1 - (py - y0)) * (px - x0 if dx else 1 - (px - x0))
            ok = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < wd)
            val = x[ni, ci, np.clip(yi, 0, h - 1).astype(np.int64),
                    np.clip(xi, 0, wd - 1).astype(np.int64)]
            cols += np.where(ok, wt * val, 0)
        cols = (cols * msk).reshape(n, g, cpg, kk, oh, ow)
        wg = w.astype(np.float64).reshape(g, m // g, cpg, kk)
        y = np.einsum("ngckhw,gock->ngohw", cols, wg).reshape(n, m, oh, ow)
        if b is not None:
            y = y + b.astype(np.float64)[None, :, None, None]
        return [y.astype(x.dtype)]


# -- CausalConvWithState -------------------------------------------------------------------


@register
class CausalConvWithState:
    """The causal depthwise 1-D convolution of a decode step: with the sequence
    p = concat(past_state (zeros when omitted), x) along the length axis,
    y[n, c, t] = act(b[c] + sum_j w[c, 0, j] * p[n, c, t + j]) for t < L, act SiLU (y *
    sigmoid(y)) or none, and present_state = the last k - 1 positions of p.
    Inputs: x (N, C, L), w (C, 1, k), b (C,), past_state (N, C, k - 1).
    """

    operands = ("x", "w", "b?", "past_state?")
    flops = cost.conv
    outputs = 2
    attrs = {"activation": Attr("str", "none", "none or silu (swish is silu)")}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        op = "CausalConvWithState"
        x, w = require_inputs(op, ins, 2)
        require(len(x.shape) == 3 and x.dtype.is_float,
                f"{op}: x must be a float (N, C, L) tensor, got {x}")
        n, c, _ = x.shape
        require(len(w.shape) == 3 and w.shape[:2] == (c, 1) and w.shape[2] >= 1,
                f"{op}: weight must be ({c}, 1, k), got {list(w.shape)}")
        k = w.shape[2]
        b = ins[2] if len(ins) > 2 else None
        past = ins[3] if len(ins) > 3 else None
        if b is not None:
            require(b.shape == (c,), f"{op}: bias must have shape [{c}], got {list(b.shape)}")
        if past is not None:
            require(past.shape == (n, c, k - 1),
                    f"{op}: past_state must be {[n, c, k - 1]}, got {list(past.shape)}")
        for t in [w, b, past]:
            require(t is None or t.dtype is x.dtype, f"{op}: all inputs must be {x.dtype.value}")
        require(a["activation"] in ("none", "silu"), f"{op}: activation must be none or silu")
        return [TensorType(x.shape, x.dtype), TensorType((n, c, k - 1), x.dtype)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, w = ins[0], ins[1]
        b = ins[2] if len(ins) > 2 else None
        past = ins[3] if len(ins) > 3 else None
        assert x is not None and w is not None
        n, c, length = x.shape
        k = w.shape[2]
        acc = _accum_dtype(x.dtype)
        if past is None:
            past = np.zeros((n, c, k - 1), x.dtype)
        p = np.concatenate([past, x], axis=2).astype(acc)
        y = np.zeros((n, c, length), acc)
        for j in range(k):
            y += p[:, :, j:j + length] * w[:, 0, j].astype(acc)[None, :, None]
        if b is not None:
            y += b.astype(acc)[None, :, None]
        if a["activation"] == "silu":
            y = y / (1 + np.exp(-y))
        return [y.astype(x.dtype), p[:, :, p.shape[2] - (k - 1):].astype(x.dtype)]
