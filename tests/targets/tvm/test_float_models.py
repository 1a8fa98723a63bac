"""Float models through the tvm target: the f32 tiny CNN and SqueezeNet examples built with
``compile_model(model, target="tvm")`` against the reference interpreter
(``compile_model(model).run``); and PP-OCRv4's text detector (shipped by rapidocr-onnxruntime)
quantised, which keeps nearest Resize and DepthToSpace (its upsampling ConvTransposes) on codes:
no op left without a kernel, and (slow) every integer tensor exact, the float ones within tolerance.

Tolerance of the float models: each output within rtol 1e-4 plus 1e-5 times its largest
magnitude. Their convolutions sum up to a few thousand float32 terms in another order than
numpy's matmul, and later layers carry earlier layers' rounding, so results differ in the last
few ulp of the layer's magnitude, not of each (possibly cancelled) element.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tvm", reason="the tvm target needs Apache TVM (pip install apache-tvm)")

from compiler.api import compile_model  # noqa: E402
from compiler.examples import build_example  # noqa: E402
from compiler.shipped_models import OCR_MODELS, ocr_input  # noqa: E402
from targets.tvm.lower import unsupported  # noqa: E402
from tests.targets.tvm.test_shipped import exact_with_islands, quantised  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5


def assert_model_close(name: str, ops: set[str], tmp_path: Path, seeds: int) -> None:
    model = build_example(name)
    cm = compile_model(model, target="tvm", cache_dir=tmp_path)
    ref = compile_model(model)
    assert ops <= set(cm.graph.op_counts())
    assert unsupported(cm.graph) == {}
    (x,) = cm.graph.inputs
    for seed in range(seeds):
        feeds = {x.name: np.random.default_rng(seed).standard_normal(x.type.shape)
                 .astype(np.float32)}
        for got, want in zip(cm.run(None, feeds), ref.run(None, feeds), strict=True):
            assert got.dtype == want.dtype == np.float32 and got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=RTOL,
                                       atol=ATOL * float(np.abs(want).max(initial=1.0)))


def test_tiny_cnn_f32(tmp_path: Path) -> None:
    assert_model_close("tiny_cnn", {"Conv", "Relu", "MaxPool", "Gemm"}, tmp_path, 5)


def test_squeezenet_f32(tmp_path: Path) -> None:
    assert_model_close("squeezenet", {"Conv", "Relu", "Concat", "GlobalAveragePool",
                                      "Softmax"}, tmp_path, 2)


@pytest.mark.slow  # 12-14 s; QMatMul, Gelu, Softmax, LayerNorm have op tests
def test_bert_encoder_f32(tmp_path: Path) -> None:
    assert_model_close("bert_encoder", {"MatMul", "Gelu", "Softmax", "LayerNormalization"},
                       tmp_path, 1)


@pytest.mark.slow
def test_densenet121_f32(tmp_path: Path) -> None:
    assert_model_close("densenet121", {"Conv", "BatchNormalization", "Concat"}, tmp_path, 1)


def test_ocr_detector_int8_has_every_kernel() -> None:
    _, q, _ = quantised("det")
    # the upsampling ConvTransposes arrive as QConv + DepthToSpace (conv-transpose-blocks)
    assert {"Resize", "DepthToSpace", "QConv"} <= set(q.op_counts())
    assert unsupported(q) == {}


@pytest.mark.slow
def test_ocr_detector_int8_codes_exact() -> None:
    """Every integer tensor exact and the float ones (the Dequantize inputs made outputs)
    within tests.targets.tvm.test_models.check_model's
    rtol 1e-5 / atol 1e-5."""
    _, q, _ = quantised("det")
    (inp, shape), = OCR_MODELS["det"].shapes.items()
    exact_with_islands(q, {inp: ocr_input("det", shape, seed=9)})
