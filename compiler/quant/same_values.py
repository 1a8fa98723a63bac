"""Tensors that hold another tensor's values, rearranged: one observer serves both.

A result of an op that rearranges (the registry's ``rearranges`` trait: Reshape, Transpose,
Identity) holds exactly its operand's values in another order or shape. Every observer's
state depends only on the values each update gives it, not on their order (extremes,
histogram counts, bin widths grown from the extremes), so the two tensors' observers would
go through the same states sample after sample: calibration observes the operand once and
lets the result share its observer. On a decoder step (the llama example) these results are
half of the values observed: its key and value caches transposed and reshaped on their way
through attention.
"""

from __future__ import annotations

from ir.graph import Graph
from ir.ops.registry import get_op


def rearranged(graph: Graph) -> dict[str, str]:
    """Result name -> the name of the tensor whose values it holds (the first tensor up a
    chain of rearranging ops that is not itself such a result), for the float,
    non-constant results of those ops in ``graph``'s own nodes."""
    out: dict[str, str] = {}
    for node in graph.nodes:
        if not get_op(node.op).rearranges or node.regions or len(node.outputs) != 1:
            continue
        x, y = node.first_operand(), node.outputs[0]
        if x is None or x.is_const or not x.type.dtype.is_float or \
                y.type.dtype is not x.type.dtype or y.type.size != x.type.size:
            continue
        out[y.name] = out.get(x.name, x.name)
    return out
