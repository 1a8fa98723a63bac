"""A real onnxruntime-optimised model: a small BERT-like encoder written the way exporters
write BERT (MatMul + Add projections, Reshape/Transpose heads, an additive key mask from an
int64 attention_mask, post-LN residuals, one erf GELU and one tanh GELU), run through
onnxruntime's offline transformer optimiser (model_type="bert"), which fuses it into
com.microsoft Attention, SkipLayerNormalization, BiasGelu and FastGelu and saves it as a
shipped model. qnnc must load it, run it within float tolerance of onnxruntime, and compile
it to INT8 host C that matches its own interpreter: every integer tensor exactly, the float
islands (Softmax, LayerNormalization, the mask select) within rtol 1e-4 / atol 1e-5."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import ModelProto

from compiler.api import load_model
from compiler.examples.builder import F32, I64, GraphBuilder
from compiler.passes import DEFAULT_PIPELINE, run_pipeline
from compiler.quant.calibrate import calibrate
from compiler.quant.quantize import quantize_graph
from ir.interpreter import run as interpret
from tests.codegen.harness import check_codes_exact, expose_island_inputs

HIDDEN, HEADS, SEQ, FFN, LAYERS = 32, 4, 8, 64, 2


class _Encoder:
    def __init__(self, seed: int) -> None:
        self.b = GraphBuilder(np.random.default_rng(seed))
        b = self.b
        self.split = b.ints("split_shape", [1, SEQ, HEADS, HIDDEN // HEADS])
        self.merge = b.ints("merge_shape", [1, SEQ, HIDDEN])
        self.one = b.const("one", np.array(1.0, np.float32))
        self.half = b.const("half", np.array(0.5, np.float32))

    def weight(self, stem: str, *shape: int, scale: float | None = None) -> str:
        s = scale if scale is not None else 1 / math.sqrt(shape[0])
        return self.b.const(stem, (self.b.rng.standard_normal(shape) * s).astype(np.float32))

    def linear(self, x: str, fan_in: int, fan_out: int, p: str) -> str:
        y = self.b.op("MatMul", [x, self.weight(f"{p}.w", fan_in, fan_out)], f"{p}.mm")
        return self.b.op("Add", [y, self.weight(f"{p}.b", fan_out, scale=0.02)], f"{p}.add")

    def layer_norm(self, x: str, p: str) -> str:
        g = self.b.const(f"{p}.g", (1 + 0.1 * self.b.rng.standard_normal(HIDDEN))
                         .astype(np.float32))
        return self.b.op("LayerNormalization", [x, g, self.weight(f"{p}.b", HIDDEN, scale=0.02)],
                         p, axis=-1, epsilon=1e-12)

    def mask_bias(self) -> str:
        """(1 - mask) * -10000 as [1, 1, 1, S], BERT's exported form."""
        b = self.b
        m = b.op("Unsqueeze", ["attention_mask", b.ints("axis1", [1])], "mask.u1")
        m = b.op("Unsqueeze", [m, b.ints("axis2", [2])], "mask.u2")
        m = b.op("Sub", [self.one, b.op("Cast", [m], "mask.f", to=1)], "mask.inv")
        return b.op("Mul", [m, b.const("mask_fill", np.array(-10000.0, np.float32))], "mask.bias")

    def attention(self, x: str, mask: str, p: str) -> str:
        b = self.b

        def heads(t: str, perm: list[int], n: str) -> str:
            return b.op("Transpose", [b.op("Reshape", [t, self.split], f"{p}.{n}.split")],
                        f"{p}.{n}.t", perm=perm)

        q = heads(self.linear(x, HIDDEN, HIDDEN, f"{p}.q"), [0, 2, 1, 3], "q")
        k = heads(self.linear(x, HIDDEN, HIDDEN, f"{p}.k"), [0, 2, 3, 1], "k")
        v = heads(self.linear(x, HIDDEN, HIDDEN, f"{p}.v"), [0, 2, 1, 3], "v")
        root = b.const(f"{p}.sqrt_d", np.array(math.sqrt(HIDDEN // HEADS), np.float32))
        s = b.op("Div", [b.op("MatMul", [q, k], f"{p}.qk"), root], f"{p}.scaled")
        probs = b.op("Softmax", [b.op("Add", [s, mask], f"{p}.masked")], f"{p}.probs", axis=-1)
        c = b.op("Transpose", [b.op("MatMul", [probs, v], f"{p}.ctx")], f"{p}.ctx.t",
                 perm=[0, 2, 1, 3])
        return self.linear(b.op("Reshape", [c, self.merge], f"{p}.ctx.merge"), HIDDEN, HIDDEN,
                           f"{p}.o")

    def gelu(self, h: str, p: str, tanh: bool) -> str:
        b = self.b
        if not tanh:  # 0.5·x·(1 + erf(x/√2)): BiasGelu
            root2 = b.const(f"{p}.sqrt2", np.array(math.sqrt(2.0), np.float32))
            g = b.op("Erf", [b.op("Div", [h, root2], f"{p}.div")], f"{p}.erf")
            g = b.op("Mul", [h, b.op("Add", [g, self.one], f"{p}.add")], f"{p}.mul")
            return b.op("Mul", [g, self.half], f"{p}.half")
        # 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))): FastGelu
        cube = b.op("Pow", [h, b.const(f"{p}.three", np.array(3.0, np.float32))], f"{p}.pow")
        cube = b.op("Mul", [cube, b.const(f"{p}.c", np.array(0.044715, np.float32))], f"{p}.c")
        t = b.op("Mul", [b.op("Add", [h, cube], f"{p}.sum"),
                         b.const(f"{p}.k", np.array(math.sqrt(2 / math.pi), np.float32))],
                 f"{p}.k")
        t = b.op("Add", [b.op("Tanh", [t], f"{p}.tanh"), self.one], f"{p}.one")
        return b.op("Mul", [b.op("Mul", [h, self.half], f"{p}.half"), t], f"{p}.mul")

    def model(self) -> ModelProto:
        mask = self.mask_bias()
        x = "hidden_states"
        for i in range(LAYERS):
            p = f"layer{i}"
            x = self.layer_norm(self.b.op("Add", [self.attention(x, mask, p), x], f"{p}.res1"),
                                f"{p}.ln1")
            h = self.gelu(self.linear(x, HIDDEN, FFN, f"{p}.ffn1"), f"{p}.gelu", tanh=i % 2 == 1)
            x = self.layer_norm(self.b.op("Add", [self.linear(h, FFN, HIDDEN, f"{p}.ffn2"), x],
                                          f"{p}.res2"), f"{p}.ln2")
        self.b.nodes[-1].output[0] = "last_hidden_state"
        return self.b.model(
            "tiny_bert", [("hidden_states", F32, [1, SEQ, HIDDEN]), ("attention_mask", I64,
                                                                      [1, SEQ])],
            [("last_hidden_state", F32, [1, SEQ, HIDDEN])], doc="BERT-like encoder (test)")


def feeds(seed: int, valid: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"hidden_states": rng.standard_normal((1, SEQ, HIDDEN)).astype(np.float32),
            "attention_mask": (np.arange(SEQ) < valid).astype(np.int64).reshape(1, SEQ)}


@pytest.fixture(scope="module")
def optimised(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelProto, Path]:
    from onnxruntime.transformers.optimizer import optimize_model

    original = _Encoder(0).model()
    opt = optimize_model(copy.deepcopy(original), model_type="bert", num_heads=HEADS,
                         hidden_size=HIDDEN, opt_level=0, use_gpu=False)
    path = tmp_path_factory.mktemp("ort_opt") / "tiny_bert_opt.onnx"
    opt.save_model_to_file(str(path))
    return original, path


def _ort(model: ModelProto | Path, x: dict[str, np.ndarray]) -> np.ndarray:
    data = model.SerializeToString() if isinstance(model, ModelProto) else str(model)
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, x)[0]


def test_optimised_bert_runs_like_onnxruntime(optimised: tuple[ModelProto, Path]) -> None:
    original, path = optimised
    fused = {(n.domain, n.op_type) for n in onnx.load(str(path)).graph.node}
    for op in ("Attention", "SkipLayerNormalization", "FastGelu", "BiasGelu"):
        assert ("com.microsoft", op) in fused, op
    graph = load_model(str(path))
    for seed, valid in ((1, SEQ), (2, 5)):
        x = feeds(seed, valid)
        got = interpret(graph, x)[graph.outputs[0].name]
        np.testing.assert_allclose(got, _ort(path, x), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got, _ort(original, x), rtol=1e-4, atol=1e-5)


@pytest.mark.slow  # ~20 s: calibration and a C build (tests/codegen/test_int8_attention.py
# covers the INT8 attention path by default)
def test_optimised_bert_int8_host_c(optimised: tuple[ModelProto, Path], tmp_path: Path) -> None:
    _, path = optimised
    g = run_pipeline(load_model(str(path)), DEFAULT_PIPELINE)
    calib = [feeds(10 + k, SEQ - k) for k in range(4)]
    q = quantize_graph(g, calibrate(g, {k: np.stack([c[k] for c in calib]) for k in calib[0]},
                                    "minmax"))
    ops = q.op_counts()
    assert ops.get("QMatMul") == 2 * LAYERS  # Q·Kᵀ and P·V of every layer run in int8
    assert ops.get("QLinear") == 6 * LAYERS  # q, k, v (cut from the packed weight), o, ffn
    # every integer tensor that leaves for a float island is an output too, checked exactly
    expose_island_inputs(q)
    x = feeds(3, 5)  # three padded keys
    want = check_codes_exact(q, x, tmp_path)
    # int8 stays near the float model (4 calibration samples, minmax; outputs are LayerNorm'd)
    err = np.abs(want[q.outputs[0].name] - _ort(path, x)).max()
    assert err < 0.5, err
