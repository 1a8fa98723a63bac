"""Range observers on distributions whose right answer is known, histogram growth, and the
(scale, zero_point) helper's safety properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.quant.observers import (
    DEFAULT_PERCENTILE,
    MAX_SCALE,
    MIN_SCALE,
    SCHEMES,
    EntropyObserver,
    Histogram,
    make_observer,
    qrange,
    quant_params,
    to_quant_params,
)

METHODS = ("minmax", "percentile", "entropy", "mse")
HIST_METHODS = ("percentile", "entropy", "mse")


def _observe(method: str, batches: list[np.ndarray], **kw: object) -> tuple[float, float]:
    obs = make_observer(method, **kw)  # type: ignore[arg-type]
    for b in batches:
        obs.update(b)
    return obs.range()


@pytest.fixture(scope="module")
def gauss() -> np.ndarray:
    return np.random.default_rng(1).standard_normal(1_000_000).astype(np.float32)


# -- known distributions ----------------------------------------------------------------------
def test_uniform_minmax_and_percentile_reach_the_ends() -> None:
    x = np.random.default_rng(0).uniform(-2.0, 3.0, 200_000).astype(np.float32)
    assert _observe("minmax", np.split(x, 4)) == (float(x.min()), float(x.max()))
    lo, hi = _observe("percentile", np.split(x, 4), percentile=99.99)
    # 0.01% of a width-5 uniform is 5e-4 from each end; allow one bin (max 3 / 2048 bins).
    slack = 5e-4 + 3.0 / 2048 + 1e-3
    assert abs(lo - -2.0) < slack and abs(hi - 3.0) < slack
    t = _observe("percentile", [x], percentile=99.0, symmetric=True)[1]
    # 99% of |x| for U(-2, 3): P(|x| <= t) = (t + 2)/5 for t >= 2, so t = 2.95.
    assert t == pytest.approx(2.95, abs=3.0 / 2048 + 5e-3)


def test_percentile_of_gaussian_matches_normal_quantiles(gauss: np.ndarray) -> None:
    lo, hi = _observe("percentile", [gauss], percentile=99.9)
    assert lo == pytest.approx(-3.090, abs=0.05) and hi == pytest.approx(3.090, abs=0.05)
    lo, hi = _observe("percentile", [gauss], percentile=99.9, symmetric=True)
    assert hi == pytest.approx(3.291, abs=0.05) and lo == -hi  # 99.9% of |x|: 3.291 sigma


def test_the_default_percentile_clips_one_value_in_100000_per_tail(gauss: np.ndarray) -> None:
    assert DEFAULT_PERCENTILE == 99.999
    lo, hi = _observe("percentile", [gauss])
    # the 0.001% tails of N(0, 1) start at 4.265 sigma; a million values hold 10 beyond each
    assert lo == pytest.approx(-4.265, abs=0.15) and hi == pytest.approx(4.265, abs=0.15)
    assert np.count_nonzero(gauss > hi) <= 20 and np.count_nonzero(gauss < lo) <= 20


def test_outliers_stretch_minmax_but_the_others_clip(gauss: np.ndarray) -> None:
    x = np.concatenate([gauss, np.float32([30.0, -30.0])])
    assert _observe("minmax", [x]) == (-30.0, 30.0)
    for method in ("percentile", "entropy"):
        lo, hi = _observe(method, [x])
        assert -6.0 < lo < -3.0 and 3.0 < hi < 6.0, method
    # MSE weighs each outlier's clipping against the rounding noise of 1e6 values inside:
    # d/dhi [(30 - hi)^2 + 1e6 * ((hi - lo) / 255)^2 / 12] = 0 with hi = -lo = t gives
    # t = 30 / (1 + 2e6 / 780300) = 8.42 (the Gaussian's clipping is negligible there). It
    # clips the outliers, far less eagerly than a percentile.
    lo, hi = _observe("mse", [x])
    assert lo == pytest.approx(-8.42, abs=0.15) and hi == pytest.approx(8.42, abs=0.15)


def test_entropy_threshold_on_standard_normal(gauss: np.ndarray) -> None:
    """Where KL calibration should land on N(0, 1) with 128 levels over 2048 bins.

    KL(t) is about a flattening term plus a clipping term. Merging 16 bins into one level
    flattens a density whose log-slope is -x: relative error x*u with u uniform over a level
    of width t/128, so KL ~ E[x^2] (t/128)^2 / 24 <= 6e-5 for t <= 5. Clipping moves the tail
    mass T(t) = 2(1 - Phi(t)) into the last bin, whose Q is ~ the bin's own share 2 phi(t) w,
    costing T ln(T / (2 phi(t) w)) ~ T ln(1 / (t w)) with w = max/2048: at t = 4 that is
    6.3e-5 * 4.6 = 2.9e-4, far above the flattening term, while at 4.5 it is ~3e-5. So the
    minimum lies between ~4.2 sigma and the sample maximum (~4.9 for 1e6 samples). The band
    [4.0, max] leaves room for sampling noise in the sparse tail bins.
    """
    lo, hi = _observe("entropy", np.split(gauss, 10))
    t = max(-lo, hi)
    assert 4.0 <= t <= float(np.abs(gauss).max())
    assert (lo, hi) == (max(-t, float(gauss.min())), min(t, float(gauss.max())))
    obs = EntropyObserver()
    obs.update(gauss)
    assert obs.levels() == 128


def test_entropy_on_relu_output_ignores_the_spike_of_zeros(gauss: np.ndarray) -> None:
    relu = np.maximum(gauss, 0)
    obs = EntropyObserver()
    obs.update(relu)
    assert obs.levels() == 256  # one-sided, asymmetric: every code is on the positive side
    lo, hi = obs.range()
    # Half the values are exactly 0. Kept in bin 0, that spike would dominate the first
    # level's divergence and pull the threshold to ~1.8; without it the half-normal behaves
    # like the normal above.
    assert lo == 0.0 and 4.0 <= hi <= float(relu.max())
    assert _observe("entropy", [relu], symmetric=True)[0] == 0.0


def _mse_costs(x: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """The MSE objective (symmetric, 127 steps per side) straight from the samples, per t."""
    a = np.sort(np.abs(x.astype(np.float64)))
    a = a[a > 0]
    s1, s2 = np.cumsum(a[::-1])[::-1], np.cumsum((a * a)[::-1])[::-1]
    first = np.searchsorted(a, ts, side="right")  # a[first:] > t are clipped
    s1, s2 = np.append(s1, 0.0)[first], np.append(s2, 0.0)[first]
    clipped = a.size - first
    return s2 - 2 * ts * s1 + ts * ts * clipped + first * (ts / 127) ** 2 / 12


def test_mse_symmetric_on_standard_normal(gauss: np.ndarray) -> None:
    lo, hi = _observe("mse", [gauss], symmetric=True)
    # Banner et al. (ACIQ) give 3.92 sigma as the MSE-optimal 8-bit clip of a Gaussian.
    assert lo == -hi and 3.75 <= hi <= 4.1
    costs = _mse_costs(gauss, np.append(np.linspace(2.0, 5.0, 3001), hi))
    assert costs[-1] <= costs[:-1].min() * 1.01  # the histogram finds the sample optimum
    assert costs[-1] < costs[0] / 2  # and the objective does discriminate


def test_mse_asymmetric_follows_a_one_sided_distribution(gauss: np.ndarray) -> None:
    lo, hi = _observe("mse", [np.maximum(gauss, 0)])
    assert lo == 0.0 and 3.5 <= hi <= 4.8
    skewed = np.concatenate([gauss[gauss > -0.5], np.float32([-0.5])])
    lo, hi = _observe("mse", [skewed])
    assert -0.51 <= lo <= -0.45 and 3.5 <= hi <= 4.8


# -- histograms -------------------------------------------------------------------------------
def test_histogram_growth_folds_to_the_one_shot_histogram() -> None:
    """First batch peaks at 1.0, the last at 4.0: the grown width (4 / 2048, a power of 2 as is
    every step) equals the one-shot width, so the histograms, and every result, are equal."""
    rng = np.random.default_rng(3)
    batches = [rng.uniform(-1, 1, 5000) for _ in range(3)]
    batches[0][0] = 1.0
    batches.append(np.clip(rng.standard_normal(5000) * 1.3, -3.9, 3.9))
    batches.append(rng.uniform(-4, 4, 5000))
    batches[-1][0] = -4.0
    assert max(float(np.abs(b).max()) for b in batches) == 4.0
    grown, once = Histogram(2048), Histogram(2048)
    for b in batches:
        grown.update(b)
    once.update(np.concatenate(batches))
    assert grown.width == once.width == 4.0 / 2048
    np.testing.assert_array_equal(grown.pos, once.pos)
    np.testing.assert_array_equal(grown.neg, once.neg)
    for method in HIST_METHODS:
        for sym in (False, True):
            assert _observe(method, batches, symmetric=sym) == _observe(
                method, [np.concatenate(batches)], symmetric=sym
            ), (method, sym)


def test_histogram_growth_by_odd_factors_stays_within_a_bin() -> None:
    rng = np.random.default_rng(4)
    batches = [rng.standard_normal(20_000) * s for s in (0.3, 0.7, 2.9, 1.0, 11.3)]
    grown = Histogram(2048)
    for b in batches:
        grown.update(b)
    whole = np.concatenate(batches)
    assert grown.total == whole.size
    assert grown.pos.sum() == np.count_nonzero(whole > 0)
    assert grown.edge >= np.abs(whole).max()
    for sym in (False, True):
        a = _observe("percentile", batches, percentile=99.9, symmetric=sym)
        b = _observe("percentile", [whole], percentile=99.9, symmetric=sym)
        assert abs(a[0] - b[0]) <= grown.width and abs(a[1] - b[1]) <= grown.width


def test_coarsened_histogram_is_the_coarser_binning() -> None:
    """Folding 2048 bins by 4 gives the counts a 512-bin histogram of the same data has (the
    first batch's largest magnitude sets both widths, 4 apart), zeros and extremes kept."""
    rng = np.random.default_rng(6)
    x = np.concatenate([rng.standard_normal(50_000) * 2.0, np.zeros(300), [7.5, -7.5]])
    fine, coarse = Histogram(2048), Histogram(512)
    fine.update(x)
    coarse.update(x)
    folded = fine.coarsened(4)
    assert folded.bins == 512 and folded.width == coarse.width
    np.testing.assert_array_equal(folded.counts, coarse.counts)
    assert (folded.min, folded.max, folded.zeros) == (coarse.min, coarse.max, 300)
    with pytest.raises(ValueError, match="does not divide"):
        fine.coarsened(3)


def test_histogram_growth_by_a_huge_factor_keeps_the_mass() -> None:
    h = Histogram(16)
    h.update(np.array([1e-30, -2e-30, 3e-30]))
    h.update(np.array([1e30]))
    assert h.total == 4 and h.pos[0] == 2 and h.neg[0] == 1 and h.pos[-1] == 1
    assert h.edge >= 1e30


def test_state_size_does_not_grow_with_the_data() -> None:
    rng = np.random.default_rng(5)
    for method in METHODS:
        obs = make_observer(method)
        obs.update(rng.standard_normal(1000))
        size = obs.state_nbytes()
        for k in range(200):
            obs.update(rng.standard_normal(1000) * (1 + k))  # the range keeps growing
            assert obs.state_nbytes() == size, method


def test_nonfinite_values_are_skipped() -> None:
    x = np.random.default_rng(7).standard_normal(10_000).astype(np.float32)
    dirty = x.copy()
    dirty[[3, 50, 700]] = [np.nan, -np.inf, np.inf]
    clean = np.delete(x, [3, 50, 700])
    for method in METHODS:
        assert _observe(method, [dirty]) == _observe(method, [clean]), method
    obs = make_observer("minmax")
    obs.update(dirty)
    assert obs.nonfinite == 3  # type: ignore[attr-defined]


# -- zero-width and constant tensors ----------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_all_zero_and_empty_tensors_give_the_documented_safe_scale(method: str) -> None:
    for batches in ([np.zeros((4, 4), np.float32)] * 3, [np.zeros(0, np.float32)], []):
        lo, hi = _observe(method, batches)
        assert (lo, hi) == (0.0, 0.0)
        assert quant_params(lo, hi, "u8") == (1.0, 0)
        assert quant_params(lo, hi, "i8") == (1.0, -128)
        assert quant_params(lo, hi, "i8sym") == (1.0, 0)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("value", [5.0, -3.0])
def test_constant_tensor_quantises_its_value_exactly(method: str, value: float) -> None:
    lo, hi = _observe(method, [np.full(1000, value, np.float32)] * 2)
    # The percentile interpolates inside the value's bin: within one of 2048 bins of it.
    tol = 0.0 if method != "percentile" else abs(value) / 2048
    assert lo == pytest.approx(min(value, 0.0), abs=tol)
    assert hi == pytest.approx(max(value, 0.0), abs=tol)
    assert lo <= 0.0 <= hi and (lo != 0.0 or hi != 0.0)
    for scheme in SCHEMES:
        scale, zp = quant_params(lo, hi, scheme)
        qmin, qmax = qrange(scheme)
        q = int(np.clip(np.rint(value / scale) + zp, qmin, qmax))
        assert q in (qmin, qmax)
        assert (q - zp) * scale == pytest.approx(value, rel=1e-6 + tol)


def test_tiny_and_huge_ranges_keep_a_normal_float32_scale() -> None:
    assert quant_params(0.0, 1e-45)[0] == MIN_SCALE
    assert quant_params(-1e308, 1e308)[0] == MAX_SCALE
    assert to_quant_params(-1.0, 1.0, "i8sym").scale == (float(np.float32(1 / 127)),)


def test_bad_ranges_are_refused() -> None:
    for lo, hi in ((1.0, -1.0), (math.nan, 1.0), (-math.inf, 0.0)):
        with pytest.raises(ValueError):
            quant_params(lo, hi)
    with pytest.raises(ValueError):
        quant_params(0.0, 1.0, "u4")  # type: ignore[arg-type]


finite = st.floats(min_value=-1e30, max_value=1e30, allow_nan=False, allow_infinity=False)


@given(lo=finite, hi=finite, scheme=st.sampled_from(SCHEMES))
def test_quant_params_properties(lo: float, hi: float, scheme: str) -> None:
    lo, hi = min(lo, hi), max(lo, hi)
    scale, zp = quant_params(lo, hi, scheme)  # type: ignore[arg-type]
    qmin, qmax = qrange(scheme)  # type: ignore[arg-type]
    assert math.isfinite(scale) and scale > 0 and float(np.float32(scale)) == scale
    assert qmin <= zp <= qmax and isinstance(zp, int)
    q0 = int(np.clip(np.rint(np.float32(0.0) / np.float32(scale)) + zp, qmin, qmax))
    assert q0 == zp and (q0 - zp) * scale == 0.0  # 0.0 round-trips exactly
    # The covered interval reaches lo and hi up to half a step lost to rounding the zero point
    # (plus the float32 rounding of the scale), unless the scale was clamped at MIN_SCALE.
    cover_lo, cover_hi = (qmin - zp) * scale, (qmax - zp) * scale
    tol = 0.5 * scale + 1e-6 * max(abs(lo), abs(hi))
    if scale > MIN_SCALE:
        assert cover_lo <= min(lo, 0.0) + tol and cover_hi >= max(hi, 0.0) - tol


@settings(deadline=None, max_examples=60)
@given(
    data=st.lists(finite.map(lambda v: v / 1e25), min_size=1, max_size=50),
    method=st.sampled_from(METHODS),
    sym=st.booleans(),
)
def test_observer_ranges_contain_zero_and_stay_inside_the_data(
    data: list[float], method: str, sym: bool
) -> None:
    x = np.asarray(data)
    lo, hi = _observe(method, [x[: len(x) // 2], x[len(x) // 2 :]], symmetric=sym)
    assert lo <= 0.0 <= hi
    assert lo >= min(x.min(), 0.0) and hi <= max(x.max(), 0.0)

