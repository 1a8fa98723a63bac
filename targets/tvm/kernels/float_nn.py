"""Float products of float graphs: Conv, ConvTranspose, Gemm and MatMul in float32 or
float64, each summing in its own type. They agree with the interpreter within a tolerance
scaled by the magnitude of the sum (its terms run in another order than numpy's matmul), not
bit for bit. float16 (which the interpreter sums in float32) has no kernel here."""

from __future__ import annotations

from typing import Any

from ir.graph import Node, Value
from targets.tvm.api import te, tir
from targets.tvm.context import Kernel, Tensor
from targets.tvm.kernels.common import broadcast_index, conv_extent, padded
from targets.tvm.registry import kernel

FLOATS = ("float32", "float64")


def float_operands(node: Node) -> bool:
    """Every operand and result an unquantised float32 or float64 tensor, all of one type."""
    values = [v for v in node.inputs if isinstance(v, Value)] + list(node.outputs)
    dts = {v.type.dtype.np.name for v in values}
    return len(dts) == 1 and dts <= set(FLOATS) and all(v.type.quant is None for v in values)


@kernel("Conv", accepts=float_operands)
def conv(k: Kernel) -> list[Tensor]:
    """y[n, m, o...] = b[m] + sum_{c, t...} x_pad[n, g*Cg + c, o*s + t*d] * w[m, c, t...],
    g = m // (M / group), x_pad = x with ``pads`` zeros before and after each spatial axis;
    summed in x's type."""
    a = k.attrs
    (y,) = k.out_types
    xt, wt = k.type_of("x"), k.type_of("w")
    x, w = k.operand("x"), k.operand("w")
    b = k.operand("b") if k.has("b") else None
    nsp = xt.rank - 2
    strides, dil, pads = a["strides"], a["dilations"], a["pads"]
    outs, kern = list(y.shape[2:]), list(wt.shape[2:])
    extent = conv_extent(xt.shape[2:], outs, kern, strides, dil, pads)
    needs_pad = any(e != xt.shape[2 + i] for i, e in enumerate(extent))
    xp = padded(x, pads[:nsp], extent, lambda v: v, tir.const(0.0, x.dtype),
                "x_padded") if needs_pad else x
    cg, mg = wt.shape[1], wt.shape[0] // a["group"]
    rc = te.reduce_axis((0, cg), name="rc")
    rk = [te.reduce_axis((0, kern[i]), name=f"rk{i}") for i in range(nsp)]

    def dot(n: Any, m: Any, *o: Any) -> Any:
        pos = [o[i] * strides[i] + rk[i] * dil[i] for i in range(nsp)]
        xv = xp[(n, tir.indexdiv(m, mg) * cg + rc, *pos)]
        return te.sum(xv * w[(m, rc, *rk)], axis=[rc, *rk])

    acc = te.compute(y.shape, dot, name="acc")
    if b is None:
        return [acc]
    return [te.compute(y.shape, lambda n, m, *o: acc[(n, m, *o)] + b[m], name="y")]


@kernel("ConvTranspose", accepts=float_operands)
def conv_transpose(k: Kernel) -> list[Tensor]:
    """y[n, m, o...] = b[m] + sum_{c, t...} x[n, g*Cg + c, i...] * w[g*Cg + c, m % Mg, t...]
    over the taps with o + pads_begin = i*s + t*d for an i inside x (g = m // Mg); output
    cells no tap reaches (output_padding, negative pads) hold b[m] (or 0)."""
    a = k.attrs
    (y,) = k.out_types
    xt, wt = k.type_of("x"), k.type_of("w")
    x, w = k.operand("x"), k.operand("w")
    b = k.operand("b") if k.has("b") else None
    nsp = xt.rank - 2
    s, d, pads = a["strides"], a["dilations"], a["pads"]
    sizes, kern = list(xt.shape[2:]), list(wt.shape[2:])
    cg, mg = xt.shape[1] // a["group"], wt.shape[1]
    rc = te.reduce_axis((0, cg), name="rc")
    rk = [te.reduce_axis((0, kern[i]), name=f"rk{i}") for i in range(nsp)]
    zero = tir.const(0.0, y.dtype.np.name)

    def dot(n: Any, m: Any, *o: Any) -> Any:
        q = [o[i] + pads[i] - rk[i] * d[i] for i in range(nsp)]
        hit = tir.all(*[tir.all(q[i] >= 0, tir.floormod(q[i], s[i]) == 0,
                                tir.floordiv(q[i], s[i]) < sizes[i]) for i in range(nsp)])
        src = [tir.max(tir.min(tir.floordiv(q[i], s[i]), sizes[i] - 1), 0) for i in range(nsp)]
        c = tir.indexdiv(m, mg) * cg + rc
        v = x[(n, c, *src)] * w[(c, tir.indexmod(m, mg), *rk)]
        return te.sum(tir.if_then_else(hit, v, zero), axis=[rc, *rk])

    acc = te.compute(y.shape, dot, name="acc")
    if b is None:
        return [acc]
    return [te.compute(y.shape, lambda n, m, *o: acc[(n, m, *o)] + b[m], name="y")]


@kernel("Gemm", accepts=float_operands)
def gemm(k: Kernel) -> list[Tensor]:
    """y[i, j] = alpha * sum_r op(a)[i, r] * op(b)[r, j] + beta * c[i, j] (c broadcast to
    (M, N); op transposes when transA / transB), the multiplications by alpha and beta left
    out where they are 1 (as the interpreter does); alpha and beta read from memory."""
    a = k.attrs
    (y,) = k.out_types
    dt = y.dtype.np.name
    at = k.type_of("a")
    x, w = k.operand("a"), k.operand("b")
    inner = at.shape[0] if a["transA"] else at.shape[1]
    r = te.reduce_axis((0, inner), name="r")

    def dot(i: Any, j: Any) -> Any:
        av = x[r, i] if a["transA"] else x[i, r]
        bv = w[j, r] if a["transB"] else w[r, j]
        return te.sum(av * bv, axis=r)

    acc = te.compute(y.shape, dot, name="acc")
    alpha = k.per_channel([a["alpha"]], "alpha", dt) if a["alpha"] != 1.0 else None
    if not k.has("c"):
        if alpha is None:
            return [acc]
        return [te.compute(y.shape, lambda i, j: acc[i, j] * alpha(0), name="y")]
    c, ct = k.operand("c"), k.type_of("c")
    beta = k.per_channel([a["beta"]], "beta", dt) if a["beta"] != 1.0 else None

    def out(i: Any, j: Any) -> Any:
        p = acc[i, j] if alpha is None else acc[i, j] * alpha(0)
        cv = c[tuple(broadcast_index(ct.shape, (i, j)))]
        return p + (cv if beta is None else cv * beta(0))

    return [te.compute(y.shape, out, name="y")]


def _not_two_vectors(node: Node) -> bool:
    a, b = node.operand("a"), node.operand("b")
    return float_operands(node) and not (a.type.rank == 1 and b.type.rank == 1)


@kernel("MatMul", accepts=_not_two_vectors)
def matmul(k: Kernel) -> list[Tensor]:
    """y[batch..., i, j] = sum_r a[batch..., i, r] * b[batch..., r, j] (numpy.matmul: the
    batch axes broadcast; a 1-D a is one row, a 1-D b one column, and that axis is not in
    y). Two 1-D operands (a scalar result) have no kernel here."""
    (y,) = k.out_types
    at, bt = k.type_of("a"), k.type_of("b")
    x, w = k.operand("a"), k.operand("b")
    inner = at.shape[-1]
    r = te.reduce_axis((0, inner), name="r")
    tail = (1 if at.rank > 1 else 0) + (1 if bt.rank > 1 else 0)

    def dot(*o: Any) -> Any:
        batch = o[:len(o) - tail]
        i = o[len(batch)] if at.rank > 1 else None
        j = o[-1] if bt.rank > 1 else None
        ai = (r,) if at.rank == 1 else (*broadcast_index(at.shape[:-2], batch), i, r)
        bi = (r,) if bt.rank == 1 else (*broadcast_index(bt.shape[:-2], batch), r, j)
        return te.sum(x[ai] * w[bi], axis=r)

    return [te.compute(y.shape, dot, name="y")]
