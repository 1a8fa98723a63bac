"""Pre-quantised QDQ versions of the example CNNs: qnnc (lower-qdq, interpreter) against
onnxruntime's integer kernels on the same file, compared on the final u8 codes.

Each model is converted to opset 13 at least (per-axis DequantizeLinear), pre-processed
(onnxruntime's quant_pre_process: shape inference, BatchNorm folded into Conv), quantised by
onnxruntime's quantize_static as the tests do (QDQ, per-channel 7-bit int8 weights, u8
activations, MinMax on random data; tests/frontend/test_ort_prequantised.py says why 7-bit),
imported by qnnc and lowered with lower-qdq. Prints per model: the fraction of output codes
bit-exact and within one step, and the largest difference in steps, against onnxruntime
with its default optimisations (integer kernels) and without them (the QDQ graph's literal
float meaning). Deep networks carry one-step requantisation differences from layer to
layer, so outputs may differ by more than one step; that is what this measures. Not a test.

    python -m benchmarks.prequantised [--models resnet50,mobilenetv2] [--samples 4]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import onnx
import onnx.version_converter
from onnxruntime.quantization import quant_pre_process

from compiler.examples import build_example
from tests.frontend.test_ort_prequantised import (
    compare_codes,
    lower,
    quantise_qdq,
    random_feeds,
)


def measure(name: str, samples: int, calib: int, work: Path) -> None:
    t0 = time.perf_counter()
    raw = work / f"{name}.onnx"
    model = build_example(name)
    if model.opset_import[0].version < 13:  # per-axis DequantizeLinear needs opset 13
        model = onnx.version_converter.convert_version(model, 13)
    onnx.save(model, str(raw))
    pre = work / f"{name}.pre.onnx"
    quant_pre_process(str(raw), str(pre))
    path = work / f"{name}.qdq.onnx"
    quantise_qdq(onnx.load(str(pre)), path, samples=calib)
    graph = lower(path)
    ops = graph.op_counts()
    t1 = time.perf_counter()
    integer = sum(v for k, v in ops.items() if k.startswith("Q") and k != "Quantize")
    floats = {k: v for k, v in ops.items() if k in ("Conv", "Gemm", "MatMul", "Add")}
    print(f"{name}: quantised and lowered in {t1 - t0:.0f} s; {integer} integer ops, "
          f"float compute ops left: {floats or 'none'}")
    feeds = random_feeds(onnx.load(str(path)), samples, seed=7)
    for optimise, label in ((True, "onnxruntime integer kernels"),
                            (False, "onnxruntime unoptimised QDQ")):
        exact, near, worst = compare_codes(path, graph, feeds, optimise)
        print(f"  vs {label:28s}: {100 * exact:5.1f}% bit-exact, {100 * near:5.1f}% within "
              f"one step, max {worst} step(s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="resnet50,mobilenetv2")
    ap.add_argument("--samples", type=int, default=4, help="random inputs compared")
    ap.add_argument("--calib", type=int, default=8, help="random calibration samples")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            measure(name.strip(), args.samples, args.calib, Path(tmp))


if __name__ == "__main__":
    main()
