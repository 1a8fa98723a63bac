"""Indexing, scatter and data-dependent ops against onnx's reference evaluator on random
inputs, exactly (onnxruntime too for NonMaxSuppression); the data-dependent graph rule; and
the quantised forms that keep gathers and scatters on 8-bit codes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from compiler.errors import ConversionError
from compiler.frontend.importer import import_model
from compiler.quant.calibrate import calibrate
from compiler.quant.quantize import quantize_graph
from ir import DType, Graph, TensorType, make_node
from ir.interpreter import InterpreterError, run
from ir.ops.registry import get_op
from ir.verifier import VerifyError, verify
from tests.ops.test_shape import check_against_reference, ints, one_node_model, ops_of, rand

RNG = np.random.default_rng(3)


def against_onnxruntime(op: str, inputs: list, consts: tuple[int, ...], opset: int,
                        out_types: list[int], **attrs: object) -> Graph:
    """Import and run one node; every output equals onnxruntime's exactly (for ops where
    onnx's reference evaluator has no implementation or a bug)."""
    model = one_node_model(op, inputs, consts, opset, len(out_types), **attrs)
    for o, t in zip(model.graph.output, out_types):
        o.type.tensor_type.elem_type = t
    feeds = {f"in{i}": x for i, x in enumerate(inputs) if x is not None and i not in consts}
    want = ort.InferenceSession(model.SerializeToString()).run(None, feeds)
    g = import_model(model)
    got = run(g, feeds)
    for v, w in zip(g.outputs, want):
        assert got[v.name].dtype == w.dtype and got[v.name].shape == w.shape
        np.testing.assert_array_equal(got[v.name], w)
    return g


def idx(*shape: int, high: int, low: int | None = None) -> np.ndarray:
    """Random valid indices, negative ones included."""
    return RNG.integers(-high if low is None else low, high, shape).astype(np.int64)


# -- gathers and scatters -----------------------------------------------------------------------


@pytest.mark.parametrize("batch_dims, data, indices", [
    (0, (3, 4, 5), (2, 2)),
    (0, (3, 4, 5), (2, 3, 3)),
    (1, (3, 4, 5), (3, 2, 1)),
    (2, (2, 3, 4, 5), (2, 3, 2)),
])
def test_gather_nd(batch_dims: int, data: tuple, indices: tuple) -> None:
    q = indices[-1]
    dims = data[batch_dims:batch_dims + q]
    tup = np.stack([idx(*indices[:-1], high=d) for d in dims], -1)
    check_against_reference("GatherND", [rand(*data), tup], opset=13, batch_dims=batch_dims)


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatter_nd(reduction: str) -> None:
    x = rand(4, 3, 2)
    where = np.array([[1, 0], [3, 2], [1, 0], [-1, -2]], np.int64)  # duplicates
    if reduction == "none":
        where = where[[0, 1, 3]]
    upd = rand(len(where), 2)
    check_against_reference("ScatterND", [x, where, upd], opset=18, reduction=reduction)


@pytest.mark.parametrize("axis, reduction", [(0, "none"), (1, "add"), (-1, "mul"), (1, "max"),
                                             (0, "min")])
def test_scatter_elements(axis: int, reduction: str) -> None:
    x = rand(3, 4)
    shape = (2, 3)
    where = idx(*shape, high=x.shape[axis])
    check_against_reference("ScatterElements", [x, where, rand(*shape)], opset=18, axis=axis,
                            reduction=reduction)


def test_scatter_is_the_old_scatter_elements() -> None:
    g = against_onnxruntime("Scatter", [rand(3, 3), idx(2, 3, high=3), rand(2, 3)], (), 10,
                            [TensorProto.FLOAT], axis=1)
    assert ops_of(g) == ["ScatterElements"]


@pytest.mark.parametrize("mode, write", [("linear", [0, 2]), ("circular", [3, 4]),
                                         ("linear", None)])
def test_tensor_scatter(mode: str, write: list | None) -> None:
    cache, upd = rand(2, 3, 5, 2), rand(2, 3, 2, 2)
    inputs = [cache, upd, None if write is None else np.array(write, np.int64)]
    check_against_reference("TensorScatter", inputs, opset=24, mode=mode, axis=-2)


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_one_hot(axis: int) -> None:
    indices = np.array([[0, -1, 2], [5, -7, 3]], np.int64)  # two out of range: all off
    check_against_reference("OneHot", [indices, np.array(4.0, np.float32),
                                       np.array([-1, 7], np.int32)], consts=(1,), opset=11,
                            axis=axis)


def test_one_hot_float_indices_and_depth() -> None:
    """ONNX casts float indices to int64 (0.7 -> 0, -1.5 -> -1 -> 2); onnx's reference
    evaluator compares the floats instead, so onnxruntime decides."""
    against_onnxruntime("OneHot", [np.array([0.7, 2.2, -1.5, 1.0], np.float32),
                                   np.array(3.0, np.float32), rand(2)], (1,), 11,
                        [TensorProto.FLOAT])


def test_one_hot_depth_must_be_constant() -> None:
    model = one_node_model("OneHot", [ints(1, 2), ints(3), rand(2)], opset=11)
    with pytest.raises(ConversionError, match="depth"):
        import_model(model)


@pytest.mark.parametrize("batch_axis, time_axis, lens", [(1, 0, [4, 1, 0]), (0, 1, [2, 4])])
def test_reverse_sequence(batch_axis: int, time_axis: int, lens: list) -> None:
    shape = (4, 3, 2) if batch_axis == 1 else (2, 4, 3)
    check_against_reference("ReverseSequence", [rand(*shape), np.array(lens, np.int64)],
                            opset=10, batch_axis=batch_axis, time_axis=time_axis)


@pytest.mark.parametrize("shape, axes", [([3, 7, 2], None), ([6, 2], [0, -1]), ([1], [1])])
def test_center_crop_pad_is_one_pad(shape: list, axes: list | None) -> None:
    attrs = {} if axes is None else {"axes": axes}
    g = check_against_reference("CenterCropPad", [rand(4, 5, 3), ints(*shape)], consts=(1,),
                                opset=18, **attrs)
    assert ops_of(g) == ["Pad"]


@pytest.mark.parametrize("image, block, attrs", [
    ([5, 5], [2, 3], {"dilations": [2, 1], "pads": [1, 0, 1, 2], "strides": [2, 2]}),
    ([3, 4, 3], [2, 2, 1], {}),
])
def test_col2im(image: list, block: list, attrs: dict) -> None:
    r = len(image)
    pads, dil, st = attrs.get("pads", [0] * 2 * r), attrs.get("dilations", [1] * r), \
        attrs.get("strides", [1] * r)
    grid = [(image[d] + pads[d] + pads[d + r] - dil[d] * (block[d] - 1) - 1) // st[d] + 1
            for d in range(r)]
    x = rand(2, 2 * int(np.prod(block)), int(np.prod(grid)))
    model = one_node_model("Col2Im", [x, ints(*image), ints(*block)], (1, 2), 18, **attrs)
    model.graph.output[0].type.tensor_type.elem_type = TensorProto.FLOAT
    (want,) = ort.InferenceSession(model.SerializeToString()).run(None, {"in0": x})
    g = import_model(model)
    np.testing.assert_allclose(run(g, {"in0": x})[g.outputs[0].name], want, rtol=1e-6,
                               atol=1e-6)


def test_out_of_range_index_is_an_error_in_the_reference() -> None:
    g = import_model(one_node_model("GatherND", [rand(2, 3), ints(0, 3)], opset=13))
    with pytest.raises(InterpreterError, match="out of range"):
        run(g, {"in0": rand(2, 3), "in1": np.array([0, 3], np.int64)})


# -- data-dependent shapes ----------------------------------------------------------------------


@pytest.mark.parametrize("x", [rand(3, 4) * (rand(3, 4) > 0), np.zeros((2, 2), np.float32),
                               np.array([True, False, True])])
def test_non_zero(x: np.ndarray) -> None:
    g = check_against_reference("NonZero", [x], opset=13)
    assert ops_of(g) == ["NonZero"]


@pytest.mark.parametrize("axis", [None, 0, -1])
def test_compress_with_a_run_time_condition(axis: int | None) -> None:
    cond = np.array([True, False, True, True])[: 3 if axis == 0 else 4]
    attrs = {} if axis is None else {"axis": axis}
    g = check_against_reference("Compress", [rand(3, 4), cond], opset=11, **attrs)
    assert ops_of(g) == ["Compress"]


def test_compress_with_a_constant_condition_is_a_gather() -> None:
    g = check_against_reference("Compress", [rand(3, 4), np.array([False, True, True])],
                                consts=(1,), opset=11, axis=1)
    assert ops_of(g) == ["Gather"] and g.outputs[0].type.shape == (3, 2)


@pytest.mark.parametrize("sort, axis", [(1, None), (0, None), (1, 1), (0, 0), (1, -1)])
def test_unique(sort: int, axis: int | None) -> None:
    x = np.array([[2, 1, 2, 1], [5, 0, 5, 0], [2, 1, 2, 1]], np.float32)
    attrs = {"sorted": sort} | ({} if axis is None else {"axis": axis})
    # onnx's reference evaluator fails on unsorted Unique of a 2-D input: onnxruntime decides
    against_onnxruntime("Unique", [x], (), 11, [TensorProto.FLOAT] + [TensorProto.INT64] * 3,
                        **attrs)


def test_data_dependent_ops_on_constants_fold_to_their_true_size() -> None:
    g = import_model(one_node_model("NonZero", [np.array([0, 3, 0, 1], np.int64)], (0,), 13))
    assert "NonZero" not in ops_of(g) and g.outputs[0].type.shape == (1, 2)


def _nms_model(keep: int, iou: float, score: float | None, center: int = 0) -> object:
    boxes = rand(2, 6, 4) * 3
    scores = rand(2, 3, 6)
    limits = [np.array([keep], np.int64), np.array([iou], np.float32)]
    if score is not None:
        limits.append(np.array([score], np.float32))
    consts = tuple(range(2, 2 + len(limits)))
    return one_node_model("NonMaxSuppression", [boxes, scores, *limits], consts, 11,
                          center_point_box=center), boxes, scores


@pytest.mark.parametrize("keep, iou, score, center", [(2, 0.3, None, 0), (6, 0.1, 0.4, 1),
                                                      (3, 0.5, 5.0, 0), (0, 0.5, None, 0)])
def test_non_max_suppression(keep: int, iou: float, score: float | None, center: int) -> None:
    model, boxes, scores = _nms_model(keep, iou, score, center)
    feeds = {"in0": boxes, "in1": scores}
    model.graph.output[0].type.tensor_type.elem_type = TensorProto.INT64
    (want,) = ort.InferenceSession(model.SerializeToString()).run(None, feeds)
    g = import_model(model)
    got = run(g, feeds)[g.outputs[0].name]
    np.testing.assert_array_equal(got, want.reshape(-1, 3))


def test_a_data_dependent_value_may_only_reach_outputs() -> None:
    nodes = [helper.make_node("NonZero", ["x"], ["nz"]),
             helper.make_node("Transpose", ["nz"], ["t"], name="flip")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", 1, [3])],
                              [helper.make_tensor_value_info("t", 7, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(ConversionError, match="'flip' \\(Transpose\\) reads .*run time"):
        import_model(model)


def test_the_verifier_holds_passes_to_the_same_rule() -> None:
    g = Graph("bad")
    x = g.add_input("x", TensorType((4,), DType.f32))
    nz = make_node(g, "NonZero", [x], name="nz").outputs[0]
    g.outputs = list(make_node(g, "Neg", [nz], name="neg").outputs)
    with pytest.raises(VerifyError, match="'neg' \\(Neg\\) reads %nz"):
        verify(g)


def test_a_count_read_by_a_later_node_still_trims_its_output(tmp_path: Path) -> None:
    """NonZero's count is an ordinary value other nodes may read; the run still needs it
    after the last of them, to trim the counted output (the interpreter once dropped it
    after its last reader; the host C reads it as NonZero ends)."""
    from compiler.api import compile_model

    g = Graph("g")
    x = g.add_input("x", TensorType((5,), DType.f32))
    nz = make_node(g, "NonZero", [x], name="nz")
    neg = make_node(g, "Neg", [nz.outputs[-1]], name="neg").outputs[0]
    g.outputs = [nz.outputs[0], neg]
    feeds = {"x": np.array([0, 1, 0, 2, 3], np.float32)}
    got = run(g, feeds)
    np.testing.assert_array_equal(got["nz"], [[1, 3, 4]])
    assert int(got["neg"]) == -3
    c_nz, c_neg = compile_model(g, target="host", cache_dir=tmp_path).run(None, feeds)
    np.testing.assert_array_equal(c_nz, got["nz"])
    np.testing.assert_array_equal(c_neg, got["neg"])


# -- quantised forms ----------------------------------------------------------------------------


def test_gathers_and_scatters_stay_on_codes_in_int8() -> None:
    """A Conv's activations gathered, scattered (updates rescaled to the data's parameters)
    and reversed stay 8-bit; a scatter that adds stays float."""
    g = Graph("moves")
    x = g.add_input("x", TensorType((1, 2, 4, 4), DType.f32))
    w = g.add_const(RNG.standard_normal((3, 2, 1, 1)).astype(np.float32), "w")
    geo = {"strides": [1, 1], "pads": [0, 0, 0, 0], "dilations": [1, 1], "group": 1}
    c = make_node(g, "Conv", [x, w], geo, name="conv").outputs[0]
    u = make_node(g, "Relu", [make_node(g, "Conv", [x, w], geo, name="conv2").outputs[0]],
                  name="relu").outputs[0]
    where = g.add_const(np.array([[0, 2], [0, -1]], np.int64), "where")
    gnd = make_node(g, "GatherND", [c, where], name="gnd").outputs[0]
    upd = make_node(g, "GatherND", [u, where], name="upd").outputs[0]
    snd = make_node(g, "ScatterND", [c, where, upd], name="snd").outputs[0]
    add = make_node(g, "ScatterND", [c, where, upd], {"reduction": "add"}, name="add")
    g.outputs = [gnd, snd, add.outputs[0]]
    data = {"x": RNG.standard_normal((8, 1, 2, 4, 4)).astype(np.float32)}
    q = quantize_graph(g, calibrate(g, data, "minmax"))
    verify(q)
    scatters = [n for n in q.nodes if n.op == "ScatterND"]
    gathers = [n for n in q.nodes if n.op == "GatherND"]
    assert all(n.data.type.quant is not None for n in gathers)
    on_codes = [n for n in scatters if n.attrs["reduction"] == "none"]
    (adds,) = [n for n in scatters if n.attrs["reduction"] == "add"]
    (snd_q,) = on_codes
    assert snd_q.data.type.quant is not None
    assert snd_q.updates.type.quant == snd_q.data.type.quant
    assert adds.data.type.dtype is DType.f32
    feeds = {"x": data["x"][0]}
    want, got = run(g, feeds), run(q, feeds)
    scale = snd_q.outputs[0].type.quant.scale[0]
    np.testing.assert_allclose(got[snd.name], want[snd.name], atol=3 * scale)


@pytest.mark.parametrize("seed", range(12))
def test_scatter_nd_writes_tuples_in_order(seed: int) -> None:
    """Without a reduction every index tuple's slab is written in order, the last of a
    repeated tuple winning: distinct tuples go in one vectorised write, repeated ones one at a
    time, with the same result as writing them one by one."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 3, 5)).astype(np.float32)
    q = int(rng.integers(1, 4))
    n = int(rng.integers(1, 7))
    idx = np.stack([rng.integers(-d, d, n) for d in x.shape[:q]], -1)
    if seed % 2:  # a repeated tuple
        idx[-1] = idx[0]
    upd = rng.standard_normal((n,) + x.shape[q:]).astype(np.float32)
    op = get_op("ScatterND")
    (got,) = op.compute([x, idx, upd], op.normalize_attrs({}))
    want = x.copy()
    for t, u in zip(idx, upd):
        want[tuple(int(v) for v in t)] = u
    np.testing.assert_array_equal(got, want)
