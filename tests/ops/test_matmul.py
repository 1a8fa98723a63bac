"""MatMul, Gemm and Einsum, imported from one-node ONNX models and run on the interpreter,
against onnx.reference on random inputs."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from compiler.errors import ConversionError
from compiler.frontend.importer import import_model
from ir.graph import Graph
from ir.interpreter import run as interpret
from ir.ops.matmul import canonical_einsum, matmul_shape
from ir.ops.registry import OpError
from ir.verifier import verify

RNG = np.random.default_rng(1)


def rand(*shape: int, dtype: Any = np.float32) -> np.ndarray:
    return np.asarray(RNG.standard_normal(shape)).astype(dtype)


def run_both(
    op: str, feeds: dict[str, np.ndarray], opset: int = 13, **attrs: Any
) -> tuple[Graph, np.ndarray, np.ndarray]:
    """(imported IR graph, qnnc's output, onnx.reference's output) of a one-node model."""
    ins = [
        helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
        for k, v in feeds.items()
    ]
    out = helper.make_tensor_value_info("y", TensorProto.UNDEFINED, None)
    node = helper.make_node(op, list(feeds), ["y"], **attrs)
    model = helper.make_model(helper.make_graph([node], "g", ins, [out]),
                              opset_imports=[helper.make_opsetid("", opset)])
    graph = import_model(model)
    verify(graph)
    got = interpret(graph, feeds)[graph.outputs[0].name]
    want = ReferenceEvaluator(model).run(None, feeds)[0]
    return graph, got, np.asarray(want)


def close(got: np.ndarray, want: np.ndarray, tol: float = 1e-5) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def ops_of(graph: Graph) -> list[str]:
    return [n.op for n in graph.nodes]


def import_error(op: str, feeds: dict[str, np.ndarray], opset: int = 13, **attrs: Any) -> str:
    ins = [helper.make_tensor_value_info(k, TensorProto.FLOAT, v.shape) for k, v in feeds.items()]
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    node = helper.make_node(op, list(feeds), ["y"], **attrs)
    model: onnx.ModelProto = helper.make_model(
        helper.make_graph([node], "g", ins, [out]),
        opset_imports=[helper.make_opsetid("", opset)],
    )
    with pytest.raises(ConversionError) as info:
        import_model(model)
    return str(info.value)


# -- MatMul ---------------------------------------------------------------------------------

MATMUL_SHAPES = [
    ((3, 4), (4, 5)),
    ((4,), (4,)),  # 1-D x 1-D: a scalar
    ((4,), (4, 5)),  # row vector
    ((3, 4), (4,)),  # column vector
    ((4,), (2, 4, 5)),  # 1-D against a batch
    ((2, 3, 4), (4,)),
    ((2, 3, 4), (4, 5)),  # 2-D operand broadcast over the batch
    ((2, 1, 3, 4), (5, 4, 6)),  # batch dims broadcast both ways
    ((1, 3, 4), (2, 2, 4, 5)),
]


@pytest.mark.parametrize(("sa", "sb"), MATMUL_SHAPES)
def test_matmul_matches_reference(sa: tuple[int, ...], sb: tuple[int, ...]) -> None:
    graph, got, want = run_both("MatMul", {"a": rand(*sa), "b": rand(*sb)})
    assert ops_of(graph) == ["MatMul"]
    assert matmul_shape("MatMul", sa, sb) == np.matmul(np.ones(sa), np.ones(sb)).shape
    close(got, want)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float64, np.float16])
def test_matmul_dtypes(dtype: Any) -> None:
    a = RNG.integers(-5, 5, (2, 3, 4)).astype(dtype)
    b = RNG.integers(-5, 5, (4, 3)).astype(dtype)
    _, got, want = run_both("MatMul", {"a": a, "b": b})
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, want)  # small integers: exact in every type


def test_matmul_inner_dimension_mismatch_is_a_clear_error() -> None:
    msg = import_error("MatMul", {"a": rand(3, 4), "b": rand(5, 6)})
    assert "inner dimensions differ" in msg and "'MatMul_0'" in msg


def test_matmul_shape_rejects_unbroadcastable_batches() -> None:
    with pytest.raises(OpError, match="do not broadcast"):
        matmul_shape("MatMul", (2, 3, 4), (3, 4, 5))


# -- Gemm -----------------------------------------------------------------------------------

C_SHAPES: list[tuple[int, ...] | None] = [None, (), (1,), (5,), (1, 5), (3, 1), (3, 5)]


@pytest.mark.parametrize(
    ("trans_a", "trans_b", "alpha", "beta"),
    list(itertools.product([0, 1], [0, 1], [1.0, 0.5], [1.0, -2.0, 0.0])),
)
@pytest.mark.parametrize("c_shape", C_SHAPES)
def test_gemm_every_combination(
    trans_a: int, trans_b: int, alpha: float, beta: float, c_shape: tuple[int, ...] | None
) -> None:
    m, k, n = 3, 4, 5
    feeds = {
        "a": rand(*((k, m) if trans_a else (m, k))),
        "b": rand(*((n, k) if trans_b else (k, n))),
    }
    if c_shape is not None:
        feeds["c"] = rand(*c_shape)
    graph, got, want = run_both("Gemm", feeds, alpha=alpha, beta=beta, transA=trans_a,
                                transB=trans_b)
    assert ops_of(graph) == ["Gemm"]
    attrs = graph.nodes[0].attrs
    assert attrs["transA"] is bool(trans_a) and attrs["transB"] is bool(trans_b)
    assert attrs["alpha"] == alpha
    assert attrs["beta"] == (beta if c_shape is not None else 1.0)  # canonical without C
    close(got, want)


@pytest.mark.parametrize("opset", [6, 9, 11])
def test_gemm_older_opsets(opset: int) -> None:
    feeds = {"a": rand(2, 3), "b": rand(3, 4), "c": rand(4)}
    attrs = {"broadcast": 1} if opset < 7 else {}
    _, got, _ = run_both("Gemm", feeds, opset, alpha=2.0, **attrs)
    np.testing.assert_allclose(got, 2 * feeds["a"] @ feeds["b"] + feeds["c"], rtol=1e-5)


def test_gemm_int32() -> None:
    feeds = {k: RNG.integers(-9, 9, s).astype(np.int32)
             for k, s in (("a", (3, 4)), ("b", (4, 2)), ("c", (2,)))}
    _, got, want = run_both("Gemm", feeds)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, want)


def test_gemm_bad_c_is_a_clear_error() -> None:
    msg = import_error("Gemm", {"a": rand(3, 4), "b": rand(4, 5), "c": rand(4)})
    assert "does not broadcast to the result [3, 5]" in msg


# -- Einsum ---------------------------------------------------------------------------------

EINSUM_CASES: list[tuple[str, list[tuple[int, ...]], str]] = [
    ("ij->ji", [(3, 4)], "Einsum"),
    ("ij->i", [(3, 4)], "Einsum"),
    ("ij", [(3, 4)], "Einsum"),  # implicit: identity
    ("ji", [(3, 4)], "Einsum"),  # implicit: output sorted, so a transpose
    ("...ii ->...i", [(3, 5, 5)], "Einsum"),  # batch diagonal
    ("ii", [(4, 4)], "Einsum"),  # trace
    ("i,i", [(5,), (5,)], "Einsum"),  # inner product, implicit scalar output
    ("i,j->ij", [(3,), (4,)], "Einsum"),  # outer product
    ("->", [()], "Einsum"),
    ("bij, bjk -> bik", [(5, 2, 3), (5, 3, 4)], "MatMul"),
    ("ij,jk", [(2, 3), (3, 4)], "MatMul"),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)], "MatMul"),
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)], "Einsum"),  # attention scores
    ("abc,cd->abd", [(2, 3, 4), (4, 5)], "Einsum"),
    ("b...ij,b...jk->b...ik", [(2, 3, 4, 5), (2, 5, 6)], "Einsum"),  # '...' mid-term
    ("ij,ij->ij", [(3, 4), (3, 4)], "Einsum"),
    ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)], "Einsum"),  # three operands
]


@pytest.mark.parametrize(("equation", "shapes", "ir_op"), EINSUM_CASES)
def test_einsum_matches_reference(
    equation: str, shapes: list[tuple[int, ...]], ir_op: str
) -> None:
    feeds = {f"x{i}": rand(*s, dtype=np.float64) for i, s in enumerate(shapes)}
    graph, got, want = run_both("Einsum", feeds, 12, equation=equation)
    assert ops_of(graph) == [ir_op]
    if ir_op == "Einsum":
        assert graph.nodes[0].attrs["equation"] == canonical_einsum(equation, [len(s) for s in
                                                                              shapes])
    close(got, want, 1e-12)
    np.testing.assert_allclose(got, np.einsum(equation.replace(" ", ""), *feeds.values()))


def test_canonical_einsum_spells_out_the_implicit_output() -> None:
    assert canonical_einsum("ij, jk", [2, 2]) == "ij,jk->ik"
    assert canonical_einsum("ba", [2]) == "ba->ab"
    assert canonical_einsum("...ij,...jk", [3, 3]) == "...ij,...jk->...ik"
    assert canonical_einsum("i,i", [1, 1]) == "i,i->"


@pytest.mark.parametrize(
    ("equation", "shapes", "message"),
    [
        ("ij,jk->ik", [(2, 3), (4, 5)], "label 'j' has sizes 3 and 4"),
        ("ij->ik", [(2, 3)], "do not occur in any operand"),
        ("ij->ii", [(2, 2)], "repeat a label"),
        ("ijk->ij", [(2, 3)], "has rank 2, subscripts 'ijk'"),
        ("i1->i", [(2, 2)], "bad subscripts"),
        ("ij,jk->ik", [(2, 3)], "names 2 operand(s), got 1"),
        ("...ij->ij", [(4, 2, 3)], "must appear in the output"),
    ],
)
def test_einsum_rejections_are_clear(
    equation: str, shapes: list[tuple[int, ...]], message: str
) -> None:
    msg = import_error("Einsum", {f"x{i}": rand(*s) for i, s in enumerate(shapes)}, 12,
                       equation=equation)
    assert "unsupported or invalid equation" in msg and message in msg
