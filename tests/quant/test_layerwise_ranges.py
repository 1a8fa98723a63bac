"""The ``layerwise`` calibration method (compiler/quant/range_choice.py): each tensor takes
the candidate range (percentile, minmax, mse, entropy, all from its one histogram) that moves
the outputs of the nodes reading it least on the first kept calibration samples.

The IR case (tests/quant/cases/layerwise_ranges.ir) pins the chosen scales; the test also
re-derives every candidate's consumer error with plain numpy (Relu and MatMul written out,
the u8 fake quantisation from ir.qmath) and checks the chosen one is the least.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compiler.quant.calibrate import Calibrator, calibrate
from compiler.quant.quantize import QuantConfig, quantize_graph
from compiler.quant.range_choice import KEEP_SAMPLES, candidates, choose
from ir import qmath
from ir.text import parse_graph, print_graph
from ir.types import DType
from ir.verifier import verify

CASE = Path(__file__).with_name("cases") / "layerwise_ranges.ir"
BEFORE, AFTER = CASE.read_text().split("// CHECK:")
#: the percentile candidate's percentile: the samples hold 2,400 values per tensor, of which
#: the default percentile would clip none, so the candidates would not differ
PERCENTILE = 99.99


def _samples(n: int = 300) -> list[dict[str, np.ndarray]]:
    rng, out = np.random.default_rng(3), []
    for i in range(n):
        x = rng.standard_normal((1, 8)).astype(np.float32)
        y = rng.standard_normal((1, 8)).astype(np.float32)
        if i % 50 == 0:
            x[0, 0] = y[0, 0] = 12.0
        out.append({"x": x, "y": y})
    return out


def _fq(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    scale, zp = qmath.choose_qparams(lo, hi, DType.u8)
    return ((np.clip(np.round(x / scale) + zp, 0, 255) - zp) * scale).astype(np.float32)


def _calibrated() -> Calibrator:
    cal = Calibrator(parse_graph(BEFORE), "layerwise", percentile=PERCENTILE)
    for s in _samples():
        cal.feed(s)
    return cal


def test_each_choice_is_the_least_consumer_error() -> None:
    cal = _calibrated()
    opts = {n: candidates(o.hist, PERCENTILE) for n, o in cal.observers.items()  # type: ignore[attr-defined]
            if n not in cal.raw}
    ranges = cal.ranges()
    g = parse_graph(BEFORE)
    w = {c.name: c.data for c in g.constants}
    kept = _samples()[:KEEP_SAMPLES]
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    consumers = {  # tensor -> what reads it, written out
        "x": lambda v, s: relu(v), "y": lambda v, s: relu(v),
        "a": lambda v, s: v @ w["wa"], "b": lambda v, s: v @ w["wb"],
    }
    inputs = {"x": lambda s: s["x"], "y": lambda s: s["y"],
              "a": lambda s: relu(s["x"]), "b": lambda s: relu(s["y"])}
    assert set(cal.choices) == set(consumers)
    for name, consume in consumers.items():
        errs = {}
        for method, (lo, hi) in opts[name].items():
            errs[method] = 0.0
            for s in kept:
                v = inputs[name](s)
                ref = consume(v, s).astype(np.float64)
                got = consume(_fq(v, lo, hi), s).astype(np.float64)
                errs[method] += float(np.sum((got - ref) ** 2) / np.sum(ref ** 2))
        best = min(errs.values())
        chosen = cal.choices[name]
        assert errs[chosen] <= best * (1 + 1e-9), (name, chosen, errs)
        assert ranges[name] == opts[name][chosen]
    assert len(set(cal.choices.values())) > 1  # not one method for every tensor


def test_layerwise_before_after() -> None:
    g = parse_graph(BEFORE)
    ranges = calibrate(g, _samples(), "layerwise", percentile=PERCENTILE)
    q = quantize_graph(g, ranges, QuantConfig(bias_correction=False))
    verify(q)
    assert print_graph(q).strip() == AFTER.strip()


def test_ties_keep_the_first_candidate_and_unscored_tensors_too() -> None:
    g = parse_graph(BEFORE)
    same = {"x": {"percentile": (-1.0, 1.0), "minmax": (-1.0, 1.0)},
            "nowhere": {"percentile": (0.0, 1.0), "minmax": (0.0, 2.0)}}
    assert choose([(g, _samples(1)[0])], same) == {"x": "percentile", "nowhere": "percentile"}


def test_kept_samples_are_copies() -> None:
    """A data loader may refill one buffer per sample: the kept samples must not change."""
    cal = Calibrator(parse_graph(BEFORE), "layerwise", percentile=PERCENTILE)
    buf = _samples(1)[0]
    for s in _samples(6):
        buf["x"][...] = s["x"]
        buf["y"][...] = s["y"]
        cal.feed(buf)
    first = _samples(6)[:KEEP_SAMPLES]
    for (_, kept), want in zip(cal.kept, first):
        np.testing.assert_array_equal(kept["x"], want["x"])
