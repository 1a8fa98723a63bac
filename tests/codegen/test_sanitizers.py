"""Generated C under AddressSanitizer + UBSan, with guard zones between arena tensors
(targets/host/sanitize.py, targets/c/guards.py): whole models run clean and agree with the
interpreter, and an overflow into a neighbouring tensor — which ASan alone cannot see inside
the one arena array — is caught by the guard zones."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from compiler.api import compile_model, load_model
from compiler.examples import build_example
from ir.build import make_node
from ir.graph import Graph
from ir.interpreter import run as interpret
from ir.types import DType, TensorType
from targets.host.sanitize import SanitizerReport, build_sanitized, run_sanitized
from tests.codegen.harness import random_feeds
from tests.ops.test_control import feeds_for, if_model, loop_model

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc's sanitizers")


def _check_clean(graph: Graph, feeds: dict[str, np.ndarray], folder: Path,
                 atol: float = 1e-5) -> None:
    got = run_sanitized(build_sanitized(graph, folder), graph, feeds)
    want = interpret(graph, feeds)
    for name, w in want.items():
        np.testing.assert_allclose(got[name], w, rtol=1e-4, atol=atol, err_msg=name)


def test_tiny_cnn_f32_and_int8(tmp_path: Path) -> None:
    model = build_example("tiny_cnn")
    g = load_model(model)
    feeds = random_feeds(g, seed=3)
    _check_clean(g, feeds, tmp_path / "f32")
    q8 = compile_model(model, precision="int8",
                       calibration=[random_feeds(g, seed=s) for s in range(2)]).graph
    _check_clean(q8, feeds, tmp_path / "int8", atol=0)


@pytest.mark.parametrize("model", [if_model(), loop_model()], ids=["if", "loop"])
def test_control_flow(model: object, tmp_path: Path) -> None:
    g = load_model(model)  # type: ignore[arg-type]
    _check_clean(g, feeds_for(model), tmp_path)  # type: ignore[arg-type]


def test_bert_encoder(tmp_path: Path) -> None:
    g = load_model(build_example("bert_encoder"))
    _check_clean(g, random_feeds(g, seed=5), tmp_path, atol=1e-4)


def _neighbours() -> Graph:
    """a = Relu(x) and b = Neg(x), 256 bytes each, side by side in the arena; y = a + b."""
    g = Graph("neighbours")
    x = g.add_input("x", TensorType((1, 64), DType.f32))
    a = make_node(g, "Relu", [x], {}, name="a").outputs[0]
    b = make_node(g, "Neg", [x], {}, name="b").outputs[0]
    g.outputs = list(make_node(g, "Add", [a, b], {}, name="y").outputs)
    return g


#: a bug injected into layer 'a': one float written past the end of its output
OVERFLOW = {"a[i0] = x > 0 ? x : 0.0f;": "a[i0] = x > 0 ? x : 0.0f;\n        a[i0 + 1] = 0.0f;"}


def test_guard_zones_catch_an_overflow_into_the_neighbour(tmp_path: Path) -> None:
    g = _neighbours()
    feeds = random_feeds(g)
    # without guard zones the overflow lands in b's bytes, inside the arena: ASan is silent
    # (and b is written afterwards, so even the outputs hide it)
    silent = build_sanitized(g, tmp_path / "plain", guards=False, edit=OVERFLOW)
    np.testing.assert_array_equal(run_sanitized(silent, g, feeds)["y"], interpret(g, feeds)["y"])
    guarded = build_sanitized(g, tmp_path / "guarded", edit=OVERFLOW)
    with pytest.raises(SanitizerReport, match=r"(?s)use-after-poison.*layer_000_a"):
        run_sanitized(guarded, g, feeds)
