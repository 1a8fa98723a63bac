"""Element-wise layers between float layers stay float (compiler/quant/float_sandwich.py).

An IR-text before/after case (tests/quant/cases/float_sandwich.ir): sqrt(a^2 + b^2) before a
matrix product, calibrated with minmax on 50 seeded samples. The Add between the float Pow
and Sqrt stays float; the product and the Mul after it, which read integer results, are
integer. The quantised graph is also run against the float one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compiler.quant.calibrate import calibrate
from compiler.quant.float_sandwich import keep_float_sandwiches
from compiler.quant.quantize import QuantConfig, quantize_graph
from ir.interpreter import run
from ir.text import parse_graph, print_graph
from ir.verifier import verify

CASE = Path(__file__).with_name("cases") / "float_sandwich.ir"
BEFORE, AFTER = CASE.read_text().split("// CHECK:")


def _samples(n: int = 50, seed: int = 5) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"a": rng.standard_normal((1, 8)).astype(np.float32),
             "b": rng.standard_normal((1, 8)).astype(np.float32)} for _ in range(n)]


def _quantised():  # noqa: ANN202
    g = parse_graph(BEFORE)
    q = quantize_graph(g, calibrate(g, _samples(), "minmax"), QuantConfig(bias_correction=False))
    verify(q)
    return g, q


def test_the_add_between_float_layers_stays_float() -> None:
    _, q = _quantised()
    assert print_graph(q).strip() == AFTER.strip()
    ops = [n.op for n in q.nodes]
    assert "QAdd" not in ops and "Add" in ops and "QLinear" in ops and "QMul" in ops
    assert keep_float_sandwiches(q) == 0  # nothing left to replace


def test_the_quantised_graph_follows_the_float_one() -> None:
    g, q = _quantised()
    for s in _samples(5, seed=9):
        want, got = run(g, s)["z"], run(q, s)["z"]
        # two integer layers after the float magnitude: a few of the Mul's steps
        step = float(np.abs(want).max()) / 255 * 2
        assert np.abs(got - want).max() <= 4 * step
