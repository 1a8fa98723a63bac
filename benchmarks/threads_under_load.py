"""A two-thread build against a one-thread build while other processes keep cores busy:
the median and the mean per run, the slowest runs, and how often a run took over four
times the one-thread build's median (a collapse: every parallel loop waiting for a thread
whose core is taken).

    python -m benchmarks.threads_under_load                       # one busy core
    python -m benchmarks.threads_under_load --busy 0              # quiet, for comparison
    python -m benchmarks.threads_under_load --models squeezenet --runs 600 --busy 2
    python -m benchmarks.threads_under_load --busy 0 --gap-ms 20 --full-team

Each model (an example model, or a trained corpus model at host_latency's shape and inputs)
is compiled once to INT8 (8 calibration samples, qnnc's defaults) and built for 1 and for 2
threads. Both builds are warmed up (the two-thread build past its per-run team's trials:
csrc/qnnc_runtime.h), then ``--busy`` processes spinning in a Python loop start, and the two
builds run in alternation, ``--gap-ms`` apart (a served model waits for requests between
runs), ``--runs`` times each. Every run is timed; nothing is dropped. Goal: the two-thread
build no slower than the one-thread build, in median and in mean, with a busy core. The
last column says how many of the two-thread build's timed runs its per-run team gave one
thread (CompiledModel.team_runs). ``--full-team`` keeps the two-thread build's full team on
every run (QNNC_ADAPTIVE_THREADS=0), to show what the per-run team protects against. The
script says when the machine was already loaded before it started (then the cores were
busier than ``--busy`` says). These are measurements for reports, not test assertions.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

import numpy as np

from benchmarks.common import format_table, load_average, machine_line
from benchmarks.host_latency import model_and_samples, timed_compile
from compiler.api import compile_model

DEFAULT_MODELS = ("squeezenet", "shufflenet", "mobilenetv2", "cls", "vad")
COLLAPSE = 4.0  # a run over this many times the one-thread build's median
SPIN = "while True:\n    pass\n"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def builds(name: str, cache: str) -> tuple[dict[int, object], dict[str, np.ndarray]]:
    """{threads: compiled model} for 1 and 2 threads, and one input."""
    model, calib, feeds = model_and_samples(name)
    one, _ = timed_compile(model, calib, "percentile", 1, cache)
    two = compile_model(one.graph, pipeline=[], target="host", threads=2, cache_dir=cache)
    return {1: one, 2: two}, feeds


def measure(models: dict[int, object], feeds: dict[str, np.ndarray], runs: int,
            gap_s: float) -> dict[int, np.ndarray]:
    """Milliseconds of every run of each build, alternating."""
    times: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(runs):
        for k, m in models.items():
            time.sleep(gap_s)
            t = time.perf_counter()
            m.run(None, feeds)  # type: ignore[attr-defined]
            times[k].append((time.perf_counter() - t) * 1e3)
    return {k: np.array(v) for k, v in times.items()}


def row(name: str, k: int, ms: np.ndarray, base: float) -> list[str]:
    return [name, str(k), f"{np.median(ms):.3f}", f"{ms.mean():.3f}",
            f"{np.percentile(ms, 99):.2f}", f"{ms.max():.2f}",
            str(int((ms > COLLAPSE * base).sum()))]


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.threads_under_load",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS),
                    help="comma-separated example or corpus models")
    ap.add_argument("--runs", type=int, default=300, help="timed runs of each build")
    ap.add_argument("--busy", type=int, default=1, help="spinning processes (default 1)")
    ap.add_argument("--gap-ms", type=float, default=5.0, help="pause before each run")
    ap.add_argument("--full-team", action="store_true",
                    help="the two-thread build runs every run with both threads (no per-run "
                         "team choice)")
    args = ap.parse_args(argv)
    if args.runs < 1 or args.busy < 0 or args.gap_ms < 0:
        ap.error("--runs must be at least 1, --busy and --gap-ms not negative")
    if args.full_team:  # read by each build at its first run
        os.environ["QNNC_ADAPTIVE_THREADS"] = "0"
    rows, ratios = [], []
    before, start_load = machine_line(), load_average()
    with tempfile.TemporaryDirectory(prefix="qnnc-load-") as cache:
        for name in [m for m in args.models.split(",") if m]:
            log(f"{name}: compiling for 1 and 2 threads")
            models, feeds = builds(name, cache)
            for _ in range(10):  # warm caches; the two-thread build past its trials
                for m in models.values():
                    m.run(None, feeds)  # type: ignore[attr-defined]
            team_before = models[2].team_runs()  # type: ignore[attr-defined]
            spinners = [subprocess.Popen([sys.executable, "-c", SPIN])
                        for _ in range(args.busy)]
            try:
                time.sleep(0.5 if spinners else 0.0)
                ms = measure(models, feeds, args.runs, args.gap_ms / 1e3)
                load = load_average()
            finally:
                for p in spinners:
                    p.kill()
                    p.wait()
            base = float(np.median(ms[1]))
            rows += [row(name, k, ms[k], base) + [f"{load:.2f}"] for k in (1, 2)]
            team_after = models[2].team_runs()  # type: ignore[attr-defined]
            ones = "n/a (built for one thread)" if team_before is None or team_after is None \
                else f"{team_after[1] - team_before[1]}/{sum(team_after) - sum(team_before)}"
            ratios.append([name, f"{np.median(ms[2]) / base:.3f}",
                           f"{ms[2].mean() / ms[1].mean():.3f}", ones])
            log(f"{name}: done")
    print(before)
    team = ", full team on every run" if args.full_team else ""
    print(f"{args.busy} busy process(es), {args.runs} runs per build, {args.gap_ms:g} ms "
          f"apart{team}; collapse = a run over {COLLAPSE:g} x the one-thread build's median")
    print(format_table(["model", "threads", "median ms", "mean ms", "p99 ms", "max ms",
                        "collapses", "load"], rows))
    print()
    print(format_table(["model", "2T/1T median", "2T/1T mean", "2T runs on 1 thread"], ratios))
    print(machine_line())
    cpus = os.cpu_count() or 1
    if start_load > max(cpus - 1, 0.5):
        print(f"load {start_load:.2f} on {cpus} CPUs before the run: other work besides the "
              f"{args.busy} spinning process(es) shared the cores, so these times are too "
              "noisy to judge")


if __name__ == "__main__":
    main()
