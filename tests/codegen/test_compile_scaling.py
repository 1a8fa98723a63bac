"""Code generation that scales with graph size: wide Concats copy through a table of their
inputs (bit-exact with the reference), layer functions are never inlined into qnnc_run, and
(-m slow) a 5,000-layer chain compiles for the host, its times printed — never asserted;
benchmarks/compile_scaling.py measures the growth."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from benchmarks.compile_scaling import relu_chain, relu_concat
from compiler.api import compile_model
from ir.build import make_node
from ir.graph import Graph
from ir.types import DType, TensorType
from targets.c.model import generate
from targets.c.ops_shape import CONCAT_TABLE_MIN
from targets.host.build import HostRenderer
from tests.codegen.harness import check_graph


@pytest.mark.parametrize("axis", [0, 1])
def test_wide_concat_copies_through_a_table(axis: int, tmp_path: Path) -> None:
    """Inputs of different sizes (every third one empty), joined along the outer or an
    inner axis."""
    n = CONCAT_TABLE_MIN * 3 // 2 + 6
    g = Graph("wide")
    vals = [g.add_input(f"x{k}", TensorType((2, k % 3, 3) if axis == 1 else (k % 3, 2, 3),
                                            DType.i16)) for k in range(n)]
    g.outputs = list(make_node(g, "Concat", vals, {"axis": axis}, name="join").outputs)
    src = generate(g, HostRenderer()).files["model.c"]
    assert isinstance(src, str) and "src[k]" in src and src.count("memcpy(") == 1
    check_graph(g, tmp_path, rtol=0, atol=0)


def test_layers_are_not_inlined_into_qnnc_run() -> None:
    """gcc's -O3 time grew quadratically with layers inlined into one function."""
    src = generate(relu_chain(3), HostRenderer()).files["model.c"]
    assert isinstance(src, str)
    assert src.count("static QNNC_NOINLINE void layer_") == 3


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["chain", "concat"])
def test_large_graph_compiles_for_the_host(kind: str, tmp_path: Path) -> None:
    graph = relu_chain(5000) if kind == "chain" else relu_concat(5000)
    start = time.perf_counter()
    cm = compile_model(graph, target="host", cache_dir=tmp_path)
    print(f"\n{graph.name}: {len(graph.nodes)} nodes compiled for the host in "
          f"{time.perf_counter() - start:.1f} s (cold cache)")
    x = np.linspace(-1, 1, 64, dtype=np.float32).reshape(1, 64)
    (y,) = cm.run(None, {"x": x})
    want = np.maximum(x, 0)
    np.testing.assert_array_equal(y, want if kind == "chain"
                                  else np.repeat(want, 5000, axis=0))
