"""Counting work per layer: multiply-accumulates (MACs), floating-point operations (FLOPs)
and parameters, from the static types of an IR graph.

The figures are what `qnnc inspect` prints and what the cost model starts from, so they must
be cheap, deterministic and explainable rather than exact to the last add:

- **MACs** are counted only for the multiply-accumulate layers (Conv, ConvTranspose, MatMul,
  Gemm, Einsum and their integer forms); every other op has 0 MACs.
- **FLOPs** are 2 per MAC, plus one per output element for a bias (Conv/Gemm with a bias
  input). Pooling costs its window per output element; normalisations and softmax cost a
  small fixed number per element (see :data:`PER_ELEMENT`); reductions cost one per input
  element; pure data movement (reshape, transpose, gather, ...) costs 0.
- **Default**: an op this module does not know costs one FLOP per output element, the right
  figure for the many elementwise ops (Add, Relu, Sigmoid, ...).
- **Params** of a node are the elements of its constant inputs (weights, biases, and any
  folded constants it reads).

Example::

    >>> import numpy as np
    >>> from ir.graph import Graph, Node
    >>> from ir.types import DType, TensorType
    >>> g = Graph()
    >>> x = g.add_input("x", TensorType((1, 3, 8, 8), DType.f32))
    >>> w = g.add_const(np.zeros((4, 3, 3, 3), np.float32), "w")
    >>> y = g.new_value(TensorType((1, 4, 6, 6), DType.f32), "y")
    >>> cost = node_cost(Node("Conv", [x, w], [y], {}, "conv"))
    >>> cost.macs, cost.flops, cost.params  # 144 outputs x 27 taps
    (3888, 7776, 108)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ir.graph import Graph, Node, Value
from ir.types import TensorType

Counter = Callable[[Node], tuple[int, int]]  # node -> (macs, flops)

COUNTERS: dict[str, Counter] = {}

# Ops that only move, view or re-type data: no arithmetic.
DATA_MOVEMENT = (
    "Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat", "Split",
    "Slice", "Gather", "GatherElements", "GatherND", "ScatterElements", "ScatterND", "Expand",
    "Tile", "Pad", "DepthToSpace", "SpaceToDepth", "Shape", "Size", "Cast", "CastLike",
    "ConstantOfShape", "Dropout", "Compress", "ReverseSequence", "Trilu", "OneHot", "EyeLike",
)

# Approximate FLOPs per output element for ops that do a few passes over their data.
PER_ELEMENT: dict[str, int] = {
    "BatchNormalization": 2,  # one multiply-add with the scale and shift folded
    "LayerNormalization": 8,  # mean, subtract, square, sum, rsqrt-scale, scale, shift
    "InstanceNormalization": 8,
    "GroupNormalization": 8,
    "RMSNormalization": 6,
    "MeanVarianceNormalization": 8,
    "LpNormalization": 3,  # square (or abs), sum, divide
    "Softmax": 5,  # max, subtract, exp, sum, divide
    "LogSoftmax": 5,
    "Hardmax": 2,
    "QuantizeLinear": 3,  # divide, round, add zero point (then saturate)
    "DequantizeLinear": 2,  # subtract zero point, multiply
}

REDUCTIONS = (
    "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
    "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin", "CumSum", "TopK",
    "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool",
)


@dataclass(frozen=True)
class LayerCost:
    """The cost of one IR node."""

    name: str
    op: str
    outputs: tuple[TensorType, ...]
    params: int
    macs: int
    flops: int


@dataclass
class Totals:
    """Whole-graph figures; ``params`` counts each constant once even if shared."""

    params: int = 0
    macs: int = 0
    flops: int = 0
    op_counts: dict[str, int] = field(default_factory=dict)


def counts(*ops: str) -> Callable[[Counter], Counter]:
    """Register a counter for the IR ops ``ops``."""

    def deco(fn: Counter) -> Counter:
        for op in ops:
            COUNTERS[op] = fn
        return fn

    return deco


def _size(shape: Iterable[int]) -> int:
    return int(math.prod(shape))


def _out_elems(node: Node) -> int:
    return sum(v.type.size for v in node.outputs)


def _input(node: Node, i: int) -> Value | None:
    return node.inputs[i] if i < len(node.inputs) else None


def _bias_flops(node: Node, index: int) -> int:
    return node.outputs[0].type.size if _input(node, index) is not None else 0


@counts("Conv", "ConvInteger", "QConv")
def _conv(node: Node) -> tuple[int, int]:
    # W is [M, C/group, k...]: every output element is a dot product over W.shape[1:].
    w = _input(node, 1)
    if w is None:
        return 0, _out_elems(node)
    macs = node.outputs[0].type.size * _size(w.type.shape[1:])
    bias = _bias_flops(node, 2) if node.op in ("Conv", "QConv") else 0
    return macs, 2 * macs + bias


@counts("ConvTranspose")
def _conv_transpose(node: Node) -> tuple[int, int]:
    # W is [C, M/group, k...]: every input element scatters into W.shape[1:] outputs.
    x, w = _input(node, 0), _input(node, 1)
    if x is None or w is None:
        return 0, _out_elems(node)
    macs = x.type.size * _size(w.type.shape[1:])
    return macs, 2 * macs + _bias_flops(node, 2)


def _matmul_macs(a: TensorType, out: TensorType) -> int:
    k = a.shape[-1] if a.rank >= 1 else 1
    return out.size * k


@counts("MatMul", "MatMulInteger", "QMatMul")
def _matmul(node: Node) -> tuple[int, int]:
    a = _input(node, 0)
    if a is None:
        return 0, _out_elems(node)
    macs = _matmul_macs(a.type, node.outputs[0].type)
    return macs, 2 * macs


@counts("QLinear")
def _qlinear(node: Node) -> tuple[int, int]:
    # x [..., K] times w [N, K]: every output element is a K-long dot product
    w = _input(node, 1)
    if w is None:
        return 0, _out_elems(node)
    macs = node.outputs[0].type.size * w.type.shape[1]
    return macs, 2 * macs + _bias_flops(node, 2)


@counts("Gemm")
def _gemm(node: Node) -> tuple[int, int]:
    a = _input(node, 0)
    if a is None or a.type.rank != 2:
        return 0, _out_elems(node)
    k = a.type.shape[0] if node.attrs.get("transA") else a.type.shape[1]
    macs = node.outputs[0].type.size * k
    return macs, 2 * macs + _bias_flops(node, 2)


@counts("Einsum")
def _einsum(node: Node) -> tuple[int, int]:
    """Naive evaluation: one MAC per point of the joint index space of all operands."""
    eq = str(node.attrs.get("equation", "")).replace(" ", "")
    lhs = eq.split("->")[0]
    terms = lhs.split(",")
    sizes: dict[str, int] = {}
    for term, v in zip(terms, node.inputs):
        if v is None:
            continue
        letters = _expand_ellipsis(term, v.type.rank)
        for letter, d in zip(letters, v.type.shape):
            sizes[letter] = max(sizes.get(letter, 1), d)
    if len(terms) < 2:  # a transpose, trace or reduction: no products
        return 0, max((v.type.size for v in node.inputs if v is not None), default=0)
    macs = _size(sizes.values())
    return macs, 2 * macs


def _expand_ellipsis(term: str, rank: int) -> list[str]:
    if "..." not in term:
        return list(term)
    head, tail = term.split("...")
    n = max(rank - len(head) - len(tail), 0)
    return list(head) + [f"...{i}" for i in range(n)] + list(tail)


@counts("MaxPool", "AveragePool", "LpPool", "MaxRoiPool")
def _pool(node: Node) -> tuple[int, int]:
    kernel = node.attrs.get("kernel_shape") or node.attrs.get("pooled_shape")
    if not kernel:
        x = _input(node, 0)
        out = node.outputs[0].type
        if x is None or x.type.rank != out.rank:
            return 0, _out_elems(node)
        kernel = [max(i // max(o, 1), 1) for i, o in zip(x.type.shape[2:], out.shape[2:])]
    return 0, node.outputs[0].type.size * _size(int(k) for k in kernel)


@counts(*REDUCTIONS)
def _reduce(node: Node) -> tuple[int, int]:
    x = _input(node, 0)
    return 0, (x.type.size if x is not None else _out_elems(node))


@counts(*DATA_MOVEMENT)
def _free(node: Node) -> tuple[int, int]:
    return 0, 0


@counts(*PER_ELEMENT)
def _per_element(node: Node) -> tuple[int, int]:
    return 0, PER_ELEMENT[node.op] * node.outputs[0].type.size


@counts("LRN")
def _lrn(node: Node) -> tuple[int, int]:
    size = int(node.attrs.get("size", 5))
    return 0, (size + 3) * node.outputs[0].type.size


def _default(node: Node) -> tuple[int, int]:
    return 0, _out_elems(node)


def node_params(node: Node) -> int:
    """Elements of the node's constant inputs."""
    return sum(v.type.size for v in node.inputs if v is not None and v.is_const)


def node_cost(node: Node) -> LayerCost:
    """MACs, FLOPs and parameters of one node (see the module docstring for the rules)."""
    macs, flops = COUNTERS.get(node.op, _default)(node)
    return LayerCost(
        name=node.name or (node.outputs[0].name if node.outputs else node.op),
        op=node.op,
        outputs=tuple(v.type for v in node.outputs),
        params=node_params(node),
        macs=int(macs),
        flops=int(flops),
    )


def graph_costs(graph: Graph) -> list[LayerCost]:
    """One :class:`LayerCost` per node, in graph order."""
    return [node_cost(n) for n in graph.nodes]


def graph_totals(graph: Graph, costs: list[LayerCost] | None = None) -> Totals:
    """Sum of the per-node figures; each constant's parameters count once."""
    costs = graph_costs(graph) if costs is None else costs
    seen: set[int] = set()
    params = 0
    for n in graph.nodes:
        for v in n.inputs:
            if v is not None and v.is_const and id(v) not in seen:
                seen.add(id(v))
                params += v.type.size
    return Totals(
        params=params,
        macs=sum(c.macs for c in costs),
        flops=sum(c.flops for c in costs),
        op_counts=dict(sorted(graph.op_counts().items())),
    )


def human(n: float) -> str:
    """A short human-readable count: 1234567 -> '1.23M'."""
    for unit, div in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return str(int(n)) if float(n).is_integer() else f"{n:.2f}"

