"""End-to-end tasks on realistic data: PP-OCR reading rendered text and Silero VAD finding
spoken sentences, with qnnc and onnxruntime side by side, accuracy and latency.

    python -m benchmarks.corpus_tasks
    python -m benchmarks.corpus_tasks --pages 4 --lines 16 --calib 8 --clips 1   # quicker

Contenders (all single-threaded, host CPU):

| column     | what runs                                                                     |
|------------|-------------------------------------------------------------------------------|
| qnnc INT8  | ``compile_model(..., precision="int8", calibration=C, target="host")``        |
| ORT INT8   | ``quantize_static`` on the same C (QDQ, per-channel, MinMax, u8/s8)           |
| ORT f32    | the float model on onnxruntime (the reference for "agreement")                |
| qnnc f32   | ``compile_model(..., target="host")``                                         |

Data (compiler/corpus; calibration and evaluation use different seeds): pages 320x320 of
Chinese, English and mixed lines in four shipped fonts, line crops of random face, size,
blur, noise and rotation; 8 s clips of eSpeak NG sentences among noise.

Metrics: OCR character accuracy (1 - edit distance / truth length, pooled) on line crops
(cls -> rec) and on whole pages (det -> boxes -> cls -> rec, spaces ignored), and agreement
with ORT f32's text (the same measure with its text as the truth); VAD, the share of 32 ms
chunks whose speech decision agrees with ORT f32, and IoU of the speech segments against
where speech was placed. Latency: median of interleaved rounds per model and input; the
load average is printed, and timings taken under load are flagged as not to be judged.
The recogniser is compiled once with a shape profile per width of ``ocr_pipeline.REC_WIDTHS``
(160, 320, 640); a line is padded to the smallest that holds it (every contender gets the
same padded inputs) and only lines wider than the largest are squeezed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx

from benchmarks.common import fmt, format_table, load_average, machine_line, time_interleaved
from benchmarks.host_latency import ort_quantize, ort_session
from compiler.api import compile_model
from compiler.corpus import fonts, speech
from compiler.corpus.ctc import alphabet, char_accuracy, corpus_accuracy
from compiler.corpus.ocr_pipeline import (
    CLS_SHAPE,
    REC_WIDTHS,
    OcrModels,
    calibration_feeds,
    det_input,
    line_input,
    match_page,
    read_line,
    read_page,
    rec_profiles,
    rec_width,
)
from compiler.corpus.text_render import random_line, render_page
from compiler.corpus.vad_segments import frame_agreement, iou, probabilities, speech_segments
from compiler.shipped_models import OCR_MODELS, VAD_MODELS, model_file, vad_chunks

Feeds = dict[str, np.ndarray]
DET = (320, 320)
# qnnc's input shapes: the recogniser is one model with a shape profile per line width
SHAPES = {"det": {"x": (1, 3, *DET)}, "cls": {"x": (1, 3, *CLS_SHAPE)},
          "rec": rec_profiles(REC_WIDTHS)}
VAD = "silero_vad_openvino_16k"
COLUMNS = ["qnnc INT8", "ORT INT8", "ORT f32", "qnnc f32"]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def contenders(path: str, shapes: dict, calib: list[Feeds], folder: Path,
               ) -> tuple[dict[str, object], list[str]]:
    """The four runnable versions of one model (failures become notes)."""
    out: dict[str, object] = {}
    notes = []
    makers: dict[str, Callable[[], object]] = {
        "qnnc INT8": lambda: compile_model(path, input_shapes=shapes, target="host",
                                           precision="int8", calibration=calib),
        "ORT INT8": lambda: ort_session(ort_quantize(onnx.load(path), calib, folder), 1),
        "ORT f32": lambda: ort_session(path, 1),
        "qnnc f32": lambda: compile_model(path, input_shapes=shapes, target="host"),
    }
    for name, make in makers.items():
        log(f"  {name}: {Path(path).name}")
        try:
            out[name] = make()
        except Exception as e:  # a failed contender is a reported result, not a crash
            notes.append(f"{Path(path).name} {name}: {type(e).__name__}: "
                         f"{str(e).splitlines()[0][:100]}")
    return out, notes


def timings(sessions: dict[str, object], feeds: Feeds, budget: float) -> dict[str, float]:
    fns = {k: (lambda s=s: s.run(None, feeds)) for k, s in sessions.items()}
    return {k: t.median_ms for k, t in time_interleaved(fns, budget_s=budget,
                                                         gap_s=0.002).items()}


LatencyRows = list[tuple[str, dict[str, float]]]


def ocr(args: argparse.Namespace, folder: Path) -> tuple[list[str], LatencyRows, list[str]]:
    paths = {k: str(model_file(m)) for k, m in OCR_MODELS.items()}
    chars = alphabet(paths["rec"])
    dictionary = "".join(chars[1:])
    per_model, notes = {}, []
    for k in ("det", "cls", "rec"):
        calib = calibration_feeds(k, dictionary, args.calib, DET)
        per_model[k], n = contenders(paths[k], SHAPES[k], calib, folder / k)
        notes += n
    pages = [render_page(*DET, np.random.default_rng(i), dictionary) for i in range(args.pages)]
    lines = [random_line(np.random.default_rng(1000 + i), dictionary) for i in range(args.lines)]
    texts: dict[str, tuple[list[str], list[str]]] = {}
    acc_rows = []
    for c in COLUMNS:
        if not all(c in per_model[k] for k in per_model):
            continue
        m = OcrModels(*(per_model[k][c] for k in ("det", "cls", "rec")), chars, DET)
        log(f"reading with {c}")
        line_reads = [read_line(m, img).text.strip() for img, _ in lines]
        page_reads = [read_page(m, pg.image) for pg in pages]
        texts[c] = (line_reads, ["".join(r.texts).replace(" ", "") for r in page_reads])
        acc_rows.append([c, corpus_accuracy(list(zip(line_reads, [t for _, t in lines]))),
                         corpus_accuracy([p for r, pg in zip(page_reads, pages)
                                          for p in match_page(r, pg)])])
    ref = texts.get("ORT f32")
    table = []
    for c, line_acc, page_acc in acc_rows:
        agree_l = agree_p = float("nan")
        if ref is not None:
            agree_l = corpus_accuracy(list(zip(texts[c][0], ref[0])))
            agree_p = float(np.mean([char_accuracy(a, b) for a, b in zip(texts[c][1], ref[1])]))
        table.append([c, fmt(line_acc, 4), fmt(page_acc, 4), fmt(agree_l, 4), fmt(agree_p, 4)])
    out = ["OCR: character accuracy vs the rendered text, and agreement with ORT f32's text",
           f"({args.lines} line crops, {args.pages} pages of up to 6 lines, "
           f"{args.calib} calibration inputs per model)", "",
           format_table(["contender", "lines acc", "pages acc", "lines agree", "pages agree"],
                        table)]
    lat: LatencyRows = []
    line_img = lines[0][0]
    w, pad = rec_width(line_img.shape[1], line_img.shape[0], REC_WIDTHS)
    wc, padc = rec_width(line_img.shape[1], line_img.shape[0], [CLS_SHAPE[1]])
    feeds = {"det": {"x": det_input(pages[0].image, DET)},
             "cls": {"x": line_input(line_img, wc, padc)},
             "rec": {"x": line_input(line_img, w, pad)}}
    for k in ("det", "cls", "rec"):
        log(f"timing {k}")
        lat.append((f"{k} {'x'.join(map(str, feeds[k]['x'].shape))}",
                    timings(per_model[k], feeds[k], args.budget)))
    return out, lat, notes


def latency_table(rows: Sequence[tuple[str, dict[str, float]]]) -> list[str]:
    table = []
    for name, t in rows:
        q, o = t.get("qnnc INT8", float("nan")), t.get("ORT INT8", float("nan"))
        table.append([name, *(fmt(t.get(c, float("nan"))) for c in COLUMNS), fmt(q / o)])
    return [format_table(["model (ms, median)", *COLUMNS, "qnnc/ORT-INT8"], table)]


def vad(args: argparse.Namespace, folder: Path) -> tuple[list[str], LatencyRows, list[str]]:
    path = str(model_file(VAD_MODELS[VAD]))
    ref_sess = ort_session(path, 1)
    calib: list[Feeds] = []

    def record(f: Feeds) -> Sequence[np.ndarray]:
        calib.append(f)
        return ref_sess.run(None, f)

    probabilities(record, speech.utterance(args.seconds, seed=100).audio)
    sessions, notes = contenders(path, VAD_MODELS[VAD].shapes, calib, folder / "vad")
    clips = [speech.utterance(args.seconds, seed=i) for i in range(args.clips)]
    probs = {c: [probabilities(lambda f, s=s: s.run(None, f), u.audio) for u in clips]
             for c, s in sessions.items()}
    ref = probs.get("ORT f32")
    table = []
    for c in COLUMNS:
        if c not in probs:
            continue
        p = probs[c]
        agree = np.mean([frame_agreement(a, b) for a, b in zip(p, ref)]) if ref else np.nan
        segs = [speech_segments(a, len(u.audio)) for a, u in zip(p, clips)]
        truth = np.mean([iou(s, u.speech, len(u.audio)) for s, u in zip(segs, clips)])
        vs_f32 = np.mean([iou(s, speech_segments(r, len(u.audio)), len(u.audio))
                          for s, r, u in zip(segs, ref, clips)]) if ref else np.nan
        dp = np.mean([np.abs(a - b).max() for a, b in zip(p, ref)]) if ref else np.nan
        table.append([c, fmt(float(agree), 4), fmt(float(truth), 4), fmt(float(vs_f32), 4),
                      fmt(float(dp), 4)])
    out = [f"VAD ({VAD}): {args.clips} clips of {args.seconds:g} s, state carried between "
           f"512-sample chunks", "",
           format_table(["contender", "chunks agree", "IoU vs truth", "IoU vs f32",
                         "max|dp|"], table)]
    x = vad_chunks(clips[0].audio)[10]
    feeds = {"input": x, "state": np.zeros(VAD_MODELS[VAD].shapes["state"], np.float32)}
    log("timing vad")
    lat = [("silero chunk 1x576", timings(sessions, feeds, args.budget))]
    return out, lat, notes


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=6)
    ap.add_argument("--lines", type=int, default=24)
    ap.add_argument("--calib", type=int, default=16, help="calibration inputs per model")
    ap.add_argument("--clips", type=int, default=2, help="VAD evaluation clips")
    ap.add_argument("--seconds", type=float, default=8.0, help="VAD clip length")
    ap.add_argument("--budget", type=float, default=6.0, help="seconds of timing per model")
    args = ap.parse_args(argv)
    logging.getLogger().setLevel(logging.ERROR)  # quantize_static's pre-processing advice
    missing = [m.package for m in (*OCR_MODELS.values(), VAD_MODELS[VAD])
               if model_file(m) is None]
    if missing or fonts.missing() or not speech.available():
        raise SystemExit("needs: pip install --no-deps silero-vad==6.2.3 "
                         f"rapidocr-onnxruntime==1.4.4 and {fonts.PIP_LINE} {speech.PIP}")
    before = machine_line()
    with tempfile.TemporaryDirectory(prefix="qnnc-corpus-") as tmp:
        for k in ("det", "cls", "rec", "vad"):
            (Path(tmp) / k).mkdir()
        ocr_acc, ocr_lat, n1 = ocr(args, Path(tmp))
        vad_acc, vad_lat, n2 = vad(args, Path(tmp))
    load = load_average()
    cpus = os.cpu_count() or 1
    print("\n".join([before, *ocr_acc, "", *vad_acc, "",
                     "Latency per call, single-threaded, interleaved rounds:",
                     *latency_table(ocr_lat + vad_lat), machine_line()]))
    if load > max(cpus - 1, 0.5):
        print(f"load {load:.2f} on {cpus} CPUs: other work shares the cores, so these "
              "latencies are too noisy to judge (ratios are less affected than times)")
    for n in n1 + n2:
        print(f"note: {n}")


if __name__ == "__main__":
    main()
