"""One code path against its fallback, in whole models: the same int8 graph built twice.

``--path quad-planes`` (the default): stride-1 convolutions read from quad planes against
the im2col path (turned off by targets/c/qconv_implicit.MIN_GRID_USE above 1); the path
exists only in AVX-512 VNNI builds, so elsewhere both builds are the same code and the ratio
is noise. ``--path qadd-linear``: QAdd's exact linear form (targets/c/qadd_linear.py)
against the definition's steps, at every build level.

One int8 graph per model, built for the host with the path and without it, both loaded in
this process and timed in interleaved rounds on one thread. Prints each build's median,
their ratio, whether their outputs are the same bits, and the load.

    python -m benchmarks.conv_paths --models resnet50,densenet121,yolo,det,layout,rec
    python -m benchmarks.conv_paths --path qadd-linear --models resnet50,densenet121
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks.common import fmt, format_table, load_average, machine_line, time_interleaved
from benchmarks.host_latency import model_and_samples
from compiler.api import compile_model
from targets.c import qadd_linear, qconv_implicit

#: --path: (module, its switch, the switch's value off, the two builds' labels)
PATHS: dict[str, tuple[Any, str, object, tuple[str, str]]] = {
    "quad-planes": (qconv_implicit, "MIN_GRID_USE", 2.0, ("quad planes", "im2col")),
    "qadd-linear": (qadd_linear, "ENABLED", False, ("linear QAdd", "QAdd steps")),
}


def bench(name: str, rounds: int, path: str) -> list[object]:
    model, calib, feeds = model_and_samples(name)
    cm = compile_model(model, precision="int8", calibration=calib, target="host", threads=1)
    module, switch, off, labels = PATHS[path]
    builds = {}
    kept = getattr(module, switch)
    try:
        for label, value in zip(labels, (kept, off)):
            setattr(module, switch, value)
            cm.graph.name = f"conv_paths_{label.replace(' ', '_')}"  # a build key of its own
            builds[label] = compile_model(cm.graph, pipeline=[], target="host", threads=1,
                                          cache_dir=tempfile.mkdtemp())
    finally:
        setattr(module, switch, kept)
    a, b = (c.run(None, feeds) for c in builds.values())
    same = all(np.array_equal(x, y) for x, y in zip(a, b))
    t = time_interleaved({k: (lambda c=c: c.run(None, feeds)) for k, c in builds.items()},
                         warmup=5, repeat=rounds)
    on, without = (t[k].median_ms for k in labels)
    return [name, fmt(on, 3), fmt(without, 3), fmt(on / without, 3), "yes" if same else "NO",
            fmt(load_average())]


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="resnet50,densenet121,yolo,det,layout,rec",
                    help="comma-separated example names or corpus models")
    ap.add_argument("--path", choices=sorted(PATHS), default="quad-planes",
                    help="the code path to time against its fallback")
    ap.add_argument("--rounds", type=int, default=40, help="timed rounds of each build")
    args = ap.parse_args(argv)
    print(machine_line())
    rows = [bench(m, args.rounds, args.path) for m in args.models.split(",") if m]
    on, off = PATHS[args.path][3]
    print(format_table(["model", f"{on} ms", f"{off} ms", "ratio", "same bits", "load"], rows))
    if load_average() > 1:
        print("the load was above 1: too high to judge speeds; rerun on a quiet machine")


if __name__ == "__main__":
    main()
