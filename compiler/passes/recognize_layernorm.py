"""recognize-layernorm: the decomposed LayerNorm exporters write becomes LayerNormalization.

    mean = ReduceMean(x, axes)            axes: the last k axes, keepdims
    d    = Sub(x, mean)
    var  = ReduceMean(Pow(d, 2) | Mul(d, d), axes)
    n    = Div(d, Sqrt(Add(var, eps)))     (or Mul(d, Reciprocal(Sqrt(...))))
    y    = n [* gamma] [+ beta]            gamma, beta constants, either operand order
        -> LayerNormalization(x, scale, bias, axis=rank-k, epsilon=eps)

Why: quantised, the decomposed form would round after each of its eight steps (the variance
of a centred INT8 tensor loses most of its bits); as one op it runs as a float island between
a dequantise and a quantise, or as a fused kernel.

gamma and beta must be constants that vary only along the normalised axes; they are broadcast
to the normalised shape (scale is all ones when there is no gamma). The new node computes the
statistics in float32 (float64 for float64 inputs), as ONNX's default stash type does, so it
differs from the chain by float rounding only. The Pow exponent must be exactly 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.passes.manager import Pass, register
from compiler.passes.patterns import Match, Matcher, NewConst, rewrite, scalar
from ir.graph import Graph, Node, Value
from ir.types import DType


def recognize_layernorm(graph: Graph) -> Graph:
    return rewrite(graph, _match)


def _match(m: Matcher, root: Node) -> Match | None:
    """Peel an optional + beta and * gamma off ``root``, then match the standardisation."""
    out = root.outputs[0]
    if not out.type.dtype.is_float:
        return None
    for nodes, core_value, gamma, beta in _affine_splits(m, root):
        core = _standardise(m, core_value)
        if core is None:
            continue
        x, axis, eps, core_nodes = core
        scale = _param(gamma, x, axis, f"{out.name}_scale")
        bias = None if beta is None else _param(beta, x, axis, "")
        if scale is None or (beta is not None and bias is None):
            continue
        stash = "f64" if x.type.dtype is DType.f64 else "f32"
        return Match("LayerNormalization", [x, scale] + ([] if bias is None else [bias]),
                     {"axis": axis, "epsilon": eps, "stash": stash}, nodes + core_nodes)
    return None


Split = tuple[list[Node], Value, Value | None, Value | None]


def _affine_splits(m: Matcher, root: Node) -> list[Split]:
    """Ways to read root as core [* gamma] [+ beta]: (nodes peeled, core, gamma, beta),
    the most peeled first."""
    out = root.outputs[0]
    splits: list[Split] = [([], out, None, None)]
    if root.op in ("Mul", "Add"):
        for a, b in (root.inputs, root.inputs[::-1]):
            if a is None or b is None or not b.is_const or a.is_const:
                continue
            if root.op == "Mul":
                splits.insert(0, ([root], a, b, None))
                continue
            splits.insert(0, ([root], a, None, b))
            mul = m.single_use(a, ("Mul",))
            if mul is None:
                continue
            for c, g in (mul.inputs, mul.inputs[::-1]):
                if c is not None and g is not None and g.is_const and not c.is_const:
                    splits.insert(0, ([root, mul], c, g, b))
    return splits


def _standardise(m: Matcher, v: Value) -> tuple[Value, int, float, list[Node]] | None:
    """v = (x - mean(x)) / sqrt(var(x) + eps) over trailing axes: (x, axis, eps, nodes)."""
    div = m.producer(v, "Div", "Mul")
    if div is None:
        return None
    d, den = div.inputs
    nodes = [div]
    if div.op == "Mul":  # d * Reciprocal(sqrt(...)), either order
        for a, b in ((d, den), (den, d)):
            rec = m.producer(b, "Reciprocal")
            if rec is not None:
                d, den, nodes = a, rec.x, [div, rec]
                break
        else:
            return None
    sub = m.producer(d, "Sub")
    sqrt = m.producer(den, "Sqrt")
    if sub is None or sqrt is None:
        return None
    x, mean_v = sub.inputs
    mean = m.producer(mean_v, "ReduceMean")
    if x is None or mean is None or mean.x is not x or not _trailing(mean, x):
        return None
    add = m.producer(sqrt.x, "Add")
    if add is None:
        return None
    for var_v, eps_v in (add.inputs, add.inputs[::-1]):
        eps = scalar(eps_v)
        var = m.producer(var_v, "ReduceMean")
        if eps is None or var is None or var.attrs != mean.attrs:
            continue
        square = m.producer(var.x, "Pow", "Mul")
        if square is None or not _squares(square, d):
            continue
        chain = nodes + [sqrt, add, var, square, sub, mean]
        return x, mean.attrs["axes"][0], eps, chain
    return None


def _trailing(mean: Node, x: Value) -> bool:
    """ReduceMean over the last k >= 1 axes of x, keeping them."""
    rank, axes = len(x.type.shape), list(mean.attrs["axes"])
    return bool(axes) and mean.attrs["keepdims"] and axes == list(range(rank - len(axes), rank))


def _squares(node: Node, d: Value | None) -> bool:
    if node.op == "Mul":
        return node.a is d and node.b is d
    return node.x is d and scalar(node.y) == 2.0


def _param(v: Value | None, x: Value, axis: int, ones: str) -> Value | NewConst | None:
    """gamma or beta as a constant of the normalised shape, or None if it cannot be one;
    no gamma gives a new constant of ones named ``ones``."""
    norm_shape = x.type.shape[axis:]
    if v is None:
        return NewConst(np.ones(norm_shape, x.type.dtype.np), ones)
    data = v.data
    if data is None or v.type.dtype is not x.type.dtype or v.type.quant is not None:
        return None
    lead = data.ndim - len(norm_shape)
    if lead > 0:
        if any(n != 1 for n in data.shape[:lead]):
            return None  # varies along a non-normalised axis: not a LayerNorm parameter
        data = data.reshape(data.shape[lead:])
    try:
        full = np.broadcast_to(data, norm_shape)
    except ValueError:
        return None
    if v.type.shape == norm_shape:
        return v
    return NewConst(np.ascontiguousarray(full), f"{v.name}_ln")


@register
@dataclass(frozen=True)
class RecognizeLayerNorm(Pass):
    name = "recognize-layernorm"
    description = "replace decomposed LayerNorm chains with one node"
    in_regions = True

    def run(self, graph: Graph) -> Graph:
        return recognize_layernorm(graph)
