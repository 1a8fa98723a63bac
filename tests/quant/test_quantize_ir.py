"""The quantiser as an IR-text before/after case: fusion of Conv+Relu into QConv's clamp,
a residual QAdd, an integer average pool and a sigmoid table, with f32 only at the edges.
The expected numbers can be checked by hand: x in [-2, 2] as u8 has scale 4/255 and zero
point 127 (127.4999... after the float32 scale); weight row 0 is [0.5, -0.25] / (0.5/127)
= [127, -63.5 -> -64, ties to even]; bias 0.1 / (s_x * s_w0) = 1619.2 -> 1619."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compiler.quant.quantize import QuantConfig, quantize_graph
from ir.interpreter import run
from ir.text import parse_graph, print_graph
from ir.verifier import verify

CASE = Path(__file__).with_name("cases") / "quantize_block.ir"
BEFORE, AFTER = CASE.read_text().split("// CHECK:")

RANGES = {"x": (-2.0, 2.0), "c": (-1.5, 3.0), "r": (0.0, 3.0), "s": (-2.0, 5.0),
          "p": (-1.0, 4.0), "y": (0.0, 1.0)}


def test_quantize_before_after() -> None:
    g = parse_graph(BEFORE)
    q = quantize_graph(g, RANGES, QuantConfig(bias_correction=False))
    verify(q)
    assert print_graph(q).strip() == AFTER.strip()
    assert parse_graph(AFTER) == q


def test_quantized_block_tracks_the_float_block() -> None:
    g = parse_graph(BEFORE)
    q = parse_graph(AFTER)
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = rng.uniform(-2, 2, (1, 2, 4, 4)).astype(np.float32)
        ref, got = run(g, {"x": x})["y"], run(q, {"x": x})["y"]
        assert np.max(np.abs(ref - got)) < 0.02  # a few output steps of 1/255


BN_CASE = Path(__file__).with_name("cases") / "quantize_batchnorm.ir"
BN_BEFORE, BN_AFTER = BN_CASE.read_text().split("// CHECK:")
BN_RANGES = {"x": (-2.0, 2.0), "n": (-4.0, 4.0), "y": (0.0, 4.0)}


def test_standalone_batchnorm_becomes_a_depthwise_qconv() -> None:
    q = quantize_graph(parse_graph(BN_BEFORE), BN_RANGES, QuantConfig(bias_correction=False))
    verify(q)
    assert print_graph(q).strip() == BN_AFTER.strip()
    assert [n.op for n in q.nodes] == ["Quantize", "QConv", "Dequantize"]


def test_quantized_batchnorm_tracks_the_float_one() -> None:
    g, q = parse_graph(BN_BEFORE), parse_graph(BN_AFTER)
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, (1, 2, 3, 3)).astype(np.float32)
    ref, got = run(g, {"x": x})["y"], run(q, {"x": x})["y"]
    # half an output step (2/255) plus the input's rounding, half a step (2/255) times |s| <= 2
    assert np.max(np.abs(ref - got)) <= (2 + 4) / 255 + 1e-6
