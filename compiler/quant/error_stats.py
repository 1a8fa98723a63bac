"""Streaming error statistics of a quantised tensor against its float reference, for the
accuracy report (compiler/quant/accuracy.py): running sums for SQNR and cosine, and for a
tensor with one set of quantisation parameters how much of the reference falls outside its
representable range and each channel's largest magnitude. Bounded state per tensor: nothing
grows with the number of samples."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class ErrorStats:
    """Streaming sums comparing a reference tensor with an approximation of it."""

    sum_ref2: float = 0.0
    sum_got2: float = 0.0
    sum_dot: float = 0.0
    sum_err2: float = 0.0
    max_err: float = 0.0
    count: int = 0

    def update(self, ref: np.ndarray, got: np.ndarray) -> None:
        r = np.asarray(ref, dtype=np.float64).reshape(-1)
        g = np.asarray(got, dtype=np.float64).reshape(-1)
        if r.shape != g.shape:
            raise ValueError(f"cannot compare tensors of {r.size} and {g.size} elements")
        e = r - g
        self.sum_ref2 += float(r @ r)
        self.sum_got2 += float(g @ g)
        self.sum_dot += float(r @ g)
        self.sum_err2 += float(e @ e)
        if e.size:
            self.max_err = max(self.max_err, float(np.max(np.abs(e))))
        self.count += r.size

    @property
    def sqnr_db(self) -> float:
        """+inf when exact; −inf when the reference is all zero but the approximation not."""
        if self.sum_err2 == 0.0:
            return math.inf
        if self.sum_ref2 == 0.0:
            return -math.inf
        return 10.0 * math.log10(self.sum_ref2 / self.sum_err2)

    @property
    def cosine(self) -> float:
        """1.0 when both tensors are all zero (identical), 0.0 when only one is."""
        if self.sum_ref2 == 0.0 or self.sum_got2 == 0.0:
            return 1.0 if self.sum_ref2 == self.sum_got2 else 0.0
        return self.sum_dot / math.sqrt(self.sum_ref2 * self.sum_got2)

    @property
    def rms(self) -> float:
        """The reference's root mean square."""
        return math.sqrt(self.sum_ref2 / self.count) if self.count else 0.0


@dataclass(frozen=True)
class TensorParams:
    """The per-tensor parameters a quantised counterpart is stored with."""

    scale: float
    zero_point: int
    qmin: int
    qmax: int

    @property
    def lo(self) -> float:
        """The smallest representable value, s·(qmin − z), as float32 dequantisation gives it."""
        return float(np.float32(self.qmin - self.zero_point) * np.float32(self.scale))

    @property
    def hi(self) -> float:
        """The largest representable value, s·(qmax − z)."""
        return float(np.float32(self.qmax - self.zero_point) * np.float32(self.scale))


@dataclass
class RangeStats:
    """Streaming figures of a reference tensor against the range its per-tensor counterpart
    can represent: clipped values and their error, the extremes, and the largest |x| per
    channel along ``channel_axis`` (None: no channel measure)."""

    params: TensorParams
    channel_axis: int | None = None
    clipped: int = 0
    clipped_err2: float = 0.0
    ref_min: float = math.inf
    ref_max: float = -math.inf
    channel_max: np.ndarray | None = None

    def update(self, ref: np.ndarray, got: np.ndarray) -> None:
        r = np.asarray(ref)
        if r.size == 0:
            return
        lo, hi = self.params.lo, self.params.hi
        outside = (r < lo) | (r > hi)
        n = int(np.count_nonzero(outside))
        if n:
            e = r[outside].astype(np.float64) - np.asarray(got)[outside].astype(np.float64)
            self.clipped += n
            self.clipped_err2 += float(e @ e)
        self.ref_min = min(self.ref_min, float(np.min(r)))
        self.ref_max = max(self.ref_max, float(np.max(r)))
        if self.channel_axis is not None:
            a = np.abs(r)
            m = a.max(axis=tuple(k for k in range(a.ndim) if k != self.channel_axis))
            m = m.astype(np.float64)
            self.channel_max = m if self.channel_max is None else np.maximum(self.channel_max, m)

    @property
    def outlier_ratio(self) -> float | None:
        """The largest per-channel max|x| over the median one, over the channels that are
        not zero throughout; None with fewer than two such channels."""
        if self.channel_max is None:
            return None
        live = self.channel_max[self.channel_max > 0]
        if live.size < 2:
            return None
        return float(live.max() / np.median(live))


def channel_axis(shape: tuple[int, ...]) -> int | None:
    """The channel axis of an activation for the outlier-channel measure: 1 of [N, C, H, W],
    the last of [B, T, C] and of [T, C] (T > 1); None for other shapes."""
    if len(shape) == 4:
        return 1
    if len(shape) == 3 or (len(shape) == 2 and shape[0] > 1):
        return len(shape) - 1
    return None
