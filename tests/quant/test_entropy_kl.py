"""The entropy observer's divergences (computed from prefix sums, O(levels) a candidate)
against the definition written out bin by bin: P clipped into bin i - 1, Q spread evenly
over each group's non-empty bins, both smoothed, KL(P || Q); and the search over many
histograms at once against each searched alone."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.quant.entropy_search import PrefixSums, divergences, least_divergence
from compiler.quant.observers import EntropyObserver

EPS = EntropyObserver.EPS


def kl_by_bins(hist: np.ndarray, i: int, levels: int) -> float:
    """KL(P || Q) of candidate width ``i``, term by term as the class docstring states."""
    p = hist[:i].astype(np.float64).copy()
    p[i - 1] += hist[i:].sum()
    q = np.zeros(i)
    for g in range(levels):
        members = [j for j in range(i) if (j * levels) // i == g]
        nonempty = [j for j in members if p[j] > 0]
        if nonempty:
            q[nonempty] = hist[members].sum() / len(nonempty)
    p, q = p / p.sum(), q / max(hist[:i].sum(), 1e-300)
    ps = p * (1.0 - EPS * (i - np.count_nonzero(p)))
    qs = np.where(q > 0, q * (1.0 - EPS * (i - np.count_nonzero(q))), EPS)
    return float(sum(ps[j] * math.log(ps[j] / qs[j]) for j in range(i) if p[j] > 0))


def _kls(hist: np.ndarray, cands: np.ndarray, levels: int) -> np.ndarray:
    return divergences(PrefixSums(hist[None]), np.zeros(len(cands), np.int64), cands, levels)


@st.composite
def histograms(draw: st.DrawFn) -> np.ndarray:
    """Dense, sparse (most bins empty) and spiky counts, with a long thin tail at times."""
    bins = draw(st.integers(200, 600))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["dense", "sparse", "spike", "tail"]))
    h = rng.poisson(rng.uniform(0.5, 50), bins).astype(np.float64)
    if kind == "sparse":
        h[rng.random(bins) < 0.9] = 0.0
    elif kind == "spike":
        h[rng.integers(0, bins, 3)] += 1e5
    elif kind == "tail":
        h[bins // 3:] = (rng.random(bins - bins // 3) < 0.02).astype(np.float64)
    h[-1] = max(h[-1], 1.0)  # the last bin holds the maximum
    return h


@settings(max_examples=60, deadline=None)
@given(histograms(), st.sampled_from([128, 256]))
def test_divergences_equal_the_definition(hist: np.ndarray, levels: int) -> None:
    cands = np.arange(levels, len(hist) + 1, 7)
    got = _kls(hist, cands, levels)
    want = np.array([kl_by_bins(hist, int(i), levels) for i in cands])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_group_emptied_but_for_the_tail() -> None:
    """Bin i - 1 non-empty only through the clipped tail, alone in its group: its Q is eps."""
    hist = np.zeros(300)
    hist[:100] = 5.0
    hist[299] = 40.0
    for i in (200, 256, 257, 299):
        got = _kls(hist, np.array([i]), 128)[0]
        assert math.isclose(got, kl_by_bins(hist, i, 128), rel_tol=1e-9)


def _alone(hist: np.ndarray, levels: int, stride: int) -> int:
    """The search of one histogram written out: every stride-th candidate and the last,
    then the best one's neighbours; np.argmin's first on ties."""
    last = int(np.flatnonzero(hist)[-1]) + 1
    if last <= levels:
        return last
    cands = np.unique(np.r_[np.arange(levels, last + 1, stride), last])
    best = int(cands[np.argmin(_kls(hist, cands, levels))])
    if stride > 1:
        near = np.arange(max(levels, best - stride + 1), min(last, best + stride - 1) + 1)
        best = int(near[np.argmin(_kls(hist, near, levels))])
    return best


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(histograms(), st.sampled_from([128, 256])), min_size=1, max_size=6),
       st.sampled_from([1, 4, 16]))
def test_histograms_searched_together_as_each_alone(
        cases: list[tuple[np.ndarray, int]], stride: int) -> None:
    """Different lengths and levels in one call (rows padded, calls per levels, several
    chunks of candidates): every histogram gets the width its own search gives."""
    import compiler.quant.entropy_search as obs

    hists, levels = [h for h, _ in cases], [lv for _, lv in cases]
    want = [_alone(h, lv, stride) for h, lv in cases]
    saved = obs.ELEMENTS
    try:
        obs.ELEMENTS = 37 * 129  # a histogram's candidates across several calls
        assert least_divergence(hists, levels, stride) == want
    finally:
        obs.ELEMENTS = saved
