"""The float recurrent emitters (LSTM, GRU, RNN) against the reference interpreter.

Tolerance f32: rtol 1e-4, atol 1e-5 — the C sums the gate dot products in another order than
numpy's matrix products and calls libm's expf/tanhf, so results differ by a few ulp per step.
Several layers share one graph (one gcc build) per case."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ir.build import make_node
from ir.graph import Graph
from ir.ops.recurrent import ACTIVATIONS, KINDS
from ir.types import DType, TensorType
from tests.codegen.harness import check_graph

T, B, I, H = 4, 3, 5, 6


def layer(g: Graph, x: Any, op: str, rng: np.random.Generator, *, direction: str = "forward",
          layout: int = 0, seq: Any = None, initial: bool = False, peep: bool = False,
          acts: list[str] | None = None, **attrs: Any) -> None:
    """Add a recurrent node with random weights reading ``x``; its outputs become outputs."""
    gates, per_dir, defaults, n_out = KINDS[op]
    d = 2 if direction == "bidirectional" else 1

    def const(shape: tuple[int, ...], name: str) -> Any:
        return g.add_const(rng.normal(0, 0.5, shape).astype(np.float32), name)

    ins = [x, const((d, gates * H, I), "w"), const((d, gates * H, H), "r"),
           const((d, 2 * gates * H), "b"), seq]
    state = (B, d, H) if layout else (d, B, H)
    ins += [const(state, "h0") if initial else None]
    if op == "LSTM":
        ins += [const(state, "c0") if initial else None, const((d, 3 * H), "p") if peep else None]
    names = (acts or list(defaults)) * (d if acts is None or len(acts) == per_dir else 1)
    full = {"hidden_size": H, "direction": direction, "layout": layout, "activations": names,
            "activation_alpha": [ACTIVATIONS[n][1] for n in names],
            "activation_beta": [ACTIVATIONS[n][2] for n in names], **attrs}
    node = make_node(g, op, ins, full, name=f"{op.lower()}{len(g.nodes)}")
    g.outputs += list(node.outputs)


CASES: dict[str, tuple[int, list[tuple[str, dict[str, Any]]]]] = {
    "time-major": (0, [
        ("LSTM", {"direction": "bidirectional", "initial": True, "peep": True}),
        ("LSTM", {"direction": "reverse", "clip": 0.8, "input_forget": True}),
        ("GRU", {"direction": "bidirectional", "seq": True}),
        ("GRU", {"linear_before_reset": True, "initial": True, "clip": 0.6}),
        ("RNN", {"direction": "bidirectional", "acts": ["Relu", "Tanh"]}),
    ]),
    "batch-major-lens": (1, [
        ("LSTM", {"direction": "bidirectional", "seq": True, "initial": True}),
        ("GRU", {"direction": "reverse", "seq": True, "linear_before_reset": True}),
        ("RNN", {"seq": True, "initial": True}),
        ("LSTM", {"acts": ["HardSigmoid", "Softsign", "Elu"]}),
        ("GRU", {"acts": ["Sigmoid", "LeakyRelu"]}),
    ]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_recurrent_c_matches_interpreter(case: str, tmp_path: Path) -> None:
    layout, layers = CASES[case]
    rng = np.random.default_rng(3)
    g = Graph(f"rnn_{case}")
    x = g.add_input("x", TensorType((B, T, I) if layout else (T, B, I), DType.f32))
    seq = g.add_input("lens", TensorType((B,), DType.i32))
    for op, cfg in layers:
        layer(g, x, op, rng, layout=layout, **{**cfg, "seq": seq if cfg.get("seq") else None})
    feeds = {"x": rng.standard_normal(x.type.shape).astype(np.float32),
             "lens": np.array([T, 2, 1], np.int32)}
    check_graph(g, tmp_path, feeds=feeds)
