"""Elementwise unary ops: ONNX node → qnnc import → interpreter, against onnx's reference
evaluator on random inputs, plus the edges the reference gets wrong or does not cover
(overflow-free Sigmoid/Softplus, ties in Round, Clip's bound forms and integer saturation).

Float32 results are compared with rtol 1e-6 (a few ulp): qnnc evaluates chained formulas in
float64 and rounds once, the reference evaluator mostly in float32.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

from compiler.frontend.importer import import_model
from ir.interpreter import run
from ir.ops.elementwise import erf
from ir.ops.registry import OpError, get_op
from ir.types import DType, TensorType

RTOL, ATOL = 1e-6, 1e-7


def onnx_model(
    op: str, inputs: list[np.ndarray | None], opset: int, n_outputs: int = 1,
    out_dtype: Any = None, **attrs: Any,
) -> onnx.ModelProto:
    """A one-node model; None inputs are omitted optional inputs, every other one is a graph
    input (so qnnc runs the op in the interpreter instead of folding it at import).
    Outputs are untyped unless ``out_dtype`` is given (onnxruntime needs it)."""
    names = [f"in{i}" if x is not None else "" for i, x in enumerate(inputs)]
    node = helper.make_node(op, names, [f"out{i}" for i in range(n_outputs)], **attrs)
    graph_inputs = [
        helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(x.dtype), x.shape)
        for n, x in zip(names, inputs) if x is not None
    ]
    out_elem = 0 if out_dtype is None else helper.np_dtype_to_tensor_dtype(np.dtype(out_dtype))
    outs = [helper.make_tensor_value_info(f"out{i}", out_elem, None) for i in range(n_outputs)]
    graph = helper.make_graph([node], "t", graph_inputs, outs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def qnnc_and_reference(
    op: str, inputs: list[np.ndarray | None], opset: int = 22, oracle: str = "",
    **attrs: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """(qnnc's output, the oracle's output) for one node. The oracle is onnx's reference
    evaluator, or onnxruntime where the reference is wrong (its Mean adds in place, so it
    cannot broadcast the first input)."""
    typed = oracle == "onnxruntime"  # onnxruntime needs typed outputs: the first input's
    out_dtype = next(x.dtype for x in inputs if x is not None) if typed else None
    model = onnx_model(op, inputs, opset, out_dtype=out_dtype, **attrs)
    feeds = {f"in{i}": x for i, x in enumerate(inputs) if x is not None}
    if oracle == "onnxruntime":
        sess = ort.InferenceSession(model.SerializeToString(),
                                    providers=["CPUExecutionProvider"])
        (ref,) = sess.run(None, feeds)
    else:
        (ref,) = ReferenceEvaluator(model).run(None, feeds)
    graph = import_model(model)
    assert graph.nodes, "the node was folded at import instead of run by the interpreter"
    got = run(graph, feeds)[graph.outputs[0].name]
    return got, np.asarray(ref)


def check_same(got: np.ndarray, ref: np.ndarray) -> None:
    assert got.dtype == ref.dtype, (got.dtype, ref.dtype)
    assert got.shape == ref.shape
    if got.dtype.kind == "f":
        np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL)
    else:
        np.testing.assert_array_equal(got, ref)


rng = np.random.default_rng(7)
WIDE = rng.uniform(-6, 6, size=(3, 4, 5)).astype(np.float32)
POSITIVE = rng.uniform(0.01, 20, size=(4, 5)).astype(np.float32)

# (op, attributes, input)
FLOAT_CASES: list[tuple[str, dict[str, Any], np.ndarray]] = [
    ("Relu", {}, WIDE),
    ("LeakyRelu", {}, WIDE),
    ("LeakyRelu", {"alpha": 0.3}, WIDE),
    ("Sigmoid", {}, WIDE),
    ("Tanh", {}, WIDE),
    ("HardSigmoid", {}, WIDE),
    ("HardSigmoid", {"alpha": 0.4, "beta": 0.3}, WIDE),
    ("HardSwish", {}, WIDE),
    ("Erf", {}, WIDE),
    ("Gelu", {}, WIDE),
    ("Gelu", {"approximate": "tanh"}, WIDE),
    ("Softplus", {}, WIDE),
    ("Softsign", {}, WIDE),
    ("Elu", {}, WIDE),
    ("Elu", {"alpha": 0.5}, WIDE),
    ("Selu", {}, WIDE),
    ("Selu", {"alpha": 2.0, "gamma": 3.0}, WIDE),
    ("Celu", {}, WIDE),
    ("Celu", {"alpha": 2.5}, WIDE),
    ("ThresholdedRelu", {}, WIDE),
    ("ThresholdedRelu", {"alpha": 2.0}, WIDE),
    ("Mish", {}, WIDE),
    ("Exp", {}, WIDE),
    ("Log", {}, POSITIVE),
    ("Sqrt", {}, POSITIVE),
    ("Reciprocal", {}, POSITIVE),
    ("Sin", {}, WIDE),
    ("Cos", {}, WIDE),
    ("Abs", {}, WIDE),
    ("Neg", {}, WIDE),
    ("Sign", {}, np.array([-2.5, 0.0, 3.0, -0.0], np.float32)),
    ("Floor", {}, WIDE),
    ("Ceil", {}, WIDE),
    ("Round", {}, WIDE),
]


@pytest.mark.parametrize(
    "op,attrs,x", FLOAT_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(FLOAT_CASES)]
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_float_op_matches_reference(
    op: str, attrs: dict[str, Any], x: np.ndarray, dtype: type
) -> None:
    """The oracle is the reference evaluated in float64 and rounded to ``dtype``: evaluated
    in float32 the reference loses digits itself (e.g. 1 + tanh(u) in tanh-Gelu at x < -4)."""
    opset = 20 if op == "Gelu" else 22
    x = x.astype(dtype)
    got, _ = qnnc_and_reference(op, [x], opset, **attrs)
    _, ref64 = qnnc_and_reference(op, [x.astype(np.float64)], opset, **attrs)
    assert got.dtype == dtype and got.shape == x.shape
    if dtype is np.float16:  # one float16 ulp is ~1e-3 of the value
        np.testing.assert_allclose(got, ref64.astype(dtype), rtol=1e-3, atol=1e-6)
    else:
        np.testing.assert_allclose(got, ref64.astype(dtype), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("op", ["Relu", "Abs", "Neg", "Sign"])
@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64])
def test_integer_unary_ops(op: str, dtype: type) -> None:
    x = rng.integers(-100, 100, size=(3, 7)).astype(dtype)
    check_same(*qnnc_and_reference(op, [x]))


def test_not() -> None:
    x = rng.random((4, 5)) > 0.5
    got, ref = qnnc_and_reference("Not", [x])
    check_same(got, ref)
    np.testing.assert_array_equal(got, ~x)


def test_not_rejects_numbers() -> None:
    with pytest.raises(OpError, match="bool"):
        get_op("Not").infer([TensorType((2,), DType.f32)], {})


def test_float_op_rejects_integers() -> None:
    with pytest.raises(OpError, match="float"):
        get_op("Sigmoid").infer([TensorType((2,), DType.i32)], {})


def test_round_ties_to_even() -> None:
    x = np.array([0.5, 1.5, 2.5, -0.5, -2.5, -3.5, 0.49999997, 2.6], np.float32)
    (got,) = get_op("Round").compute([x], {})
    np.testing.assert_array_equal(got, [0, 2, 2, -0.0, -2, -4, 0, 3])
    assert np.signbit(got[3])  # -0.5 rounds to -0


def test_erf_is_accurate_across_both_branches() -> None:
    xs = np.concatenate([np.linspace(-7, 7, 2001), [1.9999999, 2.0, -2.0, 0.0, 30.0]])
    want = np.array([math.erf(v) for v in xs])
    np.testing.assert_allclose(erf(xs), want, rtol=1e-14, atol=1e-300)
    assert np.isnan(erf(np.array([np.nan])))[0]
    np.testing.assert_array_equal(erf(np.array([np.inf, -np.inf])), [1.0, -1.0])


def test_activations_do_not_overflow() -> None:
    """Where exp() would overflow, the float64 formulas still give the exact limits."""
    x = np.array([-100.0, 100.0, -1e4, 1e4], np.float32)

    def compute(op: str, **attrs: Any) -> np.ndarray:
        opdef = get_op(op)
        return opdef.compute([x], opdef.normalize_attrs(attrs))[0]

    tiny = math.exp(-100)  # 3.7e-44, a float32 subnormal
    np.testing.assert_allclose(compute("Sigmoid"), [tiny, 1.0, 0.0, 1.0], rtol=0.05)
    np.testing.assert_allclose(compute("Softplus"), [tiny, 100.0, 0.0, 1e4], rtol=0.05)
    np.testing.assert_allclose(compute("Mish"), [-100 * tiny, 100.0, -0.0, 1e4], rtol=1e-3)
    np.testing.assert_array_equal(compute("Elu"), [-1.0, 100.0, -1.0, 1e4])
    for op in ("Sigmoid", "Softplus", "Mish", "Elu", "Gelu"):
        assert compute(op).dtype == np.float32


def test_nan_and_inf_pass_through() -> None:
    x = np.array([np.nan, np.inf, -np.inf, -1.0, 0.0], np.float32)
    (log,) = get_op("Log").compute([x], {})
    np.testing.assert_array_equal(log, [np.nan, np.inf, np.nan, np.nan, -np.inf])
    (relu,) = get_op("Relu").compute([x], {})
    np.testing.assert_array_equal(relu, [np.nan, np.inf, 0, 0, 0])


# -- Clip -------------------------------------------------------------------------------
def clip_model(
    x: np.ndarray, bounds: list[np.ndarray | None], const: bool, opset: int = 13
) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """Clip with its bounds as initializers (const) or as graph inputs."""
    names = ["x"] + [("" if b is None else f"b{i}") for i, b in enumerate(bounds)]
    while names[-1] == "":
        names.pop()
    dt = helper.np_dtype_to_tensor_dtype(x.dtype)
    node = helper.make_node("Clip", names, ["y"])
    feeds = {"x": x}
    inputs = [helper.make_tensor_value_info("x", dt, x.shape)]
    inits = []
    for i, b in enumerate(bounds):
        if b is None:
            continue
        if const:
            inits.append(onnx.numpy_helper.from_array(b, f"b{i}"))
        else:
            inputs.append(helper.make_tensor_value_info(f"b{i}", dt, b.shape))
            feeds[f"b{i}"] = b
    graph = helper.make_graph([node], "clip", inputs,
                              [helper.make_tensor_value_info("y", dt, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), feeds


@pytest.mark.parametrize("const", [True, False])
@pytest.mark.parametrize("lo,hi", [(-1.0, 2.0), (None, 0.5), (-0.5, None), (None, None),
                                   (3.0, -3.0)])
def test_clip_bound_forms(lo: float | None, hi: float | None, const: bool) -> None:
    x = WIDE
    bounds = [None if b is None else np.array(b, np.float32) for b in (lo, hi)]
    model, feeds = clip_model(x, bounds, const)
    graph = import_model(model)
    got = run(graph, feeds)["y"]
    (ref,) = ReferenceEvaluator(model).run(None, feeds)
    check_same(got, ref)
    if const:  # constant bounds are attributes of one Clip node
        assert [n.op for n in graph.nodes] == ["Clip"]
    if lo is not None and hi is not None and lo > hi:
        np.testing.assert_array_equal(got, np.full_like(x, hi))


def test_clip_opset6_attributes() -> None:
    x = WIDE
    for attrs in ({"min": -1.0, "max": 1.5}, {"max": 0.0}, {"min": 0.0}, {}):
        got, ref = qnnc_and_reference("Clip", [x], 7, **attrs)
        check_same(got, ref)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.int64, np.uint64])
def test_clip_integers(dtype: type) -> None:
    info = np.iinfo(dtype)
    x = np.array([info.min, info.min + 1, 0, 5, info.max - 1, info.max], dtype)
    for lo, hi in [(None, None), (np.array(1, dtype), None), (None, np.array(4, dtype)),
                   (np.array(2, dtype), np.array(3, dtype))]:
        model, feeds = clip_model(x, [lo, hi], const=True)
        got = run(import_model(model), feeds)["y"]
        (ref,) = ReferenceEvaluator(model).run(None, feeds)
        check_same(got, ref)


def test_clip_int64_bound_a_float_cannot_hold() -> None:
    """2**62 + 1 is not a float64: the bound must not be rounded into an attribute."""
    big = 2**62 + 1
    x = np.array([big - 1, big, big + 1, 2**63 - 1], np.int64)
    model, feeds = clip_model(x, [None, np.array(big, np.int64)], const=True)
    got = run(import_model(model), feeds)["y"]
    np.testing.assert_array_equal(got, [big - 1, big, big, big])


def test_clip_integer_ir_saturates_fractional_and_infinite_bounds() -> None:
    x = np.array([-128, -3, 0, 3, 127], np.int8)
    clip = get_op("Clip")
    (got,) = clip.compute([x], {"min": -2.5, "max": 1e30})
    np.testing.assert_array_equal(got, [-2, -2, 0, 3, 127])
    (got,) = clip.compute([x], {"min": -math.inf, "max": 2.5})
    np.testing.assert_array_equal(got, [-128, -3, 0, 2, 2])


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_chunked_float64_formulas_equal_whole_tensor_ones(dtype: type,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Tensors larger than F64_CHUNK are evaluated a chunk at a time: the same values, bit for
    bit, as one whole-tensor evaluation (NaN and inf included)."""
    import ir.ops.elementwise as elementwise

    x = (np.random.default_rng(0).standard_normal(3 * elementwise.F64_CHUNK + 7) * 4).astype(dtype)
    x[[5, 70_000, -1]] = [np.nan, np.inf, -np.inf]
    for name in ("Sigmoid", "HardSigmoid", "HardSwish", "Gelu", "Softplus", "Elu", "Selu"):
        op = get_op(name)
        attrs = {k: v.default for k, v in op.attrs.items()}
        chunked = op.compute([x], attrs)[0]
        monkeypatch.setattr(elementwise, "F64_CHUNK", 1 << 40)
        whole = op.compute([x], attrs)[0]
        monkeypatch.undo()
        assert chunked.dtype == whole.dtype == dtype
        np.testing.assert_array_equal(chunked, whole, err_msg=name)
