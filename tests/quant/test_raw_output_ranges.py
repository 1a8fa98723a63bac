"""The raw-range rule of calibration (compiler.quant.calibrate.raw_range_values): whatever
the method, a model output and the logits a final Sigmoid/Softmax/Tanh squashes keep their
raw observed (min, max), because their extremes are the signal (a classifier's winning
logit, a detector's most confident box); other tensors take the method's range.

An IR-text before/after case (tests/quant/cases/raw_output_ranges.ir): a classifier head and
an objectness head calibrated with percentile 99 on 200 seeded samples. The expected text
pins the chosen scales; the test also derives the raw-range scales independently from the
true extremes: u8 scale (max - min) / 255 for the logits and for the Sigmoid's input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from compiler.quant.calibrate import calibrate, raw_range_values
from compiler.quant.quantize import QuantConfig, quantize_graph
from ir import qmath
from ir.build import make_node
from ir.graph import Graph
from ir.interpreter import run
from ir.text import parse_graph, print_graph
from ir.types import DType, TensorType
from ir.verifier import verify

CASE = Path(__file__).with_name("cases") / "raw_output_ranges.ir"
BEFORE, AFTER = CASE.read_text().split("// CHECK:")


def _samples() -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(7)
    return [{"x": rng.standard_normal((1, 8)).astype(np.float32)} for _ in range(200)]


def _extremes(name: str) -> tuple[float, float]:
    g = parse_graph(BEFORE)
    vals = [run(g, s, keep=True)[name] for s in _samples()]
    return min(0.0, min(float(v.min()) for v in vals)), max(0.0, max(float(v.max()) for v in vals))


def test_the_rule_names_outputs_and_squashed_logits() -> None:
    assert raw_range_values(parse_graph(BEFORE)) == {"logits", "p", "s"}


@pytest.mark.parametrize("method", ["percentile", "entropy", "mse"])
def test_clipping_methods_keep_raw_extremes_of_outputs_and_logits(method: str) -> None:
    ranges = calibrate(parse_graph(BEFORE), _samples(), method, percentile=99.0)
    for name in ("logits", "s", "p"):
        assert ranges[name] == _extremes(name), (method, name)
    lo, hi = _extremes("x")
    assert lo < ranges["x"][0] and ranges["x"][1] < hi  # the inner input is clipped


def test_quantised_heads_before_after() -> None:
    g = parse_graph(BEFORE)
    ranges = calibrate(g, _samples(), "percentile", percentile=99.0)
    q = quantize_graph(g, ranges, QuantConfig(bias_correction=False))
    verify(q)
    assert print_graph(q).strip() == AFTER.strip()
    for name in ("logits", "s"):
        lo, hi = _extremes(name)
        want, zp = qmath.choose_qparams(lo, hi, DType.u8)
        line = next(ln for ln in AFTER.splitlines() if ln.strip().startswith(f"%{name}"))
        assert f"scale={want}" in line and f"zp={zp}" in line, line


def test_the_rule_follows_the_codes_back_through_reshape_and_transpose() -> None:
    """A YOLO head (Conv -> Reshape -> Transpose -> Sigmoid): quantised, the Reshape and the
    Transpose pass the head's codes on with its parameters, so the head's own result is the
    one that must keep its raw range."""
    g = Graph("head")
    x = g.add_input("x", TensorType((1, 8), DType.f32))
    w = g.add_const(np.ones((8, 6), np.float32), "w")
    s = make_node(g, "MatMul", [x, w], {}, name="s").outputs[0]
    r = make_node(g, "Reshape", [s], {"shape": [1, 2, 3]}, name="r").outputs[0]
    t = make_node(g, "Transpose", [r], {"perm": [0, 2, 1]}, name="t").outputs[0]
    g.outputs = make_node(g, "Sigmoid", [t], {}, name="p").outputs
    verify(g)
    assert raw_range_values(g) == {"p", "t", "r", "s"}
