"""The profiling build: a model's host C with a clock read after every top-level layer, so a
user sees which layers take the time (``qnnc bench MODEL --target host --profile``).

The layer functions are the ones the normal build runs (same kernels, flags and threads);
``qnnc_run`` only adds ``timespec_get`` after each layer (tens of nanoseconds, far below any
layer worth looking at). A layer's time is the wall-clock time from the end of the previous
layer to its own end, so it includes its OpenMP fork and join. The build is a plain shared
library called through ctypes, in a temporary folder, never in the build cache.

On a shared machine a run now and then stalls (a thread descheduled, a page reclaimed), and
one stall over ten runs would be charged to whichever layer it hit. So the figures are the
mean over the faster half of the timed runs (by their total): the layer times still add up
to the run time reported, and a stalled run does not count.
"""

from __future__ import annotations

import ctypes
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ir.errors import QnncError
from ir.graph import Graph
from targets.host.build import BuildOptions, HostRenderer, build_c_library

_PRELUDE = """\
#include <time.h>
/* the profiling build: qnnc_prof_ns[k] sums the nanoseconds of layer k over every run */
double qnnc_prof_ns[{n}];
static struct timespec qnnc_prof_last;
static void qnnc_prof_start(void) {{ timespec_get(&qnnc_prof_last, TIME_UTC); }}
static void qnnc_prof_tick(int k) {{
    struct timespec t;
    timespec_get(&t, TIME_UTC);
    qnnc_prof_ns[k] += (double)(t.tv_sec - qnnc_prof_last.tv_sec) * 1e9
                       + (double)(t.tv_nsec - qnnc_prof_last.tv_nsec);
    qnnc_prof_last = t;
}}
"""


class ProfilingRenderer(HostRenderer):
    """Host C whose qnnc_run times every top-level layer into qnnc_prof_ns."""

    profile_layers = True
    exports = ("qnnc_prof_ns",)

    def __init__(self, threads: int = 1) -> None:
        super().__init__(threads)
        self.layers = 0

    def prepare(self, graph: Any) -> None:
        self.layers = max(len(graph.nodes), 1)

    def prelude(self) -> str:
        return _PRELUDE.format(n=self.layers)


@dataclass
class LayerTimes:
    """One profile: milliseconds of each top-level node per run (the mean over the
    ``kept`` runs), of each timed run, and the outputs of the last run (the profiling build
    computes what the normal one does)."""

    per_layer_ms: list[float]
    run_ms: list[float]
    outputs: list[np.ndarray]
    #: the runs the per-layer figures average: the faster half (by total), at least one
    kept: list[int] = field(default_factory=list)

    @property
    def kept_ms(self) -> float:
        """The mean total of the kept runs: what the per-layer figures add up to."""
        return sum(self.run_ms[k] for k in self.kept) / max(len(self.kept), 1)


def faster_half(totals: list[float]) -> list[int]:
    """Indices of the faster half of ``totals`` (at least one; ties by order)."""
    order = sorted(range(len(totals)), key=lambda k: (totals[k], k))
    return sorted(order[:max(1, (len(totals) + 1) // 2)])


def profile_layers(graph: Graph, feeds: Mapping[str, np.ndarray], *, opts: BuildOptions,
                   runs: int, warmup: int = 1) -> LayerTimes:
    """Build ``graph``'s profiling C and run it ``warmup`` untimed times, then ``runs``
    timed ones. Views (nothing to move) show 0 ms."""
    with tempfile.TemporaryDirectory(prefix="qnnc-profile-") as tmp:
        lib = ctypes.CDLL(str(build_c_library(graph, Path(tmp), opts,
                                              ProfilingRenderer(opts.threads))))
        ins = [np.ascontiguousarray(feeds[v.name], dtype=v.type.dtype.np) for v in graph.inputs]
        outs = [np.empty(v.type.shape, v.type.dtype.np) for v in graph.outputs]
        in_ptrs = (ctypes.c_void_p * max(len(ins), 1))(*[a.ctypes.data for a in ins])
        out_ptrs = (ctypes.c_void_p * max(len(outs), 1))(*[a.ctypes.data for a in outs])
        n = max(len(graph.nodes), 1)
        counters = np.ctypeslib.as_array((ctypes.c_double * n).in_dll(lib, "qnnc_prof_ns"))
        each = []  # per timed run: each layer's nanoseconds
        for k in range(warmup + runs):
            before = counters.copy()
            status = lib.qnnc_run(in_ptrs, out_ptrs)
            if status != 0:
                raise QnncError(f"the profiling build's qnnc_run returned status {status}")
            if k >= warmup:
                each.append(counters - before)
        totals = [float(r.sum()) / 1e6 for r in each]
        kept = faster_half(totals)
        mean = np.mean([each[k] for k in kept], axis=0) / 1e6
        per_layer = [float(mean[i]) for i in range(len(graph.nodes))]
    return LayerTimes(per_layer, totals, outs, kept)
