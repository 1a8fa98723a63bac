"""IR nodes to tiling problems: how each tiled op maps onto (n, m, oh, ow, c).

Which ops are tiled, and as what kind of problem (conv, matmul, pool, eltwise), is the op's
``tiled`` trait (ir/ops/registry.py).

``precision="int8"`` (the default) models every tiled layer as the INT8 kernel it becomes
after quantisation (1-byte activations and weights, int32 accumulators) even while the graph
is still float: targets are tiled for what they will run. ``precision="ir"`` uses the IR's
own element types instead (a float layer then needs the profile's MAC rate for its type).
"""

from __future__ import annotations

import math

from ir.graph import Graph, Node
from ir.ops.cost import rule_of
from ir.ops.registry import OPS
from ir.types import TensorType
from targets.fusion import epilogue_operands, fused_consumer, fused_producer
from targets.profiles.schema import Profile
from targets.staged.support import stays_plain
from targets.tiling.problem import Problem
from targets.tiling.search import TilingError


def tiled_kind(op: str) -> str | None:
    """The op's ``tiled`` trait: conv, matmul, pool, eltwise, or None (not tiled)."""
    opdef = OPS.get(op)
    return None if opdef is None else opdef.tiled


def _bytes(t: TensorType, precision: str) -> int:
    return 1 if precision == "int8" else t.dtype.np.itemsize


def _dtype_key(t: TensorType, precision: str) -> str:
    if precision == "int8" or t.dtype.np.itemsize == 1:
        return "i8"
    return t.dtype.value


def problem_of(graph: Graph, node: Node, prof: Profile,
               precision: str = "int8") -> Problem | None:
    """The tiling problem of ``node``, or None if the op is not tiled (reshapes, softmax...)
    or runs in the epilogue of the layer before it (targets/fusion.py)."""
    kind = tiled_kind(node.op)
    if kind is None or not node.outputs or fused_producer(graph, node) is not None:
        return None
    first = node.first_operand()  # the streamed activation
    if first is None:
        return None
    x, y = first.type, node.outputs[0].type
    name = node.name or node.outputs[0].name
    common = {
        "name": name, "op": node.op, "in_bytes": _bytes(x, precision),
        "out_bytes": _bytes(y, precision), "dtype": _dtype_key(x, precision),
        "resident": tuple(str(r) for r in node.attrs.get("l2", ())),
        **_epilogue(graph, node),
    }
    if common["dtype"] not in prof.matrix.macs_per_cycle and kind in ("conv", "matmul"):
        raise TilingError(f"layer {name!r} ({node.op}): target {prof.name!r} has no "
                          f"{common['dtype']} MAC rate; tile with precision='int8'")
    if kind == "conv":
        w = node.w
        return _conv(node, x, None if w is None else w.type, y, prof, common, precision)
    if kind == "matmul":
        w = node.w if "w" in OPS[node.op].operands else node.b
        return _matmul(node, x, None if w is None else w.type, y, common, precision)
    if kind == "pool":
        return _pool(node, x, y, common)
    return _elementwise(node, y, common, graph)


def _epilogue(graph: Graph, node: Node) -> dict[str, int]:
    """The Problem fields of the element-wise layer fused into ``node``'s epilogue."""
    consumer = fused_consumer(graph, node)
    if consumer is None:
        return {}
    out = consumer.outputs[0].type.size
    ops = max(1, -(-int(rule_of(consumer)(consumer)[1]) // max(out, 1)))
    return {"epilogue_ops": ops,
            "epilogue_inputs": len(epilogue_operands(consumer, node))}


def _hw(shape: tuple[int, ...]) -> tuple[int, int]:
    sp = shape[2:]
    if len(sp) == 1:
        return sp[0], 1
    return sp[0], sp[1]


def _conv(node: Node, x: TensorType, w: TensorType | None, y: TensorType, prof: Profile,
          common: dict, precision: str) -> Problem | None:
    if w is None or x.rank not in (3, 4):
        return None  # 3-D convolutions are not tiled
    a = node.attrs
    g = int(a.get("group", 1))
    n, c = x.shape[0], x.shape[1]
    m = w.shape[0]
    cg, mg = c // g, m // g
    kh, kw = _hw(w.shape)
    oh, ow = _hw(y.shape)
    strides = list(a["strides"]) + [1]
    dil = list(a["dilations"]) + [1]
    vector = g > 1 and cg < prof.layout.channel_block
    return Problem(
        unit="vector" if vector else "matrix", sizes=(n, m, oh, ow, cg), kernel=(kh, kw),
        strides=(strides[0], strides[1]), dilations=(dil[0], dil[1]), in_hw=_hw(x.shape),
        in_channels=c, m_per_group=mg if g > 1 else 0, w_bytes=_bytes(w, precision),
        ops_per_output=cg * kh * kw, **common)


def _matmul(node: Node, x: TensorType, w: TensorType | None, y: TensorType,
            common: dict, precision: str) -> Problem | None:
    if w is None:
        return None
    a = node.attrs
    batched = False
    if node.op == "Gemm":
        rows, k = (x.shape[1], x.shape[0]) if a.get("transA") else x.shape
        cols = w.shape[0] if a.get("transB") else w.shape[1]
        batch = 1
    elif node.op == "QLinear":
        rows, k, cols, batch = math.prod(x.shape[:-1]), x.shape[-1], w.shape[0], 1
    else:
        k = x.shape[-1]
        cols = w.shape[-1] if w.rank >= 2 else 1
        if w.rank <= 2:
            rows, batch = math.prod(x.shape[:-1]), 1
        else:
            rows = x.shape[-2] if x.rank >= 2 else 1
            batch = math.prod(y.shape[:-2]) if y.rank > 2 else 1
            batched = True
    return Problem(unit="matrix", sizes=(batch, cols, rows, 1, k), in_hw=(rows, 1),
                   in_channels=k, weights_batched=batched, w_bytes=_bytes(w, precision),
                   **common)


def _pool(node: Node, x: TensorType, y: TensorType, common: dict) -> Problem | None:
    if x.rank not in (3, 4):
        return None
    a = node.attrs
    if node.op.startswith(("Global", "QGlobal")):
        kern = _hw(x.shape)
        strides = kern
        dil = (1, 1)
    else:
        kern = tuple(list(a["kernel_shape"]) + [1])[:2]
        strides = tuple(list(a["strides"]) + [1])[:2]
        dil = tuple(list(a.get("dilations") or [1, 1]) + [1])[:2]
    oh, ow = _hw(y.shape)
    return Problem(unit="vector", sizes=(x.shape[0], x.shape[1], oh, ow, 1), kernel=kern,
                   strides=strides, dilations=dil, in_hw=_hw(x.shape), has_weights=False,
                   acc_bytes=0, ops_per_output=kern[0] * kern[1], **common)


def _elementwise(node: Node, y: TensorType, common: dict,
                 graph: Graph | None = None) -> Problem | None:
    shape = y.shape
    if not shape:
        return None
    n = shape[0] if len(shape) >= 3 else 1
    ch = shape[1] if len(shape) >= 3 else shape[-1]
    rows = math.prod(shape[2:]) if len(shape) >= 3 else math.prod(shape[:-1])
    # streamed operands: the full-size activations (constants such as a LUT stay resident)
    full = [v for v in node.inputs
            if v is not None and v.data is None and v.type.size == y.size]
    plain = graph is not None and stays_plain(node, {id(v) for v in graph.inputs},
                                              {id(v) for v in graph.outputs})
    return Problem(unit="vector", sizes=(n, ch, rows, 1, 1), in_hw=(rows, 1),
                   n_inputs=max(1, len(full)), has_weights=False, acc_bytes=0, plain=plain,
                   **common)
