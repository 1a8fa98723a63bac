"""The ``auto`` calibration method (compiler/quant/method_choice.py): percentile ranges, or
entropy ranges where the model's outputs agree with f32 at least MARGIN_DB better on the
kept calibration samples.

The IR case (tests/quant/cases/auto_method.ir) pins the scales of a model where a spike no
output depends on would cost percentile its resolution: auto takes entropy's. The same data
with the spike carrying the output keeps percentile; each score is re-derived with the
quantiser and the interpreter; the margin, the samples kept and what compile records are
checked too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import compiler.quant.method_choice as mc
from compiler.api import compile_model
from compiler.quant.calibrate import AUTO_KEEP, AUTO_KEEP_VALUES, Calibration, Calibrator
from compiler.quant.quantize import QuantConfig, quantize_graph
from ir.graph import Graph
from ir.interpreter import run
from ir.text import parse_graph, print_graph
from ir.verifier import verify

CASE = Path(__file__).with_name("cases") / "auto_method.ir"
BEFORE, AFTER = CASE.read_text().split("// CHECK:")
CONFIG = QuantConfig(bias_correction=False)


def _samples(n: int = 64) -> list[dict[str, np.ndarray]]:
    rng, out = np.random.default_rng(0), []
    for i in range(n):
        x = rng.normal(0, 1, 8).astype(np.float32)
        x[7] = 200.0 if i % 16 == 0 else 0.0
        out.append({"x": x[None]})
    return out


def _spike_matters() -> Graph:
    """The case's graph with the spike's weights 1: then it is most of the output."""
    return parse_graph(BEFORE.replace("0.714, 0, 0]", "0.714, 1, 1]"))


def _calibrated(graph: Graph) -> Calibrator:
    cal = Calibrator(graph, "auto")
    for s in _samples():
        cal.feed(s)
    return cal


def _sqnr(graph: Graph, ranges: dict[str, tuple[float, float]],
          samples: list[dict[str, np.ndarray]]) -> float:
    q = quantize_graph(graph, ranges, CONFIG)
    ref = np.concatenate([run(graph, s)["y"] for s in samples]).astype(np.float64)
    got = np.concatenate([run(q, s)["y"] for s in samples]).astype(np.float64)
    return float(10 * np.log10(np.sum(ref ** 2) / np.sum((got - ref) ** 2)))


def test_auto_before_after() -> None:
    g = parse_graph(BEFORE)
    cal = mc.resolve(_calibrated(g).calibration(), CONFIG)
    assert cal.chosen == "entropy"
    q = quantize_graph(g, cal.ranges, CONFIG)
    verify(q)
    assert print_graph(q).strip() == AFTER.strip()


@pytest.mark.parametrize(("graph", "want"), [(lambda: parse_graph(BEFORE), "entropy"),
                                             (_spike_matters, "percentile")])
def test_the_choice_is_the_better_output(graph, want: str) -> None:  # noqa: ANN001
    g = graph()
    calibrator = _calibrated(g)
    before = calibrator.calibration()
    cal = mc.resolve(before, CONFIG)
    assert cal.chosen == want
    kept = [feeds for _, feeds in before.kept]
    assert len(kept) == AUTO_KEEP  # 8 values a sample: the count, not the values, ends it
    for (_, feeds), out in zip(before.kept, before.kept_outputs):  # f32's, from calibration
        np.testing.assert_array_equal(out["y"], run(g, feeds)["y"])
    for method, ranges in before.alternatives.items():  # the scores, derived again
        assert cal.choice_scores[method] == pytest.approx(_sqnr(g, ranges, kept), abs=1e-6)
    other = "percentile" if want == "entropy" else "entropy"
    assert cal.choice_scores[want] > cal.choice_scores[other]
    assert cal.ranges == before.alternatives[want]
    assert before.alternatives["entropy"]["x"] != before.alternatives["percentile"]["x"]
    assert cal.alternatives == {} and cal.kept == [] and cal.kept_outputs == []


def test_a_small_lead_keeps_percentile(monkeypatch: pytest.MonkeyPatch) -> None:
    before = _calibrated(parse_graph(BEFORE)).calibration()
    lead = mc.resolve(before, CONFIG).choice_scores
    monkeypatch.setattr(mc, "MARGIN_DB", lead["entropy"] - lead["percentile"] + 0.5)
    assert mc.resolve(before, CONFIG).chosen == "percentile"


def test_samples_kept_by_their_values() -> None:
    """Large inputs: the first sample alone holds AUTO_KEEP_VALUES values."""
    g = parse_graph("""graph @big(%x: f32[1,16384]) -> (%y) {
  %y: f32[1,16384] = Relu(%x)
}""")
    cal = Calibrator(g, "auto")
    rng = np.random.default_rng(1)
    for _ in range(3):
        cal.feed({"x": rng.normal(size=(1, AUTO_KEEP_VALUES)).astype(np.float32)})
    assert len(cal.kept) == 1


def test_compile_records_the_choice() -> None:
    cm = compile_model(parse_graph(BEFORE), precision="int8", calibration=_samples())
    assert cm.calibration is not None
    assert cm.calibration["method"] == "auto" and cm.calibration["chosen"] == "entropy"
    assert set(cm.calibration["scores_db"]) == {"percentile", "entropy"}


def test_compile_reuses_the_scored_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    """The quantised graph scoring made for the chosen method is the compiled one: the float
    graph is quantised once per candidate, not again, and the result is what quantising it
    afresh with the chosen ranges gives."""
    import compiler.quant.quantize as qz

    calls: list[Graph] = []
    real = qz.quantize_graph

    def counted(graph: Graph, *args: object, **kwargs: object) -> Graph:
        calls.append(graph)
        return real(graph, *args, **kwargs)

    monkeypatch.setattr(qz, "quantize_graph", counted)
    monkeypatch.setattr(mc, "quantize_graph", counted)
    cm = compile_model(parse_graph(BEFORE), precision="int8", calibration=_samples(),
                       pipeline=["quantize"])
    assert len(calls) == 2  # one per candidate
    monkeypatch.setattr(Calibration, "take_quantized", lambda self, g, cfg: None)
    fresh = compile_model(parse_graph(BEFORE), precision="int8", calibration=_samples(),
                          pipeline=["quantize"])
    assert len(calls) == 5  # without reuse: quantised once more
    assert print_graph(cm.graph) == print_graph(fresh.graph)


def test_taken_once_and_only_for_the_same_graph_and_settings() -> None:
    g = parse_graph(BEFORE)
    cal = mc.resolve(_calibrated(g).calibration(), CONFIG)
    assert cal.take_quantized(parse_graph(BEFORE), CONFIG) is None  # an equal graph: no
    assert cal.take_quantized(g, QuantConfig(bias_correction=True)) is None
    assert cal.take_quantized(g, CONFIG) is not None
    assert cal.take_quantized(g, CONFIG) is None
