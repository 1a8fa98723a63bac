"""Pooling and local normalisation: MaxPool, AveragePool, LpPool, the global pools, LRN.

Windowed pools share Conv's canonical spatial attributes (kernel_shape, strides, pads,
dilations, one entry per axis, pads two) plus ceil_mode, which is kept because it is more than
extra padding: a window may run past the padded input, and those cells are never counted.
Computation loops over the kernel taps only (a handful), each a strided view of the whole
input, so it stays vectorised.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from ir import qforms
from ir.ops import cost
from ir.ops.common import require_inputs
from ir.ops.conv import check_spatial, pad_spatial, tap
from ir.ops.registry import Attr, Attrs, OpError, register, require
from ir.types import DType, TensorType, is_float_dtype

_WINDOW_ATTRS = {
    "kernel_shape": Attr("ints", doc="window size per spatial axis"),
    "strides": Attr("ints"),
    "pads": Attr("ints", doc="begin per axis, then end per axis"),
    "dilations": Attr("ints"),
    "ceil_mode": Attr("bool", False, doc="round the output size up (last window may overhang)"),
}


def pool_out(size: int, k: int, s: int, d: int, pb: int, pe: int, ceil_mode: bool) -> int:
    """Output length of one axis. In ceil mode a window that would start in the end padding
    is dropped, as ONNX (and PyTorch) specify."""
    span = size + pb + pe - ((k - 1) * d + 1)
    if not ceil_mode:
        return span // s + 1
    out = -(-span // s) + 1
    if (out - 1) * s >= size + pb:
        out -= 1
    return out


def _infer_window(op: str, ins: list[TensorType | None], a: Attrs) -> TensorType:
    (x,) = require_inputs(op, ins, 1)
    nsp = check_spatial(op, x, a, ("kernel_shape", "strides", "dilations"))
    pads = a["pads"]
    require(all(p >= 0 for p in pads), f"{op}: pads must be >= 0, got {pads}")
    out = tuple(
        pool_out(x.shape[2 + i], a["kernel_shape"][i], a["strides"][i], a["dilations"][i],
                 pads[i], pads[nsp + i], a["ceil_mode"])
        for i in range(nsp)
    )
    require(all(o >= 1 for o in out), f"{op}: the window does not fit, output {list(out)}")
    # the window ops that move data (MaxPool) keep a per-tensor quantisation
    quant = x.quant if x.quant is not None and not x.quant.per_channel else None
    return TensorType(x.shape[:2] + out, x.dtype, quant)


def _geometry(x: np.ndarray, a: Attrs) -> tuple[list[int], list[int], list[int]]:
    """(output sizes, pads before, pads after) where `after` reaches the last window's end."""
    nsp = x.ndim - 2
    k, s, d, p = a["kernel_shape"], a["strides"], a["dilations"], a["pads"]
    out = [pool_out(x.shape[2 + i], k[i], s[i], d[i], p[i], p[nsp + i], a["ceil_mode"])
           for i in range(nsp)]
    after = [max(0, (out[i] - 1) * s[i] + (k[i] - 1) * d[i] + 1 - p[i] - x.shape[2 + i])
             for i in range(nsp)]
    return out, list(p[:nsp]), after


def _tap_counts(shape: tuple[int, ...], a: Attrs) -> list[np.ndarray]:
    """Per spatial axis, how many taps of each output window AveragePool divides by: those
    inside x, or inside x and its pads (count_include_pad); taps past the pads never count."""
    nsp = len(shape) - 2
    k, s, d, p = a["kernel_shape"], a["strides"], a["dilations"], a["pads"]
    counts = []
    for i in range(nsp):
        size = shape[2 + i]
        out = pool_out(size, k[i], s[i], d[i], p[i], p[nsp + i], a["ceil_mode"])
        lo, hi = (-p[i], size + p[nsp + i]) if a["count_include_pad"] else (0, size)
        pos = (np.arange(out) * s[i] - p[i])[:, None] + (np.arange(k[i]) * d[i])[None, :]
        counts.append(((pos >= lo) & (pos < hi)).sum(axis=1))
    return counts


def _lowest(dt: np.dtype) -> float | int:
    return -np.inf if is_float_dtype(dt) else int(np.iinfo(dt).min)


@register
class MaxPool:
    """y[n, c, o...] = max over taps k of x[n, c, o*s - pads_begin + k*d], padding ignored.

    With ``indices``, a second output (i64) holds the argmax (first on ties) as a flat index
    into x (N, C, *S); storage_order 1 numbers the spatial axes column-major.
    """

    operands = ("x",)
    flops = cost.window
    tiled = "pool"
    staged = True
    stacks = "together"  # maxima; the indices output (flat over the batch) is not stacked
    quantized = qforms.on_codes
    outputs = -1
    attrs = {
        **_WINDOW_ATTRS,
        "indices": Attr("bool", False, doc="also return the argmax indices"),
        "storage_order": Attr("int", 0, doc="0: row-major indices, 1: column-major"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        y = _infer_window("MaxPool", ins, a)
        require(y.dtype is not DType.bool, "MaxPool: needs numeric input")
        require(a["storage_order"] in (0, 1), "MaxPool: storage_order must be 0 or 1")
        return [y, TensorType(y.shape, DType.i64)] if a["indices"] else [y]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        out, before, after = _geometry(x, a)
        xp = pad_spatial(x, before, after, _lowest(x.dtype))
        s, d = a["strides"], a["dilations"]
        taps = list(itertools.product(*(range(k) for k in a["kernel_shape"])))
        if not a["indices"]:
            y = tap(xp, taps[0], s, d, out).copy()
            for k in taps[1:]:
                np.maximum(y, tap(xp, k, s, d, out), out=y)
            return [y]
        return list(_max_with_indices(x, xp, taps, out, before, a))


def _max_with_indices(
    x: np.ndarray, xp: np.ndarray, taps: list[tuple[int, ...]], out: Sequence[int],
    before: Sequence[int], a: Attrs,
) -> tuple[np.ndarray, np.ndarray]:
    nsp = x.ndim - 2
    s, d, size = a["strides"], a["dilations"], x.shape[2:]
    # flat-index weight of each spatial axis, and of each (n, c) plane
    order = range(nsp) if a["storage_order"] else range(nsp - 1, -1, -1)
    weight = [0] * nsp
    acc = 1
    for i in order:
        weight[i], acc = acc, acc * size[i]
    plane = np.arange(x.shape[0] * x.shape[1], dtype=np.int64).reshape(x.shape[:2])
    plane = plane.reshape(x.shape[:2] + (1,) * nsp) * acc
    best = np.full(x.shape[:2] + tuple(out), _lowest(x.dtype), dtype=x.dtype)
    idx = np.full(best.shape, -1, dtype=np.int64)
    for k in taps:
        val = tap(xp, k, s, d, out)
        flat = np.zeros((1, 1) + tuple(out), dtype=np.int64)
        valid = np.ones((1, 1) + tuple(out), dtype=bool)
        for i in range(nsp):
            pos = np.arange(out[i]) * s[i] - before[i] + k[i] * d[i]
            shape = (1, 1) + tuple(out[j] if j == i else 1 for j in range(nsp))
            flat = flat + (pos * weight[i]).reshape(shape)
            valid = valid & ((pos >= 0) & (pos < size[i])).reshape(shape)
        take = valid & ((val > best) | (idx < 0))
        best = np.where(take, val, best)
        idx = np.where(take, plane + flat, idx)
    return best, idx


@register
class AveragePool:
    """y[n, c, o...] = sum over taps of x_pad[n, c, o*s - pads_begin + k*d] / count.

    count is the number of taps inside x (count_include_pad=0) or inside x plus its pads
    (count_include_pad=1); taps past the pads, which ceil_mode can create, never count.
    """

    operands = ("x",)
    flops = cost.window
    tiled = "pool"
    quantized = qforms.rescaling("QAveragePool")
    attrs = {**_WINDOW_ATTRS, "count_include_pad": Attr("bool", False)}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        y = _infer_window("AveragePool", ins, a)
        require(y.dtype.is_float, "AveragePool: needs a float input")
        x = ins[0]
        assert x is not None
        for i, n in enumerate(_tap_counts(x.shape, a)):
            empty = np.flatnonzero(n == 0)
            if empty.size:
                raise OpError(
                    f"AveragePool: output position {int(empty[0])} of spatial axis {i} "
                    f"averages no {'input or pad' if a['count_include_pad'] else 'input'} "
                    f"element (pads {a['pads']} reach past kernel {a['kernel_shape']}): "
                    "0/0 has no value; make each pad smaller than the kernel")
        return [y]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        nsp = x.ndim - 2
        out, before, after = _geometry(x, a)
        acc = np.float32 if x.dtype == np.float16 else x.dtype
        xp = pad_spatial(x.astype(acc, copy=False), before, after, 0)
        s, d = a["strides"], a["dilations"]
        taps = list(itertools.product(*(range(k) for k in a["kernel_shape"])))
        y = tap(xp, taps[0], s, d, out).copy()
        for k in taps[1:]:
            y += tap(xp, k, s, d, out)
        # the divisor is separable: a product of per-axis tap counts (never 0: see infer)
        count = np.ones((1,) * x.ndim, dtype=np.float64)
        for i, n in enumerate(_tap_counts(x.shape, a)):
            count = count * n.reshape((1, 1) + tuple(out[i] if j == i else 1
                                                      for j in range(nsp)))
        return [(y / count.astype(acc)).astype(x.dtype, copy=False)]


@register
class LpPool:
    """y[n, c, o...] = (sum over taps of |x_pad[n, c, o*s - pads_begin + k*d]| ** p) ** (1/p),
    padding (and taps past it, which ceil_mode can create) contributing 0."""

    operands = ("x",)
    flops = cost.window
    tiled = "pool"
    attrs = {**_WINDOW_ATTRS, "p": Attr("int", 2, doc="order of the norm (>= 1)")}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        y = _infer_window("LpPool", ins, a)
        require(y.dtype.is_float, "LpPool: needs a float input")
        require(a["p"] >= 1, f"LpPool: p must be >= 1, got {a['p']}")
        return [TensorType(y.shape, y.dtype)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        out, before, after = _geometry(x, a)
        acc = np.float32 if x.dtype == np.float16 else x.dtype
        xp = pad_spatial(_abs_pow(x.astype(acc, copy=False), a["p"]), before, after, 0)
        s, d = a["strides"], a["dilations"]
        taps = list(itertools.product(*(range(k) for k in a["kernel_shape"])))
        y = tap(xp, taps[0], s, d, out).copy()
        for k in taps[1:]:
            y += tap(xp, k, s, d, out)
        return [_root(y, a["p"]).astype(x.dtype, copy=False)]


def _abs_pow(x: np.ndarray, p: int) -> np.ndarray:
    """|x| ** p (p = 1 and 2 without a pow, as the C does)."""
    return np.abs(x) if p == 1 else x * x if p == 2 else np.abs(x) ** p


def _root(s: np.ndarray, p: int) -> np.ndarray:
    return s if p == 1 else np.sqrt(s) if p == 2 else s ** (1.0 / p)


@register
class GlobalLpPool:
    """y[n, c, 1...] = (sum of |x[n, c, ...]| ** p over all spatial positions) ** (1/p)."""

    operands = ("x",)
    flops = cost.reduction
    tiled = "pool"
    attrs = {"p": Attr("int", 2, doc="order of the norm (>= 1)")}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("GlobalLpPool", ins, 1)
        require(len(x.shape) >= 3, "GlobalLpPool: input must be N x C x spatial...")
        require(x.dtype.is_float, "GlobalLpPool: needs a float input")
        require(a["p"] >= 1, f"GlobalLpPool: p must be >= 1, got {a['p']}")
        return [TensorType(x.shape[:2] + (1,) * (len(x.shape) - 2), x.dtype)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        acc = np.float32 if x.dtype == np.float16 else x.dtype
        s = _abs_pow(x.astype(acc, copy=False), a["p"]).sum(
            axis=tuple(range(2, x.ndim)), keepdims=True)
        return [_root(s, a["p"]).astype(x.dtype, copy=False)]


def _global(name: str, fn: str) -> None:
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs(name, ins, 1)
        require(len(x.shape) >= 3, f"{name}: input must be N x C x spatial...")
        if fn == "max":  # moves data: integers (quantised ones too) are fine
            require(x.dtype is not DType.bool, f"{name}: needs a numeric input")
            quant = x.quant if x.quant is not None and not x.quant.per_channel else None
            return [TensorType(x.shape[:2] + (1,) * (len(x.shape) - 2), x.dtype, quant)]
        require(x.dtype.is_float, f"{name}: needs a float input")
        return [TensorType(x.shape[:2] + (1,) * (len(x.shape) - 2), x.dtype)]

    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        axes = tuple(range(2, x.ndim))
        y = x.max(axis=axes, keepdims=True) if fn == "max" else x.mean(
            axis=axes, keepdims=True, dtype=np.float32 if x.dtype == np.float16 else x.dtype)
        return [y.astype(x.dtype, copy=False)]

    register(type(name, (), {
        "__doc__": f"y[n, c, 1...] = {fn} of x[n, c, ...] over all spatial positions",
        "name": name,
        "operands": ("x",),
        "attrs": {},
        "infer": staticmethod(infer),
        "compute": staticmethod(compute),
        "flops": cost.reduction,
        "tiled": "pool",
        # GlobalMaxPool selects an element (runs on codes, staged); the average rescales
        **({"quantized": qforms.on_codes, "staged": True} if fn == "max"
           else {"quantized": qforms.rescaling("QGlobalAveragePool")}),
    }))


_global("GlobalAveragePool", "mean")
_global("GlobalMaxPool", "max")


@register
class LRN:
    """y = x / (bias + alpha / size * square_sum) ** beta, where square_sum sums x**2 over the
    channels c - floor((size-1)/2) .. c + ceil((size-1)/2) that exist."""

    operands = ("x",)
    flops = cost.lrn
    attrs = {
        "size": Attr("int", doc="channels in the window"),
        "alpha": Attr("float", 0.0001),
        "beta": Attr("float", 0.75),
        "bias": Attr("float", 1.0),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("LRN", ins, 1)
        require(len(x.shape) >= 3, "LRN: input must be N x C x spatial...")
        require(x.dtype.is_float, "LRN: needs a float input")
        require(a["size"] >= 1, f"LRN: size must be >= 1, got {a['size']}")
        return [x]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        size, c = a["size"], x.shape[1]
        lo = (size - 1) // 2
        acc = np.float32 if x.dtype == np.float16 else x.dtype
        sq = np.square(x.astype(acc, copy=False))
        padded = np.zeros((x.shape[0], c + size - 1) + x.shape[2:], dtype=acc)
        padded[:, lo:lo + c] = sq
        total = padded[:, 0:c].copy()
        for j in range(1, size):
            total += padded[:, j:j + c]
        t = a["bias"] + a["alpha"] / size * total
        y = x / (_three_quarters(t) if a["beta"] == 0.75 else t ** a["beta"])
        return [y.astype(x.dtype, copy=False)]


def _three_quarters(t: np.ndarray) -> np.ndarray:
    """t ** 0.75 as sqrt(t) * sqrt(sqrt(t)): LRN's usual beta (AlexNet, GoogLeNet) by two
    correctly rounded square roots and a product, within 2 ulp of the power, which code
    generators reproduce bit for bit with vector square roots (a vector pow is not exact to
    any one libm's)."""
    r = np.sqrt(t)
    return r * np.sqrt(r)
