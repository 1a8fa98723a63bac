"""Float emitters of the normalisation, vision, pooling and loss ops against the reference
interpreter (f32: rtol 1e-4, atol 1e-5 unless a test says otherwise), several ops per build."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from compiler.quant.calibrate import calibrate
from compiler.quant.quantize import quantize_graph
from ir.build import make_node
from ir.graph import Graph, Value
from ir.interpreter import run as interpret
from ir.types import DType, TensorType
from ir.verifier import verify
from tests.codegen.harness import check_graph, run_c


def f32(*shape: int) -> TensorType:
    return TensorType(tuple(shape), DType.f32)


def multi_graph(name: str, nodes: list[tuple[str, list, dict]]) -> Graph:
    """One graph holding several independent one-node computations (one gcc build): each
    entry's TensorTypes become graph inputs, its arrays constants; all outputs are outputs."""
    g = Graph(name)
    outs = []
    for j, (op, inputs, attrs) in enumerate(nodes):
        vals = []
        for k, x in enumerate(inputs):
            if x is None:
                vals.append(None)
            elif isinstance(x, TensorType):
                vals.append(g.add_input(f"x{j}_{k}", x))
            else:
                vals.append(g.add_const(np.asarray(x), f"c{j}_{k}"))
        outs += make_node(g, op, vals, attrs, name=f"{op.lower()}_{j}").outputs
    g.outputs = outs
    return g


def test_losses(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    t1 = rng.integers(0, 5, (3, 4)).astype(np.int64)
    t1[0, 1] = 2
    w = rng.random(5).astype(np.float32) + 0.5
    nodes = [("NegativeLogLikelihoodLoss", [f32(3, 5, 4), t1], {"reduction": r,
              "ignore_index": ii}) for r in ("none", "sum", "mean") for ii in ([], [2])]
    nodes += [("NegativeLogLikelihoodLoss", [f32(3, 5, 4), t1, w], {"reduction": r,
               "ignore_index": [2]}) for r in ("none", "mean")]
    nodes.append(("NegativeLogLikelihoodLoss",
                  [f32(4, 5), rng.integers(0, 5, 4).astype(np.int32)], {"reduction": "mean"}))
    check_graph(multi_graph("losses", nodes), tmp_path)


def test_norms(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    nodes = [
        ("GroupNormalization", [f32(2, 6, 3, 2), rng.random(6).astype(np.float32),
                                rng.standard_normal(6).astype(np.float32)],
         {"num_groups": 3, "epsilon": 1e-3}),
        ("GroupNormalization", [f32(1, 4, 5), rng.random(2).astype(np.float32),
                                rng.standard_normal(2).astype(np.float32)], {"num_groups": 2}),
        ("GroupNormalization", [f32(3, 4), rng.random(1).astype(np.float32),
                                rng.standard_normal(1).astype(np.float32)], {"num_groups": 1}),
        ("RMSNormalization", [f32(2, 3, 8), f32(8)], {"axis": 2}),
        ("RMSNormalization", [f32(2, 3, 4), rng.random((3, 4)).astype(np.float32)],
         {"axis": 1, "epsilon": 0.1}),
        # blocks of 16 or more: the statistics' whole sixteen-value blocks and a tail
        ("GroupNormalization", [f32(1, 4, 5, 9), rng.random(4).astype(np.float32),
                                rng.standard_normal(4).astype(np.float32)], {"num_groups": 2}),
        ("RMSNormalization", [f32(2, 3, 37), f32(37)], {"axis": 2}),
    ]
    check_graph(multi_graph("norms", nodes), tmp_path)


def _layer(g: Graph, op: str, x: Value, rng: np.random.Generator, name: str) -> Value:
    if op == "Conv":
        w = g.add_const(rng.standard_normal((4, 4, 3, 3)).astype(np.float32) * 0.3, f"{name}_w")
        b = g.add_const(rng.standard_normal(4).astype(np.float32), f"{name}_b")
        attrs = {"strides": [1, 1], "pads": [1, 1, 1, 1], "dilations": [1, 1], "group": 1}
        return make_node(g, "Conv", [x, w, b], attrs, name=name).outputs[0]
    w = g.add_const(rng.standard_normal((8, 8)).astype(np.float32) * 0.3, f"{name}_w")
    return make_node(g, "MatMul", [x, w], name=name).outputs[0]


@pytest.mark.parametrize("layer,norm,shape,attrs", [
    ("Conv", "GroupNormalization", (1, 4, 5, 5), {"num_groups": 2}),
    ("MatMul", "RMSNormalization", (2, 3, 8), {"axis": 2}),
])
def test_norm_is_a_float_island_in_int8(layer: str, norm: str, shape: tuple, attrs: dict,
                                        tmp_path: Path) -> None:
    """layer -> norm -> layer quantises like LayerNormalization: both layers integer, the
    norm in f32 between a Dequantize and a Quantize; the host C computes the quantised graph
    as the interpreter does, integers exactly (the float island requantises identically)."""
    rng = np.random.default_rng(5)
    g = Graph(f"{layer}_{norm}")
    x = g.add_input("x", f32(*shape))
    h = _layer(g, layer, x, rng, "first")
    c = shape[1] if norm == "GroupNormalization" else shape[-1]
    n = attrs.get("num_groups", c)
    params = [g.add_const(rng.random(n).astype(np.float32) + 0.5, "scale")]
    if norm == "GroupNormalization":
        params.append(g.add_const(rng.standard_normal(n).astype(np.float32), "bias"))
    h = make_node(g, norm, [h, *params], attrs, name="norm").outputs[0]
    g.outputs = [_layer(g, layer, h, rng, "second")]
    calib = {"x": rng.standard_normal((8, *shape)).astype(np.float32)}
    q = quantize_graph(g, calibrate(g, calib, "minmax"))
    verify(q)
    ops = [nd.op for nd in q.nodes]
    assert ops.index("Dequantize") < ops.index(norm) < ops.index("Quantize", 1)
    assert layer not in ops and ops.count(norm) == 1
    assert all(nd.op not in ("Conv", "MatMul", "Gemm") for nd in q.nodes)
    # the integer result of the second layer is an output too, so it is compared exactly
    last_int = next(nd for nd in q.nodes if nd.op == "Dequantize" and nd.outputs[0] in
                    q.outputs).inputs[0]
    q.outputs = [*q.outputs, last_int]
    feeds = {"x": np.random.default_rng(10).standard_normal(shape).astype(np.float32)}
    want = interpret(q, feeds)
    got = run_c(q, feeds, tmp_path)
    np.testing.assert_array_equal(got[last_int.name], want[last_int.name])
    np.testing.assert_allclose(got[q.outputs[0].name], want[q.outputs[0].name], rtol=1e-6,
                               atol=1e-6)


def test_lp_pools(tmp_path: Path) -> None:
    win = {"kernel_shape": [2, 3], "strides": [1, 2], "dilations": [1, 1],
           "pads": [1, 0, 0, 1], "ceil_mode": False}
    nodes = [("LpPool", [f32(1, 2, 5, 6)], {**win, "p": p}) for p in (1, 2, 3)]
    nodes += [
        ("LpPool", [f32(2, 3, 7)], {"kernel_shape": [3], "strides": [2], "dilations": [2],
                                    "pads": [1, 1], "ceil_mode": True, "p": 2}),
        ("GlobalLpPool", [f32(2, 3, 4, 2)], {"p": 2}),
        ("GlobalLpPool", [f32(1, 2, 5)], {"p": 3}),
    ]
    check_graph(multi_graph("lp_pools", nodes), tmp_path)


def _grid(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """Normalised coordinates, some outside [-1, 1] so the padding modes matter."""
    return rng.uniform(-1.3, 1.3, shape).astype(np.float32)


def test_grid_sample_and_affine_grid(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    nodes = [("GridSample", [f32(2, 2, 4, 5), _grid(rng, 2, 3, 4, 2)],
              {"mode": m, "padding_mode": p, "align_corners": al})
             for m in ("linear", "nearest", "cubic") for p in ("zeros", "border", "reflection")
             for al in (False, True)]
    nodes += [
        ("GridSample", [f32(1, 2, 3, 4, 3), _grid(rng, 1, 2, 2, 3, 3)], {"mode": "linear"}),
        ("AffineGrid", [f32(2, 2, 3)], {"size": [2, 1, 3, 4], "align_corners": False}),
        ("AffineGrid", [f32(1, 3, 4)], {"size": [1, 1, 2, 3, 4], "align_corners": True}),
    ]
    check_graph(multi_graph("grid_sample", nodes), tmp_path)


def test_rois_unpool_and_deform_conv(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    rois = np.array([[0.5, 1.0, 6.2, 5.5], [2.0, 0.0, 3.0, 2.5], [-2.0, 1.0, 9.0, 12.0]],
                    np.float32)
    batch = np.array([1, 0, 1], np.int64)
    nodes = [("RoiAlign", [f32(2, 3, 6, 7), rois, batch],
              {"mode": m, "output_height": 2, "output_width": 3, "sampling_ratio": sr,
               "spatial_scale": 0.8, "half_pixel": hp})
             for m, sr, hp in (("avg", 0, True), ("max", 2, True), ("avg", 2, False))]
    mroi = np.array([[1, 0.4, 1.2, 5.6, 4.4], [0, 2.0, 2.0, 2.0, 3.0]], np.float32)
    nodes.append(("MaxRoiPool", [f32(2, 2, 6, 7), mroi], {"pooled_shape": [2, 3],
                                                           "spatial_scale": 1.0}))
    idx = np.array([0, 3, 6, 10, 14, 15, 2, 2]).reshape(1, 2, 2, 2)  # repeats, last wins
    idx[0, 1] += 16
    nodes.append(("MaxUnpool", [f32(1, 2, 2, 2), idx], {"output_shape": [1, 2, 4, 4]}))
    conv = {"strides": [1, 2], "pads": [1, 0, 1, 1], "dilations": [1, 1], "group": 2,
            "offset_group": 2}
    off = (rng.standard_normal((1, 2 * 2 * 6, 5, 2)) * 1.5).astype(np.float32)
    mask = rng.random((1, 2 * 6, 5, 2)).astype(np.float32)
    w = rng.standard_normal((4, 2, 2, 3)).astype(np.float32)
    nodes += [
        ("DeformConv", [f32(1, 4, 4, 5), w, off, rng.standard_normal(4).astype(np.float32),
                        mask], conv),
        ("DeformConv", [f32(1, 4, 4, 5), w[:, :, :, :2].copy(), f32(1, 2 * 4, 4, 6)],
         {**conv, "strides": [1, 1], "pads": [1, 1, 0, 1], "group": 2, "offset_group": 1}),
    ]
    check_graph(multi_graph("rois", nodes), tmp_path)


def test_causal_conv_with_state(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    w = rng.standard_normal((3, 1, 4)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    nodes = [
        ("CausalConvWithState", [f32(2, 3, 5), w, b, f32(2, 3, 3)], {"activation": "silu"}),
        ("CausalConvWithState", [f32(1, 3, 2), w], {}),  # shorter than the state
        ("CausalConvWithState", [f32(1, 3, 1), w, None, f32(1, 3, 3)], {}),  # one step
        ("CausalConvWithState", [f32(1, 2, 3), w[:2, :, :1].copy()], {}),  # k = 1
    ]
    check_graph(multi_graph("causal_conv", nodes), tmp_path)
