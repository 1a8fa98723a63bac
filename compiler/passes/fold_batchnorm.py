"""fold-batchnorm: fold an inference BatchNormalization into the Conv, ConvTranspose or Gemm
that feeds it, by rescaling that layer's constant weights and bias.

BN computes y = x * s + t per channel, with s = scale / sqrt(var + epsilon) and
t = bias - mean * s. When x = W (*) input + b is a linear layer whose output nothing else
reads, y = (W * s) (*) input + (b * s + t): new constant weights and bias, one node fewer.

Exactness: s and t and the new constants are computed in float64 and rounded once to the
layer's element type. The folded layer therefore differs from the unfolded pair only by
floating-point rounding (one rounding of each new weight and a different summation of the
same products): the pass tests bound it by |y_folded - y| <= 1e-4 * |y| + 1e-5 * max|y|.

The folded layer takes over the BN's output value (name and all), so graph output names and
downstream readers are unchanged; the old weight constants are left for dce.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.passes.manager import Pass, register
from ir.graph import Graph, Node, Value, sources_of
from ir.ops.norm import batchnorm_affine

_LAYERS = ("Conv", "ConvTranspose", "Gemm")


def fold_batchnorm(graph: Graph) -> Graph:
    producers = graph.producers()
    users = graph.users()
    outputs = {id(v) for v in graph.outputs}
    kept: list[Node] = []
    for node in graph.nodes:
        layer = _foldable_layer(node, producers, users, outputs)
        if layer is None:
            kept.append(node)
            continue
        _fold(graph, layer, node)
        producers[id(node.outputs[0])] = layer
    graph.nodes = kept
    return graph


def _foldable_layer(
    bn: Node, producers: dict[int, Node], users: dict[int, list[Node]], outputs: set[int]
) -> Node | None:
    """The layer ``bn`` can fold into, or None."""
    if bn.op != "BatchNormalization" or not all(v is not None and v.is_const
                                                  for v in batchnorm_params(bn)):
        return None
    x = bn.x
    assert x is not None
    layer = producers.get(id(x))
    if layer is None or layer.op not in _LAYERS or len(layer.outputs) != 1:
        return None
    if users.get(id(x)) != [bn] or id(x) in outputs:
        return None  # someone else reads the un-normalised value
    w, b = weight_and_bias(layer)
    if w is None or not w.is_const or (b is not None and not b.is_const):
        return None
    if not w.type.dtype.is_float or w.type.quant is not None:
        return None
    return layer


def _fold(graph: Graph, layer: Node, bn: Node) -> None:
    s, t = batchnorm_affine(*(_f64(v) for v in batchnorm_params(bn)), bn.attrs["epsilon"])
    bn_bias = bn.bias
    assert bn_bias is not None
    fold_channel_affine(graph, layer, s, t, bn, bn_bias.name)


def fold_channel_affine(graph: Graph, layer: Node, s: np.ndarray, t: np.ndarray,
                        affine: Node, bias_hint: str) -> None:
    """Make ``layer`` (Conv, ConvTranspose or Gemm with constant weights) compute
    ``layer(x) * s + t`` per output channel, in float64 rounded once, and take over the value
    that the folded ``affine`` op produced (and record it among its sources). ``bias_hint``
    names a new bias when the layer has none."""
    out = affine.outputs[0]
    w, b = weight_and_bias(layer)
    assert w is not None
    wd = _f64(w)
    bd = None if b is None else _f64(b)
    if layer.op == "Conv":
        new_w = wd * s.reshape((-1,) + (1,) * (wd.ndim - 1))
        new_b = t if bd is None else bd * s + t
    elif layer.op == "ConvTranspose":
        # w is (C, M/group, K...); output channel of w[c, j] is group(c) * (M/group) + j.
        c_in, per_group = wd.shape[0], wd.shape[1]
        groups = layer.attrs["group"]
        chan = (np.arange(c_in)[:, None] // (c_in // groups)) * per_group + np.arange(per_group)
        new_w = wd * s[chan].reshape(chan.shape + (1,) * (wd.ndim - 2))
        new_b = t if bd is None else bd * s + t
    else:  # Gemm: y = alpha * op(a) @ op(b) + beta * c, channels are the columns of y
        new_w = wd * (s[:, None] if layer.attrs["transB"] else s[None, :])
        new_b = t if bd is None else (layer.attrs["beta"] * bd) * s + t
        layer.attrs = {**layer.attrs, "beta": 1.0}
    dt = w.type.dtype.np
    # a scale of one keeps the weights; no bias appears where there was none and t is zero
    w_name, b_name = ("b", "c") if layer.op == "Gemm" else ("w", "b")
    if not np.all(s == 1.0):
        layer.set_operand(w_name, graph.add_const(new_w.astype(dt), f"{w.name}_folded"))
    if b is not None or np.any(t != 0.0):
        name = f"{b.name if b is not None else bias_hint}_folded"
        layer.set_operand(b_name, graph.add_const(np.asarray(new_b).astype(dt), name))
    # The layer now computes the affine op's result: it takes over that value and its name.
    layer.sources = sources_of(layer, affine)
    old_out = layer.outputs[0]
    assert old_out.type.shape == out.type.shape
    layer.outputs = [out]
    graph.release_name(old_out.name)


def weight_and_bias(layer: Node) -> tuple[Value | None, Value | None]:
    """The weight and bias operands of a Conv, ConvTranspose (w, b) or Gemm (b, c)."""
    return (layer.b, layer.c) if layer.op == "Gemm" else (layer.w, layer.b)


def batchnorm_params(bn: Node) -> list[Value | None]:
    """A BatchNormalization's scale, bias, mean and var, in batchnorm_affine's order."""
    return [bn.scale, bn.bias, bn.mean, bn.var]


def _f64(v: Value | None) -> np.ndarray:
    assert v is not None and v.data is not None
    return v.data.astype(np.float64)


@register
@dataclass(frozen=True)
class FoldBatchNorm(Pass):
    name = "fold-batchnorm"
    description = "fold BatchNormalization into the preceding Conv/Gemm weights"
    in_regions = True

    def run(self, graph: Graph) -> Graph:
        return fold_batchnorm(graph)
