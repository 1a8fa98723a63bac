"""The KL-divergence threshold search of the entropy observer
(compiler.quant.observers.EntropyObserver, whose docstring defines P, Q and the candidates),
for one histogram or many at once: every candidate's divergence from prefix sums, O(levels)
a candidate, the candidates of all histograms computed together in blocks of rows, each
with the value it has alone."""

from __future__ import annotations

import math

import numpy as np

#: the smoothing of empty bins in P and Q
EPS = 1e-4


def divergences(sums: PrefixSums, which: np.ndarray, cands: np.ndarray, levels: int
                ) -> np.ndarray:
    """KL(P || Q) for each candidate width ``i`` in ``cands`` of histogram ``which`` (of
    the ones ``sums`` holds; one per candidate), from prefix sums: O(levels) per
    candidate rather than O(i). Each candidate's value depends on its own histogram
    alone, whatever else the call computes.

    With T the total count, P_j the clipped histogram (bin ``i - 1`` holding the tail),
    the smoothing factors a = 1 - eps * (empty bins of P) and b = 1 - eps * (empty bins
    of Q), and p = P / T summing to 1::

        KL = sum over P_j > 0 of a p_j (log a + log p_j - log qs_j)
           = a log a + a sum p log p - a sum p log qs

    The first sum is a prefix sum of h log h (bin ``i - 1`` replaced). Q is constant
    over a group's non-empty bins, so the second sum is, per group with a non-zero
    count G_g over n_g non-empty bins, (the group's P mass) * log(b G_g / n_g / (T -
    tail)); a non-empty P bin with an empty group (only bin ``i - 1``, through the
    tail) has qs = eps. Group g holds the bins j with floor(j * levels / i) = g, from
    ceil(g * i / levels) on."""
    i = cands.astype(np.int64)
    rows = np.arange(len(i))
    at, hat = sums.base[which], sums.hbase[which]  # where each histogram's sums start
    total = sums.total[which]
    g = np.arange(levels + 1)
    ends = g[None, :] * i[:, None] + levels - 1
    shift = levels.bit_length() - 1  # levels is a power of two: // is a shift
    ends = ends >> shift if levels == 1 << shift else ends // levels
    ends += at[:, None]
    edges = sums.csum[ends]
    gsum = edges[:, 1:] - edges[:, :-1]  # the group's counts
    edges = sums.cnz[ends]
    gcnt = edges[:, 1:] - edges[:, :-1]  # its non-empty bins
    tail = total - sums.csum[at + i]  # clipped into bin i - 1
    h_last = sums.hist[hat + i - 1]
    filled = (h_last == 0) & (tail > 0)  # bin i - 1 non-empty only through the tail
    g_last = ((i - 1) * levels) // i
    gcnt[rows, g_last] += filled
    mass = gsum.copy()
    mass[rows, g_last] += tail
    in_q = gsum > 0
    a = 1.0 - EPS * (i - (sums.cnz[at + i] + filled))
    b = 1.0 - EPS * (i - np.where(in_q, gcnt, 0.0).sum(axis=1))
    p_last = h_last + tail
    p_log_p = (sums.hlogh[at + i - 1] + _xlogx(p_last)) / total - sums.log_total[which]
    q = np.where(in_q, b[:, None] * gsum / np.maximum(gcnt, 1.0), 1.0)
    q /= np.maximum(total - tail, 1e-300)[:, None]
    cross = np.where(in_q, mass * np.log(q), 0.0).sum(axis=1)
    cross += np.where(filled & ~in_q[rows, g_last], tail * math.log(EPS), 0.0)
    return a * np.log(a) + a * p_log_p - a * cross / total


#: candidate-by-level elements one call of :func:`divergences` computes (each row's value is
#: the one it has alone, whatever the block): its float64 temporaries, 64 KB, stay in cache
#: and below malloc's mmap threshold. With 1024 rows of 128 levels (1 MB temporaries) the
#: llama example's search took 28 ms inside a compile, 10 000 page faults of them fresh
#: memory each time; at this size 14 ms and none.
ELEMENTS = 1 << 13


def least_divergence(hists: list[np.ndarray], levels: list[int], stride: int = 1,
                     ) -> list[int]:
    """For each magnitude histogram (float64 counts; none empty) and its ``levels``, the
    width in bins of :meth:`EntropyObserver.threshold`: the candidate of least KL divergence
    (the first on ties) among every ``stride``-th from ``levels`` to the last non-empty
    bin, then among the best one's neighbours; the whole histogram where it is no wider
    than ``levels``. The candidates of all histograms are computed together, many to a
    call, each with the value it has alone."""
    size = max(len(h) for h in hists)
    mags = np.zeros((len(hists), size))  # zeros after a shorter one's end change no sum
    for k, h in enumerate(hists):
        mags[k, :len(h)] = h
    lasts = size - np.argmax(mags[:, ::-1] > 0, axis=1)  # one past the last non-empty bin
    todo = np.flatnonzero(lasts > np.asarray(levels))
    best = lasts.copy()  # no more bins than levels: every candidate keeps all data
    if todo.size:
        sums = PrefixSums(mags[todo])
        low, last = np.asarray(levels)[todo], lasts[todo]
        # every stride-th candidate from levels, and the last (once)
        found = _least(sums, low, low, (last - low) // stride + 1
                       + ((last - low) % stride != 0), stride, last)
        if stride > 1:  # then the best one's neighbours
            start = np.maximum(low, found - stride + 1)
            found = _least(sums, low, start, np.minimum(last, found + stride - 1) - start + 1,
                           1, last)
        best[todo] = found
    return best.tolist()


def _least(sums: PrefixSums, levels: np.ndarray, start: np.ndarray, count: np.ndarray,
           step: int, last: np.ndarray) -> np.ndarray:
    """For each histogram ``n`` of ``sums``, of the candidates ``start[n] + j * step`` for
    ``j < count[n]`` (capped at ``last[n]``) the one of least divergence, the first on ties.
    Histograms of one ``levels`` share calls."""
    which = np.repeat(np.arange(len(count)), count)
    j = np.arange(len(which)) - np.repeat(np.cumsum(count) - count, count)
    cands = np.minimum(start[which] + j * step, last[which])
    kls = np.empty(len(which))
    for lv in np.unique(levels).tolist():
        rows = np.flatnonzero(levels[which] == lv)
        block = max(1, ELEMENTS // (lv + 1))
        for s in range(0, len(rows), block):
            r = rows[s:s + block]
            kls[r] = divergences(sums, which[r], cands[r], lv)
    firsts = np.cumsum(count) - count
    least = np.minimum.reduceat(kls, firsts)
    hits = np.flatnonzero(kls == np.repeat(least, count))
    # the first hit of each histogram (np.argmin's choice on ties)
    owner, at = np.unique(which[hits], return_index=True)
    best = np.empty(len(count), np.int64)
    best[owner] = cands[hits[at]]
    for n in np.setdiff1d(np.arange(len(count)), owner):  # a NaN divergence: argmin's pick
        best[n] = cands[firsts[n] + int(np.argmin(kls[firsts[n]:firsts[n] + count[n]]))]
    return best


def _xlogx(x: np.ndarray) -> np.ndarray:
    """x log x, 0 where x is 0."""
    return np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0)), 0.0)


class PrefixSums:
    """Prefix sums of magnitude histograms (the rows of ``hists``) for
    :func:`divergences`, one after the other: histogram ``n``'s entry ``base[n] + i``
    of each covers its bins ``[0, i)``."""

    def __init__(self, hists: np.ndarray) -> None:
        n, size = hists.shape
        self.hist = hists.reshape(-1)
        self.hbase = np.arange(n) * size
        self.base = np.arange(n) * (size + 1)  # each sum has one entry more
        zero = np.zeros((n, 1))

        def prefix(x: np.ndarray) -> np.ndarray:
            return np.concatenate((zero, np.cumsum(x, axis=1)), axis=1)

        csum = prefix(hists)
        self.csum = csum.reshape(-1)  # counts
        self.cnz = prefix(hists > 0).reshape(-1)  # non-empty bins (whole floats)
        self.hlogh = prefix(_xlogx(hists)).reshape(-1)  # h log h
        self.total = csum[:, -1].copy()
        self.log_total = np.array([math.log(t) for t in self.total.tolist()])
