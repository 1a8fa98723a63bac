"""The qnnc pytest plugin as a user meets it: a three-line golden test in a fresh project,
run with pytester — first run fails with the instruction, --qnnc-update-goldens records, a
changed weight fails with a per-output diff, updating accepts it."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import compiler.golden  # noqa: F401 - loaded once here, so pytester's in-process runs reuse it

pytest_plugins = ["pytester"]

USER_TEST = '''
import numpy as np
import compiler

def test_my_model(qnnc_golden):
    model = compiler.compile_model("my.onnx")
    x = np.random.default_rng(0).standard_normal((2, 6)).astype(np.float32)
    qnnc_golden.check(model, {"x": x}, "goldens/my_model")
'''


def _plugin_args() -> list[str]:
    """Nothing when the installed entry point loads the plugin (as for users); an explicit
    -p when qnnc is installed without it (an old editable install)."""
    eps = importlib.metadata.entry_points(group="pytest11")
    return [] if any(e.value == "compiler.pytest_plugin" for e in eps) else [
        "-p", "compiler.pytest_plugin"]


def _write_model(path: Path, bump: float = 0.0) -> None:
    """y = Relu(x @ W + b), s = ReduceSum(y) over axis 1: two float outputs. ``bump`` is
    added to the bias."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal((6, 4)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32) + np.float32(bump)
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"], "fc"),
        helper.make_node("Add", ["h", "b"], ["hb"], "bias"),
        helper.make_node("Relu", ["hb"], ["y"], "relu"),
        helper.make_node("ReduceSum", ["y", "axes"], ["s"], "sum", keepdims=0),
    ]
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b"),
             numpy_helper.from_array(np.array([1], np.int64), "axes")]
    vi = helper.make_tensor_value_info
    graph = helper.make_graph(nodes, "user_model", [vi("x", TensorProto.FLOAT, [2, 6])],
                              [vi("y", TensorProto.FLOAT, [2, 4]),
                               vi("s", TensorProto.FLOAT, [2])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_user_golden_workflow(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TEST)
    _write_model(pytester.path / "my.onnx")
    golden = pytester.path / "goldens" / "my_model"
    args = _plugin_args()

    # first run: no golden yet -> fail and say how to record (nothing written silently)
    first = pytester.runpytest(*args)
    first.assert_outcomes(failed=1)
    first.stdout.fnmatch_lines(["*no golden outputs at*goldens*my_model*--qnnc-update-goldens*"])
    assert not golden.exists()

    rec = pytester.runpytest(*args, "--qnnc-update-goldens")
    rec.assert_outcomes(passed=1)
    rec.stdout.fnmatch_lines(["*qnnc goldens written*", "recorded *my_model"])
    assert sorted(p.name for p in golden.iterdir()) == [
        "inputs.npz", "manifest.json", "outputs.npz"]
    pytester.runpytest(*args).assert_outcomes(passed=1)

    # a changed weight: the test fails with a per-output diff
    _write_model(pytester.path / "my.onnx", bump=1.5)
    bad = pytester.runpytest(*args)
    bad.assert_outcomes(failed=1)
    bad.stdout.fnmatch_lines([
        "*golden*my_model (interp, f32): FAIL*",
        "*output 'y' float32[[]2, 4[]]: * of 8 elements differ (rtol 1e-05, atol 1e-06)*",
        "*first at [[]*",
        "*worst abs error * at [[]*] (got *, expected *)*",
        "*worst rel error *",
        "*output 's' float32[[]2[]]: * elements differ*",
        "*IR hash changed*",
        "*--qnnc-update-goldens*",
    ])

    upd = pytester.runpytest(*args, "--qnnc-update-goldens")
    upd.assert_outcomes(passed=1)
    upd.stdout.fnmatch_lines(["updated *my_model"])
    pytester.runpytest(*args).assert_outcomes(passed=1)


def test_tolerance_argument_and_changed_inputs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_tol='''
import numpy as np
import compiler

def test_tol(qnnc_golden):
    model = compiler.compile_model("my.onnx")
    x = np.random.default_rng(0).standard_normal((2, 6)).astype(np.float32)
    qnnc_golden.check(model, {"x": x}, "g", atol=10.0)

def test_other_inputs(qnnc_golden):
    model = compiler.compile_model("my.onnx")
    x = np.ones((2, 6), np.float32)
    qnnc_golden.check(model, {"x": x}, "g")
''')
    _write_model(pytester.path / "my.onnx")
    args = _plugin_args()
    pytester.runpytest(*args, "test_tol.py::test_tol", "--qnnc-update-goldens").assert_outcomes(
        passed=1)
    _write_model(pytester.path / "my.onnx", bump=0.01)  # a small change within atol=10
    res = pytester.runpytest(*args)
    res.assert_outcomes(passed=1, failed=1)
    res.stdout.fnmatch_lines(["*input 'x' differs from the recorded one*"])
