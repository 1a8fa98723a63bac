"""Matrix products: MatMul (numpy matmul), Gemm (the fusable 2-D form with alpha, beta and
transposes) and Einsum (general tensor contractions with numpy einsum semantics)."""

from __future__ import annotations

import re

import numpy as np

from ir.graph import Node, Value
from ir.ops import cost
from ir.ops.common import broadcast_shapes, reject_quant, require_inputs, same_dtype
from ir.ops.registry import Attr, Attrs, OpError, register, require
from ir.qforms import QuantContext, fused_activation, needs, result_attrs, with_input_means
from ir.types import DType, TensorType


def _numeric(op: str, dt: DType) -> None:
    require(dt is not DType.bool, f"{op}: needs numeric inputs, got bool")


def matmul_shape(op: str, a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """numpy.matmul's result shape: a 1-D operand gets a 1 prepended (a) or appended (b) that
    is dropped again afterwards; the batch dimensions broadcast."""
    require(len(a) >= 1 and len(b) >= 1, f"{op}: operands must have rank >= 1, got {a} and {b}")
    a2 = (1,) + a if len(a) == 1 else a
    b2 = b + (1,) if len(b) == 1 else b
    require(
        a2[-1] == b2[-2],
        f"{op}: inner dimensions differ: {list(a)} x {list(b)} ({a2[-1]} vs {b2[-2]})",
    )
    batch = broadcast_shapes(op, a2[:-2], b2[:-2])
    out = batch + (a2[-2], b2[-1])
    if len(b) == 1:
        out = out[:-1]
    if len(a) == 1:
        out = out[:-2] + out[-1:] if len(b) > 1 else out[:-1]
    return out


# -- quantised forms: QLinear for a constant weight, QMatMul for two activations --------------


def _following_bias(ctx: QuantContext, node: Node, n: int) -> tuple[Node, np.ndarray] | None:
    """The Add of a constant bias (one value per output column, the last axis) that is the
    only reader of ``node``'s result, with the bias as float64 [n]; None if there is none.
    Exporters write MatMul + Add for a linear layer with more than two dimensions."""
    out = node.outputs[0]
    add = ctx.sole_reader(out)
    if add is None or add.op != "Add" or ctx.skipped(add):
        return None
    const = next((v for v in add.inputs if v is not None and v is not out
                  and ctx.is_constant(v)), None)
    c = ctx.constant(const)
    if c is None or add.outputs[0].type.shape != out.type.shape:
        return None
    c = np.asarray(c, dtype=np.float64)
    if c.ndim > out.type.rank or any(d != 1 for d in c.shape[:-1]) or \
            (c.ndim and c.shape[-1] not in (1, n)):
        return None
    return add, np.broadcast_to(c.reshape(-1), (n,)).copy()


def _linear(ctx: QuantContext, node: Node, x: Value, w: Value, b: Value | None, n: int, *,
            transpose: bool, alpha: float = 1.0, beta: float = 1.0) -> None:
    """QLinear of activation ``x`` and constant weight ``w`` (stored [N, K], or [K, N] with
    ``transpose``), absorbing a bias Add and a Relu/Clip that follow."""
    bias: Value | np.ndarray | None = b
    result, add = node.outputs[0], None
    if b is None and (found := _following_bias(ctx, node, n)) is not None:
        add, bias = found
        result = add.outputs[0]
    act, result = fused_activation(ctx, result)
    out = result_attrs(ctx, result, act)
    xq = ctx.act(x)
    wq, bq = ctx.weights(node, x, xq, w, bias, transpose=transpose, alpha=alpha, beta=beta)
    ctx.emit("QLinear", [xq, wq, bq], out, [node, add, act], [result])


@with_input_means("b", channels_last=True)
def quantize_matmul(ctx: QuantContext, node: Node) -> None:
    """MatMul by a constant 2-D weight → QLinear (with a bias Add and Relu/Clip that follow);
    of two activations → QMatMul."""
    a, b = node.a, node.b
    needs(a is not None and b is not None)
    if ctx.is_constant(b) and b.type.rank == 2 and not ctx.is_constant(a):
        _linear(ctx, node, a, b, None, b.type.shape[1], transpose=True)
        return
    out = node.outputs[0]
    ins = [ctx.act(a), ctx.act(b)]
    ctx.emit("QMatMul", ins, ctx.out_params(out).attrs(), [node], [out])


@with_input_means("b", channels_last=True)
def quantize_gemm(ctx: QuantContext, node: Node) -> None:
    """Gemm with a constant weight → QLinear: alpha folds into the weights, beta into the
    bias (which must vary along the output columns only)."""
    a, b, c = node.a, node.b, node.c
    at = node.attrs
    needs(a is not None and a.type.rank == 2 and not at["transA"] and ctx.is_constant(b)
          and (c is None or ctx.is_constant(c)))
    n = node.outputs[0].type.shape[1]
    _linear(ctx, node, a, b, c, n, transpose=not at["transB"], alpha=at["alpha"],
            beta=at["beta"])


@register
class MatMul:
    """y = a @ b with numpy.matmul semantics: the last two axes multiply, leading (batch) axes
    broadcast, and a 1-D operand acts as a row (a) or column (b) vector whose unit axis is
    removed from the result."""

    operands = ("a", "b")
    attrs: dict[str, Attr] = {}
    flops = cost.matmul
    tiled = "matmul"
    stacks = "alone"
    quantized = quantize_matmul

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        x, y = require_inputs("MatMul", ins, 2)
        reject_quant("MatMul", [x, y])
        dt = same_dtype("MatMul", [x, y])
        _numeric("MatMul", dt)
        return [TensorType(matmul_shape("MatMul", x.shape, y.shape), dt)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, y = ins
        assert x is not None and y is not None
        return [np.asarray(np.matmul(x, y)).astype(x.dtype, copy=False)]


@register
class Gemm:
    """y = alpha * op(a) @ op(b) + beta * c, with op(t) = t.T when trans* is set.

    a and b are 2-D; the optional c broadcasts unidirectionally to the (M, N) result. Kept as
    one op (instead of MatMul + Mul + Add) because this is the form that fully-connected
    layers, bias fusion and BatchNorm folding work on. Without c, beta is 1 (canonical).
    """

    operands = ("a", "b", "c?")
    flops = cost.gemm
    tiled = "matmul"
    stacks = "alone"
    quantized = quantize_gemm
    attrs = {
        "alpha": Attr("float", 1.0, "scales the product"),
        "beta": Attr("float", 1.0, "scales c"),
        "transA": Attr("bool", False, "use a transposed (a is K x M)"),
        "transB": Attr("bool", False, "use b transposed (b is N x K)"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        x, y = require_inputs("Gemm", ins, 2)
        c = ins[2] if len(ins) > 2 else None
        reject_quant("Gemm", [x, y, c])
        dt = same_dtype("Gemm", [x, y] + ([c] if c is not None else []))
        _numeric("Gemm", dt)
        require(len(x.shape) == 2 and len(y.shape) == 2,
                f"Gemm: a and b must be 2-D, got {list(x.shape)} and {list(y.shape)}")
        m, k = x.shape[::-1] if a["transA"] else x.shape
        k2, n = y.shape[::-1] if a["transB"] else y.shape
        require(k == k2, f"Gemm: inner dimensions differ: op(a) is {m}x{k}, op(b) is {k2}x{n}")
        if c is not None:
            fits = len(c.shape) <= 2 and all(
                d in (1, full) for d, full in zip(c.shape[::-1], (n, m))
            )
            require(fits, f"Gemm: c of shape {list(c.shape)} does not broadcast to the "
                          f"result [{m}, {n}]")
        return [TensorType((m, n), dt)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, y = ins[0], ins[1]
        c = ins[2] if len(ins) > 2 else None
        assert x is not None and y is not None
        # f16 accumulates in f32 (as real kernels do); other types compute in their own type.
        wt = np.float32 if x.dtype == np.float16 else x.dtype
        xa = x.T if a["transA"] else x
        yb = y.T if a["transB"] else y
        acc = np.matmul(xa.astype(wt), yb.astype(wt))
        if a["alpha"] != 1.0:
            acc = acc * a["alpha"]
        if c is not None:
            acc = acc + (c.astype(wt) * a["beta"] if a["beta"] != 1.0 else c.astype(wt))
        return [np.asarray(acc).astype(x.dtype)]


# -- Einsum ---------------------------------------------------------------------------------

_TERM = re.compile(r"^[A-Za-z]*(\.\.\.)?[A-Za-z]*$")


def _split_term(op: str, term: str) -> tuple[str, str, bool]:
    """(labels before '...', labels after '...', whether '...' occurs)."""
    if not _TERM.match(term):
        raise OpError(f"{op}: bad subscripts {term!r}: use letters and at most one '...'")
    head, dots, tail = term.partition("...")
    return head, tail, bool(dots)


def canonical_einsum(equation: str, ranks: list[int]) -> str:
    """The explicit form of an einsum equation: spaces removed and the output spelled out.

    In implicit mode (no '->') the output is '...' (if any operand has one) followed by the
    labels that occur exactly once, in alphabetical order, as numpy and ONNX define it.
    """
    op = "Einsum"
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        raise OpError(f"{op}: equation {equation!r} names {len(terms)} operand(s), "
                      f"got {len(ranks)}")
    parts = [_split_term(op, t) for t in terms]
    if arrow:
        _split_term(op, rhs)
        return eq
    letters = "".join(h + t for h, t, _ in parts)
    once = sorted(ch for ch in set(letters) if letters.count(ch) == 1)
    dots = "..." if any(d for _, _, d in parts) else ""
    return f"{lhs}->{dots}{''.join(once)}"


def einsum_shape(equation: str, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    """Output shape of a canonical einsum equation, checking every operand against it."""
    op = "Einsum"
    lhs, _, rhs = equation.partition("->")
    sizes: dict[str, int] = {}
    ell: tuple[int, ...] = ()
    any_dots = False
    for i, (term, shape) in enumerate(zip(lhs.split(","), shapes)):
        head, tail, dots = _split_term(op, term)
        n_ell = len(shape) - len(head) - len(tail)
        if n_ell < 0 or (n_ell and not dots):
            raise OpError(f"{op}: operand {i} has rank {len(shape)}, subscripts {term!r}")
        any_dots |= dots
        ell = broadcast_shapes(op, ell, shape[len(head):len(head) + n_ell])
        for ch, d in zip(head + tail, shape[:len(head)] + shape[len(shape) - len(tail):]):
            if sizes.setdefault(ch, d) != d:
                raise OpError(f"{op}: label {ch!r} has sizes {sizes[ch]} and {d}; labelled "
                              "axes must match exactly (only '...' broadcasts)")
    head, tail, dots = _split_term(op, rhs)
    out = head + tail
    if len(set(out)) != len(out):
        raise OpError(f"{op}: output subscripts {rhs!r} repeat a label")
    missing = [ch for ch in out if ch not in sizes]
    if missing:
        raise OpError(f"{op}: output labels {missing} do not occur in any operand")
    if dots and not any_dots:
        raise OpError(f"{op}: output has '...' but no operand does")
    if any_dots and ell and not dots:
        raise OpError(f"{op}: the operands' '...' axes {list(ell)} must appear in the output")
    return tuple(sizes[ch] for ch in head) + (ell if dots else ()) + tuple(
        sizes[ch] for ch in tail
    )


@register
class Einsum:
    """Einstein summation with numpy.einsum semantics: labels shared between operands are
    multiplied, labels missing from the output are summed, a label repeated within one operand
    takes the diagonal, and '...' stands for broadcast leading axes.

    ``equation`` is canonical: explicit ('->' present) and without spaces. The frontend turns
    the plain batched-matmul form into MatMul, so this op carries the remaining contractions.
    """

    operands = ("values*",)
    flops = cost.einsum
    attrs = {"equation": Attr("str", doc="explicit einsum equation, e.g. 'bij,bjk->bik'")}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        types = require_inputs("Einsum", ins, len(ins))
        dt = same_dtype("Einsum", types)
        _numeric("Einsum", dt)
        eq = a["equation"]
        canon = canonical_einsum(eq, [len(t.shape) for t in types])
        require(canon == eq, f"Einsum: equation {eq!r} is not canonical (expected {canon!r})")
        return [TensorType(einsum_shape(eq, [t.shape for t in types]), dt)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        arrays = [x for x in ins if x is not None]
        dt = arrays[0].dtype
        if dt.kind == "V":  # bfloat16: numpy's einsum has no kernel; sum in f32, round once
            arrays = [x.astype(np.float32) for x in arrays]
        y = np.einsum(a["equation"], *arrays)
        return [np.asarray(y).astype(dt, copy=False)]
