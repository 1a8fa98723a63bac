"""How an op's work counts: the FLOP rules ops declare as their ``flops`` trait.

A rule maps a node to (MACs, FLOPs), from static types only, so counting is cheap,
deterministic and explainable rather than exact to the last add:

- **MACs** are counted only for the multiply-accumulate layers (convolutions, matrix
  products, Einsum and their integer forms); every other op has 0 MACs.
- **FLOPs** are 2 per MAC, plus one per output element for a bias. Pooling costs its window
  per output element; normalisations and softmax a small fixed number per element
  (:func:`per_element`); reductions one per input element; moving data costs 0.
- An op that declares no rule costs one FLOP per output element (the right figure for the
  many elementwise ops), or none if it only moves data (``moves_data``).

compiler/flops.py sums these per layer and per graph for `qnnc inspect` and the reports.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ir.graph import Node, Value
    from ir.types import TensorType

Rule = Callable[["Node"], tuple[int, int]]


def _size(shape: Iterable[int]) -> int:
    return int(math.prod(shape))


def _out_elems(node: Node) -> int:
    return sum(v.type.size for v in node.outputs)


def _bias(node: Node, bias: Value | None) -> int:
    return node.outputs[0].type.size if bias is not None else 0


def elementwise(node: Node) -> tuple[int, int]:
    """One FLOP per output element (the default)."""
    return 0, _out_elems(node)


def free(node: Node) -> tuple[int, int]:
    """No arithmetic: the op moves, views or re-types data."""
    return 0, 0


def per_element(k: int) -> Rule:
    """``k`` FLOPs per output element, for ops that make a few passes over their data."""

    def rule(node: Node) -> tuple[int, int]:
        return 0, k * node.outputs[0].type.size

    rule.__doc__ = f"{k} FLOPs per output element"
    return rule


def conv(node: Node) -> tuple[int, int]:
    """W is [M, C/group, k...]: every output element is a dot product over W.shape[1:]; a bias
    (operand ``b``, where the op has one) adds one FLOP per output element."""
    w = node.w
    if w is None:
        return elementwise(node)
    macs = node.outputs[0].type.size * _size(w.type.shape[1:])
    bias = _bias(node, node.b) if "b" in _operands(node) else 0
    return macs, 2 * macs + bias


def conv_transpose(node: Node) -> tuple[int, int]:
    """W is [C, M/group, k...]: every input element scatters into W.shape[1:] outputs."""
    x, w = node.x, node.w
    if x is None or w is None:
        return elementwise(node)
    macs = x.type.size * _size(w.type.shape[1:])
    return macs, 2 * macs + _bias(node, node.b)


def _matmul_macs(a: TensorType, out: TensorType) -> int:
    k = a.shape[-1] if a.rank >= 1 else 1
    return out.size * k


def matmul(node: Node) -> tuple[int, int]:
    """a [..., K] @ b: every output element is a K-long dot product."""
    a = node.a
    if a is None:
        return elementwise(node)
    macs = _matmul_macs(a.type, node.outputs[0].type)
    return macs, 2 * macs


def linear(node: Node) -> tuple[int, int]:
    """x [..., K] times w [N, K]: every output element is a K-long dot product, plus bias."""
    w = node.w
    if w is None:
        return elementwise(node)
    macs = node.outputs[0].type.size * w.type.shape[1]
    return macs, 2 * macs + _bias(node, node.b)


def gemm(node: Node) -> tuple[int, int]:
    """op(a) [M, K] @ op(b): K per output element, plus the bias c."""
    a = node.a
    if a is None or a.type.rank != 2:
        return elementwise(node)
    k = a.type.shape[0] if node.attrs.get("transA") else a.type.shape[1]
    macs = node.outputs[0].type.size * k
    return macs, 2 * macs + _bias(node, node.c)


def einsum(node: Node) -> tuple[int, int]:
    """Naive evaluation: one MAC per point of the joint index space of all operands."""
    eq = str(node.attrs.get("equation", "")).replace(" ", "")
    terms = eq.split("->")[0].split(",")
    sizes: dict[str, int] = {}
    for term, v in zip(terms, node.inputs):
        if v is None:
            continue
        for letter, d in zip(_expand_ellipsis(term, v.type.rank), v.type.shape):
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


def window(node: Node) -> tuple[int, int]:
    """Pooling: the window's taps per output element."""
    kernel = node.attrs.get("kernel_shape")
    if not kernel:
        return elementwise(node)
    return 0, node.outputs[0].type.size * _size(int(k) for k in kernel)


def reduction(node: Node) -> tuple[int, int]:
    """One FLOP per input element."""
    x = node.inputs[0] if node.inputs else None
    return 0, (x.type.size if x is not None else _out_elems(node))


def lrn(node: Node) -> tuple[int, int]:
    """A window of ``size`` channels squared and summed, then scaled: size + 3 per element."""
    size = int(node.attrs.get("size", 5))
    return 0, (size + 3) * node.outputs[0].type.size


def _operands(node: Node) -> tuple[str, ...]:
    from ir.ops.registry import get_op

    return get_op(node.op).operands


def rule_of(node: Node) -> Rule:
    """The op's declared FLOP rule (its ``flops`` trait): one FLOP per output element when it
    declares none, none when it only moves data."""
    from ir.ops.registry import OPS  # the registry holds the ops that declare these rules

    opdef = OPS.get(node.op)
    if opdef is None:
        return elementwise
    if opdef.flops is not None:
        return opdef.flops
    return free if opdef.moves_data else elementwise

