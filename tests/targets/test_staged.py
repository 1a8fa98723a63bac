"""Accelerator targets end to end: the staged C of every target runs bit-exact with the
reference interpreter, its run-time counters equal the cost model's bytes per link and MACs
for every layer, its buffer regions fit the chip, and layers that cannot fit fail clearly.

The benchmark models run in slow tests (ResNet-50 and the BERT encoder on every target);
the whole benchmark set x every target is the opt-in ``-m matrix``.
"""

from __future__ import annotations

import numpy as np
import pytest

from compiler.api import compile_model
from compiler.errors import QnncError
from compiler.examples import build_example
from compiler.frontend import import_model
from compiler.io import random_inputs
from ir.interpreter import run
from targets import cost
from targets.c.emitter import CodegenError
from targets.staged.plans import modelled_counters

ACCELERATORS = ("ascend910b", "ascend310p", "mlu370x8", "thinker2")
BENCHMARK = ("resnet50", "squeezenet", "shufflenet", "inception_v1", "densenet121",
             "mobilenetv2", "bert_encoder")


def _calibration(model: object, n: int = 2) -> list[dict[str, np.ndarray]]:
    types = {v.name: v.type for v in import_model(model).inputs}  # type: ignore[arg-type]
    return [random_inputs(types, seed=k) for k in range(n)]


#: float ops whose C sums in another order than numpy (or calls libm's exp): an INT8 graph
#: with such a float island can differ from the interpreter by one quantisation step after
#: the island's Quantize, and that step propagates. Such models are compared bit for bit with
#: the host C build, which runs the same float code; the staged layers are what is checked.
FLOAT_REDUCTIONS = {"Softmax", "LogSoftmax", "LayerNormalization", "LRN", "ReduceMean",
                    "ReduceSum"}


def check_target(name: str, target: str, tmp_path: object = None) -> None:
    model = build_example(name)
    cal = _calibration(model)
    ref = compile_model(model, precision="int8", calibration=cal)
    cm = compile_model(model, precision="int8", calibration=cal, target=target,
                       output_dir=tmp_path)
    feeds = random_inputs(ref.input_types, seed=11)
    outs = {id(v) for v in ref.graph.outputs}
    islands = {n.op for n in ref.graph.nodes
               if n.op in FLOAT_REDUCTIONS and id(n.outputs[0]) not in outs}
    if islands:
        host = compile_model(ref.graph, precision="int8", target="host")
        want = dict(zip(host.output_names, host.run(None, feeds)))
    else:
        want = run(ref.graph, feeds)
    cm.reset_counters()
    got = cm.run(None, feeds)
    for (k, w), g in zip(want.items(), got):
        if w.dtype.kind == "f" and not islands:  # float tails in C vs numpy
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6, err_msg=k)
        else:
            assert np.array_equal(g, w), k
    counters = cm.counters()
    plans = cm.plans()
    assert len(plans) > 0 and set(counters) == {p.node for p in plans}
    for p in plans:
        measured = {k: v for k, v in counters[p.node].items() if v}
        assert measured == modelled_counters(p), p.node
        for r in cost.regions(p.problem, cm.profile, p.tiles):
            assert r.end <= cm.profile.buffer(r.buffer).per_core_bytes, (p.node, r)


@pytest.mark.parametrize("target", ACCELERATORS)
def test_tiny_cnn_runs_exactly_and_counts_what_the_model_predicts(target: str,
                                                                  tmp_path: object) -> None:
    check_target("tiny_cnn", target, tmp_path / "out")  # type: ignore[operator]
    written = {p.name for p in (tmp_path / "out").iterdir()}  # type: ignore[operator]
    assert {"report.txt", "report.json", "roofline.html", "model.c"} <= written


#: in the default run every target gets one large model (strided boxes, partial sums, batched
#: matrix products); the opt-in matrix runs the rest of the benchmark set on every target
DEFAULT_PAIRS = (("resnet50", "ascend910b"), ("resnet50", "thinker2"),
                 ("bert_encoder", "mlu370x8"), ("bert_encoder", "ascend310p"))


@pytest.mark.slow
@pytest.mark.parametrize(("name", "target"), DEFAULT_PAIRS)
def test_benchmark_models(name: str, target: str) -> None:
    check_target(name, target)


@pytest.mark.slow
@pytest.mark.matrix
@pytest.mark.parametrize("target", ACCELERATORS)
@pytest.mark.parametrize("name", BENCHMARK)
def test_benchmark_matrix(name: str, target: str) -> None:
    if (name, target) in DEFAULT_PAIRS:
        pytest.skip("runs in the default suite")
    check_target(name, target)


def test_a_tile_plan_that_overflows_a_buffer_is_refused_before_any_c() -> None:
    model = build_example("tiny_cnn")
    cal = _calibration(model)
    cm = compile_model(model, precision="int8", calibration=cal, target="thinker2")
    g = cm.graph
    node = next(n for n in g.nodes if n.op == "QConv")
    tiles = list(node.attrs["tile"])
    tiles[4] = tiles[9] = 1 << 20  # a reduction tile far beyond any buffer
    node.attrs["tile"] = tiles
    from targets.host.build import BuildOptions, build_c_library
    from targets.staged.renderer import StagedRenderer

    with pytest.raises(CodegenError, match=r"need \d+ bytes of buffer '\w+'"):
        build_c_library(g, __import__("pathlib").Path("/nonexistent-never-written"),
                        BuildOptions(), renderer=StagedRenderer(cm.profile))


def test_a_layer_too_large_for_the_chip_names_the_layer_and_the_buffer(tmp_path) -> None:
    # thinker2 with a 4 KiB weight buffer: a 3x3 convolution needs 9 KiB per 32x32 block
    import copy
    import json

    from targets.profiles.thinker2 import DATA

    data = copy.deepcopy(DATA)
    for b in data["buffers"]:
        if b["name"] == "WBUF":
            b["bytes"]["value"] = 4096
    path = tmp_path / "small.json"
    path.write_text(json.dumps(data))
    model = build_example("tiny_cnn")
    with pytest.raises(QnncError, match=r"layer '.+' \(Q\w+\): no tiling fits buffer 'WBUF'"):
        compile_model(model, precision="int8", calibration=_calibration(model),
                      target_file=path)


def test_the_report_carries_the_measured_counters_when_asked() -> None:
    model = build_example("tiny_cnn")
    cm = compile_model(model, precision="int8", calibration=_calibration(model),
                       target="ascend310p")
    assert cm.report()["model"].get("counters_agree") is None
    cm.reset_counters()
    cm.run(None, random_inputs(cm.input_types, seed=3))
    data = cm.report(with_counters=True)
    assert data["model"]["counters_agree"] is True
    assert len(data["layers"]) == len(cm.plans())
