"""Lowering to TVM: every op without a kernel reported in one error before anything is
built, model names reaching symbols only sanitised, shared constants passed once, and a
clear error when TVM is not installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tvm", reason="the tvm target needs Apache TVM (pip install apache-tvm)")

from ir.build import make_node  # noqa: E402
from ir.errors import UnsupportedModelError  # noqa: E402
from ir.graph import Graph  # noqa: E402
from ir.types import DType, QuantParams, TensorType  # noqa: E402
from targets.tvm.lower import lower, unsupported  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]


def mixed_graph() -> Graph:
    """Dequantize -> Sin -> Cos -> Sin -> MaxPool with indices: two ops without a kernel
    (Sin twice) and one form without one (MaxPool's argmax output)."""
    g = Graph("t")
    x = g.add_input("x", TensorType((1, 2, 4, 4), DType.u8, QuantParams.per_tensor(0.1, 3)))
    f = make_node(g, "Dequantize", [x], name="deq").outputs[0]
    e = make_node(g, "Sin", [f], name="sin one").outputs[0]
    t = make_node(g, "Cos", [e], name="cos*/").outputs[0]
    e2 = make_node(g, "Sin", [t], name="sin two").outputs[0]
    pool = make_node(g, "MaxPool", [e2], {"kernel_shape": [2, 2], "strides": [2, 2],
                                          "pads": [0, 0, 0, 0], "dilations": [1, 1],
                                          "indices": True}, name="argmax pool")
    g.outputs = list(pool.outputs)
    return g


def test_every_unsupported_node_is_named_in_one_error() -> None:
    g = mixed_graph()
    assert unsupported(g) == {"Sin": ["sin one", "sin two"], "Cos": ["cos*/"],
                              "MaxPool": ["argmax pool"]}
    with pytest.raises(UnsupportedModelError) as info:
        lower(g)
    text = str(info.value)
    for name in ("Sin (2): 'sin one', 'sin two'", "Cos (1): 'cos*/'",
                 "MaxPool (1): 'argmax pool'"):
        assert name in text
    assert "Dequantize" not in text


def test_symbols_are_sanitised_and_constants_shared() -> None:
    g = Graph("t")
    q = QuantParams.per_tensor(0.5, 0)
    x = g.add_input("in put\n*/", TensorType((2, 3), DType.u8, q))
    c = g.add_const(np.arange(6, dtype=np.uint8).reshape(2, 3), "weights")
    c.type = TensorType((2, 3), DType.u8, q)
    attrs = {"out_dtype": "u8", "out_scale": 1.0, "out_zp": 0}
    a = make_node(g, "QAdd", [x, c], attrs, name='evil"; import os #').outputs[0]
    b = make_node(g, "QAdd", [a, c], attrs, name="evil\"; import os #").outputs[0]
    g.outputs = [b]
    mod = lower(g)
    names = sorted(gv.name_hint for gv in mod.get_global_vars())
    assert names == ["k0_evil_import_os", "k1_evil_import_os", "main"]
    script = mod.script(show_meta=False)
    assert "in_in_put" in script and "*/" not in script
    assert script.count('metadata["ir.GenericConst"][0]') == 2  # one constant, read twice


def test_missing_tvm_is_one_clear_error(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['tvm'] = None\n"
        "from ir.errors import QnncError\n"
        "from ir.graph import Graph\n"
        "from targets.tvm.build import build_tvm\n"
        "try:\n"
        "    build_tvm(Graph('t'), __import__('pathlib').Path(sys.argv[1]))\n"
        "except QnncError as e:\n"
        "    print(e)\n"
        "from compiler.api import compile_model\n"
        "from compiler.examples import build_example\n"
        "try:\n"
        "    compile_model(build_example('tiny_cnn'), target='tvm', calibration=None)\n"
        "except QnncError as e:\n"
        "    print(e)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2  # build_tvm, and compile_model before it imports the model
    for line in lines:
        assert "the tvm target needs Apache TVM" in line and "pip install apache-tvm" in line
