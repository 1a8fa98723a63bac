"""lstm_seq: a small sequence model around one LSTM layer, for the recurrent INT8 tests and
benchmarks/lstm_int8.py (not one of the listed examples: those are image and text encoders).

x [T, F] → Gemm (F → E) → Reshape [T, 1, E] → LSTM (hidden H, forward) → Reshape [T, H]
→ Gemm (H → C) → y [T, C]. Weights are random and scaled so that the gates see inputs of
order one (W ~ N(0, 1/E), R ~ N(0, 1/H)); the forget gate's bias starts at 1, as trained
LSTMs tend to have it, so the state carries over many steps.

With ``trained``, the head is fitted (ridge regression on the LSTM's states, in numpy) to a
synthetic memory task, :func:`memory_task`: output c is a leaky running average of input
feature c. The embedding and the LSTM keep their random weights (a reservoir), so the fit is one
linear solve, yet the outputs mean something and can be scored (:func:`task_r2`).
"""

from __future__ import annotations

import numpy as np
from onnx import ModelProto

from compiler.examples import weights
from compiler.examples.builder import F32, GraphBuilder


def memory_task(x: np.ndarray, classes: int) -> np.ndarray:
    """Targets of x [..., T, F]: y[..., t, c] = running average of x[..., :t+1, c mod F]
    with decay 0.8 (a leaky integrator: each output remembers its feature's recent past)."""
    y = np.zeros(x.shape[:-1] + (classes,), np.float32)
    acc = np.zeros(x.shape[:-2] + (classes,), np.float32)
    feature = np.arange(classes) % x.shape[-1]
    for t in range(x.shape[-2]):
        acc = np.float32(0.8) * acc + np.float32(0.2) * x[..., t, feature]
        y[..., t, :] = acc
    return y


def task_r2(x: np.ndarray, y: np.ndarray) -> float:
    """Coefficient of determination of outputs ``y`` on the memory task of inputs ``x``."""
    want = memory_task(x, y.shape[-1]).astype(np.float64)
    return float(1 - np.sum((want - y) ** 2) / np.sum((want - want.mean()) ** 2))


def build_lstm_seq(seed: int = 0, *, steps: int = 50, features: int = 32, embed: int = 64,
                   hidden: int = 128, classes: int = 16, trained: bool = False) -> ModelProto:
    """Input "x" [steps, features] → output "y" [steps, classes]."""
    model = _build(seed, steps, features, embed, hidden, classes, None)
    if not trained:
        return model
    return _build(seed, steps, features, embed, hidden, classes,
                  _fit_head(model, steps, features, classes, seed))


def _fit_head(model: ModelProto, steps: int, features: int, classes: int, seed: int,
              sequences: int = 64, ridge: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:
    """(W2, b2) minimising ||h W2ᵀ + b2 − y||² + ridge·||W2||² over random sequences, h the
    LSTM's states (the model's own float semantics: qnnc's interpreter)."""
    from compiler.frontend import import_model
    from ir.interpreter import run

    graph = import_model(model)
    states = next(v for v in graph.values() if v.name == "from_sequence")
    graph.outputs = [states]
    x = np.random.default_rng(seed + 1000).standard_normal((sequences, steps, features))
    x = x.astype(np.float32)
    h = np.concatenate([run(graph, {"x": xi})[states.name] for xi in x]).astype(np.float64)
    y = memory_task(x, classes).reshape(-1, classes).astype(np.float64)
    a = np.hstack([h, np.ones((len(h), 1))])
    reg = ridge * np.eye(a.shape[1])
    reg[-1, -1] = 0.0  # the bias is not regularised
    sol = np.linalg.solve(a.T @ a + reg, a.T @ y)
    return sol[:-1].T.astype(np.float32), sol[-1].astype(np.float32)


def _build(seed: int, steps: int, features: int, embed: int, hidden: int, classes: int,
           head: tuple[np.ndarray, np.ndarray] | None) -> ModelProto:
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
    w2_, b2_ = head or (weights.he_normal(rng, (classes, hidden), hidden),
                        weights.small(rng, (classes,), 0.05))
    w2, b2 = b.const("head.weight", w2_), b.const("head.bias", b2_)
    y = b.op("Gemm", [h, w2, b2], "y", transB=1)
    return b.model("lstm_seq", [("x", F32, [steps, features])], [(y, F32, [steps, classes])],
                   doc="Gemm -> LSTM -> Gemm sequence model (qnnc examples.sequence)")


def _lstm_node(name: str, x: str, w: str, r: str, b: str, hidden: int):  # noqa: ANN202
    from onnx import helper

    return helper.make_node("LSTM", [x, w, r, b], [name], name=name, hidden_size=hidden)
