"""The example models: they build, pass onnx's checker, run in onnxruntime with activations
of order one, are deterministic per seed, and import into qnnc's IR."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from compiler.examples import EXAMPLES, build_example

ort = pytest.importorskip("onnxruntime")

FAST = ("tiny_cnn", "squeezenet", "shufflenet", "mobilenetv2", "yolo")
#: the decoder's inputs are token ids, a position and a KV cache, with a symbolic sequence
#: length: tests/models/test_llama.py checks it
OWN_TESTS = ("llama",)
SLOW = tuple(n for n in EXAMPLES if n not in FAST and n not in OWN_TESTS)
ALL = [*FAST, *(pytest.param(n, marks=pytest.mark.slow) for n in SLOW)]

#: ops whose outputs are activations worth checking for explosion or collapse
_ACTIVATION_OPS = {
    "Conv",
    "Gemm",
    "MatMul",
    "Relu",
    "Clip",
    "BatchNormalization",
    "Add",
    "Sum",
    "Concat",
    "LayerNormalization",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
}


def _feeds(model: onnx.ModelProto, seed: int = 123) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for inp in model.graph.input:
        shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
        assert all(d > 0 for d in shape), f"{inp.name} has a non-static shape {shape}"
        assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        feeds[inp.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def _run_all_activations(model: onnx.ModelProto) -> dict[str, tuple[str, np.ndarray]]:
    """Every node output that derives from the input, by name → (op type, value)."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    live = {i.name for i in probe.graph.input}
    wanted = []
    for node in probe.graph.node:
        if any(x in live for x in node.input):
            live.update(o for o in node.output if o)
            wanted.append((node.output[0], node.op_type))
    del probe.graph.output[:]
    for name, _ in wanted:
        probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(probe.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    outs = sess.run([n for n, _ in wanted], _feeds(model))
    return {n: (op, v) for (n, op), v in zip(wanted, outs)}


def _logits(model: onnx.ModelProto, acts: dict[str, tuple[str, np.ndarray]]) -> np.ndarray:
    """The final output, or the input of a final Softmax (probabilities hide the spread)."""
    out = model.graph.output[0].name
    last = next(n for n in model.graph.node if out in n.output)
    if last.op_type == "Softmax":
        return acts[last.input[0]][1]
    return acts[out][1]


def test_unknown_name_lists_the_examples() -> None:
    with pytest.raises(ValueError, match="tiny_cnn") as err:
        build_example("resnet51")
    assert "resnet50" in str(err.value) and "bert_encoder" in str(err.value)


def test_descriptions_are_one_line() -> None:
    assert len(EXAMPLES) == 14
    for name, text in EXAMPLES.items():
        assert text and "\n" not in text, name


@pytest.mark.parametrize("name", ALL)
def test_example_runs_with_order_one_activations(name: str) -> None:
    model = build_example(name)
    onnx.checker.check_model(model, full_check=True)
    assert all(t.data_type == onnx.TensorProto.FLOAT or t.dims for t in model.graph.initializer)
    acts = _run_all_activations(model)
    for out in model.graph.output:
        assert np.isfinite(acts[out.name][1]).all(), out.name
    rms = {
        n: float(np.sqrt(np.mean(np.square(v, dtype=np.float64))))
        for n, (op, v) in acts.items()
        if op in _ACTIVATION_OPS
    }
    assert rms, "no activations checked"
    worst_hi = max(rms, key=rms.get)
    worst_lo = min(rms, key=rms.get)
    assert rms[worst_hi] < 20.0, f"{worst_hi} explodes: rms {rms[worst_hi]:.3g}"
    assert rms[worst_lo] > 0.05, f"{worst_lo} collapses: rms {rms[worst_lo]:.3g}"
    logits = _logits(model, acts).astype(np.float64).ravel()
    assert np.isfinite(logits).all()
    assert np.ptp(logits) > 0.1, f"logits nearly constant: spread {np.ptp(logits):.3g}"
    assert 0.05 < logits.std() < 20.0, f"logit std {logits.std():.3g}"


@pytest.mark.parametrize("name", ["tiny_cnn", "bert_encoder", "mobilenetv2", "squeezenet", "yolo"])
def test_deterministic_per_seed(name: str) -> None:
    a = build_example(name, seed=0).SerializeToString()
    assert a == build_example(name, seed=0).SerializeToString()
    assert a != build_example(name, seed=1).SerializeToString()


#: the zoo's fully connected giants (hundreds of MB of weights) repeat what the other zoo
#: graphs show about the weight generator, at tens of seconds each
GIANTS = ("alexnet", "vgg19", "zfnet512")


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in SLOW if n not in GIANTS])
def test_deterministic_per_seed_large(name: str) -> None:
    a = build_example(name, seed=3).SerializeToString()
    assert a == build_example(name, seed=3).SerializeToString()
    assert a != build_example(name, seed=4).SerializeToString()


def test_zoo_graph_is_the_light_model_without_constant_fills() -> None:
    from compiler.examples.zoo import light_model_path

    light = onnx.load(str(light_model_path("squeezenet")))
    model = build_example("squeezenet")
    ops = [n.op_type for n in light.graph.node if n.op_type != "ConstantOfShape"]
    assert [n.op_type for n in model.graph.node] == ops
    assert model.opset_import[0].version == light.opset_import[0].version
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    weights = [inits[n.input[1]] for n in model.graph.node if n.op_type == "Conv"]
    for w in weights:  # no constant fill left, and He scale: std ≈ sqrt(2 / fan_in)
        assert np.unique(w).size > 1
        fan_in = int(np.prod(w.shape[1:]))
        assert w.std() == pytest.approx(np.sqrt(2 / fan_in), rel=0.25)


@pytest.mark.parametrize("name", ALL)
def test_example_imports_into_qnnc(name: str) -> None:
    from compiler.frontend import import_model

    model = build_example(name)
    graph = import_model(model)
    assert [v.name for v in graph.inputs] == [i.name for i in model.graph.input]
    assert len(graph.outputs) == len(model.graph.output)
    for v, o in zip(graph.outputs, model.graph.output):
        want = tuple(d.dim_value for d in o.type.tensor_type.shape.dim)
        assert v.type.shape == want


@pytest.mark.parametrize(("mean", "std", "n"), [(0.0, 1.0, 9), (0.5, 2.0, 4), (-1.0, 0.5, 1)])
def test_moment_formulas_match_sampling(mean: float, std: float, n: int) -> None:
    """The closed forms behind the BatchNorm statistics, against 400k samples."""
    from compiler.examples.moments import max_stats, relu_stats

    s = (mean, mean**2 + std**2)
    x = np.random.default_rng(7).normal(mean, std, size=(400_000, n))
    r = np.maximum(x[:, 0], 0)
    assert relu_stats(s) == pytest.approx((r.mean(), np.mean(r**2)), rel=0.02, abs=2e-3)
    m = x.max(axis=1)
    assert max_stats(s, n) == pytest.approx((m.mean(), np.mean(m**2)), rel=0.02, abs=2e-3)
