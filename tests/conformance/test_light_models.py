"""The "light" model zoo onnx ships (nine ImageNet CNNs with constant-filled weights), run
through qnnc's frontend and reference interpreter and compared with the outputs onnx stores.

The input is what onnx's own backend runner feeds these models: its dummy data generator,
deterministic (random=False), one tensor per non-initializer graph input. Tolerances are the
ones onnx states for each model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from onnx.backend.test.runner import Runner

from compiler.frontend.importer import import_model
from ir.interpreter import run as interpret

LIGHT_DIR = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"

# (model, rtol, atol) as onnx/backend/test/case/model/__init__.py states them
MODELS = [
    ("resnet50", 1e-3, 1e-7),
    ("squeezenet", 1e-3, 1e-7),
    ("shufflenet", 1e-3, 1e-7),
    ("inception_v1", 1e-3, 1e-7),
    ("inception_v2", 1e-3, 1e-7),
    ("densenet121", 2e-3, 1e-7),
    ("vgg19", 1e-3, 1e-7),
    ("bvlc_alexnet", 1e-3, 1e-7),
    ("zfnet512", 1e-3, 1e-7),
]
# over 10 s on a busy 2-core machine (building ~550 MB of constant weights, then the run)
SLOW = {"vgg19"}


def model_inputs(model: onnx.ModelProto, name: str) -> dict[str, np.ndarray]:
    """onnx's runner input for a light model: dummy data for each non-initializer input."""
    inits = {t.name for t in model.graph.initializer}
    return {
        x.name: Runner.generate_dummy_data(x, seed=0, name=name, random=False)
        for x in model.graph.input
        if x.name not in inits
    }


def expected_outputs(model: onnx.ModelProto, name: str) -> list[np.ndarray]:
    out = []
    for i in range(len(model.graph.output)):
        t = onnx.TensorProto()
        t.ParseFromString((LIGHT_DIR / f"light_{name}_output_{i}.pb").read_bytes())
        out.append(numpy_helper.to_array(t))
    return out


@pytest.mark.parametrize("name,rtol,atol", [
    pytest.param(n, r, a, id=n, marks=[pytest.mark.slow] if n in SLOW else [])
    for n, r, a in MODELS
])
def test_light_model(name: str, rtol: float, atol: float) -> None:
    model = onnx.load(str(LIGHT_DIR / f"light_{name}.onnx"))
    feeds = model_inputs(model, name)
    graph = import_model(model)
    got = interpret(graph, feeds)
    want = expected_outputs(model, name)
    assert len(graph.outputs) == len(want)
    for v, w in zip(graph.outputs, want):
        g = got[v.name]
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"{name}: {v.name}")
