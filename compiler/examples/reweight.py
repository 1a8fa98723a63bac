"""Re-weighting an existing ONNX graph: every parameter redrawn by its role.

Used for the onnx light zoo (whose weights are constant fills) and for the hand-built
MobileNetV2 (whose BatchNorm statistics must match its random convolutions). Each float
initializer's role is read from the node that consumes it — conv or FC weight/bias,
BatchNorm scale/shift/mean/variance, per-channel Mul/Add — and drawn accordingly (see
weights.py); BatchNorm running statistics come from the moment prediction in moments.py.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import ModelProto, NodeProto, numpy_helper

from compiler.examples import moments, weights


def _consumers(model: ModelProto) -> dict[str, list[tuple[NodeProto, int]]]:
    out: dict[str, list[tuple[NodeProto, int]]] = {}
    for node in model.graph.node:
        for i, x in enumerate(node.input):
            out.setdefault(x, []).append((node, i))
    return out


def _attr(node: NodeProto, name: str, default: int) -> int:
    for a in node.attribute:
        if a.name == name:
            return int(onnx.helper.get_attribute_value(a))
    return default


def parameter_role(
    name: str,
    consumers: dict[str, list[tuple[NodeProto, int]]],
    consts: dict[str, np.ndarray],
    shape: tuple[int, ...],
) -> tuple[str, NodeProto, tuple[int, ...]] | None:
    """What a float initializer is for, judged by its (first) consumer.

    Returns (role, consumer, shape as the consumer sees it). Roles: conv_w, conv_b, fc_w,
    fc_b, bn_scale, bn_bias, bn_mean, bn_var, scale, shift (the per-channel Mul/Add after an
    affine-less BatchNorm). Reshape and Unsqueeze on the way (Inception's classifier weight is
    stored 4-D and reshaped for Gemm) are looked through.
    """
    uses = consumers.get(name, [])
    if not uses:
        return None
    node, idx = uses[0]
    op = node.op_type
    if op == "Conv":
        return ("conv_w" if idx == 1 else "conv_b"), node, shape
    if op == "Gemm":
        return ("fc_w" if idx == 1 else "fc_b"), node, shape
    if op == "BatchNormalization" and idx >= 1:
        return ("bn_scale", "bn_bias", "bn_mean", "bn_var")[idx - 1], node, shape
    if op == "Mul" and len(shape) > 0:
        return "scale", node, shape
    if op == "Add" and len(shape) > 0:
        return "shift", node, shape
    if op == "Unsqueeze" and idx == 0:
        return parameter_role(node.output[0], consumers, consts, shape)
    if op == "Reshape" and idx == 0 and node.input[1] in consts:
        target = [int(d) if d != 0 else shape[i] for i, d in enumerate(consts[node.input[1]])]
        view = np.empty(shape, np.uint8).reshape(target).shape
        return parameter_role(node.output[0], consumers, consts, tuple(view))
    return None


def reweight(model: ModelProto, rng: np.random.Generator) -> dict[str, moments.Stats]:
    """Redraw every float parameter of ``model`` by its role, walking the graph in order.

    Alongside, the mean and mean square of every activation are predicted (see moments.py),
    from a standard normal input. Each BatchNorm's running mean and variance are set to what
    its input is predicted to have, as training would: ≈(0, 1) after a He-scaled conv on
    plain feature maps, larger on a residual stream. Without that a random ResNet or
    ShuffleNet grows geometrically with depth (each block adds a branch proportional to its
    input); with it the branches are normalised and the stream grows only linearly, as in a
    trained network. Returns the predicted moments (for tests and diagnostics).
    """
    g = model.graph
    consumers = _consumers(model)
    consts = {
        t.name: numpy_helper.to_array(t)
        for t in g.initializer
        if t.data_type == onnx.TensorProto.INT64
    }
    channels, spatial = _activation_sizes(model)
    params = {t.name: t for t in g.initializer if t.data_type == onnx.TensorProto.FLOAT}
    drawn: dict[str, np.ndarray] = {}
    stats: dict[str, moments.Stats] = {i.name: moments.UNIT for i in g.input}
    pre_relu: dict[str, moments.Stats] = {}
    for node in g.node:
        for name in node.input:
            if name in params and name not in drawn:
                drawn[name] = _redraw(rng, params[name], consumers, consts, stats)
        if node.op_type in _VIEW_OPS and node.input[0] in drawn:
            drawn[node.output[0]] = drawn[node.input[0]]  # a reshaped parameter
            continue
        out = moments.propagate(node, stats, pre_relu, drawn, channels, spatial)
        if out is not None:
            stats[node.output[0]] = out
    return stats


_VIEW_OPS = ("Reshape", "Unsqueeze", "Squeeze", "Flatten")


def _activation_sizes(model: ModelProto) -> tuple[dict[str, int], dict[str, int]]:
    """Channel count and H·W of every 4-D activation onnx's shape inference can type."""
    # Infer on a skeleton whose float weights are typed inputs without data: the same shapes,
    # without copying hundreds of megabytes of weights.
    g = model.graph
    floats = [t for t in g.initializer if t.data_type == onnx.TensorProto.FLOAT]
    skeleton = onnx.helper.make_graph(
        list(g.node),
        g.name,
        list(g.input)
        + [onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in floats],
        list(g.output),
        initializer=[t for t in g.initializer if t.data_type != onnx.TensorProto.FLOAT],
    )
    probe = onnx.helper.make_model(skeleton, opset_imports=list(model.opset_import))
    probe.ir_version = model.ir_version
    inferred = onnx.shape_inference.infer_shapes(probe)
    channels: dict[str, int] = {}
    spatial: dict[str, int] = {}
    infos = list(inferred.graph.value_info) + list(inferred.graph.input)
    for vi in infos:
        dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        if len(dims) >= 2 and all(d > 0 for d in dims):
            channels[vi.name] = dims[1]
            spatial[vi.name] = int(np.prod(dims[2:])) if len(dims) > 2 else 1
    return channels, spatial


def _redraw(
    rng: np.random.Generator,
    t: onnx.TensorProto,
    consumers: dict[str, list[tuple[NodeProto, int]]],
    consts: dict[str, np.ndarray],
    stats: dict[str, moments.Stats],
) -> np.ndarray:
    shape = tuple(int(d) for d in t.dims)
    found = parameter_role(t.name, consumers, consts, shape)
    if found is None:
        return numpy_helper.to_array(t)
    role, consumer, view = found
    mean, msq = stats.get(consumer.input[0], moments.UNIT)
    std = float(np.sqrt(max(msq - mean * mean, 1e-6)))
    if role == "bn_mean":
        arr = mean + weights.small(rng, view, 0.05 * std)
    elif role == "bn_var":
        arr = weights.near_one(rng, view) * np.float32(std * std)
    else:
        arr = _draw(rng, role, consumer, view)
    arr = np.ascontiguousarray(arr.reshape(shape), dtype=np.float32)
    t.CopyFrom(numpy_helper.from_array(arr, t.name))
    return arr


def _draw(
    rng: np.random.Generator, role: str, node: NodeProto, shape: tuple[int, ...]
) -> np.ndarray | None:
    if role == "conv_w":
        return weights.he_normal(rng, shape, weights.conv_fan_in(shape))
    if role == "fc_w":
        fan_in = shape[1] if _attr(node, "transB", 0) else shape[0]
        return weights.he_normal(rng, shape, fan_in)
    if role in ("conv_b", "fc_b", "bn_bias", "bn_mean", "shift"):
        return weights.small(rng, shape)
    if role in ("bn_scale", "bn_var", "scale"):
        return weights.near_one(rng, shape)
    return None
