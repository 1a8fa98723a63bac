"""One quantised form per op: the calibration quantiser and the QDQ lowering apply the same
forms (ir/qforms.py), so a model reachable both ways becomes the same IR.

The float model below is quantised by onnxruntime's ``quantize_static`` (QDQ, per-channel
int8 weights, u8 activations); qnnc lowers that file with lower-qdq. The same float model is
then quantised by qnnc's calibration quantiser with the scales and zero points onnxruntime
chose (``QuantConfig.params``), bias correction off. Both IRs must be the same graph: same
ops in the same order, same attributes, same types, same constants. Names differ (onnxruntime
renames nodes and tensors) and so does one piece of metadata: the scale a bias constant
carries, which onnxruntime rounds to float32 (qnnc keeps the exact product s_x·s_w[c]); the
bias codes themselves must be equal, and the Q-ops never read that scale (their accumulator
scale is s_x·s_w[c] by definition). The model avoids what onnxruntime's QDQ format cannot say
the way qnnc does: a Relu after a Conv (onnxruntime drops it into the output range) and a
Concat of differently quantised inputs (the lowering keeps the model's float rounding there).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler.frontend import load
from compiler.passes import DEFAULT_PIPELINE, run_pipeline
from compiler.quant.quantize import QuantConfig, quantize_graph
from ir import qmath
from ir.graph import Graph, Node, Value
from ir.ops.registry import OPS
from ir.qforms import lut, on_codes
from ir.text import parse_graph, print_graph
from ir.types import DType

ort_quant = pytest.importorskip("onnxruntime.quantization")


def _w(rng: np.random.Generator, *shape: int) -> np.ndarray:
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def float_model() -> onnx.ModelProto:
    """Conv, MaxPool, depthwise Conv, residual Add, Concat, Sigmoid table, Mul of two
    activations, AveragePool, 1x1 Conv, GlobalAveragePool, Flatten, Gemm."""
    rng = np.random.default_rng(0)
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        n("MaxPool", ["c1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        n("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], group=8),
        n("Add", ["c2", "p1"], ["s"]),
        n("Concat", ["s", "s"], ["cat"], axis=1),
        n("Sigmoid", ["s"], ["sg"]),
        n("Concat", ["sg", "sg"], ["sgc"], axis=1),
        n("Mul", ["cat", "sgc"], ["m"]),
        n("AveragePool", ["m"], ["a"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        n("Conv", ["a", "w3", "b3"], ["c3"]),
        n("GlobalAveragePool", ["c3"], ["g"]),
        n("Flatten", ["g"], ["f"]),
        n("Gemm", ["f", "fw", "fb"], ["y"], transB=1),
    ]
    weights = {"w1": _w(rng, 8, 3, 3, 3), "w2": _w(rng, 8, 1, 3, 3), "w3": _w(rng, 16, 16, 1, 1),
               "fw": _w(rng, 10, 16)}
    for name, size in (("b1", 8), ("b2", 8), ("b3", 16), ("fb", 10)):
        weights[name] = (rng.standard_normal(size) * 0.1).astype(np.float32)
    g = helper.make_graph(
        nodes, "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 3, 16, 16))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, 10))],
        initializer=[numpy_helper.from_array(v, k) for k, v in weights.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


class _Reader(ort_quant.CalibrationDataReader):
    def __init__(self) -> None:
        rng = np.random.default_rng(1)
        self._it = iter([{"x": rng.standard_normal((1, 3, 16, 16)).astype(np.float32)}
                         for _ in range(8)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def ort_params(model: onnx.ModelProto) -> dict[str, tuple[float, int]]:
    """The (scale, zero point) onnxruntime chose for each float tensor it quantised."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return {q.input[0].removesuffix("_QuantizeLinear_Input"):
            (float(inits[q.input[1]]), int(inits[q.input[2]]))
            for q in model.graph.node if q.op_type == "QuantizeLinear"}


def canonical(graph: Graph) -> str:
    """``graph`` as text with every name replaced by its position (constants in the order
    first read) and bias scales rounded to float32 (see the module doc)."""
    names: dict[int, str] = {}

    def name(v: Value) -> str:
        return names.setdefault(id(v), f"v{len(names)}")

    for v in graph.inputs:
        name(v)
    order = []
    for node in graph.nodes:
        for v in node.inputs:
            if v is not None and v.is_const and id(v) not in names:
                order.append(v)
            if v is not None:
                name(v)
        for v in node.outputs:
            name(v)
    g = Graph("canonical")
    for v in graph.inputs:
        g.inputs.append(Value(names[id(v)], v.type))
    new: dict[int, Value] = {id(v): g.inputs[k] for k, v in enumerate(graph.inputs)}
    for c in order:
        t = c.type
        if t.dtype is DType.i32 and t.quant is not None:
            scale = tuple(float(np.float32(s)) for s in t.quant.scale)
            t = type(t)(t.shape, t.dtype, type(t.quant)(scale, t.quant.zero_point, t.quant.axis))
        new[id(c)] = Value(names[id(c)], t, c.data)
        g.constants.append(new[id(c)])
    for node in graph.nodes:
        outs = [Value(names[id(v)], v.type) for v in node.outputs]
        new.update({id(v): o for v, o in zip(node.outputs, outs)})
        g.nodes.append(Node(node.op, [None if v is None else new[id(v)] for v in node.inputs],
                            outs, node.attrs, sources=[(op, "") for op, _ in node.origin()]))
    g.outputs = [new[id(v)] for v in graph.outputs]
    return print_graph(g, max_inline=None)


def test_calibration_and_qdq_lowering_make_the_same_ir(tmp_path: Path) -> None:
    src, qdq = tmp_path / "float.onnx", tmp_path / "qdq.onnx"
    onnx.save(float_model(), str(src))
    ort_quant.quantize_static(
        str(src), str(qdq), _Reader(), quant_format=ort_quant.QuantFormat.QDQ,
        per_channel=True, reduce_range=False, activation_type=ort_quant.QuantType.QUInt8,
        weight_type=ort_quant.QuantType.QInt8,
        calibrate_method=ort_quant.CalibrationMethod.MinMax)
    lowered = run_pipeline(load(qdq), ["lower-qdq", "fold-constants", "dce"], verify=True)
    float_graph = run_pipeline(load(src), DEFAULT_PIPELINE, verify=True)
    params = ort_params(onnx.load(str(qdq)))
    calibrated = quantize_graph(float_graph, {}, QuantConfig(params=params,
                                                             bias_correction=False))
    ops = [n.op for n in lowered.nodes]
    assert ops == ["Quantize", "QConv", "MaxPool", "QConv", "QAdd", "Concat", "QLut", "Concat",
                   "QMul", "QAveragePool", "QConv", "QGlobalAveragePool", "Reshape",
                   "QLinear", "Dequantize"]
    assert canonical(calibrated) == canonical(lowered)


# -- Pad's fill value: one conversion, saturating --------------------------------------------


PAD_FLOAT = """graph @pad(%x: f32[1,1,2,2]) -> (%y) {
  %p: f32[1,1,4,4] = Pad(%x) {mode="constant", pads=[0,0,1,1,0,0,1,1], value=5.0}
  %y: f32[1,1,4,4] = Relu(%p)
}
"""

Q8 = 'axis=0, dtype="u8", scale=[0.00390625], zero_point=[0]'  # [0, 255/256] as u8
PAD_QDQ = f"""graph @pad(%x: f32[1,1,2,2]) -> (%y) {{
  %xq: u8[1,1,2,2]{{scale=0.00390625, zp=0}} = Quantize(%x) {{{Q8}}}
  %xd: f32[1,1,2,2] = Dequantize(%xq)
  %p: f32[1,1,4,4] = Pad(%xd) {{mode="constant", pads=[0,0,1,1,0,0,1,1], value=5.0}}
  %pq: u8[1,1,4,4]{{scale=0.00390625, zp=0}} = Quantize(%p) {{{Q8}}}
  %y: f32[1,1,4,4] = Dequantize(%pq)
}}
"""


def _pad_value(graph: Graph) -> float:
    (pad,) = [n for n in graph.nodes if n.op == "Pad"]
    assert pad.x is not None and pad.x.type.dtype is DType.u8
    return float(pad.attrs["value"])


def test_pad_fill_value_saturates_on_both_paths() -> None:
    """5.0 on a [0, 1] range is code 1275 (1280 at scale 1/256) unsaturated; both paths must
    store 255, so the padded cells read back as the top of the range, as QuantizeLinear
    would make them."""
    calibrated = quantize_graph(parse_graph(PAD_FLOAT), {"x": (0.0, 1.0), "p": (0.0, 1.0),
                                                         "y": (0.0, 1.0)})
    lowered = run_pipeline(parse_graph(PAD_QDQ), ["lower-qdq"], verify=True)
    assert _pad_value(calibrated) == _pad_value(lowered) == 255.0
    assert qmath.quantize(np.float32(5.0), 1.0 / 255.0, 0, DType.u8) == 255


# -- the traits the forms rely on ---------------------------------------------------------------


def test_traits_are_consistent() -> None:
    for name, op in OPS.items():
        if op.staged:
            assert op.tiled is not None, f"{name}: staged ops are tiled"
        if op.clamp is not None:  # an activation a producer absorbs is also a table alone
            assert op.quantized is lut, name
        if op.moves_data:
            assert op.flops is None, f"{name}: moving data counts no FLOPs"
        if op.quantized is on_codes:
            assert len(op.operands) >= 1 and op.num_outputs != 0, name
