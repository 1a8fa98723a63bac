"""Calibration samples run as one stack (compiler/quant/sample_stack.py) give every observer
the states one-by-one runs give, bit for bit: each op that computes on the stack is checked
against its samples alone over many geometries, then whole calibrations (every method, the
trained digits CNN, random small networks) against sample-by-sample feeding; graphs that do
not qualify run alone, and a bad sample is still named."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from compiler.quant.sample_stack import StackPlan
from ir.ops import OPS
from ir.text import parse_graph

cal_mod = importlib.import_module("compiler.quant.calibrate")
DIGITS = Path(__file__).resolve().parents[1] / "fixtures" / "digits_cnn.onnx"


def _bits(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).tobytes()


def _conv_case(rng: np.random.Generator) -> tuple[list[np.ndarray], dict[str, Any]]:
    c = int(rng.integers(1, 9))
    g = int(rng.choice([1, 1, c]))
    m = g * int(rng.integers(1, 4)) if g > 1 else int(rng.integers(1, 17))
    k = [int(rng.integers(1, 4)), int(rng.integers(1, 5))]
    d = [int(rng.integers(1, 3)), 1]
    size = [int(rng.integers((k[0] - 1) * d[0] + 1, 13)), int(rng.integers(k[1], 13))]
    attrs = {"strides": [int(rng.integers(1, 3)), int(rng.integers(1, 3))],
             "pads": [int(rng.integers(0, 2)) for _ in range(4)], "dilations": d, "group": g}
    x = rng.standard_normal((int(rng.integers(2, 9)), c, *size)).astype(np.float32)
    w = rng.standard_normal((m, c // g, *k)).astype(np.float32)
    b = rng.standard_normal(m).astype(np.float32) if rng.random() < 0.5 else None
    return [x, w, b], attrs


def _pool_case(rng: np.random.Generator) -> tuple[list[np.ndarray], dict[str, Any]]:
    k = [int(rng.integers(1, 4)), int(rng.integers(1, 4))]
    x = rng.standard_normal((int(rng.integers(2, 9)), int(rng.integers(1, 6)),
                             int(rng.integers(k[0], 11)), int(rng.integers(k[1], 11))))
    x = x.astype(np.float32)
    x[x > 2.5] = np.nan  # a NaN wins its window whatever the order
    return [x], {"kernel_shape": k, "strides": [int(rng.integers(1, 3))] * 2,
                 "pads": [int(rng.integers(0, k[0] // 2 + 1))] * 2 + [0, 0],
                 "dilations": [1, 1], "ceil_mode": bool(rng.random() < 0.5), "indices": False,
                 "storage_order": 0}


def _relu_case(rng: np.random.Generator) -> tuple[list[np.ndarray], dict[str, Any]]:
    x = rng.standard_normal((int(rng.integers(2, 9)), int(rng.integers(1, 40)))) \
        .astype(np.float32)
    x[0, 0] = -0.0
    return [x], {}


CASES = {"Conv": _conv_case, "MaxPool": _pool_case, "Relu": _relu_case}
#: the integer layers (and the float/integer boundary) that compute on the stack, checked in
#: quantised networks (test_integer_layers_on_the_stack)
INTEGER = {"Quantize", "QConv", "QLinear", "Dequantize"}


def test_every_op_computed_on_the_stack_is_checked_here() -> None:
    assert {k for k, op in OPS.items() if op.stacks == "together"} == set(CASES) | INTEGER


@pytest.mark.parametrize("op", sorted(CASES))
def test_on_the_stack_each_sample_gets_its_bits_alone(op: str) -> None:
    rng = np.random.default_rng(7)
    compute = OPS[op].compute
    for _ in range(400 if op == "Conv" else 100):
        ins, attrs = CASES[op](rng)
        (stacked,) = compute(ins, attrs)
        for i in range(ins[0].shape[0]):
            (alone,) = compute([ins[0][i:i + 1], *ins[1:]], attrs)
            assert _bits(stacked[i:i + 1]) == _bits(alone), (op, attrs, ins[0].shape)


def _const(name: str, a: np.ndarray) -> str:
    dims = ",".join(str(d) for d in a.shape)
    vals = ", ".join(repr(float(v)) for v in a.reshape(-1))
    return f"  %{name} = const f32[{dims}] dense<[{vals}]>\n"


def _network(rng: np.random.Generator, tail: str = "") -> Any:
    """A small CNN of every stacking kind: Conv (dense and depthwise), Relu, MaxPool, Reshape,
    Gemm and MatMul; ``tail`` adds nodes after it."""
    c, h = int(rng.integers(1, 4)), int(rng.integers(4, 9))
    w1 = rng.standard_normal((8, c, 3, 3)).astype(np.float32)
    w2 = rng.standard_normal((8, 1, 3, 3)).astype(np.float32)
    hp = (h - 3) // 2 + 1  # the 2x2 pool of the (h - 2)-wide map, ceil mode
    wf = rng.standard_normal((5, 8 * hp * hp)).astype(np.float32)
    wm = rng.standard_normal((5, 3)).astype(np.float32)
    text = (f"graph @g(%x: f32[1,{c},{h},{h}]) -> (%y{', %t' if tail else ''}) {{\n"
            + _const("w1", w1) + _const("b1", rng.standard_normal(8).astype(np.float32))
            + _const("w2", w2) + _const("wf", wf) + _const("wm", wm)
            + f"  %c1: f32[1,8,{h},{h}] = Conv(%x, %w1, %b1) {{strides=[1,1], pads=[1,1,1,1],"
              " dilations=[1,1], group=1}\n"
            + f"  %r1: f32[1,8,{h},{h}] = Relu(%c1)\n"
            + f"  %c2: f32[1,8,{h - 2},{h - 2}] = Conv(%r1, %w2) {{strides=[1,1], "
              "pads=[0,0,0,0], dilations=[1,1], group=8}\n"
            + f"  %p: f32[1,8,{hp},{hp}] = MaxPool(%c2) {{kernel_shape=[2,2], strides=[2,2], "
              "pads=[0,0,0,0], dilations=[1,1], ceil_mode=true, indices=false, storage_order=0}\n"
            + f"  %f: f32[1,{8 * hp * hp}] = Reshape(%p) {{shape=[1,{8 * hp * hp}]}}\n"
            + "  %g1: f32[1,5] = Gemm(%f, %wf) {alpha=1.0, beta=1.0, transA=false, transB=true}\n"
            + "  %y: f32[1,3] = MatMul(%g1, %wm)\n" + tail + "}\n")
    return parse_graph(text), (1, c, h, h)


def _samples(shape: tuple[int, ...], n: int, seed: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"x": (rng.standard_normal(shape) * rng.uniform(0.2, 5)).astype(np.float32)}
            for _ in range(n)]


def _calibration(graph: Any, samples: list[dict[str, np.ndarray]], method: str,
                 stacked: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    with monkeypatch.context() as m:
        if not stacked:
            m.setattr(cal_mod.Calibrator, "stack_size", lambda self: 1)
        cal = cal_mod.Calibrator(graph, method)
        cal_mod._feed_all(cal, samples, graph, None)
        return cal, cal.calibration()


def _same(a: tuple[Any, Any], b: tuple[Any, Any]) -> None:
    (ca, a), (cb, b) = a, b
    assert a.ranges == b.ranges and a.alternatives == b.alternatives
    assert a.samples == b.samples and a.samples_sha256 == b.samples_sha256
    for x, y in ((a.channel_means, b.channel_means),):
        assert x.keys() == y.keys() and all(_bits(x[k]) == _bits(y[k]) for k in x)
    assert a.channel_ranges.keys() == b.channel_ranges.keys()
    for k, (lo, hi) in a.channel_ranges.items():
        assert _bits(lo) == _bits(b.channel_ranges[k][0]) and _bits(hi) == _bits(
            b.channel_ranges[k][1])
    assert len(a.kept_outputs) == len(b.kept_outputs)
    for x, y in zip(a.kept_outputs, b.kept_outputs):
        assert x.keys() == y.keys() and all(_bits(x[k]) == _bits(y[k]) for k in x)
    hists = [{k: (o.hist.width, o.hist.min, o.hist.max, o.hist.counts.tobytes())
              for k, o in c.observers.items() if hasattr(o, "hist")} for c in (ca, cb)]
    assert hists[0] == hists[1]


@pytest.mark.parametrize("method", ["auto", "minmax", "percentile", "entropy", "mse",
                                    "layerwise"])
def test_a_stacked_calibration_is_the_one_by_one_calibration(
        method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    graph, shape = _network(np.random.default_rng(3))
    samples = _samples(shape, 37, seed=5)  # a stack and a remainder
    stacked = _calibration(graph, samples, method, True, monkeypatch)
    assert stacked[0].stack_size() > 1
    _same(stacked, _calibration(graph, samples, method, False, monkeypatch))


@pytest.mark.parametrize("seed", range(6))
def test_random_networks(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    graph, shape = _network(np.random.default_rng(100 + seed))
    samples = _samples(shape, 9, seed=seed)
    _same(_calibration(graph, samples, "percentile", True, monkeypatch),
          _calibration(graph, samples, "percentile", False, monkeypatch))


def test_the_trained_digits_cnn(monkeypatch: pytest.MonkeyPatch) -> None:
    from compiler.api import load_model
    from compiler.datasets import digits_split
    from compiler.passes import DEFAULT_PIPELINE, run_pipeline

    graph = run_pipeline(load_model(str(DIGITS)), DEFAULT_PIPELINE)
    x = digits_split()[0][:70]
    samples = [{"input": x[i:i + 1]} for i in range(len(x))]
    stacked = _calibration(graph, samples, "auto", True, monkeypatch)
    assert stacked[0].stack_size() == 64
    _same(stacked, _calibration(graph, samples, "auto", False, monkeypatch))


def test_graphs_that_do_not_stack() -> None:
    rng = np.random.default_rng(0)
    # an op without the trait (Sigmoid: numpy's vector and scalar loops may differ)
    graph, _ = _network(rng, "  %t: f32[1,3] = Sigmoid(%y)\n")
    assert StackPlan.make(graph) is None
    # MaxPool's indices number the whole batch
    with_indices = parse_graph(
        "graph @g(%x: f32[1,1,4,4]) -> (%p, %i) {\n"
        "  %p: f32[1,1,2,2], %i: i64[1,1,2,2] = MaxPool(%x) {kernel_shape=[2,2], "
        "strides=[2,2], pads=[0,0,0,0], dilations=[1,1], ceil_mode=false, indices=true, "
        "storage_order=0}\n}\n")
    assert StackPlan.make(with_indices) is None
    # the sample axis reshaped away
    flat = parse_graph("graph @g(%x: f32[1,2,3]) -> (%y) {\n"
                       "  %y: f32[6] = Reshape(%x) {shape=[6]}\n}\n")
    assert StackPlan.make(flat) is None
    # a batch of two in one sample
    two = parse_graph("graph @g(%x: f32[2,3]) -> (%y) {\n  %y: f32[2,3] = Relu(%x)\n}\n")
    assert StackPlan.make(two) is None


def test_a_bad_sample_in_a_stack_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    graph, shape = _network(np.random.default_rng(1))
    samples = _samples(shape, 10, seed=2)
    samples[6] = {"x": np.zeros((1, 1, 2, 2), np.float32)}
    cal = cal_mod.Calibrator(graph, "percentile")
    with pytest.raises(cal_mod.InputError, match="calibration sample 6"):
        cal_mod._feed_all(cal, samples, graph, None)


def test_progress_counts_every_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    graph, shape = _network(np.random.default_rng(2))
    monkeypatch.setattr("compiler.quant.sample_stack.STACK_MAX", 4)
    seen: list[tuple[int, Any]] = []
    cal = cal_mod.Calibrator(graph, "minmax")
    cal_mod._feed_all(cal, _samples(shape, 10, seed=3), graph,
                      lambda done, total: seen.append((done, total)))
    assert cal.stack_size() == 4 and [d for d, _ in seen] == list(range(1, 11))
    assert cal.samples == 10


def _quantised(graph: Any, samples: list[dict[str, np.ndarray]]) -> Any:
    from compiler.quant.quantize import QuantConfig, quantize_graph

    c = cal_mod.calibrate_model(graph, samples, "minmax")
    return quantize_graph(graph, c.ranges, QuantConfig(), c.channel_means)


def _check_runs(graph: Any, samples: list[dict[str, np.ndarray]]) -> set[str]:
    """The stacked run of ``graph`` against the interpreter's, sample by sample, every
    node's outputs and the graph's; the ops it ran."""
    from ir.interpreter import run

    plan = StackPlan.make(graph)
    assert plan is not None
    for feeds, (outs, result) in zip(samples, plan.run(samples)):
        alone: list[list[np.ndarray]] = []
        want = run(graph, feeds, observe=lambda node, o, alone=alone: alone.append(o))
        assert [[_bits(a) for a in o] for o in outs] == [[_bits(a) for a in o] for o in alone]
        assert result.keys() == want.keys()
        assert all(_bits(result[k]) == _bits(want[k]) for k in want)
    return {n.op for n in graph.nodes}


def test_integer_layers_on_the_stack() -> None:
    """The quantised networks' integer layers give each sample the codes and outputs the
    interpreter gives it alone."""
    ops: set[str] = set()
    for seed in range(4):
        graph, shape = _network(np.random.default_rng(200 + seed))
        q = _quantised(graph, _samples(shape, 6, seed=seed))
        ops |= _check_runs(q, _samples(shape, 5, seed=50 + seed))
    assert INTEGER <= ops


def test_auto_scores_its_candidates_alike_on_a_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    """``auto``'s kept samples through each candidate's INT8 graph as one stack: the same
    scores as one run each, on the trained digits CNN."""
    from compiler.api import load_model
    from compiler.datasets import digits_split
    from compiler.passes import DEFAULT_PIPELINE, run_pipeline
    from compiler.quant import method_choice
    from compiler.quant.quantize import QuantConfig

    graph = run_pipeline(load_model(str(DIGITS)), DEFAULT_PIPELINE)
    x = digits_split()[0][:20]
    c = cal_mod.calibrate_model(graph, [{"input": x[i:i + 1]} for i in range(20)], "auto")
    assert len(c.kept) > 1
    stacked = method_choice.resolve(c, QuantConfig())
    _check_runs(stacked.quantized[0][1], [feeds for _, feeds in c.kept])
    monkeypatch.setattr(method_choice.StackPlan, "make", staticmethod(lambda g: None))
    alone = method_choice.resolve(c, QuantConfig())
    assert stacked.choice_scores == alone.choice_scores and stacked.chosen == alone.chosen


def test_a_constant_output_does_not_stack() -> None:
    const_out = parse_graph("graph @g(%x: f32[1,3]) -> (%y, %k) {\n"
                            "  %k = const f32[1,3] dense<[1, 2, 3]>\n"
                            "  %y: f32[1,3] = Relu(%x)\n}\n")
    assert StackPlan.make(const_out) is None
