"""SmoothQuant-style scale migration (Xiao et al. 2023, "SmoothQuant: Accurate and Efficient
Post-Training Quantization for Large Language Models", section 4).

Why: the activations that feed a transformer's projections often have a few channels whose
magnitude is many times the others'. One per-tensor INT8 scale must cover those, so the
ordinary channels get a handful of levels. The weights that read the activations are easy to
quantise (per output channel), so part of the difficulty can move there: for a product
y = X W, dividing input channel j of X by s_j and multiplying row j of W by s_j leaves y
unchanged. With a_j = max |X_j| (calibration) and w_j = max |W_j| (over every row j of every
weight that reads X), s_j = a_j^alpha / w_j^(1 - alpha); alpha = 0.5 evens the two.

Where: X is the output of a normalisation over its last axis (LayerNormalization,
RMSNormalization) with constant per-channel parameters of X's width, which absorb 1/s (scale
and bias divided by s), and every reader of X is a MatMul or Gemm with a constant float weight
(the q/k/v or the MLP's first projections share one s). X is not a graph output.

Ranges: X's new range follows from its per-channel extremes, which calibration records for
the inputs of layers with weights: lo = min_j(min X_j / s_j), hi = max_j(max X_j / s_j),
exactly what a min/max observer would see on the smoothed graph (s_j > 0). The readers'
outputs are unchanged, and so are their ranges. Channel means (for bias correction) are
divided by s as well.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from compiler.quant.calibrate import Calibration
from ir.graph import Graph, Node, Value

#: normalisations over the last axis whose per-channel parameters absorb 1 / s
PRODUCERS = ("LayerNormalization", "RMSNormalization")
#: s stays in [1 / LIMIT, LIMIT]: a dead channel must not blow its weights up
LIMIT = 1e4


@dataclass(frozen=True)
class Group:
    """A tensor to smooth, the normalisation that makes it and the products that read it."""

    x: Value
    producer: Node
    readers: tuple[Node, ...]


def groups(graph: Graph) -> list[Group]:
    """Every tensor that :mod:`compiler.quant.smooth` can smooth (see the module doc)."""
    users = graph.users()
    producers = graph.producers()
    outputs = {id(v) for v in graph.outputs}
    found = []
    for v in (v for n in graph.nodes for v in n.outputs):
        p = producers[id(v)]
        readers = users.get(id(v), [])
        if (id(v) in outputs or not readers or p.op not in PRODUCERS or len(p.outputs) != 1
                or not v.type.dtype.is_float or len(v.type.shape) < 2):
            continue
        k = v.type.shape[-1]
        if p.attrs["axis"] != len(v.type.shape) - 1 or not all(
                _channel_param(c, k) for c in _params(p).values()):
            continue
        if all(_weight(r, v) is not None for r in readers):
            found.append(Group(v, p, tuple(readers)))
    return found


def smooth(graph: Graph, cal: Calibration, alpha: float) -> Calibration:
    """Migrate scale from every :func:`groups` tensor into its readers' weights (``graph`` is
    changed in place); the calibration with those tensors' ranges and means to match. Tensors
    without recorded (or without finite) per-channel extremes are left alone."""
    ranges, means = dict(cal.ranges), dict(cal.channel_means)
    for g in groups(graph):
        name = g.x.name
        if name not in cal.channel_ranges:
            continue
        lo, hi = cal.channel_ranges[name]
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            continue  # NaN/inf seen in calibration: nothing sound to balance
        a = np.maximum(np.abs(lo), np.abs(hi)).astype(np.float64)
        w = np.zeros_like(a)
        for r in g.readers:
            wt, _ = _weight(r, g.x)  # type: ignore[misc]
            w = np.maximum(w, np.abs(wt.astype(np.float64)).max(axis=1))
        s = scales(a, w, alpha)
        _divide_params(graph, g.producer, s)
        for r in g.readers:
            _scale_weight(graph, r, g.x, s)
        ranges[name] = (min(float((lo / s).min()), 0.0), max(float((hi / s).max()), 0.0))
        if name in means:
            means[name] = (means[name] / s).astype(np.float32)
    return replace(cal, ranges=ranges, channel_means=means)


def scales(a: np.ndarray, w: np.ndarray, alpha: float) -> np.ndarray:
    """s_j = a_j^alpha / w_j^(1 - alpha), 1 where either side is zero, within LIMIT."""
    ok = (a > 0) & (w > 0) & np.isfinite(a) & np.isfinite(w)
    s = np.where(ok, np.where(ok, a, 1.0) ** alpha / np.where(ok, w, 1.0) ** (1 - alpha), 1.0)
    return np.clip(s, 1 / LIMIT, LIMIT)


def _channel_param(c: Value, k: int) -> bool:
    """A constant float parameter with one value per channel of the last axis."""
    return (c.is_const and c.type.dtype.is_float and c.type.quant is None
            and tuple(c.type.shape) in ((k,), (1,), ()))


def _params(norm: Node) -> dict[str, Value]:
    """The normalisation's per-channel parameters that are present: scale, and bias."""
    names = ("scale", "bias") if norm.op == "LayerNormalization" else ("scale",)
    return {n: v for n in names if (v := norm.operand(n)) is not None}


def _weight(node: Node, x: Value) -> tuple[np.ndarray, Value] | None:
    """(W as [K, N], the operand holding it) when ``node`` computes x @ W with a constant
    float W and x as its left operand; None otherwise."""
    if node.op not in ("MatMul", "Gemm") or node.a is not x or node.b is x:
        return None
    b = node.b
    if (b is None or not b.is_const or b.data is None or not b.type.dtype.is_float
            or b.type.quant is not None or b.data.ndim != 2):
        return None
    if node.op == "MatMul":
        return b.data, b
    if not node.attrs["transA"]:
        return (b.data.T if node.attrs["transB"] else b.data), b
    return None


def _divide_params(graph: Graph, node: Node, s: np.ndarray) -> None:
    for name, c in _params(node).items():
        assert c.data is not None
        data = np.broadcast_to(c.data.astype(np.float64), s.shape) / s
        node.set_operand(name, graph.add_const(data.astype(c.type.dtype.np),
                                               f"{c.name}_smooth"))


def _scale_weight(graph: Graph, node: Node, x: Value, s: np.ndarray) -> None:
    found = _weight(node, x)
    assert found is not None
    w, old = found
    new = w.astype(np.float64) * s[:, None]
    if node.op == "Gemm" and node.attrs["transB"]:
        new = new.T
    node.set_operand("b", graph.add_const(new.astype(old.type.dtype.np), f"{old.name}_smooth"))
