"""The shipped-model corpus as INT8 test cases: each model at a small shape, its calibration
samples and its evaluation feeds, all realistic (compiler/shipped_models.py: rendered text,
speech-like audio) and deterministic. Shared by the accelerator test and the goldens.

Silero VAD's calls carry a recurrent state: calibration and evaluation feeds hold the state
the f32 model reached on the audio before each chunk, so the state inputs see the values
they see in use. The sample-rate input is fixed to 16 kHz (as every call passes it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from compiler.api import compile_model
from compiler.shipped_models import (
    OCR_MODELS,
    VAD_MODELS,
    ShippedModel,
    at_16k,
    model_file,
    ocr_input,
    speech_like,
    vad_chunks,
)
from ir.graph import Graph
from ir.interpreter import run as interpret

Feeds = dict[str, np.ndarray]

#: the small shapes of the default run
SMALL_OCR = {"det": (1, 3, 64, 64), "rec": (1, 3, 48, 160), "cls": (1, 3, 48, 192)}
OCR_CALIB = 4  # rendered images per OCR model (seeds 1..4; seed 0 is the evaluation input)
VAD_SECONDS = 0.5  # of calibration audio (seed 1), every chunk with the state before it


@dataclass(frozen=True)
class CorpusCase:
    """One corpus model at one shape: ``shapes`` by input name."""

    name: str
    shipped: ShippedModel
    shapes: dict[str, tuple[int, ...]]

    @property
    def is_ocr(self) -> bool:
        return self.name in OCR_MODELS

    def path(self) -> Path | None:
        """The .onnx file, or None when its package is not installed."""
        return model_file(self.shipped)

    def model(self) -> onnx.ModelProto:
        """The ONNX model as compiled: Silero's sample rate fixed to 16 kHz."""
        path = self.path()
        assert path is not None, f"{self.shipped.package} is not installed"
        model = onnx.load(path)
        return model if self.is_ocr else at_16k(model)

    def calibration(self) -> list[Feeds]:
        if self.is_ocr:
            (shape,) = self.shapes.values()
            return [{"x": ocr_input(self.name, shape, seed=s)} for s in range(1, OCR_CALIB + 1)]
        return _vad_feeds(self, VAD_SECONDS, seed=1)

    def evaluation(self, calls: int = 2) -> list[Feeds]:
        """Feeds a test runs: one image, or ``calls`` consecutive chunks of other audio."""
        if self.is_ocr:
            (shape,) = self.shapes.values()
            return [{"x": ocr_input(self.name, shape, seed=0)}]
        feeds = _vad_feeds(self, VAD_SECONDS, seed=2)
        mid = len(feeds) // 2  # in the voiced part, past the silent start
        return feeds[mid:mid + calls]


def ocr_case(name: str, shape: tuple[int, ...] | None = None) -> CorpusCase:
    return CorpusCase(name, OCR_MODELS[name], {"x": shape or SMALL_OCR[name]})


def vad_case(name: str) -> CorpusCase:
    m = VAD_MODELS[name]
    return CorpusCase(name, m, dict(m.shapes))


def corpus_cases() -> list[CorpusCase]:
    """Every corpus model at its small shape: the three OCR models, the six Silero ones."""
    return [ocr_case(n) for n in sorted(OCR_MODELS)] + [vad_case(n) for n in sorted(VAD_MODELS)]


def _vad_f32_graph(name: str, shapes: tuple[tuple[str, tuple[int, ...]], ...]) -> Graph:
    model = at_16k(onnx.load(model_file(VAD_MODELS[name])))  # type: ignore[arg-type]
    return compile_model(model, input_shapes=dict(shapes)).graph


def _vad_feeds(case: CorpusCase, seconds: float, seed: int) -> list[Feeds]:
    """Every call over ``seconds`` of audio, with the state the f32 model (the reference
    interpreter) carried into it."""
    graph = _vad_f32_graph(case.name, tuple(case.shapes.items()))
    chunks = vad_chunks(speech_like(seconds, seed=seed))
    n = case.shapes["input"][0]
    calls = [np.concatenate(chunks[i:i + n]) for i in range(0, len(chunks) - n + 1, n)]
    state_names = [k for k in case.shapes if k != "input"]
    state = {k: np.zeros(case.shapes[k], np.float32) for k in state_names}
    out = []
    for x in calls:
        feeds = {"input": x, **state}
        out.append(feeds)
        _, *new = interpret(graph, feeds).values()
        state = {k: np.asarray(v, np.float32) for k, v in zip(state_names, new)}
    return out
