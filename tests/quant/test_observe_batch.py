"""Folding a sample's small tensors in one call (compiler/quant/observe_batch.py): every
histogram ends as one update per tensor leaves it, bit for bit, through first batches, wider
ranges, all-zero tensors and NaN/inf; and calibration's ranges do not depend on which path
ran."""

from __future__ import annotations

import copy
import importlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.quant import Calibrator
from compiler.quant.native_hist import library
from compiler.quant.observe_batch import SampleBatch
from compiler.quant.observers import Histogram, make_observer
from ir import DType, Graph, TensorType, make_node
from tests.quant.test_calibrate import _graph, _samples

pytestmark = pytest.mark.skipif(library() is None, reason="no C compiler to build the routine")
batch_mod = importlib.import_module("compiler.quant.observe_batch")

SHAPES = [(1, 1), (3, 5), (1, 128), (64, 80), (2, 3, 4)]  # 64x80: above 2 * bins + 1


def _neg_chain() -> Graph:
    """One Neg per input: float32 outputs of the SHAPES' sizes."""
    g = Graph("negs")
    outs = []
    for k, shape in enumerate(SHAPES):
        x = g.add_input(f"x{k}", TensorType(shape, DType.f32))
        outs.append(make_node(g, "Neg", [x], name=f"neg{k}").outputs[0])
    g.outputs = outs
    return g


def _state(h: Histogram) -> tuple[object, ...]:
    return (h.width, h.min, h.max, h.nonfinite, h.counts.tolist())


# a sample: per output, a scale (0: all zeros) and whether to plant a NaN or an infinity
SAMPLE = st.lists(st.tuples(st.sampled_from([0.0, 1e-3, 1.0, 7.5, 300.0]),
                            st.sampled_from([None, np.nan, np.inf, -np.inf])),
                  min_size=len(SHAPES), max_size=len(SHAPES))


@settings(max_examples=60, deadline=None)
@given(st.lists(SAMPLE, min_size=1, max_size=6), st.sampled_from(["percentile", "mse"]),
       st.integers(0, 2**32 - 1))
def test_fold_leaves_each_histogram_as_its_own_updates_do(
        samples: list[list[tuple[float, float | None]]], method: str, seed: int) -> None:
    g = _neg_chain()
    rng = np.random.default_rng(seed)
    observers = {n.outputs[0].name: make_observer(method, bins=64) for n in g.nodes}
    batch = SampleBatch.make(g, observers)
    assert batch is not None and len(batch.picks) == len(SHAPES)
    alone = {k: copy.deepcopy(o.hist) for k, o in observers.items()}
    for sample in samples:
        outs = []
        for shape, (scale, bad) in zip(SHAPES, sample):
            a = (rng.standard_normal(shape) * scale).astype(np.float32)
            if bad is not None:
                a.flat[rng.integers(a.size)] = bad
            outs.append([a])
        batch.fold(outs)
        for node, (a,) in zip(g.nodes, outs):
            alone[node.outputs[0].name].update(a)
    for name, obs in observers.items():
        assert _state(obs.hist) == _state(alone[name]), name


def test_tensors_too_large_or_not_float32_are_left_to_the_single_update(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_mod, "BATCH_MAX", 200)
    g = _neg_chain()
    batch = SampleBatch.make(g, {n.outputs[0].name: make_observer("percentile")
                                 for n in g.nodes})
    assert batch is not None
    assert [s for s in SHAPES if int(np.prod(s)) > 200] == \
        [SHAPES[i] for i, _, _ in batch.rest]
    minmax = SampleBatch.make(g, {n.outputs[0].name: make_observer("minmax")
                                  for n in g.nodes})
    assert minmax is None  # a min/max observer has no histogram: nothing to batch


@pytest.mark.parametrize("method", ["percentile", "entropy", "mse", "minmax"])
def test_calibration_is_the_same_with_and_without_the_batch(
        method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    samples = _samples(10)
    for k, s in enumerate(samples):  # later samples wider: the histograms grow
        s["x"] = s["x"] * (1 + k)

    def calibrated() -> Calibrator:
        cal = Calibrator(_graph(), method)  # type: ignore[arg-type]
        cal.threads = 1
        for s in samples:
            cal.feed(s)
        return cal

    batched = calibrated()
    assert method == "minmax" or batched._schedules[0][1] is not None
    monkeypatch.setattr(SampleBatch, "make", classmethod(lambda cls, g, o: None))
    single = calibrated()
    assert single._schedules[0][1] is None
    assert batched.ranges() == single.ranges()
    for name, obs in batched.observers.items():
        other = single.observers[name]
        if hasattr(obs, "hist"):
            assert _state(obs.hist) == _state(other.hist), name



def test_a_copied_batch_folds_into_its_own_histograms() -> None:
    """A deep copy of a batch with its observers goes on independently: its samples reach
    the copied histograms (the batch takes their count addresses anew), never the originals."""
    g = _neg_chain()
    rng = np.random.default_rng(3)
    observers = {n.outputs[0].name: make_observer("percentile", bins=64) for n in g.nodes}
    batch = SampleBatch.make(g, observers)
    assert batch is not None

    def sample() -> list[list[np.ndarray]]:
        return [[rng.standard_normal(shape).astype(np.float32)] for shape in SHAPES]

    batch.fold(sample())
    twin_observers, twin = copy.deepcopy((observers, batch))
    before = {k: _state(o.hist) for k, o in observers.items()}
    later = [sample() for _ in range(3)]
    for outs in later:
        twin.fold(outs)
    assert {k: _state(o.hist) for k, o in observers.items()} == before
    for outs in later:
        batch.fold(outs)
    for k, o in observers.items():
        assert _state(o.hist) == _state(twin_observers[k].hist), k
