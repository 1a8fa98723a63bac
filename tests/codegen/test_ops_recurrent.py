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
from ir.interpreter import run as interpret
from ir.ops.recurrent import ACTIVATIONS, KINDS
from ir.types import DType, TensorType
from tests.codegen.harness import check_graph, run_c

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
    full = {"hidden_size": H, "direction": direction, "batch_major": bool(layout),
            "activations": names,
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


# -- QLSTM, QGRU -------------------------------------------------------------------------------
# Its integer part (int8 codes into int32 accumulators) and the f32 arithmetic that turns the
# accumulators into gate pre-activations are the interpreter's operations in the interpreter's
# order, so with activations made of +, *, / and comparisons only (HardSigmoid, Softsign) the
# C is bit-exact with the interpreter. With Sigmoid/Tanh, libm's expf/tanhf and numpy's exp/tanh
# may differ in the last bit, so a code of h (and through it later steps) may move by one step
# where h lands on a rounding boundary: codes then agree within 1, nearly all exactly.

def quantised(op: str, layout: int, acts: list[str] | None, act_dtype: DType = DType.u8,
              **cfg: Any) -> tuple[Graph, dict]:
    """A float graph of one LSTM or GRU (all outputs), calibrated on random inputs and
    quantised with ``act_dtype`` activations: Quantize -> QLSTM/QGRU -> Dequantize each."""
    from compiler.quant.calibrate import calibrate
    from compiler.quant.quantize import QuantConfig, quantize_graph
    from ir.verifier import verify

    rng = np.random.default_rng(5)
    g = Graph(f"q{op.lower()}")
    x = g.add_input("x", TensorType((B, T, I) if layout else (T, B, I), DType.f32))
    seq = None
    if cfg.pop("seq", False):
        seq = g.add_const(np.array([T, 2, 1], np.int32), "lens")
    layer(g, x, op, rng, layout=layout, seq=seq, acts=acts, **cfg)
    calib = rng.standard_normal((8, *x.type.shape)).astype(np.float32)
    q = quantize_graph(g, calibrate(g, {"x": calib}, "minmax"), QuantConfig(act_dtype=act_dtype))
    verify(q)
    assert q.op_counts().get("Q" + op) == 1 and op not in q.op_counts()
    return q, {"x": rng.standard_normal(x.type.shape).astype(np.float32)}


EXACT = ["HardSigmoid", "Softsign", "Softsign"]  # f, g, h: no libm call


@pytest.mark.parametrize("op,layout,cfg", [
    ("LSTM", 0, {"direction": "bidirectional", "initial": True, "peep": True, "seq": True}),
    ("LSTM", 1, {"direction": "reverse", "clip": 0.9, "input_forget": True, "initial": True,
                 "act_dtype": DType.i8}),
    ("GRU", 0, {"direction": "bidirectional", "initial": True, "seq": True}),
    ("GRU", 1, {"direction": "reverse", "linear_before_reset": True, "initial": True,
                "act_dtype": DType.i8}),
])
def test_quantised_recurrent_c_bit_exact_with_exact_activations(
        op: str, layout: int, cfg: dict[str, Any], tmp_path: Path) -> None:
    per_dir = KINDS[op][1]
    acts = EXACT[:per_dir] * (2 if cfg["direction"] == "bidirectional" else 1)
    q, feeds = quantised(op, layout, acts, **cfg)
    got = run_c(q, feeds, tmp_path)
    want = interpret(q, feeds)
    for name, w in want.items():
        np.testing.assert_array_equal(got[name], w, err_msg=name)


@pytest.mark.parametrize("op,cfg", [("LSTM", {}), ("GRU", {"linear_before_reset": False})])
def test_quantised_recurrent_c_with_libm_gates_within_one_code(op: str, cfg: dict[str, Any],
                                                               tmp_path: Path) -> None:
    q, feeds = quantised(op, 0, None, direction="bidirectional", seq=True, initial=True, **cfg)
    got = run_c(q, feeds, tmp_path)
    want = interpret(q, feeds)
    made_by = q.producers()
    for v in q.outputs:
        dq = made_by[id(v)]  # the Dequantize of a QLSTM/QGRU output: compare codes
        assert dq.op == "Dequantize"
        scale = dq.inputs[0].type.quant.scale[0]
        steps = np.abs(got[v.name].astype(np.float64) - want[v.name]) / scale
        assert steps.max() <= 1 + 1e-3, v.name
        assert (steps > 0.5).mean() <= 0.02, v.name
