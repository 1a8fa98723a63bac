"""`qnnc compile --print-pipeline` and `--pipeline`: the pipeline is text a user can print,
edit and give back, and the compile flags set the options of its passes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.api import compile_model
from compiler.cli import main
from compiler.passes import PASSES, parse_pipeline
from ir.text import load_ir
from tests.cli.models import assert_one_paragraph_error, run_cli

CLEANUP = ("lower-qdq,fold-constants,fold-batchnorm,fold-affine,conv-transpose-blocks,dce,"
           "recognize-gelu,recognize-silu,recognize-hardswish,recognize-layernorm,dce")


@pytest.mark.parametrize("flags, want", [
    ([], CLEANUP),
    (["--calib", "CALIB"], CLEANUP + ",quantize"),
    (["--calib", "CALIB", "--equalize", "--calib-method", "mse", "--skip-layers", "conv1,x y",
      "--per-tensor-weights"],
     CLEANUP.replace("fold-affine,", "fold-affine,equalize,")
     + ',quantize{method=mse per-channel=false skip-layers=conv1,"x y"}'),
    (["--calib", "CALIB", "--target", "ascend910b"],
     CLEANUP + ",quantize,layout{target=ascend910b},fold-layout,fuse-eltwise{target=ascend910b},"
     "keep-in-l2{target=ascend910b},tile{target=ascend910b}"),
])
def test_print_pipeline_shows_what_the_options_run(tiny: Path, capsys: pytest.CaptureFixture,
                                                   flags: list[str], want: str) -> None:
    calib = str(tiny.parent / "calib.npz")
    flags = [calib if f == "CALIB" else f for f in flags]
    r = run_cli(["compile", str(tiny), "--print-pipeline", *flags], capsys)
    assert r.code == 0, r.err
    assert r.out.strip() == want
    assert not (tiny.parent / "out").exists()  # printing compiles nothing
    parse_pipeline(r.out.strip())  # and it reads back


def test_a_printed_pipeline_given_back_compiles_the_same(tiny: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    calib = str(tiny.parent / "calib.npz")
    r = run_cli(["compile", str(tiny), "--print-pipeline", "--calib", calib], capsys)
    text = r.out.strip()
    a, b = tiny.parent / "a", tiny.parent / "b"
    assert main(["compile", str(tiny), "-o", str(a), "--calib", calib, "-q"]) == 0
    assert main(["compile", str(tiny), "-o", str(b), "--calib", calib, "--pipeline", text,
                 "-q"]) == 0
    assert load_ir(str(a / "model.ir")) == load_ir(str(b / "model.ir"))


def test_a_custom_pipeline_runs_as_written(tiny: Path, capsys: pytest.CaptureFixture) -> None:
    calib = str(tiny.parent / "calib.npz")
    out = tiny.parent / "custom"
    r = run_cli(["compile", str(tiny), "-o", str(out), "--calib", calib, "--pipeline",
                 "fold-constants,quantize{method=minmax skip-op-types=Gemm},dce"], capsys)
    assert r.code == 0, r.err
    assert "passes: fold-constants, quantize{method=minmax skip-op-types=Gemm}, dce" in r.out
    ops = {n.op for n in compile_model(str(tiny), calibration=calib, pipeline=(
        "fold-constants,quantize{method=minmax skip-op-types=Gemm},dce")).graph.nodes}
    assert "QConv" in ops and "Gemm" in ops and "QLinear" not in ops


@pytest.mark.parametrize("flags, code, needles", [
    (["--pipeline", "fold-constants,tiles"], 1, ["unknown pass 'tiles'", "known passes"]),
    (["--pipeline", "quantize{metod=mse}"], 1, ["has no option 'metod'", "its options"]),
    (["--pipeline", "dce", "--calib", "CALIB"], 1, ["needs the quantize pass"]),
    (["--pipeline", "quantize{method=mse}", "--calib", "CALIB", "--calib-method", "entropy"],
     1, ["quantize{method=mse} sets method", "give one"]),
    (["--pipeline", "quantize,layout,tile{target=mlu370x8}", "--calib", "CALIB", "--target",
      "ascend910b"], 1, ["works for 'mlu370x8'", "targets 'ascend910b'"]),
    (["--pipeline", "quantize", "--calib", "CALIB", "--target", "ascend910b"], 1,
     ["needs the layout and tile passes"]),
    (["--pipeline", "dce", "--equalize"], 1, ["write equalize into the pipeline"]),
    ([], 1, ["needs an output folder: -o"]),
])
def test_pipeline_mistakes_are_one_clear_error(tiny: Path, capsys: pytest.CaptureFixture,
                                               flags: list[str], code: int,
                                               needles: list[str]) -> None:
    calib = str(tiny.parent / "calib.npz")
    flags = [calib if f == "CALIB" else f for f in flags]
    out = [] if flags == [] else ["-o", str(tiny.parent / "bad")]
    r = run_cli(["compile", str(tiny), *out, *flags], capsys)
    assert_one_paragraph_error(r, code, *needles)
    assert not (tiny.parent / "bad").exists()


def test_passes_lists_every_pass_with_its_options(capsys: pytest.CaptureFixture) -> None:
    r = run_cli(["passes"], capsys)
    assert r.code == 0
    listed = [ln.split(":")[0] for ln in r.out.splitlines() if not ln.startswith(" ")]
    assert listed == sorted(PASSES)
    assert "    method=auto  range observer" in r.out
    assert "    target=none" in r.out
    r = run_cli(["passes", "quantize", "--json"], capsys)
    (q,) = json.loads(r.out)
    assert q["name"] == "quantize" and {"name": "skip-layers", "default": "",
                                        "doc": "layers (node names) to keep in f32"} in q["options"]
    assert_one_paragraph_error(run_cli(["passes", "tiles"], capsys), 1, "unknown pass",
                               "quantize")
