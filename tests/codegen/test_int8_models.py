"""Quantised models compiled for the host: bit-exact with the reference interpreter.

The digits CNN and the tiny example CNN go through the public API (precision="int8",
target="host"); MobileNetV2 and ResNet-50 (slow) are quantised here so that the last
integer tensor can be an extra output: ResNet-50 ends in a float Softmax, whose libm-based
C is compared with a stated tolerance while every integer tensor must match exactly. The
slow zoo tests also print single-thread latency next to onnxruntime running the float model.
Inception v1 (slow) goes through the public API, with its LRN float islands checked too.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from compiler.api import compile_model
from compiler.examples import build_example
from compiler.frontend import import_model
from compiler.io import random_inputs
from compiler.passes import DEFAULT_PIPELINE, run_pipeline
from compiler.quant.calibrate import calibrate
from compiler.quant.quantize import quantize_graph
from ir.graph import Graph
from ir.interpreter import run as interpret
from ir.verifier import verify
from targets.host.cpu import detect_level

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "digits_cnn.onnx"
CPUS = ["generic", detect_level()] if detect_level() != "generic" else ["generic"]


def assert_same(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("cpu", CPUS)
def test_digits_int8_host_bit_exact(cpu: str, tmp_path: Path) -> None:
    check_digits(target="host", cpu=cpu, werror=True, cache_dir=tmp_path)


@pytest.mark.parametrize("weight_range", ["paired", "int7"])
def test_digits_u8s8_weights_host_bit_exact(weight_range: str, tmp_path: Path) -> None:
    """With weights the u8 x s8 kernel takes, every convolution of the trained digits CNN
    runs it (the C says so), bit-exact with the interpreter and still classifying."""
    check_digits(target="host", weight_range=weight_range, werror=True, cache_dir=tmp_path)
    (source,) = [f.read_text() for f in tmp_path.rglob("model.c")]
    assert source.count("qnnc_q8u_tiles_req(") == 3


def check_digits(**options: Any) -> None:
    """The trained digits CNN compiled INT8 with ``options``: 40 held-out digits bit-exact
    with the interpreter on the same graph, and still classified."""
    from compiler.datasets import digits_split

    xtr, _, xte, yte = digits_split()
    cm = compile_model(str(FIXTURE), precision="int8", calibration={"input": xtr[:200, None]},
                       **options)
    ops = cm.graph.op_counts()
    assert ops.get("QConv") == 3 and ops.get("QLinear") == 1
    hits = 0
    for i in range(40):
        x = xte[i:i + 1]
        got = cm.run(None, {"input": x})
        want = interpret(cm.graph, {"input": x})
        assert_same(got, [want[n] for n in cm.output_names])
        hits += int(got[0].argmax() == yte[i])
    assert hits >= 36  # the quantised net still classifies (98% in float)


@pytest.mark.parametrize("cpu", CPUS)
def test_tiny_cnn_int8_host_bit_exact(cpu: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    calib = {"input": rng.standard_normal((16, 1, 1, 8, 8)).astype(np.float32)}
    model = build_example("tiny_cnn")
    cm = compile_model(model, precision="int8", calibration=calib, target="host", cpu=cpu,
                       werror=True, cache_dir=tmp_path)
    assert "QConv" in cm.graph.op_counts()
    name = cm.input_names[0]
    for seed in range(5):
        x = np.random.default_rng(seed + 10).standard_normal((1, 1, 8, 8)).astype(np.float32)
        want = interpret(cm.graph, {name: x})
        assert_same(cm.run(None, {name: x}), [want[n] for n in cm.output_names])


# -- model zoo (slow) -------------------------------------------------------------------------
def quantised(name: str, samples: int = 3) -> tuple[Graph, object]:
    model = build_example(name)
    g = run_pipeline(import_model(model), DEFAULT_PIPELINE)
    x = g.inputs[0]
    rng = np.random.default_rng(1)
    data = {x.name: rng.standard_normal((samples, *x.type.shape)).astype(np.float32)}
    q = quantize_graph(g, calibrate(g, data, "minmax"))
    # expose the last integer tensor (the input of the final Dequantize) as an output too
    deq = [n for n in q.nodes if n.op == "Dequantize"]
    assert deq
    last = deq[-1].inputs[0]
    assert last is not None
    q.outputs = [*q.outputs, last]
    verify(q)
    return q, model


def _ort_float_seconds(model: object, x: np.ndarray, reps: int) -> float:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts,  # type: ignore[attr-defined]
                                providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: x}
    sess.run(None, feed)
    t = time.perf_counter()
    for _ in range(reps):
        sess.run(None, feed)
    return (time.perf_counter() - t) / reps


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobilenetv2", "resnet50"])
def test_zoo_int8_host_bit_exact(name: str, tmp_path: Path) -> None:
    q, model = quantised(name)
    cm = compile_model(q, pipeline=[], target="host", cpu=detect_level(), werror=True,
                       cache_dir=tmp_path)
    inp = q.inputs[0]
    made_by = q.producers()
    for seed in range(2):
        x = np.random.default_rng(seed + 5).standard_normal(inp.type.shape).astype(np.float32)
        got = cm.run(None, {inp.name: x})
        want = [interpret(q, {inp.name: x})[n] for n in cm.output_names]
        for g, w, v in zip(got, want, q.outputs, strict=True):
            assert g.dtype == w.dtype and g.shape == w.shape
            if made_by[id(v)].op == "Softmax":  # a float island: libm, not integers
                np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-7)
            else:
                np.testing.assert_array_equal(g, w)
    x = np.random.default_rng(0).standard_normal(inp.type.shape).astype(np.float32)
    cm.run(None, {inp.name: x})
    reps = 5
    t = time.perf_counter()
    for _ in range(reps):
        cm.run(None, {inp.name: x})
    ours = (time.perf_counter() - t) / reps
    ort_f32 = _ort_float_seconds(model, x, reps)
    print(f"\n{name}: qnnc int8 host ({detect_level()}, 1 thread) {ours * 1e3:.1f} ms; "
          f"onnxruntime f32 (1 thread) {ort_f32 * 1e3:.1f} ms; ratio {ours / ort_f32:.2f}x")


@pytest.mark.slow
def test_inception_v1_int8_host_bit_exact(tmp_path: Path) -> None:
    """Inception v1 through the public API. Its two LRNs have no integer form and stay f32
    islands (Dequantize, LRN, Quantize), and it ends in a float Softmax; so the quantised
    graph is rebuilt with the integer input of every Dequantize as an extra output, and
    those must match the interpreter exactly (the last one depends on both LRN islands
    having requantised identically), while the Softmax output is compared with a tolerance."""
    model = build_example("inception_v1")
    types = {v.name: v.type for v in import_model(model).inputs}
    calib = [random_inputs(types, seed=k) for k in range(3)]
    cm = compile_model(model, precision="int8", calibration=calib, target="host",
                       cpu=detect_level(), werror=True, cache_dir=tmp_path)
    ops = cm.graph.op_counts()
    assert ops.get("QConv") == 57 and ops.get("LRN") == 2 and ops.get("Dequantize") == 3
    q = copy.deepcopy(cm.graph)
    q.outputs = [*q.outputs, *(n.inputs[0] for n in q.nodes if n.op == "Dequantize")]
    assert len(q.outputs) == 4
    verify(q)
    exposed = compile_model(q, pipeline=[], target="host", cpu=detect_level(), werror=True,
                            cache_dir=tmp_path)
    made_by = q.producers()
    for seed in range(3):
        feeds = random_inputs(types, seed=seed + 20)
        want = interpret(q, feeds)
        got = exposed.run(None, feeds)
        for g, v in zip(got, q.outputs, strict=True):
            w = want[v.name]
            assert g.dtype == w.dtype and g.shape == w.shape
            if made_by[id(v)].op == "Softmax":  # a float island: libm, not integers
                np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-7)
            else:
                assert g.dtype in (np.uint8, np.int8)
                np.testing.assert_array_equal(g, w, err_msg=v.name)
        (prob,) = cm.run(None, feeds)
        np.testing.assert_allclose(prob, want[cm.output_names[0]], rtol=1e-5, atol=1e-7)
