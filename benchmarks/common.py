"""Timing helpers shared by the benchmark scripts.

Benchmarks here compare implementations on a machine that may be busy with other work, so
the helpers are built to make comparisons fair rather than to squeeze out a best case:

- :func:`time_interleaved` runs the contenders in rounds (A, B, C, A, B, C, ...) after a
  warm-up, so a burst of background load hits all of them alike, and reports the median.
- :func:`adaptive_repeat` picks how many rounds fit a time budget, so a 2 ms model gets many
  samples and a 400 ms model a few, and a full run stays within minutes.
- :func:`blas_threads` pins numpy's BLAS (used by the reference interpreter during
  calibration) so it does not compete with the code being timed.
- :func:`format_table` prints aligned columns; :func:`machine_line` records the load average,
  because a timing taken under load says little without it.

Nothing here asserts on a time: the numbers are for reports, never test verdicts.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass
class Timing:
    """Wall-clock samples of one contender, in seconds."""

    samples: list[float] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples) * 1e3 if self.samples else math.nan

    @property
    def min_ms(self) -> float:
        return min(self.samples) * 1e3 if self.samples else math.nan

    @property
    def runs(self) -> int:
        return len(self.samples)


def time_once(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def adaptive_repeat(seconds_per_round: float, budget_s: float, lo: int = 3, hi: int = 50) -> int:
    """Rounds that fit ``budget_s`` when one round takes ``seconds_per_round``, in [lo, hi]."""
    if seconds_per_round <= 0:
        return hi
    return max(lo, min(hi, int(budget_s / seconds_per_round)))


def time_interleaved(
    fns: Mapping[str, Callable[[], object]],
    *,
    warmup: int = 2,
    repeat: int | None = None,
    budget_s: float = 8.0,
    gap_s: float = 0.0,
) -> dict[str, Timing]:
    """Median-ready timings of every contender, measured in interleaved rounds.

    Each function is called ``warmup`` times first (at least once: the last warm-up call
    also sizes the run). ``repeat`` fixes the number of timed rounds; None chooses it with
    :func:`adaptive_repeat` from the warm-up times and ``budget_s``. ``gap_s`` is an
    untimed pause before each call (lets another runtime's spinning threads go idle).
    """
    last: dict[str, float] = {}
    for name, fn in fns.items():
        for _ in range(max(1, warmup)):
            last[name] = time_once(fn)
    rounds = repeat if repeat is not None else adaptive_repeat(sum(last.values()), budget_s)
    out = {name: Timing() for name in fns}
    for _ in range(max(1, rounds)):
        for name, fn in fns.items():
            if gap_s > 0:
                time.sleep(gap_s)
            out[name].samples.append(time_once(fn))
    return out


@contextlib.contextmanager
def blas_threads(n: int | None) -> Iterator[str]:
    """Limit BLAS (numpy's OpenBLAS/MKL) to ``n`` threads inside the block; yields a
    description. Uses threadpoolctl when installed; otherwise leaves BLAS alone and says so
    (set OPENBLAS_NUM_THREADS / OMP_NUM_THREADS before starting Python instead)."""
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        yield "BLAS threads: default (threadpoolctl not installed)"
        return
    if n is None:
        counts = sorted({p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"})
        yield f"BLAS threads: {counts or 'unknown'} (default)"
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield f"BLAS threads: {n}"


def geomean(xs: Iterable[float]) -> float:
    """Geometric mean of the positive, finite values (nan when there are none)."""
    vals = [x for x in xs if x > 0 and math.isfinite(x)]
    if not vals:
        return math.nan
    return math.exp(sum(math.log(x) for x in vals) / len(vals))


def fmt(x: float | None, digits: int = 2) -> str:
    """A number for a table cell; None or nan prints as n/a."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    return f"{x:.{digits}f}"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns sized to their widest cell; the first column left-aligned, the rest right."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: list[str]) -> str:
        parts = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])


def load_average() -> float:
    """The 1-minute load average (nan where the OS does not report one)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return math.nan


def machine_line() -> str:
    """CPU count, architecture and the 1-minute load average (timings depend on all three)."""
    return (f"machine: {platform.machine()}, {os.cpu_count()} CPUs, "
            f"load average (1 min) {fmt(load_average())}")
