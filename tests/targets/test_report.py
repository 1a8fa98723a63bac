"""Per-target reports: report.json agrees with the plans it was made from (sums, per-layer bytes,
buffer use), report.txt names every layer, roofline.html parses, plots one point per tiled layer
and escapes node names."""

from __future__ import annotations

import json
import math
from html.parser import HTMLParser
from pathlib import Path

import pytest

from compiler.examples import build_example
from compiler.frontend import import_model
from ir.graph import Graph
from targets.cost import OFFCHIP
from targets.profiles import BUILTIN_TARGETS, load_target
from targets.report import report_data, report_text, roofline_html, write_reports
from targets.tiling import TilePlans, tile_graph

ACCELERATORS = [t for t in BUILTIN_TARGETS if t != "host"]
HOSTILE = "<script>alert(1)</script>"


def _tiny() -> Graph:
    return import_model(build_example("tiny_cnn"))


def _tiled(target: str, graph: Graph | None = None) -> tuple[Graph, TilePlans]:
    g = graph or _tiny()
    return g, tile_graph(g, load_target(target))


class _Page(HTMLParser):
    """Collects the SVG shapes, their <title> texts and every tag the page opens."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.points: list[dict[str, str | None]] = []
        self.models = 0
        self.titles: list[str] = []
        self._in_title = False
        self._owner: dict[str, str | None] | None = None  # the point a <title> belongs to
        self.labels: list[str] = []  # text of <text class="label">
        self._in_label = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        cls = (dict(attrs).get("class") or "").split()
        if tag == "circle" and "layer" in cls:
            self.points.append(dict(attrs))
            self._owner = self.points[-1]
        if tag == "path" and "model" in cls:
            self.models += 1
        self._in_title = tag == "title"
        self._in_label = tag == "text" and "label" in cls

    def handle_endtag(self, tag: str) -> None:
        self._in_title = self._in_label = False
        if tag == "circle":
            self._owner = None

    def handle_data(self, data: str) -> None:
        if self._in_label:
            self.labels.append(data)
        if self._in_title:
            self.titles.append(data)
            if self._owner is not None:
                self._owner["title"] = data


def _parse(page: str) -> _Page:
    p = _Page()
    p.feed(page)
    p.close()
    return p


@pytest.mark.parametrize("target", ACCELERATORS)
def test_json_agrees_with_the_plans(target: str) -> None:
    g, plans = _tiled(target)
    prof = load_target(target)
    data = report_data(g, plans, prof)
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert data["target"]["name"] == target
    assert [d["name"] for d in data["layers"]] == [p.node for p in plans]
    assert [u["name"] for u in data["untiled"]] == plans.untiled == ["flatten"]
    nodes = {n.name: n for n in g.nodes}
    for d in data["layers"]:
        plan, node = plans[d["name"]], nodes[d["name"]]
        c = plan.cost
        trips = [(s["dim"], s["trips"]) for s in d["split"]]  # the cores' share of the work
        assert math.prod(t for _, t in trips) == c.steps and all(t > 1 for _, t in trips)
        assert d["op"] == node.op and d["unit"] == plan.problem.unit
        assert d["inputs"] == [list(v.type.shape) for v in node.inputs]
        assert d["outputs"] == [list(v.type.shape) for v in node.outputs]
        assert d["bytes"] == c.bytes and d["offchip_bytes"] == c.bytes.get(OFFCHIP, 0.0)
        assert d["compulsory_bytes"] == c.compulsory_bytes
        assert (d["macs"], d["cycles"]) == (c.macs, c.cycles)
        assert d["us"] == pytest.approx(c.cycles / prof.clock_hz * 1e6)
        assert d["bound"] == c.bound
        assert [list(t["tile"].values()) for t in d["tiles"]] == [list(t) for t in plan.tiles]
        assert len(d["tiles"]) == len(plan.orders)
        assert set(d["occupancy"]) == set(plan.occupancy)
        for name, occ in d["occupancy"].items():
            cap = prof.buffer(name).per_core_bytes
            assert occ["bytes"] == plan.occupancy[name] and occ["capacity"] == cap
            assert 0 < occ["bytes"] <= cap and 0 < occ["percent"] <= 100
        if d["bound_kind"] == "memory":
            assert d["bound_link"] in d["bytes"]
        else:
            assert d["bound_kind"] == "compute" and d["bound_link"] is None
    m = data["model"]
    assert m["cycles"] == pytest.approx(sum(d["cycles"] for d in data["layers"]))
    assert m["latency_ms"] == pytest.approx(m["cycles"] / prof.clock_hz * 1e3)
    assert m["offchip_bytes"] == pytest.approx(sum(d["offchip_bytes"] for d in data["layers"]))
    assert m["compulsory_bytes"] == sum(d["compulsory_bytes"] for d in data["layers"])
    assert m["macs"] == sum(d["macs"] for d in data["layers"])
    assert m["offchip_bytes"] >= m["compulsory_bytes"]
    assert m["tiled_layers"] == len(plans) and m["untiled_layers"] == 1


@pytest.mark.parametrize("target", ACCELERATORS)
def test_every_layer_sits_under_the_roofline(target: str) -> None:
    """No layer beats the chip: its achieved TOPS is at most the modelled peak and at most
    its intensity times the off-chip bandwidth."""
    g, plans = _tiled(target)
    data = report_data(g, plans, load_target(target))
    peak = data["target"]["modelled_int8_tops"]
    bw = data["target"]["offchip"]["bandwidth"]
    for d in data["layers"]:
        assert 0 < d["achieved_tops"] <= peak * (1 + 1e-9)
        assert d["intensity"] is not None
        assert d["achieved_tops"] <= d["intensity"] * bw / 1e12 * (1 + 1e-9)


@pytest.mark.parametrize("target", ACCELERATORS)
def test_text_names_every_layer(target: str) -> None:
    g, plans = _tiled(target)
    data = report_data(g, plans, load_target(target))
    text = report_text(data)
    lines = text.splitlines()
    assert lines[0].startswith(f"target {target}:")
    assert max(len(ln) for ln in lines) <= 100  # within 100 columns
    m = data["model"]
    assert sum(f"{m['latency_ms']:.4f} ms modelled ({m['cycles']:.0f} cycles)" in ln
               for ln in lines) == 1  # the summary once
    for name in [n.name for n in g.nodes]:
        rows = [ln for ln in lines if ln.split()[:1] == [name]]
        assert len(rows) == 1, name  # one table row per layer
    for d in data["layers"]:  # and each staged layer's tiling block
        (block,) = [ln for ln in lines if ln.startswith(f"- {d['name']} ({d['op']}): ")]
    # table rows are aligned: every layer's op starts in the same column
    cols = {ln.index(f" {d['op']} ") for d in data["layers"]
            for ln in lines if ln.split()[:1] == [d["name"]]}
    assert len(cols) == 1
    assert "layers around the tiled kernels (1; host C" in text
    assert "- flatten (Reshape): " in text


@pytest.mark.parametrize("target", ACCELERATORS)
def test_every_layer_is_modelled_and_in_the_totals(target: str) -> None:
    """No layer is left out of the modelled latency: tiled kernels by their tile plans, the
    layers around them as the chip would stream them; the model's cycles are their sum."""
    g, plans = _tiled(target)
    prof = load_target(target)
    data = report_data(g, plans, prof)
    rows = data["layers"] + data["untiled"]
    assert sorted(d["name"] for d in rows) == sorted(n.name for n in g.nodes)
    for d in rows:
        assert isinstance(d["cycles"], float) and d["cycles"] >= 0, d["name"]
        assert d["unit"] in ("matrix", "vector", "dma", "view", "control"), d["name"]
    assert data["model"]["cycles"] == pytest.approx(sum(d["cycles"] for d in rows))
    (flatten,) = data["untiled"]
    assert (flatten["unit"], flatten["cycles"], flatten["offchip_bytes"]) == ("view", 0.0, 0.0)


@pytest.mark.parametrize("target", ACCELERATORS)
def test_html_has_one_point_per_tiled_layer(target: str) -> None:
    g, plans = _tiled(target)
    page = roofline_html(report_data(g, plans, load_target(target)))
    p = _parse(page)
    assert "script" not in p.tags and "svg" in p.tags and "polyline" in p.tags
    assert len(p.points) == len(plans) and p.models == 1
    kinds = sorted("compute" if "compute" in (pt["class"] or "") else "memory"
                   for pt in p.points)
    expected = sorted("compute" if pl.cost.bound == "compute" else "memory" for pl in plans)
    assert kinds == expected
    slowest = [pl.node for pl in sorted(plans, key=lambda pl: -pl.cost.cycles)][:5]
    assert p.labels == slowest  # the slowest layers are named beside their points
    for pt in p.points:  # inside the plot, sized by MACs
        assert pt["cx"] is not None and pt["cy"] is not None and pt["r"] is not None
        assert all(math.isfinite(float(pt[k])) for k in ("cx", "cy", "r"))
    biggest = max(plans, key=lambda pl: pl.cost.macs).node
    r_of = {(pt["title"] or "").split(" (")[0]: float(pt["r"] or 0) for pt in p.points}
    assert set(r_of) == {pl.node for pl in plans}
    assert r_of[biggest] == max(r_of.values())
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_html_and_text_escape_a_hostile_node_name() -> None:
    g = _tiny()
    g.name = '<b onload="x()">&'
    next(n for n in g.nodes if n.op == "Conv").name = HOSTILE
    _, plans = _tiled("ascend910b", g)
    data = report_data(g, plans, load_target("ascend910b"))
    page = roofline_html(data)
    p = _parse(page)
    assert "script" not in p.tags and "b" not in p.tags
    assert HOSTILE not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert any((pt["title"] or "").startswith(HOSTILE + " (Conv")  # shown as text
               for pt in p.points)
    assert f"Roofline - ascend910b: {g.name}" in p.titles
    assert HOSTILE in report_text(data)  # plain text needs no escaping


def test_layout_attribute_wins_over_the_rank_default() -> None:
    g = _tiny()
    conv = next(n for n in g.nodes if n.name == "conv1")
    conv.attrs["layout"] = "NC1HWC0"
    _, plans = _tiled("ascend910b", g)
    layouts = {d["name"]: d["layout"] for d in report_data(g, plans,
                                                            load_target("ascend910b"))["layers"]}
    assert layouts["conv1"] == "NC1HWC0"
    assert layouts["conv0"] == "NCHW" and layouts["logits"] == "ND"


def test_counters_agree_or_differ() -> None:
    prof = load_target("mlu370x8")
    g, plans = _tiled("mlu370x8")
    conv = plans["conv1"].cost
    good = {k: round(v) for k, v in conv.bytes.items()} | {"macs": conv.macs}
    bad = dict(good, offchip=int(conv.bytes[OFFCHIP] * 1.1) + 1)
    data = report_data(g, plans, prof, {"conv1": good, "relu0": {"macs": 1}, "ghost": {}})
    by = {d["name"]: d for d in data["layers"]}
    assert by["conv1"]["counters"]["agree"] is True
    assert by["conv1"]["counters"]["items"]["macs"] == {
        "measured": conv.macs, "modelled": float(conv.macs), "agree": True}
    assert by["relu0"]["counters"]["agree"] is False  # relu0 does more than 1 op
    assert by["relu0"]["counters"]["items"][OFFCHIP]["measured"] is None
    assert by["logits"]["counters"] is None
    assert data["unmatched_counters"] == ["ghost"] and data["model"]["counters_agree"] is False
    text = report_text(data)
    assert "DIFFER" in text and "ghost" in text
    only_good = report_data(g, plans, prof, {"conv1": good})
    assert only_good["model"]["counters_agree"] is True
    worse = report_data(g, plans, prof, {"conv1": bad})
    item = worse["layers"][[d["name"] for d in worse["layers"]].index("conv1")]
    assert item["counters"]["items"][OFFCHIP]["agree"] is False
    assert "offchip" in report_text(worse).split("DIFFER: ")[1]


def test_write_reports_writes_the_three_files(tmp_path: Path) -> None:
    prof = load_target("ascend310p")
    g, plans = _tiled("ascend310p")
    paths = write_reports(tmp_path / "out", g, plans, prof)
    assert [p.name for p in paths] == ["report.json", "report.txt", "roofline.html"]
    data = report_data(g, plans, prof)
    assert json.loads(paths[0].read_text()) == data
    assert paths[1].read_text() == report_text(data)
    assert paths[2].read_text() == roofline_html(data)


def test_layers_sharing_a_name_keep_their_own_plans_under_unique_keys() -> None:
    """A quantised layer and the Dequantize after it can share a node name: plans (and the
    generated code's counters) key the second one as name#1, so neither plan is lost."""
    g = _tiny()
    next(n for n in g.nodes if n.name == "relu1").name = "conv1"
    prof = load_target("thinker2")
    _, plans = _tiled("thinker2", g)
    data = report_data(g, plans, prof)
    rows = [(d["name"], d["op"]) for d in data["layers"]]
    assert ("conv1", "Conv") in rows and ("conv1#1", "Relu") in rows
    assert len(rows) == len(plans)
    assert data["model"]["cycles"] == pytest.approx(sum(p.cost.cycles for p in plans))


def _island_model() -> object:
    """conv -> Softmax (a float island) -> Atan -> conv -> Flatten (INT8, not staged) -> Relu."""
    import numpy as np
    from onnx import TensorProto, helper

    from tests.ops.test_control import _const, _model, _vi

    f, rng = TensorProto.FLOAT, np.random.default_rng(0)
    nodes = [helper.make_node("Conv", ["x", "w"], ["h"]),
             helper.make_node("Softmax", ["h"], ["s"], axis=1),
             helper.make_node("Atan", ["s"], ["a"]),
             helper.make_node("Conv", ["a", "w2"], ["c2"]),
             helper.make_node("Flatten", ["c2"], ["f"]),
             helper.make_node("Relu", ["f"], ["y"])]
    return _model(nodes, [_vi("x", f, [1, 3, 8, 8])], [_vi("y", f, [1, 72])],
                  [_const("w", rng.standard_normal((4, 3, 3, 3)).astype(np.float32)),
                   _const("w2", rng.standard_normal((2, 4, 1, 1)).astype(np.float32))])


def test_report_says_where_every_layer_ran(tmp_path: Path) -> None:
    """report.txt and report.json name, for every layer of the compiled graph, whether it
    was staged on the chip or ran on the host side, and why: a float island, an op the
    target does not stage, a layout conversion."""
    import numpy as np

    from compiler.api import compile_model
    from targets.staged.support import staged_kind

    cal = [{"x": np.random.default_rng(k).standard_normal((1, 3, 8, 8)).astype(np.float32)}
           for k in range(2)]
    cm = compile_model(_island_model(), precision="int8", calibration=cal,
                       target="ascend910b", output_dir=tmp_path / "out")
    data = cm.report()
    why = {d["name"]: (d["ran"], d["why"]) for d in data["layers"] + data["untiled"]}
    names = {n.name for n in cm.graph.nodes}
    assert set(why) == names  # every layer, once
    for n in cm.graph.nodes:
        assert why[n.name][0] == ("staged" if staged_kind(n) is not None else "host"), n.name
    ops = {n.op: n.name for n in cm.graph.nodes}
    assert why[ops["Softmax"]] == ("host", "float island: staged kernels are INT8")
    assert why[ops["Reshape"]] == ("host", "op not staged")
    assert why[ops["QConv"]] == ("staged", "staged on the chip")
    assert all(w == ("host", "layout conversion between staged and host layers")
               for n, w in why.items() if n.endswith("to_plain"))
    text = (tmp_path / "out" / "report.txt").read_text()
    assert text == report_text(data)
    rows = {ln.split()[0]: ln for ln in text.splitlines() if ln.split()[:1] and
            ln.split()[0] in names}
    assert set(rows) == names
    lines = text.splitlines()
    for name, (ran, reason) in why.items():
        (block,) = [ln for ln in lines if ln.startswith(f"- {name} (")]
        assert (reason if ran == "staged" else f"host: {reason}") in block, name
    assert f"every layer modelled: {len(data['layers'])} staged on the chip as tiled " \
           f"kernels, {len(data['untiled'])} around them" in " ".join(text.split())
