"""QLSTM and QGRU through the tvm target, their time loops unrolled: with activations made of
+, *, / and comparisons (HardSigmoid, Softsign) bit-exact with the interpreter in every
direction and layout, with peepholes, clip, coupled input/forget gates, both reset forms of
the GRU and initial states; with Sigmoid and Tanh (exp and tanh from LLVM, not numpy) codes
within one step, nearly all equal. A form they do not take (sequence_lens) is named in the
one unsupported-op error."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("tvm", reason="the tvm targets need Apache TVM (pip install 'qnnc[tvm]')")

from ir.graph import Graph  # noqa: E402
from ir.interpreter import run  # noqa: E402
from ir.ops.recurrent import KINDS  # noqa: E402
from ir.types import DType  # noqa: E402
from targets.tvm.build import run_in_memory  # noqa: E402
from targets.tvm.lower import unsupported  # noqa: E402
from tests.codegen.test_ops_recurrent import EXACT, quantised  # noqa: E402


def cell_only(q: Graph, op: str) -> Graph:
    """The QLSTM's or QGRU's codes as the graph's outputs (compared code for code)."""
    sub = q.copy()
    node = next(n for n in sub.nodes if n.op == "Q" + op)
    sub.outputs = list(node.outputs)
    return sub


@pytest.mark.parametrize("op, layout, cfg", [
    ("LSTM", 0, {"direction": "bidirectional", "initial": True, "peep": True}),
    ("LSTM", 1, {"direction": "reverse", "clip": 0.9, "input_forget": True, "initial": True,
                 "act_dtype": DType.i8}),
    ("LSTM", 0, {"direction": "forward"}),
    ("GRU", 0, {"direction": "bidirectional", "initial": True}),
    ("GRU", 1, {"direction": "reverse", "linear_before_reset": True, "initial": True,
                "act_dtype": DType.i8}),
])
def test_bit_exact_with_exact_activations(op: str, layout: int, cfg: dict[str, Any]) -> None:
    per_dir = KINDS[op][1]
    acts = EXACT[:per_dir] * (2 if cfg["direction"] == "bidirectional" else 1)
    q, feeds = quantised(op, layout, acts, **cfg)
    g = cell_only(q, op)
    want = run(g, feeds)
    for v, got in zip(g.outputs, run_in_memory(g, feeds), strict=True):
        assert got.dtype == want[v.name].dtype and got.shape == want[v.name].shape
        np.testing.assert_array_equal(got, want[v.name], err_msg=v.name)


@pytest.mark.parametrize("op, cfg", [("LSTM", {}), ("GRU", {"linear_before_reset": False})])
def test_llvm_gates_within_one_code(op: str, cfg: dict[str, Any]) -> None:
    q, feeds = quantised(op, 0, None, direction="bidirectional", initial=True, **cfg)
    g = cell_only(q, op)
    want = run(g, feeds)
    for v, got in zip(g.outputs, run_in_memory(g, feeds), strict=True):
        steps = np.abs(got.astype(np.int64) - want[v.name].astype(np.int64))
        assert steps.max() <= 1, v.name
        assert (steps > 0).mean() <= 0.02, v.name


@pytest.mark.parametrize("op", ["LSTM", "GRU"])
def test_sequence_lengths_are_named_as_unsupported(op: str) -> None:
    q, _ = quantised(op, 0, None, direction="forward", seq=True)
    assert "Q" + op in unsupported(q)
