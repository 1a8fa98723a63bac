"""fold-affine: fold a per-channel constant Mul or Add into the Conv, ConvTranspose, Gemm or
BatchNormalization that feeds it.

Caffe-style models write a BatchNorm's affine part as a separate "Scale" layer, which ONNX
exporters emit as Mul and Add by per-channel constants (DenseNet-121 has 121 such pairs).
Left in the graph they are float islands between integer layers; folded, they vanish:

- after a layer with constant weights, ``Mul(c)`` scales output channel k's weights and bias
  by c[k] and ``Add(c)`` adds c[k] to its bias (fold-batchnorm's arithmetic with s = c, t = 0
  or s = 1, t = c);
- after a BatchNormalization with constant parameters, ``Mul(c)`` scales its scale and bias
  by c and ``Add(c)`` adds c to its bias.

A constant qualifies when it varies only along axis 1 (the channel axis of NCHW feature maps
and of Gemm's [N, M] output) once aligned to the output's rank, e.g. [C, 1, 1], [1, C, 1, 1],
[C] for a Gemm, or a scalar. The producer must have no other reader and not be a graph output.
New constants are computed in float64 and rounded once, so the folded graph differs from the
original only by floating-point rounding (bounded in the pass tests like fold-batchnorm's).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.passes.fold_batchnorm import batchnorm_params, fold_channel_affine, weight_and_bias
from compiler.passes.manager import Pass, register
from ir.graph import Graph, Node, Value, sources_of

_LAYERS = ("Conv", "ConvTranspose", "Gemm")


def fold_affine(graph: Graph) -> Graph:
    producers = graph.producers()
    users = graph.users()
    outputs = {id(v) for v in graph.outputs}
    kept: list[Node] = []
    for node in graph.nodes:
        found = _foldable(node, producers, users, outputs)
        if found is None:
            kept.append(node)
            continue
        producer, c, const = found
        if producer.op == "BatchNormalization":
            _into_batchnorm(graph, producer, node, c)
        else:
            s, t = (c, np.zeros_like(c)) if node.op == "Mul" else (np.ones_like(c), c)
            fold_channel_affine(graph, producer, s, t, node, const.name)
        producers[id(node.outputs[0])] = producer
    graph.nodes = kept
    return graph


def _foldable(node: Node, producers: dict[int, Node], users: dict[int, list[Node]],
              outputs: set[int]) -> tuple[Node, np.ndarray, Value] | None:
    """(the producer to fold into, the per-channel constant in float64, the constant's
    value), or None."""
    if node.op not in ("Mul", "Add") or len(node.inputs) != 2:
        return None
    a, b = node.inputs
    if a is None or b is None or a.is_const == b.is_const:
        return None
    x, const = (b, a) if a.is_const else (a, b)
    out = node.outputs[0]
    if (not x.type.dtype.is_float or x.type.dtype != out.type.dtype
            or x.type.shape != out.type.shape):
        return None
    c = _channel_vector(np.asarray(const.data), out.type.shape)
    producer = producers.get(id(x))
    if c is None or producer is None or len(producer.outputs) != 1:
        return None
    if users.get(id(x)) != [node] or id(x) in outputs:
        return None
    if producer.op == "BatchNormalization":
        ok = all(v is not None and v.is_const for v in batchnorm_params(producer))
    elif producer.op in _LAYERS:
        ok = _constant_float_weights(producer)
    else:
        ok = False
    return (producer, c, const) if ok else None


def _constant_float_weights(layer: Node) -> bool:
    w, b = weight_and_bias(layer)
    return (w is not None and w.is_const and w.type.dtype.is_float and w.type.quant is None
            and (b is None or b.is_const))


def _channel_vector(c: np.ndarray, out_shape: tuple[int, ...]) -> np.ndarray | None:
    """``c`` as one float64 value per channel (axis 1 of ``out_shape``), or None when it
    varies along any other axis or cannot broadcast."""
    rank = len(out_shape)
    if rank < 2 or c.ndim > rank:
        return None
    full = c.reshape((1,) * (rank - c.ndim) + c.shape)
    if any(d != 1 for i, d in enumerate(full.shape) if i != 1):
        return None
    if full.shape[1] not in (1, out_shape[1]):
        return None
    vec = full.reshape(-1).astype(np.float64)
    return np.broadcast_to(vec, (out_shape[1],)).copy()


def _into_batchnorm(graph: Graph, bn: Node, op: Node, c: np.ndarray) -> None:
    """BN(x) * c = BN with scale * c and bias * c; BN(x) + c = BN with bias + c."""
    scale, bias = bn.scale, bn.bias
    assert scale is not None and bias is not None and scale.data is not None
    assert bias.data is not None
    dt = scale.type.dtype.np
    s64, b64 = scale.data.astype(np.float64), bias.data.astype(np.float64)
    if op.op == "Mul":
        s64, b64 = s64 * c, b64 * c
        new_scale: Value = graph.add_const(s64.astype(dt), f"{scale.name}_folded")
    else:
        b64 = b64 + c
        new_scale = scale
    new_bias = graph.add_const(b64.astype(bias.type.dtype.np), f"{bias.name}_folded")
    bn.set_operand("scale", new_scale)
    bn.set_operand("bias", new_bias)
    old_out = bn.outputs[0]
    bn.outputs = [op.outputs[0]]
    bn.sources = sources_of(bn, op)
    graph.release_name(old_out.name)


@register
@dataclass(frozen=True)
class FoldAffine(Pass):
    name = "fold-affine"
    description = "fold per-channel constant Mul/Add into the Conv/Gemm/BatchNormalization before"
    in_regions = True

    def run(self, graph: Graph) -> Graph:
        return fold_affine(graph)
