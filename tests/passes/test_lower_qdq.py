"""lower-qdq on random QDQ sandwiches, against the float sandwich it replaces.

The integer ops requantise in fixed point with ties rounded up, where the float sandwich's
QuantizeLinear rounds ties to even (DESIGN.md, integer semantics), so codes may differ by one
step, never more. Scales here are round decimals, which make such ties common, so the
one-step bound is exercised; the IR-text cases (cases/lower-qdq.ir) check bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

from compiler.passes import run_pipeline
from ir import qmath
from ir.build import make_node
from ir.graph import Graph, Value
from ir.interpreter import run
from ir.types import DType, TensorType

QL = {"axis": 0, "block_size": 0, "precision": "f32"}


def _dql(g: Graph, x: Value, scale: np.ndarray, zp: np.ndarray, axis: int = 0) -> Value:
    s, z = g.add_const(scale.astype(np.float32), "s"), g.add_const(zp, "z")
    return make_node(g, "DequantizeLinear", [x, s, z],
                     {"axis": axis, "block_size": 0, "dtype": "f32"}).outputs[0]


def _ql(g: Graph, x: Value, scale: float, zp: np.ndarray) -> Value:
    s, z = g.add_const(np.float32(scale), "s"), g.add_const(zp, "z")
    return make_node(g, "QuantizeLinear", [x, s, z], QL).outputs[0]


def _qdq(g: Graph, x: Value, scale: float, zp: np.ndarray) -> Value:
    return _dql(g, _ql(g, x, scale, zp), np.float32(scale), zp)


def conv_block(rng: np.random.Generator, group: int, act: str, bias: str) -> Graph:
    """Q → DQ → Conv (per-channel int8 weights, i32/float/no bias) → act → Q → DQ."""
    g = Graph("conv")
    x = g.add_input("x", TensorType((1, 4, 5, 5), DType.f32))
    xd = _qdq(g, x, 0.05, np.uint8(128))
    w = rng.integers(-127, 128, (6, 4 // group, 3, 3)).astype(np.int8)
    ws = np.round(rng.uniform(0.002, 0.02, 6), 3).astype(np.float32)
    wd = _dql(g, g.add_const(w, "w"), ws, np.zeros(6, np.int8))
    ins = [xd, wd]
    if bias == "i32":
        bs = (np.float32(0.05) * ws).astype(np.float32)
        b = rng.integers(-2000, 2000, 6).astype(np.int32)
        ins.append(_dql(g, g.add_const(b, "b"), bs, np.zeros(6, np.int32)))
    elif bias == "float":
        ins.append(g.add_const(rng.standard_normal(6).astype(np.float32), "b"))
    y = make_node(g, "Conv", ins, {"pads": [1, 1, 1, 1], "group": group, "strides": [1, 1],
                                    "dilations": [1, 1]}).outputs[0]
    if act == "relu":
        y = make_node(g, "Relu", [y]).outputs[0]
    elif act == "clip":
        y = make_node(g, "Clip", [y], {"min": -0.5, "max": 1.0}).outputs[0]
    g.outputs = [_qdq(g, y, 0.04, np.uint8(100))]
    return g


def codes(y: np.ndarray, scale: float, zp: int) -> np.ndarray:
    return qmath.quantize(y, scale, zp, DType.u8).astype(np.int64)


def max_step_diff(before: Graph, after: Graph, scale: float, zp: int, seed: int) -> int:
    rng = np.random.default_rng(seed)
    worst = 0
    for _ in range(4):
        feeds = {v.name: (rng.standard_normal(v.type.shape) * 3).astype(np.float32)
                 for v in before.inputs}
        want, got = run(before, feeds), run(after, feeds)
        for name in want:
            d = np.abs(codes(got[name], scale, zp) - codes(want[name], scale, zp))
            worst = max(worst, int(d.max()))
    return worst


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("act", ["none", "relu", "clip"])
@pytest.mark.parametrize("bias", ["i32", "float", "none"])
def test_conv_within_one_step(seed: int, act: str, bias: str) -> None:
    rng = np.random.default_rng(seed)
    group = [1, 2, 1, 2][seed]
    before = conv_block(rng, group, act, bias)
    after = run_pipeline(conv_block(np.random.default_rng(seed), group, act, bias),
                         ["lower-qdq", "fold-constants", "dce"], verify=True)
    assert after.op_counts() == {"Quantize": 1, "QConv": 1, "Dequantize": 1}
    assert max_step_diff(before, after, 0.04, 100, seed) <= 1


def test_stored_bias_kept_and_mismatched_bias_rederived() -> None:
    rng = np.random.default_rng(0)
    g = run_pipeline(conv_block(rng, 1, "none", "i32"), ["lower-qdq"])
    (qconv,) = [n for n in g.nodes if n.op == "QConv"]
    b = qconv.inputs[2]
    assert b is not None and b.name == "b"  # the model's own constant, unchanged
    # the same bias stored at twice the scale: its float value is requantised to s_x*s_w
    g2 = conv_block(np.random.default_rng(0), 1, "none", "i32")
    (dq,) = [n for n in g2.nodes if n.op == "DequantizeLinear" and n.inputs[0].name == "b"]
    scale = dq.inputs[1]
    assert scale is not None and scale.data is not None
    scale.data = scale.data * 2
    stored = np.asarray(dq.inputs[0].data, np.int64)
    g2 = run_pipeline(g2, ["lower-qdq"])
    (qconv,) = [n for n in g2.nodes if n.op == "QConv"]
    b2 = qconv.inputs[2]
    assert b2 is not None and b2.data is not None
    assert np.array_equal(b2.data, 2 * stored)
    assert b2.type.quant is not None and not any(b2.type.quant.zero_point)


def test_lower_before_fold_constants() -> None:
    """Folding the weights' DequantizeLinear first leaves float weights: the Conv stays a
    float island (still correct, bit for bit), which is why lower-qdq runs first."""
    rng = np.random.default_rng(1)
    before = conv_block(rng, 1, "relu", "i32")
    after = run_pipeline(conv_block(np.random.default_rng(1), 1, "relu", "i32"),
                         ["fold-constants", "lower-qdq", "dce"], verify=True)
    ops = after.op_counts()
    assert "QConv" not in ops and ops["Conv"] == 1
    feeds = {"x": np.random.default_rng(2).standard_normal((1, 4, 5, 5)).astype(np.float32)}
    for name, w in run(before, feeds).items():
        assert run(after, feeds)[name].tobytes() == w.tobytes()


def test_quantized_codes_read_raw_stay_quantizelinear() -> None:
    """A QuantizeLinear whose codes something other than a DequantizeLinear reads (here a
    Cast, which knows nothing of params) is left alone, and so are the graph's names."""
    g = Graph("raw")
    x = g.add_input("x", TensorType((4,), DType.f32))
    q = _ql(g, x, 0.1, np.uint8(3))
    y = make_node(g, "Cast", [q], {"to": "i32"}, out_names=["y"]).outputs[0]
    g.outputs = [y]
    after = run_pipeline(g, ["lower-qdq"], verify=True)
    assert after.op_counts() == {"QuantizeLinear": 1, "Cast": 1}
    assert [v.name for v in after.outputs] == ["y"]


def test_gemm_alpha_stays_float() -> None:
    """Gemm with alpha != 1 has no QLinear form here: the sandwich stays, results unchanged."""
    g = Graph("alpha")
    x = g.add_input("x", TensorType((2, 3), DType.f32))
    xd = _qdq(g, x, 0.05, np.uint8(128))
    w = np.arange(-6, 6, 2, dtype=np.int8).reshape(2, 3)
    wd = _dql(g, g.add_const(w, "w"), np.float32(0.01), np.int8(0))
    y = make_node(g, "Gemm", [xd, wd], {"alpha": 0.5, "beta": 1.0, "transA": 0,
                                           "transB": 1}).outputs[0]
    g.outputs = [_qdq(g, y, 0.03, np.uint8(128))]
    feeds = {"x": np.linspace(-3, 3, 6, dtype=np.float32).reshape(2, 3)}
    want = run(g, feeds)
    after = run_pipeline(g, ["lower-qdq", "fold-constants", "dce"], verify=True)
    ops = after.op_counts()
    assert ops.get("Gemm") == 1 and "QLinear" not in ops
    assert all(run(after, feeds)[k].tobytes() == v.tobytes() for k, v in want.items())
