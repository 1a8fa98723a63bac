"""SmoothQuant-style scale migration (compiler/quant/smooth.py, the quantize pass's ``smooth``).

An IR-text before/after case (tests/quant/cases/smooth.ir) pins the smoothed parameters and
the scales chosen from them; the other tests check what the case relies on: the float graph
computes the same function, the smoothed tensor's range is exactly what a min/max observer
sees on the smoothed graph, the migration makes INT8 more accurate where a channel is an
outlier, and only the shapes the rule covers are smoothed.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from compiler.errors import QnncError
from compiler.passes.manager import parse_pipeline, run_pipeline
from compiler.passes.quantize import Quantize
from compiler.quant.calibrate import Calibration, calibrate, calibrate_model
from compiler.quant.quantize import QuantConfig, quantize_graph
from compiler.quant.smooth import groups, scales, smooth
from ir.graph import Graph
from ir.interpreter import run
from ir.text import parse_graph, print_graph
from ir.verifier import verify

CASE = Path(__file__).with_name("cases") / "smooth.ir"
BEFORE, AFTER = CASE.read_text().split("// CHECK:")


def _samples(n: int = 64, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((4, 8)).astype(np.float32)} for _ in range(n)]


def _smoothed(alpha: float = 0.5) -> tuple[Graph, Calibration]:
    g = parse_graph(BEFORE)
    cal = calibrate_model(g, _samples(), "percentile")
    return g, smooth(g, cal, alpha)


def test_before_after() -> None:
    g, cal = _smoothed()
    q = quantize_graph(g, cal.ranges, QuantConfig(bias_correction=False))
    verify(q)
    assert print_graph(q).strip() == AFTER.strip()


def test_the_float_function_is_unchanged() -> None:
    g, _ = _smoothed()
    ref = parse_graph(BEFORE)
    for feeds in _samples(8, seed=1):
        want, got = run(ref, feeds), run(g, feeds)
        for name in want:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5)


def test_the_smoothed_range_is_what_min_max_sees_on_the_smoothed_graph() -> None:
    g, cal = _smoothed()
    seen = calibrate(copy.deepcopy(g), _samples(), "minmax")["h"]
    np.testing.assert_allclose(cal.ranges["h"], seen, rtol=1e-6)
    # and the outlier channel no longer sets it alone: the range shrank
    assert seen[1] - seen[0] < 0.4 * np.subtract(*calibrate(parse_graph(BEFORE), _samples(),
                                                            "minmax")["h"][::-1])


def _sqnr(alpha: float) -> float:
    g = parse_graph(BEFORE)
    cal = calibrate_model(g, _samples(), "minmax")
    if alpha:
        cal = smooth(g, cal, alpha)
    q = quantize_graph(g, cal.ranges, QuantConfig(), cal.channel_means)
    ref = parse_graph(BEFORE)
    sig = err = 0.0
    for feeds in _samples(16, seed=2):
        want, got = run(ref, feeds), run(q, feeds)
        for name in want:
            sig += float(np.sum(want[name].astype(np.float64) ** 2))
            err += float(np.sum((got[name].astype(np.float64) - want[name]) ** 2))
    return 10 * np.log10(sig / err)


def test_migration_pays_where_a_channel_is_an_outlier() -> None:
    plain, smoothed = _sqnr(0.0), _sqnr(0.5)
    assert smoothed > plain + 3.0, (plain, smoothed)


def test_scales_balance_the_two_ranges() -> None:
    a, w = np.array([16.0, 1.0, 0.0, 4.0]), np.array([1.0, 4.0, 2.0, 0.0])
    s = scales(a, w, 0.5)
    np.testing.assert_allclose(s, [4.0, 0.5, 1.0, 1.0])  # a dead side keeps s = 1
    np.testing.assert_allclose((a / s)[:2], (w * s)[:2])  # alpha 0.5: equal after


@pytest.mark.parametrize(("change", "why"), [
    ('%r: f32[4,8] = Add(%h, %h) loc("res")\n', "a reader that is not a product"),
    ("TRANSA", "a Gemm that transposes its input"),
])
def test_only_the_covered_shapes_are_smoothed(change: str, why: str) -> None:
    text = BEFORE.split("// CHECK")[0]
    if change == "TRANSA":
        text = text.replace("transA=false", "transA=true").replace(
            "%k: f32[4,4] = Gemm", "%k: f32[8,8] = Gemm").replace(
            "%wk = const f32[4,8]", "%wk = const f32[8,4]")
    else:
        text = text.replace('  %q: f32[4,4] = MatMul', "  " + change + '  %q: f32[4,4] = MatMul')
    assert [x.x.name for x in groups(parse_graph(BEFORE))] == ["h"]
    assert groups(parse_graph(text)) == [], why


def test_the_pass_option() -> None:
    p = parse_pipeline("quantize{smooth=0.5}")[0]
    assert isinstance(p, Quantize) and p.smooth == 0.5
    g = run_pipeline(parse_graph(BEFORE), [dataclasses.replace(p, calibration=_samples())])
    assert any(c.name == "gamma_smooth" for c in g.constants)
    bad = dataclasses.replace(Quantize(smooth=1.5), calibration=_samples())
    with pytest.raises(QnncError, match="smooth must be in"):
        run_pipeline(parse_graph(BEFORE), [bad])


def test_a_tensor_with_non_finite_extremes_is_left_alone() -> None:
    g = parse_graph(BEFORE)
    cal = calibrate_model(g, _samples(), "percentile")
    lo, hi = cal.channel_ranges["h"]
    bad = dataclasses.replace(cal, channel_ranges={"h": (lo, np.where(hi > 3, np.inf, hi))})
    out = smooth(g, bad, 0.5)
    assert out.ranges["h"] == cal.ranges["h"]
    assert not any(c.name.endswith("_smooth") for c in g.constants)
