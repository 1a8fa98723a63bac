"""The indexing emitters (GatherND, ScatterND, ScatterElements, TensorScatter, OneHot,
ReverseSequence, Col2Im) and the data-dependent ones (NonZero, Compress, Unique,
NonMaxSuppression) against the reference interpreter, several ops per gcc build.

An index outside its axis stops the run on both paths (docs/architecture.md "Defined
meaning"). Moving ops compare exactly (rtol = atol = 0), so do the integer results of the
data-dependent ops; Col2Im sums in f32 in another order than the reference (f64), at
rtol 1e-6. Data-dependent outputs are cut to the extent the C wrote to qnnc_output_rows.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ir.build import make_node
from ir.graph import Graph
from ir.interpreter import IndexRangeError
from ir.interpreter import run as interpret
from ir.ops import OPS
from ir.ops.dynamic import counted_outputs, trim
from ir.types import TensorType
from targets.c.model import FIRST_CHECK_STATUS
from targets.host.build import BuildOptions, build_c_library

RNG = np.random.default_rng(7)


def run_c_counted(graph: Graph, feeds: dict[str, np.ndarray], folder: Path
                  ) -> dict[str, np.ndarray]:
    """qnnc_run through ctypes; outputs with a run-time extent are cut to qnnc_output_rows."""
    lib = ctypes.CDLL(str(build_c_library(graph, folder, BuildOptions(werror=True))))
    ins = [np.ascontiguousarray(feeds[v.name]) for v in graph.inputs]
    outs = [np.full(v.type.shape, 77, v.type.dtype.np) for v in graph.outputs]  # not zeros
    in_ptrs = (ctypes.c_void_p * max(len(ins), 1))(*[a.ctypes.data for a in ins])
    out_ptrs = (ctypes.c_void_p * max(len(outs), 1))(*[a.ctypes.data for a in outs])
    assert lib.qnnc_run(in_ptrs, out_ptrs) == 0
    rows = counted_outputs(graph)
    if rows:
        counts = (ctypes.c_int64 * len(outs)).in_dll(lib, "qnnc_output_rows")
        for k, (_, axis) in rows.items():
            outs[k] = trim(outs[k], axis, counts[k])
    return {v.name: o for v, o in zip(graph.outputs, outs)}


def check(graph: Graph, feeds: dict[str, np.ndarray], folder: Path, rtol: float = 0.0
          ) -> dict[str, np.ndarray]:
    want = interpret(graph, feeds)
    got = run_c_counted(graph, feeds, folder)
    for name, w in want.items():
        assert got[name].dtype == w.dtype and got[name].shape == w.shape, (name, got[name].shape,
                                                                           w.shape)
        np.testing.assert_allclose(got[name], w, rtol=rtol, atol=0, err_msg=name)
    return got


class Builder:
    """A graph of several nodes, each output a graph output, with the feeds to run it."""

    def __init__(self, name: str) -> None:
        self.g = Graph(name)
        self.feeds: dict[str, np.ndarray] = {}

    def input(self, name: str, a: np.ndarray) -> Any:
        self.feeds[name] = a
        return self.g.add_input(name, TensorType.of(a))

    def node(self, op: str, ins: list, **attrs: Any) -> None:
        n = make_node(self.g, op, ins, attrs, name=f"{op.lower()}_{len(self.g.nodes)}")
        self.g.outputs += n.outputs[:-1] if OPS[op].counted else n.outputs  # not the count


def _distinct(*shape: int, dtype: Any = np.float32) -> np.ndarray:
    n = int(np.prod(shape))
    return (RNG.permutation(n) - n // 2).reshape(shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.int8])
def test_gathers_and_scatters(dtype: Any, tmp_path: Path) -> None:
    b = Builder("indexing")
    x = b.input("x", _distinct(3, 4, 5, dtype=dtype))
    idx = b.input("idx", np.array([[[2, -1], [0, 3]], [[1, 1], [-3, 0]]], np.int64))
    b.node("GatherND", [x, idx])
    bidx = b.input("bidx", np.array([[1], [-1], [0]], np.int32))
    b.node("GatherND", [x, bidx], batch_dims=1)
    upd = b.input("upd", _distinct(2, 2, 5, dtype=dtype))
    for red in ("none", "add", "max"):
        b.node("ScatterND", [x, idx, upd], reduction=red)
    eidx = b.input("eidx", np.array([[[0, -1, 3, 3, 1]], [[2, 2, 2, -4, 0]]], np.int64))
    eupd = b.input("eupd", _distinct(2, 1, 5, dtype=dtype))
    for red in ("none", "mul", "min"):
        b.node("ScatterElements", [x, eidx, eupd], axis=1, reduction=red)
    cache = b.input("cache", _distinct(3, 2, 4, 2, dtype=dtype))
    rows = b.input("rows", _distinct(3, 2, 3, 2, dtype=dtype))
    at = b.input("at", np.array([0, 3, 1], np.int64))
    b.node("TensorScatter", [cache, rows, at], axis=2, mode="circular")
    b.node("TensorScatter", [cache, rows], axis=2)
    lens = b.input("lens", np.array([4, 0, 2, 1, 3], np.int64))
    seq = b.input("seq", _distinct(4, 5, 2, dtype=dtype))
    b.node("ReverseSequence", [seq, lens], batch_axis=1, time_axis=0)
    b.node("ReverseSequence", [x, b.input("lens0", np.array([4, 2, 0], np.int32))],
           batch_axis=0, time_axis=1)
    hot = b.input("hot", np.array([[0, -1, 5], [3, 2, -6]], np.int64))
    vals = b.input("vals", np.array([-2, 9], dtype))
    b.node("OneHot", [hot, vals], depth=4, axis=1)
    b.node("OneHot", [hot, vals], depth=6, axis=2)
    check(b.g, b.feeds, tmp_path)


def test_col2im(tmp_path: Path) -> None:
    b = Builder("col2im")
    b.node("Col2Im", [b.input("x", RNG.standard_normal((2, 6, 9)).astype(np.float32))],
           image_shape=[5, 5], block_shape=[2, 3], dilations=[2, 1], pads=[1, 0, 1, 2],
           strides=[2, 2])
    b.node("Col2Im", [b.input("y", RNG.standard_normal((1, 4, 16)).astype(np.float32))],
           image_shape=[3, 3], block_shape=[2, 2], dilations=[1, 1], pads=[1, 1, 1, 1],
           strides=[1, 1])
    check(b.g, b.feeds, tmp_path, rtol=1e-6)


def test_out_of_range_index_stops_the_run_on_both_paths(tmp_path: Path) -> None:
    """One bad index per run, in each checking op in turn: the interpreter raises an
    InputError naming that node, and qnnc_run returns that layer's status (model.h)."""
    b = Builder("oob")
    x = b.input("x", np.arange(1, 7, dtype=np.float32).reshape(2, 3))
    b.node("Gather", [x, b.input("g", np.array([2, -3], np.int64))], axis=1)
    b.node("GatherND", [x, b.input("i", np.array([[1, 2], [0, -1]], np.int64))])
    b.node("ScatterND", [x, b.input("j", np.array([[0, 2], [1, 1]], np.int64)),
                         b.input("u", np.array([10, 20], np.float32))])
    b.node("ScatterElements", [x, b.input("k", np.array([[0, 2]], np.int64)),
                               b.input("v", np.array([[30, 40]], np.float32))], axis=1)
    b.node("TensorScatter", [b.input("cache", np.zeros((2, 4, 3), np.float32)),
                             b.input("rows", np.ones((2, 2, 3), np.float32)),
                             b.input("at", np.array([0, 2], np.int64))], axis=1)
    b.node("ReverseSequence", [x, b.input("lens", np.array([3, 0], np.int64))],
           batch_axis=0, time_axis=1)
    check(b.g, b.feeds, tmp_path / "good")
    lib = ctypes.CDLL(str(build_c_library(b.g, tmp_path / "bad", BuildOptions(werror=True))))
    bad = [("g", (0,), 3), ("i", (1, 1), -4), ("j", (0, 1), 3), ("k", (0, 1), -4),
           ("at", (1,), 3), ("lens", (0,), 4)]
    for layer, (name, at, value) in enumerate(bad):
        feeds = {k: v.copy() for k, v in b.feeds.items()}
        feeds[name][at] = value
        node = b.g.nodes[layer]
        with pytest.raises(IndexRangeError, match=f"node '{node.name}' \\({node.op}\\)"):
            interpret(b.g, feeds)
        assert _status(lib, b.g, feeds) == FIRST_CHECK_STATUS + layer, node.name


def _status(lib: ctypes.CDLL, graph: Graph, feeds: dict[str, np.ndarray]) -> int:
    ins = [np.ascontiguousarray(feeds[v.name]) for v in graph.inputs]
    outs = [np.empty(v.type.shape, v.type.dtype.np) for v in graph.outputs]
    in_ptrs = (ctypes.c_void_p * len(ins))(*[a.ctypes.data for a in ins])
    out_ptrs = (ctypes.c_void_p * len(outs))(*[a.ctypes.data for a in outs])
    return int(lib.qnnc_run(in_ptrs, out_ptrs))


def test_data_dependent_ops(tmp_path: Path) -> None:
    b = Builder("dynamic")
    mask = b.input("mask", np.array([[0, 1.5, 0], [-2, 0, 0], [0, 0, 3]], np.float32))
    b.node("NonZero", [mask])
    empty = b.input("empty", np.zeros((2, 3), np.int8))
    b.node("NonZero", [empty])
    x = b.input("x", _distinct(3, 4))
    cond = b.input("cond", np.array([True, False, True], bool))
    b.node("Compress", [x, cond], axis=1)
    b.node("Compress", [x, cond], flatten=True)
    dup = b.input("dup", np.array([[2, 1, 2, 1], [5, 0, 5, 0], [2, 1, 2, 1]], np.int32))
    for sort in (True, False):
        b.node("Unique", [dup], sorted=sort)
        b.node("Unique", [dup], flatten=False, axis=1, sorted=sort)
        b.node("Unique", [dup], flatten=False, axis=0, sorted=sort)
    check(b.g, b.feeds, tmp_path)


def test_non_max_suppression(tmp_path: Path) -> None:
    b = Builder("nms")
    boxes = np.array([[[0, 0, 1, 1], [0, 0.1, 1, 1.1], [0, -0.1, 1, 0.9], [0, 10, 1, 11],
                       [0, 10.1, 1, 11.1], [0, 100, 1, 101]]], np.float32)
    bx = b.input("boxes", np.concatenate([boxes, boxes[:, ::-1]]))
    scores = b.input("scores", RNG.permutation(24).reshape(2, 2, 6).astype(np.float32) / 24)
    b.node("NonMaxSuppression", [bx, scores], max_output_boxes_per_class=3, iou_threshold=0.5,
           score_threshold=0.2)
    b.node("NonMaxSuppression", [bx, scores], max_output_boxes_per_class=9, iou_threshold=0.3)
    b.node("NonMaxSuppression", [bx, scores], max_output_boxes_per_class=2,
           score_threshold=2.0)  # nothing scores above: zero rows
    centers = b.input("centers", np.array([[[0.5, 0.5, 1, 1], [0.5, 0.6, 1, 1],
                                            [0.5, 10.5, 1, 1]]], np.float32))
    b.node("NonMaxSuppression", [centers, b.input("s", np.array([[[0.9, 0.75, 0.6]]],
                                                                np.float32))],
           max_output_boxes_per_class=3, iou_threshold=0.5, center_point_box=1)
    got = check(b.g, b.feeds, tmp_path)
    assert got[b.g.outputs[2].name].shape == (0, 3)


# -- an ONNX model compiled for the host (Cython Session) against onnxruntime ----------------


def test_nonzero_and_conv_to_non_max_suppression_on_host(tmp_path: Path) -> None:
    """One model (one Cython build): NonZero of an input straight to an output, and scores
    from a Conv and a Sigmoid over a 4x4 grid of overlapping boxes into NonMaxSuppression.
    Inputs with no non-zero element and no score above the threshold give zero rows."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from compiler.api import compile_model

    side = 4
    centres = [(r + 0.5, c + 0.5) for r in range(side) for c in range(side)]
    boxes = np.array([[[y - 0.8, x - 0.8, y + 0.8, x + 0.8] for y, x in centres]], np.float32)
    inits = [numpy_helper.from_array(a, n) for n, a in [
        ("w", RNG.uniform(0.1, 1.0, (2, 3, 3, 3)).astype(np.float32)),
        ("b", np.array([-0.5, 0.25], np.float32)),
        ("shape", np.array([1, 2, side * side], np.int64)),
        ("boxes", boxes),
        ("max_per_class", np.array([5], np.int64)),
        ("iou", np.array([0.2], np.float32)),
        ("score", np.array([0.6], np.float32)),
    ]]
    nodes = [
        helper.make_node("NonZero", ["m"], ["where"]),
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["c"], ["p"]),
        helper.make_node("Reshape", ["p", "shape"], ["scores"]),
        helper.make_node("NonMaxSuppression",
                         ["boxes", "scores", "max_per_class", "iou", "score"], ["selected"]),
    ]
    graph = helper.make_graph(
        nodes, "detect",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, side, side]),
         helper.make_tensor_value_info("m", TensorProto.FLOAT, [2, 3, 4])],
        [helper.make_tensor_value_info("where", TensorProto.INT64, [3, "n"]),
         helper.make_tensor_value_info("selected", TensorProto.INT64, ["k", 3])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    ort_sess = ort.InferenceSession(model.SerializeToString())
    cm = compile_model(model, target="host", cache_dir=tmp_path / "cache")
    assert cm.build is not None
    dense = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    images = [RNG.standard_normal((1, 3, side, side)), RNG.uniform(0, 2, (1, 3, side, side)),
              np.full((1, 3, side, side), -5.0)]
    masks = [np.where(dense > 0.3, dense, 0), dense, np.zeros_like(dense)]
    rows = set()
    for x, m in zip(images, masks):
        feeds = {"x": x.astype(np.float32), "m": m.astype(np.float32)}
        want = ort_sess.run(None, feeds)
        got = cm.run(None, feeds)
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and g.shape == w.shape
            np.testing.assert_array_equal(g, w)
        rows.add((want[0].shape[1], len(want[1])))
    assert (0, 0) in rows and len(rows) == 3  # zero rows, and some rows
