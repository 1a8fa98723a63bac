"""Rearranged tensors share their source's observer (compiler/quant/same_values.py): which
results count as rearranged, and calibration's ranges, histograms and channel means equal a
run that observes every tensor on its own, bit for bit — on one graph, through chains, on
every observation path, and across shape profiles where a shared name is computed otherwise
in the next graph (it takes a copy and goes on alone)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from compiler.quant.same_values import rearranged
from ir.text import parse_graph

cal_mod = importlib.import_module("compiler.quant.calibrate")

# a decoder-like step: the input transposed and reshaped twice on its way to a product, a
# Relu result transposed (a chain), a Transpose of a constant (nothing to share), a Cast
# that changes the element type (not the same values) and a slice (fewer values)
TEXT = """
graph @g(%x: f32[2,3,4]) -> (%y, %z, %c16, %s) {
  %w = const f32[12,2] dense<[W]>
  %k = const f32[2,2] dense<[1, 2, 3, 4]>
  %t: f32[2,4,3] = Transpose(%x) {perm=[0,2,1]} loc("t")
  %r: f32[2,12] = Reshape(%t) {shape=[2,12]} loc("r")
  %i: f32[2,12] = Identity(%r) loc("i")
  %y: f32[2,2] = MatMul(%i, %w) loc("mm")
  %a: f32[2,2] = Relu(%y) loc("act")
  %z: f32[2,2] = Transpose(%a) {perm=[1,0]} loc("z")
  %kt: f32[2,2] = Transpose(%k) {perm=[1,0]} loc("kt")
  %c16: f16[2,3,4] = Cast(%x) {to="f16"} loc("c16")
  %s: f32[2,3,2] = Slice(%x) {ends=[2,3,2], starts=[0,0,0], steps=[1,1,1]} loc("s")
}
"""


W = "0.5, -1, 0.25, 2, -0.75, 1, 0.1, -0.2, 0.3, 0.9, -0.6, 0.4, 1, 1, -1, 0.5, 0.2, -0.3, 0.8, " \
    "-0.1, 0.05, 0.6, -0.9, 0.7"


def _graph(text: str = TEXT) -> object:
    return parse_graph(text.replace("[W]", f"[{W}]"))


def _samples(n: int = 12, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"x": (rng.standard_normal((2, 3, 4)) * rng.uniform(0.1, 20)).astype(np.float32)}
            for _ in range(n)]


def _calibrate(graphs_and_samples: list[tuple[object, dict[str, np.ndarray]]], method: str,
               share: bool, monkeypatch: pytest.MonkeyPatch, threads: int = 1) -> object:
    with monkeypatch.context() as m:
        if not share:
            m.setattr(cal_mod, "rearranged", lambda graph: {})
        first = graphs_and_samples[0][0]
        cal = cal_mod.Calibrator(first, method)
        cal.threads = threads
        seen = {id(first)}
        for g, feeds in graphs_and_samples:
            if id(g) not in seen:
                cal.adopt(g)
                seen.add(id(g))
            cal.feed(feeds, g)
        return cal


def _summary(cal: object) -> tuple[object, ...]:
    c = cal.calibration()
    hists = {k: (o.hist.width, o.hist.min, o.hist.max, o.hist.counts.tolist())
             for k, o in cal.observers.items() if hasattr(o, "hist")}
    return (c.ranges, {k: v.tolist() for k, v in c.channel_means.items()}, c.alternatives,
            hists)


def test_which_results_are_rearranged() -> None:
    assert rearranged(_graph()) == {"t": "x", "r": "x", "i": "x", "z": "a"}


@pytest.mark.parametrize("method", ["percentile", "auto", "minmax", "entropy", "layerwise"])
def test_shared_observers_give_what_separate_ones_give(
        method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    g = _graph()
    samples = [(g, s) for s in _samples()]
    shared = _calibrate(samples, method, True, monkeypatch)
    alone = _calibrate(samples, method, False, monkeypatch)
    assert shared.observers["r"] is shared.observers["x"]
    assert shared.observers["z"] is shared.observers["a"]
    assert alone.observers["r"] is not alone.observers["x"]
    assert _summary(shared) == _summary(alone)
    assert "i" in shared.channel_means()  # the product's input keeps its own channel sums
    assert shared.state_nbytes() < alone.state_nbytes()


@pytest.mark.parametrize("path", ["batched", "threaded", "one by one"])
def test_every_observation_path(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if path == "threaded":
        monkeypatch.setattr(cal_mod, "THREADED_ELEMENTS", 0)
    elif path == "one by one":
        monkeypatch.setattr(cal_mod.SampleBatch, "make", classmethod(lambda cls, g, o: None))
    g = _graph()
    samples = [(g, s) for s in _samples()]
    threads = 2 if path == "threaded" else 1
    shared = _calibrate(samples, "percentile", True, monkeypatch, threads)
    alone = _calibrate(samples, "percentile", False, monkeypatch, threads)
    assert _summary(shared) == _summary(alone)


def test_a_profile_that_computes_a_shared_name_otherwise(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """In the second graph ``r`` is a Relu result, no longer ``x`` rearranged: from then on
    it is observed on its own, starting from the state it had (``x``'s), and every range is
    still the one separate observers give, whichever graph the samples alternate through."""
    first = _graph()
    other = _graph(TEXT.replace("%r: f32[2,12] = Reshape(%t) {shape=[2,12]}",
                                "%r0: f32[2,12] = Reshape(%t) {shape=[2,12]} loc(\"r0\")\n"
                                "  %r: f32[2,12] = Relu(%r0)"))
    assert rearranged(other)["i"] == "r" and "r" not in rearranged(other)
    samples = [(first if k % 3 else other, s) for k, s in enumerate(_samples(15, seed=1))]
    samples.insert(0, (first, _samples(1, seed=2)[0]))
    shared = _calibrate(samples, "percentile", True, monkeypatch)
    alone = _calibrate(samples, "percentile", False, monkeypatch)
    assert shared.observers["r"] is not shared.observers["x"]
    assert _summary(shared) == _summary(alone)


def test_a_profile_without_the_shared_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """The second graph has no ``r`` (``i`` reads ``t`` directly) but still computes ``x``:
    ``r``'s own observer would see none of its samples, so it stops sharing ``x``'s; ``i``
    still holds ``x``'s values there and keeps sharing."""
    first = _graph()
    other = _graph(TEXT.replace('  %r: f32[2,12] = Reshape(%t) {shape=[2,12]} loc("r")\n', "")
                   .replace("%i: f32[2,12] = Identity(%r)",
                            "%i0: f32[2,4,3] = Identity(%t) loc(\"i0\")\n"
                            "  %i: f32[2,12] = Reshape(%i0) {shape=[2,12]}"))
    assert "r" not in rearranged(other) and rearranged(other)["i"] == "x"
    samples = [(first if k % 2 else other, s) for k, s in enumerate(_samples(10, seed=3))]
    samples.insert(0, (first, _samples(1, seed=4)[0]))
    shared = _calibrate(samples, "percentile", True, monkeypatch)
    alone = _calibrate(samples, "percentile", False, monkeypatch)
    assert shared.observers["r"] is not shared.observers["x"]
    assert shared.observers["i"] is shared.observers["x"]
    assert _summary(shared) == _summary(alone)
