"""Normalisation ops: batch/instance/layer norm, mean-variance and Lp normalisation, and the
softmax family (Softmax, LogSoftmax, Hardmax), which normalise along one axis.

These ops have no good integer form, so the quantiser keeps them as float islands. The ops
with statistics (mean, variance, norms) compute in at least f32, since f16 sums of many
squares lose too much, and cast back to the input's type; LayerNormalization follows its
explicit stash type instead. The softmax family computes in the input's own type, as ONNX
defines it: after subtracting the maximum every exp is in (0, 1], so f16 is safe, and models
exported in f16 (attention blocks) were validated against exactly that rounding.
"""

from __future__ import annotations

import math

import numpy as np

from ir.graph import Node
from ir.ops import cost
from ir.ops.common import broadcast_shapes, norm_axis, require_inputs
from ir.ops.registry import Attr, Attrs, OpError, register, require
from ir.qforms import QuantContext, fused_activation, needs, result_attrs
from ir.types import DType, TensorType


def _float_input(op: str, t: TensorType, what: str = "input") -> None:
    if not t.dtype.is_float:
        raise OpError(f"{op}: {what} must be a float tensor, got {t.dtype.value}")


def _work_dtype(*arrays: np.ndarray) -> np.dtype:
    """The dtype the reference computes in: the inputs' widest float type, at least f32."""
    return np.result_type(np.float32, *[a.dtype for a in arrays])


def _channel_params(op: str, x: TensorType, params: list[TensorType], names: list[str]) -> None:
    """Per-channel parameters: 1-D float tensors of length C = x.shape[1]."""
    require(len(x.shape) >= 2, f"{op}: input must have rank >= 2 (N, C, ...), got {x.shape}")
    c = x.shape[1]
    for t, name in zip(params, names):
        _float_input(op, t, name)
        require(t.shape == (c,), f"{op}: {name} must have shape ({c},), got {list(t.shape)}")


def _per_channel(p: np.ndarray, rank: int, dt: np.dtype) -> np.ndarray:
    """A (C,) parameter viewed as (C, 1, ..., 1) so it broadcasts against (N, C, D1, ...)."""
    return p.astype(dt, copy=False).reshape((-1,) + (1,) * (rank - 2))


def batchnorm_affine(scale: np.ndarray, bias: np.ndarray, mean: np.ndarray, var: np.ndarray,
                     epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """(s, t) in float64 with BatchNormalization(x) = x * s + t per channel (the real-number
    identity the passes and the quantiser fold with): s = scale / sqrt(var + epsilon),
    t = bias - mean * s."""
    s = scale.astype(np.float64) / np.sqrt(var.astype(np.float64) + epsilon)
    return s, bias.astype(np.float64) - mean.astype(np.float64) * s


def quantize_batchnorm(ctx: QuantContext, node: Node) -> None:
    """A BatchNormalization no layer absorbed (e.g. DenseNet's, after a Concat) is the
    per-channel map x * s + t: a depthwise 1x1 QConv with weight s and bias t (a following
    Relu/Clip fused), so it runs as an integer layer instead of a float island."""
    x = node.x
    params = [node.scale, node.bias, node.mean, node.var]
    needs(x is not None and x.type.rank == 4 and len(node.outputs) == 1
          and all(ctx.is_constant(v) for v in params))
    s, t = batchnorm_affine(*(np.asarray(ctx.constant(v)) for v in params),
                            node.attrs["epsilon"])
    channels = x.type.shape[1]
    act, result = fused_activation(ctx, node.outputs[0])
    out = result_attrs(ctx, result, act)
    xq = ctx.act(x)
    w = s.reshape(channels, 1, 1, 1).astype(np.float32)
    wq, bq = ctx.weights(node, x, xq, w, t, groups=channels)
    attrs = {"dilations": [1, 1], "group": channels, "pads": [0, 0, 0, 0], "strides": [1, 1],
             **out}
    ctx.emit("QConv", [xq, wq, bq], attrs, [node, act], [result])


@register
class BatchNormalization:
    """Inference-form batch normalisation over channel axis 1, with stored statistics:
    y = scale * (x - mean) / sqrt(var + epsilon) + bias.

    Only the inference form exists in the IR (qnnc compiles inference graphs); the
    fold-batchnorm pass folds it into a preceding Conv/Gemm when it can.
    Inputs: x (N, C, ...), scale, bias, mean, var (each (C,)).
    """

    operands = ("x", "scale", "bias", "mean", "var")
    flops = cost.per_element(2)  # one multiply-add, scale and shift folded
    quantized = quantize_batchnorm
    attrs = {"epsilon": Attr("float", 1e-5, "added to var before the square root")}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        x, *params = require_inputs("BatchNormalization", ins, 5)
        _float_input("BatchNormalization", x)
        _channel_params("BatchNormalization", x, params, ["scale", "bias", "mean", "var"])
        return [TensorType(x.shape, x.dtype)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, scale, bias, mean, var = ins
        assert x is not None and scale is not None and bias is not None
        assert mean is not None and var is not None
        dt = _work_dtype(x, scale, bias, mean, var)
        r = x.ndim
        inv = 1.0 / np.sqrt(_per_channel(var, r, dt) + dt.type(a["epsilon"]))
        y = (x.astype(dt) - _per_channel(mean, r, dt)) * (inv * _per_channel(scale, r, dt))
        return [(y + _per_channel(bias, r, dt)).astype(x.dtype)]


@register
class InstanceNormalization:
    """Normalise each (n, c) slice over its spatial axes with its own statistics:
    y = scale[c] * (x - mean_nc) / sqrt(var_nc + epsilon) + bias[c].

    Inputs: x (N, C, D1, ...), scale (C,), bias (C,).
    """

    operands = ("x", "scale", "bias")
    flops = cost.per_element(8)
    attrs = {"epsilon": Attr("float", 1e-5, "added to the variance before the square root")}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        x, scale, bias = require_inputs("InstanceNormalization", ins, 3)
        _float_input("InstanceNormalization", x)
        _channel_params("InstanceNormalization", x, [scale, bias], ["scale", "bias"])
        return [TensorType(x.shape, x.dtype)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, scale, bias = ins
        assert x is not None and scale is not None and bias is not None
        dt = _work_dtype(x, scale, bias)
        xw = x.astype(dt)
        axes = tuple(range(2, x.ndim))
        mean = xw.mean(axis=axes, keepdims=True)
        d = xw - mean
        var = (d * d).mean(axis=axes, keepdims=True)
        y = d / np.sqrt(var + dt.type(a["epsilon"]))
        y = y * _per_channel(scale, x.ndim, dt) + _per_channel(bias, x.ndim, dt)
        return [y.astype(x.dtype)]


@register
class LayerNormalization:
    """Standardise over the trailing axes [axis, rank), then scale and shift:
    n = (x - mean) / sqrt(var + epsilon), computed in the ``stash`` type and cast to x's;
    y = n * scale + bias (scale and bias broadcast unidirectionally to x).

    With ``stats``, the op also returns mean and 1/sqrt(var + epsilon) (in the stash type,
    shape x.shape[:axis] + (1,) * (rank - axis)), as ONNX's optional outputs do; without it
    there is one output, which is what later passes and code generators expect.
    """

    operands = ("x", "scale", "bias?")
    flops = cost.per_element(8)  # mean, centre, square, sum, rsqrt, scale, shift
    outputs = -1
    attrs = {
        "axis": Attr("int", doc="first normalised axis (canonical: >= 0)"),
        "epsilon": Attr("float", 1e-5, "added to the variance before the square root"),
        "stash": Attr("str", "f32", "element type of the statistics and of stage one"),
        "stats": Attr("bool", False, "also output mean and inverse standard deviation"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        op = "LayerNormalization"
        x, scale = require_inputs(op, ins, 2)
        _float_input(op, x)
        axis = norm_axis(op, a["axis"], len(x.shape))
        require(axis == a["axis"], f"{op}: axis must be canonical (>= 0), got {a['axis']}")
        try:
            stash = DType(a["stash"])
        except ValueError:
            raise OpError(f"{op}: stash type {a['stash']!r} is not an IR type") from None
        require(stash.is_float, f"{op}: stash type must be a float type, got {stash.value}")
        params = [("scale", scale)] + ([("bias", ins[2])] if len(ins) > 2 and ins[2] else [])
        for name, t in params:
            assert t is not None
            _float_input(op, t, name)
            require(
                broadcast_shapes(op, x.shape, t.shape) == x.shape,
                f"{op}: {name} of shape {list(t.shape)} does not broadcast to x {list(x.shape)}",
            )
        out = [TensorType(x.shape, x.dtype)]
        if a["stats"]:
            stat_shape = x.shape[:axis] + (1,) * (len(x.shape) - axis)
            out += [TensorType(stat_shape, stash)] * 2
        return out

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, scale = ins[0], ins[1]
        bias = ins[2] if len(ins) > 2 else None
        assert x is not None and scale is not None
        stash = DType(a["stash"]).np
        axes = tuple(range(a["axis"], x.ndim))
        xs = x.astype(stash)
        mean = xs.mean(axis=axes, keepdims=True)
        d = xs - mean
        var = (d * d).mean(axis=axes, keepdims=True)
        inv_std = 1.0 / np.sqrt(var + stash.type(a["epsilon"]))
        y = (d * inv_std).astype(x.dtype) * scale.astype(x.dtype)
        if bias is not None:
            y = y + bias.astype(x.dtype)
        out = [y.astype(x.dtype)]
        if a["stats"]:
            out += [mean.astype(stash), inv_std.astype(stash)]
        return out



def stash_type(op: str, a: Attrs) -> DType:
    """The op's ``stash`` attribute as a float DType, or an OpError."""
    try:
        stash = DType(a["stash"])
    except ValueError:
        raise OpError(f"{op}: stash type {a['stash']!r} is not an IR type") from None
    require(stash.is_float, f"{op}: stash type must be a float type, got {stash.value}")
    return stash


@register
class GroupNormalization:
    """Standardise each group of C / num_groups channels of each sample over the group's
    channels and spatial positions, then scale and shift per channel:
    n = (x - mean_ng) / sqrt(var_ng + epsilon), computed in the ``stash`` type, cast to x's;
    y[n, c] = n[n, c] * scale[c'] + bias[c'].

    scale and bias have one entry per channel (ONNX opset 21: c' = c) or one per group
    (opset 18: c' = c // (C / num_groups)); their length says which, and when the two are
    equal (one channel per group) both readings agree.
    """

    operands = ("x", "scale", "bias")
    flops = cost.per_element(8)
    attrs = {
        "num_groups": Attr("int", doc="groups the channels are split into (divides C)"),
        "epsilon": Attr("float", 1e-5, "added to the variance before the square root"),
        "stash": Attr("str", "f32", "element type of the statistics"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        op = "GroupNormalization"
        x, scale, bias = require_inputs(op, ins, 3)
        _float_input(op, x)
        stash_type(op, a)
        require(len(x.shape) >= 2, f"{op}: input must have rank >= 2 (N, C, ...), got {x.shape}")
        c, g = x.shape[1], a["num_groups"]
        require(g >= 1 and c % g == 0, f"{op}: num_groups {g} must divide the {c} channels")
        for name, t in (("scale", scale), ("bias", bias)):
            _float_input(op, t, name)
            require(t.shape in ((c,), (g,)),
                    f"{op}: {name} must have shape ({c},) or ({g},), got {list(t.shape)}")
        return [TensorType(x.shape, x.dtype)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, scale, bias = ins
        assert x is not None and scale is not None and bias is not None
        stash = DType(a["stash"]).np
        n, c, g = x.shape[0], x.shape[1], a["num_groups"]
        xs = x.astype(stash).reshape(n, g, -1)
        mean = xs.mean(axis=2, keepdims=True)
        d = xs - mean
        var = (d * d).mean(axis=2, keepdims=True)
        norm = (d / np.sqrt(var + stash.type(a["epsilon"]))).astype(x.dtype).reshape(x.shape)

        def per_channel(p: np.ndarray) -> np.ndarray:
            p = np.repeat(p, c // g) if p.shape[0] != c else p
            return p.astype(x.dtype).reshape((c,) + (1,) * (x.ndim - 2))

        return [(norm * per_channel(scale) + per_channel(bias)).astype(x.dtype)]


@register
class RMSNormalization:
    """Divide by the root mean square over the trailing axes [axis, rank), then scale:
    n = x / sqrt(mean(x^2) + epsilon), computed in the ``stash`` type and cast to x's;
    y = n * scale (scale broadcasts unidirectionally to x)."""

    operands = ("x", "scale")
    flops = cost.per_element(4)  # square, sum, multiply by the reciprocal, scale
    attrs = {
        "axis": Attr("int", doc="first normalised axis (canonical: >= 0)"),
        "epsilon": Attr("float", 1e-5, "added to the mean square before the square root"),
        "stash": Attr("str", "f32", "element type of the statistics"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        op = "RMSNormalization"
        x, scale = require_inputs(op, ins, 2)
        _float_input(op, x)
        _float_input(op, scale, "scale")
        stash_type(op, a)
        require(norm_axis(op, a["axis"], len(x.shape)) == a["axis"],
                f"{op}: axis must be canonical (>= 0), got {a['axis']}")
        require(broadcast_shapes(op, x.shape, scale.shape) == x.shape,
                f"{op}: scale of shape {list(scale.shape)} does not broadcast to x "
                f"{list(x.shape)}")
        return [TensorType(x.shape, x.dtype)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, scale = ins
        assert x is not None and scale is not None
        stash = DType(a["stash"]).np
        xs = x.astype(stash)
        axes = tuple(range(a["axis"], x.ndim))
        if xs.dtype.itemsize >= 4:  # the mean as ndarray.mean takes it (a sum divided by
            # the count), without its per-call cost: RMSNorm runs twice per layer and token
            ms = np.add.reduce(xs * xs, axis=axes, keepdims=True)
            ms /= math.prod(x.shape[k] for k in axes)
        else:  # 16-bit statistics: mean sums in float32
            ms = (xs * xs).mean(axis=axes, keepdims=True)
        norm = (xs * (1 / np.sqrt(ms + stash.type(a["epsilon"])))).astype(x.dtype)
        return [(norm * scale.astype(x.dtype)).astype(x.dtype)]


@register
class MeanVarianceNormalization:
    """Standardise over ``axes`` without affine parameters:
    y = (x - mean) / (sqrt(var) + 1e-9), mean and var taken over ``axes`` (ONNX's formula)."""

    operands = ("x",)
    flops = cost.per_element(8)
    attrs = {"axes": Attr("ints", [0, 2, 3], "reduced axes (canonical: sorted, >= 0)")}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        op = "MeanVarianceNormalization"
        (x,) = require_inputs(op, ins, 1)
        _float_input(op, x)
        axes = [norm_axis(op, ax, len(x.shape)) for ax in a["axes"]]
        require(axes == a["axes"] == sorted(set(axes)),
                f"{op}: axes must be sorted, unique and >= 0, got {a['axes']}")
        return [TensorType(x.shape, x.dtype)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        xw = x.astype(_work_dtype(x))
        axes = tuple(a["axes"])
        mean = xw.mean(axis=axes, keepdims=True)
        d = xw - mean
        std = np.sqrt((d * d).mean(axis=axes, keepdims=True))
        return [(d / (std + xw.dtype.type(1e-9))).astype(x.dtype)]


@register
class LpNormalization:
    """Divide by the Lp norm along ``axis`` (p = 1 or 2): y = x / ||x||_p, and 0 where the
    norm is 0 (so an all-zero slice stays zero instead of becoming NaN)."""

    operands = ("x",)
    flops = cost.per_element(3)  # square (or abs), sum, divide
    attrs = {
        "axis": Attr("int", doc="normalised axis (canonical: >= 0)"),
        "p": Attr("int", 2, "order of the norm: 1 or 2"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        op = "LpNormalization"
        (x,) = require_inputs(op, ins, 1)
        _float_input(op, x)
        require(norm_axis(op, a["axis"], len(x.shape)) == a["axis"],
                f"{op}: axis must be canonical (>= 0), got {a['axis']}")
        require(a["p"] in (1, 2), f"{op}: p must be 1 or 2, got {a['p']}")
        return [TensorType(x.shape, x.dtype)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        xw = x.astype(_work_dtype(x))
        if a["p"] == 1:
            norm = np.abs(xw).sum(axis=a["axis"], keepdims=True)
        else:
            norm = np.sqrt((xw * xw).sum(axis=a["axis"], keepdims=True))
        safe = np.where(norm == 0, 1, norm)
        return [np.where(norm == 0, 0, xw / safe).astype(x.dtype)]



def _axis_infer(op: str, ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
    (x,) = require_inputs(op, ins, 1)
    _float_input(op, x)
    require(norm_axis(op, a["axis"], len(x.shape)) == a["axis"],
            f"{op}: axis must be canonical (>= 0), got {a['axis']}")
    return [TensorType(x.shape, x.dtype)]


_AXIS = {"axis": Attr("int", doc="the one normalised axis (canonical: >= 0)")}


@register
class Softmax:
    """y = exp(x - max(x)) / sum(exp(x - max(x))) along the single axis ``axis``.

    ONNX before opset 13 normalised over all axes from ``axis`` on (a 2-D coercion); the
    frontend expresses that with Reshapes around this op, so the IR has one meaning."""

    operands = ("x",)
    flops = cost.per_element(5)  # max, subtract, exp, sum, divide
    attrs = _AXIS

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        return _axis_infer("Softmax", ins, a)

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        with np.errstate(invalid="ignore"):  # a row of -inf (all masked) is NaN, as in ONNX
            e = np.exp(x - x.max(axis=a["axis"], keepdims=True))
            return [(e / e.sum(axis=a["axis"], keepdims=True)).astype(x.dtype)]


@register
class LogSoftmax:
    """y = (x - max(x)) - log(sum(exp(x - max(x)))) along the single axis ``axis``
    (the same axis convention as Softmax)."""

    operands = ("x",)
    flops = cost.per_element(5)
    attrs = _AXIS

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        return _axis_infer("LogSoftmax", ins, a)

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        d = x - x.max(axis=a["axis"], keepdims=True)
        return [(d - np.log(np.exp(d).sum(axis=a["axis"], keepdims=True))).astype(x.dtype)]


@register
class Hardmax:
    """y = 1 at the first maximum along ``axis``, 0 elsewhere (the same axis convention as
    Softmax)."""

    operands = ("x",)
    flops = cost.per_element(2)
    attrs = _AXIS

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        return _axis_infer("Hardmax", ins, a)

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        y = np.zeros_like(x)
        if x.size:
            first = np.expand_dims(np.argmax(x, axis=a["axis"]), a["axis"])
            np.put_along_axis(y, first, 1, axis=a["axis"])
        return [y]
