"""Reshape-like ops (Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Expand, Tile, Identity,
Concat, Split): ONNX node → qnnc import → interpreter, against onnx's reference evaluator on
random inputs. Data movement is exact, so results must be bit-identical.

The helpers here are shared with the other data-movement op tests.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from compiler.errors import ConversionError
from compiler.frontend.importer import import_model
from ir.graph import Graph
from ir.interpreter import run
from ir.ops.registry import OpError, get_op
from ir.types import DType, TensorType

RNG = np.random.default_rng(0)


def rand(*shape: int, dtype: Any = np.float32) -> np.ndarray:
    return RNG.standard_normal(shape).astype(dtype)


def ints(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def one_node_model(
    op: str, inputs: list[np.ndarray | None], consts: tuple[int, ...] = (), opset: int = 21,
    n_outputs: int = 1, **attrs: Any,
) -> onnx.ModelProto:
    """A one-node model. Input i is an initializer (a compile-time constant) when i is in
    ``consts``, omitted when None, and a graph input otherwise."""
    names = [f"in{i}" if x is not None else "" for i, x in enumerate(inputs)]
    node = helper.make_node(op, names, [f"out{i}" for i in range(n_outputs)], **attrs)
    graph_inputs, inits = [], []
    for i, (n, x) in enumerate(zip(names, inputs)):
        if x is None:
            continue
        if i in consts:
            inits.append(numpy_helper.from_array(x, n))
        else:
            dt = helper.np_dtype_to_tensor_dtype(x.dtype)
            graph_inputs.append(helper.make_tensor_value_info(n, dt, x.shape))
    outs = [helper.make_tensor_value_info(f"out{i}", 0, None) for i in range(n_outputs)]
    graph = helper.make_graph([node], "t", graph_inputs, outs, initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def check_against_reference(
    op: str, inputs: list[np.ndarray | None], consts: tuple[int, ...] = (), opset: int = 21,
    n_outputs: int = 1, **attrs: Any,
) -> Graph:
    """Import and run one node; assert every output equals the reference evaluator's exactly.
    Returns the imported graph for further checks."""
    model = one_node_model(op, inputs, consts, opset, n_outputs, **attrs)
    feeds = {f"in{i}": x for i, x in enumerate(inputs) if x is not None and i not in consts}
    refs = ReferenceEvaluator(model).run(None, feeds)
    graph = import_model(model)
    got = run(graph, feeds)
    assert len(graph.outputs) == len(refs) == n_outputs
    for v, ref in zip(graph.outputs, refs):
        ref = np.asarray(ref)
        out = got[v.name]
        assert out.dtype == ref.dtype and out.shape == ref.shape, (out.dtype, out.shape, ref.shape)
        np.testing.assert_array_equal(out, ref)
    return graph


def ops_of(graph: Graph) -> list[str]:
    return [n.op for n in graph.nodes]


# -- Reshape ---------------------------------------------------------------------------------
@pytest.mark.parametrize("shape_in, shape", [
    ((2, 3, 4), (4, 6)),
    ((2, 3, 4), (0, -1)),  # 0 copies dim 0, -1 takes the rest
    ((2, 3, 4), (-1, 0, 2)),
    ((2, 3, 4), (24,)),
    ((6,), (1, 2, 1, 3)),
])
def test_reshape_resolves_zero_and_minus_one(shape_in: tuple, shape: tuple) -> None:
    x = rand(*shape_in)
    g = check_against_reference("Reshape", [x, ints(*shape)], consts=(1,))
    (node,) = g.nodes
    assert node.op == "Reshape" and all(d > 0 for d in node.attrs["shape"])


def test_reshape_allowzero_keeps_literal_zero() -> None:
    data = np.zeros((0, 3, 4), np.float32)
    g = check_against_reference(
        "Reshape", [data, ints(3, 4, 0)], consts=(0, 1), opset=14, allowzero=1
    )
    assert "Reshape" not in ops_of(g) and g.outputs[0].type.shape == (3, 4, 0)


def test_reshape_rejects_two_minus_ones_and_dynamic_shapes() -> None:
    with pytest.raises(ConversionError, match="more than one -1"):
        import_model(one_node_model("Reshape", [rand(2, 3), ints(-1, -1)], consts=(1,)))
    with pytest.raises(ConversionError, match="known at compile time"):
        import_model(one_node_model("Reshape", [rand(2, 3), ints(3, 2)]))
    with pytest.raises(ConversionError, match="cannot view"):
        import_model(one_node_model("Reshape", [rand(2, 3), ints(4, 2)], consts=(1,)))


def test_reshape_ir_checks_element_count() -> None:
    x = TensorType((2, 3), DType.f32)
    with pytest.raises(OpError):
        get_op("Reshape").infer([x], {"shape": [5]})
    with pytest.raises(OpError):
        get_op("Reshape").infer([x], {"shape": [-1, 3]})


# -- Flatten, Transpose ----------------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1, -3])
def test_flatten(axis: int) -> None:
    g = check_against_reference("Flatten", [rand(2, 3, 4)], axis=axis)
    assert ops_of(g) == ["Reshape"]


@pytest.mark.parametrize("perm", [None, [0, 2, 1, 3], [3, 1, 0, 2]])
def test_transpose(perm: list[int] | None) -> None:
    attrs = {} if perm is None else {"perm": perm}
    g = check_against_reference("Transpose", [rand(2, 3, 4, 5)], **attrs)
    expect = [3, 2, 1, 0] if perm is None else perm
    assert g.nodes[0].attrs["perm"] == expect


def test_transpose_ir_rejects_non_permutation() -> None:
    with pytest.raises(OpError, match="permutation"):
        get_op("Transpose").infer([TensorType((2, 3), DType.f32)], {"perm": [0, 0]})


# -- Squeeze, Unsqueeze ----------------------------------------------------------------------
@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("axes", [[0], [-1], [0, 3], None])
def test_squeeze_attribute_and_input_forms(opset: int, axes: list[int] | None) -> None:
    x = rand(1, 3, 4, 1)
    if axes is None:
        g = check_against_reference("Squeeze", [x], opset=opset)
    elif opset < 13:
        g = check_against_reference("Squeeze", [x], opset=opset, axes=axes)
    else:
        g = check_against_reference("Squeeze", [x, ints(*axes)], consts=(1,), opset=opset)
    assert ops_of(g) == ["Reshape"]


def test_squeeze_rejects_a_dim_that_is_not_one() -> None:
    with pytest.raises(ConversionError, match="size is not 1"):
        import_model(one_node_model("Squeeze", [rand(2, 3), ints(0)], consts=(1,)))


@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("axes", [[0], [2], [-1], [0, 3], [0, 2, 4]])
def test_unsqueeze_attribute_and_input_forms(opset: int, axes: list[int]) -> None:
    x = rand(2, 3)
    if opset < 13:
        g = check_against_reference("Unsqueeze", [x], opset=opset, axes=axes)
    else:
        g = check_against_reference("Unsqueeze", [x, ints(*axes)], consts=(1,), opset=opset)
    assert ops_of(g) == ["Reshape"]


def test_unsqueeze_axes_order_does_not_matter() -> None:
    x = rand(2, 3)
    g = check_against_reference("Unsqueeze", [x, ints(4, 0, -3)], consts=(1,), opset=13)
    assert g.outputs[0].type.shape == (1, 2, 1, 3, 1)


# -- Expand, Tile, Identity ------------------------------------------------------------------
@pytest.mark.parametrize("shape_in, shape", [
    ((3, 1), (2, 1, 6)),  # bidirectional: the 1 in `shape` keeps the input's 3
    ((1, 4), (3, 1)),
    ((2, 3, 4), (4,)),  # a shorter shape broadcasts too
    ((3,), (2, 3)),
])
def test_expand_broadcasts_both_ways(shape_in: tuple, shape: tuple) -> None:
    g = check_against_reference("Expand", [rand(*shape_in), ints(*shape)], consts=(1,))
    out = np.broadcast_shapes(shape_in, shape)
    assert g.outputs[0].type.shape == out


def test_expand_rejects_incompatible_shape() -> None:
    with pytest.raises(ConversionError, match="do not broadcast"):
        import_model(one_node_model("Expand", [rand(3, 2), ints(3, 4)], consts=(1,)))


@pytest.mark.parametrize("repeats", [(1, 1), (2, 3), (3, 0)])
def test_tile(repeats: tuple) -> None:
    check_against_reference("Tile", [rand(2, 3), ints(*repeats)], consts=(1,))


def test_identity_keeps_data_and_int_dtype() -> None:
    x = RNG.integers(-5, 5, (3, 4)).astype(np.int8)
    check_against_reference("Identity", [x])


# -- Concat, Split ---------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
def test_concat_three_inputs(axis: int) -> None:
    shapes = [[2, 3, 4] for _ in range(3)]
    for k, s in enumerate(shapes):
        s[axis] += k
    check_against_reference("Concat", [rand(*s) for s in shapes], axis=axis)


def test_concat_of_a_constant_and_data_is_not_folded() -> None:
    g = check_against_reference("Concat", [rand(2, 3), rand(2, 1)], consts=(1,), axis=1)
    assert ops_of(g) == ["Concat"]


def test_split_attribute_form_before_opset_13() -> None:
    check_against_reference("Split", [rand(2, 7)], opset=11, n_outputs=3, axis=1,
                            split=[2, 4, 1])


@pytest.mark.parametrize("opset", [13, 18])
def test_split_sizes_as_constant_input(opset: int) -> None:
    check_against_reference("Split", [rand(6, 2), ints(1, 0, 5)], consts=(1,), opset=opset,
                            n_outputs=3)


@pytest.mark.parametrize("dim, n", [(7, 3), (10, 4), (6, 3)])
def test_split_num_outputs_uneven_last_chunk(dim: int, n: int) -> None:
    g = check_against_reference("Split", [rand(3, dim)], opset=18, n_outputs=n, axis=-1,
                                num_outputs=n)
    chunk = -(-dim // n)
    sizes = [v.type.shape[1] for v in g.outputs]
    assert sizes[:-1] == [chunk] * (n - 1) and sum(sizes) == dim


def test_split_equal_parts_from_output_count() -> None:
    g = check_against_reference("Split", [rand(6, 4)], opset=13, n_outputs=2)
    assert [v.type.shape for v in g.outputs] == [(3, 4), (3, 4)]
    with pytest.raises(ConversionError, match="evenly"):
        import_model(one_node_model("Split", [rand(5, 4)], opset=13, n_outputs=2))
