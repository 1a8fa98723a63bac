"""Small helpers shared by the INT8 emitters: quant params, clamp bounds, multiplier tables,
epilogue tables."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ir import qmath
from ir.graph import Node
from ir.ops.qcommon import ADD_SHIFT, add_multipliers, out_type
from ir.ops.registry import get_op
from ir.types import DType, QuantParams, TensorType
from targets.c.emitter import LayerCtx, c_table, plus
from targets.c.expr import Const, Expr, Var
from targets.c.qadd_linear import clamp_of, linear_form


def qparams(t: TensorType) -> QuantParams:
    assert t.quant is not None, t
    return t.quant


def sgn(t: TensorType) -> int:
    """1 for a signed 8-bit tensor: the literal that selects int8_t in csrc/qnnc_int8.h."""
    return 1 if t.dtype is DType.i8 else 0


def _has_lut(ctx: LayerCtx) -> bool:
    return "lut" in get_op(ctx.node.op).operands and ctx.has("lut")


def requant_type(ctx: LayerCtx) -> TensorType:
    """The type a node requantises to: its result type, or, for a product with an epilogue
    table (fuse-epilogue), the codes the table is indexed by (its out_* attributes)."""
    if not _has_lut(ctx):
        return ctx.ot(0)
    return out_type(ctx.node.op, ctx.ot(0).shape, ctx.a)


def epilogue_lut(ctx: LayerCtx) -> tuple[list[str], str | None]:
    """(declaration, C name) of a product's epilogue table as bytes indexed by the stored
    byte of the requantised code (a signed code's table rotated by 128); ([], None) if the
    node has none."""
    if not _has_lut(ctx):
        return [], None
    lut = ctx.const("lut")
    if lut is None:
        raise ctx.fail("the epilogue table must be a compile-time constant")
    return [int_table("ep_lut", "uint8_t", byte_table(lut, requant_type(ctx).dtype))], "ep_lut"


def byte_table(table: Sequence[int] | np.ndarray, index: DType) -> list[int]:
    """A table over the codes of ``index`` (entry k for code qmin + k) as bytes indexed by
    the code's stored byte: a signed code's table rotated by 128 (code -128..127 is stored
    as byte 128..255, 0..127)."""
    t = np.asarray(table, dtype=np.int64) & 0xFF
    if index is DType.i8:
        t = np.concatenate([t[128:], t[:128]])
    return [int(v) for v in t]


def with_lut(store: str, lut: str | None, y: str, n: str | int, stride: str | int = 1) -> str:
    """``store`` (C statement writing n results at y, stride apart), then the epilogue
    table over them while they are in L1."""
    if lut is None:
        return store
    return f"{store} qnnc_lut_n({y}, {n}, {stride}, {lut});"


def clamp_bounds(ctx: LayerCtx) -> tuple[int, int]:
    """The requantised type's range met with the fused activation's act_min/act_max."""
    lo, hi = qmath.qrange(requant_type(ctx).dtype)
    if "act_min" in ctx.a:
        lo, hi = max(lo, int(ctx.a["act_min"])), min(hi, int(ctx.a["act_max"]))
    return lo, hi


def centred(value: str, zero_point: int) -> str:
    """``value - zero_point`` (C text), or ``value`` alone for a zero point of 0."""
    z = int(zero_point)
    return value if z == 0 else (f"{value} - {z}" if z > 0 else f"{value} + {-z}")


def int_table(name: str, ctype: str, values: Sequence[int]) -> str:
    return c_table(name, ctype, [int(v) for v in values])


def mult_exprs(m0: np.ndarray, shift: np.ndarray, index: str) -> tuple[list[str], str, str]:
    """(declarations, M0 expression, n expression) of requantisation multipliers: literals
    when there is one, else per-channel static tables indexed by the C expression ``index``."""
    if m0.size == 1:
        return [], str(int(m0[0])), str(qmath.M0_BITS + int(shift[0]))
    decl = [int_table("req_m0", "int32_t", m0.tolist()),
            int_table("req_n", "int8_t", (shift + qmath.M0_BITS).tolist())]
    return decl, f"req_m0[{index}]", f"req_n[{index}]"


def qadd_n(node: Node, a: str, b: str, y: str) -> Callable[[Expr, str], str]:
    """The same-shape QAdd ``node`` (targets/fusion.residual_fusable) as
    ``call(offset, n)`` over its n elements from ``offset`` of the C arrays ``a``, ``b`` (its
    operands) and ``y`` (its result): qnnc_qadd_lin_n where the op has an exact linear form
    (targets/c/qadd_linear.py), else qnnc_qadd_n. A QConv's epilogue calls it too."""
    ta, tb = (v.type for v in node.inputs if v is not None)
    to = node.outputs[0].type
    (ma, na), (mb, nb), (my, ny) = add_multipliers(ta, tb, to)
    lo, hi = clamp_of(node)
    za, zb, zy = (qparams(t).zero_point[0] for t in (ta, tb, to))
    shifts = [31 + int(v[0]) for v in (na, nb, ny)]
    form = linear_form(node)
    if form is not None:
        return lambda at, n: (
            f"qnnc_qadd_lin_n({plus(a, at)}, {sgn(ta)}, {plus(b, at)}, {sgn(tb)}, "
            f"{plus(y, at)}, {sgn(to)}, {n}, {form.p}, {form.q}, {form.r}, {form.k}, {lo}, "
            f"{hi});")
    return lambda at, n: (
        f"qnnc_qadd_n({plus(a, at)}, {sgn(ta)}, {plus(b, at)}, {sgn(tb)}, {plus(y, at)}, "
        f"{sgn(to)}, {n}, {ADD_SHIFT}, {za}, {int(ma[0])}, {shifts[0]}, {zb}, {int(mb[0])}, "
        f"{shifts[1]}, {int(my[0])}, {shifts[2]}, {zy}, {lo}, {hi});")


CHUNK = 4096  # elements per call of a vectorised helper (and per thread's share)


def chunked(ctx: LayerCtx, n: int, call: Callable[[Expr, str], str]) -> str:
    """``call(start, length)`` over [0, n) in chunks, threaded if on; one call if it fits."""
    if n <= CHUNK:
        return call(Const(0), str(n))
    return (f"{ctx.omp()}for (int i0 = 0; i0 < {n}; i0 += {CHUNK}) {{\n"
            f"    const int len = {n} - i0 < {CHUNK} ? {n} - i0 : {CHUNK};\n"
            f"    {call(Var('i0', 0, n - 1), 'len')}\n}}")
