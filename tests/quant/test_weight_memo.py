"""Weight codes made once per compile (compiler/quant/weight_memo.py): every graph a compile
quantises — ``auto``'s candidates, each shape profile's own import — takes a layer's codes
from the one memo, keyed by content, and comes out exactly as it would without it."""

from __future__ import annotations

import numpy as np
import pytest

from compiler.quant.calibrate import Calibrator
from compiler.quant.method_choice import resolve
from compiler.quant.quantize import QuantConfig, quantize_graph
from compiler.quant.weight_memo import WeightMemo
from ir.text import parse_graph, print_graph

# two layers with biases, so that bias correction (the input means) takes part in the key
TEXT = """
graph @two(%x: f32[1,8]) -> (%y) {
  %w1 = const f32[8,8] dense<[{w1}]>
  %b1 = const f32[8] dense<[0.1, -0.2, 0.3, 0, 0.05, -0.1, 0.2, 0.4]>
  %w2 = const f32[8,3] dense<[{w2}]>
  %h: f32[1,8] = MatMul(%x, %w1) loc("fc1")
  %hb: f32[1,8] = Add(%h, %b1) loc("fc1_bias")
  %r: f32[1,8] = Relu(%hb) loc("act")
  %y: f32[1,3] = MatMul(%r, %w2) loc("fc2")
}
"""


def _graph(scale: float = 1.0) -> object:
    rng = np.random.default_rng(3)
    w1 = rng.normal(0, 0.5, 64) * scale
    w2 = rng.normal(0, 0.5, 24)
    return parse_graph(TEXT.replace("{w1}", ", ".join(f"{v:.6f}" for v in w1))
                       .replace("{w2}", ", ".join(f"{v:.6f}" for v in w2)))


def _calibration(graph: object) -> object:
    cal = Calibrator(graph, "auto")
    rng = np.random.default_rng(0)
    for _ in range(32):
        cal.feed({"x": (rng.normal(0.5, 1, (1, 8))).astype(np.float32)})
    return cal.calibration()


def test_every_graph_of_a_compile_shares_the_codes_and_is_unchanged() -> None:
    g = _graph()
    cal = resolve(_calibration(g), QuantConfig())
    made_while_choosing = len(cal.weights)
    assert made_while_choosing > 0  # both candidates' layers went through the memo
    again = _graph()  # another import of the same model: new arrays, the same numbers
    hits = cal.weights.hits
    shared = quantize_graph(again, cal.ranges, QuantConfig(), cal.channel_means, cal.weights)
    alone = quantize_graph(_graph(), cal.ranges, QuantConfig(), cal.channel_means)
    assert print_graph(shared) == print_graph(alone)
    assert cal.weights.hits > hits and len(cal.weights) == made_while_choosing
    # each graph holds its own copy: one graph's constants never alias another's
    first = {c.name: c.data for c in shared.constants}
    other = quantize_graph(_graph(), cal.ranges, QuantConfig(), cal.channel_means, cal.weights)
    for c in other.constants:
        assert c.data is not first[c.name]
        assert not np.shares_memory(c.data, first[c.name])


@pytest.mark.parametrize("change", ["weights", "weight_range", "per_channel", "means"])
def test_different_content_or_settings_make_new_codes(change: str) -> None:
    g = _graph()
    cal = _calibration(g)
    memo = WeightMemo()
    cfg = QuantConfig()
    base = print_graph(quantize_graph(g, cal.ranges, cfg, cal.channel_means, memo))
    size = len(memo)
    other, ocfg, means = g, cfg, cal.channel_means
    if change == "weights":
        other = _graph(scale=1.5)
    elif change == "weight_range":
        ocfg = QuantConfig(weight_range="int7")
    elif change == "per_channel":
        ocfg = QuantConfig(per_channel=False)
    else:
        means = {k: v + 1.0 for k, v in means.items()}
    got = print_graph(quantize_graph(other, cal.ranges, ocfg, means, memo))
    want = print_graph(quantize_graph(other, cal.ranges, ocfg, means))
    assert got == want != base
    assert len(memo) > size
