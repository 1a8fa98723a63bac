"""equalize: cross-layer weight equalisation (Nagel et al. 2019, "Data-Free Quantization
Through Weight Equalization and Bias Correction", section 4.1).

Why: after BatchNorm folding the output channels of a conv often have weight ranges that
differ by orders of magnitude, so one per-tensor INT8 scale wastes most of its levels on the
widest channel (and per-channel activations are not available downstream). For two
consecutive layers y = W2 f(W1 x + b1) with f positively homogeneous (f(s v) = s f(v) for
s > 0: Relu, LeakyRelu or nothing), scaling output channel i of layer 1 by 1/s_i and input
channel i of layer 2 by s_i leaves y unchanged. With r1_i, r2_i the ranges (max |w|) of
those channels, s_i = sqrt(r1_i * r2_i) / r2_i makes both ranges sqrt(r1_i * r2_i).

Pairs are Conv -> [Relu | LeakyRelu] -> Conv where the first conv's output (and the
activation's) is read by nothing else, grouped and depthwise convs included: in a MobileNet
block conv1x1 -> relu -> depthwise -> relu -> conv1x1 both adjacent pairs equalise. A layer in
two pairs (the depthwise) is pulled both ways, so the pass sweeps over all pairs until every
s_i of a sweep is within 1e-4 of 1, or 50 sweeps. Clip (ReLU6) is not positively
homogeneous, and its bound cannot be rescaled per channel in the IR: such pairs are skipped.

Exactness: scales accumulate in float64 and each new weight and bias is rounded once to its
element type, so the graph computes the same function up to float rounding; the pass tests
bound it by |y_eq - y| <= 1e-4 * |y| + 1e-5 * max|y|. Old weight constants are left for dce.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.passes.manager import Pass, option, register
from ir.graph import Graph, Node, Value

#: activations f with f(s * v) = s * f(v) for every s > 0
HOMOGENEOUS = ("Relu", "LeakyRelu")
MAX_SWEEPS = 50
#: stop when every scale of a sweep has |log s| below this
TOLERANCE = 1e-4


def equalize(graph: Graph, max_sweeps: int = MAX_SWEEPS, tolerance: float = TOLERANCE) -> Graph:
    pairs = find_pairs(graph)
    if not pairs:
        return graph
    layers = {id(n): n for pair in pairs for n in pair}
    weights = {k: _f64(n.w) for k, n in layers.items()}
    biases = {k: _f64(n.b) if n.b is not None else None
              for k, n in layers.items()}
    for _ in range(max_sweeps):
        worst = 0.0
        for first, second in pairs:
            w1, w2 = weights[id(first)], weights[id(second)]
            chan = input_channels(w2, second.attrs["group"], w1.shape[0])
            s = _scales(output_ranges(w1), input_ranges(w2, chan))
            weights[id(first)] = w1 / s.reshape((-1,) + (1,) * (w1.ndim - 1))
            b1 = biases[id(first)]
            if b1 is not None:
                biases[id(first)] = b1 / s
            weights[id(second)] = w2 * s[chan].reshape(chan.shape + (1,) * (w2.ndim - 2))
            worst = max(worst, float(np.abs(np.log(s)).max(initial=0.0)))
        if worst < tolerance:
            break
    for k, node in layers.items():
        _store(graph, node, weights[k], biases[k])
    return graph


@register
@dataclass(frozen=True)
class Equalize(Pass):
    name = "equalize"
    description = "cross-layer weight equalisation of Conv -> Relu -> Conv pairs"
    max_sweeps: int = option(MAX_SWEEPS, "sweeps over all pairs at most")
    tolerance: float = option(TOLERANCE, "stop once a sweep's scales all have |log s| below it")

    def run(self, graph: Graph) -> Graph:
        return equalize(graph, self.max_sweeps, self.tolerance)


def find_pairs(graph: Graph) -> list[tuple[Node, Node]]:
    """Conv -> [homogeneous activation] -> Conv pairs whose intermediates are private."""
    users = graph.users()
    outputs = {id(v) for v in graph.outputs}

    def only_reader(v: Value) -> Node | None:
        readers = users.get(id(v), [])
        return readers[0] if len(readers) == 1 and id(v) not in outputs else None

    pairs = []
    for first in graph.nodes:
        if not _equalisable(first):
            continue
        v = first.outputs[0]
        reader = only_reader(v)
        if reader is not None and reader.op in HOMOGENEOUS:
            v = reader.outputs[0]
            reader = only_reader(v)
        if reader is not None and _equalisable(reader) and reader.x is v:
            pairs.append((first, reader))
    return pairs


def _equalisable(node: Node) -> bool:
    """A Conv with constant float weights (and constant bias, if any)."""
    if node.op != "Conv" or len(node.outputs) != 1:
        return False
    w, b = node.w, node.b
    if w is None or not w.is_const or not w.type.dtype.is_float or w.type.quant is not None:
        return False
    return b is None or (b.is_const and b.type.quant is None)


def output_ranges(w: np.ndarray) -> np.ndarray:
    """max |w| of each output channel (the first axis)."""
    return np.abs(w).reshape(w.shape[0], -1).max(axis=1)


def input_channels(w: np.ndarray, group: int, channels: int) -> np.ndarray:
    """chan[m, j]: the input channel that weight w[m, j] reads, for a conv with ``group``
    groups over ``channels`` input channels (output channel m is in group m // (M/group))."""
    per_group_out, per_group_in = w.shape[0] // group, channels // group
    groups = np.arange(w.shape[0]) // per_group_out
    return groups[:, None] * per_group_in + np.arange(w.shape[1])[None, :]


def input_ranges(w: np.ndarray, chan: np.ndarray) -> np.ndarray:
    """max |w| over every weight that reads input channel i."""
    per_weight = np.abs(w).reshape(w.shape[0], w.shape[1], -1).max(axis=2)
    r = np.zeros(int(chan.max()) + 1)
    np.maximum.at(r, chan.ravel(), per_weight.ravel())
    return r


def _scales(r1: np.ndarray, r2: np.ndarray) -> np.ndarray:
    """s_i = sqrt(r1_i * r2_i) / r2_i, or 1 where a channel is all zeros (nothing to even)."""
    ok = (r1 > 0) & (r2 > 0) & np.isfinite(r1) & np.isfinite(r2)
    return np.where(ok, np.sqrt(np.where(ok, r1, 1.0) / np.where(ok, r2, 1.0)), 1.0)


def _store(graph: Graph, node: Node, w: np.ndarray, b: np.ndarray | None) -> None:
    """Give ``node`` its equalised weights and bias, as new constants where they changed."""
    inputs = list(node.inputs)
    for i, data in ((1, w), (2, b)):
        old = inputs[i] if i < len(inputs) else None
        if old is None or data is None or old.data is None:
            continue
        new = data.astype(old.type.dtype.np)
        if not np.array_equal(new, old.data):
            inputs[i] = graph.add_const(new, f"{old.name}_eq")
    node.inputs = inputs


def _f64(v: Value | None) -> np.ndarray:
    assert v is not None and v.data is not None
    return v.data.astype(np.float64)
