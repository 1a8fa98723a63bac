"""Selection and padding ops (Slice, Gather, GatherElements, Pad) against onnx's reference
evaluator on random inputs, exactly. Where the reference evaluator departs from the ONNX
spec (a negative-step Slice whose start lies before the axis; negative pads, which it cannot
do), onnxruntime is the oracle.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.errors import ConversionError
from compiler.frontend.importer import import_model
from ir.interpreter import run
from ir.ops.gather import canonical_slice
from ir.ops.registry import OpError, get_op
from ir.types import DType, TensorType
from tests.ops.test_shape import RNG, check_against_reference, ints, one_node_model, ops_of, rand


def qnnc_and_onnxruntime(
    op: str, inputs: list[np.ndarray | None], consts: tuple[int, ...], opset: int, **attrs: Any
) -> tuple[np.ndarray, np.ndarray]:
    model = one_node_model(op, inputs, consts, opset, **attrs)
    x = inputs[0]
    assert x is not None
    model.graph.output[0].type.tensor_type.elem_type = onnx.helper.np_dtype_to_tensor_dtype(
        x.dtype
    )
    feeds = {f"in{i}": v for i, v in enumerate(inputs) if v is not None and i not in consts}
    (want,) = ort.InferenceSession(model.SerializeToString()).run(None, feeds)
    graph = import_model(model)
    return run(graph, feeds)[graph.outputs[0].name], want


# -- Slice -----------------------------------------------------------------------------------
SLICES = [
    # starts, ends, axes, steps
    ([1, 0], [3, 10], [0, 1], [1, 1]),
    ([-1, 2], [-4, 0], [0, 2], [-1, -1]),  # negative steps
    ([100, -100], [-100, 100], [1, 2], [-2, 3]),  # huge bounds clamped
    ([0], [2**62], [-1], [2]),  # INT64-sized end, negative axis
    ([-2], [-1], [1], [1]),
    ([3], [1], [0], [1]),  # empty
    ([4, 5], [-9, -2**62], [0, 1], [-3, -2]),
]


@pytest.mark.parametrize("starts, ends, axes, steps", SLICES)
def test_slice_inputs_form(starts: list, ends: list, axes: list, steps: list) -> None:
    x = rand(5, 6, 7)
    g = check_against_reference(
        "Slice", [x, ints(*starts), ints(*ends), ints(*axes), ints(*steps)],
        consts=(1, 2, 3, 4), opset=13,
    )
    (node,) = g.nodes
    assert len(node.attrs["starts"]) == len(node.attrs["ends"]) == len(node.attrs["steps"]) == 3


def test_slice_default_axes_and_steps() -> None:
    check_against_reference("Slice", [rand(4, 5), ints(1, -3), ints(3, 100)], consts=(1, 2),
                            opset=13)


def test_slice_attributes_before_opset_10() -> None:
    check_against_reference("Slice", [rand(4, 5, 6)], opset=9, starts=[1, -3], ends=[100, -1],
                            axes=[0, 2])


@pytest.mark.parametrize("start, end", [(-100, -1000), (-100, -1), (7, -7)])
def test_slice_negative_step_clamps_as_the_spec_says(start: int, end: int) -> None:
    # The spec clamps a negative-step start into [0, dim-1]; Python slicing (and the
    # reference evaluator) would treat a start before the axis as empty instead.
    x = rand(5)
    got, want = qnnc_and_onnxruntime(
        "Slice", [x, ints(start), ints(end), ints(0), ints(-1)], (1, 2, 3, 4), 13
    )
    np.testing.assert_array_equal(got, want)


def test_slice_of_everything_is_no_op() -> None:
    g = check_against_reference("Slice", [rand(3, 4), ints(0), ints(2**62)], consts=(1, 2),
                                opset=13)
    assert "Slice" not in ops_of(g)


def test_slice_errors() -> None:
    with pytest.raises(OpError, match="steps must not be 0"):
        canonical_slice((3,), [0], [3], None, [0])
    with pytest.raises(OpError, match="twice"):
        canonical_slice((3, 4), [0, 0], [1, 1], [1, -1])
    with pytest.raises(OpError, match="not canonical"):
        get_op("Slice").infer([TensorType((3,), DType.f32)],
                              {"starts": [-1], "ends": [3], "steps": [1]})
    with pytest.raises(ConversionError, match="known at compile time"):
        import_model(one_node_model("Slice", [rand(3), ints(0), ints(2)], consts=(1,)))


# -- Gather, GatherElements ------------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("idx_dtype", [np.int64, np.int32])
def test_gather_with_runtime_negative_indices(axis: int, idx_dtype: Any) -> None:
    x = rand(4, 5, 6)
    dim = x.shape[axis]
    idx = RNG.integers(-dim, dim, (2, 3)).astype(idx_dtype)
    assert (idx < 0).any()
    g = check_against_reference("Gather", [x, idx], axis=axis)
    (node,) = g.nodes
    assert node.op == "Gather" and not node.inputs[1].is_const  # indices are real data


def test_gather_scalar_constant_index() -> None:
    g = check_against_reference("Gather", [rand(3, 4), np.array(-1, np.int64)], consts=(1,),
                                axis=1)
    assert g.outputs[0].type.shape == (3,)


def test_gather_rejects_float_indices() -> None:
    with pytest.raises(OpError, match="indices"):
        get_op("Gather").infer(
            [TensorType((3,), DType.f32), TensorType((2,), DType.f32)], {"axis": 0}
        )


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gather_elements_negative_indices(axis: int) -> None:
    x = rand(4, 5)
    shape = [4, 5]
    shape[axis] = 6
    dim = x.shape[axis]
    idx = RNG.integers(-dim, dim, shape).astype(np.int64)
    if axis >= 0:
        check_against_reference("GatherElements", [x, idx], axis=axis)
    else:  # the reference evaluator mis-checks shapes for a negative axis
        got, want = qnnc_and_onnxruntime("GatherElements", [x, idx], (), 13, axis=axis)
        np.testing.assert_array_equal(got, want)


def test_gather_elements_indices_smaller_than_data() -> None:
    # The reference evaluator insists on equal dims outside axis; the spec and onnxruntime
    # only need the indices to fit.
    x = rand(4, 5)
    idx = np.array([[0, -1, 2], [1, 1, -4]], np.int64)
    got, want = qnnc_and_onnxruntime("GatherElements", [x, idx], (), 13, axis=0)
    np.testing.assert_array_equal(got, want)


# -- Pad -------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
@pytest.mark.parametrize("pads", [[1, 0, 2, 0, 3, 1], [0, 2, 0, 1, 0, 3]])
def test_pad_modes(mode: str, pads: list) -> None:
    x = rand(3, 4, 5)
    g = check_against_reference("Pad", [x, ints(*pads)], consts=(1,), opset=19, mode=mode)
    assert g.nodes[0].attrs["mode"] == mode


def test_pad_constant_value_and_axes_inputs() -> None:
    x = rand(3, 4, 5)
    value = np.array(1.5, np.float32)
    g = check_against_reference("Pad", [x, ints(1, 2, 3, 0), value, ints(-1, 0)],
                                consts=(1, 2, 3), opset=18)
    assert g.nodes[0].attrs["pads"] == [2, 0, 1, 0, 0, 3] and g.nodes[0].attrs["value"] == 1.5


def test_pad_runtime_constant_value() -> None:
    x = RNG.integers(-9, 9, (2, 3)).astype(np.int32)
    g = check_against_reference("Pad", [x, ints(1, 1, 0, 2), np.array(7, np.int32)],
                                consts=(1,), opset=13)
    assert len(g.nodes[0].inputs) == 2  # the value is an operand, not an attribute


def test_pad_attribute_form_before_opset_11() -> None:
    check_against_reference("Pad", [rand(2, 3)], opset=2, pads=[0, 1, 2, 0], value=-2.0)
    check_against_reference("Pad", [rand(3, 3)], opset=2, pads=[1, 2, 1, 0], mode="reflect")


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect"])
def test_pad_negative_pads_crop(mode: str) -> None:
    x = rand(4, 6)
    pads = ints(-1, 2, 1, -3)
    got, want = qnnc_and_onnxruntime("Pad", [x, pads], (1,), 13, mode=mode)
    assert got.shape == (4, 5)
    np.testing.assert_array_equal(got, want)


def test_pad_reflect_needs_room() -> None:
    with pytest.raises(ConversionError, match="reflect"):
        import_model(one_node_model("Pad", [rand(2, 3), ints(0, 3, 0, 0)], consts=(1,),
                                    opset=13, mode="reflect"))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=4).flatmap(
    lambda shape: st.tuples(st.just(shape), st.lists(
        st.tuples(st.integers(-2, 5), st.integers(-2, 5)), min_size=len(shape),
        max_size=len(shape)))), st.sampled_from(["constant", "reflect"]))
def test_pad_compute_is_numpy_pad(case: tuple[list[int], list[tuple[int, int]]],
                                  mode: str) -> None:
    """Pad's own constant fill and single mirror image against np.pad, every shape and pad
    (crops included) that type inference accepts."""
    shape, widths = case
    x = RNG.standard_normal(shape).astype(np.float32)
    pads = [b for b, _ in widths] + [e for _, e in widths]
    op = get_op("Pad")
    attrs = op.normalize_attrs({"pads": pads, "mode": mode, "value": 2.5})
    try:
        op.infer([TensorType(tuple(shape), DType.f32)], attrs)
    except OpError:
        return  # not a valid Pad (over-crop, reflect without room)
    (got,) = op.compute([x], attrs)
    kept = x[tuple(slice(max(-b, 0), d - max(-e, 0)) for d, (b, e) in zip(shape, widths))]
    grow = [(max(b, 0), max(e, 0)) for b, e in widths]
    want = np.pad(kept, grow, mode=mode, **({"constant_values": 2.5} if mode == "constant"
                                             else {}))
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    assert not np.shares_memory(got, x)
