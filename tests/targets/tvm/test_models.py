"""Whole models through the tvm target: the tiny CNN and the digits CNN through
``compile_model(..., target="tvm")``, INT8 outputs identical to the reference interpreter
(and to the host C build), the saved folder reloading and running alike; the BERT-style
encoder and MobileNetV2 (and, slow, SqueezeNet, ShuffleNet and Inception v1) quantised
here, every integer tensor exact; and a float model refused with every op the target lacks
named at once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tvm", reason="the tvm target needs Apache TVM (pip install apache-tvm)")

from compiler.api import compile_model  # noqa: E402
from compiler.compiled import load_compiled  # noqa: E402
from compiler.examples import EXAMPLES, build_example  # noqa: E402
from compiler.frontend import import_model  # noqa: E402
from compiler.passes import DEFAULT_PIPELINE, run_pipeline  # noqa: E402
from compiler.quant.calibrate import calibrate  # noqa: E402
from compiler.quant.quantize import quantize_graph  # noqa: E402
from ir.errors import UnsupportedModelError  # noqa: E402
from ir.graph import Graph  # noqa: E402
from ir.interpreter import run as interpret  # noqa: E402
from ir.verifier import verify  # noqa: E402
from targets.tvm.build import run_in_memory  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "digits_cnn.onnx"


def assert_same(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g, w)


def test_tiny_cnn_int8_matches_interpreter_and_host(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    calib = {"input": rng.standard_normal((16, 1, 1, 8, 8)).astype(np.float32)}
    model = build_example("tiny_cnn")
    cm = compile_model(model, precision="int8", calibration=calib, target="tvm",
                       cache_dir=tmp_path / "cache", output_dir=tmp_path / "out")
    # tvm code quantises with int8 weight codes ("auto"), so the host build is asked for them
    host = compile_model(model, precision="int8", calibration=calib, target="host",
                         cache_dir=tmp_path / "host", weight_range="int8")
    assert cm.graph.op_counts().get("QConv") == 2
    saved = load_compiled(tmp_path / "out")
    assert saved.target == "tvm"
    name = cm.input_names[0]
    for seed in range(5):
        x = np.random.default_rng(seed + 10).standard_normal((1, 1, 8, 8)).astype(np.float32)
        want = interpret(cm.graph, {name: x})
        got = cm.run(None, {name: x})
        assert_same(got, [want[n] for n in cm.output_names])
        assert_same(got, host.run(None, {name: x}))
        assert_same(saved.run(None, {name: x}), got)


def test_digits_cnn_int8_matches_interpreter(tmp_path: Path) -> None:
    from tests.codegen.test_int8_models import check_digits

    check_digits(target="tvm", cache_dir=tmp_path)


def test_a_model_with_ops_lacking_kernels_names_them_all(tmp_path: Path) -> None:
    """A float model with ops that have no tvm kernel yet (Sin twice, Cos): one error names
    them all with their nodes, before anything is built."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    nodes = [helper.make_node("Sin", ["x"], ["a"], name="sin one"),
             helper.make_node("Cos", ["a"], ["b"], name="cos"),
             helper.make_node("Sin", ["b"], ["c"], name="sin two"),
             helper.make_node("Relu", ["c"], ["y"], name="relu")]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(UnsupportedModelError) as info:
        compile_model(model, target="tvm", cache_dir=tmp_path)
    text = str(info.value)
    assert "no kernel for 2 op(s)" in text, text
    assert "Sin (2): 'sin one', 'sin two'" in text and "Cos (1): 'cos'" in text
    assert "Relu" not in text
    assert not list(tmp_path.glob("tvm-*"))  # nothing was built


def quantised(name: str) -> Graph:
    """Example ``name`` quantised (minmax, two random samples) with every tensor that
    leaves for a float island made an output too, so integer codes are checked exactly."""
    g = run_pipeline(import_model(build_example(name)), DEFAULT_PIPELINE)
    x = g.inputs[0]
    rng = np.random.default_rng(1)
    data = {x.name: rng.standard_normal((2, *x.type.shape)).astype(np.float32)}
    q = quantize_graph(g, calibrate(g, data, "minmax"))
    q.outputs = [*q.outputs, *(n.x for n in q.nodes if n.op == "Dequantize")]
    verify(q)
    return q


def check_model(q: Graph, feeds: dict[str, np.ndarray] | None = None) -> None:
    """Integer outputs bit-exact; float outputs (after a float island such as the final
    LayerNormalization) within rtol 1e-5 / atol 1e-5 of the interpreter. ``feeds``: N(0, 1)
    for the first input unless given."""
    x = q.inputs[0]
    if feeds is None:
        feeds = {x.name: np.random.default_rng(2).standard_normal(x.type.shape)
                 .astype(np.float32)}
    want = interpret(q, feeds)
    got = run_in_memory(q, feeds)
    for v, out in zip(q.outputs, got, strict=True):
        assert out.dtype == want[v.name].dtype and out.shape == want[v.name].shape
        if v.type.dtype.is_float:
            np.testing.assert_allclose(out, want[v.name], rtol=1e-5, atol=1e-5)
        else:
            np.testing.assert_array_equal(out, want[v.name], err_msg=v.name)


@pytest.mark.slow  # 12-14 s; QMatMul, Gelu, Softmax, LayerNorm have op tests
def test_bert_encoder_int8_codes_exact() -> None:
    """QLinear, QMatMul, QAdd, QLut, Transpose, Reshape and the Softmax and LayerNorm
    islands of a 6-layer encoder."""
    q = quantised("bert_encoder")
    assert {"QMatMul", "QLut", "Softmax", "LayerNormalization"} <= set(q.op_counts())
    check_model(q)


def test_mobilenetv2_int8_exact() -> None:
    q = quantised("mobilenetv2")
    assert {"QConv", "QAdd", "QGlobalAveragePool"} <= set(q.op_counts())
    check_model(q)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "ops"), [
    ("squeezenet", {"Concat", "MaxPool", "Softmax"}),
    ("shufflenet", {"Transpose", "QAveragePool", "QLut", "QAdd"}),
    ("inception_v1", {"LRN", "Concat", "QAveragePool"}),
])
def test_model_zoo_int8_exact(name: str, ops: set[str]) -> None:
    q = quantised(name)
    assert ops <= set(q.op_counts())
    check_model(q)


def llama_feeds(seq: int, position: int, seed: int) -> dict[str, np.ndarray]:
    """One call of the Llama example: random tokens at ``position`` and a random cache."""
    from compiler.examples.llama import empty_cache, step_feeds

    rng = np.random.default_rng(seed)
    cache = {k: rng.standard_normal(v.shape).astype(np.float32)
             for k, v in empty_cache().items()}
    return step_feeds(rng.integers(0, 256, (1, seq)), position, cache)


@pytest.mark.parametrize("seq", [1, pytest.param(16, marks=pytest.mark.slow)])  # 15 s
def test_llama_int8_codes_exact(seq: int) -> None:
    """The Llama example (decode step and a prefill length) quantised: the embedding and
    rotary tables gathered by the fed tokens and positions, the causal mask (LessOrEqual,
    Where), the KV cache written by ScatterND, RMSNormalization islands; every integer
    tensor exact, the float ones within 1e-5 of the interpreter."""
    from compiler.examples.llama import build_llama

    g = run_pipeline(import_model(build_llama(seed=0, train_steps=0),
                                  input_shapes={"input_ids": (1, seq)}), DEFAULT_PIPELINE)
    samples = [llama_feeds(seq, p, seed) for seed, p in enumerate((0, 7, 100 - seq))]
    q = quantize_graph(g, calibrate(g, {k: np.stack([s[k] for s in samples])
                                        for k in samples[0]}, "minmax"))
    q.outputs = [*q.outputs, *(n.x for n in q.nodes if n.op == "Dequantize")]
    verify(q)
    assert {"Gather", "ScatterND", "Where", "LessOrEqual", "RMSNormalization", "QMatMul",
            "Tile"} <= set(q.op_counts())
    check_model(q, llama_feeds(seq, 128 - seq, seed=9))


@pytest.mark.slow  # 15 s; the default run checks the same build against the interpreter
def test_llama_int8_decode_equals_host(tmp_path: Path) -> None:
    """The Llama example's decode step compiled for tvm and for host from one calibration:
    the same logits and caches, element for element, from the saved tvm folder too; a token
    past the vocabulary stops both runs with one message naming the embedding's Gather."""
    import onnx

    from compiler.examples.llama import build_llama
    from ir.errors import InputError

    path = tmp_path / "llama.onnx"
    onnx.save(build_llama(seed=0, train_steps=0), path)
    samples = [llama_feeds(1, p, seed) for seed, p in enumerate((0, 30, 90))]
    calib = {k: np.stack([s[k] for s in samples]) for k in samples[0]}
    kw: dict = {"precision": "int8", "calibration": calib, "calib_method": "minmax",
                "input_shapes": {"input_ids": (1, 1)}, "weight_range": "int8"}
    tvm_cm = compile_model(path, target="tvm", cache_dir=tmp_path / "c1",
                           output_dir=tmp_path / "out", **kw)
    host = compile_model(path, target="host", cache_dir=tmp_path / "c2", **kw)
    saved = load_compiled(tmp_path / "out")
    for seed in (11, 12):
        feeds = llama_feeds(1, 40 + seed, seed)
        want = host.run(None, feeds)
        assert_same(tvm_cm.run(None, feeds), want)
        assert_same(saved.run(None, feeds), want)
    bad = {**feeds, "input_ids": np.array([[256]], np.int64)}
    for model in (saved, host):
        with pytest.raises(InputError, match=r"node 'embed' \(Gather\)"):
            model.run(None, bad)


@pytest.mark.slow  # 20-30 s a machine: the cross compile and the emulated run
@pytest.mark.parametrize("arch", ["aarch64", "riscv64", "x86_64"])
def test_llama_int8_decode_on_other_machines(tmp_path: Path, arch: str) -> None:
    """The Llama decode step exported for a board: its standalone program (run under
    qemu-user, or directly for x86_64) gives the host build's logits and caches exactly."""
    pytest.importorskip("ziglang", reason="cross-linking needs ziglang (in 'qnnc[tvm]')")
    from compiler.examples.llama import build_llama
    from targets.tvm.emulate import launcher
    from tests.targets.tvm.test_export import EXPORTED

    if launcher(arch) is None:
        pytest.skip(f"qemu-{arch} is not installed (apt-get install qemu-user)")
    model = build_llama(seed=0, train_steps=0)
    samples = [llama_feeds(1, p, seed) for seed, p in enumerate((0, 30, 90))]
    kw: dict = {"precision": "int8", "calib_method": "minmax",
                "calibration": {k: np.stack([s[k] for s in samples]) for k in samples[0]},
                "input_shapes": {"input_ids": (1, 1)}, "weight_range": "int8"}
    board = compile_model(model, target=EXPORTED[arch], cache_dir=tmp_path / "c1", **kw)
    host = compile_model(model, target="host", cache_dir=tmp_path / "c2", **kw)
    feeds = llama_feeds(1, 77, seed=5)
    assert_same(board.run(None, feeds), host.run(None, feeds))


@pytest.mark.slow  # quantises every example (about a minute)
@pytest.mark.parametrize("name", sorted(set(EXAMPLES) - {"llama"}))  # llama: tests above
def test_every_example_has_every_kernel(name: str) -> None:
    """Every example model, quantised, lowers with no op left without a tvm kernel (the
    tests above run several end to end)."""
    from targets.tvm.lower import unsupported

    assert unsupported(quantised(name)) == {}
