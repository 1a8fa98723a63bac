"""lstm_seq: a small sequence model around one LSTM layer, for the recurrent INT8 tests and
benchmarks/lstm_int8.py (not one of the listed examples: those are image and text encoders).

x [T, F] → Gemm (F → E) → Reshape [T, 1, E] → LSTM (hidden H, forward) → Reshape [T, H]
→ Gemm (H → C) → y [T, C]. Weights are random and scaled so that the gates see inputs of
order one (W ~ N(0, 1/E), R ~ N(0, 1/H)); the forget gate's bias starts at 1, as trained
LSTMs tend to have it, so the state carries over many steps.
"""

from __future__ import annotations

import numpy as np
from onnx import ModelProto

from compiler.examples import weights
from compiler.examples.builder import F32, GraphBuilder


def build_lstm_seq(seed: int = 0, *, steps: int = 50, features: int = 32, embed: int = 64,
                   hidden: int = 128, classes: int = 16) -> ModelProto:
    """Input "x" [steps, features] → output "y" [steps, classes]."""
    b = GraphBuilder(np.random.default_rng(seed))
    rng = b.rng
    w1 = b.const("embed.weight", weights.he_normal(rng, (embed, features), features))
    b1 = b.const("embed.bias", weights.small(rng, (embed,), 0.05))
    e = b.op("Gemm", ["x", w1, b1], "embed", transB=1)
    shape3 = b.ints("seq_shape", [steps, 1, embed])
    e3 = b.op("Reshape", [e, shape3], "to_sequence")
    w = rng.normal(0, 1 / np.sqrt(embed), (1, 4 * hidden, embed)).astype(np.float32)
    r = rng.normal(0, 1 / np.sqrt(hidden), (1, 4 * hidden, hidden)).astype(np.float32)
    bias = rng.normal(0, 0.1, (1, 8 * hidden)).astype(np.float32)
    bias[0, 2 * hidden:3 * hidden] += 1.0  # forget gate (order i, o, f, c)
    lstm = b.fresh("lstm")
    b.nodes.append(_lstm_node(lstm, e3, b.const("lstm.W", w), b.const("lstm.R", r),
                              b.const("lstm.B", bias), hidden))
    shape2 = b.ints("out_shape", [steps, hidden])
    h = b.op("Reshape", [lstm, shape2], "from_sequence")
    w2 = b.const("head.weight", weights.he_normal(rng, (classes, hidden), hidden))
    b2 = b.const("head.bias", weights.small(rng, (classes,), 0.05))
    y = b.op("Gemm", [h, w2, b2], "y", transB=1)
    return b.model("lstm_seq", [("x", F32, [steps, features])], [(y, F32, [steps, classes])],
                   doc="Gemm -> LSTM -> Gemm sequence model (qnnc examples.sequence)")


def _lstm_node(name: str, x: str, w: str, r: str, b: str, hidden: int):  # noqa: ANN202
    from onnx import helper

    return helper.make_node("LSTM", [x, w, r, b], [name], name=name, hidden_size=hidden)
