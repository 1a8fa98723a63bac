"""The tvm targets from the command line and the API: compile for this host and run, for a
board (the folder says how to run it there), the C bundle after make; the target and tuning
flags' errors, which come before any calibration."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from compiler.api import compile_model, load_compiled
from compiler.errors import QnncError
from compiler.examples import build_example
from tests.cli.models import assert_one_paragraph_error, run_cli

pytest.importorskip("tvm", reason="the tvm targets need Apache TVM (pip install 'qnnc[tvm]')")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray]:
    """tiny_cnn as .onnx with 8 calibration samples in an .npz, and one more input."""
    folder = tmp_path_factory.mktemp("tiny")
    model = build_example("tiny_cnn")
    path = folder / "tiny.onnx"
    path.write_bytes(model.SerializeToString())
    rng = np.random.default_rng(0)
    name = model.graph.input[0].name
    np.savez(folder / "calib.npz", **{name: rng.standard_normal((8, 1, 1, 8, 8))
                                      .astype(np.float32)})
    return path, folder / "calib.npz", rng.standard_normal((1, 1, 8, 8)).astype(np.float32)


def test_host_build_runs_like_the_host_c(tiny, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    model, calib, x = tiny
    r = run_cli(["compile", str(model), "-o", str(tmp_path / "tvm"), "--calib", str(calib),
                 "--target", "tvm", "--quiet"], capsys)
    assert r.code == 0, r.err
    cm = load_compiled(tmp_path / "tvm")
    assert cm.target == "tvm" and (tmp_path / "tvm" / "model_tvm.so").is_file()
    host = compile_model(cm.graph, target="host")
    name = cm.input_names[0]
    for got, want in zip(cm.run(None, {name: x}), host.run(None, {name: x})):
        np.testing.assert_array_equal(got, want)


@pytest.mark.skipif(importlib.util.find_spec("ziglang") is None and
                    shutil.which("aarch64-linux-gnu-gcc") is None,
                    reason="needs a cross linker: ziglang (in 'qnnc[tvm]') or gcc-aarch64")
def test_board_build_says_where_it_runs(tiny, tmp_path: Path, capsys,  # noqa: ANN001
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without qemu-user, `qnnc run` on a board build says where it runs; with it, the
    board's program runs here and gives the interpreter's outputs."""
    from targets.tvm import emulate

    model, calib, x = tiny
    out = tmp_path / "a55"
    r = run_cli(["compile", str(model), "-o", str(out), "--calib", str(calib),
                 "--target", "tvm:aarch64", "--quiet"], capsys)
    assert r.code == 0, r.err
    assert {"model_tvm.so", "run_model.py", "tvm_signature.json", "model_run"} <= {
        p.name for p in out.iterdir()}
    with monkeypatch.context() as m:
        m.setattr(emulate, "launcher", lambda arch: None)
        r = run_cli(["run", str(out), "--random-input"], capsys)
    assert_one_paragraph_error(r, 1, "built for tvm:aarch64", "aarch64 hardware",
                               "run_model.py", "model_run", "qemu-user")
    if shutil.which("qemu-aarch64") is None:
        pytest.skip("qemu-aarch64 is not installed (apt-get install qemu-user): the run "
                    "under emulation is not checked")
    np.save(tmp_path / "x.npy", x)
    r = run_cli(["run", str(out), "--input", f"input={tmp_path / 'x.npy'}", "-o",
                 str(tmp_path / "y.npz"), "--quiet"], capsys)
    assert r.code == 0, r.err
    cm = load_compiled(out)
    want = compile_model(cm.graph).run(None, {"input": x})  # the interpreter
    got = np.load(tmp_path / "y.npz")
    for name, ref in zip(cm.output_names, want, strict=True):
        np.testing.assert_array_equal(got[name], ref)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_c_bundle_runs_after_make(tiny, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    model, calib, x = tiny
    out = tmp_path / "c"
    assert run_cli(["compile", str(model), "-o", str(out), "--calib", str(calib),
                    "--target", "tvm:c", "--quiet"], capsys).code == 0
    with pytest.raises(QnncError, match="run `make`"):
        load_compiled(out).run(None, {"input": x})
    subprocess.run(["make", "-s", "-C", str(out)], check=True, capture_output=True)
    cm = load_compiled(out)
    name = cm.input_names[0]
    want = compile_model(cm.graph).run(None, {name: x})  # the interpreter
    for got, ref in zip(cm.run(None, {name: x}), want):
        np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("argv, needles", [
    (["--target", "tvm:mips"], ["unknown tvm target 'mips'"]),
    (["--target", "ascend9"], ["unknown target 'ascend9'", "tvm:aarch64"]),
    (["--target", "host", "--tune", "8"], ["--tune", "tvm targets"]),
    (["--target", "tvm", "--tune-rpc", "h:1:k"], ["--tune-rpc", "--tune N"]),
    (["--target", "tvm", "--tune", "2", "--tune-rpc", "nonsense"], ["HOST:PORT:KEY"]),
    (["--target", "tvm:riscv64", "--tune", "2"], ["measures on that hardware",
                                                  "--tune-rpc"]),
    (["--target", "tvm:c", "--tune", "2"], ["CPU (LLVM) tvm targets"]),
])
def test_flag_errors(tiny, tmp_path: Path, capsys, argv: list[str],  # noqa: ANN001
                     needles: list[str]) -> None:
    model, calib, _ = tiny
    r = run_cli(["compile", str(model), "-o", str(tmp_path / "o"), "--calib", str(calib),
                 *argv], capsys)
    assert r.code != 0 and "Traceback" not in r.err
    for n in needles:
        assert n in r.err, (n, r.err)
    assert "calibrating" not in r.err  # refused before any work
    assert not (tmp_path / "o").exists()  # nothing half-written


def test_bench_times_the_tvm_build(tiny, capsys) -> None:  # noqa: ANN001
    model, calib, _ = tiny
    r = run_cli(["bench", str(model), "--target", "tvm", "--calib", str(calib),
                 "--repeat", "2", "--warmup", "0"], capsys)
    assert r.code == 0, r.err
    assert "Apache TVM build for this CPU" in r.out and "median" in r.out
    r = run_cli(["bench", str(model), "--target", "tvm:riscv64", "--calib", str(calib)], capsys)
    assert_one_paragraph_error(r, 1, "builds for another one", "run_model.py")
