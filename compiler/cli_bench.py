"""`qnnc bench`: the latency of a compiled model on this machine (median of repeated runs
after warm-up, with the spread), so a user can compare targets, precisions and threads."""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from compiler.api import CompiledModel, compile_model, load_compiled
from compiler.cli_common import progress_bar
from compiler.cli_run import build_kwargs
from compiler.errors import QnncError
from compiler.flops import graph_costs, human
from compiler.io import random_inputs

BENCH_EPILOG = """\
examples:
  qnnc bench model.onnx                                   # reference interpreter
  qnnc bench model.onnx --target host                     # generated C, one thread
  qnnc bench model.onnx --target host --threads 2 --repeat 50
  qnnc bench model.onnx --target host --precision int8 --calib calib.npz
  qnnc bench build/model                                  # a folder made by qnnc compile

The numbers are wall-clock medians on this machine; other work on it shows up in them."""


def _compiled(args: argparse.Namespace) -> CompiledModel:
    path = Path(args.model)
    if path.is_dir():
        return load_compiled(path)
    return compile_model(args.model, progress=progress_bar("calibrating"), **build_kwargs(args))


def cmd_bench(args: argparse.Namespace) -> int:
    if args.repeat < 1 or args.warmup < 0:
        raise QnncError("--repeat must be at least 1 and --warmup at least 0")
    cm = _compiled(args)
    feeds = random_inputs(cm.input_types, seed=0)
    for _ in range(args.warmup):
        cm.run(None, feeds)
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        cm.run(None, feeds)
        times.append((time.perf_counter() - start) * 1e3)
    med = statistics.median(times)
    macs = sum(c.macs for c in graph_costs(cm.graph))
    where = "host C" if cm.target == "host" else "reference interpreter"
    print(f"{args.model}: {where}, {len(cm.graph.nodes)} layers")
    print(f"latency  median {med:.3f} ms   min {min(times):.3f} ms   max {max(times):.3f} ms   "
          f"({args.repeat} runs after {args.warmup} warm-up)")
    if macs:
        print(f"compute  {human(macs)}MACs per run -> {2 * macs / med / 1e6:.2f} GOPS")
    return 0
