"""Which INT8 recipe should be qnnc's default: the task metric of every trained model qnnc has,
in float, as onnxruntime's static INT8 and as qnnc INT8 with each calibration method, side by
side, and how long each quantiser takes.

    python -m benchmarks.int8_recipe                    # about 9 minutes on 2 cores
    python -m benchmarks.int8_recipe --skip-llama --lines 8 --clips 1    # quicker
    python -m benchmarks.int8_recipe --models digits_cnn --methods minmax,percentile
    python -m benchmarks.int8_recipe --models ocr --pages 2   # adds det and whole pages

Rows of every table (all single-threaded):

| row                  | what runs                                                           |
|----------------------|---------------------------------------------------------------------|
| ORT f32              | the float model on onnxruntime (the reference for "agree")          |
| ORT INT8             | ``quantize_static`` on the calibration set C (QDQ, per-channel,     |
|                      | MinMax, u8 activations, s8 weights: ``host_latency.ort_quantize``)  |
| qnnc INT8 METHOD     | ``compile_model(..., precision="int8", calibration=C,               |
|                      | calib_method=METHOD)`` for each of minmax, percentile, entropy,     |
|                      | mse, layerwise                                                      |
|                      | (the default, ``calibrate.DEFAULT_METHOD``, is marked), run by the  |
|                      | reference interpreter                                               |

qnnc runs on the reference interpreter, not as host C: one C build per method and model would
cost more than the whole evaluation, and the host code computes the same integer program
(its integer layers match the interpreter bit for bit; float tails such as Softmax may differ
in the last bits). Both quantisers get the very same calibration inputs.

Models, data and metrics (seeded; calibration and evaluation data never overlap):

- **ocr**: PP-OCRv4 rec and the mobile direction classifier (``rapidocr-onnxruntime``'s files),
  line level: cls -> rec -> CTC text on ``--lines`` rendered line crops (seeds 1000...), every
  contender's own cls and rec together; calibration ``--ocr-calib`` crops per model
  (``ocr_pipeline.calibration_feeds``, seeds 500...; rec's at the widths of ``REC_WIDTHS``,
  one shape profile each). Metrics: character accuracy against the rendered text (1 - edits /
  truth length, pooled) and against ORT f32's text ("agree"). The detector is left out by
  default for time (a page costs ~10 s per quantised contender on the interpreter):
  ``--pages N`` adds det (calibrated on ``--ocr-calib`` rendered pages, seeds 500...) and
  page-level accuracy of det -> boxes -> cls -> rec on N pages (seeds 0..., spaces ignored).
- **silero_vad_openvino_16k**, **silero_vad** (``silero-vad``'s files; silero_vad's sample-rate
  input is made a 16 kHz constant for every contender): ``--clips`` eSpeak NG utterances of
  ``--seconds`` (seeds 0...), two sentences among silence and noise, state carried between
  512-sample chunks; calibration = every recurrent call over another utterance (seed 100) with
  the state ORT f32 carried into it (the seeds fix the text, voice, gaps and noise, but eSpeak
  NG's waveform for them varies between runs by a few samples, so the VAD figures move by
  about 0.002 between runs of the same code). Metrics: share of chunks whose speech decision
  (p > 0.5) agrees with ORT f32, IoU of the speech segments against where speech was placed
  and against ORT f32's segments, and the mean over clips of the largest |p - p_f32|.
- **digits_cnn** (tests/fixtures/digits_cnn.onnx): calibration = ``--digits-calib`` images drawn
  (seed 0) from the training split of ``compiler.datasets.digits_split``, evaluation = the
  held-out split (450 images; ``--digits-test`` limits it). Metrics: top-1 accuracy and
  agreement with ORT f32's top-1.
- **llama** (``compiler/examples/llama.py``, ``build_llama(seed=0)``, trained ~60-75 s at
  start-up): greedy generation with ``compiler.generate.generate`` (prefill lengths 16 and
  32, one-token decode steps); calibration = every call of ORT f32 generating 24 tokens after
  each of ``llama_decode.CALIB_PROMPTS``; evaluation = ``--new-tokens`` tokens after the first
  ``--prompts`` of ``llama_decode.EVAL_PROMPTS`` (other parts of the text). qnnc compiles one
  shape profile per sequence length (``compile_lengths``). Metrics: greedy tokens equal to
  ORT f32's at the same step, the mean number of tokens before the first difference, and
  teacher-forced next-token agreement (every decode step fed ORT f32's tokens so far; the
  steps whose next token equals f32's), which one early difference does not decide.
  An extra row, ORT INT8 (mask+Softmax f32), keeps the attention mask's Where and the Softmax
  in float (``nodes_to_exclude``): the float island qnnc's quantiser makes on its own.
  ``--skip-llama`` leaves the model out.

Compile time: seconds of ``quantize_static`` (calibration + QDQ model) and of qnnc's
``compile_model`` without a target (import, passes, calibration, quantisation: the same work,
no C) for each method, in this process while nothing else of the script runs; rec and llama
are compiled for all their shape profiles. A model whose quantisations all took under
REPEAT_UNDER seconds has them run ``--timing-repeat`` times in all (default 3), interleaved,
and the fastest of each is shown: on a shared machine a single timing of a fraction of a
second was seen to swing by a fifth between two runs of the script. Then the load average.

A contender that fails to quantise or to run gets n/a in its row and a note under the table;
the run goes on. These are measurements for reports, not test assertions.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnx

from benchmarks.common import fmt, format_table, load_average, machine_line
from benchmarks.host_latency import ort_quantize, ort_session
from compiler.api import compile_model
from compiler.options import WEIGHT_RANGES
from compiler.quant.calibrate import DEFAULT_METHOD, METHODS

Feeds = dict[str, np.ndarray]
Cell = float | str
MODELS = ("ocr", "silero_vad_openvino_16k", "silero_vad", "digits_cnn", "llama")
DIGITS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "digits_cnn.onnx"
DET = (320, 320)
OCR_CALIB_SEED, LINE_SEED, VAD_CALIB_SEED = 500, 1000, 100
ORT_F32, ORT_INT8 = "ORT f32", "ORT INT8"
LLAMA_ISLANDS = "ORT INT8 (mask+Softmax f32)"


class Session(Protocol):
    def run(self, output_names: Sequence[str] | None,
            feeds: dict[str, np.ndarray]) -> Sequence[np.ndarray]: ...


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def why(e: BaseException) -> str:
    first = (str(e).strip().splitlines() or [""])[0]
    return f"{type(e).__name__}: {first[:140]}"


def recipe(spec: str) -> dict[str, Any]:
    """compile_model's options for a --methods entry: METHOD, METHOD/WEIGHT_RANGE (e.g.
    percentile/paired: the weight codes of --weight-range), either with +smooth=ALPHA (e.g.
    percentile+smooth=0.5: SmoothQuant migration, compiler/quant/smooth.py)."""
    spec, _, alpha = spec.partition("+smooth=")
    method, _, weights = spec.partition("/")
    return {"calib_method": method, **({"weight_range": weights} if weights else {}),
            **({"smooth": float(alpha)} if alpha else {})}


def label(method: str) -> str:
    """The row name of qnnc INT8 with ``method`` (a --methods entry); the compile default is
    marked."""
    return f"qnnc INT8 {method}" + (" (default)" if method == DEFAULT_METHOD else "")


@dataclass
class Contenders:
    """The runnable versions of one ONNX model, quantised on the same calibration set."""

    model: str
    n_calib: int
    sessions: dict[str, Session] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # quantise time per INT8 row
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    """One model's table: a row per contender (cells: floats or preformatted text)."""

    title: str
    headers: list[str]
    rows: list[tuple[str, list[Cell]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    compiled: list[Contenders] = field(default_factory=list)

    def value(self, row: str, column: str) -> Cell:
        cells = dict(self.rows)[row]
        return cells[self.headers.index(column) - 1]

    def format(self) -> str:
        table = [[name, *(c if isinstance(c, str) else fmt(c, 4) for c in cells)]
                 for name, cells in self.rows]
        lines = [self.title, "", format_table(self.headers, table)]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


#: quantisations of a model all faster than this many seconds are timed ``TIMING_REPEAT`` times
REPEAT_UNDER = 5.0
TIMING_REPEAT = 3  # --timing-repeat


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def quantise_all(name: str, model: onnx.ModelProto, calib: list[Feeds], methods: Sequence[str],
                 folder: Path, qnnc: Callable[[str], Session],
                 extra_ort: dict[str, list[str]] | None = None) -> Contenders:
    """ORT f32, ORT INT8 (plus ``extra_ort``: row name -> nodes left in float) and qnnc INT8
    with each method (``qnnc(method)`` compiles), all on ``calib``; failures become notes."""
    out = Contenders(name, len(calib))
    folder.mkdir(parents=True, exist_ok=True)

    def attempt(row: str, make: Callable[[], tuple[Session, float | None]]) -> None:
        log(f"  {name}: {row}")
        try:
            session, secs = make()
        except Exception as e:  # a failed contender is a reported result, not a crash
            out.notes.append(f"{name} {row}: {why(e)}")
            log(f"    failed: {why(e)}")
            return
        out.sessions[row] = session
        if secs is not None:
            out.seconds[row] = secs
            log(f"    quantised in {secs:.1f} s")

    def ort_int8() -> tuple[Session, float]:
        path, secs = timed(lambda: ort_quantize(model, calib, folder))
        if not qdq_nodes(onnx.load(path).graph):
            out.notes.append(f"{name} {ORT_INT8}: quantize_static left every layer in float "
                             "(no DequantizeLinear anywhere), so this row measures f32")
        return ort_session(path, 1), secs

    attempt(ORT_F32, lambda: (ort_session(model.SerializeToString(), 1), None))
    attempt(ORT_INT8, ort_int8)
    for row, exclude in (extra_ort or {}).items():
        attempt(row, lambda ex=exclude: (
            ort_session(ort_quantize(model, calib, folder, ex), 1), None))
    for m in methods:
        attempt(label(m), lambda m=m: timed(lambda: qnnc(m)))
    again: dict[str, Callable[[], Any]] = {ORT_INT8: lambda: ort_quantize(model, calib, folder),
                                           **{label(m): lambda m=m: qnnc(m) for m in methods}}
    if out.seconds and max(out.seconds.values()) < REPEAT_UNDER:
        for _ in range(TIMING_REPEAT - 1):  # interleaved; the fastest of each is kept
            for row, fn in again.items():
                if row in out.seconds:
                    out.seconds[row] = min(out.seconds[row], timed(fn)[1])
    return out


def qdq_nodes(graph: onnx.GraphProto) -> int:
    """DequantizeLinear nodes in ``graph`` and its subgraphs (If branches, loop bodies)."""
    n = 0
    for node in graph.node:
        n += node.op_type == "DequantizeLinear"
        for a in node.attribute:
            n += sum(qdq_nodes(g) for g in [*([a.g] if a.HasField("g") else []), *a.graphs])
    return n


def row_order(methods: Sequence[str], extra: Sequence[str] = ()) -> list[str]:
    return [ORT_F32, ORT_INT8, *extra, *(label(m) for m in methods)]


def evaluate(report: Report, rows: Sequence[str], available: dict[str, Any],
             measure: Callable[[str], list[Cell]]) -> None:
    """A row per contender: ``measure(row)``'s cells, or n/a with a note when the contender
    is missing (it failed to quantise; its note says why) or fails while running."""
    width = len(report.headers) - 1
    for row in rows:
        cells: list[Cell] = ["n/a"] * width
        if row in available:
            log(f"evaluating {row}")
            try:
                cells = measure(row)
            except Exception as e:  # reported, not a crash
                report.notes.append(f"{row} failed while running: {why(e)}")
        report.rows.append((row, cells))


# -- OCR --------------------------------------------------------------------------------------
def ocr(methods: Sequence[str], n_lines: int, n_pages: int, n_calib: int,
        folder: Path) -> Report:
    from compiler.corpus.ctc import alphabet, char_accuracy, corpus_accuracy
    from compiler.corpus.ocr_pipeline import (
        CLS_SHAPE,
        REC_WIDTHS,
        OcrModels,
        calibration_feeds,
        match_page,
        read_line,
        read_page,
        rec_profiles,
    )
    from compiler.corpus.text_render import random_line, render_page
    from compiler.shipped_models import OCR_MODELS, model_file

    paths = {k: str(model_file(m)) for k, m in OCR_MODELS.items()}
    chars = alphabet(paths["rec"])
    dictionary = "".join(chars[1:])
    shapes: dict[str, Any] = {"det": {"x": (1, 3, *DET)}, "cls": {"x": (1, 3, *CLS_SHAPE)},
                              "rec": rec_profiles(REC_WIDTHS)}
    parts = ("det", "cls", "rec") if n_pages else ("cls", "rec")
    per: dict[str, Contenders] = {}
    for k in parts:
        calib = calibration_feeds(k, dictionary, n_calib, DET, seed=OCR_CALIB_SEED)
        per[k] = quantise_all(k, onnx.load(paths[k]), calib, methods, folder / k,
                              lambda m, k=k, c=calib: compile_model(
                                  paths[k], input_shapes=shapes[k], precision="int8",
                                  calibration=c, **recipe(m)))
    lines = [random_line(np.random.default_rng(LINE_SEED + i), dictionary)
             for i in range(n_lines)]
    pages = [render_page(*DET, np.random.default_rng(i), dictionary) for i in range(n_pages)]
    headers = ["contender", "lines acc", "lines agree"]
    if n_pages:
        headers += ["pages acc", "pages agree"]
    report = Report(f"OCR (PP-OCRv4 rec + mobile cls{' + det' if n_pages else ''}): character "
                    f"accuracy vs the rendered text and agreement with ORT f32's text "
                    f"({n_lines} line crops, {n_pages} pages; {n_calib} calibration inputs "
                    "per model)", headers, compiled=list(per.values()))
    for c in per.values():
        report.notes += c.notes
    rows = row_order(methods)
    whole = {r: True for r in rows if all(r in c.sessions for c in per.values())}
    texts: dict[str, tuple[list[str], list[str]]] = {}

    def measure(row: str) -> list[Cell]:
        s = {k: per[k].sessions[row] for k in parts}
        m = OcrModels(s.get("det", s["cls"]), s["cls"], s["rec"], chars, DET)
        line_reads = [read_line(m, img).text.strip() for img, _ in lines]
        page_reads = [read_page(m, pg.image) for pg in pages]
        texts[row] = (line_reads, ["".join(r.texts).replace(" ", "") for r in page_reads])
        ref = texts.get(ORT_F32)
        nan = float("nan")
        cells: list[Cell] = [
            corpus_accuracy(list(zip(line_reads, [t for _, t in lines]))),
            corpus_accuracy(list(zip(line_reads, ref[0]))) if ref else nan]
        if n_pages:
            cells += [corpus_accuracy([p for r, pg in zip(page_reads, pages)
                                       for p in match_page(r, pg)]),
                      float(np.mean([char_accuracy(a, b) for a, b in zip(texts[row][1], ref[1])]))
                      if ref else nan]
        return cells

    evaluate(report, rows, whole, measure)
    return report


# -- VAD --------------------------------------------------------------------------------------
def vad(name: str, methods: Sequence[str], n_clips: int, seconds: float,
        folder: Path) -> Report:
    from compiler.corpus import speech
    from compiler.corpus.vad_segments import (
        frame_agreement,
        iou,
        probabilities,
        speech_segments,
    )
    from compiler.shipped_models import VAD_MODELS, at_16k, model_file

    spec = VAD_MODELS[name]
    model = at_16k(onnx.load(str(model_file(spec))))
    ref_sess = ort_session(model.SerializeToString(), 1)
    calib: list[Feeds] = []

    def record(f: Feeds) -> Sequence[np.ndarray]:
        calib.append(f)
        return ref_sess.run(None, f)

    probabilities(record, speech.utterance(seconds, seed=VAD_CALIB_SEED).audio)
    c = quantise_all(name, model, calib, methods, folder / name,
                     lambda m: compile_model(model, input_shapes=dict(spec.shapes),
                                             precision="int8", calibration=calib,
                                             **recipe(m)))
    clips = [speech.utterance(seconds, seed=i) for i in range(n_clips)]
    report = Report(f"VAD ({name}): {n_clips} clips of {seconds:g} s, state carried between "
                    f"512-sample chunks; calibration: the {len(calib)} calls over another "
                    "utterance", ["contender", "chunks agree", "IoU vs truth", "IoU vs f32",
                                  "max|dp|"], notes=list(c.notes), compiled=[c])
    probs: dict[str, list[np.ndarray]] = {}

    def measure(row: str) -> list[Cell]:
        s = c.sessions[row]
        p = probs[row] = [probabilities(lambda f: s.run(None, f), u.audio) for u in clips]
        segs = [speech_segments(a, len(u.audio)) for a, u in zip(p, clips)]
        truth = float(np.mean([iou(g, u.speech, len(u.audio)) for g, u in zip(segs, clips)]))
        ref = probs.get(ORT_F32)
        if ref is None:
            return [float("nan"), truth, float("nan"), float("nan")]
        agree = float(np.mean([frame_agreement(a, b) for a, b in zip(p, ref)]))
        vs = float(np.mean([iou(g, speech_segments(r, len(u.audio)), len(u.audio))
                            for g, r, u in zip(segs, ref, clips)]))
        dp = float(np.mean([np.abs(a - b).max() for a, b in zip(p, ref)]))
        return [agree, truth, vs, dp]

    evaluate(report, row_order(methods), c.sessions, measure)
    return report


# -- digits -----------------------------------------------------------------------------------
def digits(methods: Sequence[str], n_calib: int, n_test: int, folder: Path) -> Report:
    """The trained digits CNN: top-1 on the held-out split (``n_test`` <= 0: all of it)."""
    from compiler.datasets import digits_split

    xtr, _, xte, yte = digits_split()
    pick = np.random.default_rng(0).choice(len(xtr), min(n_calib, len(xtr)), replace=False)
    calib = [{"input": xtr[i:i + 1]} for i in sorted(pick)]
    if n_test > 0:
        xte, yte = xte[:n_test], yte[:n_test]
    model = onnx.load(str(DIGITS))
    c = quantise_all("digits_cnn", model, calib, methods, folder / "digits",
                     lambda m: compile_model(model, precision="int8", calibration=calib,
                                             **recipe(m)))
    report = Report(f"digits CNN: top-1 on the {len(xte)} held-out images "
                    f"({len(calib)} training images to calibrate)",
                    ["contender", "top-1 acc", "top-1 agree"], notes=list(c.notes),
                    compiled=[c])
    top1: dict[str, np.ndarray] = {}

    def measure(row: str) -> list[Cell]:
        s = c.sessions[row]
        got = top1[row] = np.array([int(np.argmax(s.run(None, {"input": xte[i:i + 1]})[0]))
                                    for i in range(len(xte))])
        ref = top1.get(ORT_F32)
        return [float(np.mean(got == yte)),
                float(np.mean(got == ref)) if ref is not None else float("nan")]

    evaluate(report, row_order(methods), c.sessions, measure)
    return report


# -- llama ------------------------------------------------------------------------------------
def llama(methods: Sequence[str], n_prompts: int, new_tokens: int, folder: Path) -> Report:
    from benchmarks.llama_decode import CALIB_PROMPTS, EVAL_PROMPTS, LENGTHS
    from compiler.examples.llama import build_llama
    from compiler.examples.llama_train import corpus
    from compiler.generate import compile_lengths, generate

    log("llama: training the example (about a minute)")
    model, secs = timed(lambda: build_llama(seed=0))
    log(f"  trained in {secs:.0f} s")
    text = corpus()
    f32 = ort_session(model.SerializeToString(), 1)
    calib: list[Feeds] = []
    for o, n in CALIB_PROMPTS:
        generate(f32, list(text[o:o + n]), 24, lengths=LENGTHS[1:], record=calib.append)
    islands = [n.name for n in model.graph.node if n.op_type in ("Where", "Softmax")]
    c = quantise_all("llama", model, calib, methods, folder / "llama",
                     lambda m: compile_lengths(model, LENGTHS, calib, **recipe(m)),
                     extra_ort={LLAMA_ISLANDS: islands})
    prompts = [list(text[o:o + n]) for o, n in EVAL_PROMPTS[:n_prompts]]
    report = Report(f"llama example: greedy generation, {len(prompts)} prompts of "
                    f"{min(map(len, prompts))}-{max(map(len, prompts))} tokens, {new_tokens} "
                    f"new tokens each; calibration: the {len(calib)} calls of f32 generating "
                    f"after {len(CALIB_PROMPTS)} other prompts",
                    ["contender", "tokens = f32", "same prefix", "next = f32 (forced)"],
                    notes=list(c.notes),
                    compiled=[c])
    gens: dict[str, list[list[int]]] = {}

    def measure(row: str) -> list[Cell]:
        s = c.sessions[row]
        mine = gens[row] = [generate(s, p, new_tokens, lengths=LENGTHS[1:]).tokens
                            for p in prompts]
        ref = gens.get(ORT_F32)
        if ref is None:
            return ["n/a", "n/a", "n/a"]
        same = sum(a == b for g, f in zip(mine, ref) for a, b in zip(g, f))
        prefix = float(np.mean([next((i for i, (a, b) in enumerate(zip(g, f)) if a != b),
                                     len(f)) for g, f in zip(mine, ref)]))
        forced = [generate(s, p, new_tokens, lengths=LENGTHS[1:], forced=f).tokens
                  for p, f in zip(prompts, ref)]
        next_same = sum(a == b for g, f in zip(forced, ref) for a, b in zip(g, f))
        total = sum(map(len, ref))
        return [f"{same}/{total}", fmt(prefix, 1), f"{next_same}/{total}"]

    evaluate(report, row_order(methods, [LLAMA_ISLANDS]), c.sessions, measure)
    report.notes.append("same prefix: mean number of tokens before the first that differs "
                        "from ORT f32's; next = f32 (forced): steps whose next token equals "
                        "f32's when every step is fed f32's text so far (teacher forcing: one "
                        "early difference does not decide all later steps)")
    return report


# -- report -----------------------------------------------------------------------------------
def compile_table(compiled: Sequence[Contenders], methods: Sequence[str]) -> str:
    headers = ["model", "samples", "quantize_static (s)",
               *(f"{label(m)} (s)".removeprefix("qnnc INT8 ") for m in methods)]
    with_default = DEFAULT_METHOD in methods
    if with_default:
        headers.append(f"{DEFAULT_METHOD}/ORT")
    rows = []
    for c in compiled:
        s = c.seconds
        row = [c.model, str(c.n_calib), fmt(s.get(ORT_INT8)),
               *(fmt(s.get(label(m))) for m in methods)]
        if with_default:
            ort = s.get(ORT_INT8, float("nan"))
            row.append(fmt(s.get(label(DEFAULT_METHOD), float("nan")) / ort))
        rows.append(row)
    return "\n".join([
        "Compile time: quantize_static (calibration + QDQ model) vs qnnc compile_model "
        "without a target (import, passes, calibration, quantisation; every shape profile); "
        f"the fastest of {TIMING_REPEAT} interleaved runs where a model's quantisations all "
        f"take under {REPEAT_UNDER:g} s, else one",
        "", format_table(headers, rows)])


def run(models: Sequence[str], methods: Sequence[str], args: argparse.Namespace,
        folder: Path) -> list[Report]:
    reports = []
    for name in models:
        log(f"== {name}")
        sub = folder / name
        if name == "ocr":
            reports.append(ocr(methods, args.lines, args.pages, args.ocr_calib, sub))
        elif name.startswith("silero"):
            reports.append(vad(name, methods, args.clips, args.seconds, sub))
        elif name == "digits_cnn":
            reports.append(digits(methods, args.digits_calib, args.digits_test, sub))
        elif name == "llama":
            reports.append(llama(methods, args.prompts, args.new_tokens, sub))
    return reports


def _subset(ap: argparse.ArgumentParser, text: str, allowed: Sequence[str],
            what: str) -> list[str]:
    picked = [x.strip() for x in text.split(",") if x.strip()]
    unknown = sorted(set(picked) - set(allowed))
    if unknown or not picked:
        ap.error(f"unknown or no {what} {unknown}; choose from {', '.join(allowed)}")
    return [x for x in allowed if x in picked]


def _recipes(ap: argparse.ArgumentParser, text: str) -> list[str]:
    """--methods: METHOD[/WEIGHT_RANGE][+smooth=ALPHA] entries, in the order given."""
    picked = [x.strip() for x in text.split(",") if x.strip()]

    def ok(x: str) -> bool:  # the entry as recipe() reads it
        try:
            r = recipe(x)
        except ValueError:  # an alpha that is not a number
            return False
        return (r["calib_method"] in METHODS and r.get("weight_range", "int8") in WEIGHT_RANGES
                and 0.0 <= r.get("smooth", 0.0) <= 1.0)

    bad = [x for x in picked if not ok(x)]
    if bad or not picked:
        ap.error(f"unknown or no method(s) {bad}; choose from {', '.join(METHODS)}, each "
                 f"optionally with /WEIGHT_RANGE ({', '.join(WEIGHT_RANGES)}) and "
                 "+smooth=ALPHA (0..1)")
    return list(dict.fromkeys(picked))


def main(argv: Sequence[str] | None = None) -> None:
    global TIMING_REPEAT
    from benchmarks.llama_decode import EVAL_PROMPTS

    ap = argparse.ArgumentParser(prog="python -m benchmarks.int8_recipe",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of "
                    f"{', '.join(MODELS)}")
    ap.add_argument("--methods", default=",".join(METHODS), help="qnnc calibration methods "
                    f"(default: all of {', '.join(METHODS)}), each optionally with "
                    "/WEIGHT_RANGE (compile's --weight-range), e.g. percentile/paired, and "
                    "+smooth=ALPHA (SmoothQuant), e.g. percentile+smooth=0.5")
    ap.add_argument("--skip-llama", action="store_true", help="leave the llama example out")
    ap.add_argument("--lines", type=int, default=24, help="OCR line crops to read")
    ap.add_argument("--pages", type=int, default=0, help="OCR pages (adds det; slow)")
    ap.add_argument("--ocr-calib", type=int, default=16, help="calibration inputs per OCR "
                    "model")
    ap.add_argument("--clips", type=int, default=3, help="VAD evaluation clips")
    ap.add_argument("--seconds", type=float, default=8.0, help="VAD clip length")
    ap.add_argument("--digits-calib", type=int, default=100, help="digits calibration images")
    ap.add_argument("--digits-test", type=int, default=0, help="held-out digits to score "
                    "(0: all 450)")
    ap.add_argument("--prompts", type=int, default=len(EVAL_PROMPTS),
                    help=f"llama prompts (at most {len(EVAL_PROMPTS)})")
    ap.add_argument("--new-tokens", type=int, default=48, help="llama tokens per prompt")
    ap.add_argument("--timing-repeat", type=int, default=TIMING_REPEAT,
                    help=f"runs of each quantisation of a model whose quantisations all take "
                         f"under {REPEAT_UNDER:g} s; the fastest is shown (default "
                         f"{TIMING_REPEAT})")
    args = ap.parse_args(argv)
    models = _subset(ap, args.models, MODELS, "model(s)")
    if args.skip_llama:
        models = [m for m in models if m != "llama"]
    methods = _recipes(ap, args.methods)
    if not 0 < args.ocr_calib <= LINE_SEED - OCR_CALIB_SEED or args.pages > OCR_CALIB_SEED:
        ap.error("calibration and evaluation seeds would overlap: keep --ocr-calib in "
                 f"1..{LINE_SEED - OCR_CALIB_SEED} and --pages <= {OCR_CALIB_SEED}")
    if not 0 < args.clips <= VAD_CALIB_SEED:
        ap.error(f"--clips must be in 1..{VAD_CALIB_SEED} (seed {VAD_CALIB_SEED} calibrates)")
    if not 0 < args.prompts <= len(EVAL_PROMPTS):
        ap.error(f"--prompts must be in 1..{len(EVAL_PROMPTS)}")
    _check_installed(models)
    TIMING_REPEAT = max(1, args.timing_repeat)
    logging.getLogger().setLevel(logging.ERROR)  # quantize_static's pre-processing advice
    before = machine_line()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="qnnc-recipe-") as tmp:
        reports = run(models, methods, args, Path(tmp))
    wall = time.perf_counter() - t0
    out = [before, f"qnnc calibration methods: {', '.join(methods)} (compile default: "
           f"{DEFAULT_METHOD}); qnnc INT8 runs on the reference interpreter", ""]
    for r in reports:
        out += [r.format(), ""]
    out += [compile_table([c for r in reports for c in r.compiled], methods), "",
            f"wall time {wall:.0f} s", machine_line()]
    print("\n".join(out))
    load, cpus = load_average(), os.cpu_count() or 1
    if load > max(cpus - 1, 0.5):
        print(f"load {load:.2f} on {cpus} CPUs: other work shares the cores, so the compile "
              "times are too noisy to judge (the accuracy figures are not affected)")


def _check_installed(models: Sequence[str]) -> None:
    from compiler.corpus import fonts, speech
    from compiler.shipped_models import OCR_MODELS, VAD_MODELS, model_file

    missing = False
    if "ocr" in models:
        missing |= any(model_file(m) is None for m in OCR_MODELS.values()) or bool(fonts.missing())
    vads = [m for m in models if m.startswith("silero")]
    if vads:
        missing |= any(model_file(VAD_MODELS[m]) is None for m in vads) or not speech.available()
    if missing:
        raise SystemExit("needs: pip install --no-deps silero-vad==6.2.3 "
                         f"rapidocr-onnxruntime==1.4.4 and {fonts.PIP_LINE} {speech.PIP} "
                         "(or --models digits_cnn,llama)")


if __name__ == "__main__":
    main()
