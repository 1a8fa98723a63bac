"""PP-OCR end to end: detector -> boxes -> direction classifier -> recogniser -> text.

The three models run through anything with ``run(output_names, feeds) -> [arrays]``: an
onnxruntime InferenceSession, a qnnc CompiledModel, or a wrapper of either. Every model takes
its input as ``x`` [1, 3, H, W], normalised as PP-OCR's own pre-processing does (det:
ImageNet mean/std; cls and rec: to [-1, 1]).

The recogniser has a symbolic width. qnnc compiles it once with a shape profile per width
of :data:`REC_WIDTHS` (:func:`rec_profiles` gives the ``--input-shape`` text); a crop is
resized to height 48 and padded (zeros after normalising, as PP-OCR pads) to the smallest
of them that holds it, or squeezed to the largest, and the compiled model picks the
profile from the padded feed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from compiler.corpus.ctc import corpus_accuracy, greedy_decode
from compiler.corpus.db_boxes import Box, db_boxes
from compiler.corpus.text_render import Page, box_iou, random_line, render_page

REC_HEIGHT, CLS_SHAPE = 48, (48, 192)
REC_WIDTHS: tuple[int, ...] = (160, 320, 640)
DET_MEAN, DET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
FLIP_THRESH = 0.9  # PP-OCR turns a crop over only when the classifier is this sure


def rec_profiles(widths: Sequence[int] = REC_WIDTHS) -> str:
    """The recogniser's shape profiles as --input-shape text: ``x=1x3x48x160|320|640``."""
    return f"x=1x3x{REC_HEIGHT}x{'|'.join(str(w) for w in sorted(widths))}"


class Session(Protocol):
    def run(self, output_names: Sequence[str] | None,
            feeds: dict[str, np.ndarray]) -> Sequence[np.ndarray]: ...


@dataclass
class OcrModels:
    """The three sessions, the detector's fixed input size (h, w) and the recogniser's
    alphabet (class index -> character)."""

    det: Session
    cls: Session
    rec: Session
    chars: Sequence[str]
    det_size: tuple[int, int] = (320, 320)
    rec_widths: tuple[int, ...] = REC_WIDTHS


@dataclass(frozen=True)
class Read:
    """One text region: its box in the image, the text, its mean character probability,
    and whether the classifier turned it over first."""

    box: Box
    text: str
    score: float
    flipped: bool = False


@dataclass
class OcrResult:
    reads: list[Read] = field(default_factory=list)

    @property
    def texts(self) -> list[str]:
        return [r.text for r in self.reads]


def _resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(img).resize((w, h), Image.Resampling.BILINEAR))


def det_input(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An RGB uint8 image stretched to ``size`` (h, w), as the detector's normalised input."""
    h, w = size
    x = _resize(image, w, h).astype(np.float64) / 255.0
    x = (x - DET_MEAN) / DET_STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def rec_width(crop_w: int, crop_h: int, widths: Sequence[int]) -> tuple[int, int]:
    """(width the crop is resized to at height 48, width it is padded to)."""
    want = max(1, math.ceil(REC_HEIGHT * crop_w / max(crop_h, 1)))
    fits = [w for w in sorted(widths) if w >= want]
    pad = fits[0] if fits else max(widths)
    return min(want, pad), pad


def line_input(crop: np.ndarray, width: int, pad_to: int) -> np.ndarray:
    """A line crop resized to 48 x ``width``, normalised to [-1, 1], zero-padded to
    ``pad_to`` on the right: [1, 3, 48, pad_to]."""
    x = _resize(crop, width, REC_HEIGHT).astype(np.float32) / 255.0
    out = np.zeros((1, 3, REC_HEIGHT, pad_to), np.float32)
    out[0, :, :, :width] = ((x - 0.5) / 0.5).transpose(2, 0, 1)
    return out


def upright(models: OcrModels, crop: np.ndarray) -> tuple[np.ndarray, bool]:
    """The crop, turned 180 degrees when the classifier says it is upside down."""
    w, pad = rec_width(crop.shape[1], crop.shape[0], [CLS_SHAPE[1]])
    probs = np.asarray(models.cls.run(None, {"x": line_input(crop, w, pad)})[0])[0]
    if int(probs.argmax()) == 1 and float(probs[1]) > FLIP_THRESH:
        return crop[::-1, ::-1], True
    return crop, False


def recognise(models: OcrModels, crop: np.ndarray) -> tuple[str, float]:
    w, pad = rec_width(crop.shape[1], crop.shape[0], models.rec_widths)
    probs = np.asarray(models.rec.run(None, {"x": line_input(crop, w, pad)})[0])[0]
    return greedy_decode(probs, models.chars)


def read_line(models: OcrModels, crop: np.ndarray, use_cls: bool = True) -> Read:
    """Classifier and recogniser on one line crop (no detection)."""
    flipped = False
    if use_cls:
        crop, flipped = upright(models, crop)
    text, score = recognise(models, crop)
    h, w = crop.shape[:2]
    return Read(Box(0, 0, w, h, 1.0), text, score, flipped)


def read_page(models: OcrModels, image: np.ndarray, use_cls: bool = True) -> OcrResult:
    """The whole pipeline on an RGB uint8 image."""
    h, w = image.shape[:2]
    dh, dw = models.det_size
    prob = np.asarray(models.det.run(None, {"x": det_input(image, models.det_size)})[0])
    out = OcrResult()
    for box in db_boxes(prob[0, 0]):
        b = box.scaled(w / dw, h / dh)
        x0, y0 = int(math.floor(b.x0)), int(math.floor(b.y0))
        x1, y1 = int(math.ceil(b.x1)), int(math.ceil(b.y1))
        crop = image[y0:y1, x0:x1]
        if crop.shape[0] < 2 or crop.shape[1] < 2:
            continue
        flipped = False
        if use_cls:
            crop, flipped = upright(models, crop)
        text, score = recognise(models, crop)
        out.reads.append(Read(b, text, score, flipped))
    return out


def match_page(result: OcrResult, page: Page) -> list[tuple[str, str]]:
    """(read, truth) pairs: each truth line gets the reads whose boxes overlap it most
    (left to right, joined); reads matching no line pair with "" (they cost their length).
    Spaces are dropped on both sides: the detector may split a line at a word gap."""
    owner: dict[int, list[Read]] = {}
    extra = []
    for r in result.reads:
        rb = (int(r.box.x0), int(r.box.y0), int(r.box.x1), int(r.box.y1))
        ious = [box_iou(rb, ln.box) for ln in page.lines]
        vs = [_overlap_y(rb, ln.box) for ln in page.lines]
        k = int(np.argmax(vs)) if vs else -1
        if k >= 0 and vs[k] > 0.5 and (ious[k] > 0 or vs[k] > 0.8):
            owner.setdefault(k, []).append(r)
        else:
            extra.append(r)
    pairs = []
    for k, ln in enumerate(page.lines):
        reads = sorted(owner.get(k, []), key=lambda r: r.box.x0)
        pairs.append(("".join(r.text for r in reads).replace(" ", ""),
                      ln.text.replace(" ", "")))
    pairs += [(r.text.replace(" ", ""), "") for r in extra]
    return pairs


def _overlap_y(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """How much of the shorter of the two boxes' vertical spans the other covers, when
    they also overlap horizontally (else 0)."""
    if min(a[2], b[2]) <= max(a[0], b[0]):
        return 0.0
    inter = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return inter / max(1, min(a[3] - a[1], b[3] - b[1]))


def page_accuracy(results: Sequence[OcrResult], pages: Sequence[Page]) -> float:
    """Character accuracy of whole-page reads against the rendered truth."""
    return corpus_accuracy([p for r, pg in zip(results, pages) for p in match_page(r, pg)])


def calibration_feeds(model: str, dictionary: str, n: int, det_size: tuple[int, int] = (320, 320),
                      widths: Sequence[int] = REC_WIDTHS, seed: int = 500,
                      ) -> list[dict[str, np.ndarray]]:
    """``n`` inputs for ``model`` ("det", "cls" or "rec") made as the pipeline makes them,
    from rendered pages (det) or line crops (cls: every other one upside down), with seeds
    from ``seed`` on (keep them apart from the evaluation data's). Recogniser inputs are
    padded to the smallest of ``widths`` that holds the line, so they mix shapes."""
    out = []
    for i in range(n):
        rng = np.random.default_rng(seed + i)
        if model == "det":
            out.append({"x": det_input(render_page(*det_size, rng, dictionary).image,
                                       det_size)})
            continue
        img, _ = random_line(rng, dictionary)
        if model == "cls" and i % 2:
            img = img[::-1, ::-1]
        w, pad = rec_width(img.shape[1], img.shape[0],
                           [CLS_SHAPE[1]] if model == "cls" else widths)
        out.append({"x": line_input(img, w, pad)})
    return out
