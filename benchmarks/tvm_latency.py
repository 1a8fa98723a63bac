"""The tvm target beside qnnc's host C and onnxruntime, in one process, on the same input.

For each model (default: the tiny CNN and SqueezeNet examples, and the trained corpus models
PP-OCR cls and Silero VAD on realistic inputs: benchmarks.corpus_feeds, the samples
host_latency uses), INT8 on the same calibration samples:

- **qnnc host**: ``compile_model(..., target="host")``, qnnc's own C (AVX2 on this CPU);
- **tvm**: ``compile_model(..., target="tvm")``, the same quantised graph lowered to Relax
  and TIR and built by TVM's LLVM backend with its default schedules;
- **tvm tuned**: the same with ``tune=N`` MetaSchedule trials (``--trials``, 0 leaves the
  column out; the database is cached, so a second run reuses it);
- **ORT int8** / **ORT f32**: onnxruntime's ``quantize_static`` (QDQ, per-channel, MinMax)
  on the same samples, and the float model.

Everything runs on one thread (``--threads``). Latencies are medians of interleaved rounds
after warm-up (benchmarks.common.time_interleaved). It also checks the tvm builds' outputs
against the host build's: integer outputs exactly, float ones (after a float island such as
a final Softmax) within a relative 1e-5.

    python -m benchmarks.tvm_latency [--models tiny_cnn,squeezenet] [--trials 64]
        [--calib 8] [--budget 6]

Speeds are judged on a quiet machine only: the load average is printed before and after,
with a warning when it is above 1. Tuning takes minutes per model (it says how many first).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from benchmarks.common import fmt, format_table, load_average, machine_line, time_interleaved
from benchmarks.corpus_feeds import CORPUS, fixed_model, timing_samples
from compiler.api import compile_model
from compiler.examples import EXAMPLES, build_example
from compiler.ort_compare import ort_quantize, ort_session

MODELS = ["tiny_cnn", "squeezenet", "cls", "vad"]
COLUMNS = ["qnnc host", "tvm", "tvm tuned", "ORT int8", "ORT f32"]
Feeds = dict[str, np.ndarray]
#: float outputs come from float islands (a final Softmax), computed by each backend's own
#: float code: equal within this relative tolerance; integer outputs exactly
FLOAT_RTOL = 1e-5


def feeds_for(model: Any, n: int, seed: int) -> list[Feeds]:
    """``n`` N(0, 1) samples of the model's (static) inputs."""
    rng = np.random.default_rng(seed)
    inits = {t.name for t in model.graph.initializer}
    out = []
    for _ in range(n):
        f = {}
        for i in model.graph.input:
            if i.name in inits:
                continue
            shape = [d.dim_value for d in i.type.tensor_type.shape.dim]
            f[i.name] = rng.standard_normal(shape).astype(np.float32)
        out.append(f)
    return out


def measure(name: str, trials: int, n_calib: int, budget: float, threads: int,
            say: Callable[[str], None]) -> tuple[dict[str, float | None], list[str]]:
    """Median ms per column for one model, and notes (failures, mismatches)."""
    import tempfile

    if name in CORPUS:  # a trained model on realistic inputs
        model = fixed_model(name)
        calib, x = timing_samples(name, n_calib)
    else:
        model = build_example(name)
        calib = feeds_for(model, n_calib, seed=1)
        x = feeds_for(model, 1, seed=2)[0]
    notes: list[str] = []
    runs: dict[str, Callable[[], object]] = {}
    outputs: dict[str, list[np.ndarray]] = {}

    def add(column: str, make: Callable[[], Callable[[], Any]]) -> None:
        say(f"  {name}: {column}")
        start = time.perf_counter()
        try:
            fn = make()
        except Exception as e:  # a failed contender is a reported result, not a crash
            notes.append(f"{name} {column}: {type(e).__name__}: {str(e).splitlines()[0]}")
            return
        runs[column] = fn
        say(f"    ready in {time.perf_counter() - start:.1f} s")

    quantised = compile_model(model, precision="int8", calibration=calib).graph

    def qnnc(target: str, tune: int = 0) -> Callable[[], Any]:
        def trials(done: int, total: int | None) -> None:
            say(f"    {done}/{total} trials")

        cm = compile_model(quantised, target=target, threads=threads, tune=tune,
                           tune_log=say, tune_progress=trials)
        outputs[target + (" tuned" if tune else "")] = cm.run(None, x)
        return lambda: cm.run(None, x)

    add("qnnc host", lambda: qnnc("host"))
    add("tvm", lambda: qnnc("tvm"))
    if trials:
        add("tvm tuned", lambda: qnnc("tvm", trials))
    with tempfile.TemporaryDirectory() as tmp:
        def ort(quantise: bool) -> Callable[[], Any]:
            from pathlib import Path

            source = ort_quantize(model, calib, Path(tmp)) if quantise \
                else model.SerializeToString()
            s = ort_session(source, threads)
            return lambda: s.run(None, x)

        add("ORT int8", lambda: ort(True))
        add("ORT f32", lambda: ort(False))
        timings = time_interleaved(runs, budget_s=budget)
    host = outputs.get("host")
    for key, outs in outputs.items():
        if key == "host" or host is None:
            continue
        for k, (a, b) in enumerate(zip(outs, host)):
            if a.dtype.kind in "iu" and not np.array_equal(a, b):
                notes.append(f"{name} {key}: integer output {k} DIFFERS from qnnc host's")
            elif a.dtype.kind == "f" and not np.allclose(a, b, rtol=FLOAT_RTOL,
                                                         atol=FLOAT_RTOL * np.abs(b).max()):
                notes.append(f"{name} {key}: float output {k} differs from qnnc host's by "
                             f"{np.abs(a - b).max():.3g}")
    return {c: timings[c].median_ms if c in timings else None for c in COLUMNS}, notes


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.tvm_latency",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(MODELS),
                    help=f"comma-separated examples (of {', '.join(EXAMPLES)}) and corpus "
                    f"models (of {', '.join(CORPUS)})")
    ap.add_argument("--trials", type=int, default=64,
                    help="MetaSchedule trials per model for the tuned column (0: leave it out)")
    ap.add_argument("--calib", type=int, default=8, help="calibration samples")
    ap.add_argument("--budget", type=float, default=6.0, help="seconds of timing per model")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in EXAMPLES and m not in CORPUS]
    if unknown:
        ap.error(f"unknown models {unknown}; the examples are {', '.join(EXAMPLES)}, the "
                 f"corpus models {', '.join(CORPUS)}")
    print(machine_line(), flush=True)
    before = load_average()
    rows, notes = [], []
    for name in names:
        ms, why = measure(name, args.trials, args.calib, args.budget, args.threads,
                          lambda s: print(s, flush=True))
        notes += why
        host = ms["qnnc host"]
        rows.append([name, *(fmt(ms[c]) for c in COLUMNS),
                     *(fmt(ms[c] / host) if ms[c] and host else "n/a"
                       for c in ("tvm", "tvm tuned", "ORT int8"))])
    after = load_average()
    print()
    print(format_table(["model", *(f"{c} ms" for c in COLUMNS), "tvm / host",
                        "tuned / host", "ORT int8 / host"], rows))
    print(f"\n{args.threads} thread(s); tuned: {args.trials} MetaSchedule trials per model; "
          f"load average {before:.2f} before, {after:.2f} after")
    if max(before, after) > 1.0:
        print("the load was above 1: too high to judge speeds; rerun on a quiet machine")
    for n in notes:
        print("note:", n)
    if not notes:
        print("every tvm build agreed with the host build (integers exactly, floats within "
              f"rtol {FLOAT_RTOL:g})")


if __name__ == "__main__":
    main()
