"""INT8 on a trained recurrent model: Silero VAD (silero_vad_openvino_16k.onnx, a conv front
end and an LSTM) quantised by qnnc and by onnxruntime's quantize_dynamic, each run over 3 s of
speech-like audio with its own state carried from call to call, against onnxruntime f32.

    python -m benchmarks.silero_int8

Calibration uses other audio (seed 1) than the evaluation (seed 2). Prints, per contender,
the largest and mean difference of the speech probability and the share of chunks whose
speech decision (p > 0.5) agrees with f32. Accuracy only: nothing is timed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic

from compiler.api import compile_model
from compiler.shipped_models import STATE, VAD_MODELS, model_file, speech_like, vad_chunks
from ir.interpreter import run as interpret

Feeds = dict[str, np.ndarray]
Step = Callable[[Feeds], list[np.ndarray]]


def roll(step: Step, audio: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[Feeds]]:
    """Speech probability per chunk, and the feeds given, carrying the state between calls."""
    state = np.zeros(STATE, np.float32)
    probs, feeds = [], []
    for x in vad_chunks(audio):
        f = {names[0]: x, names[1]: state}
        feeds.append(f)
        p, state = step(f)
        probs.append(float(np.ravel(p)[0]))
    return np.array(probs), feeds


def main() -> None:
    model = VAD_MODELS["silero_vad_openvino_16k"]
    path = model_file(model)
    if path is None:
        raise SystemExit("silero-vad is not installed: pip install --no-deps silero-vad==6.2.3")
    m = onnx.load(path)
    ins, outs = [i.name for i in m.graph.input], [o.name for o in m.graph.output]
    f32 = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    _, calib = roll(lambda f: f32.run(None, f), speech_like(3.0, seed=1), ins)
    audio = speech_like(3.0, seed=2)
    ref, _ = roll(lambda f: f32.run(None, f), audio, ins)
    graph = compile_model(path, input_shapes=model.shapes,
                          precision="int8", calibration=calib).graph
    qnnc, _ = roll(lambda f: [interpret(graph, f)[o] for o in outs], audio, ins)
    with tempfile.TemporaryDirectory() as d:
        qpath = Path(d) / "dynamic.onnx"
        quantize_dynamic(path, qpath, weight_type=QuantType.QInt8,
                         op_types_to_quantize=["LSTM", "MatMul", "Gemm"])
        qs = ort.InferenceSession(str(qpath), providers=["CPUExecutionProvider"])
        dyn, _ = roll(lambda f: qs.run(None, f), audio, ins)
    print(f"{len(ref)} chunks, {np.mean(ref > 0.5):.2f} of them speech by onnxruntime f32")
    for name, p in (("qnnc int8 (interpreter)", qnnc), ("ORT quantize_dynamic", dyn)):
        agree = np.mean((p > 0.5) == (ref > 0.5))
        print(f"{name:24s} max|dp| {np.abs(p - ref).max():.4f}  mean|dp| "
              f"{np.abs(p - ref).mean():.4f}  decisions agree {agree:.3f}")


if __name__ == "__main__":
    main()
