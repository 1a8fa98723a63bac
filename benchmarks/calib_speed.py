"""INT8 compile time with calibration, qnnc against onnxruntime's quantize_static, on the
shipped models of the corpus with realistic samples.

    python -m benchmarks.calib_speed [--samples 64] [--models det,rec,cls,vad]

For each model, on the same ``--samples`` calibration inputs (compiler/corpus: rendered pages
for det, line crops for cls and rec — rec's at three widths, one shape profile each —, the
recurrent calls of an eSpeak NG utterance with the state the float model carried for the
VAD):

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
from benchmarks.corpus_feeds import CORPUS, SHAPES, VAD, corpus_samples, path_of
from compiler.api import compile_model
from compiler.corpus import fonts, speech
from compiler.ort_compare import ort_quantize
from compiler.shipped_models import OCR_MODELS, VAD_MODELS, model_file

Feeds = dict[str, np.ndarray]
MODELS = CORPUS


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def samples(model: str, n: int) -> tuple[str, object, list[Feeds]]:
    """(path, qnnc's input shapes, calibration feeds) of one corpus model."""
    shapes = dict(VAD_MODELS[VAD].shapes) if model == "vad" else SHAPES[model]
    return path_of(model), shapes, corpus_samples(model, n)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(model: str, n: int, cold_build: bool, repeat: int) -> list[object]:
    path, shapes, feeds = samples(model, n)
    log(f"{model}: {Path(path).name}, {len(feeds)} samples")
    with tempfile.TemporaryDirectory(prefix="qnnc-calib-") as tmp:
        t_ort = t_q = float("inf")
        for _ in range(repeat):  # interleaved; the fastest of each side is kept
            t_ort = min(t_ort, timed(lambda: ort_quantize(onnx.load(path), feeds, Path(tmp))))
            log(f"  ORT quantize_static {t_ort:.1f} s")
            t_q = min(t_q, timed(lambda: compile_model(path, input_shapes=shapes,
                                                       precision="int8", calibration=feeds)))
            log(f"  qnnc quantise {t_q:.1f} s")
        t_host = float("nan")
        if cold_build:
            t_host = timed(lambda: compile_model(path, input_shapes=shapes, precision="int8",
                                                 calibration=feeds, target="host",
                                                 cache_dir=Path(tmp) / "cache"))
            log(f"  qnnc host, cold cache {t_host:.1f} s")
    return [model, len(feeds), fmt(t_ort), fmt(t_q), fmt(t_host), fmt(t_q / t_ort)]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.calib_speed", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=64, help="calibration inputs per model")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated subset")
    ap.add_argument("--no-build", action="store_true", help="skip the cold host build column")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of each side, interleaved; the fastest is shown (default 3)")
    args = ap.parse_args(argv)
    logging.getLogger().setLevel(logging.ERROR)  # quantize_static's pre-processing advice
    models = [m for m in args.models.split(",") if m]
    unknown = set(models) - set(MODELS)
    if unknown:
        ap.error(f"unknown model(s) {sorted(unknown)}; choose from {', '.join(MODELS)}")
    missing = [m.package for m in (*OCR_MODELS.values(), VAD_MODELS[VAD])
               if model_file(m) is None]
    if missing or fonts.missing() or not speech.available():
        raise SystemExit("needs: pip install --no-deps silero-vad==6.2.3 "
                         f"rapidocr-onnxruntime==1.4.4 and {fonts.PIP_LINE} {speech.PIP}")
    before = machine_line()
    rows = [bench(m, args.samples, not args.no_build, max(1, args.repeat)) for m in models]
    print(before)
    print(format_table(["model", "samples", "ORT quantize (s)", "qnnc quantise (s)",
                        "qnnc host cold (s)", "qnnc/ORT"], rows))
    print(machine_line())
    load, cpus = load_average(), os.cpu_count() or 1
    if load > max(cpus - 1, 0.5):
        print(f"load {load:.2f} on {cpus} CPUs: other work shares the cores, so these times "
              "are too noisy to judge")


if __name__ == "__main__":
    main()
