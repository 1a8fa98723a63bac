"""The corpus of real models that installed packages ship: PP-OCRv4 det/rec and the PP-OCR
direction classifier (rapidocr-onnxruntime), and Silero VAD's six models (silero-vad).

Each is imported at a fixed shape, run through the default f32 pipeline, and its reference
interpreter run and its host C build (-Wall -Werror) are compared with onnxruntime on
realistic inputs (compiler/shipped_models.py: rendered text, speech-like audio). The
packages are test extras installed with --no-deps; without one, its tests skip saying so.
A Silero model whose ops qnnc cannot import yet skips naming them (computed from the
converter table, so the test runs as soon as they are supported).

Tolerances (f32 against onnxruntime; summation orders differ, nothing else should):
- det: probability map max |diff| <= 1e-4, and the >0.3 text mask agrees on all but
  1e-4 of the pixels (only pixels within the difference of 0.3 may flip);
- rec: per-step probabilities max |diff| <= 1e-4, and the per-step argmax (the decoded
  character) equal wherever onnxruntime's top two differ by more than 1e-3;
- cls: probabilities max |diff| <= 1e-5, labels equal;
- Silero: speech probability max |diff| <= 1e-4 per chunk, and the state carried between
  calls within 1e-4 of onnxruntime's relative to its largest magnitude, over every call.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import onnx
import pytest

from compiler.api import compile_model
from compiler.frontend.registry import CONVERTERS, converter_key
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
from tests.codegen.harness import c_runner

ort = pytest.importorskip("onnxruntime")


def _path(m: ShippedModel) -> Path:
    p = model_file(m)
    if p is None:
        pytest.skip(f"{m.package.replace('_', '-')} is not installed (a test extra: "
                    f"pip install --no-deps, see README.md); it ships {m.path}")
    return p


def _ort(path: Path | onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    src = path.SerializeToString() if isinstance(path, onnx.ModelProto) else str(path)
    sess = ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds)))


# -- PP-OCR -------------------------------------------------------------------------------
def _compare_ocr(name: str, ref: np.ndarray, got: np.ndarray, who: str) -> None:
    assert got.shape == ref.shape, who
    diff = float(np.abs(got.astype(np.float64) - ref).max())
    if name == "det":
        assert diff <= 1e-4, (who, diff)
        flipped = float(np.mean((got > 0.3) != (ref > 0.3)))
        assert flipped <= 1e-4, (who, flipped)
        assert np.mean(ref > 0.3) > 0.05, "the rendered text should be detected"
    elif name == "rec":
        assert diff <= 1e-4, (who, diff)
        top2 = np.sort(ref, axis=-1)[..., -2:]
        clear = (top2[..., 1] - top2[..., 0]) > 1e-3
        same = got.argmax(-1) == ref.argmax(-1)
        assert same[clear].all(), (who, np.argwhere(~same & clear))
    else:
        assert diff <= 1e-5, (who, diff)
        assert (got.argmax(-1) == ref.argmax(-1)).all(), who


@functools.lru_cache(maxsize=4)
def _ocr_case(name: str, shape: tuple[int, ...]) -> tuple[Graph, np.ndarray, np.ndarray]:
    """(the f32 graph after the default pipeline, the input, onnxruntime's output)."""
    path = _path(OCR_MODELS[name])
    graph = compile_model(path, input_shapes={"x": shape}).graph
    x = ocr_input(name, shape)
    (ref,) = _ort(path, {"x": x}).values()
    return graph, x, ref


def _check_ocr(name: str, shape: tuple[int, ...], who: str, folder: Path) -> None:
    graph, x, ref = _ocr_case(name, shape)
    (out,) = [v.name for v in graph.outputs]
    got = interpret(graph, {"x": x}) if who == "interpreter" else c_runner(graph, folder)({"x": x})
    _compare_ocr(name, ref, got[out], who)


WHO = ["interpreter", "host C"]


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("name", sorted(OCR_MODELS))
def test_ppocr_f32_matches_onnxruntime(name: str, who: str, tmp_path: Path) -> None:
    _check_ocr(name, OCR_MODELS[name].shapes["x"], who, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize(("name", "shape"), [
    ("det", (1, 3, 640, 480)), ("rec", (2, 3, 48, 640)), ("cls", (4, 3, 48, 192))])
def test_ppocr_f32_larger_shapes(name: str, shape: tuple[int, ...], who: str,
                                 tmp_path: Path) -> None:
    _check_ocr(name, shape, who, tmp_path)


def test_cls_reads_upright_and_upside_down_text() -> None:
    """The synthetic inputs are realistic enough for the model to do its job: onnxruntime's
    classifier tells the upright line (label 0) from the rotated one (label 1)."""
    m = OCR_MODELS["cls"]
    (probs,) = _ort(_path(m), {"x": ocr_input("cls", (2, 3, 48, 192))}).values()
    assert list(probs.argmax(-1)) == [0, 1]


# -- Silero VAD ---------------------------------------------------------------------------
def _ops(g: onnx.GraphProto) -> set[str]:
    out = set()
    for n in g.node:
        out.add(converter_key(n.op_type, n.domain))
        for a in n.attribute:
            subs = [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)
            for sub in subs:
                out |= _ops(sub)
    return out


def _missing_ops(name: str) -> list[str]:
    p = model_file(VAD_MODELS[name])
    return [] if p is None else sorted(_ops(onnx.load(p).graph) - set(CONVERTERS))


def _vad_params() -> list:
    out = []
    for name in sorted(VAD_MODELS):
        missing = _missing_ops(name)
        marks = [pytest.mark.skip(reason=f"qnnc does not yet support {', '.join(missing)} "
                                  f"(used by {name})")] if missing else []
        out.append(pytest.param(name, marks=marks, id=name))
    return out


def _close_state(got: np.ndarray, ref: np.ndarray, who: str) -> None:
    assert got.shape == ref.shape, who
    rel = float(np.abs(got - ref).max() / max(float(np.abs(ref).max()), 1e-6))
    assert rel <= 1e-4, (who, rel)


def _check_vad(name: str, seconds: float, folder: Path) -> None:
    m = VAD_MODELS[name]
    path = _path(m)
    model = at_16k(onnx.load(path))
    graph = compile_model(model, input_shapes=m.shapes).graph
    chunks = vad_chunks(speech_like(seconds))
    state_names = [k for k in m.shapes if k != "input"]
    if name == "silero_vad_16k_sequence":  # one call over consecutive chunks
        n = m.shapes["input"][0]
        calls = [np.concatenate(chunks[i:i + n]) for i in range(0, len(chunks) - n + 1, n)]
    else:
        calls = chunks
    ort_in = [i.name for i in model.graph.input]
    runners = {"interpreter": lambda f: interpret(graph, f),
               "host C": c_runner(graph, folder / "c")}
    for who, runner in runners.items():
        state = {k: np.zeros(m.shapes[k], np.float32) for k in state_names}
        ref_state = dict(state)
        for x in calls:
            feeds = {"input": x, **state}
            ref = _ort(model, {k: v for k, v in {"input": x, **ref_state}.items()
                               if k in ort_in})
            got = runner(feeds)
            prob, *new_state = [got[v.name] for v in graph.outputs]
            ref_prob, *ref_new = list(ref.values())
            assert prob.shape == ref_prob.shape, who
            assert float(np.abs(prob - ref_prob).max()) <= 1e-4, (who, prob, ref_prob)
            for got_s, ref_s in zip(new_state, ref_new):
                _close_state(got_s, ref_s, who)
            state = dict(zip(state_names, new_state))
            ref_state = dict(zip(state_names, ref_new))


@pytest.mark.parametrize("name", _vad_params())
def test_silero_vad_f32_matches_onnxruntime(name: str, tmp_path: Path) -> None:
    _check_vad(name, 0.5, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", _vad_params())
def test_silero_vad_f32_three_seconds(name: str, tmp_path: Path) -> None:
    _check_vad(name, 3.0, tmp_path)


def test_speech_like_audio_is_detected_as_speech() -> None:
    """onnxruntime's Silero marks the voiced segments of the synthetic audio as speech and
    the leading silence as not: the signal exercises both sides of the detector."""
    m = VAD_MODELS["silero_vad_openvino_16k"]
    path = _path(m)
    state, probs = np.zeros(m.shapes["state"], np.float32), []
    for x in vad_chunks(speech_like(1.0)):
        prob, state = _ort(path, {"input": x, "state": state}).values()
        probs.append(float(prob.reshape(-1)[0]))
    assert probs[0] < 0.2 and max(probs) > 0.9, probs


@pytest.mark.slow
def test_rec_int8_shape_profiles_from_mixed_width_lines(tmp_path: Path) -> None:
    """The recogniser at two text-line widths as one INT8 host model, calibrated once on
    lines of four widths (two of them no profile's): each profile's C is bit-exact with the
    interpreter, and its decoded characters agree with onnxruntime f32 on most steps."""
    path = _path(OCR_MODELS["rec"])
    calib = [{"x": ocr_input("rec", (1, 3, 48, w), seed=s)}
             for s, w in enumerate((160, 200, 320, 280))]
    spec = "x=1x3x48x160|320"
    host = compile_model(path, input_shapes=spec, calibration=calib, target="host",
                         output_dir=tmp_path / "rec")
    interp = compile_model(path, input_shapes=spec, calibration=calib)
    for w in (160, 320):
        x = ocr_input("rec", (1, 3, 48, w), seed=100 + w)
        (got,) = host.run(None, {"x": x})
        (want,) = interp.run(None, {"x": x})
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)  # float softmax island
        ref = _ort(path, {"x": x})
        agree = float(np.mean(got.argmax(-1) == next(iter(ref.values())).argmax(-1)))
        assert agree >= 0.8, (w, agree)


def test_vad_sequence_model_as_shape_profiles() -> None:
    """Silero's whole-sequence model, whose chunk count is its symbolic dimension
    ``sequence_length``, compiled for 1 and 4 chunks into one host model: each call picks
    its profile and matches onnxruntime f32 (probabilities and the LSTM's h, c within
    1e-4)."""
    path = _path(VAD_MODELS["silero_vad_16k_sequence"])
    cm = compile_model(path, input_shapes="sequence_length=1|4", target="host")
    chunks = np.stack(vad_chunks(speech_like(1.0, seed=3)))[:, 0, :].astype(np.float32)
    for k, n in enumerate((1, 4)):
        feeds = {"input": chunks[:n], "h": np.zeros((1, 1, 128), np.float32),
                 "c": np.zeros((1, 1, 128), np.float32)}
        got = cm.run(None, feeds)
        assert cm.last_profile == k
        want = _ort(path, feeds)
        for name, a in zip(cm.output_names, got):
            np.testing.assert_allclose(a, want[name], rtol=0, atol=1e-4)
