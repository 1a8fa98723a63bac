"""The Concat range rule of quantisation (compiler.quant.quantize.share_concat_ranges): an
input that only the Concat reads writes the Concat's range directly, and the Concat's range
covers every input that keeps its own parameters and is requantised into it (read elsewhere
too, a graph input, a constant, a MaxPool's or Resize's codes), so a clipping method run on
the joined histogram never clips those values a second time.

An IR-text before/after case (tests/quant/cases/concat_hull.ir): two branches of different
ranges joined, the wide one read twice, calibrated with percentile 99 on 64 seeded samples;
the expected text pins the chosen scales.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compiler.quant.calibrate import calibrate
from compiler.quant.quantize import QuantConfig, quantize_graph, share_concat_ranges
from ir import qmath
from ir.build import make_node
from ir.graph import Graph
from ir.text import parse_graph, print_graph
from ir.types import DType, TensorType
from ir.verifier import verify

CASE = Path(__file__).with_name("cases") / "concat_hull.ir"
BEFORE, AFTER = CASE.read_text().split("// CHECK:")


def _samples() -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(11)
    return [{"x": rng.standard_normal((1, 2, 6, 6)).astype(np.float32)} for _ in range(64)]


def _line(name: str) -> str:
    return next(ln for ln in AFTER.splitlines() if ln.strip().startswith(f"%{name}:"))


def test_concat_covers_an_input_requantised_into_it() -> None:
    g = parse_graph(BEFORE)
    ranges = calibrate(g, _samples(), "percentile", percentile=99.0)
    cat, wide = ranges["cat"], ranges["cvb"]
    # the joined histogram's percentile clips the wide branch harder than its own does
    assert wide[0] < cat[0] and cat[1] < wide[1]
    q = quantize_graph(g, ranges, QuantConfig(bias_correction=False))
    verify(q)
    assert print_graph(q).strip() == AFTER.strip()
    covered = (min(cat[0], wide[0]), max(cat[1], wide[1]))
    assert covered == wide  # the wide branch is the widest: the Concat takes its range
    scale, zp = qmath.choose_qparams(*wide, DType.u8)
    for name in ("cva", "cvb", "cat"):  # so both branches write the Concat's scale
        assert f"scale={scale}" in _line(name) and f"zp={zp}" in _line(name), _line(name)
    assert "Requantize" not in q.op_counts()


def _nested() -> Graph:
    g = Graph("nested")
    t = TensorType((1, 1, 2), DType.f32)
    a, b, c = (g.add_input(n, t) for n in "abc")
    ra, rb, rc = (make_node(g, "Relu", [v], {}, name=f"r{v.name}").outputs[0]
                  for v in (a, b, c))
    (inner,) = make_node(g, "Concat", [ra, rb], {"axis": 1}, name="inner").outputs
    (pooled,) = make_node(g, "MaxPool", [rc], {"kernel_shape": [1], "strides": [1],
                                              "pads": [0, 0], "dilations": [1]},
                          name="pooled").outputs
    (outer,) = make_node(g, "Concat", [inner, pooled], {"axis": 1}, name="outer").outputs
    g.outputs = [outer]
    return g


def test_nested_concats_share_the_outermost_range_and_moved_codes_are_covered() -> None:
    ranges = {"ra": (0.0, 1.0), "rb": (0.0, 3.0), "rc": (0.0, 5.0), "pooled": (0.0, 5.5),
              "inner": (0.0, 2.5), "outer": (0.0, 2.9)}
    out = share_concat_ranges(_nested(), ranges)
    # the MaxPool's codes carry rc's range, which the outer Concat covers; the inner Concat
    # and its inputs, read by nothing else, take the outer range
    assert out["outer"] == (0.0, 5.0)
    assert out["inner"] == out["ra"] == out["rb"] == (0.0, 5.0)
    assert out["rc"] == (0.0, 5.0) and out["pooled"] == (0.0, 5.5)
