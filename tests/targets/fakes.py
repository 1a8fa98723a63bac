"""Small fake target profiles and IR layers for the target tests."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from ir.build import make_node
from ir.graph import Graph, Node
from ir.types import DType, TensorType


def tiny_data(**over: Any) -> dict[str, Any]:
    """One core, 1 GHz, 16 INT8 MACs/cycle in 1x4x4 blocks, one 4 KiB level-1 buffer holding
    everything, 1 byte/cycle off-chip: small enough to check by hand."""
    data: dict[str, Any] = {
        "name": "tiny",
        "int8_tops": 32e-3,
        "clock_hz": 1e9,
        "cores": 1,
        "activation_dtype": "u8",
        "matrix": {"macs_per_cycle": {"i8": 16}, "block": {"i8": [1, 4, 4]}},
        "vector": {"width_bytes": 16},
        "layout": {"activation": "NHWC", "weight": "OHWI", "channel_block": 4},
        "offchip": {"name": "DRAM", "bytes": 1 << 30, "bandwidth": 1e9},
        "buffers": [{"name": "BUF", "roles": ["inputs", "weights", "outputs", "accumulators",
                                              "vector"],
                     "level": 1, "bytes": 4096, "alignment": 1}],
    }
    data.update(over)
    return copy.deepcopy(data)


def two_level_data() -> dict[str, Any]:
    """tiny plus a ping-ponged level-1 split (inputs / weights / accumulators) under a shared
    level-2 buffer, to exercise nesting, overlap and on-chip links."""
    d = tiny_data(name="tiny2", cores=2)
    d["buffers"] = [
        {"name": "A", "roles": ["inputs"], "level": 1, "bytes": 512, "alignment": 16,
         "double_buffered": True, "fill_bytes_per_cycle": 4.0},
        {"name": "B", "roles": ["weights"], "level": 1, "bytes": 512, "alignment": 16,
         "double_buffered": True, "fill_bytes_per_cycle": 4.0},
        {"name": "ACC", "roles": ["accumulators", "vector"], "level": 1, "bytes": 1024,
         "alignment": 16},
        {"name": "G", "roles": ["inputs", "weights", "outputs"], "level": 2, "bytes": 8192,
         "alignment": 64, "shared_by": 2, "double_buffered": True},
    ]
    return d


def conv_graph(n: int, c: int, h: int, w: int, m: int, k: int, stride: int = 1,
               pad: int = 0, group: int = 1) -> tuple[Graph, Node]:
    g = Graph("conv")
    x = g.add_input("x", TensorType((n, c, h, w), DType.f32))
    wt = g.add_const(np.zeros((m, c // group, k, k), np.float32), "w")
    node = make_node(g, "Conv", [x, wt], {"strides": [stride, stride],
                                          "pads": [pad] * 4, "dilations": [1, 1],
                                          "group": group}, name="conv")
    g.outputs.append(node.outputs[0])
    return g, node


def matmul_graph(rows: int, k: int, cols: int, batch: int = 0) -> tuple[Graph, Node]:
    g = Graph("mm")
    if batch:
        a = g.add_input("a", TensorType((batch, rows, k), DType.f32))
        b = g.add_input("b", TensorType((batch, k, cols), DType.f32))
    else:
        a = g.add_input("a", TensorType((rows, k), DType.f32))
        b = g.add_const(np.zeros((k, cols), np.float32), "b")
    node = make_node(g, "MatMul", [a, b], {}, name="mm")
    g.outputs.append(node.outputs[0])
    return g, node
