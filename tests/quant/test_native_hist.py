"""The calibration histogram's C binning (csrc/qnnc_observe.c) against the numpy path: the
same counts for every input, so which one ran never changes a compiled model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from compiler.quant.native_hist import library, signed_counts
from compiler.quant.observers import Histogram, numpy_signed_counts

pytestmark = pytest.mark.skipif(library() is None, reason="no C compiler to build the routine")

FLOATS = {np.float32: st.floats(-1e6, 1e6, width=32), np.float64: st.floats(-1e6, 1e6)}


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([np.float32, np.float64]).flatmap(
    lambda t: hnp.arrays(t, st.integers(0, 3000), elements=FLOATS[t])),
    st.sampled_from([2, 7, 2048]), st.floats(0.25, 1.5))
def test_same_counts_as_numpy(a: np.ndarray, bins: int, fill: float) -> None:
    """Any finite data, any bin count, widths that put the largest value inside the last bin,
    on its edge (fill 1: the rounding the clip absorbs) or beyond it (clipped)."""
    amax = float(np.abs(a).max()) if a.size else 1.0
    width = max(amax * fill / bins, 1e-30)
    got = signed_counts(a, width, bins)
    assert got is not None
    np.testing.assert_array_equal(got, numpy_signed_counts(a, width, bins))


def test_values_on_bin_edges_and_zeros() -> None:
    """Values exactly on bin edges (a grid), signed zeros and a ReLU's runs of zeros."""
    a = np.concatenate([np.arange(-64, 65, dtype=np.float32) / 8, np.zeros(1000, np.float32),
                        -np.zeros(10, np.float32)])
    for width in (0.125, 0.25, 1 / 3):
        np.testing.assert_array_equal(signed_counts(a, width, 64),
                                      numpy_signed_counts(a, width, 64))
    counts = signed_counts(a, 0.125, 64)
    assert counts is not None and counts[64] == 1000 + 10 + 1  # the zeros, -0.0 included


def test_histograms_agree_over_many_batches() -> None:
    """Whole Histogram objects, C and numpy, through growth (later batches wider), NaN/inf
    and float16 and integer inputs."""
    rng = np.random.default_rng(5)
    c, p = Histogram(256), Histogram(256, native=False)
    for k in range(30):
        x = rng.standard_normal(5000) * (1 + k)
        x = [x.astype(np.float32), x, x.astype(np.float16), np.round(x).astype(np.int32)][k % 4]
        if k % 5 == 0:
            x = x.astype(np.float32)
            x[::97] = np.nan
            x[3] = np.inf
        c.update(x)
        p.update(x)
        assert (c.width, c.zeros, c.nonfinite, c.min, c.max) == (
            p.width, p.zeros, p.nonfinite, p.min, p.max)
        np.testing.assert_array_equal(c.pos, p.pos)
        np.testing.assert_array_equal(c.neg, p.neg)


def test_counts_accumulate_in_place_across_both_paths() -> None:
    """Given a counts array, the routine adds to it: small inputs (counted directly) and large
    ones (sub-histograms, folded and re-zeroed) in any order give the summed counts."""
    rng = np.random.default_rng(3)
    bins, width = 16, 0.25
    parts = [rng.standard_normal(n).astype(np.float32) for n in (5, 40_000, 20, 3, 9000)]
    counts = np.zeros(2 * bins + 1, np.int64)
    for a in parts:
        assert signed_counts(a, width, bins, counts) is counts
    want = sum(numpy_signed_counts(a, width, bins) for a in parts)
    np.testing.assert_array_equal(counts, want)
    with pytest.raises(ValueError, match="int64"):
        signed_counts(parts[0], width, bins, np.zeros(2 * bins + 1, np.int32))


def test_copied_histograms_count_into_their_own_arrays() -> None:
    """The C routine writes through an address the histogram keeps: a deep copy or an
    unpickled histogram must count into its own array, not the original's."""
    import copy
    import pickle

    rng = np.random.default_rng(1)
    h = Histogram(64)
    h.update(rng.standard_normal(1000))
    before = h.counts.copy()
    for twin in (copy.deepcopy(h), pickle.loads(pickle.dumps(h))):
        twin.update(rng.standard_normal(1000))
        np.testing.assert_array_equal(h.counts, before)
        assert twin.total == 2000


def _batch(dtype: type, n: int, scale: float, special: bool, seed: int) -> np.ndarray:
    """``n`` normal values times ``scale``; with ``special``, one of them a signed zero, a
    NaN or an infinity."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * scale).astype(dtype)
    if special:
        x[rng.integers(0, n)] = [-0.0, np.nan, np.inf, 0.0][seed % 4]
    return x


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([np.float32, np.float64]),
                          st.integers(1, 700), st.sampled_from([0.0, 1e-3, 0.5, 1.0, 3.0]),
                          st.booleans(), st.integers(0, 2**32 - 1)), min_size=1, max_size=8),
       st.sampled_from([2, 64, 2048]))
def test_one_call_updates_match_numpy(batches: list[tuple[type, int, float, bool, int]],
                                      bins: int) -> None:
    """The one-call update (extremes, then the counts when they fit the bins) against the
    numpy path over batch sequences that stay inside the range (counted in C in that one
    call), widen it (the width grows first), hold only zeros (signed ones too) or NaN/inf."""
    c, p = Histogram(bins), Histogram(bins, native=False)
    for dtype, n, scale, special, seed in batches:
        x = _batch(dtype, n, scale, special, seed)
        c.update(x)
        p.update(x)
        assert (c.width, c.zeros, c.nonfinite, c.total) == (p.width, p.zeros, p.nonfinite,
                                                           p.total)
        assert (c.min, c.max) == (p.min, p.max)
        assert str(c.min) == str(p.min) and str(c.max) == str(p.max)  # the zero's sign too
        np.testing.assert_array_equal(c.counts, p.counts)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([np.float32, np.float64, np.float16]),
                          st.sampled_from([1, 5, 300, 2048, 2049, 5000]),
                          st.sampled_from([0.0, 1e-3, 0.5, 1.0, 3.0, 1e4]),
                          st.booleans(), st.integers(0, 2**32 - 1)), min_size=1, max_size=40),
       st.sampled_from([2, 64, 2048]), st.integers(0, 40))
def test_deferred_batches_fold_in_as_one_update_each(
        batches: list[tuple[type, int, float, bool, int]], bins: int, read_at: int) -> None:
    """Histogram.defer then flush against one update per batch, in order: batches that fit,
    widen the range (growth in the middle of a buffer), hold only zeros or NaN/inf, change
    dtype, overflow the buffer or are too large to wait; the state read half-way (a flush)
    must not change the outcome either."""
    d, u = Histogram(bins), Histogram(bins)
    for k, (dtype, n, scale, special, seed) in enumerate(batches):
        x = _batch(dtype, n, scale, special, seed)
        d.defer(x)
        u.update(x)
        if k == read_at:
            d.flush()
    d.flush()
    assert (d.width, d.zeros, d.nonfinite, d.total) == (u.width, u.zeros, u.nonfinite, u.total)
    assert str(d.min) == str(u.min) and str(d.max) == str(u.max)  # the zero's sign too
    np.testing.assert_array_equal(d.counts, u.counts)


def test_observers_read_deferred_batches() -> None:
    """An observer's answers include the batches still waiting in its histogram's buffer,
    and a copy of it carries them too."""
    import copy

    from compiler.quant.observers import PercentileObserver

    obs = PercentileObserver(99.0, bins=256)
    obs.update(np.linspace(-1, 1, 100, dtype=np.float32))
    obs.update(np.array([5.0], np.float32))  # waits in the buffer
    assert obs.seen() == (-1.0, 5.0)
    obs.update(np.array([-7.0], np.float32))
    twin = copy.deepcopy(obs)
    assert obs.extremes() == twin.extremes() == (-7.0, 5.0)
    assert twin.hist.total == 102
