"""The golden corpus: small models built by code in the repo, and how each is compiled.

Every model is rebuilt from code on each run (nothing but its outputs is stored), so the
recorded manifests keep a sha256 of the built graph: if a builder changes, the test says so
instead of reporting a mysterious output regression. Calibration data for INT8 is drawn
from a seeded generator for the same reason, and its sha256 is kept too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from compiler.api import CompiledModel, compile_model
from compiler.examples import build_example
from compiler.golden import compile_target

DATA = Path(__file__).resolve().parent / "data"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
OPSET = [helper.make_opsetid("", 17)]
#: golden targets × precisions tried for every model; combinations a target cannot compile
#: yet (e.g. INT8 on host before its integer emitters exist) are skipped, not recorded
TARGETS = ("interp", "host", "ascend910b", "ascend310p", "mlu370x8", "thinker2")
#: the accelerator targets run INT8 kernels only
INT8_ONLY = ("ascend910b", "ascend310p", "mlu370x8", "thinker2")
PRECISIONS = ("f32", "int8")
CALIB_SAMPLES = 16


def _w(rng: np.random.Generator, name: str, shape: tuple[int, ...], fan_in: int
       ) -> onnx.TensorProto:
    a = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    return numpy_helper.from_array(a, name)


def _model(name: str, nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto],
           inputs: dict[str, list[int]], outputs: dict[str, list[int]]) -> onnx.ModelProto:
    vi = helper.make_tensor_value_info
    graph = helper.make_graph(
        nodes, name, [vi(k, TensorProto.FLOAT, s) for k, s in inputs.items()],
        [vi(k, TensorProto.FLOAT, s) for k, s in outputs.items()], inits)
    model = helper.make_model(graph, opset_imports=OPSET, producer_name="qnnc-golden-corpus")
    onnx.checker.check_model(model)
    return model


def conv_bn_relu() -> onnx.ModelProto:
    """x[1,3,6,6] -> Conv 3x3 (4 ch, pad 1) -> BatchNormalization -> Relu -> y[1,4,6,6]."""
    rng = np.random.default_rng(1)
    c = 4
    inits = [_w(rng, "w", (c, 3, 3, 3), 27),
             numpy_helper.from_array((rng.standard_normal(c) * 0.1).astype(np.float32), "b"),
             numpy_helper.from_array(rng.uniform(0.5, 1.5, c).astype(np.float32), "gamma"),
             numpy_helper.from_array((rng.standard_normal(c) * 0.1).astype(np.float32), "beta"),
             numpy_helper.from_array((rng.standard_normal(c) * 0.1).astype(np.float32), "mean"),
             numpy_helper.from_array(rng.uniform(0.5, 2.0, c).astype(np.float32), "var")]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], "conv", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["n"],
                         "bn", epsilon=1e-5),
        helper.make_node("Relu", ["n"], ["y"], "relu"),
    ]
    return _model("conv_bn_relu", nodes, inits, {"x": [1, 3, 6, 6]}, {"y": [1, 4, 6, 6]})


def depthwise() -> onnx.ModelProto:
    """x[1,4,8,8] -> depthwise 3x3 stride 2 -> ReLU6 (Clip) -> pointwise 1x1 (8 ch) -> y."""
    rng = np.random.default_rng(2)
    inits = [_w(rng, "dw", (4, 1, 3, 3), 9), _w(rng, "pw", (8, 4, 1, 1), 4),
             numpy_helper.from_array(np.float32(0.0), "lo"),
             numpy_helper.from_array(np.float32(6.0), "hi")]
    nodes = [
        helper.make_node("Conv", ["x", "dw"], ["d"], "dwconv", group=4, pads=[1, 1, 1, 1],
                         strides=[2, 2]),
        helper.make_node("Clip", ["d", "lo", "hi"], ["r"], "relu6"),
        helper.make_node("Conv", ["r", "pw"], ["y"], "pwconv"),
    ]
    return _model("depthwise", nodes, inits, {"x": [1, 4, 8, 8]}, {"y": [1, 8, 4, 4]})


def attention() -> onnx.ModelProto:
    """x[1,4,8] -> q,k,v projections -> softmax(q k^T / sqrt(8)) -> probs @ v.
    Two outputs: the attention probabilities and the attended values."""
    rng = np.random.default_rng(3)
    d = 8
    inits = [_w(rng, n, (d, d), d) for n in ("wq", "wk", "wv")]
    inits.append(numpy_helper.from_array(np.float32(1.0 / np.sqrt(d)), "scale"))
    nodes = [
        helper.make_node("MatMul", ["x", "wq"], ["q"], "q_proj"),
        helper.make_node("MatMul", ["x", "wk"], ["k"], "k_proj"),
        helper.make_node("MatMul", ["x", "wv"], ["v"], "v_proj"),
        helper.make_node("Transpose", ["k"], ["kt"], "k_t", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["s"], "scores"),
        helper.make_node("Mul", ["s", "scale"], ["ss"], "scaled"),
        helper.make_node("Softmax", ["ss"], ["probs"], "softmax", axis=-1),
        helper.make_node("MatMul", ["probs", "v"], ["out"], "attend"),
    ]
    return _model("attention", nodes, inits, {"x": [1, 4, d]},
                  {"probs": [1, 4, 4], "out": [1, 4, d]})


def residual() -> onnx.ModelProto:
    """x[1,4,6,6] -> Conv 3x3 -> Relu -> Conv 3x3 -> Add(x) -> Relu -> y (a ResNet block)."""
    rng = np.random.default_rng(4)
    inits = [_w(rng, "w1", (4, 4, 3, 3), 36), _w(rng, "w2", (4, 4, 3, 3), 36)]
    pads = [1, 1, 1, 1]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], "conv1", pads=pads),
        helper.make_node("Relu", ["c1"], ["r1"], "relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], "conv2", pads=pads),
        helper.make_node("Add", ["c2", "x"], ["s"], "add"),
        helper.make_node("Relu", ["s"], ["y"], "relu2"),
    ]
    return _model("residual", nodes, inits, {"x": [1, 4, 6, 6]}, {"y": [1, 4, 6, 6]})


def tiny_cnn() -> onnx.ModelProto:
    return build_example("tiny_cnn", seed=0)


def digits_cnn() -> onnx.ModelProto:
    return onnx.load(FIXTURES / "digits_cnn.onnx")


@dataclass(frozen=True)
class Case:
    """One corpus model: its builder and the value range of its (single) input."""

    name: str
    build: Callable[[], onnx.ModelProto]
    low: float = -1.0  # inputs are uniform in [low, high): 0..1 for image-like inputs
    high: float = 1.0

    def model(self) -> onnx.ModelProto:
        return self.build()

    def data(self, model: onnx.ModelProto, count: int, seed: int) -> dict[str, np.ndarray]:
        """``count`` seeded samples per input, stacked on a leading axis."""
        rng = np.random.default_rng(seed)
        out = {}
        for vi in model.graph.input:
            shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
            out[vi.name] = rng.uniform(self.low, self.high, (count, *shape)).astype(np.float32)
        return out

    def inputs(self, model: onnx.ModelProto) -> dict[str, np.ndarray]:
        return {k: v[0] for k, v in self.data(model, 1, seed=100).items()}

    def calibration(self, model: onnx.ModelProto) -> dict[str, np.ndarray]:
        return self.data(model, CALIB_SAMPLES, seed=200)


CASES = [
    Case("tiny_cnn", tiny_cnn),
    Case("digits_cnn", digits_cnn, 0.0, 1.0),
    Case("conv_bn_relu", conv_bn_relu),
    Case("depthwise", depthwise),
    Case("attention", attention),
    Case("residual", residual),
]


def combos() -> list[tuple[Case, str, str]]:
    return [(c, t, p) for c in CASES for t in TARGETS for p in PRECISIONS
            if not (t in INT8_ONLY and p != "int8")]


def folder(case: Case, target: str, precision: str) -> Path:
    return DATA / case.name / f"{target}-{precision}"


def graph_sha256(model: onnx.ModelProto) -> str:
    """sha256 of the graph (nodes, weights, I/O) — not of the header, which onnx versions
    fill differently."""
    return hashlib.sha256(model.graph.SerializeToString(deterministic=True)).hexdigest()


def arrays_sha256(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k} {a.dtype.str} {list(a.shape)}\n".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def compile_case(case: Case, target: str, precision: str) -> tuple[CompiledModel, dict]:
    """Compile ``case`` for a golden target and precision, with the manifest entries that
    pin what was compiled (the built graph's and the calibration data's sha256). Every
    target gets the same int8 weight codes (the host's default on an AVX2 CPU would be
    "paired"), so that the recorded outputs agree across targets and machines."""
    model = case.model()
    calib = case.calibration(model) if precision == "int8" else None
    cm = compile_model(model, target=compile_target(target), precision=precision,
                       calibration=calib, weight_range="int8")
    pins = {"model": case.name, "graph_sha256": graph_sha256(model),
            "calibration_sha256": arrays_sha256(calib) if calib is not None else None}
    return cm, {"corpus": pins}
