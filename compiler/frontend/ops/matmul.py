"""Converters of ONNX matrix-product ops: MatMul, Gemm, Einsum."""

from __future__ import annotations

from compiler.frontend.context import Ctx
from compiler.frontend.registry import converter
from ir.graph import Value
from ir.ops.matmul import canonical_einsum, einsum_shape
from ir.ops.registry import OpError


@converter("MatMul")
def matmul(ctx: Ctx, a: Value, b: Value) -> Value:
    return ctx.op("MatMul", [a, b])


@converter("Gemm")
def gemm(
    ctx: Ctx, a: Value, b: Value, c: Value | None = None, *, alpha: float = 1.0,
    beta: float = 1.0, transA: int = 0, transB: int = 0, broadcast: int = 0,
) -> Value:
    # `broadcast` (opset < 7) only allowed what unidirectional broadcasting of c now does.
    if c is None:
        return ctx.op("Gemm", [a, b], alpha=alpha, beta=1.0, transA=transA, transB=transB)
    return ctx.op("Gemm", [a, b, c], alpha=alpha, beta=beta, transA=transA, transB=transB)


def _matmul_form(equation: str) -> bool:
    """Whether a canonical equation is a (batched) matrix product 'Pij,Pjk->Pik', where the
    batch prefix P is the same in all three terms (with '...' only at its start) and i, j, k
    are distinct new labels."""
    lhs, _, out = equation.partition("->")
    terms = lhs.split(",")
    if len(terms) != 2 or min(len(t) for t in terms + [out]) < 2:
        return False
    t1, t2 = terms
    pre = t1[:-2]
    if t2[:-2] != pre or out[:-2] != pre or "..." in pre[1:]:
        return False  # '...' after a batch label would not align the way MatMul's batch does
    i, j, k = t1[-2], t1[-1], t2[-1]
    labels = pre.replace("...", "")
    return (
        t2[-2] == j and out[-2:] == i + k and len({i, j, k}) == 3
        and "." not in i + j + k and not {i, j, k} & set(labels)
        and len(set(labels)) == len(labels)
    )


@converter("Einsum", ir_ops=("Einsum", "MatMul"))
def einsum(ctx: Ctx, *operands: Value, equation: str) -> Value:
    if any(v is None for v in operands):
        raise ctx.fail("Einsum operands cannot be omitted")
    try:
        eq = canonical_einsum(equation, [len(v.type.shape) for v in operands])
        einsum_shape(eq, [v.type.shape for v in operands])
    except OpError as e:
        raise ctx.fail(f"unsupported or invalid equation {equation!r}: {e}") from None
    if _matmul_form(eq):
        return ctx.op("MatMul", list(operands))
    return ctx.op("Einsum", list(operands), equation=eq)
