"""Hostile names inside control-flow bodies: subgraph names, value and node names in bodies
(quotes, newlines, ``*/``, ``#include``, C keywords and qnnc's own identifiers, 500
characters) reach the generated C only as identifiers made of [A-Za-z0-9_], in comments and
in string literals, escaped; the C builds with -Wall -Werror and runs like the interpreter."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from compiler.api import compile_model
from ir.interpreter import run as interpret
from tests.codegen.test_host_build import HOSTILE
from tests.ops.test_control import _const, _vi

F, B, I64 = TensorProto.FLOAT, TensorProto.BOOL, TensorProto.INT64
EVIL = [n for n in HOSTILE if n]  # ONNX reads an empty value name as "absent"


def _hostile_model() -> onnx.ModelProto:
    """y = (relu(x) * -1 if sum(x) > 0 else -x), then 2 iterations of acc += x, with every
    name inside the bodies (and the bodies' own names) hostile."""
    x, cond, acc = 'x */ "in" \n#include <x>', "c\n*/ #define int", "int"
    then_g = helper.make_graph(
        [helper.make_node("Relu", [x], [EVIL[1]], name=EVIL[0]),
         helper.make_node("Neg", [EVIL[1]], [EVIL[2]], name=EVIL[1])],
        "g" * 500 + EVIL[7], [], [_vi(EVIL[2], F, [2, 3])])  # a 501-character graph name
    else_g = helper.make_graph([helper.make_node("Neg", [x], [EVIL[10]], name=EVIL[11])],
                               '*/ "else"\n#include <stdio.h>', [], [_vi(EVIL[10], F, [2, 3])])
    body = helper.make_graph(
        [helper.make_node("Add", [EVIL[8], x], [EVIL[9]], name=EVIL[5]),
         helper.make_node("Identity", [EVIL[4]], [EVIL[6]], name=EVIL[3])],
        "a/b\n*/ body \"q\"", [_vi(EVIL[3], I64, []), _vi(EVIL[4], B, []),
                               _vi(EVIL[8], F, [2, 3])],
        [_vi(EVIL[6], B, []), _vi(EVIL[9], F, [2, 3])])
    nodes = [helper.make_node("ReduceSum", [x], ["tot"], keepdims=0),
             helper.make_node("Greater", ["tot", "zero"], [cond]),
             helper.make_node("If", [cond], [acc], then_branch=then_g, else_branch=else_g,
                              name='If */ "n"\n#include <x>'),
             helper.make_node("Loop", ["m", "", acc], ['y */\n"out"'], body=body,
                              name="x" * 300)]
    g = helper.make_graph(nodes, '*/ "m" \n', [_vi(x, F, [2, 3])],
                          [_vi('y */\n"out"', F, [2, 3])],
                          [_const("zero", np.float32(0)), _const("m", np.int64(2))])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


@pytest.mark.parametrize("target", ["host", "ascend910b"])
def test_hostile_names_in_bodies_reach_c_escaped(target: str, tmp_path: Path) -> None:
    """On an accelerator the same names also reach the staged program's C and report.txt,
    where a newline in a name cannot start a row of its own."""
    model = _hostile_model()
    x_name = model.graph.input[0].name
    quant = {} if target == "host" else {
        "precision": "int8", "calibration": [
            {x_name: np.random.default_rng(k).standard_normal((2, 3)).astype(np.float32)}
            for k in range(2)]}
    cm = compile_model(model, target=target, cache_dir=tmp_path / "c", werror=True,
                       output_dir=tmp_path / "o", **quant)
    assert {n.op for n in cm.graph.nodes} >= {"If", "Loop"}
    src = (tmp_path / "o" / "model.c").read_text() + (tmp_path / "o" / "model.h").read_text()
    assert src.isascii()
    # outside comments and string literals, nothing of the names survives but [A-Za-z0-9_]
    code = re.sub(r'"(\\.|[^"\\\n])*"', '""', re.sub(r"/\*.*?\*/", "", src, flags=re.S))
    assert "rm -rf" not in code and "system(" not in code and "#include <x>" not in code
    assert "#include <stdio.h>" not in code and "#define int" not in code
    assert "/*" not in code and "*/" not in code
    assert all(len(ln) <= 120 for ln in src.splitlines())
    for sign in (1.0, -1.0):  # both branches
        feeds = {x_name: (np.arange(6, dtype=np.float32).reshape(2, 3) + 1) * sign}
        want = interpret(cm.graph, feeds)
        for name, got in zip(cm.output_names, cm.run(None, feeds)):
            np.testing.assert_array_equal(got, want[name])
    if target != "host":
        data = cm.report()
        text = (tmp_path / "o" / "report.txt").read_text()
        section = text.split("layers around the tiled kernels")[1].split("\n\n")[0]
        rows = [ln for ln in section.splitlines() if ln.startswith("- ")]
        assert len(rows) == len(data["untiled"]) >= 7  # one entry per layer, bodies included
        # wrapped entries continue indented: a name's newline cannot start an entry of its own
        lines = section.splitlines()
        first = next(i for i, ln in enumerate(lines) if ln.startswith("- "))
        assert all(ln.startswith(("- ", "    ")) for ln in lines[first:])
        assert not any(ln.startswith("#") for ln in text.splitlines())
