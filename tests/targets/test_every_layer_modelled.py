"""Every layer of every example model is in the modelled latency on every accelerator: tiled
kernels by their plans, the layers around them by the streaming model (cost_stream.py); a
layer without a modelled cost fails here. Modelling only: no C is built."""

from __future__ import annotations

import numpy as np
import pytest

from compiler.examples import EXAMPLES, build_example
from compiler.frontend.importer import import_model
from compiler.io import random_inputs
from compiler.modelled import model_only
from compiler.passes.manager import PassError
from ir.graph import Graph
from targets.report import report_data
from targets.tiling import layer_keys
from tests.targets.test_staged import ACCELERATORS, BENCHMARK

#: the benchmark set and tiny_cnn on one target each in the default run (round robin); every
#: example on every target with -m slow
EXAMPLE_NAMES = sorted(EXAMPLES)
PAIRS = [(n, ACCELERATORS[i % len(ACCELERATORS)])
         for i, n in enumerate(sorted({*BENCHMARK, "tiny_cnn"}))]


def modelled_graph(name: str, target: str) -> tuple[Graph, dict]:
    model = build_example(name)
    if any(d.dim_param for v in model.graph.input for d in v.type.tensor_type.shape.dim):
        pytest.skip(f"{name} has symbolic input dimensions (it is compiled per shape)")
    types = {v.name: v.type for v in import_model(model).inputs}
    cal = [random_inputs(types, seed=k) for k in range(2)]
    try:
        graph, plans, prof = model_only(model, target, cal)
    except PassError as e:
        if "no tiling fits" not in str(e):
            raise
        pytest.skip(f"{name} does not fit {target}'s buffers: {e}")
    return graph, report_data(graph, plans, prof)


def check_every_layer_modelled(graph: Graph, data: dict) -> None:
    rows = data["layers"] + data["untiled"]
    top = [d for d in rows if not d.get("note", "").startswith("counted in ")]
    assert sorted(d["name"] for d in top) == sorted(layer_keys(graph).values())
    assert sorted(data["order"]) == sorted(d["name"] for d in rows)
    staged = {d["name"] for d in data["layers"]}
    order = data["order"]
    for d in rows:
        assert isinstance(d.get("cycles"), float) and np.isfinite(d["cycles"]), d["name"]
        assert d["cycles"] >= 0 and d["unit"] in (
            "matrix", "vector", "dma", "view", "control", "fused"), d["name"]
        if d["unit"] == "fused":  # costed in the staged product before it, which it follows
            assert order[order.index(d["name"]) - 1] in staged, d["name"]
            assert d["cycles"] == 0 and d["launch_cycles"] == 0 and d["ran"] == "epilogue"
        elif d["unit"] != "view":  # every kernel pays the profile's launch cost
            assert d["launch_cycles"] > 0 or "/" in d["name"], d["name"]
    assert data["model"]["cycles"] == pytest.approx(sum(d["cycles"] for d in top))


@pytest.mark.parametrize(("name", "target"), PAIRS)
def test_every_layer_of_the_examples_is_modelled(name: str, target: str) -> None:
    check_every_layer_modelled(*modelled_graph(name, target))


@pytest.mark.slow
@pytest.mark.parametrize("target", ACCELERATORS)
@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_every_layer_modelled_matrix(name: str, target: str) -> None:
    if (name, target) in PAIRS:
        pytest.skip("runs in the default suite")
    check_every_layer_modelled(*modelled_graph(name, target))
