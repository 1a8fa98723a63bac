"""Predicting the activation statistics of a randomly weighted CNN without running it.

Re-weighting a deep network at random is only useful if its activations stay of order one;
BatchNorm layers can ensure that, but only if their running statistics match what they
actually see — as they do in a trained network. This module propagates, for every
activation, the mean and the mean square of its elements, from a standard normal input,
treating each tensor's elements as independent Gaussians. That is exact in expectation for
the linear layers (given the drawn weights) and a close approximation elsewhere (ReLU of a
Gaussian and the max of a pooling window have closed forms).
"""

from __future__ import annotations

import math

import numpy as np
from onnx import NodeProto, helper

#: (mean, mean square) of a tensor's elements
Stats = tuple[float, float]

UNIT: Stats = (0.0, 1.0)

_GRID = np.linspace(-10.0, 10.0, 8001)
_ERF = np.frompyfunc(math.erf, 1, 1)


def _phi(z: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def _cdf(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + _ERF(z / math.sqrt(2.0)).astype(np.float64))


def _std(s: Stats) -> float:
    return math.sqrt(max(s[1] - s[0] ** 2, 1e-12))


def relu_stats(s: Stats) -> Stats:
    """Moments of max(x, 0) for Gaussian x."""
    mu, sd = s[0], _std(s)
    a = np.array([mu / sd])
    cdf, pdf = float(_cdf(a)[0]), float(_phi(a)[0])
    mean = mu * cdf + sd * pdf
    msq = (mu * mu + sd * sd) * cdf + mu * sd * pdf
    return mean, msq


def max_stats(s: Stats, n: int) -> Stats:
    """Moments of the largest of ``n`` independent Gaussians with moments ``s``."""
    if n <= 1:
        return s
    z = _GRID
    density = n * _phi(z) * _cdf(z) ** (n - 1)
    dz = z[1] - z[0]
    e1 = float(np.sum(z * density) * dz)
    e2 = float(np.sum(z * z * density) * dz)
    mu, sd = s[0], _std(s)
    return mu + sd * e1, mu * mu + 2 * mu * sd * e1 + sd * sd * e2


def _attr(node: NodeProto, name: str, default: object) -> object:
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _linear(x: Stats, w: np.ndarray, b: np.ndarray | None, out_axis: int) -> Stats:
    """Σ_i w_i·x_i + b per output, averaged over outputs (x independent, same moments)."""
    w2 = np.moveaxis(w, out_axis, 0).reshape(w.shape[out_axis], -1)
    var_in = x[1] - x[0] ** 2
    sums = w2.sum(axis=1, dtype=np.float64)
    squares = np.einsum("ij,ij->i", w2, w2).astype(np.float64)  # no full-size temporaries
    bias = np.zeros(w2.shape[0]) if b is None else b.astype(np.float64)
    means = sums * x[0] + bias
    msq = squares * var_in + means**2
    return float(means.mean()), float(msq.mean())


def propagate(
    node: NodeProto,
    stats: dict[str, Stats],
    pre_relu: dict[str, Stats],
    params: dict[str, np.ndarray],
    channels: dict[str, int],
    spatial: dict[str, int],
) -> Stats | None:
    """Moments of the node's first output, or None if it reads no activation.

    ``params`` holds the parameter values drawn so far (also through Reshape/Unsqueeze);
    ``channels``/``spatial`` give the channel count and H·W of activations where known.
    """
    acts = [x for x in node.input if x in stats]
    if not acts:
        return None
    op, x = node.op_type, stats[acts[0]]
    if op == "Conv":
        b = params.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        return _linear(x, params[node.input[1]], b, 0)
    if op == "Gemm":
        w = params[node.input[1]]
        b = params.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        out_axis = 0 if _attr(node, "transB", 0) else w.ndim - 1
        if b is not None and b.size == 1:
            b = None
        return _linear(x, w.reshape(w.shape[0], -1) if out_axis == 0 else w, b, out_axis)
    if op == "BatchNormalization":
        scale, bias, mean, var = (params[n].astype(np.float64) for n in node.input[1:5])
        eps = float(_attr(node, "epsilon", 1e-5))  # type: ignore[arg-type]
        k = scale / np.sqrt(var + eps)
        centred_mean = x[0] - mean
        centred_msq = x[1] - 2 * x[0] * mean + mean**2
        out_mean = k * centred_mean + bias
        out_msq = k**2 * centred_msq + 2 * k * bias * centred_mean + bias**2
        return float(out_mean.mean()), float(out_msq.mean())
    if op == "Relu":
        pre_relu[node.output[0]] = x
        return relu_stats(x)
    if op == "Clip" and len(node.input) > 1 and node.input[1] in params:
        if float(np.min(params[node.input[1]])) == 0.0:  # ReLU6: the cap at 6 rarely bites
            pre_relu[node.output[0]] = x
            return relu_stats(x)
        return x
    if op == "MaxPool":
        n = int(np.prod(_attr(node, "kernel_shape", [1])))  # type: ignore[arg-type]
        if acts[0] in pre_relu:  # max commutes with ReLU: pool the Gaussian, then rectify
            return relu_stats(max_stats(pre_relu[acts[0]], n))
        return max_stats(x, n)
    if op in ("AveragePool", "GlobalAveragePool"):
        if op == "AveragePool":
            n = int(np.prod(_attr(node, "kernel_shape", [1])))  # type: ignore[arg-type]
        else:
            n = spatial.get(acts[0], 1)
        return x[0], x[0] ** 2 + (x[1] - x[0] ** 2) / max(n, 1)
    if op in ("Sum", "Add", "Mul"):
        return _elementwise(op, [stats[a] for a in acts], node, params)
    if op == "Concat":
        weights = np.array([channels.get(a, 1) for a in acts], dtype=np.float64)
        means = np.array([stats[a][0] for a in acts])
        msqs = np.array([stats[a][1] for a in acts])
        return float(np.average(means, weights=weights)), float(np.average(msqs, weights=weights))
    return x  # shape-only ops, Dropout, LRN (≈ identity at O(1) scale), Softmax


def _elementwise(op: str, xs: list[Stats], node: NodeProto, params: dict[str, np.ndarray]) -> Stats:
    if len(xs) > 1:  # independent activations
        if op == "Mul":
            return float(np.prod([s[0] for s in xs])), float(np.prod([s[1] for s in xs]))
        mean = sum(s[0] for s in xs)
        var = sum(s[1] - s[0] ** 2 for s in xs)
        return mean, mean**2 + var
    x = xs[0]
    p = next((params[n] for n in node.input if n in params), np.zeros(1))
    pm, pm2 = float(np.mean(p)), float(np.mean(np.square(p, dtype=np.float64)))
    if op == "Mul":
        return x[0] * pm, x[1] * pm2
    return x[0] + pm, x[1] + 2 * x[0] * pm + pm2
