"""The models the fuzzers mutate: tiny_cnn from compiler/examples, and three small graphs that
reach the frontend's folding (shape arithmetic, ConstantOfShape, Range, Tile, Expand), the
indexing and resize converters, and a control-flow body (If)."""

from __future__ import annotations

import functools

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from compiler.examples import build_example


def _model(nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto],
           outputs: list[onnx.ValueInfoProto], inits: list[onnx.TensorProto]) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "seed", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _ints(name: str, values: list[int] | int) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(values, np.int64), name)


def shape_chain() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 12])
    r = helper.make_tensor_value_info("r", TensorProto.INT64, [3])
    t = helper.make_tensor_value_info("t", TensorProto.FLOAT, [2, 24])
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "i0"], ["n"], name="gather", axis=0),
        helper.make_node("Concat", ["n", "m1"], ["target"], name="concat", axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"], name="reshape"),
        helper.make_node("Range", ["a", "b", "d"], ["r"], name="range"),
        helper.make_node("Shape", ["y"], ["sy"], name="shape_y"),
        helper.make_node("ConstantOfShape", ["sy"], ["z"], name="fill",
                         value=numpy_helper.from_array(np.array([0.5], np.float32))),
        helper.make_node("Add", ["y", "z"], ["yz"], name="add"),
        helper.make_node("Tile", ["yz", "rep"], ["t"], name="tile"),
    ]
    inits = [_ints("i0", [0]), _ints("m1", [-1]), _ints("a", 0), _ints("b", 3), _ints("d", 1),
             _ints("rep", [1, 2])]
    return _model(nodes, [x], [y, r, t], inits)


def indexing() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])
    nodes = [
        helper.make_node("Slice", ["x", "st", "en", "ax"], ["s"], name="slice"),
        helper.make_node("Resize", ["s", "", "sc"], ["u"], name="resize", mode="nearest"),
        helper.make_node("Gather", ["u", "idx"], ["g"], name="gather", axis=1),
        helper.make_node("Transpose", ["g"], ["tg"], name="transpose", perm=[0, 1, 3, 2]),
        helper.make_node("Mul", ["tg", "w"], ["y"], name="mul"),
    ]
    inits = [_ints("st", [0, 0]), _ints("en", [2, 2]), _ints("ax", [2, 3]),
             numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "sc"),
             _ints("idx", [1, 0]), numpy_helper.from_array(np.full((1, 2, 1, 1), 2.0,
                                                                   np.float32), "w")]
    return _model(nodes, [x], [y], inits)


def branch() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])
    out = helper.make_tensor_value_info("o", TensorProto.FLOAT, [3])
    then = helper.make_graph([helper.make_node("Relu", ["x"], ["o"], name="then_relu")],
                             "then", [], [out])
    other = helper.make_graph([helper.make_node("Neg", ["x"], ["o"], name="else_neg")],
                              "else", [], [out])
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["s"], name="sum", keepdims=0),
        helper.make_node("Greater", ["s", "zero"], ["c"], name="greater"),
        helper.make_node("If", ["c"], ["y"], name="if", then_branch=then, else_branch=other),
    ]
    inits = [numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
    return _model(nodes, [x], [y], inits)


@functools.cache
def seed_models() -> tuple[bytes, ...]:
    """Every seed model, serialised."""
    models = [build_example("tiny_cnn"), shape_chain(), indexing(), branch()]
    for m in models:
        onnx.checker.check_model(m)
    return tuple(m.SerializeToString() for m in models)
