"""Goldens of the shipped, trained models (PP-OCR det/rec/cls from rapidocr-onnxruntime, the
Silero VAD models from silero-vad): each compiled the way a user would, with qnnc's defaults
and shape profiles only, on the realistic inputs of tests/models/corpus_cases.py.

Where corpus.py's models are tiny graphs recorded on every target, these are real layer
mixes recorded on the targets that show something: the reference interpreter (f32 and INT8),
the host C, and one accelerator profile each so every profile holds a trained model's golden.
The recogniser is compiled with two width profiles, calibrated once on lines of both widths
and recorded at one, so the golden also pins that run() picks the profile by the input's
shape. The packages are test extras
(installed without their dependencies, see README.md): without them the tests skip.

The calibration feeds of the VAD models carry the recurrent state the f32 model reached on
the audio; it is rounded to a 2^-12 grid so that a last-bit difference in the float
reference that produced it (a BLAS build, a numpy version) does not change the data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from compiler.api import CompiledModel, compile_model
from compiler.golden import compile_target
from compiler.shipped_models import ocr_input
from tests.golden.corpus import DATA, arrays_sha256, graph_sha256
from tests.models.corpus_cases import CorpusCase, ocr_case, vad_case

Feeds = dict[str, np.ndarray]
#: the grid the VAD calibration state is rounded to
STATE_GRID = 2.0 ** -12


@dataclass(frozen=True)
class ShippedCase:
    """One shipped model: ``profiles`` is the ``input_shapes`` it is compiled with (None: its
    corpus shape), ``record`` the shape of the recorded input when it differs from the corpus
    case's, ``targets`` the (target, precision) pairs recorded and ``slow`` those left to
    ``-m slow`` (a C build of an OCR model takes half a minute cold)."""

    name: str
    case: CorpusCase
    targets: tuple[tuple[str, str], ...]
    slow: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    profiles: str | None = None
    record: tuple[int, ...] | None = None
    calib_shapes: tuple[tuple[int, ...], ...] = ()
    #: absolute tolerance between two float implementations (host C and numpy) of its
    #: float outputs, where the default 1e-6 is too tight for the model's arithmetic
    float_atol: float = 1e-6

    def available(self) -> bool:
        return self.case.path() is not None

    def model(self) -> onnx.ModelProto:
        return self.case.model()

    def input_shapes(self) -> str | dict[str, tuple[int, ...]]:
        return self.profiles or self.case.shapes

    def inputs(self) -> Feeds:
        if self.record is not None:
            return {"x": ocr_input(self.case.name, self.record, seed=0)}
        return self.case.evaluation(calls=1)[0]

    def calibration(self) -> list[Feeds]:
        if self.calib_shapes:
            # samples at every profile's shape: one calibration for all profiles
            return [{"x": ocr_input(self.case.name, s, seed=i + 1)}
                    for i, s in enumerate(self.calib_shapes)]
        feeds = self.case.calibration()
        if self.case.is_ocr:
            return feeds
        return [{k: v if k == "input" else (np.round(v / STATE_GRID) * STATE_GRID
                                            ).astype(np.float32) for k, v in f.items()}
                for f in feeds]


def feeds_sha256(feeds: list[Feeds]) -> str:
    h = hashlib.sha256()
    for f in feeds:
        h.update(arrays_sha256(f).encode())
    return h.hexdigest()


SHIPPED = [
    ShippedCase("ppocr_det", ocr_case("det"),
                (("interp", "f32"), ("interp", "int8"), ("host", "int8"),
                 ("ascend910b", "int8")),
                slow=frozenset({("host", "int8"), ("ascend910b", "int8")})),
    # recorded at the narrower width: its [1, T, 6625] float output is most of the bytes
    ShippedCase("ppocr_rec", ocr_case("rec"),
                (("interp", "int8"), ("host", "int8"), ("mlu370x8", "int8")),
                slow=frozenset({("host", "int8"), ("mlu370x8", "int8")}),
                profiles="x=1x3x48x80|160", record=(1, 3, 48, 80),
                calib_shapes=((1, 3, 48, 80), (1, 3, 48, 160)) * 2),
    ShippedCase("ppocr_cls", ocr_case("cls"),
                (("interp", "f32"), ("interp", "int8"), ("host", "int8"), ("thinker2", "int8")),
                slow=frozenset({("host", "int8"), ("thinker2", "int8")})),
    # its float LSTM state runs through a 258-tap STFT convolution and the recurrence: the
    # sum order of C against numpy moves it by ~2e-6 (values within [-1, 1])
    ShippedCase("silero_vad", vad_case("silero_vad"),
                (("interp", "f32"), ("interp", "int8"), ("host", "f32"), ("host", "int8"),
                 ("ascend310p", "int8")), float_atol=1e-5),
    ShippedCase("silero_vad_openvino_16k", vad_case("silero_vad_openvino_16k"),
                (("interp", "int8"), ("mlu370x8", "int8"))),
    ShippedCase("silero_vad_16k_sequence", vad_case("silero_vad_16k_sequence"),
                (("interp", "int8"), ("thinker2", "int8")),
                slow=frozenset({("thinker2", "int8")})),
    ShippedCase("silero_vad_half", vad_case("silero_vad_half"),
                (("interp", "int8"), ("ascend910b", "int8")),
                slow=frozenset({("ascend910b", "int8")})),
]


def folder(case: ShippedCase, target: str, precision: str) -> Path:
    return DATA / case.name / f"{target}-{precision}"


def compile_shipped(case: ShippedCase, target: str, precision: str
                    ) -> tuple[CompiledModel, dict]:
    """Compile ``case`` for a golden target and precision, with the manifest entries that
    pin what was compiled (the model graph's and the calibration feeds' sha256)."""
    model = case.model()
    calib = case.calibration() if precision == "int8" else None
    # the same int8 weight codes for every target and machine (see corpus.compile_case)
    cm = compile_model(model, target=compile_target(target), precision=precision,
                       calibration=calib, input_shapes=case.input_shapes(), weight_range="int8")
    pins = {"model": case.name, "graph_sha256": graph_sha256(model),
            "calibration_sha256": feeds_sha256(calib) if calib is not None else None,
            "input_shapes": str(case.input_shapes())}
    return cm, {"corpus": pins}
