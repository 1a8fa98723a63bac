"""The raw-range rule for recurrent state (compiler.quant.calibrate.raw_range_values): a
float input shaped like a float output is a state the caller feeds back, and keeps its raw
observed (min, max) whatever the method, as the output it comes from does; other inputs take
the method's range.

An IR-text before/after case (tests/quant/cases/raw_state_ranges.ir): a cell calibrated with
percentile 99 on 200 seeded samples whose state has rare large values. The expected text pins
the chosen scales; the test also derives the state's scale from its true extremes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from compiler.quant.calibrate import calibrate, raw_range_values
from compiler.quant.quantize import QuantConfig, quantize_graph
from ir import qmath
from ir.text import parse_graph, print_graph
from ir.types import DType
from ir.verifier import verify

CASE = Path(__file__).with_name("cases") / "raw_state_ranges.ir"
BEFORE = CASE.read_text().split("// CHECK:")[0]


def _samples() -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(7)
    out = []
    for _ in range(200):
        state = rng.standard_normal((1, 8)) * np.where(rng.random((1, 8)) < 0.02, 6.0, 1.0)
        out.append({"x": rng.standard_normal((1, 4)).astype(np.float32),
                    "state": state.astype(np.float32)})
    return out


def _extremes(name: str) -> tuple[float, float]:
    vals = [s[name] for s in _samples()]
    return min(0.0, min(float(v.min()) for v in vals)), max(0.0, max(float(v.max()) for v in vals))


def test_the_rule_names_the_fed_back_state() -> None:
    # outputs, the Tanh's input (it produces an output), and the state input
    assert raw_range_values(parse_graph(BEFORE)) == {"y", "state_out", "mix", "state"}


@pytest.mark.parametrize("method", ["percentile", "entropy", "mse"])
def test_clipping_methods_keep_the_state_inputs_raw_extremes(method: str) -> None:
    ranges = calibrate(parse_graph(BEFORE), _samples(), method, percentile=99.0)
    assert ranges["state"] == _extremes("state"), method
    lo, hi = _extremes("x")
    # the data input takes the method's range, clipped on at least one side
    assert lo <= ranges["x"][0] and ranges["x"][1] <= hi and ranges["x"] != (lo, hi)


def test_quantised_cell_before_after() -> None:
    g = parse_graph(BEFORE)
    ranges = calibrate(g, _samples(), "percentile", percentile=99.0)
    q = quantize_graph(g, ranges, QuantConfig(bias_correction=False))
    verify(q)
    after = CASE.read_text().split("// CHECK:")[1]
    assert print_graph(q).strip() == after.strip()
    lo, hi = _extremes("state")
    want, zp = qmath.choose_qparams(lo, hi, DType.u8)
    line = next(ln for ln in after.splitlines() if ln.strip().startswith("%state_q"))
    assert f"scale={want}, zp={zp}" in line, line
