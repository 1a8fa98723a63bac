"""The calibration quantiser on LSTM layers: QLSTM (int8 MACs, f32 gates) in place of the
float LSTM, accurate against the float model."""

from __future__ import annotations

import numpy as np

from compiler.examples.sequence import build_lstm_seq
from compiler.frontend import import_model
from compiler.passes import DEFAULT_PIPELINE, run_pipeline
from compiler.quant.calibrate import calibrate
from compiler.quant.quantize import QuantConfig, quantize_graph
from ir.graph import Graph
from ir.interpreter import run
from ir.types import DType
from ir.verifier import verify


def _sqnr(ref: np.ndarray, got: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref**2) / np.sum((ref - got) ** 2)))


def _sequence_model(steps: int = 20) -> tuple[Graph, np.ndarray, np.ndarray]:
    g = run_pipeline(import_model(build_lstm_seq(0, steps=steps, hidden=32)), DEFAULT_PIPELINE)
    rng = np.random.default_rng(1)
    calib = rng.standard_normal((8, steps, 32)).astype(np.float32)
    return g, calib, rng.standard_normal((steps, 32)).astype(np.float32)


def test_lstm_becomes_qlstm_between_integer_layers() -> None:
    """Gemm -> Reshape -> LSTM -> Reshape -> Gemm quantises end to end: the QLSTM reads the
    first QLinear's codes and its Y codes feed the second, with no float in between, and
    the result keeps a signal-to-noise ratio above 25 dB (about 32 dB measured)."""
    g, calib, x = _sequence_model()
    q = quantize_graph(g, calibrate(g, {"x": calib}, "minmax"))
    verify(q)
    assert q.op_counts() == {"Quantize": 1, "QLinear": 2, "Reshape": 2, "QLSTM": 1,
                             "Dequantize": 1}
    (node,) = [n for n in q.nodes if n.op == "QLSTM"]
    assert node.x.type.dtype is DType.u8 and node.w.type.dtype is DType.i8
    assert node.w.type.quant is not None and node.w.type.quant.per_channel
    assert node.outputs[0].type.quant is not None
    assert _sqnr(run(g, {"x": x})["y"], run(q, {"x": x})["y"]) > 25


def test_skipped_lstm_stays_float() -> None:
    g, calib, x = _sequence_model()
    name = next(n.name for n in g.nodes if n.op == "LSTM")
    q = quantize_graph(g, calibrate(g, {"x": calib}, "minmax"),
                       QuantConfig(skip_layers=frozenset({name})))
    assert q.op_counts().get("LSTM") == 1 and "QLSTM" not in q.op_counts()
    assert _sqnr(run(g, {"x": x})["y"], run(q, {"x": x})["y"]) > 25


def test_gru_becomes_qgru_both_reset_forms() -> None:
    """Both placements of the reset gate quantise (QGRU); r*h takes h's codes when the
    reset gate comes before Rh. Signal-to-noise above 25 dB (31-34 dB measured)."""
    from tests.ops.test_recurrent import recurrent_model

    rng = np.random.default_rng(3)
    for lbr in (0, 1):
        model, _ = recurrent_model("GRU", t=12, inp=8, hidden=16, direction="bidirectional",
                                   linear_before_reset=lbr, seq_lens=[12, 5, 2], initial=True)
        g = import_model(model)
        calib = rng.standard_normal((8, 12, 3, 8)).astype(np.float32)
        q = quantize_graph(g, calibrate(g, {"X": calib}, "minmax"))
        verify(q)
        assert q.op_counts() == {"Quantize": 1, "QGRU": 1, "Dequantize": 2}
        x = rng.standard_normal((12, 3, 8)).astype(np.float32)
        want, got = run(g, {"X": x}), run(q, {"X": x})
        for v in g.outputs:
            assert _sqnr(want[v.name], got[v.name]) > 25, (lbr, v.name)


def test_quantised_lstm_model_generates_for_an_accelerator() -> None:
    """On an accelerator the QLSTM runs as host C between staged layers: after the target's
    layout and tile passes the staged C generates (ONNX's layout attribute is batch_major in
    the IR, so it cannot be taken for the targets' layout annotation)."""
    from compiler.passes.manager import run_pipeline as run_passes
    from targets.c.model import generate
    from targets.profiles import builtin_profile
    from targets.staged.renderer import StagedRenderer

    g, calib, _ = _sequence_model(steps=5)
    q = quantize_graph(g, calibrate(g, {"x": calib[:, :5]}, "minmax"))
    q = run_passes(q, "layout{target=ascend910b},fold-layout,tile{target=ascend910b}")
    src = generate(q, StagedRenderer(builtin_profile("ascend910b"))).files["model.c"]
    assert "QLSTM 'lstm'" in src
