"""Hostile input beyond damaged files: memory bombs stopped by the tensor size
budget before anything is allocated (and the flag that raises it), .npy headers that declare
more than they hold, negative seeds, run() arguments of the wrong types, and Ctrl-C during
start-up: each a one-paragraph error with the documented exit code."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import compiler
from compiler.budget import parse_size
from compiler.errors import ConversionError, InputError, QnncError
from tests.cli.models import assert_one_paragraph_error, run_cli

ROOT = Path(__file__).resolve().parents[2]


def _model(nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto],
           outputs: list[onnx.ValueInfoProto],
           x: onnx.ValueInfoProto | None = None) -> onnx.ModelProto:
    x = x or helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    nodes = [*nodes, helper.make_node("Relu", ["x"], ["z"], name="relu")]
    outputs = [helper.make_tensor_value_info("z", TensorProto.FLOAT, list(
        d.dim_value for d in x.type.tensor_type.shape.dim)), *outputs]
    graph = helper.make_graph(nodes, "g", [x], outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _out(name: str, rank: int, dtype: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, [f"{name}{i}" for i in range(rank)])


def _ints(name: str, values: list[int] | int) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(values, np.int64), name)


def constant_of_shape_bomb() -> onnx.ModelProto:
    return _model([helper.make_node("ConstantOfShape", ["s"], ["c"], name="fill")],
                  [_ints("s", [100_000, 100_000])], [_out("c", 2)])


def range_bomb() -> onnx.ModelProto:
    return _model([helper.make_node("Range", ["a", "b", "d"], ["r"], name="count")],
                  [_ints("a", 0), _ints("b", 10**12), _ints("d", 1)],
                  [_out("r", 1, TensorProto.INT64)])


def tile_bomb() -> onnx.ModelProto:
    return _model([helper.make_node("Tile", ["x", "rep"], ["t"], name="tile")],
                  [_ints("rep", [100_000, 100_000])], [_out("t", 2)])


def resize_bomb() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 3])
    scales = numpy_helper.from_array(np.array([1, 1, 30000, 30000], np.float32), "sc")
    return _model([helper.make_node("Resize", ["x", "", "sc"], ["t"], name="up")], [scales],
                  [_out("t", 4)], x)


def huge_input() -> onnx.ModelProto:
    return _model([], [], [], helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                            [100_000, 100_000, 100]))


@pytest.mark.parametrize("build,node", [
    (constant_of_shape_bomb, "'fill'"), (range_bomb, "'count'"), (tile_bomb, "'tile'"),
    (resize_bomb, "'up'"), (huge_input, "input 'x'"),
])
def test_memory_bombs_stop_at_import_naming_node_and_flag(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], build, node: str) -> None:
    p = tmp_path / "bomb.onnx"
    onnx.save(build(), p)
    for command in (["inspect", str(p)], ["run", str(p), "--random-input"],
                    ["compile", str(p), "-o", str(tmp_path / "out")]):
        r = run_cli(command, capsys)
        assert_one_paragraph_error(r, 3, node, "tensor size budget of 1 GiB",
                                   "--max-tensor-size")
    assert not (tmp_path / "out").exists()


def test_the_flag_raises_the_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 3])
    scales = numpy_helper.from_array(np.array([1, 1, 64, 64], np.float32), "sc")
    m = _model([helper.make_node("Resize", ["x", "", "sc"], ["t"], name="up")], [scales],
               [_out("t", 4)], x)  # 128x192 floats: 96 KiB
    p = tmp_path / "up.onnx"
    onnx.save(m, p)
    r = run_cli(["inspect", str(p), "--max-tensor-size", "64k"], capsys)
    assert_one_paragraph_error(r, 3, "'up'", "96 KiB", "64 KiB")
    assert run_cli(["inspect", str(p), "--max-tensor-size", "128k"], capsys).code == 0
    with pytest.raises(ConversionError, match="max_tensor_bytes="):
        compiler.compile_model(p, max_tensor_bytes=65536)
    assert compiler.compile_model(p, max_tensor_bytes=1 << 17).output_types["t"].shape == (
        1, 1, 128, 192)


def test_big_weights_widen_the_budget() -> None:
    w = numpy_helper.from_array(np.zeros(8192, np.float32), "w")  # 32 KiB of weights
    m = _model([helper.make_node("Tile", ["w", "rep"], ["t"], name="tile")],
               [w, _ints("rep", [3])], [_out("t", 1)])
    # 96 KiB: over a 64 KiB floor, within 4 x the largest weight
    graph = compiler.load_model(m, max_tensor_bytes=65536)
    assert graph.outputs[1].type.shape == (24576,)


@pytest.mark.parametrize("text,size", [("4G", 4 << 30), ("512M", 512 << 20), ("64k", 65536),
                                       ("1000", 1000), ("2GiB", 2 << 30)])
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["-1G", "0", "lots", "4X"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(QnncError, match="bad size"):
        parse_size(text)


def _relu(tmp_path: Path) -> Path:
    p = tmp_path / "relu.onnx"
    onnx.save(_model([], [], []), p)
    return p


def test_npy_header_declaring_more_than_the_file_holds(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    header = np.lib.format.header_data_from_array_1_0(np.zeros((2, 3), np.float32))
    header["shape"] = (1_000_000, 1_000_000)
    bomb = tmp_path / "bomb.npy"
    with open(bomb, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b"\0" * 64)
    r = run_cli(["run", str(_relu(tmp_path)), "--input", str(bomb)], capsys)
    assert_one_paragraph_error(r, 4, "bomb.npy", "1000000x1000000", "truncated")


def test_npy_over_the_budget_names_the_flag(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "big.npy", np.zeros((64, 64), np.float32))  # 16 KiB
    np.savez(tmp_path / "big.npz", x=np.zeros((64, 64), np.float32))
    for name in ("big.npy", "big.npz"):
        r = run_cli(["run", str(_relu(tmp_path)), "--input", str(tmp_path / name),
                     "--max-tensor-size", "1k"], capsys)
        assert_one_paragraph_error(r, 4, name, "16 KiB", "--max-tensor-size")


def test_random_input_over_the_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, 64])
    p = tmp_path / "m.onnx"
    onnx.save(_model([], [], [], x), p)
    out = tmp_path / "compiled"
    assert run_cli(["compile", str(p), "-o", str(out)], capsys).code == 0
    r = run_cli(["run", str(out), "--random-input", "--max-tensor-size", "1k"], capsys)
    assert_one_paragraph_error(r, 4, "random input 'x'", "--max-tensor-size")


@pytest.mark.parametrize("argv", [["run", "M", "--random-input", "--seed", "-1"],
                                  ["example", "tiny_cnn", "--seed", "-1"],
                                  ["example", "tiny_cnn", "--calib-samples", "-2"]])
def test_negative_counts_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          argv: list[str]) -> None:
    argv = [str(_relu(tmp_path)) if a == "M" else a for a in argv]
    r = run_cli(argv, capsys)
    assert r.code == 1
    assert "must be 0 or more" in r.err and "Traceback" not in r.err


@pytest.mark.parametrize("names,feeds,needle", [
    (None, {"x": np.zeros((2, 3), np.float32), 0: 1}, "keyed by input names"),
    (0, {"x": np.zeros((2, 3), np.float32)}, "output_names must be None"),
    ("z", {"x": np.zeros((2, 3), np.float32)}, "output_names must be None"),
    ([b"z"], {"x": np.zeros((2, 3), np.float32)}, "output_names must be None"),
    (None, [np.zeros((2, 3), np.float32)], "feeds must be a dict"),
])
def test_run_arguments_of_the_wrong_type(tmp_path: Path, names: object, feeds: object,
                                         needle: str) -> None:
    cm = compiler.compile_model(_relu(tmp_path))
    with pytest.raises(InputError, match=needle):
        cm.run(names, feeds)  # type: ignore[arg-type]


def test_ctrl_c_while_importing_exits_130_without_traceback(tmp_path: Path) -> None:
    """SIGINT at several moments of the first second, from when the `qnnc` script's entry
    point is imported (Python's own start-up before that is not qnnc's to handle)."""
    model = _relu(tmp_path)
    code = ("import sys; from compiler.entry import main; sys.stderr.write('started\\n'); "
            "sys.stderr.flush(); sys.exit(main(sys.argv[1:]))")
    for delay in (0.0, 0.05, 0.2, 0.5):
        proc = subprocess.Popen([sys.executable, "-c", code, "run", str(model), "--random-input"],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        assert proc.stderr is not None
        assert proc.stderr.readline() == "started\n"
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, (delay, err)
        if proc.returncode != 0:  # 0: the run finished first
            assert proc.returncode == 130, (delay, proc.returncode, err)
            assert err.strip() == "qnnc: error: interrupted", err
