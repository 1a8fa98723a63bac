"""The recognize-* passes beyond the IR-text cases: every exporter variant of a chain (all
combinations of association, operand order and constant spelling), chains as the ONNX
frontend really imports them, the constant tolerance at its edge, and BERT's six GELUs.

Tolerance for "same outputs": a recognised op evaluates its formula in float64 and rounds
once, where the chain rounds after every float32 step, so outputs agree to a few float32 ulps
of the largest output: |got - want| <= 1e-5 * |want| + 1e-6 * max|want| (measured: at most
0.4 of that bound through BERT's six layers, under 0.03 of it on a single chain).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from compiler.examples import build_example
from compiler.frontend import import_model
from compiler.passes import run_pipeline
from compiler.passes.patterns import RTOL, close
from ir.build import make_node
from ir.graph import Graph, Value
from ir.interpreter import run
from ir.types import DType, TensorType


def assert_same_outputs(before: Graph, after: Graph, seed: int = 0, scale: float = 3.0) -> None:
    rng = np.random.default_rng(seed)
    feeds = {v.name: (rng.standard_normal(v.type.shape) * scale).astype(v.type.dtype.np)
             for v in before.inputs}
    want, got = run(before, feeds), run(after, feeds)
    assert list(got) == list(want)
    for name, w in want.items():
        w64, g64 = w.astype(np.float64), got[name].astype(np.float64)
        bound = 1e-5 * np.abs(w64) + 1e-6 * np.abs(w64).max()
        assert np.all(np.abs(g64 - w64) <= bound), name


def _c(g: Graph, value: float, dtype: DType = DType.f32) -> Value:
    return g.add_const(np.array(value, dtype.np), "c")


def _op(g: Graph, op: str, *ins: Value, **attrs: object) -> Value:
    return make_node(g, op, list(ins), attrs).outputs[0]


def _graph(build: Callable[[Graph, Value], Value], dtype: DType = DType.f32) -> Graph:
    g = Graph("g")
    x = g.add_input("x", TensorType((2, 8), dtype))
    g.outputs = [build(g, x)]
    return g


def _rewritten(build: Callable[[Graph, Value], Value], passes: list[str],
               dtype: DType = DType.f32) -> tuple[Graph, Graph]:
    before = _graph(build, dtype)
    return before, run_pipeline(_graph(build, dtype), passes + ["dce"], verify=True)


# -- GELU: every combination of the exporters' choices ------------------------------------
def _erf_gelu(scaled: str, half: str, swap: bool) -> Callable[[Graph, Value], Value]:
    def build(g: Graph, x: Value) -> Value:
        def mul(a: Value, b: Value) -> Value:
            return _op(g, "Mul", *((b, a) if swap else (a, b)))

        if scaled == "div":
            u = _op(g, "Div", x, _c(g, 1.4142135))
        else:
            u = mul(x, _c(g, 0.70710677))
        e = _op(g, "Erf", u)
        p = _op(g, "Add", *((_c(g, 1.0), e) if swap else (e, _c(g, 1.0))))
        if half == "first":  # (0.5 * x) * p
            return mul(mul(x, _c(g, 0.5)), p)
        if half == "last":  # (x * p) * 0.5
            return mul(mul(x, p), _c(g, 0.5))
        if half == "inside":  # x * (p * 0.5)
            return mul(x, mul(p, _c(g, 0.5)))
        return _op(g, "Div", mul(x, p), _c(g, 2.0))  # (x * p) / 2

    return build


@pytest.mark.parametrize("scaled,half,swap", list(itertools.product(
    ["div", "mul"], ["first", "last", "inside", "div2"], [False, True])))
def test_every_erf_gelu_variant_becomes_one_gelu(scaled: str, half: str, swap: bool) -> None:
    before, after = _rewritten(_erf_gelu(scaled, half, swap), ["recognize-gelu"])
    assert [(n.op, n.attrs) for n in after.nodes] == [("Gelu", {"approximate": "none"})]
    assert_same_outputs(before, after)


def _tanh_gelu(cube: str, swap: bool) -> Callable[[Graph, Value], Value]:
    def build(g: Graph, x: Value) -> Value:
        def mul(a: Value, b: Value) -> Value:
            return _op(g, "Mul", *((b, a) if swap else (a, b)))

        if cube == "pow":
            x3 = _op(g, "Pow", x, _c(g, 3.0))
        elif cube == "muls":
            x3 = mul(mul(x, x), x)
        else:  # x * x^2
            x3 = mul(x, _op(g, "Pow", x, _c(g, 2.0)))
        s = _op(g, "Add", *((mul(x3, _c(g, 0.044715)), x) if swap
                            else (x, mul(x3, _c(g, 0.044715)))))
        t = _op(g, "Tanh", mul(s, _c(g, math.sqrt(2 / math.pi))))
        p = _op(g, "Add", t, _c(g, 1.0))
        return mul(mul(x, _c(g, 0.5)), p)

    return build


@pytest.mark.parametrize("cube,swap", list(itertools.product(
    ["pow", "muls", "pow2"], [False, True])))
def test_every_tanh_gelu_variant_becomes_one_gelu(cube: str, swap: bool) -> None:
    before, after = _rewritten(_tanh_gelu(cube, swap), ["recognize-gelu"])
    assert [(n.op, n.attrs) for n in after.nodes] == [("Gelu", {"approximate": "tanh"})]
    assert_same_outputs(before, after)


def test_constants_match_within_the_stated_tolerance() -> None:
    sqrt2 = math.sqrt(2.0)
    assert RTOL == 1e-4
    assert close(sqrt2 * (1 + 0.9e-4), sqrt2, DType.f32)
    assert not close(sqrt2 * (1 + 1.1e-4), sqrt2, DType.f32)
    assert not close(1.414, sqrt2, DType.f32)  # 1.5e-4 off: a different function
    # float16 constants round coarser: two float16 ulps are allowed there
    assert close(float(np.float16(0.044715)), 0.044715, DType.f16)
    assert not close(float(np.float16(0.044715)), 0.044715, DType.f32)

    def with_sqrt2(c: float) -> Callable[[Graph, Value], Value]:
        def build(g: Graph, x: Value) -> Value:
            e = _op(g, "Erf", _op(g, "Div", x, _c(g, c)))
            return _op(g, "Mul", _op(g, "Mul", x, _op(g, "Add", e, _c(g, 1.0))), _c(g, 0.5))
        return build

    _, near = _rewritten(with_sqrt2(1.41421), ["recognize-gelu"])  # 2.5e-6 off: matches
    assert near.op_counts() == {"Gelu": 1}
    _, far = _rewritten(with_sqrt2(1.414), ["recognize-gelu"])
    assert "Gelu" not in far.op_counts()


def test_float16_gelu_with_float16_constants() -> None:
    def build(g: Graph, x: Value) -> Value:
        h = DType.f16
        e = _op(g, "Erf", _op(g, "Div", x, _c(g, math.sqrt(2), h)))
        return _op(g, "Mul", _op(g, "Mul", x, _op(g, "Add", e, _c(g, 1.0, h))), _c(g, 0.5, h))

    _, after16 = _rewritten(build, ["recognize-gelu"], DType.f16)
    assert after16.op_counts() == {"Gelu": 1}


# -- SiLU and HardSwish --------------------------------------------------------------------
@pytest.mark.parametrize("swap", [False, True])
def test_silu(swap: bool) -> None:
    def build(g: Graph, x: Value) -> Value:
        s = _op(g, "Sigmoid", x)
        return _op(g, "Mul", *((s, x) if swap else (x, s)))

    before, after = _rewritten(build, ["recognize-silu"])
    assert after.op_counts() == {"SiLU": 1}
    assert_same_outputs(before, after)


@pytest.mark.parametrize("form", ["hardsigmoid", "div6", "mul_sixth", "gate_first"])
def test_hardswish_forms(form: str) -> None:
    def build(g: Graph, x: Value) -> Value:
        if form == "hardsigmoid":
            return _op(g, "Mul", x, _op(g, "HardSigmoid", x, alpha=1 / 6, beta=0.5))
        gate = _op(g, "Clip", _op(g, "Add", x, _c(g, 3.0)), min=0.0, max=6.0)
        if form == "div6":
            return _op(g, "Div", _op(g, "Mul", x, gate), _c(g, 6.0))
        if form == "mul_sixth":
            return _op(g, "Mul", _op(g, "Mul", gate, x), _c(g, 1 / 6))
        return _op(g, "Mul", _op(g, "Div", gate, _c(g, 6.0)), x)

    before, after = _rewritten(build, ["recognize-hardswish"])
    assert after.op_counts() == {"HardSwish": 1}
    assert_same_outputs(before, after)


# -- through the ONNX frontend -------------------------------------------------------------
def _model(nodes: list[onnx.NodeProto], inits: dict[str, np.ndarray], shape: list[int],
           opset: int) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        [onnx.numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _layernorm_model(opset: int) -> onnx.ModelProto:
    """nn.LayerNorm(16) as torch.onnx writes it below opset 17 (axes an input from opset 18)."""
    rng = np.random.default_rng(1)
    inits = {"two": np.array(2.0), "eps": np.array(1e-5),
             "gamma": rng.uniform(0.5, 1.5, 16), "beta": rng.normal(0, 0.1, 16)}
    if opset >= 18:
        axes: dict = {}
        inits_axes = [onnx.numpy_helper.from_array(np.array([-1], np.int64), "axes")]
        mean_in = ["x", "axes"]
        var_in = ["sq", "axes"]
    else:
        axes, inits_axes, mean_in, var_in = {"axes": [-1]}, [], ["x"], ["sq"]
    nodes = [
        helper.make_node("ReduceMean", mean_in, ["mean"], **axes),
        helper.make_node("Sub", ["x", "mean"], ["d"]),
        helper.make_node("Pow", ["d", "two"], ["sq"]),
        helper.make_node("ReduceMean", var_in, ["var"], **axes),
        helper.make_node("Add", ["var", "eps"], ["ve"]),
        helper.make_node("Sqrt", ["ve"], ["std"]),
        helper.make_node("Div", ["d", "std"], ["n"]),
        helper.make_node("Mul", ["n", "gamma"], ["s"]),
        helper.make_node("Add", ["s", "beta"], ["y"]),
    ]
    model = _model(nodes, inits, [2, 5, 16], opset)
    model.graph.initializer.extend(inits_axes)
    return model


@pytest.mark.parametrize("opset", [13, 18])
def test_imported_decomposed_layernorm(opset: int) -> None:
    model = _layernorm_model(opset)
    before = import_model(model)
    after = run_pipeline(import_model(model), ["recognize-layernorm", "dce"], verify=True)
    assert after.op_counts() == {"LayerNormalization": 1}
    (node,) = after.nodes
    assert node.attrs["axis"] == 2 and node.attrs["epsilon"] == pytest.approx(1e-5)
    assert_same_outputs(before, after)


def test_imported_chains_of_every_activation() -> None:
    """GELU (erf), tanh GELU, SiLU and HardSwish in one imported model, one after another."""
    inits = {"sqrt2": math.sqrt(2), "one": 1.0, "half": 0.5, "three": 3.0, "six": 6.0,
             "cubic": 0.044715, "k": math.sqrt(2 / math.pi), "zero": 0.0}
    mk = helper.make_node
    nodes = [
        mk("Div", ["x", "sqrt2"], ["g1"]), mk("Erf", ["g1"], ["g2"]),
        mk("Add", ["g2", "one"], ["g3"]), mk("Mul", ["x", "g3"], ["g4"]),
        mk("Mul", ["g4", "half"], ["a"]),
        mk("Mul", ["a", "half"], ["t1"]), mk("Pow", ["a", "three"], ["t2"]),
        mk("Mul", ["t2", "cubic"], ["t3"]), mk("Add", ["a", "t3"], ["t4"]),
        mk("Mul", ["t4", "k"], ["t5"]), mk("Tanh", ["t5"], ["t6"]),
        mk("Add", ["t6", "one"], ["t7"]), mk("Mul", ["t1", "t7"], ["b"]),
        mk("Sigmoid", ["b"], ["s1"]), mk("Mul", ["b", "s1"], ["c"]),
        mk("Add", ["c", "three"], ["h1"]), mk("Clip", ["h1", "zero", "six"], ["h2"]),
        mk("Mul", ["c", "h2"], ["h3"]), mk("Div", ["h3", "six"], ["y"]),
    ]
    model = _model(nodes, {k: np.array(v) for k, v in inits.items()}, [3, 7], 13)
    before = import_model(model)
    passes = ["recognize-gelu", "recognize-silu", "recognize-hardswish", "dce"]
    after = run_pipeline(import_model(model), passes, verify=True)
    assert [(n.op, n.attrs) for n in after.nodes] == [
        ("Gelu", {"approximate": "none"}), ("Gelu", {"approximate": "tanh"}),
        ("SiLU", {}), ("HardSwish", {})]
    assert after.outputs[0].name == "y"
    assert_same_outputs(before, after, scale=2.0)


# -- BERT ------------------------------------------------------------------------------------
def test_bert_encoder_gelus() -> None:
    before = import_model(build_example("bert_encoder"))
    assert before.op_counts()["Erf"] == 6
    after = run_pipeline(import_model(build_example("bert_encoder")),
                         ["recognize-gelu", "dce"], verify=True)
    counts = after.op_counts()
    assert counts["Gelu"] == 6 and "Erf" not in counts
    assert len(after.nodes) == len(before.nodes) - 6 * 4
    assert [v.name for v in after.outputs] == [v.name for v in before.outputs]
    assert_same_outputs(before, after, scale=1.0)
