"""Float emitters of the normalisation, vision, pooling and loss ops against the reference
interpreter (f32: rtol 1e-4, atol 1e-5 unless a test says otherwise), several ops per build."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ir.build import make_node
from ir.graph import Graph
from ir.types import DType, TensorType
from tests.codegen.harness import check_graph


def f32(*shape: int) -> TensorType:
    return TensorType(tuple(shape), DType.f32)


def multi_graph(name: str, nodes: list[tuple[str, list, dict]]) -> Graph:
    """One graph holding several independent one-node computations (one gcc build): each
    entry's TensorTypes become graph inputs, its arrays constants; all outputs are outputs."""
    g = Graph(name)
    outs = []
    for j, (op, inputs, attrs) in enumerate(nodes):
        vals = []
        for k, x in enumerate(inputs):
            if x is None:
                vals.append(None)
            elif isinstance(x, TensorType):
                vals.append(g.add_input(f"x{j}_{k}", x))
            else:
                vals.append(g.add_const(np.asarray(x), f"c{j}_{k}"))
        outs += make_node(g, op, vals, attrs, name=f"{op.lower()}_{j}").outputs
    g.outputs = outs
    return g


def test_losses(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    t1 = rng.integers(0, 5, (3, 4)).astype(np.int64)
    t1[0, 1] = 2
    w = rng.random(5).astype(np.float32) + 0.5
    nodes = [("NegativeLogLikelihoodLoss", [f32(3, 5, 4), t1], {"reduction": r,
              "ignore_index": ii}) for r in ("none", "sum", "mean") for ii in ([], [2])]
    nodes += [("NegativeLogLikelihoodLoss", [f32(3, 5, 4), t1, w], {"reduction": r,
               "ignore_index": [2]}) for r in ("none", "mean")]
    nodes.append(("NegativeLogLikelihoodLoss",
                  [f32(4, 5), rng.integers(0, 5, 4).astype(np.int32)], {"reduction": "mean"}))
    check_graph(multi_graph("losses", nodes), tmp_path)
