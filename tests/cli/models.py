"""Small ONNX models (built with onnx.helper) and a runner for the CLI tests."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler.cli import main

OPSET = [helper.make_opsetid("", 17)]


def conv_relu(batch: int | str = 1) -> onnx.ModelProto:
    """x[batch,3,8,8] -> Conv(4 filters 3x3, pad 1, bias) -> Relu -> y[batch,4,8,8]."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4, 8, 8])
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["y"], name="relu1"),
    ]
    graph = helper.make_graph(nodes, "conv_relu", [x], [y], [w, b])
    return helper.make_model(graph, opset_imports=OPSET, producer_name="qnnc-tests")


def two_inputs() -> onnx.ModelProto:
    """y = Relu(a + b) on f32[2,3]; z = Identity(a)."""
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, 3])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, [2, 3])
    nodes = [
        helper.make_node("Add", ["a", "b"], ["s"], name="add"),
        helper.make_node("Relu", ["s"], ["y"], name="relu"),
        helper.make_node("Identity", ["a"], ["z"], name="copy"),
    ]
    graph = helper.make_graph(nodes, "two_inputs", [a, b], [y, z])
    return helper.make_model(graph, opset_imports=OPSET)


def unsupported() -> onnx.ModelProto:
    """Valid ONNX using ops qnnc cannot support (string ops, a custom domain)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    nodes = [
        helper.make_node("StringNormalizer", ["x"], ["nz_a"], name="norm_a"),
        helper.make_node("StringNormalizer", ["x"], ["nz_b"], name="norm_b"),
        helper.make_node("RandomUniformLike", ["x"], ["u"], name="rnd"),
        helper.make_node("Frobnicate", ["x"], ["f"], name="frob", domain="com.acme"),
        helper.make_node("Relu", ["x"], ["y"], name="relu"),
    ]
    graph = helper.make_graph(nodes, "unsupported", [x], [y])
    opsets = OPSET + [helper.make_opsetid("com.acme", 1)]
    return helper.make_model(graph, opset_imports=opsets)


def fails_checker() -> onnx.ModelProto:
    """A Relu reading a value nothing defines: onnx's checker rejects it."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    graph = helper.make_graph(
        [helper.make_node("Relu", ["ghost"], ["y"], name="relu")], "bad", [x], [y]
    )
    return helper.make_model(graph, opset_imports=OPSET)


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


def conv_reference(x: np.ndarray, model: onnx.ModelProto) -> np.ndarray:
    """The conv model's output from onnxruntime (the oracle)."""
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> Result:
    """Run `qnnc argv` in-process."""
    code = main(argv)
    cap = capsys.readouterr()
    return Result(code, cap.out, cap.err)


def run_subprocess(argv: list[str], cwd: Path | None = None) -> Result:
    """Run `python -m compiler.cli argv` as a separate process."""
    proc = subprocess.run(
        [sys.executable, "-m", "compiler.cli", *argv],
        capture_output=True, text=True, timeout=120, cwd=cwd,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def assert_one_paragraph_error(r: Result, code: int, *needles: str) -> None:
    """A clean failure: the exit code, one `qnnc: error:` paragraph naming the problem."""
    assert r.code == code, (r.code, r.err)
    assert "Traceback" not in r.err and "Traceback" not in r.out
    err = r.err.strip()
    assert err.startswith("qnnc: error: "), err
    assert err.count("qnnc: error:") == 1
    assert "\n\n" not in err, "the error must be a single paragraph"
    for n in needles:
        assert n in err, (n, err)
