"""Float islands that quantised graphs keep between a Dequantize and a Quantize: Softmax,
LayerNormalization, RMSNormalization and LRN. Float kernels agree with the interpreter
within a stated tolerance, not bit for bit (exp, sqrt and pow come from LLVM, and sums run
in another order than numpy's)."""

from __future__ import annotations

from typing import Any

from ir.graph import Node
from ir.types import DType
from targets.tvm.api import te, tir
from targets.tvm.context import Kernel, Tensor
from targets.tvm.kernels.common import broadcast_index
from targets.tvm.registry import kernel


@kernel("Softmax")
def softmax(k: Kernel) -> list[Tensor]:
    """y = exp(x - max(x)) / sum(exp(x - max(x))) along ``axis``, in x's float type; the sum
    runs in float64 (a sequential float32 sum over a recogniser's 6,625 classes drifts 2.8e-5
    from numpy's pairwise one)."""
    (y,) = k.out_types
    x = k.operand("x")
    axis = k.attrs["axis"]
    shape = list(y.shape)
    reduced = shape[:axis] + [1] + shape[axis + 1:]
    r = te.reduce_axis((0, shape[axis]), name="r")

    def along(i: tuple[Any, ...], j: Any) -> tuple[Any, ...]:
        return (*i[:axis], j, *i[axis + 1:])

    top = te.compute(reduced, lambda *i: te.max(x[along(i, r)], axis=r), name="top")
    e = te.compute(shape, lambda *i: tir.exp(x[i] - top[along(i, 0)]), name="e")
    total = te.compute(reduced, lambda *i: te.sum(e[along(i, r)].astype("float64"), axis=r),
                       name="total")
    dt = y.dtype.np.name
    return [te.compute(shape, lambda *i: (e[i].astype("float64") / total[along(i, 0)])
                       .astype(dt), name="y")]


def _without_stats(node: Node) -> bool:
    return not node.attrs.get("stats")


@kernel("LayerNormalization", accepts=_without_stats)
def layer_normalization(k: Kernel) -> list[Tensor]:
    """Over the axes [axis, rank), in the stash type: mean = sum(x) / count,
    d = x - mean, var = sum(d * d) / count, n = d / sqrt(var + epsilon) cast to x's type;
    y = n * scale + bias (scale, bias broadcast to x). Nodes that also return the
    statistics (stats) have no kernel here."""
    (y,) = k.out_types
    scale = k.operand("scale")
    bias = k.operand("bias") if k.has("bias") else None
    st, bt = k.type_of("scale"), k.type_of("bias") if bias is not None else None
    ax = _NormAxes(k)
    shape, stash, dt, whole, at_stats = ax.shape, ax.stash, y.dtype.np.name, ax.whole, ax.at
    xs, rs = ax.xs, ax.rs
    n = tir.const(ax.count, stash)
    total = te.compute(ax.stats_shape, lambda *i: te.sum(xs[whole(i)], axis=rs), name="total")
    d = te.compute(shape, lambda *i: xs[i] - total[at_stats(i)] / n, name="d")
    squares = te.compute(ax.stats_shape, lambda *i: te.sum(d[whole(i)] * d[whole(i)],
                                                           axis=rs), name="squares")
    eps = k.per_channel([k.attrs["epsilon"]], "epsilon", stash)(0)  # from memory: exact in C
    inv = te.compute(ax.stats_shape, lambda *i: tir.const(1.0, stash)
                     / tir.sqrt(squares[i] / n + eps), name="inv_std")

    def out(*i: Any) -> Any:
        v = (d[i] * inv[at_stats(i)]).astype(dt) * scale[
            tuple(broadcast_index(st.shape, i))].astype(dt)
        if bias is not None and bt is not None:
            v = v + bias[tuple(broadcast_index(bt.shape, i))].astype(dt)
        return v

    return [te.compute(shape, out, name="y")]


@kernel("LRN")
def lrn(k: Kernel) -> list[Tensor]:
    """y = x / (bias + alpha / size * square_sum) ** beta, square_sum summing x**2 over the
    channels c - floor((size-1)/2) .. c + ceil((size-1)/2) that exist (float16 sums in
    float32)."""
    (y,) = k.out_types
    x = k.operand("x")
    a = k.attrs
    size, channels = a["size"], y.shape[1]
    lo = (size - 1) // 2
    dt = y.dtype.np.name
    acc = "float32" if dt == "float16" else dt
    r = te.reduce_axis((0, size), name="r")

    def square_sum(n: Any, c: Any, *s: Any) -> Any:
        src = c - lo + r
        inside = tir.all(src >= 0, src < channels)
        v = x[(n, tir.max(tir.min(src, channels - 1), 0), *s)].astype(acc)
        return te.sum(tir.if_then_else(inside, v * v, tir.const(0.0, acc)), axis=r)

    total = te.compute(y.shape, square_sum, name="square_sum")
    # the model's float constants from memory (TVM's C printer shortens float literals)
    scale = k.per_channel([a["alpha"] / size], "alpha", acc)(0)
    bias = k.per_channel([a["bias"]], "bias", acc)(0)
    beta = k.per_channel([a["beta"]], "beta", acc)(0)

    def power(base: Any) -> Any:
        if a["beta"] == 0.75:  # the interpreter's form: sqrt(t) * sqrt(sqrt(t))
            r = tir.sqrt(base)
            return r * tir.sqrt(r)
        return tir.power(base, beta)

    def out(*i: Any) -> Any:
        return (x[i].astype(acc) / power(bias + scale * total[i])).astype(dt)

    return [te.compute(y.shape, out, name="y")]


@kernel("RMSNormalization")
def rms_normalization(k: Kernel) -> list[Tensor]:
    """Over the axes [axis, rank), in the stash type: ms = sum(x * x) / count,
    n = x * (1 / sqrt(ms + epsilon)) cast to x's type; y = n * scale (scale broadcast to
    x, in x's type)."""
    (y,) = k.out_types
    scale = k.operand("scale")
    st = k.type_of("scale")
    ax = _NormAxes(k)
    xs, rs, stash, dt = ax.xs, ax.rs, ax.stash, y.dtype.np.name
    squares = te.compute(ax.stats_shape, lambda *i: te.sum(
        xs[ax.whole(i)] * xs[ax.whole(i)], axis=rs), name="squares")
    eps = k.per_channel([k.attrs["epsilon"]], "epsilon", stash)(0)  # from memory: exact in C
    inv = te.compute(ax.stats_shape, lambda *i: tir.const(1.0, stash) / tir.sqrt(
        squares[i] / tir.const(ax.count, stash) + eps), name="inv_rms")

    def out(*i: Any) -> Any:
        n = (xs[i] * inv[ax.at(i)]).astype(dt)
        return n * scale[tuple(broadcast_index(st.shape, i))].astype(dt)

    return [te.compute(ax.shape, out, name="y")]


class _NormAxes:
    """What LayerNormalization and RMSNormalization share: x in the stash type (``xs``),
    the normalised axes [axis, rank) as reduce axes (``rs``, ``count`` elements), the
    statistics' shape, and the index maps from an output index to the normalised slab
    (``whole``) and to its statistic (``at``)."""

    def __init__(self, k: Kernel) -> None:
        x = k.operand("x")
        self.shape = list(k.out_types[0].shape)
        self.axis = axis = k.attrs["axis"]
        self.stash = DType(k.attrs["stash"]).np.name
        inner = self.shape[axis:]
        self.count = 1
        for d in inner:
            self.count *= d
        self.stats_shape = self.shape[:axis] + [1] * len(inner)
        self.rs = [te.reduce_axis((0, d), name=f"r{i}") for i, d in enumerate(inner)]
        self.xs = te.compute(self.shape, lambda *i: x[i].astype(self.stash), name="xs")

    def whole(self, i: tuple[Any, ...]) -> tuple[Any, ...]:
        return (*i[:self.axis], *self.rs)

    def at(self, i: tuple[Any, ...]) -> tuple[Any, ...]:
        return (*i[:self.axis], *([0] * len(self.rs)))
