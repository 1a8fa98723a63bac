"""conv-transpose-blocks: a ConvTranspose whose stride equals its kernel becomes a 1x1 Conv and
a DepthToSpace.

Why: with kernel == stride (and no pads, output padding or dilation) the taps of different
input pixels never land on the same output cell, so each output cell is one product of an
input pixel with one tap: y[m, h*b + by, w*b + bx] = sum_c x[c, h, w] * W[c, m, by, bx] + B[m].
That is a 1x1 convolution to b*b*M channels, channel (by*b + bx)*M + m holding tap (by, bx)
of output channel m, followed by DepthToSpace (DCR) moving those channels into b x b blocks.
Both have INT8 forms (a QConv on the GEMM kernels and a copy of the codes), where
ConvTranspose has none: PP-OCRv4 det's two upsampling layers ran in f32 between a Dequantize
and a Quantize. The function is the same up to float rounding (each output cell sums the
same products); the pass tests bound it. Square kernels only (DepthToSpace's block is), one
group, 2-D, constant weights and bias. The old weights are left for dce.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.passes.manager import Pass, register
from ir.build import make_node
from ir.graph import Graph, Node


def conv_transpose_blocks(graph: Graph) -> Graph:
    out: list[Node] = []
    for node in graph.nodes:
        block = _block(node)
        out += [node] if block is None else _rewrite(graph, node, block)
    graph.nodes = out
    return graph


def _block(node: Node) -> int | None:
    """The block size b when ``node`` is a ConvTranspose this pass rewrites, else None."""
    if node.op != "ConvTranspose" or len(node.outputs) != 1:
        return None
    w, b, a = node.w, node.b, node.attrs
    if (w is None or not w.is_const or w.data is None or not w.type.dtype.is_float
            or w.type.quant is not None or w.data.ndim != 4):
        return None
    if b is not None and (not b.is_const or b.data is None or b.type.quant is not None):
        return None
    kh, kw = w.data.shape[2:]
    if kh != kw or a["group"] != 1 or list(a["strides"]) != [kh, kw]:
        return None
    if any(a["pads"]) or any(a["output_padding"]) or list(a["dilations"]) != [1, 1]:
        return None
    return int(kh)


def _rewrite(graph: Graph, node: Node, b: int) -> list[Node]:
    w = node.w.data  # [C, M, b, b]
    c, m = w.shape[:2]
    # channel (by*b + bx)*M + m reads tap (by, bx) of output channel m
    w2 = w.transpose(2, 3, 1, 0).reshape(b * b * m, c, 1, 1)
    inputs = [node.x, graph.add_const(np.ascontiguousarray(w2), f"{node.w.name}_blocks")]
    if node.b is not None:
        inputs.append(graph.add_const(np.tile(node.b.data, b * b), f"{node.b.name}_blocks"))
    y = node.outputs[0]
    conv = make_node(graph, "Conv", inputs,
                     {"strides": [1, 1], "pads": [0, 0, 0, 0], "dilations": [1, 1], "group": 1},
                     name=node.name, out_names=[f"{y.name}_blocks"], append=False,
                     sources=node.origin())
    space = Node("DepthToSpace", [conv.outputs[0]], [y],
                 {"blocksize": b, "mode": "DCR"}, name=node.name, sources=node.origin())
    return [conv, space]


@register
@dataclass(frozen=True)
class ConvTransposeBlocks(Pass):
    name = "conv-transpose-blocks"
    description = "ConvTranspose with stride == kernel -> 1x1 Conv + DepthToSpace"
    in_regions = True

    def run(self, graph: Graph) -> Graph:
        return conv_transpose_blocks(graph)
