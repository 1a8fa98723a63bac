"""`qnnc compile --precision int8`: calibration from a file, f32 layers on request, and clear
errors for missing or unfitting calibration data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from compiler.cli import main
from compiler.quant.observers import DEFAULT_PERCENTILE


def test_int8_compile_and_run(tiny: Path, capsys: pytest.CaptureFixture) -> None:
    out = tiny.parent / "q8"
    rc = main(["compile", str(tiny), "-o", str(out), "--precision", "int8",
               "--calib", str(tiny.parent / "calib.npz"), "--skip-layers", "logits"])
    assert rc == 0, capsys.readouterr().err
    text = (out / "model.ir").read_text()
    assert "QConv" in text and "Gemm" in text and "QLinear" not in text
    assert "quantize" in capsys.readouterr().out
    x = np.random.default_rng(1).standard_normal((1, 1, 8, 8)).astype(np.float32)
    np.save(tiny.parent / "x.npy", x)
    assert main(["run", str(out), "--input", str(tiny.parent / "x.npy"),
                 "--output", str(tiny.parent / "y.npz")]) == 0
    assert main(["run", str(tiny), "--input", str(tiny.parent / "x.npy"),
                 "--output", str(tiny.parent / "yf.npz")]) == 0
    q, f = np.load(tiny.parent / "y.npz")["logits"], np.load(tiny.parent / "yf.npz")["logits"]
    assert np.max(np.abs(q - f)) < 0.1 * np.max(np.abs(f))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "needs calibration data"),
        (["--calib", "MISSING.npz"], "MISSING.npz"),
        (["--calib", "BAD.npz"], "shape"),
        (["--calib", "calib.npz", "--skip-layers", "no_such_layer"], "no_such_layer"),
    ],
)
def test_int8_errors(tiny: Path, capsys: pytest.CaptureFixture, extra: list[str],
                     message: str) -> None:
    np.savez(tiny.parent / "BAD.npz", input=np.zeros((4, 3, 3), np.float32))
    args = [a if not a.endswith(".npz") else str(tiny.parent / a) for a in extra]
    out = tiny.parent / "q8"
    rc = main(["compile", str(tiny), "-o", str(out), "--precision", "int8", *args])
    err = capsys.readouterr().err
    assert rc != 0 and message in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("extra", [[], ["--precision", "int8", "--calib", "calib.npz"]])
def test_bench_reports_latency(tiny: Path, capsys: pytest.CaptureFixture,
                               extra: list[str]) -> None:
    args = [a if not a.endswith(".npz") else str(tiny.parent / a) for a in extra]
    assert main(["bench", str(tiny), "--repeat", "3", "--warmup", "1", *args]) == 0
    out = capsys.readouterr().out
    assert "median" in out and "MACs per run" in out


def test_bench_rejects_zero_repeats(tiny: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["bench", str(tiny), "--repeat", "0"]) != 0
    assert "--repeat" in capsys.readouterr().err


def test_eval_shows_worst_layers_and_budget_keeps_layers_f32(
    tiny: Path, capsys: pytest.CaptureFixture
) -> None:
    rng = np.random.default_rng(5)
    np.savez(tiny.parent / "eval.npz",
             input=rng.standard_normal((6, 1, 1, 8, 8)).astype(np.float32))
    base = ["compile", str(tiny), "--precision", "int8", "--calib",
            str(tiny.parent / "calib.npz"), "--eval", str(tiny.parent / "eval.npz")]
    assert main([*base, "-o", str(tiny.parent / "a")]) == 0
    out = capsys.readouterr().out
    assert "SQNR dB" in out and "conv1" in out
    assert main([*base, "-o", str(tiny.parent / "b"), "--min-sqnr", "60"]) == 0
    out = capsys.readouterr().out
    assert "f32 layers:" in out
    text = (tiny.parent / "b" / "model.ir").read_text()
    assert "= Conv(" in text  # at least one layer was kept in f32 to meet the budget


def test_budget_needs_eval_data(tiny: Path, capsys: pytest.CaptureFixture) -> None:
    rc = main(["compile", str(tiny), "-o", str(tiny.parent / "c"), "--precision", "int8",
               "--calib", str(tiny.parent / "calib.npz"), "--max-drop", "1%"])
    assert rc != 0 and "--eval" in capsys.readouterr().err


def test_calib_implies_int8_and_conflicts_with_f32(tiny: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    calib = str(tiny.parent / "calib.npz")
    assert main(["compile", str(tiny), "-o", str(tiny.parent / "d"), "--calib", calib]) == 0
    assert "QConv" in (tiny.parent / "d" / "model.ir").read_text()
    rc = main(["compile", str(tiny), "-o", str(tiny.parent / "e"), "--calib", calib,
               "--precision", "f32"])
    assert rc != 0 and "--calib" in capsys.readouterr().err


def test_example_writes_calibration_samples(tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    model = tmp_path / "tiny.onnx"
    assert main(["example", "tiny_cnn", "-o", str(model), "--calib-samples", "3"]) == 0
    calib = np.load(tmp_path / "tiny_calib.npz")
    assert calib["input"].shape == (3, 1, 1, 8, 8) and calib["input"].dtype == np.float32
    assert not np.array_equal(calib["input"][0], calib["input"][1])
    assert main(["compile", str(model), "-o", str(tmp_path / "q"), "--calib",
                 str(tmp_path / "tiny_calib.npz")]) == 0


def test_per_tensor_weights_and_equalize(tiny: Path, capsys: pytest.CaptureFixture) -> None:
    out = tiny.parent / "pt"
    assert main(["compile", str(tiny), "-o", str(out), "--calib", str(tiny.parent / "calib.npz"),
                 "--per-tensor-weights", "--equalize", "-v"]) == 0
    assert "equalize" in capsys.readouterr().out
    text = (out / "model.ir").read_text()
    weights = [ln for ln in text.splitlines() if "_wq = const i8" in ln]
    assert weights and all("axis=" not in ln for ln in weights)  # one scale per layer


def test_smooth_reaches_the_quantize_pass_and_the_manifest(
        tiny: Path, capsys: pytest.CaptureFixture) -> None:
    out = tiny.parent / "sm"
    assert main(["compile", str(tiny), "-o", str(out), "--calib", str(tiny.parent / "calib.npz"),
                 "--smooth", "0.5"]) == 0
    assert "quantize{smooth=0.5}" in capsys.readouterr().out
    assert main(["inspect", str(out)]) == 0
    assert "smoothed (alpha 0.5)" in capsys.readouterr().out
    assert main(["compile", str(tiny), "--calib", str(tiny.parent / "calib.npz"),
                 "--smooth", "2"]) == 1  # a usage error
    assert "not between 0 and 1" in capsys.readouterr().err


def test_calib_percentile_reaches_the_quantize_pass_and_the_manifest(
        tiny: Path, capsys: pytest.CaptureFixture) -> None:
    calib = str(tiny.parent / "calib.npz")
    out, default = tiny.parent / "p90", tiny.parent / "pdef"
    assert main(["compile", str(tiny), "-o", str(out), "--calib", calib,
                 "--calib-percentile", "90"]) == 0
    assert "quantize{percentile=90" in capsys.readouterr().out
    assert main(["compile", str(tiny), "-o", str(default), "--calib", calib]) == 0
    capsys.readouterr()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["calibration"]["method"] == "auto"  # its percentile candidate's P
    assert manifest["calibration"]["chosen"] in ("percentile", "entropy")
    assert manifest["calibration"]["percentile"] == 90.0
    assert json.loads((default / "manifest.json").read_text())["calibration"][
        "percentile"] == DEFAULT_PERCENTILE
    assert main(["inspect", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "calibrated auto (percentile 90 or entropy): " in shown
    assert "on 16 samples" in shown and "output SQNR percentile" in shown
    # clipping the rarest 10% per tail narrows the first layer's output range
    assert _first_out_scale(out) < _first_out_scale(default)
    assert main(["compile", str(tiny), "--calib", calib, "--calib-percentile", "40"]) == 1
    assert "must be in (50, 100], got 40.0" in capsys.readouterr().err
    # the same rule in a pipeline's pass option, and nothing written
    bad = tiny.parent / "bad"
    assert main(["compile", str(tiny), "-o", str(bad), "--calib", calib,
                 "--pipeline", "fold-constants,quantize{percentile=20}"]) != 0
    assert "must be in (50, 100], got 20.0" in capsys.readouterr().err
    assert not bad.exists()


def _first_out_scale(folder: Path) -> float:
    line = next(ln for ln in (folder / "model.ir").read_text().splitlines()
                if "= QConv(" in ln)
    return float(line.split("scale=", 1)[1].split(",", 1)[0])
