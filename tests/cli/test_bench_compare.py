"""`qnnc bench MODEL --compare onnxruntime`: onnxruntime's f32 and quantize_static INT8
timings beside qnnc's for any model, on the same inputs and threads; clear errors where a
comparison cannot be made."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from compiler.cli import main


def _rows(out: str) -> dict[str, tuple[float, float]]:
    rows = {}
    for line in out.split("against onnxruntime")[1].splitlines()[3:]:
        m = re.match(r"(.+?)\s{2,}([\d.]+)\s+([\d.]+)$", line)
        if m:
            rows[m[1]] = (float(m[2]), float(m[3]))
    return rows


def test_int8_model_against_both_onnxruntime_columns(tiny: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    assert main(["bench", str(tiny), "--target", "host", "--calib", str(tmp_path / "calib.npz"),
                 "--compare", "onnxruntime", "--repeat", "3", "--warmup", "1"]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert set(rows) == {"qnnc INT8", "onnxruntime f32", "onnxruntime INT8 (quantize_static)"}
    qnnc_ms = rows["qnnc INT8"][0]
    assert rows["qnnc INT8"][1] == 1.0
    for ms, ratio in rows.values():  # the printed ms are rounded to 1 us: allow for it
        slack = 0.006 + 0.0005 * (1 + ratio) / qnnc_ms
        assert ms > 0 and ratio == pytest.approx(ms / qnnc_ms, abs=slack)
    assert "load " in out and "WARNING" not in out


def test_f32_model_has_no_int8_column(tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", str(tiny), "--compare", "ONNXRuntime", "--repeat", "2"]) == 0
    assert set(_rows(capsys.readouterr().out)) == {"qnnc f32", "onnxruntime f32"}


def test_where_no_comparison_can_be_made(tiny: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    calib = str(tmp_path / "calib.npz")
    assert main(["bench", str(tiny), "--target", "thinker2", "--calib", calib,
                 "--compare", "onnxruntime"]) == 1
    assert "not an accelerator's modelled latency" in capsys.readouterr().err
    folder = tmp_path / "built"
    moved = tmp_path / "elsewhere.onnx"
    assert main(["compile", str(tiny), "-o", str(folder), "-q"]) == 0
    shutil.move(tiny, moved)
    assert main(["bench", str(folder), "--compare", "onnxruntime", "--repeat", "1"]) == 1
    assert "needs the .onnx model" in capsys.readouterr().err


def test_without_onnxruntime_the_error_says_how_to_install(tiny: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails
    assert main(["bench", str(tiny), "--compare", "onnxruntime", "--repeat", "1"]) == 1
    assert "pip install onnxruntime" in capsys.readouterr().err


def test_json_holds_the_same_figures(tiny: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["bench", str(tiny), "--target", "host", "--calib", str(tmp_path / "calib.npz"),
                 "--compare", "onnxruntime", "--repeat", "3", "--warmup", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)  # nothing but the JSON on stdout
    assert (data["target"], data["precision"], data["latency_ms"]["runs"]) == ("host", "int8", 3)
    lat = data["latency_ms"]
    assert lat["min"] <= lat["median"] <= lat["max"]
    assert data["gops"] == pytest.approx(2 * data["macs"] / lat["median"] / 1e6)
    rows = {r["runtime"]: r for r in data["compare"]["rows"]}
    assert set(rows) == {"qnnc INT8", "onnxruntime f32", "onnxruntime INT8 (quantize_static)"}
    assert rows["qnnc INT8"]["median_ms"] == lat["median"]
    for r in rows.values():
        assert r["ratio"] == pytest.approx(r["median_ms"] / lat["median"])
