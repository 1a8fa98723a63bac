"""Stride-1 convolutions read from quad planes against the im2col path, in whole models.

One int8 graph per model, built twice for the host (the quad-plane path as chosen, and with
it turned off: targets/c/qconv_implicit.MIN_GRID_USE above 1), both loaded in this process
and timed in interleaved rounds on one thread. Prints each build's median, their ratio,
whether their outputs are the same bits, and the load. The path exists only in AVX-512 VNNI
builds: elsewhere both builds are the same code and the ratio is noise.

    python -m benchmarks.conv_paths --models resnet50,densenet121,yolo,det,layout,rec
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence

import numpy as np

from benchmarks.common import fmt, format_table, load_average, machine_line, time_interleaved
from benchmarks.corpus_feeds import CORPUS, fixed_model, timing_samples
from benchmarks.host_latency import samples
from compiler.api import compile_model, load_model
from compiler.examples import build_example
from targets.c import qconv_implicit


def bench(name: str, rounds: int) -> list[object]:
    if name in CORPUS:  # a trained model at its realistic shape, on realistic inputs
        model = fixed_model(name)
        calib, feeds = timing_samples(name, 8)
    else:
        model = build_example(name)
        graph = load_model(model)
        calib, feeds = samples(graph, 8, seed=1), samples(graph, 1, seed=2)[0]
    cm = compile_model(model, precision="int8", calibration=calib, target="host", threads=1)
    builds = {}
    kept = qconv_implicit.MIN_GRID_USE
    try:
        for label, use in (("quad planes", kept), ("im2col", 2.0)):
            qconv_implicit.MIN_GRID_USE = use
            cm.graph.name = f"conv_paths_{label.replace(' ', '_')}"  # a build key of its own
            builds[label] = compile_model(cm.graph, pipeline=[], target="host", threads=1,
                                          cache_dir=tempfile.mkdtemp())
    finally:
        qconv_implicit.MIN_GRID_USE = kept
    a, b = (c.run(None, feeds) for c in builds.values())
    same = all(np.array_equal(x, y) for x, y in zip(a, b))
    t = time_interleaved({k: (lambda c=c: c.run(None, feeds)) for k, c in builds.items()},
                         warmup=5, repeat=rounds)
    q, i = t["quad planes"].median_ms, t["im2col"].median_ms
    return [name, fmt(q, 3), fmt(i, 3), fmt(q / i, 3), "yes" if same else "NO",
            fmt(load_average())]


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="resnet50,densenet121,yolo,det,layout,rec",
                    help="comma-separated example names or corpus models")
    ap.add_argument("--rounds", type=int, default=40, help="timed rounds of each build")
    args = ap.parse_args(argv)
    print(machine_line())
    rows = [bench(m, args.rounds) for m in args.models.split(",") if m]
    print(format_table(["model", "quad planes ms", "im2col ms", "ratio", "same bits", "load"],
                       rows))
    if load_average() > 1:
        print("the load was above 1: too high to judge speeds; rerun on a quiet machine")


if __name__ == "__main__":
    main()
