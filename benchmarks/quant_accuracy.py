"""INT8 accuracy of qnnc's calibration methods next to onnxruntime's static quantisation.

For each example model, the output SQNR (dB, higher is better) of the INT8 model against its
float original, on held-out samples, for:

- qnnc with each observer (minmax, percentile, entropy, mse, layerwise, auto): the float
  graph after the default pipeline (BatchNorm folded) is calibrated and quantised with
  quantize_graph
  (u8 activations, per-channel i8 weights) and run by the reference interpreter; the
  reference is the same float graph on the interpreter.
- onnxruntime.quantization.quantize_static on the original ONNX model with QuantFormat.QDQ,
  per_channel=True, CalibrationMethod.MinMax, activations QUInt8, weights QInt8, run by
  onnxruntime's CPU provider; the reference is the float model on onnxruntime. Models below
  opset 13 are converted to 13 first (per-channel QDQ needs it). Column ort-minmax is that
  configuration; ort-sm-f32 the same with the Softmax nodes excluded (nodes_to_exclude),
  because onnxruntime quantises a Softmax output to u8 at scale 1/255 — which alone caps the
  SQNR of a 1000-class classifier — while qnnc leaves Softmax in f32.

Both tools calibrate on the same N(0, 1) arrays (the example models are built so that such
inputs keep activations of order one: images for the CNNs, hidden states for the encoder)
and are tested on the same separate arrays. The "ref" column is the SQNR of the
interpreter's float output against onnxruntime's float output, a check that both sides
start from the same function. The best figure per model is marked with *.

    python -m benchmarks.quant_accuracy [--models resnet50,bert_encoder] [--calib 8] [--test 4]
        [--seed 1]

Random inputs are not natural data: the figures compare quantisation methods on the same
footing, not predict the accuracy of a trained network on its data set.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import version_converter
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)

from compiler.api import DEFAULT_CALIB_METHOD
from compiler.examples import build_example
from compiler.frontend.importer import import_model
from compiler.ort_compare import ORT_MIN_OPSET
from compiler.passes import DEFAULT_PIPELINE, run_pipeline
from compiler.quant.accuracy import ErrorStats, output_stats
from compiler.quant.calibrate import METHODS, Calibrator
from compiler.quant.method_choice import resolve
from compiler.quant.quantize import QuantConfig, quantize_graph
from ir.graph import Graph, Node
from ir.interpreter import run

MODELS = ["resnet50", "squeezenet", "shufflenet", "inception_v1", "densenet121",
          "mobilenetv2", "bert_encoder", "yolo"]
ORT_COLUMN = "ort-minmax"
#: onnxruntime again with every Softmax node excluded from quantisation: it otherwise
#: quantises the Softmax output (u8, scale 1/255, so class probabilities of ~1e-3 round to
#: 0), where qnnc keeps Softmax as a float island — this column compares like with like
ORT_SOFTMAX_F32 = "ort-sm-f32"
# older zoo models are converted to ORT_MIN_OPSET first (their float outputs are the reference
# on the onnxruntime side)
Feeds = dict[str, np.ndarray]


def make_samples(graph: Graph, n: int, seed: int) -> list[Feeds]:
    """``n`` feeds of N(0, 1) float32 values for every graph input."""
    rng = np.random.default_rng(seed)
    return [{v.name: rng.standard_normal(v.type.shape).astype(np.float32)
             for v in graph.inputs} for _ in range(n)]


def calibrate_all(graph: Graph, samples: list[Feeds]) -> tuple[dict[str, dict], dict]:
    """Ranges for every qnnc method, and the channel means for bias correction, from ONE
    interpreter pass per sample (the observers are independent, so the four calibrations
    share the float runs)."""
    cals = {m: Calibrator(graph, m) for m in METHODS}

    def observe(node: Node, outs: list[np.ndarray]) -> None:
        for cal in cals.values():
            for v, a in zip(node.outputs, outs):
                cal.observe(v.name, a)

    for feeds in samples:
        for cal in cals.values():
            cal.keep(feeds)  # the samples layerwise scores its candidates on
            for name, a in feeds.items():
                cal.observe(name, a)
        run(graph, feeds, observe=observe)
    means = next(iter(cals.values())).channel_means()
    # auto's choice quantises with each candidate's ranges (the quantiser's defaults)
    return {m: resolve(cal.calibration(), QuantConfig()).ranges if m == "auto" else
            cal.ranges() for m, cal in cals.items()}, means


def sqnr(outputs: list[Feeds], reference: list[Feeds]) -> float:
    """The lowest output SQNR over all outputs, accumulated over the samples."""
    stats: dict[str, ErrorStats] = {}
    for got, ref in zip(outputs, reference):
        for name, r in ref.items():
            stats.setdefault(name, ErrorStats()).update(r, got[name])
    return min(s.sqnr_db for s in stats.values())


class _Reader(CalibrationDataReader):
    def __init__(self, samples: list[Feeds]) -> None:
        self.it = iter(samples)

    def get_next(self) -> Feeds | None:
        return next(self.it, None)


def _session(model: onnx.ModelProto | str) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    data = model if isinstance(model, str) else model.SerializeToString()
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)


def ort_int8(model: onnx.ModelProto, calib: list[Feeds], test: list[Feeds],
             exclude: Sequence[str] = ()) -> tuple[list[Feeds], list[Feeds]]:
    """(float outputs, INT8 outputs) of onnxruntime on ``test``; ``exclude`` names nodes
    quantize_static must leave in float."""
    if _opset(model) < ORT_MIN_OPSET:
        model = version_converter.convert_version(model, ORT_MIN_OPSET)
    names = [o.name for o in model.graph.output]
    fsess = _session(model)
    ref = [dict(zip(names, fsess.run(names, f))) for f in test]
    with tempfile.TemporaryDirectory() as tmp:
        src, path = str(Path(tmp) / "float.onnx"), str(Path(tmp) / "int8.onnx")
        onnx.save(model, src)  # a path: quantize_static may rewrite a ModelProto in place
        quantize_static(src, path, _Reader(calib), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax,
                        nodes_to_exclude=list(exclude) or None)
        qsess = _session(path)
        got = [dict(zip(names, qsess.run(names, f))) for f in test]
    return ref, got


def bench(name: str, n_calib: int, n_test: int, seed: int = 1) -> dict[str, float]:
    """SQNR per method (qnnc observers, onnxruntime) and the float cross-check, in dB;
    ``seed`` draws the calibration arrays (seed 2*seed - 1) and the test arrays (2*seed)."""
    t0 = time.perf_counter()
    model = build_example(name)
    graph = run_pipeline(import_model(model), DEFAULT_PIPELINE)
    calib = make_samples(graph, n_calib, seed=2 * seed - 1)
    test = make_samples(graph, n_test, seed=2 * seed)
    reference = [run(graph, f) for f in test]
    all_ranges, means = calibrate_all(graph, calib)
    log(f"{name}: calibrated on {n_calib} samples ({time.perf_counter() - t0:.0f} s)")
    row: dict[str, float] = {}
    for method, ranges in all_ranges.items():
        q = quantize_graph(graph, ranges, None, means)  # the default: bias correction on
        stats: dict[str, ErrorStats] = {}
        for feeds, ref in zip(test, reference):
            output_stats(q, run(q, feeds), ref, stats)
        row[method] = min(s.sqnr_db for s in stats.values())
    log(f"{name}: qnnc done ({time.perf_counter() - t0:.0f} s)")
    ort_ref, ort_got = ort_int8(model, calib, test)
    row[ORT_COLUMN] = sqnr(ort_got, ort_ref)
    softmax = [n.name for n in model.graph.node if n.op_type == "Softmax"]
    if softmax:
        row[ORT_SOFTMAX_F32] = sqnr(*reversed(ort_int8(model, calib, test, softmax)))
    else:
        row[ORT_SOFTMAX_F32] = row[ORT_COLUMN]  # the same configuration
    row["ref"] = sqnr(reference, ort_ref)
    log(f"{name}: onnxruntime done ({time.perf_counter() - t0:.0f} s)")
    return row


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _cell(x: float, best: bool) -> str:
    text = "inf" if x == math.inf else f"{x:.2f}"
    return text + ("*" if best else " ")


def table(rows: dict[str, dict[str, float]]) -> str:
    cols = [*METHODS, ORT_COLUMN, ORT_SOFTMAX_F32]
    lines = [f"{'model':<14}" + "".join(f"{c:>13}" for c in cols) + f"{'ref':>10}"]
    for name, row in rows.items():
        best = max(row[c] for c in cols)
        cells = "".join(f"{_cell(row[c], row[c] == best):>13}" for c in cols)
        lines.append(f"{name:<14}{cells}{_cell(row['ref'], False):>10}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated examples")
    ap.add_argument("--calib", type=int, default=8, help="calibration samples per model")
    ap.add_argument("--test", type=int, default=4, help="held-out test samples per model")
    ap.add_argument("--seed", type=int, default=1,
                    help="which random arrays: calibration from seed 2*S-1, test from 2*S")
    args = ap.parse_args(argv)
    logging.getLogger().setLevel(logging.ERROR)  # quantize_static's pre-processing advice
    print("INT8 output SQNR vs float (dB, higher is better; * = best per model)")
    print("qnnc: default pipeline, quantize_graph (u8 activations, per-channel i8 weights, "
          f"bias correction), reference interpreter; the compile default is {DEFAULT_CALIB_METHOD}")
    print("onnxruntime", ort.__version__, ": quantize_static, QuantFormat.QDQ, "
          "per_channel=True, CalibrationMethod.MinMax, activations QUInt8, weights QInt8; "
          f"{ORT_SOFTMAX_F32}: the same with Softmax nodes excluded (qnnc keeps Softmax f32)")
    print(f"data: N(0,1) inputs (seed {args.seed}), {args.calib} calibration and {args.test} "
          "test samples per model, the same arrays for both; "
          "ref = interpreter float vs onnxruntime float",
          flush=True)
    rows: dict[str, dict[str, float]] = {}
    t0 = time.perf_counter()
    for name in [m for m in args.models.split(",") if m]:
        rows[name] = bench(name, args.calib, args.test, args.seed)
    print(table(rows))
    margins = {name: row[DEFAULT_CALIB_METHOD] - row[ORT_COLUMN] for name, row in rows.items()}
    print(f"qnnc's default ({DEFAULT_CALIB_METHOD}) minus {ORT_COLUMN}, dB: "
          + ", ".join(f"{n} {m:+.2f}" for n, m in margins.items()))
    verdict = "yes" if all(m >= 0 for m in margins.values()) else "NO"
    print(f"default at least as accurate as onnxruntime on every model: {verdict}")
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
