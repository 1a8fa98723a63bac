"""Happy paths of every `qnnc` subcommand, checked against numbers worked out by hand and
against onnxruntime."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from compiler import api
from compiler.cli import EXIT_CODES
from tests.cli.models import (
    assert_one_paragraph_error,
    conv_reference,
    conv_relu,
    run_cli,
    run_subprocess,
    save,
    two_inputs,
    unsupported,
)

# conv1: 4 filters of 3x3x3 over an 8x8 map with padding 1 -> 4*8*8 = 256 outputs per image,
# each a 27-tap dot product; the bias adds one FLOP per output.
CONV_MACS = 256 * 27  # 6912
CONV_FLOPS = 2 * CONV_MACS + 256  # 14080
CONV_PARAMS = 4 * 27 + 4  # 112
RELU_FLOPS = 256


def test_inspect_counts_conv_flops_by_hand(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    p = save(conv_relu(), tmp_path / "conv.onnx")
    r = run_cli(["inspect", str(p), "--json"], capsys)
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["model"]["producer"] == "qnnc-tests"
    assert data["model"]["opsets"] == {"ai.onnx": 17}
    assert data["model"]["inputs"] == [{"name": "x", "dtype": "float", "shape": [1, 3, 8, 8]}]
    conv, relu = data["layers"]
    assert (conv["name"], conv["op"], conv["outputs"]) == ("conv1", "Conv", ["f32[1,4,8,8]"])
    assert (conv["macs"], conv["flops"], conv["params"]) == (CONV_MACS, CONV_FLOPS, CONV_PARAMS)
    assert (relu["macs"], relu["flops"], relu["params"]) == (0, RELU_FLOPS, 0)
    t = data["totals"]
    assert (t["params"], t["macs"], t["flops"]) == (
        CONV_PARAMS, CONV_MACS, CONV_FLOPS + RELU_FLOPS
    )
    assert t["op_counts"] == {"Conv": 1, "Relu": 1}


def test_inspect_text_table(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    p = save(conv_relu(batch="N"), tmp_path / "conv.onnx")
    r = run_cli(["inspect", str(p), "--input-shape", "x=2x3x8x8"], capsys)
    assert r.code == 0, r.err
    assert "x: float[N,3,8,8]" in r.out  # as the file declares it
    assert "x: f32[2,3,8,8]" in r.out  # as compiled
    conv_line = next(ln for ln in r.out.splitlines() if " conv1 " in ln)
    assert conv_line.split()[2:] == ["Conv", "f32[2,4,8,8]", "112", "13.82K", "28.16K"]
    assert f"FLOPs 28.67K ({2 * (CONV_FLOPS + RELU_FLOPS)})" in r.out


def test_inspect_unsupported_summarises(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    p = save(unsupported(), tmp_path / "unsup.onnx")
    r = run_cli(["inspect", str(p)], capsys)
    assert r.code == 3
    assert "x: float[4]" in r.out
    table = r.out.split("unsupported ops")[1]
    for op, node in [("com.acme.Frobnicate", "frob"), ("StringNormalizer", "norm_a"),
                     ("StringNormalizer", "norm_b")]:
        assert any(ln.split() == [op, node] for ln in table.splitlines()), (op, node)


def test_run_with_npy_matches_onnxruntime(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model = conv_relu()
    p = save(model, tmp_path / "conv.onnx")
    x = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out.npz"
    r = run_cli(["run", str(p), "--input", str(tmp_path / "x.npy"), "--output", str(out)],
                capsys)
    assert r.code == 0, r.err
    want = conv_reference(x, model)
    with np.load(out) as got:
        assert list(got.files) == ["y"]
        np.testing.assert_allclose(got["y"], want, rtol=1e-5, atol=1e-5)
    row = next(ln for ln in r.out.splitlines() if ln.startswith("y "))
    assert row.split()[1:3] == ["[1,4,8,8]", "float32"]
    assert float(row.split()[4]) == pytest.approx(float(want.max()), rel=1e-5)


def test_run_with_npz_and_named_npy(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    p = save(two_inputs(), tmp_path / "two.onnx")
    a = np.array([[1, -2, 3], [-4, 5, -6]], np.float32)
    b = np.full((2, 3), 0.5, np.float32)
    np.savez(tmp_path / "feeds.npz", a=a, b=b)
    np.save(tmp_path / "b.npy", b)
    np.save(tmp_path / "a.npy", a.astype(np.float64))  # float64 is converted, not refused
    want = np.maximum(a + b, 0)
    for inputs in (["feeds.npz"], ["a=a.npy", "b=b.npy"]):
        # the second pass overwrites the first's o.npz: that takes --force
        argv = ["run", str(p), "--output", str(tmp_path / "o.npz"), "--force"]
        for spec in inputs:
            name, _, f = spec.rpartition("=")
            argv += ["--input", f"{name}={tmp_path / f}" if name else str(tmp_path / f)]
        r = run_cli(argv, capsys)
        assert r.code == 0, r.err
        with np.load(tmp_path / "o.npz") as got:
            np.testing.assert_array_equal(got["y"], want)
            np.testing.assert_array_equal(got["z"], a)


def test_run_shows_argmax_of_logits(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 5])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 5])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["logits"])], "g", [x], [y])
    p = save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]),
             tmp_path / "m.onnx")
    np.save(tmp_path / "x.npy", np.array([[0.1, 3.0, -1.0, 2.0, 0.0]], np.float32))
    r = run_cli(["run", str(p), "--input", str(tmp_path / "x.npy")], capsys)
    assert r.code == 0, r.err
    row = next(ln for ln in r.out.splitlines() if ln.startswith("logits "))
    assert row.split()[-1] == "1"


def test_random_input_is_seeded(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    p = save(conv_relu(), tmp_path / "conv.onnx")
    outs = []
    for seed, name in [(0, "a"), (0, "b"), (1, "c")]:
        f = tmp_path / f"{name}.npz"
        r = run_cli(["run", str(p), "--random-input", "--seed", str(seed), "-q",
                     "--output", str(f)], capsys)
        assert r.code == 0 and r.out == "", r.err
        with np.load(f) as z:
            outs.append(z["y"])
    np.testing.assert_array_equal(outs[0], outs[1])
    assert not np.array_equal(outs[0], outs[2])


def test_ops_lists_conv(capsys: pytest.CaptureFixture) -> None:
    r = run_cli(["ops"], capsys)
    assert r.code == 0
    assert any(ln.split()[:2] == ["Conv", "Conv"] for ln in r.out.splitlines())
    r = run_cli(["ops", "--json"], capsys)
    rows = json.loads(r.out)
    assert {"onnx_op": "Relu", "ir_ops": ["Relu"], "note": ""} in rows
    assert [x["onnx_op"] for x in rows] == sorted(x["onnx_op"] for x in rows)


def test_compile_then_run_the_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model = conv_relu()
    p = save(model, tmp_path / "conv.onnx")
    out = tmp_path / "build" / "conv"
    r = run_cli(["compile", str(p), "-o", str(out)], capsys)
    assert r.code == 0, r.err
    assert {"model.ir", "manifest.json"} <= {f.name for f in out.iterdir()}
    assert "Conv(" in (out / "model.ir").read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"][0]["type"] == "f32[1,3,8,8]"
    assert manifest["source_model"] == str(p)
    x = np.random.default_rng(2).standard_normal((1, 3, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    r = run_cli(["run", str(out), "--input", str(tmp_path / "x.npy"),
                 "--output", str(tmp_path / "o.npz")], capsys)
    assert r.code == 0, r.err
    with np.load(tmp_path / "o.npz") as got:
        np.testing.assert_allclose(got["y"], conv_reference(x, model), rtol=1e-5, atol=1e-5)
    # compiling again over a folder qnnc wrote replaces it
    r = run_cli(["compile", str(p), "-o", str(out), "-q"], capsys)
    assert r.code == 0 and r.out == ""
    assert sorted(f.name for f in out.parent.iterdir()) == ["conv"]


def test_compiled_folder_rejects_input_shape(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "c"
    api.compile_model(conv_relu(), output_dir=out)
    r = run_cli(["run", str(out), "--random-input", "--input-shape", "x=2x3x8x8"], capsys)
    assert_one_paragraph_error(r, 1, "--input-shape", "fixed shapes")


def test_print_after_all(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pipeline = api.default_pipeline()
    if not pipeline:
        pytest.skip("the passes package is not present in this checkout")
    p = save(conv_relu(), tmp_path / "conv.onnx")
    r = run_cli(["compile", str(p), "-o", str(tmp_path / "o"), "--print-after", "all"], capsys)
    assert r.code == 0, r.err
    headers = [ln for ln in r.err.splitlines() if ln.startswith("// ----- IR after ")]
    assert headers == [f"// ----- IR after {name} -----" for name in pipeline]
    r = run_cli(["compile", str(p), "-o", str(tmp_path / "o"), "--print-after", "nope"], capsys)
    assert_one_paragraph_error(r, 1, "'nope'", pipeline[0])


def test_example_list_and_write(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    r = run_cli(["example", "--list"], capsys)
    if r.code != 0 and "no example models" in r.err:
        pytest.skip("the examples package is not present in this checkout")
    assert r.code == 0, r.err
    from compiler.examples import EXAMPLES

    name = "tiny_cnn" if "tiny_cnn" in EXAMPLES else min(EXAMPLES)  # the small one, if any
    assert name in r.out
    out = tmp_path / "ex.onnx"
    r = run_cli(["example", name, "-o", str(out)], capsys)
    assert r.code == 0, r.err
    r = run_cli(["inspect", str(out)], capsys)
    assert r.code == 0, r.err  # every example uses supported ops only
    assert "total " in r.out
    r = run_cli(["example", "no-such-model"], capsys)
    assert_one_paragraph_error(r, 1, "no-such-model", name)


def test_help_documents_exit_codes(capsys: pytest.CaptureFixture) -> None:
    r = run_cli(["--help"], capsys)
    assert r.code == 0
    for code, text in EXIT_CODES.items():
        assert f"{code}" in r.out and text in r.out
    for sub in ("inspect", "run", "ops", "compile", "example"):
        r = run_cli([sub, "--help"], capsys)
        assert r.code == 0 and "examples:" in r.out, sub


def test_version(capsys: pytest.CaptureFixture) -> None:
    r = run_cli(["--version"], capsys)
    assert r.code == 0 and r.out.strip() == f"qnnc {api.qnnc_version()}"


def test_console_script(tmp_path: Path) -> None:
    """The installed `qnnc` script and `python -m compiler.cli` behave alike."""
    exe = shutil.which("qnnc")
    if exe is None:
        pytest.skip("the qnnc console script is not installed")
    p = save(unsupported(), tmp_path / "unsup.onnx")
    proc = subprocess.run([exe, "inspect", str(p)], capture_output=True, text=True, timeout=120)
    mod = run_subprocess(["inspect", str(p)])
    assert proc.returncode == mod.code == 3
    assert proc.stderr == mod.err and "Traceback" not in proc.stderr


def test_version_answers_without_importing_the_compiler() -> None:
    """`qnnc --version` is instant: it does not import onnx (a second on its own), and it
    says what the full CLI says."""
    import subprocess
    import sys

    code = ("import sys; from compiler.entry import main; main(['--version']); "
            "print(sorted(m for m in ('onnx', 'numpy', 'compiler.api') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    version, loaded = r.stdout.splitlines()
    assert loaded == "[]"
    from compiler.api import qnnc_version

    assert version == f"qnnc {qnnc_version()}"


def test_inspect_takes_a_compiled_folder(tiny: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """`qnnc inspect` accepts what `qnnc compile` wrote, as bench and run do: source, target,
    precision, pipeline and the IR's layers (text and --json)."""
    import json

    from compiler.cli import main

    out = tmp_path / "q8"
    assert main(["compile", str(tiny), "-o", str(out), "-q", "--calib",
                 str(tmp_path / "calib.npz")]) == 0
    assert main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"compiled  {out}" in text and f"from      {tiny}" in text
    assert "target    none (the reference interpreter runs it), int8" in text
    assert "QConv" in text and "quantize" in text
    assert main(["inspect", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["compiled"]["precision"] == "int8" and data["totals"]["ir_nodes"] > 0
    assert {x["op"] for x in data["layers"]} >= {"QConv"}


def test_run_json_summarises_every_output(tmp_path: Path, capsys: pytest.CaptureFixture
                                          ) -> None:
    p = save(two_inputs(), tmp_path / "two.onnx")
    a = np.array([[1, -2, 3], [-4, 5, -6]], np.float32)
    np.savez(tmp_path / "feeds.npz", a=a, b=np.full((2, 3), 0.5, np.float32))
    r = run_cli(["run", str(p), "--input", str(tmp_path / "feeds.npz"), "--json"], capsys)
    assert r.code == 0, r.err
    data = json.loads(r.out)  # only the JSON on stdout
    assert data["target"] is None and data["ms"] > 0
    assert data["inputs"] == {"a": {"dtype": "float32", "shape": [2, 3]},
                              "b": {"dtype": "float32", "shape": [2, 3]}}
    y, z = data["outputs"]
    assert (y["name"], y["shape"], y["min"], y["max"]) == ("y", [2, 3], 0.0, 5.5)
    assert (z["min"], z["max"], z["mean"]) == (-6.0, 5.0, -0.5)
    assert y["argmax"] is None  # not logits-shaped (two axes longer than 1)


def test_example_list_json_and_width(capsys: pytest.CaptureFixture) -> None:
    from compiler.examples import EXAMPLES

    r = run_cli(["example", "--list", "--json"], capsys)
    assert r.code == 0 and json.loads(r.out) == dict(sorted(EXAMPLES.items()))
    r = run_cli(["example", "--list"], capsys)
    assert max(len(ln) for ln in r.out.splitlines()) <= 100
