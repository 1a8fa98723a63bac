"""A hypothesis strategy for small, often hostile, ONNX graphs: a chain of shape-moving and
folding ops whose constant operands (shapes, repeats, scales, indices, axes, perms) are drawn
from edge values, so the frontend's folding and shape inference see the sizes and indices a
broken exporter or an attacker would write."""

from __future__ import annotations

import numpy as np
import onnx
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

EDGE_INTS = st.sampled_from([0, 1, 2, 3, -1, -2, 7, 100_000, -100_000, 2**31, 10**12, -(2**63)])
SMALL_DIMS = st.lists(st.integers(1, 4), min_size=1, max_size=4)


@st.composite
def hostile_graph(draw: st.DrawFn) -> bytes:
    dims = draw(SMALL_DIMS)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    cur = "x"
    for k in range(draw(st.integers(1, 4))):
        name, out = f"n{k}", f"v{k}"
        ints = draw(st.lists(EDGE_INTS, min_size=0, max_size=5))
        c = f"c{k}"
        inits.append(numpy_helper.from_array(np.array(ints, np.int64), c))
        op = draw(st.sampled_from(["Reshape", "Tile", "Expand", "ConstantOfShape", "Range",
                                   "Slice", "Transpose", "Gather", "Concat", "Resize", "Pad",
                                   "Squeeze", "Unsqueeze", "ReduceSum", "Split", "TopK"]))
        if op == "Transpose":
            node = helper.make_node(op, [cur], [out], name=name, perm=ints or [0])
        elif op == "Gather":
            node = helper.make_node(op, [cur, c], [out], name=name,
                                    axis=draw(EDGE_INTS.filter(lambda v: abs(v) < 2**31)))
        elif op == "Concat":
            node = helper.make_node(op, [cur, cur], [out], name=name,
                                    axis=draw(EDGE_INTS.filter(lambda v: abs(v) < 2**31)))
        elif op == "Range":
            a, b = f"a{k}", f"b{k}"
            inits += [numpy_helper.from_array(np.array(draw(EDGE_INTS), np.int64), a),
                      numpy_helper.from_array(np.array(draw(EDGE_INTS), np.int64), b)]
            node = helper.make_node(op, [a, b, f"{c}s"], [out], name=name)
            inits.append(numpy_helper.from_array(np.array(draw(EDGE_INTS), np.int64), f"{c}s"))
        elif op == "Resize":
            scales = draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0, 1e5, -1.0,
                                                    float("nan")]), min_size=0, max_size=5))
            inits.append(numpy_helper.from_array(np.array(scales, np.float32), f"{c}f"))
            node = helper.make_node(op, [cur, "", f"{c}f"], [out], name=name)
        elif op == "Slice":
            node = helper.make_node(op, [cur, c, c], [out], name=name)
        elif op in ("ConstantOfShape",):
            node = helper.make_node(op, [c], [out], name=name)
        elif op in ("Split", "TopK"):
            node = helper.make_node(op, [cur, c] if op == "Split" else [cur, c], [out],
                                    name=name, axis=draw(st.sampled_from([0, -1, 5])))
        else:
            node = helper.make_node(op, [cur, c], [out], name=name)
        nodes.append(node)
        cur = out
    # the checker wants a shape; a symbolic one leaves the real rank to the import
    y = helper.make_tensor_value_info(cur, TensorProto.FLOAT, ["d0"])
    graph = helper.make_graph(nodes, "hostile", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString()
