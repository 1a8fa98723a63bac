"""An LSTM sequence model in INT8: qnnc's static quantisation next to onnxruntime's dynamic one.

The model (compiler.examples.sequence): x [T, F] → Gemm → LSTM (hidden H, T steps) → Gemm →
y [T, C], default T = 50, H = 128, random well-scaled weights with the head fitted in numpy
to a synthetic memory task (each output a leaky running average of one input feature; the
task's R² is printed too; ``--random`` keeps the head random). On the same weights:

- **qnnc int8**: ``compile_model(model, precision="int8", calibration=C, target="host")``:
  QLinear → QLSTM (int8 MACs into int32, f32 gates, h quantised per step with its calibrated
  scale) → QLinear, as C built for this machine;
- **qnnc f32**: the float model as C (the same time loop, float MACs);
- **ORT int8**: ``onnxruntime.quantization.quantize_dynamic`` (QInt8 weights; the LSTM becomes
  com.microsoft.DynamicQuantizeLSTM, the Gemms dynamically quantised MatMuls where it
  chooses to), which quantises activations at run time from their observed range;
- **ORT f32**: the float model on onnxruntime, the reference for the SQNR.

SQNR (dB) of each INT8 model against ORT f32 on ``--eval`` N(0, 1) inputs (seed 2; the
calibration set C is ``--calib`` others, seed 1), the worst and the mean. Latency: the median
of interleaved rounds (qnnc int8, qnnc f32, ORT int8, ORT f32, ...), one thread each, and
the best round (on a loaded machine the median mostly measures the other jobs). Also:
qnnc's C against the reference interpreter on the quantised graph (the integer part is exact;
the gates' expf/tanhf may move a code of h by one step, see ir/ops/qrecurrent.py).

    python -m benchmarks.lstm_int8 [--steps 50] [--hidden 128] [--calib 16] [--eval 8]
        [--repeat N] [--warmup 3] [--budget 10]

A 1-minute load average above the number of cores means other jobs share them: the script
says so next to the latencies, which then say little (the SQNR does not depend on load).
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from benchmarks.common import fmt, format_table, load_average, machine_line, time_interleaved
from benchmarks.host_latency import compare_exact, ort_session, sqnr_db
from compiler.api import compile_model
from compiler.examples.sequence import build_lstm_seq, task_r2
from ir.interpreter import run as interpret

CONTENDERS = ("qnnc int8", "qnnc f32", "ORT int8", "ORT f32")


@dataclass
class Result:
    steps: int
    hidden: int
    sqnr: dict[str, list[float]] = field(default_factory=dict)  # contender -> per input
    r2: dict[str, float] = field(default_factory=dict)  # contender -> task R², all inputs
    ms: dict[str, float] = field(default_factory=dict)  # median
    min_ms: dict[str, float] = field(default_factory=dict)  # best round: what load spares
    rounds: int = 0
    load: float = float("nan")
    exact: str = "n/a"
    qnnc_ops: dict[str, int] = field(default_factory=dict)
    ort_ops: dict[str, int] = field(default_factory=dict)


def _inputs(n: int, steps: int, features: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, steps, features)).astype(np.float32)


def bench(*, steps: int = 50, hidden: int = 128, features: int = 32, n_calib: int = 16,
          n_eval: int = 8, warmup: int = 3, repeat: int | None = None, budget_s: float = 10.0,
          folder: Path | None = None, trained: bool = True) -> Result:
    """Build, quantise both ways, compare accuracy and time; see the module doc."""
    model = build_lstm_seq(0, steps=steps, features=features, hidden=hidden, trained=trained)
    res = Result(steps, hidden)
    with tempfile.TemporaryDirectory(prefix="qnnc-lstm-") as tmp:
        work = folder or Path(tmp)
        calib = _inputs(n_calib, steps, features, 1)
        q8 = compile_model(model, precision="int8", calibration={"x": calib}, target="host",
                           cache_dir=work / "cache")
        f32 = compile_model(model, precision="f32", target="host", cache_dir=work / "cache")
        res.qnnc_ops = q8.graph.op_counts()
        src, dst = work / "lstm_f32.onnx", work / "lstm_int8_dynamic.onnx"
        onnx.save(model, src)
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(src, dst, weight_type=QuantType.QInt8)
        qmodel = onnx.load(dst)
        for n in qmodel.graph.node:
            res.ort_ops[n.op_type] = res.ort_ops.get(n.op_type, 0) + 1
        ort_f32, ort_i8 = ort_session(str(src), 1), ort_session(str(dst), 1)
        run = {
            "qnnc int8": lambda x: q8.run(None, {"x": x})[0],
            "qnnc f32": lambda x: f32.run(None, {"x": x})[0],
            "ORT int8": lambda x: ort_i8.run(None, {"x": x})[0],
            "ORT f32": lambda x: ort_f32.run(None, {"x": x})[0],
        }
        evals = _inputs(n_eval, steps, features, 2)
        outs = {k: np.stack([run[k](x) for x in evals]) for k in CONTENDERS}
        for name in CONTENDERS:
            res.r2[name] = task_r2(evals, outs[name])
            if name != "ORT f32":
                res.sqnr[name] = [sqnr_db(r, o) for r, o in zip(outs["ORT f32"], outs[name])]
        x0 = evals[0]
        want = interpret(q8.graph, {"x": x0})
        res.exact = compare_exact(q8.run(None, {"x": x0}), [want[n] for n in q8.output_names])
        times = time_interleaved({k: (lambda f=run[k]: f(x0)) for k in CONTENDERS},
                                 warmup=warmup, repeat=repeat, budget_s=budget_s)
        res.ms = {k: t.median_ms for k, t in times.items()}
        res.min_ms = {k: t.min_ms for k, t in times.items()}
        res.rounds = times["ORT f32"].runs
        res.load = load_average()
    return res


def report(res: Result) -> str:
    cores = os.cpu_count() or 1
    busy = res.load > cores
    lines = [f"LSTM sequence model: T={res.steps}, hidden {res.hidden}, batch 1",
             f"qnnc int8 graph: {res.qnnc_ops}",
             f"ORT quantize_dynamic graph: {res.ort_ops}", ""]
    rows = []
    base = res.ms.get("ORT f32", float("nan"))
    for name in CONTENDERS:
        s = res.sqnr.get(name)
        rows.append([name, fmt(min(s)) if s else "ref", fmt(float(np.mean(s))) if s else "ref",
                     fmt(res.r2.get(name), 3), fmt(res.ms.get(name), 3),
                     fmt(res.ms.get(name, float("nan")) / base), fmt(res.min_ms.get(name), 3)])
    lines.append(format_table(["contender", "SQNR min dB", "SQNR mean dB", "task R²",
                               "median ms", "vs ORT f32", "min ms"], rows))
    lines.append(f"rounds {res.rounds}, 1 thread each; load average (1 min) {fmt(res.load)} "
                 f"on {cores} cores")
    if busy:
        lines.append("the load is above the number of cores: other jobs share them, so the "
                     "latencies are too noisy to judge (the SQNR is not affected)")
    lines.append(f"qnnc C vs interpreter on the quantised graph: {res.exact} (integer MACs "
                 "exact; libm vs numpy in the f32 gates may move a code of h by one step)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--calib", type=int, default=16, help="calibration samples for qnnc")
    ap.add_argument("--eval", type=int, default=8, help="inputs the SQNR is measured on")
    ap.add_argument("--repeat", type=int, default=None, help="timed rounds (default adaptive)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--budget", type=float, default=10.0, help="seconds of timed rounds")
    ap.add_argument("--random", action="store_true", help="keep the head random (no fit)")
    args = ap.parse_args(argv)
    logging.getLogger().setLevel(logging.ERROR)  # quantize_dynamic's pre-processing advice
    print(machine_line(), "| onnxruntime", ort.__version__, flush=True)
    res = bench(steps=args.steps, hidden=args.hidden, n_calib=args.calib, n_eval=args.eval,
                warmup=args.warmup, repeat=args.repeat, budget_s=args.budget,
                trained=not args.random)
    print(report(res))
    print(machine_line())


if __name__ == "__main__":
    main()
