"""Per-op float emitters against the reference interpreter (f32: rtol 1e-4, atol 1e-5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ir.interpreter import run as interpret
from ir.types import DType, TensorType
from targets.host.build import BuildOptions
from tests.codegen.harness import check_graph, op_graph, random_feeds, run_c


def f32(*shape: int) -> TensorType:
    return TensorType(tuple(shape), DType.f32)


def rnd(*shape: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


UNARY = ["Relu", "Sigmoid", "Tanh", "Erf", "Exp", "Abs", "Neg", "Floor", "Ceil", "Round",
         "Sin", "Cos", "Softsign", "Softplus", "HardSwish", "Mish", "SiLU", "Sign", "Reciprocal"]


@pytest.mark.parametrize("op", UNARY)
def test_unary(op: str, tmp_path: Path) -> None:
    check_graph(op_graph(op, [f32(2, 3, 5)], {}), tmp_path)


@pytest.mark.parametrize("op,attrs", [
    ("LeakyRelu", {"alpha": 0.1}), ("Elu", {"alpha": 0.7}), ("Selu", {}), ("Celu", {}),
    ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}), ("ThresholdedRelu", {"alpha": 0.2}),
    ("Gelu", {}), ("Gelu", {"approximate": "tanh"}), ("Clip", {"min": -0.5, "max": 0.7}),
    ("Clip", {"min": 0.0}),
])
def test_unary_attrs(op: str, attrs: dict, tmp_path: Path) -> None:
    check_graph(op_graph(op, [f32(4, 7)], attrs), tmp_path)


def test_sqrt_log_positive(tmp_path: Path) -> None:
    for op in ("Sqrt", "Log"):
        g = op_graph(op, [f32(3, 4)], {})
        x = np.abs(rnd(3, 4)) + 0.1
        check_graph(g, tmp_path, feeds={"x0": x})


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max", "Min"])
@pytest.mark.parametrize("sa,sb", [((2, 3, 4), (2, 3, 4)), ((2, 3, 4), (4,)),
                                   ((2, 1, 4), (3, 1)), ((1,), (2, 3)), ((5, 1, 1), (1, 3, 2))])
def test_binary_broadcast(op: str, sa: tuple, sb: tuple, tmp_path: Path) -> None:
    check_graph(op_graph(op, [f32(*sa), f32(*sb)], {}), tmp_path)


def test_binary_with_constant_and_pow(tmp_path: Path) -> None:
    check_graph(op_graph("Add", [f32(1, 8, 4), rnd(8, 1)], {}), tmp_path)
    g = op_graph("Pow", [f32(3, 4), np.float32(2.0).reshape(())], {})
    check_graph(g, tmp_path, feeds={"x0": np.abs(rnd(3, 4)) + 0.5})


def test_pow_by_two_is_exact(tmp_path: Path) -> None:
    """x ** 2 is generated as x * x: bit for bit numpy's power, signs, overflow, subnormals,
    NaN and infinities included."""
    x = np.array([[-3.5, -0.0, 0.0, 1e-23], [1e19, 3e38, -np.inf, np.nan],
                  [7.1e-39, 1.1, -2.2, 65504.0]], np.float32)
    g = op_graph("Pow", [f32(3, 4), np.full((1, 4), 2.0, np.float32)], {})
    check_graph(g, tmp_path, feeds={"x0": x}, rtol=0, atol=0)


@pytest.mark.parametrize("kw", [
    dict(x=(1, 3, 9, 9), w=(8, 3, 3, 3), strides=[1, 1], pads=[1, 1, 1, 1], group=1),
    dict(x=(2, 4, 10, 7), w=(6, 4, 3, 2), strides=[2, 1], pads=[0, 1, 2, 0], group=1),
    dict(x=(1, 6, 8, 8), w=(6, 1, 3, 3), strides=[2, 2], pads=[1, 1, 1, 1], group=6),
    dict(x=(1, 8, 6, 6), w=(4, 2, 3, 3), strides=[1, 1], pads=[1, 1, 1, 1], group=4),
    dict(x=(1, 16, 5, 5), w=(20, 16, 1, 1), strides=[1, 1], pads=[0, 0, 0, 0], group=1),
    dict(x=(1, 3, 12, 12), w=(5, 3, 3, 3), strides=[1, 1], pads=[2, 2, 2, 2], group=1,
         dilations=[2, 2]),
    dict(x=(1, 4, 20), w=(7, 4, 5), strides=[2], pads=[2, 1], group=1),
])
@pytest.mark.parametrize("bias", [True, False])
def test_conv(kw: dict, bias: bool, tmp_path: Path) -> None:
    nsp = len(kw["x"]) - 2
    attrs = {"strides": kw["strides"], "pads": kw["pads"], "group": kw["group"],
             "dilations": kw.get("dilations", [1] * nsp)}
    b = rnd(kw["w"][0], seed=3) if bias else None
    g = op_graph("Conv", [f32(*kw["x"]), rnd(*kw["w"], seed=2), b], attrs)
    check_graph(g, tmp_path)


def test_conv_runtime_weight(tmp_path: Path) -> None:
    attrs = {"strides": [1, 1], "pads": [1, 1, 1, 1], "group": 1, "dilations": [1, 1]}
    check_graph(op_graph("Conv", [f32(1, 3, 6, 6), f32(4, 3, 3, 3)], attrs), tmp_path)


@pytest.mark.parametrize("ta,tb", [(False, False), (False, True), (True, False), (True, True)])
def test_gemm(ta: bool, tb: bool, tmp_path: Path) -> None:
    a = f32(37, 5) if ta else f32(5, 37)
    b = rnd(19, 37) if tb else rnd(37, 19)
    attrs = {"transA": ta, "transB": tb, "alpha": 1.0 if ta else 0.5, "beta": 2.0}
    check_graph(op_graph("Gemm", [a, b, rnd(19, seed=4)], attrs), tmp_path)
    check_graph(op_graph("Gemm", [a, f32(*b.shape)], {"transA": ta, "transB": tb}), tmp_path)


@pytest.mark.parametrize("sa,sb", [((5, 7), (7, 33)), ((2, 3, 9, 17), (2, 3, 17, 4)),
                                   ((3, 1, 6, 8), (4, 8, 5)), ((8,), (8, 3)), ((2, 4, 8), (8,))])
def test_matmul(sa: tuple, sb: tuple, tmp_path: Path) -> None:
    check_graph(op_graph("MatMul", [f32(*sa), f32(*sb)], {}), tmp_path)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("kw", [
    dict(k=[2, 2], s=[2, 2], p=[0, 0, 0, 0], ceil=False),
    dict(k=[3, 3], s=[2, 2], p=[1, 1, 1, 1], ceil=False),
    dict(k=[3, 2], s=[2, 3], p=[1, 0, 1, 1], ceil=True),
])
@pytest.mark.parametrize("cip", [False, True])
def test_pool(op: str, kw: dict, cip: bool, tmp_path: Path) -> None:
    attrs = {"kernel_shape": kw["k"], "strides": kw["s"], "pads": kw["p"],
             "dilations": [1, 1], "ceil_mode": kw["ceil"]}
    if op == "AveragePool":
        attrs["count_include_pad"] = cip
    elif cip:
        pytest.skip("count_include_pad is an AveragePool attribute")
    check_graph(op_graph(op, [f32(2, 3, 9, 8)], attrs), tmp_path)


def test_a_pool_is_estimated_by_its_window(tmp_path: Path) -> None:
    """A pooling layer's one-thread time is estimated by its window's taps: Inception v1's
    3x3 max pools over 832 x 6 x 6 (37-53 us at one thread) are shared out among threads,
    computing what one thread computes, where a 1x1 window over the same map is not."""
    from targets.c.emitter import MIN_PARALLEL_NS, estimated_ns

    attrs = {"kernel_shape": [3, 3], "strides": [1, 1], "pads": [1, 1, 1, 1],
             "dilations": [1, 1], "ceil_mode": False}
    g = op_graph("MaxPool", [f32(1, 832, 6, 6)], attrs)
    one = op_graph("MaxPool", [f32(1, 832, 6, 6)], {**attrs, "kernel_shape": [1, 1],
                                                      "pads": [0, 0, 0, 0]})
    assert estimated_ns(g.nodes[0]) >= MIN_PARALLEL_NS > estimated_ns(one.nodes[0])
    feeds = random_feeds(g)
    got = run_c(g, feeds, tmp_path / "t2", BuildOptions(threads=2, werror=True))
    ((name, want),) = interpret(g, feeds).items()
    np.testing.assert_array_equal(got[name], want)
    (source,) = [f.read_text() for f in (tmp_path / "t2").rglob("model.c")]
    assert "QNNC_OMP_FOR" in source


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
def test_global_pool(op: str, tmp_path: Path) -> None:
    check_graph(op_graph(op, [f32(2, 5, 7, 6)], {}), tmp_path)


def test_batchnorm(tmp_path: Path) -> None:
    var = np.abs(rnd(6, seed=5)) + 0.1
    g = op_graph("BatchNormalization",
                 [f32(2, 6, 4, 5), rnd(6, seed=2), rnd(6, seed=3), rnd(6, seed=4), var], {})
    check_graph(g, tmp_path)


@pytest.mark.parametrize("axis", [1, 2])
@pytest.mark.parametrize("batch", [1, 2])
def test_layernorm(axis: int, batch: int, tmp_path: Path) -> None:
    shape = (batch, 6, 16)
    g = op_graph("LayerNormalization",
                 [f32(*shape), rnd(*shape[axis:], seed=2), rnd(*shape[axis:], seed=3)],
                 {"axis": axis})
    check_graph(g, tmp_path)


def test_layernorm_statistics_same_on_every_cpu_level(tmp_path: Path) -> None:
    """The statistics' sixteen running sums (csrc/qnnc_vmath.h) fold in one order with and
    without AVX2: rows of 5, 16, 17 and 384 values (tails and whole blocks, BERT's width)
    give the same bits at every level, and agree with the interpreter, on values of very
    different magnitudes."""
    from targets.host.build import BuildOptions
    from targets.host.cpu import detect_level

    levels = {"generic": ["generic"], "avx2": ["generic", "avx2"],
              "avx512vnni": ["generic", "avx2", "avx512vnni"]}[detect_level()]
    for n in (5, 16, 17, 384):
        g = op_graph("LayerNormalization", [f32(3, n), rnd(n, seed=2), rnd(n, seed=3)],
                     {"axis": 1})
        rng = np.random.default_rng(n)
        x = (rng.standard_normal((3, n)) * 10 ** rng.uniform(-4, 6, (3, n))).astype(np.float32)
        want = interpret(g, {"x0": x})
        runs = [run_c(g, {"x0": x}, tmp_path / f"{n}-{cpu}", BuildOptions(cpu=cpu))
                for cpu in levels]
        for got in runs:
            for name, w in want.items():
                np.testing.assert_array_equal(got[name], runs[0][name])
                np.testing.assert_allclose(got[name], w, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_softmax(op: str, axis: int, tmp_path: Path) -> None:
    check_graph(op_graph(op, [f32(3, 4, 5)], {"axis": axis}), tmp_path)


def test_transpose_shared_out(tmp_path: Path) -> None:
    """A transpose large enough to be shared among two threads (a detection head's anchors x
    rows x columns x outputs) moves every element where one thread would."""
    g = op_graph("Transpose", [f32(3, 85, 52, 52)], {"perm": [0, 2, 3, 1]})
    feeds = random_feeds(g)
    got = run_c(g, feeds, tmp_path / "t2", BuildOptions(threads=2, werror=True))
    ((name, want),) = interpret(g, feeds).items()
    np.testing.assert_array_equal(want, np.transpose(feeds[g.inputs[0].name], (0, 2, 3, 1)))
    np.testing.assert_array_equal(got[name], want)
    (source,) = [f.read_text() for f in (tmp_path / "t2").rglob("model.c")]
    assert "collapse(2)" in source


def test_a_channel_shuffle_stays_on_one_thread(tmp_path: Path) -> None:
    """A Transpose that keeps its last axis copies contiguous runs (ShuffleNet's channel
    shuffle): memory-bound on data another core may hold, it is not shared out below
    MIN_PARALLEL_COPY_NS, where the detection head's element-by-element one above is."""
    from targets.c.emitter import copies_runs, worth_threads

    g = op_graph("Transpose", [f32(1, 4, 28, 56, 56)], {"perm": [0, 2, 1, 3, 4]})
    (node,) = g.nodes
    assert copies_runs(node) and not worth_threads(node)
    feeds = random_feeds(g)
    got = run_c(g, feeds, tmp_path / "t2", BuildOptions(threads=2, werror=True))
    ((name, want),) = interpret(g, feeds).items()
    np.testing.assert_array_equal(got[name], want)
    (source,) = [f.read_text() for f in (tmp_path / "t2").rglob("model.c")]
    assert "QNNC_OMP_FOR" not in source
    head = op_graph("Transpose", [f32(3, 85, 52, 52)], {"perm": [0, 2, 3, 1]})
    assert not copies_runs(head.nodes[0]) and worth_threads(head.nodes[0])
    # unit axes do not count: the last axis of more than one element is what is copied
    unit = op_graph("Transpose", [f32(4, 30, 1)], {"perm": [1, 0, 2]})
    assert not copies_runs(unit.nodes[0])


def test_shape_ops(tmp_path: Path) -> None:
    check_graph(op_graph("Reshape", [f32(2, 3, 4)], {"shape": [6, 4]}), tmp_path)
    check_graph(op_graph("Identity", [f32(2, 3)], {}), tmp_path)
    check_graph(op_graph("Transpose", [f32(2, 3, 4, 5)], {"perm": [0, 2, 3, 1]}), tmp_path)
    check_graph(op_graph("Transpose", [f32(2, 1, 4)], {"perm": [2, 0, 1]}), tmp_path)
    check_graph(op_graph("Concat", [f32(2, 3, 4), rnd(2, 1, 4), f32(2, 5, 4)], {"axis": 1}),
                tmp_path)
    check_graph(op_graph("Expand", [f32(3, 1)], {"shape": [2, 3, 4]}), tmp_path)
    check_graph(op_graph("Slice", [f32(6, 7, 8)], {"starts": [1, 6, 0], "ends": [5, -1, 8],
                                                   "steps": [2, -2, 3]}), tmp_path)


def test_gather(tmp_path: Path) -> None:
    idx = np.array([[0, 2], [-1, 1]], dtype=np.int64)
    check_graph(op_graph("Gather", [f32(3, 4, 5), idx], {"axis": 1}), tmp_path)
    check_graph(op_graph("Gather", [rnd(10, 6), TensorType((3,), DType.i64)], {"axis": 0}),
                tmp_path, feeds={"x1": np.array([9, 0, -2], dtype=np.int64)})


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "wrap"])
def test_pad(mode: str, tmp_path: Path) -> None:
    attrs = {"pads": [0, 1, 2, 0, 3, -1], "mode": mode, "value": 1.5}
    check_graph(op_graph("Pad", [f32(2, 4, 5)], attrs), tmp_path)


@pytest.mark.parametrize("mode,ctm", [("nearest", "asymmetric"), ("nearest", "half_pixel"),
                                      ("linear", "half_pixel"), ("linear", "align_corners")])
def test_resize(mode: str, ctm: str, tmp_path: Path) -> None:
    attrs = {"sizes": [1, 2, 8, 6], "scales": [1.0, 1.0, 2.0, 1.5], "mode": mode,
             "coordinate_transformation_mode": ctm}
    if mode == "nearest":
        attrs["nearest_mode"] = "floor"
    check_graph(op_graph("Resize", [f32(1, 2, 4, 4)], attrs), tmp_path)


@pytest.mark.parametrize("op", ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin",
                                "ReduceL2", "ReduceSumSquare", "ReduceL1"])
@pytest.mark.parametrize("axes,keep", [([1], True), ([0, 2], False), ([2, 3], True)])
def test_reduce(op: str, axes: list, keep: bool, tmp_path: Path) -> None:
    check_graph(op_graph(op, [f32(2, 3, 4, 5)], {"axes": axes, "keepdims": keep}), tmp_path)


def test_softmax_rows_vectorised(tmp_path: Path) -> None:
    """Contiguous rows of 37 (vector lanes plus a scalar tail) over a wide range, with -inf,
    values far below the max (exp underflows to 0) and one row of equal values: within
    1e-6 relative of numpy in float64 from the same float32 differences x - max (the vector
    exp is within 2 ulp; the rest is the sum's and the scaling's rounding)."""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((6, 37)) * 30).astype(np.float32)
    x[1, 3] = -np.inf
    x[2, :5] = [-200.0, -95.0, -88.0, -87.0, 80.0]
    x[3] = 1.5
    g = op_graph("Softmax", [TensorType(x.shape, DType.f32)], {"axis": 1})
    want = np.exp((x - x.max(axis=1, keepdims=True)).astype(np.float64))
    want /= want.sum(axis=1, keepdims=True)
    got = run_c(g, {g.inputs[0].name: x}, tmp_path / "sm")[g.outputs[0].name]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-30)
