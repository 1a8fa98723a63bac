"""Range observers: watch a stream of arrays and decide the real range (lo, hi) that a tensor's
8-bit quantisation should cover.

Every observer has bounded memory: it keeps running extremes and, for the histogram methods, a
fixed number of bins (and a buffer of the same size where small batches wait to be binned
together); samples are never stored, so calibrating on 10 or 10,000 samples costs the same
memory. Non-finite values (an intermediate overflow, a ``-inf`` mask) are skipped and
counted: no finite range can represent them, and the quantised tensor saturates there anyway.

The methods, and which distribution each looks at:

- ``MinMaxObserver``: the observed extremes. Never clips; one outlier stretches the scale.
- ``PercentileObserver``: symmetric — the ``p``-th percentile of ``|x|``, giving (-t, t);
  asymmetric — the ``(100 - p)``-th and ``p``-th percentiles of ``x`` (each tail clipped
  separately, so a ReLU output keeps lo = 0 and a GELU output its small negative floor).
- ``EntropyObserver``: TensorRT-style KL-divergence calibration on the histogram of ``|x|``.
- ``MseObserver``: the clipping range minimising the expected squared error (rounding noise
  inside the range plus clipping error outside it) for the histogram.

Whatever the method, the returned range satisfies ``lo <= 0 <= hi`` and never exceeds the
observed extremes. :func:`quant_params` turns a range into (scale, zero_point).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Literal

import numpy as np

from compiler.quant.entropy_search import EPS, least_divergence
from compiler.quant.native_hist import add_counts, update_counts
from ir import qmath
from ir.qmath import MAX_SCALE as MAX_SCALE  # re-exported
from ir.qmath import MIN_SCALE as MIN_SCALE  # re-exported
from ir.types import DType, QuantParams

Scheme = Literal["u8", "i8", "i8sym"]
SCHEMES: tuple[Scheme, ...] = ("u8", "i8", "i8sym")
_QRANGE: dict[str, tuple[int, int]] = {"u8": (0, 255), "i8": (-128, 127), "i8sym": (-127, 127)}
#: the percentile method's default: clip the rarest 1 in 100,000 values (see
#: benchmarks/README.md, quant_accuracy and int8_recipe, for how it was chosen)
DEFAULT_PERCENTILE = 99.999


def percentile_problem(p: object) -> str | None:
    """What is wrong with ``p`` as the percentile method's percentile, or None: it must be a
    number in (50, 100]."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 50.0 < p <= 100.0:
        return (f"the calibration percentile must be in (50, 100], got {p!r}: the share of "
                "each tensor's values its range keeps (99.999 clips the rarest 1 in 100,000 "
                "per tail)")
    return None


class Observer(ABC):
    """Accumulates statistics of one tensor over many batches; :meth:`range` decides."""

    @abstractmethod
    def update(self, x: np.ndarray) -> None:
        """Fold one batch (any shape) into the statistics."""

    @abstractmethod
    def range(self) -> tuple[float, float]:
        """The chosen (lo, hi), lo <= 0 <= hi; (0.0, 0.0) if nothing finite was seen."""

    @abstractmethod
    def state_nbytes(self) -> int:
        """Bytes of state kept between batches (constant: it must not grow with the data)."""

    @abstractmethod
    def seen(self) -> tuple[float, float]:
        """The smallest and largest finite value seen ((inf, -inf) before any)."""

    @abstractmethod
    def extremes(self) -> tuple[float, float]:
        """The raw observed (min, max), widened to contain 0: the range with nothing
        clipped, whatever the method would choose."""


class MinMaxObserver(Observer):
    """Running minimum and maximum."""

    def __init__(self) -> None:
        self.min = math.inf
        self.max = -math.inf
        self.nonfinite = 0

    def update(self, x: np.ndarray) -> None:
        x = _finite(self, x)
        if x.size:
            self.min = min(self.min, float(x.min()))
            self.max = max(self.max, float(x.max()))

    def range(self) -> tuple[float, float]:
        return _with_zero(self.min, self.max)

    def extremes(self) -> tuple[float, float]:
        return _with_zero(self.min, self.max)

    def seen(self) -> tuple[float, float]:
        return self.min, self.max

    def state_nbytes(self) -> int:
        return 3 * 8


#: batches of at most this many values wait in a histogram's buffer (Histogram.defer) ...
DEFER_MAX = 2048
#: ... which holds at most this many values, or DEFER_BATCHES batches of the first one's size
DEFER_ELEMENTS = 8192
DEFER_BATCHES = 32


class Histogram:
    """Two one-sided histograms with one shared bin width: of ``x`` for ``x > 0`` and of
    ``-x`` for ``x < 0``; exact zeros are counted apart (they quantise exactly, and ReLU
    outputs are full of them). Bin ``i`` holds magnitudes in ``(i*width, (i+1)*width]``: closed
    on the right, so the largest magnitude of the first batch sits inside the last bin.

    The width is set by the first batch (its largest magnitude fills the last bin). When a
    later batch goes beyond ``bins * width``, the width is multiplied by the smallest integer
    ``k`` that covers it and every ``k`` neighbouring bins are folded into one: the old counts
    are then exactly what they would be at the coarser width, so the result only loses
    resolution, never mass or order.
    """

    def __init__(self, bins: int = 2048, native: bool = True) -> None:
        if bins < 2:
            raise ValueError("a histogram needs at least 2 bins")
        self.bins = bins
        self.native = native  # bin in C when the library builds (the same counts)
        self.width = 0.0
        # One array in the binning's own order (negative bins reversed, the exact zeros,
        # positive bins) that the C routine adds to in place; pos and neg are views of it.
        self.counts = np.zeros(2 * bins + 1, dtype=np.int64)
        self._counts_pointer = self.counts.ctypes.data  # the array is never replaced
        self.min = math.inf
        self.max = -math.inf
        self.nonfinite = 0
        self._buf: np.ndarray | None = None  # small batches waiting for flush()
        self._ends: list[int] = []  # where each waiting batch ends in _buf

    def __getstate__(self) -> dict[str, object]:
        self.flush()  # a copy holds every value seen, none of them still pending
        return {k: v for k, v in self.__dict__.items() if k not in ("_buf", "_ends")}

    def __setstate__(self, state: dict[str, object]) -> None:
        # a copied or unpickled histogram has its own counts array: take its address anew
        self.__dict__.update(state)
        self._counts_pointer = self.counts.ctypes.data
        self._buf, self._ends = None, []

    def coarsened(self, k: int) -> Histogram:
        """This histogram at ``k`` times the bin width (``bins // k`` bins; ``k`` divides
        ``bins``): the counts binning at the coarser width would give, as when the width
        grows."""
        if k < 1 or self.bins % k:
            raise ValueError(f"{k} does not divide the {self.bins} bins")
        self.flush()
        out = Histogram(self.bins // k, native=self.native)
        out.width = self.width * k
        out.pos[:] = self.pos.reshape(-1, k).sum(axis=1)
        out.neg[:] = self.neg.reshape(-1, k).sum(axis=1)
        out.counts[out.bins] = self.zeros
        out.min, out.max, out.nonfinite = self.min, self.max, self.nonfinite
        return out

    @property
    def pos(self) -> np.ndarray:
        """Counts of ``x`` per positive bin (a view)."""
        return self.counts[self.bins + 1:]

    @property
    def neg(self) -> np.ndarray:
        """Counts of ``-x`` per bin for negative ``x`` (a view)."""
        return self.counts[self.bins - 1::-1]

    @property
    def zeros(self) -> int:
        """How many exact zeros were seen."""
        return int(self.counts[self.bins])

    @property
    def edge(self) -> float:
        return self.bins * self.width

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def state_nbytes(self) -> int:
        return self.counts.nbytes + 5 * 8 + (self._buf.nbytes if self._buf is not None else 0)

    def defer(self, x: np.ndarray) -> None:
        """:meth:`update` with ``x``, later: a small batch is copied to a buffer of at most
        DEFER_ELEMENTS values, and :meth:`flush` folds the waiting batches in with the
        counts, extremes and widths that one :meth:`update` per batch, in order, gives
        (calibrating a small model is bound by the cost of each call, not by its values).
        Whoever reads the histogram calls :meth:`flush` first."""
        a = _as_float(x)
        n = a.size
        if n == 0:
            return
        if n > DEFER_MAX or not self.native:
            self.flush()
            self.update(a)
            return
        buf, fill = self._buf, self._ends[-1] if self._ends else 0
        if buf is None or buf.dtype != a.dtype or fill + n > buf.size:
            self.flush()
            fill = 0
            if buf is None or buf.dtype != a.dtype or n > buf.size:
                buf = self._buf = np.empty(min(DEFER_ELEMENTS, DEFER_BATCHES * n), a.dtype)
        buf[fill:fill + n] = a
        self._ends.append(fill + n)

    def flush(self) -> None:
        """Fold in the batches :meth:`defer` keeps waiting: their extremes in two numpy
        calls, then one counting call per run of batches that share a bin width (a batch
        beyond the histogram's edge folds the counts before it, as in :meth:`update`)."""
        ends, buf = self._ends, self._buf
        if not ends or buf is None:
            return
        self._ends = []
        starts = [0, *ends[:-1]]
        x = buf[:ends[-1]]
        los = np.minimum.reduceat(x, starts).tolist()
        his = np.maximum.reduceat(x, starts).tolist()
        run = -1  # where the batches being counted at the current width start in x

        def count(to: int) -> None:
            if run >= 0 and to > run:
                add_counts(x[run:to], self.width, self.bins, self._counts_pointer)

        for start, end, lo, hi in zip(starts, ends, los, his):
            lo, hi = lo + 0.0, hi + 0.0  # -0.0 as +0.0
            if not (math.isfinite(lo) and math.isfinite(hi)):  # NaN/inf: update() drops them
                count(start)
                run = -1
                self.update(x[start:end])
                continue
            self.min, self.max = min(self.min, lo), max(self.max, hi)
            amax = max(-lo, hi)
            if amax == 0.0:  # all zeros: counted apart, whatever the width
                if run < 0:
                    self.counts[self.bins] += end - start
                continue
            if self.width == 0.0:
                self.width = max(amax / self.bins, MIN_SCALE * 1e-10)
            elif amax > self.edge:
                count(start)
                run = -1
                self._grow(amax)
            if run < 0:
                run = start
        count(ends[-1])

    def update(self, x: np.ndarray) -> None:
        a = _as_float(x)
        if a.size == 0:
            return
        # in C, one pass for the extremes and, when they fit the bins, the counting
        fast = update_counts(a, self.width, self.bins, self._counts_pointer) \
            if self.native else None
        if fast is not None:
            lo, hi, binned = fast
            self.min, self.max = min(self.min, lo), max(self.max, hi)
            if binned:
                return
        else:
            lo, hi = float(a.min()) + 0.0, float(a.max()) + 0.0  # + 0.0: -0.0 as +0.0
            if not (math.isfinite(lo) and math.isfinite(hi)):  # NaN/inf: counted, dropped
                a = _finite(self, a)
                if a.size == 0:
                    return
                lo, hi = float(a.min()) + 0.0, float(a.max()) + 0.0
            self.min, self.max = min(self.min, lo), max(self.max, hi)
        amax = max(-lo, hi)
        if amax == 0.0:  # all zeros
            self.counts[self.bins] += a.size
            return
        if self.width == 0.0:
            self.width = max(amax / self.bins, MIN_SCALE * 1e-10)
        elif amax > self.edge:
            self._grow(amax)
        # One signed bin code per value (numpy_signed_counts), counted in C when the
        # library is built (compiler/quant/native_hist.py), else by numpy: the same counts.
        if not (self.native and add_counts(a, self.width, self.bins, self._counts_pointer)):
            self.counts += numpy_signed_counts(a, self.width, self.bins)

    def _grow(self, amax: float) -> None:
        ratio = amax / self.edge
        if not ratio < self.bins:
            # k >= bins: every old value lands in bin 0 of a histogram sized afresh.
            fold = np.zeros(self.bins, dtype=np.int64)
            width = amax / self.bins
        else:
            k = math.ceil(ratio)
            while k * self.edge < amax:  # guard against rounding in the division
                k += 1
            fold = np.arange(self.bins) // k
            width = self.width * k
        pos = np.bincount(fold, weights=self.pos, minlength=self.bins).astype(np.int64)
        neg = np.bincount(fold, weights=self.neg, minlength=self.bins).astype(np.int64)
        self.pos[:], self.neg[:] = pos, neg
        self.width = width

    def magnitudes(self) -> np.ndarray:
        """Counts of ``|x|`` per bin, exact zeros left out."""
        return self.pos + self.neg

    def quantile_abs(self, q: float) -> float:
        """The ``q`` quantile (0..1) of ``|x|``, interpolated linearly inside its bin."""
        counts = np.concatenate(([self.zeros], self.pos + self.neg))
        b, frac = _quantile_bin(counts, np.cumsum(counts), q)
        return float(0.0 if b == 0 else (b - 1) * self.width) + \
            (0.0 if b == 0 else self.width) * frac

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (0..1) of the signed values."""
        return self.quantiles(q)[0]

    def quantiles(self, *qs: float) -> list[float]:
        """:meth:`quantile` of each of ``qs``, from one pass over the counts."""
        n, w = self.bins, self.width
        counts = np.concatenate((self.neg[::-1], [self.zeros], self.pos))
        cum = np.cumsum(counts)
        out = []
        for q in qs:
            b, frac = _quantile_bin(counts, cum, q)
            # bin b's left edge and width: n negative bins, the zeros, n positive bins
            left, width = (-(n - b) * w, w) if b < n else (0.0, 0.0) if b == n else \
                ((b - n - 1) * w, w)
            out.append(float(left + width * frac))
        return out


def _quantile_bin(counts: np.ndarray, cum: np.ndarray, q: float) -> tuple[int, float]:
    """The bin holding the ``q`` quantile of ``counts`` (``cum`` their running sums) and
    how far into it (0..1) the quantile lies, for linear interpolation."""
    target = q * float(cum[-1])
    b = int(np.searchsorted(cum, target, side="left"))
    b = min(b, len(counts) - 1)
    while counts[b] == 0 and b + 1 < len(counts):  # target == 0 lands on empty leading bins
        b += 1
    frac = (target - (cum[b] - counts[b])) / counts[b] if counts[b] else 0.0
    return b, min(max(float(frac), 0.0), 1.0)


class _HistogramObserver(Observer):
    def __init__(self, bins: int = 2048, symmetric: bool = False) -> None:
        self._hist = Histogram(bins)
        self.symmetric = symmetric

    @property
    def hist(self) -> Histogram:
        """The histogram, every batch given to :meth:`update` folded in."""
        self._hist.flush()
        return self._hist

    @hist.setter
    def hist(self, value: Histogram) -> None:
        self._hist = value

    def update(self, x: np.ndarray) -> None:
        self._hist.defer(x)

    def state_nbytes(self) -> int:
        return self.hist.state_nbytes()

    def extremes(self) -> tuple[float, float]:
        return _with_zero(self.hist.min, self.hist.max)

    def seen(self) -> tuple[float, float]:
        return self.hist.min, self.hist.max

    def range(self) -> tuple[float, float]:
        h = self.hist
        if h.min > h.max:
            return 0.0, 0.0
        if h.width == 0.0:  # only zeros seen
            return _with_zero(h.min, h.max)
        lo, hi = self._choose()
        lo, hi = max(lo, h.min), min(hi, h.max)
        return (lo if lo < 0 else 0.0), (hi if hi > 0 else 0.0)

    @abstractmethod
    def _choose(self) -> tuple[float, float]:
        """The method's range, before clamping to the observed extremes."""


class PercentileObserver(_HistogramObserver):
    """Clip the rarest ``100 - percentile`` percent (see the module docstring for which)."""

    def __init__(self, percentile: float = DEFAULT_PERCENTILE, bins: int = 2048,
                 symmetric: bool = False) -> None:
        super().__init__(bins, symmetric)
        if (problem := percentile_problem(percentile)) is not None:
            raise ValueError(problem)
        self.percentile = percentile

    def _choose(self) -> tuple[float, float]:
        q = self.percentile / 100.0
        if self.symmetric:
            t = self.hist.quantile_abs(q)
            return -t, t
        lo, hi = self.hist.quantiles(1.0 - q, q)
        return lo, hi


class EntropyObserver(_HistogramObserver):
    """KL-divergence calibration (after TensorRT's description), on the histogram of ``|x|``.

    For each candidate threshold ``i`` bins wide (from ``levels`` bins up to all of them): the
    reference P is the first ``i`` bins with every count beyond them added to bin ``i - 1``
    (clipped values saturate there); the candidate Q merges the first ``i`` bins into
    ``levels`` groups and spreads each group's count evenly over the group's bins that are
    non-empty in P. Both are normalised and smoothed (empty bins get ``eps``, the others shrink
    to keep the sum 1), and the threshold ``i * width`` with the smallest KL(P || Q) wins.

    ``levels`` is 128 — one side of an int8 range — unless the tensor is asymmetric-quantised
    and never negative: then all 256 codes of u8/i8 lie on the positive side. Exact zeros are
    left out of the histogram: they quantise exactly whatever the threshold, and a ReLU
    output's spike of zeros would otherwise dominate the divergence of the first group and
    drag the threshold down for no accuracy gain.
    """

    EPS = EPS

    def __init__(self, bins: int = 2048, symmetric: bool = False) -> None:
        if bins < 256:
            raise ValueError("entropy calibration needs at least 256 bins")
        super().__init__(bins, symmetric)

    def levels(self) -> int:
        return self.levels_for(self.symmetric, self.hist.min)

    @staticmethod
    def levels_for(symmetric: bool, lowest: float) -> int:
        """The codes of one side of the range: all 256 of u8/i8 where an asymmetric tensor
        is never negative (``lowest`` its minimum), else 128."""
        return 256 if not symmetric and lowest >= 0 else 128

    def _choose(self) -> tuple[float, float]:
        t = self.threshold()
        return -t, t

    def threshold(self, stride: int = 1) -> float:
        """The threshold of least divergence among every candidate (``stride`` 1), or, with
        a larger ``stride``, among every ``stride``-th candidate and then every candidate
        next to the best of those: about ``stride`` times cheaper, and a local minimum of
        the same curve where it is not the global one."""
        hist = self.hist.magnitudes().astype(np.float64)
        return least_divergence([hist], [self.levels()], stride)[0] * self.hist.width


class MseObserver(_HistogramObserver):
    """The range minimising the expected squared error over the histogram.

    Values inside the range cost ``step**2 / 12`` each (uniform rounding noise; exact zeros
    cost nothing since 0 is exactly representable), values beyond it cost their squared
    distance to the edge (magnitudes taken at bin centres). Symmetric: step = t / 127 with one
    threshold t searched over every bin edge. Asymmetric: step = (hi - lo) / 255 with hi and lo
    searched jointly over up to ``GRID`` + 1 edges per side.
    """

    GRID = 512

    def _choose(self) -> tuple[float, float]:
        h = self.hist
        if self.symmetric:
            edges, clip, inside = _clip_costs(h.pos + h.neg, h.width, None)
            cost = clip + inside * (edges / 127.0) ** 2 / 12.0
            t = float(edges[int(np.argmin(cost))])
            return -t, t
        edges, clip_hi, in_hi = _clip_costs(h.pos, h.width, self.GRID)
        _, clip_lo, in_lo = _clip_costs(h.neg, h.width, self.GRID)
        span = edges[:, None] + edges[None, :]
        cost = clip_hi[:, None] + clip_lo[None, :]
        cost = cost + (in_hi[:, None] + in_lo[None, :]) * (span / 255.0) ** 2 / 12.0
        a, b = np.unravel_index(int(np.argmin(cost)), cost.shape)
        return -float(edges[b]), float(edges[a])


def _clip_costs(
    counts: np.ndarray, width: float, grid: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For thresholds at bin edges ``k * width``: the squared clipping error of the bins
    beyond ``k`` and the count of values kept inside (exact zeros excluded)."""
    n = len(counts)
    ks = np.arange(n + 1) if grid is None else np.unique(np.linspace(0, n, grid + 1).round())
    ks = ks.astype(np.int64)
    c = counts.astype(np.float64)
    centres = (np.arange(n) + 0.5) * width

    def suffix(v: np.ndarray) -> np.ndarray:
        return np.concatenate((np.cumsum(v[::-1])[::-1], [0.0]))

    s0, s1, s2 = suffix(c), suffix(c * centres), suffix(c * centres**2)
    t = ks * width
    clip = np.maximum(s2[ks] - 2.0 * t * s1[ks] + t * t * s0[ks], 0.0)
    return t, clip, s0[0] - s0[ks]


def make_observer(
    method: str, *, percentile: float = DEFAULT_PERCENTILE, symmetric: bool = False,
    bins: int = 2048,
) -> Observer:
    """An observer for ``method`` ("minmax", "percentile", "entropy" or "mse")."""
    if method == "minmax":
        return MinMaxObserver()
    if method == "percentile":
        return PercentileObserver(percentile, bins, symmetric)
    if method == "entropy":
        return EntropyObserver(bins, symmetric)
    if method == "mse":
        return MseObserver(bins, symmetric)
    raise ValueError(f"unknown calibration method {method!r}")


def qrange(scheme: Scheme) -> tuple[int, int]:
    """The integer codes a scheme uses. Symmetric i8 leaves -128 out, as weights do."""
    if scheme not in _QRANGE:
        raise ValueError(f"unknown quantisation scheme {scheme!r}; use one of {SCHEMES}")
    return _QRANGE[scheme]


def quant_params(lo: float, hi: float, scheme: Scheme = "u8") -> tuple[float, int]:
    """(scale, zero_point) covering [lo, hi] with ``real = scale * (q - zero_point)``, for a
    scheme name: ``u8`` and ``i8`` affine over all 256 codes, ``i8sym`` zero point 0 and
    [-127, 127]. The one definition is :func:`ir.qmath.choose_qparams`."""
    qrange(scheme)  # validates the scheme name
    dtype = DType.u8 if scheme == "u8" else DType.i8
    return qmath.choose_qparams(float(lo), float(hi), dtype, symmetric=scheme == "i8sym")


def to_quant_params(lo: float, hi: float, scheme: Scheme = "u8") -> QuantParams:
    """:func:`quant_params` as the IR's per-tensor :class:`QuantParams`."""
    scale, zero_point = quant_params(lo, hi, scheme)
    return QuantParams.per_tensor(scale, zero_point)


def numpy_signed_counts(a: np.ndarray, width: float, bins: int) -> np.ndarray:
    """Counts of each value's signed bin code ceil(|x| / width), with the sign of x and
    clipped to [-bins, bins], at index ``bins + code``: the negative bins reversed, the exact
    zeros (code 0: an exact zero), then the positive bins, where +i holds
    (i-1)*width < x <= i*width and -i its mirror. ``a`` is finite float32/float64."""
    t = np.divide(a, a.dtype.type(width))
    np.abs(t, out=t)
    np.ceil(t, out=t)
    np.copysign(t, a, out=t)
    t += bins
    np.clip(t, 0, 2 * bins, out=t)  # the largest value may round one bin past the edge
    return np.bincount(t.astype(np.intp), minlength=2 * bins + 1)


def _as_float(x: np.ndarray) -> np.ndarray:
    """``x`` flattened as float32/float64 (float16 widened so that bin indices stay exact up
    to 2048, integers as float64); no copy for float32/float64."""
    a = np.asarray(x)
    if a.dtype.kind != "f":
        a = a.astype(np.float64)
    elif a.dtype.itemsize < 4:
        a = a.astype(np.float32)
    return a.ravel()


def _finite(owner: MinMaxObserver | Histogram, x: np.ndarray) -> np.ndarray:
    """``x`` flattened (:func:`_as_float`) without its NaN/inf entries, which are counted
    on ``owner``."""
    a = _as_float(x)
    ok = np.isfinite(a)
    if not ok.all():
        owner.nonfinite += int(a.size - np.count_nonzero(ok))
        a = a[ok]
    return a


def _with_zero(lo: float, hi: float) -> tuple[float, float]:
    """(lo, hi) widened to contain 0 (as +0.0: a -0.0 bound would print oddly)."""
    if lo > hi:
        return 0.0, 0.0
    return (float(lo) if lo < 0 else 0.0), (float(hi) if hi > 0 else 0.0)
