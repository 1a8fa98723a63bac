"""LSTM, GRU and RNN imported from one-node ONNX models (random weights as initializers) and
run on the interpreter, against onnxruntime. Tolerance: f32, atol 1e-5 + rtol 1e-4 (the same
products summed in another order over at most a few dozen steps)."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler.errors import ConversionError
from compiler.frontend.importer import import_model
from ir.interpreter import run as interpret
from ir.verifier import verify

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
OUTPUTS = {"LSTM": ["Y", "Y_h", "Y_c"], "GRU": ["Y", "Y_h"], "RNN": ["Y", "Y_h"]}


def recurrent_model(op: str, *, t: int = 5, batch: int = 3, inp: int = 4, hidden: int = 6,
                    direction: str = "forward", layout: int = 0, seq_lens: list[int] | None = None,
                    initial: bool = False, peepholes: bool = False, opset: int = 14,
                    seed: int = 0, **attrs: Any) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """A one-node model of ``op`` with random weights, and a random input for it."""
    rng = np.random.default_rng(seed)
    d = 2 if direction == "bidirectional" else 1
    g = GATES[op]
    inits = {
        "W": rng.normal(0, 0.5, (d, g * hidden, inp)),
        "R": rng.normal(0, 0.5, (d, g * hidden, hidden)),
        "B": rng.normal(0, 0.3, (d, 2 * g * hidden)),
    }
    names = ["X", "W", "R", "B", "", "", "", ""]
    if seq_lens is not None:
        inits["seq"] = np.array(seq_lens, np.int32)
        names[4] = "seq"
    if initial:  # drawn time-major whatever the layout, so both layouts see the same values
        inits["h0"] = _batch_major(rng.normal(0, 0.5, (d, batch, hidden)), layout)
        names[5] = "h0"
        if op == "LSTM":
            inits["c0"] = _batch_major(rng.normal(0, 0.5, (d, batch, hidden)), layout)
            names[6] = "c0"
    if peepholes:
        inits["P"] = rng.normal(0, 0.5, (d, 3 * hidden))
        names[7] = "P"
    while not names[-1]:
        names.pop()
    x = _batch_major(rng.normal(0, 1, (t, batch, inp)).astype(np.float32), layout)
    xshape = x.shape
    if layout:
        attrs["layout"] = 1
    node = helper.make_node(op, names, OUTPUTS[op], hidden_size=hidden, direction=direction,
                            **attrs)
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in OUTPUTS[op]]
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, xshape)], outs,
        [numpy_helper.from_array(v if v.dtype == np.int32 else v.astype(np.float32), k)
         for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return model, {"X": x}


def _batch_major(a: np.ndarray, layout: int) -> np.ndarray:
    """A time-major (T, B, ...) input or (D, B, H) state in ``layout``."""
    return np.ascontiguousarray(a.swapaxes(0, 1)) if layout else a


def run_ort(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def check_against_ort(model: onnx.ModelProto, feeds: dict[str, np.ndarray],
                      time_major: onnx.ModelProto | None = None) -> None:
    """qnnc's outputs against onnxruntime's. onnxruntime runs only layout 0: a layout-1 model
    is checked against ``time_major``, the same layer in layout 0, on transposed data."""
    graph = import_model(model)
    verify(graph)
    got = interpret(graph, feeds)
    if time_major is None:
        want = run_ort(model, feeds)
    else:
        want = run_ort(time_major, {"X": _batch_major(feeds["X"], 1)})
        want = [np.ascontiguousarray(np.moveaxis(want[0], 2, 0))] + [
            np.ascontiguousarray(w.swapaxes(0, 1)) for w in want[1:]]
    assert len(graph.outputs) == len(want)
    for v, w in zip(graph.outputs, want):
        np.testing.assert_allclose(got[v.name], w, atol=1e-5, rtol=1e-4, err_msg=v.name)


CASES = [
    ("LSTM", {}),
    ("LSTM", {"direction": "bidirectional", "initial": True}),
    ("LSTM", {"direction": "reverse", "seq_lens": [5, 2, 3]}),
    ("LSTM", {"direction": "bidirectional", "layout": 1, "seq_lens": [3, 5, 1], "initial": True}),
    ("LSTM", {"peepholes": True, "clip": 0.7, "initial": True}),
    ("LSTM", {"input_forget": 1, "direction": "bidirectional", "peepholes": True}),
    ("LSTM", {"activations": ["HardSigmoid", "LeakyRelu", "Softsign"],
              "activation_alpha": [0.3, 0.05], "activation_beta": [0.4]}),
    ("LSTM", {"opset": 7, "seq_lens": [4, 5, 2], "direction": "bidirectional"}),
    ("GRU", {}),
    ("GRU", {"linear_before_reset": 1, "direction": "bidirectional", "initial": True}),
    ("GRU", {"direction": "reverse", "seq_lens": [2, 5, 4], "clip": 0.5}),
    ("GRU", {"layout": 1, "linear_before_reset": 1, "seq_lens": [5, 1, 3]}),
    ("GRU", {"activations": ["Sigmoid", "Relu", "HardSigmoid", "Elu"],
             "activation_alpha": [0.1, 0.9], "activation_beta": [0.6],
             "direction": "bidirectional"}),
    ("RNN", {}),
    ("RNN", {"activations": ["Relu", "Relu"], "direction": "bidirectional", "initial": True}),
    ("RNN", {"layout": 1, "seq_lens": [2, 5, 3], "direction": "reverse", "clip": 0.9}),
    ("RNN", {"activations": ["ScaledTanh"], "activation_alpha": [1.5],
             "activation_beta": [0.5], "opset": 22}),
]


@pytest.mark.parametrize(("op", "cfg"), CASES, ids=lambda c: str(c) if isinstance(c, str) else
                         "-".join(f"{k}={v}" for k, v in c.items()) or "defaults")
def test_recurrent_matches_onnxruntime(op: str, cfg: dict[str, Any]) -> None:
    model, feeds = recurrent_model(op, **cfg)
    time_major = recurrent_model(op, **{**cfg, "layout": 0})[0] if cfg.get("layout") else None
    check_against_ort(model, feeds, time_major)


def test_unknown_activation_names_the_supported_ones() -> None:
    model, _ = recurrent_model("RNN", activations=["Swish"])
    with pytest.raises(ConversionError, match="Swish.*supported: Relu"):
        import_model(model)


def test_layout_before_opset_14_is_rejected() -> None:
    model, _ = recurrent_model("GRU", layout=1, opset=13)
    with pytest.raises(ConversionError, match="layout only from opset 14"):
        import_model(model)


def test_unused_outputs_are_still_computed() -> None:
    """Y omitted (only Y_h wanted): the IR op still makes every output; Y_h matches."""
    model, feeds = recurrent_model("LSTM", direction="bidirectional", seq_lens=[5, 3, 1])
    node = model.graph.node[0]
    node.output[0] = ""
    node.output[2] = ""
    del model.graph.output[2]
    del model.graph.output[0]
    check_against_ort(model, feeds)


@pytest.mark.parametrize("per_channel", [False, True])
def test_dynamic_quantize_lstm_from_onnxruntime(per_channel: bool, tmp_path: Any) -> None:
    """onnxruntime's quantize_dynamic turns the LSTM into com.microsoft.DynamicQuantizeLSTM
    (int8 W and R, transposed, scales per direction or per column). qnnc imports it as a float
    LSTM on the dequantised weights: that equals onnxruntime's float LSTM given the same
    weights dequantised here by (q - zp) * scale (f32 tolerance). onnxruntime's own int8
    kernel also rounds x and h to u8 at run time, so it is further from the float model than
    qnnc's import is (which only carries the weights' rounding)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model, feeds = recurrent_model("LSTM", t=6, inp=8, hidden=16, direction="bidirectional",
                                   seq_lens=[6, 4, 2], initial=True)
    src, dst = tmp_path / "f32.onnx", tmp_path / "int8.onnx"
    onnx.save(model, src)
    quantize_dynamic(src, dst, op_types_to_quantize=["LSTM"], weight_type=QuantType.QInt8,
                     per_channel=per_channel)
    qmodel = onnx.load(dst)
    (node,) = qmodel.graph.node
    assert node.op_type == "DynamicQuantizeLSTM" and node.domain == "com.microsoft"
    graph = import_model(qmodel)
    assert graph.op_counts() == {"LSTM": 1}
    got = interpret(graph, feeds)
    got = [got[v.name] for v in graph.outputs]

    inits = {t.name: numpy_helper.to_array(t) for t in qmodel.graph.initializer}
    w_q, w_s, w_z, r_q, r_s, r_z = (inits[node.input[k]] for k in (1, 8, 9, 2, 10, 11))

    def real(q: np.ndarray, s: np.ndarray, z: np.ndarray) -> np.ndarray:
        d = q.shape[0]  # (D, K, 4H), scales (D,) or (D, 4H)
        s3, z3 = s.reshape(d, 1, -1), z.reshape(d, 1, -1).astype(np.float32)
        return np.ascontiguousarray(((q.astype(np.float32) - z3) * s3).transpose(0, 2, 1))

    dequantised = onnx.ModelProto()
    dequantised.CopyFrom(model)
    for t in dequantised.graph.initializer:
        if t.name in ("W", "R"):
            q, s, z = (w_q, w_s, w_z) if t.name == "W" else (r_q, r_s, r_z)
            t.CopyFrom(numpy_helper.from_array(real(q, s, z).astype(np.float32), t.name))
    for g, w in zip(got, run_ort(dequantised, feeds), strict=True):
        np.testing.assert_allclose(g, w, atol=1e-5, rtol=1e-4)
    def rms(a: list[np.ndarray], b: list[np.ndarray]) -> float:
        return float(np.sqrt(np.mean([np.mean((x - y) ** 2) for x, y in zip(a, b)])))

    f32 = run_ort(model, feeds)
    assert rms(got, f32) < rms(run_ort(qmodel, feeds), f32)
