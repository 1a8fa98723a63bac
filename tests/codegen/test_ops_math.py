"""Float C emitters of the math, bitwise, matrix and signal ops against the interpreter.

Several nodes share one graph (each node's result is a graph output), so a handful of gcc
builds cover every op and its attribute variants. Floats: rtol 1e-4, atol 1e-5 (the
harness's); integers and bools must be equal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from compiler.frontend import import_model
from compiler.passes import DEFAULT_PIPELINE, run_pipeline
from compiler.quant.calibrate import calibrate
from compiler.quant.quantize import quantize_graph
from ir.build import make_node
from ir.graph import Graph
from ir.interpreter import run as interpret
from ir.types import DType, TensorType
from ir.verifier import verify
from targets.host.build import BuildOptions
from tests.codegen.harness import check_graph, run_c

Spec = tuple[str, list[str], dict[str, Any]]  # (op, the names of its inputs, attributes)


def group_graph(name: str, inputs: dict[str, np.ndarray], consts: dict[str, np.ndarray],
                nodes: list[Spec]) -> tuple[Graph, dict[str, np.ndarray]]:
    """One graph holding every node of ``nodes``, each a graph output; ``inputs`` become
    graph inputs (and are returned as the feeds), ``consts`` constants."""
    g = Graph(name)
    vals = {k: g.add_input(k, TensorType(v.shape, DType.from_numpy(v.dtype)))
            for k, v in inputs.items()}
    vals.update({k: g.add_const(v, k) for k, v in consts.items()})
    outs = []
    for k, (op, args, attrs) in enumerate(nodes):
        node = make_node(g, op, [vals[a] for a in args], attrs, name=f"{op.lower()}_{k}")
        outs += node.outputs
    g.outputs = outs
    return g, inputs


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def unary_group() -> tuple[Graph, dict[str, np.ndarray]]:
    rng = _rng(1)
    inside = rng.uniform(-0.95, 0.95, (2, 3, 5)).astype(np.float32)  # asin, acos, atanh
    above = rng.uniform(1.0, 4.0, (2, 3, 5)).astype(np.float32)  # acosh
    wide = (rng.standard_normal((4, 7)) * 2).astype(np.float32)
    special = np.array([[np.nan, np.inf, -np.inf, 0.0, -1.5, 3e38, -0.0]], np.float32)
    nodes: list[Spec] = [(op, ["inside"], {}) for op in
                         ("Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Atanh")]
    nodes += [("Acosh", ["above"], {}), ("Shrink", ["wide"], {}),
              ("Shrink", ["wide"], {"lambd": 1.2, "bias": -0.4}),
              ("Swish", ["wide"], {"alpha": 0.7}), ("Swish", ["wide"], {"alpha": -1.5}),
              ("IsNaN", ["special"], {}), ("IsInf", ["special"], {}),
              ("IsInf", ["special"], {"detect_negative": False}),
              ("IsInf", ["special"], {"detect_positive": False}),
              ("IsInf", ["special"], {"detect_negative": False, "detect_positive": False})]
    return group_graph("unary", {"inside": inside, "above": above, "wide": wide,
                                 "special": special}, {}, nodes)


def int_group() -> tuple[Graph, dict[str, np.ndarray]]:
    rng = _rng(2)
    i32 = rng.integers(-2**31, 2**31 - 1, (2, 3, 4), dtype=np.int32)
    i32b = rng.integers(-2**31, 2**31 - 1, (4,), dtype=np.int32)
    u8 = rng.integers(0, 256, (3, 1, 5), dtype=np.uint8)
    u8b = rng.integers(0, 256, (2, 1), dtype=np.uint8)
    i8 = rng.integers(-128, 128, (6,), dtype=np.int8)
    small = rng.integers(-4, 5, (3, 5), dtype=np.int32)
    u16 = rng.integers(0, 2**16, (2, 6), dtype=np.uint16)  # products overflow int in C
    f = rng.uniform(0.5, 1.5, (2, 4, 3)).astype(np.float32)
    nodes: list[Spec] = [
        ("BitwiseAnd", ["i32", "i32b"], {}), ("BitwiseOr", ["u8", "u8b"], {}),
        ("BitwiseXor", ["i32b", "i32"], {}), ("BitwiseNot", ["i8"], {}),
        ("BitwiseNot", ["u8"], {}),
        ("BitCast", ["f"], {"to": "i32"}), ("BitCast", ["i32"], {"to": "f32"}),
        ("BitCast", ["i8"], {"to": "u8"}),
        ("CumProd", ["small"], {"axis": 1}),
        ("CumProd", ["small"], {"axis": 0, "exclusive": True}),
        ("CumProd", ["u16"], {"axis": 1, "reverse": True}),
        ("CumProd", ["f"], {"axis": 1, "exclusive": True, "reverse": True}),
        ("CumProd", ["f"], {"axis": 2}),
        ("Trilu", ["f"], {}), ("Trilu", ["f"], {"upper": False}),
        ("Trilu", ["f"], {"k": 1}), ("Trilu", ["f"], {"upper": False, "k": -1}),
        ("Trilu", ["small"], {"k": -7}), ("Trilu", ["small"], {"upper": False, "k": 9}),
        ("Shrink", ["small"], {"lambd": 1.5, "bias": 0.5}), ("Shrink", ["i8"], {"bias": -2.0}),
    ]
    return group_graph("ints", {"i32": i32, "i32b": i32b, "u8": u8, "u8b": u8b, "i8": i8,
                                "small": small, "u16": u16, "f": f}, {}, nodes)


def det_group() -> tuple[Graph, dict[str, np.ndarray]]:
    rng = _rng(3)
    batch = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    single = rng.standard_normal((5, 5)).astype(np.float32)
    singular = np.array([[1, 2, 3], [2, 4, 6], [1, 0, 1]], np.float32)  # a zero pivot
    one = np.array([[[-2.5]]], np.float32)
    nodes: list[Spec] = [("Det", [k], {}) for k in ("batch", "single", "singular", "one")]
    return group_graph("det", {"batch": batch, "single": single, "one": one},
                       {"singular": singular}, nodes)


def signal_group() -> tuple[Graph, dict[str, np.ndarray]]:
    rng = _rng(4)
    real = rng.standard_normal((2, 8, 1)).astype(np.float32)
    cplx = rng.standard_normal((2, 3, 7, 2)).astype(np.float32)
    half = rng.standard_normal((2, 5, 2)).astype(np.float32)
    sig = rng.standard_normal((2, 20, 1)).astype(np.float32)
    csig = rng.standard_normal((1, 13, 2)).astype(np.float32)
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(6) / 6)).astype(np.float32)
    nodes: list[Spec] = [
        ("DFT", ["real"], {"axis": 1, "length": 8}),
        ("DFT", ["real"], {"axis": 1, "length": 8, "onesided": True}),
        ("DFT", ["real"], {"axis": 1, "length": 11}),  # zero-padded
        ("DFT", ["cplx"], {"axis": 2, "length": 5}),  # truncated
        ("DFT", ["cplx"], {"axis": 1, "length": 3, "inverse": True}),
        ("DFT", ["half"], {"axis": 1, "length": 8, "inverse": True, "onesided": True}),
        ("DFT", ["half"], {"axis": 1, "length": 9, "inverse": True, "onesided": True}),
        ("STFT", ["sig", "window"], {"frame_step": 4, "frame_length": 6}),
        ("STFT", ["sig"], {"frame_step": 3, "frame_length": 5, "onesided": False}),
        ("STFT", ["csig", "window"], {"frame_step": 2, "frame_length": 6, "onesided": False}),
    ]
    return group_graph("signal", {"real": real, "cplx": cplx, "half": half, "sig": sig,
                                  "csig": csig}, {"window": window}, nodes)


GROUPS = {"unary": unary_group, "ints": int_group, "det": det_group, "signal": signal_group}


@pytest.mark.parametrize("group", list(GROUPS))
def test_math_ops_c_match_interpreter(group: str, tmp_path: Path) -> None:
    graph, feeds = GROUPS[group]()
    check_graph(graph, tmp_path, feeds=feeds)


def _conv_atan_conv() -> Any:
    from onnx import TensorProto, helper, numpy_helper

    rng = _rng(5)
    w1 = numpy_helper.from_array((rng.standard_normal((4, 2, 3, 3)) * 0.4).astype(np.float32),
                                 "w1")
    w2 = numpy_helper.from_array((rng.standard_normal((3, 4, 1, 1)) * 0.5).astype(np.float32),
                                 "w2")
    nodes = [helper.make_node("Conv", ["x", "w1"], ["h"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Atan", ["h"], ["a"], name="atan"),
             helper.make_node("Conv", ["a", "w2"], ["y"], name="conv2")]
    graph = helper.make_graph(
        nodes, "conv_atan_conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 6, 6])], [w1, w2])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_int8_atan_is_a_table_and_bit_exact(tmp_path: Path) -> None:
    """Conv -> Atan -> Conv quantises with Atan as a 256-entry table between integer convs;
    the host C gives the interpreter's integers (the table's codes, an extra output here)
    and outputs bit for bit."""
    g = run_pipeline(import_model(_conv_atan_conv()), DEFAULT_PIPELINE)
    calib = {"x": _rng(6).standard_normal((16, 1, 2, 6, 6)).astype(np.float32)}
    q = quantize_graph(g, calibrate(g, calib, "minmax"))
    ops = q.op_counts()
    assert ops.get("QLut") == 1 and ops.get("QConv") == 2 and "Atan" not in ops, ops
    lut = next(n for n in q.nodes if n.op == "QLut")
    assert ("Atan", "atan") in lut.origin()
    table = lut.attrs["table"]
    assert len(set(table)) > 16  # a real table, not a constant
    assert table == sorted(table)  # indexed by input code: atan keeps order
    q.outputs = [*q.outputs, lut.outputs[0]]
    verify(q)
    x = (_rng(10).standard_normal((1, 2, 6, 6)) * 2).astype(np.float32)  # some saturate
    want = interpret(q, {"x": x})
    got = run_c(q, {"x": x}, tmp_path, BuildOptions(werror=True))
    for name, w in want.items():
        assert got[name].dtype == w.dtype
        np.testing.assert_array_equal(got[name], w, err_msg=name)
