"""How fast the reference interpreter runs the light model zoo onnx ships.

The interpreter is the oracle every generated kernel is checked against, and calibration runs
it over many inputs, so it has to stay usable on real CNNs (ResNet-50 in a few seconds).
Prints, per model (ResNet-50 first): import time, the median of a few timed runs after one
warm-up run, and the slowest op types of one run. Not a test: timings vary by machine.

    python -m benchmarks.interpreter_speed [--runs N] [--models resnet50,vgg19] [--blas-threads 1]

On a machine that other jobs keep busy, OpenBLAS's worker threads wait on each other and a
convolution can run several times slower than on one thread: try --blas-threads 1.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx.backend.test.runner import Runner

from benchmarks.common import blas_threads
from compiler.frontend.importer import import_model
from ir.graph import Graph, Node
from ir.interpreter import run as interpret

LIGHT_DIR = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
MODELS = ["resnet50", "squeezenet", "shufflenet", "inception_v1", "inception_v2",
          "densenet121", "vgg19", "bvlc_alexnet", "zfnet512"]


def feeds_for(model: onnx.ModelProto, name: str) -> dict[str, np.ndarray]:
    """The input onnx's backend runner gives these models (deterministic dummy data)."""
    inits = {t.name for t in model.graph.initializer}
    return {x.name: Runner.generate_dummy_data(x, seed=0, name=name, random=False)
            for x in model.graph.input if x.name not in inits}


def op_profile(graph: Graph, feeds: dict[str, np.ndarray]) -> dict[str, float]:
    """Seconds per op type in one run (timed between consecutive node completions)."""
    per_op: dict[str, float] = defaultdict(float)
    last = [time.perf_counter()]

    def observe(node: Node, outs: list[np.ndarray]) -> None:
        now = time.perf_counter()
        per_op[node.op] += now - last[0]
        last[0] = now

    interpret(graph, feeds, observe=observe)
    return dict(per_op)


def bench(name: str, runs: int) -> tuple[float, float, float, dict[str, float]]:
    """(import seconds, median run seconds, min run seconds, op profile) for one model."""
    model = onnx.load(str(LIGHT_DIR / f"light_{name}.onnx"))
    feeds = feeds_for(model, name)
    t0 = time.perf_counter()
    graph = import_model(model)
    t_import = time.perf_counter() - t0
    interpret(graph, feeds)  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        interpret(graph, feeds)
        times.append(time.perf_counter() - t0)
    return t_import, statistics.median(times), min(times), op_profile(graph, feeds)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="timed runs per model (median shown)")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated model names")
    ap.add_argument("--blas-threads", type=int, default=None, help="limit BLAS threads")
    args = ap.parse_args(argv)
    names = [m for m in args.models.split(",") if m]
    with blas_threads(args.blas_threads) as how:
        print(how)
        print(f"{'model':<14}{'import s':>10}{'median s':>10}{'min s':>9}   "
              "top ops (s, one run)")
        for name in names:
            t_imp, med, best, prof = bench(name, args.runs)
            top = sorted(prof.items(), key=lambda kv: -kv[1])[:3]
            tops = ", ".join(f"{op} {t:.2f}" for op, t in top)
            print(f"{name:<14}{t_imp:>10.2f}{med:>10.2f}{best:>9.2f}   {tops}", flush=True)


if __name__ == "__main__":
    main()
