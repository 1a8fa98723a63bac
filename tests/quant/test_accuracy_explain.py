"""The accuracy report's diagnosis: each cause forced by a small model, its figures checked
against values computed here from whole tensors, and the JSON / HTML reports (Python and
`qnnc compile --eval-report`)."""

from __future__ import annotations

import json
import math
import re
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler.cli import build_parser
from compiler.errors import QnncError
from compiler.frontend import import_model
from compiler.quant import accuracy_html
from compiler.quant.accuracy import (
    AMPLIFIED_DB,
    CLIPPED_ERROR_SHARE,
    COARSE_LEVELS,
    INHERITED_DB,
    OUTLIER_RATIO,
    AccuracyReport,
    Diagnosis,
    LayerRow,
    compare,
)
from compiler.quant.accuracy_html import to_html, write_report
from compiler.quant.calibrate import calibrate
from compiler.quant.quantize import QuantConfig, quantize_graph
from ir import Graph, qmath
from ir.interpreter import run
from tests.cli.models import assert_one_paragraph_error, run_cli, run_subprocess

OPSET = [helper.make_opsetid("", 17)]
N = 16
HOSTILE = '<script>alert("x")</script>&'


def _onnx(nodes: list[onnx.NodeProto], x_shape: tuple[int, ...], y_shape: tuple[int, ...],
          weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(y_shape))
    inits = [numpy_helper.from_array(w.astype(np.float32), k) for k, w in weights.items()]
    graph = helper.make_graph(nodes, "explain", [x], [y], inits)
    return helper.make_model(graph, opset_imports=OPSET, producer_name="qnnc-tests")


def _gemm_chain(w1: np.ndarray, w2: np.ndarray, w3: np.ndarray,
                fc1: str = "fc1", h1: str = "h1") -> onnx.ModelProto:
    """x → Gemm fc1 → h1 → Gemm fc2 → h2 → Gemm fc3 → y."""
    nodes = [helper.make_node("Gemm", ["x", "w1"], [h1], name=fc1, transB=1),
             helper.make_node("Gemm", [h1, "w2"], ["h2"], name="fc2", transB=1),
             helper.make_node("Gemm", ["h2", "w3"], ["y"], name="fc3", transB=1)]
    return _onnx(nodes, (1, N), (1, w3.shape[0]), {"w1": w1, "w2": w2, "w3": w3})


def _weights(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return 2 * np.eye(N), rng.standard_normal((N, N)) / 4, rng.standard_normal((4, N)) / 4


def _quantise(g: Graph, calib: np.ndarray, method: str,
              skip: frozenset[str] = frozenset()) -> Graph:
    return quantize_graph(g, calibrate(g, {"x": calib}, method),  # type: ignore[arg-type]
                          QuantConfig(skip_layers=skip))


def _rows(report: AccuracyReport) -> dict[str, LayerRow]:
    return {r.tensor: r for r in report.layers + report.outputs}


def _diag(row: LayerRow) -> Diagnosis:
    assert row.diagnosis is not None
    return row.diagnosis


def _tensors(g: Graph, q: Graph, data: np.ndarray, name: str
             ) -> tuple[np.ndarray, np.ndarray, float, int, int, int]:
    """(reference values, dequantised counterpart, scale, zero point, qmin, qmax) of tensor
    ``name`` over all samples, from whole tensors."""
    value = next(v for n in q.nodes for v in n.outputs if v.name == name)
    qp = value.type.quant
    assert qp is not None and not qp.per_channel
    refs, gots = [], []
    for sample in data:
        refs.append(run(g, {"x": sample}, keep=True)[name])
        codes = run(q, {"x": sample}, keep=True)[name]
        gots.append(qmath.dequantize(codes, qp.scale_array(), qp.zero_point_array()))
    info = np.iinfo(value.type.dtype.np)
    return (np.stack(refs).astype(np.float64), np.stack(gots).astype(np.float64),
            qp.scale[0], qp.zero_point[0], int(info.min), int(info.max))


def _expected_clipping(ref: np.ndarray, got: np.ndarray, scale: float, zp: int, qmin: int,
                       qmax: int) -> tuple[float, float]:
    lo = float(np.float32(qmin - zp) * np.float32(scale))
    hi = float(np.float32(qmax - zp) * np.float32(scale))
    outside = (ref < lo) | (ref > hi)
    err2 = (ref - got) ** 2
    return float(outside.mean()), float(err2[outside].sum() / err2.sum())


def _accepted_by_compile(args: tuple[str, ...]) -> None:
    """The fix's arguments are real `qnnc compile` options with valid values."""
    build_parser().parse_args(["compile", "m.onnx", "-o", "out", *args])


# -- the causes -------------------------------------------------------------------------------


def test_calibration_narrower_than_the_data_is_range_clipped() -> None:
    rng = np.random.default_rng(1)
    g = import_model(_gemm_chain(*_weights()))
    calib, data = rng.normal(0, 0.5, (48, 1, N)), rng.normal(0, 2, (48, 1, N))
    q = _quantise(g, calib, "percentile")
    report = compare(g, q, {"x": data}, calib_method="percentile")
    d = _diag(_rows(report)["h1"])
    assert (d.kind, d.cause) == ("range clipped", "range clipped")
    assert d.fix_args == ("--calib-method", "minmax") and "--calib-method minmax" in d.fix
    ref, got, scale, zp, qmin, qmax = _tensors(g, q, data, "h1")
    share, err_share = _expected_clipping(ref, got, scale, zp, qmin, qmax)
    assert d.clipped_share == pytest.approx(share, rel=1e-9) and share > 0.2
    assert d.clipped_error_share == pytest.approx(err_share, rel=1e-6)
    assert d.clipped_error_share >= CLIPPED_ERROR_SHARE
    assert (d.scale, d.zero_point) == (scale, zp)
    assert d.ref_max == pytest.approx(ref.max()) and d.ref_min == pytest.approx(ref.min())
    assert d.levels == pytest.approx(math.sqrt((ref**2).mean()) / scale, rel=1e-9)
    # with minmax the range already covers the calibration data: the fix is other data
    q2 = _quantise(g, calib, "minmax")
    d2 = _diag(_rows(compare(g, q2, {"x": data}, calib_method="minmax"))["h1"])
    assert d2.kind == "range clipped" and d2.fix_args == ("--skip-layers", "fc1")
    assert "--calib" in d2.fix and "--skip-layers fc1" in d2.fix


def test_one_calibration_outlier_makes_the_scale_too_coarse_and_later_layers_inherit() -> None:
    rng = np.random.default_rng(2)
    w1, w2, w3 = _weights()
    w2[:, 0] = 0  # fc2 ignores the element with the outlier: h2's own range stays normal
    g = import_model(_gemm_chain(w1, w2, w3))
    calib = rng.normal(0, 1, (48, 1, N))
    calib[5, 0, 0] = 1000.0
    data = rng.normal(0, 1, (48, 1, N))
    q = _quantise(g, calib, "minmax")
    report = compare(g, q, {"x": data}, calib_method="minmax")
    rows = _rows(report)
    d = _diag(rows["h1"])
    assert (d.kind, d.cause) == ("scale too coarse", "scale too coarse")
    assert d.fix_args == ("--calib-method", "percentile") and "mse" in d.fix
    ref, got, scale, zp, qmin, qmax = _tensors(g, q, data, "h1")
    levels = math.sqrt((ref**2).mean()) / scale
    assert d.levels == pytest.approx(levels, rel=1e-9) and levels < COARSE_LEVELS
    assert d.clipped_share == 0.0 and d.range_hi == pytest.approx(2000.0, rel=0.01)
    # the layer after it: within INHERITED_DB of h1, so inherited, fixed where it starts
    d2 = _diag(rows["h2"])
    assert (d2.kind, d2.cause) == ("inherited", "inherited from h1")
    assert d2.input_tensor == "h1" and d2.input_sqnr_db == rows["h1"].sqnr_db
    assert rows["h2"].sqnr_db >= rows["h1"].sqnr_db - INHERITED_DB
    assert d2.fix.startswith("at fc1 (scale too coarse):") and d2.fix_args == d.fix_args
    assert _diag(rows["y"]).cause == "inherited from h2"
    assert _diag(rows["y"]).fix == d2.fix  # the chain's origin
    # percentile calibration: mse is the other method to try
    d3 = _diag(_rows(compare(g, q, {"x": data}, calib_method="percentile"))["h1"])
    assert d3.fix_args == ("--calib-method", "mse")
    # a layer kept in f32 adds no error: it always inherits
    qf = _quantise(g, calib, "minmax", frozenset({"fc2"}))
    rows_f = _rows(compare(g, qf, {"x": data}, calib_method="minmax"))
    assert rows_f["h2"].op == "Gemm" and _diag(rows_f["h2"]).cause == "inherited from h1"
    assert _diag(rows_f["h2"]).levels is None  # no single representable range


def _outlier_channel(conv: str = "conv") -> tuple[Graph, Graph, np.ndarray, AccuracyReport]:
    """x[1, 4, 6, 6] → 1x1 Conv ``conv`` scaling channel 3 by 100 → h → Conv → y,
    calibrated (minmax) on the evaluation data itself, so nothing clips."""
    rng = np.random.default_rng(3)
    c = 4
    nodes = [helper.make_node("Conv", ["x", "wc"], ["h"], name=conv),
             helper.make_node("Conv", ["h", "wc2"], ["y"], name="conv2")]
    weights = {"wc": np.diag([1.0, 1.0, 1.0, 100.0]).reshape(c, c, 1, 1),
               "wc2": rng.standard_normal((2, c, 1, 1))}
    g = import_model(_onnx(nodes, (1, c, 6, 6), (1, 2, 6, 6), weights))
    data = rng.standard_normal((24, 1, c, 6, 6))
    q = _quantise(g, data, "minmax")
    return g, q, data, compare(g, q, {"x": data}, calib_method="minmax")


def test_cancellation_amplifies_the_error_it_receives() -> None:
    """h1 holds pairs (x_k, x_k + 0.02 x_{k+8}); fc2 takes their differences, 0.02 x_{k+8}:
    h1's rounding noise survives the subtraction while the signal shrinks fifty-fold, so h2
    is far below what its own levels give and not within INHERITED_DB of h1: amplified."""
    w1 = np.zeros((N, N))
    w2 = np.zeros((N // 2, N))
    for k in range(N // 2):
        w1[2 * k, k] = 1.0
        w1[2 * k + 1, k], w1[2 * k + 1, k + N // 2] = 1.0, 0.02
        w2[k, 2 * k], w2[k, 2 * k + 1] = -1.0, 1.0
    nodes = [helper.make_node("Gemm", ["x", "w1"], ["h1"], name="fc1", transB=1),
             helper.make_node("Gemm", ["h1", "w2"], ["h2"], name="fc2", transB=1),
             helper.make_node("Gemm", ["h2", "w3"], ["y"], name="fc3", transB=1)]
    g = import_model(_onnx(nodes, (1, N), (1, N // 2),
                           {"w1": w1, "w2": w2, "w3": np.eye(N // 2)}))
    calib = data = np.random.default_rng(3).normal(0, 1, (48, 1, N))  # nothing clipped
    q = _quantise(g, calib, "minmax")
    rows = _rows(compare(g, q, {"x": data}, calib_method="minmax"))
    h1, h2 = _diag(rows["h1"]), _diag(rows["h2"])
    assert h1.kind == "none dominant"  # h1 itself is well quantised
    assert (h2.kind, h2.cause) == ("amplified", "amplified from h1")
    ref, got, scale, _, _, _ = _tensors(g, q, data, "h2")
    levels = math.sqrt((ref ** 2).mean()) / scale
    own_db = 10 * math.log10(12 * levels ** 2)
    sqnr = 10 * math.log10((ref ** 2).sum() / ((ref - got) ** 2).sum())
    assert rows["h2"].sqnr_db == pytest.approx(sqnr, abs=1e-6)
    assert sqnr <= own_db - AMPLIFIED_DB and sqnr < rows["h1"].sqnr_db - INHERITED_DB
    assert h2.input_tensor == "h1" and "fc1" in h2.fix


def test_a_channel_100x_larger_is_an_outlier_channel() -> None:
    g, q, data, report = _outlier_channel()
    d = _diag(_rows(report)["h"])
    ref, _, scale, *_ = _tensors(g, q, data, "h")
    per_channel = np.abs(ref).max(axis=(0, 1, 3, 4))  # samples, N, H, W
    ratio = per_channel.max() / np.median(per_channel)
    assert d.outlier_ratio == pytest.approx(ratio, rel=1e-9) and ratio > OUTLIER_RATIO
    assert d.levels == pytest.approx(math.sqrt((ref**2).mean()) / scale, rel=1e-9)
    assert d.levels >= COARSE_LEVELS  # the big channel keeps the RMS up: not "coarse"
    assert (d.kind, d.cause) == ("outlier channel", "outlier channel")
    assert d.fix == "keep conv in f32 with --skip-layers conv"
    assert d.fix_args == ("--skip-layers", "conv")


def test_a_tanh_over_a_wide_input_is_limited_by_its_table() -> None:
    rng = np.random.default_rng(4)
    nodes = [helper.make_node("Gemm", ["x", "w1"], ["h1"], name="fc1", transB=1),
             helper.make_node("Tanh", ["h1"], ["t"], name="tanh"),
             helper.make_node("Gemm", ["t", "w3"], ["y"], name="fc3", transB=1)]
    g = import_model(_onnx(nodes, (1, N), (1, 4), {"w1": np.eye(N),
                                                   "w3": _weights()[2]}))
    data = rng.normal(0, 8, (48, 1, N))  # tanh is steep only where few values fall
    q = _quantise(g, data, "minmax")
    rows = _rows(compare(g, q, {"x": data}, calib_method="minmax"))
    t = rows["t"]
    d = _diag(t)
    assert t.op == "QLut" and d.table
    assert (d.kind, d.cause) == ("table resolution", "table resolution")
    assert d.input_tensor == "h1" and t.sqnr_db < rows["h1"].sqnr_db - INHERITED_DB
    assert d.fix_args == ("--skip-layers", "tanh")
    h1 = next(v for n in q.nodes for v in n.outputs if v.name == "h1")
    assert h1.type.quant is not None
    assert f"{h1.type.quant.scale[0]:.4g} apart" in d.detail
    assert _diag(rows["h1"]).kind == "none dominant"


def test_exact_tensors_need_nothing() -> None:
    g = import_model(_gemm_chain(*_weights()))
    data = np.random.default_rng(5).standard_normal((4, 1, N))
    report = compare(g, g, {"x": data})
    for r in report.layers + report.outputs:
        assert r.sqnr_db == math.inf and _diag(r).kind == "none dominant"
        assert _diag(r).fix == "nothing to do" and _diag(r).fix_args == ()


# -- the report -------------------------------------------------------------------------------


def _coarse_report(fc1: str = "fc1", h1: str = "h1") -> AccuracyReport:
    rng = np.random.default_rng(6)
    w1, w2, w3 = _weights()
    g = import_model(_gemm_chain(w1, w2, w3, fc1, h1))
    calib = rng.normal(0, 1, (24, 1, N))
    calib[0, 0, 3] = 500.0
    return compare(g, _quantise(g, calib, "minmax"), {"x": rng.normal(0, 1, (16, 1, N))},
                   calib_method="minmax")


def test_format_names_cause_and_fix_of_the_worst_layers() -> None:
    report = _coarse_report()
    text = report.format(worst=2)
    assert all(len(line) < 120 for line in text.splitlines())
    assert "cause" in text.splitlines()[1]
    assert "what limited them" in text and "scale too coarse" in text
    assert "--calib-method percentile" in text
    worst = report.worst(2)
    for r in worst:
        assert f"{r.layer} ({r.tensor}): {_diag(r).cause}" in text
    for r in report.layers + report.outputs:
        _accepted_by_compile(_diag(r).fix_args)


def test_hostile_layer_names_are_shell_quoted_in_fixes() -> None:
    name = HOSTILE + " it's"
    d = _diag(_rows(_outlier_channel(name)[3])["h"])
    assert d.kind == "outlier channel" and d.fix_args == ("--skip-layers", name)
    assert shlex.split(d.fix.split(" in f32 with ", 1)[1]) == ["--skip-layers", name]
    _accepted_by_compile(d.fix_args)


def test_to_dict_is_strict_json_with_every_diagnosis() -> None:
    report = _coarse_report()
    d = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert d["calib_method"] == "minmax" and d["samples"] == 16
    assert d["thresholds"] == {"inherited_db": INHERITED_DB,
                               "clipped_error_share": CLIPPED_ERROR_SHARE,
                               "outlier_ratio": OUTLIER_RATIO, "coarse_levels": COARSE_LEVELS}
    rows = {r["tensor"]: r for r in d["layers"] + d["outputs"]}
    assert set(rows) == {"h1", "h2", "y"}
    h1 = rows["h1"]
    assert h1["cause"] == "scale too coarse" and h1["fix"].startswith("--calib-method")
    diag = h1["diagnosis"]
    for key in ("clipped_share", "clipped_error_share", "levels", "outlier_ratio", "scale",
                "zero_point", "range_lo", "range_hi", "table", "input_tensor", "fix_args"):
        assert key in diag
    assert diag["levels"] == pytest.approx(_diag(_rows(report)["h1"]).levels)
    assert rows["h2"]["diagnosis"]["input_tensor"] == "h1"


def _synthetic() -> AccuracyReport:
    """Rows with +inf and -inf SQNRs and a hostile name, for the page's drawing."""
    def row(t: str, db: float, kind: str) -> LayerRow:
        return LayerRow(t, f"L{t}", "QConv", db, 0.99, 0.1,
                        Diagnosis(kind, kind, "", f"--skip-layers {shlex.quote(t)}"))
    layers = [row("a", 40.0, "none dominant"), row("b", math.inf, "none dominant"),
              row(HOSTILE, 12.0, "range clipped"), row("d", -math.inf, "none dominant")]
    return AccuracyReport(layers, [row("y", 30.0, "inherited")], 3, title=HOSTILE)


def test_html_page_chart_marks_infinite_and_worst_layers() -> None:
    page = to_html(_synthetic(), worst=1)
    assert "<script" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    assert "&lt;script&gt;" in page
    svg = ET.fromstring(re.search(r"<svg.*?</svg>", page, re.S).group(0))  # type: ignore[union-attr]
    ns = "{http://www.w3.org/2000/svg}"
    circles = svg.findall(f"{ns}circle")
    assert len(circles) == 5
    tips = [c.find(f"{ns}title").text for c in circles]  # type: ignore[union-attr]
    assert tips[2] is not None and tips[2].startswith(f"#2 L{HOSTILE}")
    cy = [float(c.get("cy", "nan")) for c in circles]
    assert cy[1] == accuracy_html._TOP  # +inf on the marked band at the top
    assert cy[1] < min(cy[0], cy[2], cy[4]) and cy[3] == max(cy)  # -inf at the bottom
    assert [c.get("fill") for c in circles].count("#c62828") == 1  # the worst layer
    assert circles[3].get("fill") == "#c62828"  # -inf is the worst
    assert "exact (SQNR +inf)" in page
    assert page.count('class="worst"') == 1


def test_write_report_is_atomic_and_checks_the_path(tmp_path: Path) -> None:
    report = _coarse_report()
    j = write_report(report, tmp_path / "r.json")
    assert json.loads(j.read_text())["layers"][0]["tensor"] == "h1"
    h = write_report(report, tmp_path / "r.html", worst=2)
    assert h.read_text().startswith("<!DOCTYPE html>") and "<svg" in h.read_text()
    with pytest.raises(QnncError, match="does not exist"):
        write_report(report, tmp_path / "missing" / "r.html")
    with pytest.raises(QnncError, match=r"\.json .*\.html"):
        write_report(report, tmp_path / "r.txt")
    (tmp_path / "dir.html").mkdir()
    with pytest.raises(QnncError, match="is a folder"):
        write_report(report, tmp_path / "dir.html")

    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("disk full")

    original = accuracy_html.to_json
    accuracy_html.to_json = broken  # type: ignore[assignment]
    try:
        with pytest.raises(RuntimeError):
            write_report(report, tmp_path / "other.json")
    finally:
        accuracy_html.to_json = original  # type: ignore[assignment]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.html", "r.html", "r.json"]


# -- the command line -------------------------------------------------------------------------


def _hostile_model(tmp_path: Path) -> Path:
    w1, w2, w3 = _weights()
    path = tmp_path / "hostile.onnx"
    onnx.save(_gemm_chain(w1, w2, w3, fc1=HOSTILE, h1=HOSTILE + "out"), str(path))
    rng = np.random.default_rng(7)
    calib = rng.normal(0, 1, (16, 1, N)).astype(np.float32)
    calib[0, 0, 2] = 300.0
    np.savez(tmp_path / "calib.npz", x=calib)
    np.savez(tmp_path / "eval.npz", x=rng.normal(0, 1, (8, 1, N)).astype(np.float32))
    return path


def test_cli_writes_json_and_html_reports(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    model = _hostile_model(tmp_path)
    base = ["compile", str(model), "--calib", str(tmp_path / "calib.npz"), "--calib-method",
            "minmax", "--eval", str(tmp_path / "eval.npz"), "--worst", "2"]
    r = run_cli([*base, "-o", str(tmp_path / "a"), "--eval-report",
                 str(tmp_path / "acc.json")], capsys)
    assert r.code == 0, r.err
    assert "scale too coarse" in r.out and f"wrote the accuracy report {tmp_path}" in r.out
    d = json.loads((tmp_path / "acc.json").read_text())
    rows = {x["tensor"]: x for x in d["layers"] + d["outputs"]}
    assert rows[HOSTILE + "out"]["cause"] == "scale too coarse"
    assert rows[HOSTILE + "out"]["layer"] == HOSTILE
    assert d["calib_method"] == "minmax"
    r = run_cli([*base, "-q", "-o", str(tmp_path / "b"), "--eval-report",
                 str(tmp_path / "acc.html")], capsys)
    assert r.code == 0 and r.out == "", r.err  # written with --quiet too
    page = (tmp_path / "acc.html").read_text()
    assert "<svg" in page and "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in page


def test_cli_report_path_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _hostile_model(tmp_path)
    base = ["compile", str(model), "-o", str(tmp_path / "out"), "--calib",
            str(tmp_path / "calib.npz"), "--eval", str(tmp_path / "eval.npz")]
    missing = tmp_path / "no_such_dir" / "acc.html"
    r = run_subprocess([*base, "--eval-report", str(missing)])
    assert_one_paragraph_error(r, 1, "accuracy report", "no_such_dir", "does not exist")
    assert not (tmp_path / "out").exists()  # checked before compiling
    r = run_cli([*base, "--eval-report", str(tmp_path / "acc.txt")], capsys)
    assert_one_paragraph_error(r, 1, ".json", ".html")
    r = run_cli([*base[:-2], "--eval-report", str(tmp_path / "acc.json")], capsys)
    assert_one_paragraph_error(r, 1, "--eval")
    assert not (tmp_path / "out").exists()
