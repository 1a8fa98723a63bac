"""The text format and the default pipeline on the example models (real ONNX names, real
layer stacks): save/load round-trips exactly, and the pipeline folds every BatchNorm of
MobileNetV2 while keeping its outputs within fold-batchnorm's stated tolerance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import ModelProto

from compiler.examples import EXAMPLES, build_example
from compiler.examples.llama import build_llama
from compiler.frontend.importer import import_model
from compiler.passes import DEFAULT_PIPELINE, run_pipeline
from ir.interpreter import run
from ir.text import load_ir, print_graph, save_ir

BIG = {"alexnet", "vgg19", "zfnet512"}  # hundreds of MB of weights: tens of seconds each
#: big graphs whose blob round trip repeats alexnet's (the same text and blob code)
REPEATS = {"vgg19", "zfnet512"}


def _fixed_shapes(model: ModelProto, size: int = 8) -> dict[str, list[int]]:
    """A static shape for each input with symbolic dims (the llama example's ``seq``)."""
    shapes: dict[str, list[int]] = {}
    for vi in model.graph.input:
        dims = vi.type.tensor_type.shape.dim
        if any(not d.HasField("dim_value") for d in dims):
            shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else size for d in dims]
    return shapes


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=[pytest.mark.slow] if n in BIG else []) for n in sorted(EXAMPLES)
    if n not in REPEATS
])
def test_example_model_saves_and_loads_exactly(name: str, tmp_path: Path) -> None:
    # the text format does not depend on trained weights: skip the llama example's training
    model = build_llama(seed=0, train_steps=0) if name == "llama" else build_example(name)
    g = import_model(model, input_shapes=_fixed_shapes(model))
    path = tmp_path / f"{name}.ir"
    save_ir(g, path)
    back = load_ir(path)
    assert back == g
    assert print_graph(back) == path.read_text(encoding="utf-8")


def test_default_pipeline_folds_mobilenet_batchnorms() -> None:
    g = import_model(build_example("mobilenetv2"))
    assert g.op_counts()["BatchNormalization"] > 0
    before = import_model(build_example("mobilenetv2"))
    after = run_pipeline(g, DEFAULT_PIPELINE, verify=True)
    assert "BatchNormalization" not in after.op_counts()
    assert after.op_counts()["Conv"] == before.op_counts()["Conv"]
    assert len(after.constants) < len(before.constants)  # the old weights and BN params went
    x = np.random.default_rng(0).standard_normal(before.inputs[0].type.shape)
    feeds = {before.inputs[0].name: x.astype(np.float32)}
    want, got = run(before, feeds), run(after, feeds)
    assert list(got) == list(want)
    for k, w in want.items():
        w64 = w.astype(np.float64)
        bound = 1e-4 * np.abs(w64) + 1e-5 * np.abs(w64).max()
        assert np.all(np.abs(got[k] - w64) <= bound)
