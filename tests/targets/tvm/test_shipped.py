"""Trained models through the tvm target: PP-OCR's direction classifier (and, marked slow,
the PP-OCRv4 recogniser), shipped by rapidocr-onnxruntime, quantised on rendered text lines,
built by TVM: every integer tensor bit-exact with the interpreter (each one that leaves for a
float island made an output), the float outputs within rtol 1e-5 / atol 1e-5; and the
compiled model's answers on a line equal to the host build's."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

pytest.importorskip("tvm", reason="the tvm targets need Apache TVM (pip install 'qnnc[tvm]')")

from compiler.api import compile_model  # noqa: E402
from compiler.shipped_models import OCR_MODELS, model_file, ocr_input  # noqa: E402
from ir.graph import Graph  # noqa: E402
from ir.verifier import verify  # noqa: E402
from tests.targets.tvm.test_models import check_model  # noqa: E402


def quantised(name: str) -> tuple[onnx.ModelProto, Graph, list[dict[str, np.ndarray]]]:
    spec = OCR_MODELS[name]
    path = model_file(spec)
    if path is None:
        pytest.skip("rapidocr-onnxruntime is not installed (a test extra: pip install "
                    "--no-deps rapidocr-onnxruntime==1.4.4)")
    model = onnx.load(str(path))
    (inp, shape), = spec.shapes.items()
    calib = [{inp: ocr_input(name, shape, seed=s)} for s in range(4)]
    q = compile_model(model, input_shapes=spec.shapes, precision="int8",
                      calibration=calib).graph
    return model, q, calib


def exact_with_islands(q: Graph, feeds: dict[str, np.ndarray]) -> None:
    q = q.copy()
    q.outputs = [*q.outputs, *(n.x for n in q.nodes if n.op == "Dequantize")]
    verify(q)
    check_model(q, feeds)


def test_ocr_direction_classifier() -> None:
    model, q, _ = quantised("cls")
    assert {"QConv", "QLut", "QMul", "QGlobalAveragePool", "Softmax"} <= set(q.op_counts())
    (inp, shape), = OCR_MODELS["cls"].shapes.items()
    line = {inp: ocr_input("cls", shape, seed=9)}
    exact_with_islands(q, line)
    tvm = compile_model(q, target="tvm").run(None, line)[0]
    host = compile_model(q, target="host").run(None, line)[0]
    assert tvm.argmax(-1).tolist() == host.argmax(-1).tolist()
    np.testing.assert_allclose(tvm, host, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_ocr_recogniser() -> None:
    _, q, _ = quantised("rec")
    assert {"QMatMul", "LayerNormalization", "Softmax", "Transpose"} <= set(q.op_counts())
    (inp, shape), = OCR_MODELS["rec"].shapes.items()
    exact_with_islands(q, {inp: ocr_input("rec", shape, seed=9)})


def test_silero_vad_through_its_lstm() -> None:
    """Silero VAD (the STFT conv, the encoder, QLSTM, Pad, Gather, ReduceMean) quantised on
    speech-like audio, run chunk by chunk with its state carried: the tvm build's speech
    probabilities follow the interpreter's (exp and tanh come from LLVM, so a code of the
    LSTM's h may move by one: the probabilities within 0.02, the decisions equal)."""
    import onnxruntime as ort

    from compiler.shipped_models import STATE, VAD_MODELS, at_16k, speech_like, vad_chunks

    spec = VAD_MODELS["silero_vad"]
    path = model_file(spec)
    if path is None:
        pytest.skip("silero-vad is not installed (a test extra: pip install --no-deps "
                    "silero-vad==6.2.3)")
    model = at_16k(onnx.load(str(path)))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = {i.name for i in model.graph.input}

    def feeds(chunk: np.ndarray, state: np.ndarray) -> dict[str, np.ndarray]:
        f = {"input": chunk.astype(np.float32), "state": state,
             "sr": np.array(16000, np.int64)}
        return {k: v for k, v in f.items() if k in names}

    calib, state = [], np.zeros(STATE, np.float32)
    for chunk in vad_chunks(speech_like(1.5, seed=1)):
        calib.append(feeds(chunk, state))
        state = sess.run(None, calib[-1])[1]
    q = compile_model(model, input_shapes=dict(spec.shapes), precision="int8",
                      calibration=calib)
    assert {"QLSTM", "Pad", "Gather", "ReduceMean"} <= set(q.graph.op_counts())
    tvm = compile_model(q.graph, target="tvm")
    probs = []
    for cm in (q, tvm):
        state, p = np.zeros(STATE, np.float32), []
        for chunk in vad_chunks(speech_like(1.0, seed=7)):
            out = cm.run(None, feeds(chunk, state))
            p.append(float(np.asarray(out[0]).reshape(-1)[0]))
            state = out[1]
        probs.append(np.array(p))
    assert np.abs(probs[0] - probs[1]).max() <= 0.02
    assert ((probs[0] > 0.5) == (probs[1] > 0.5)).all()
