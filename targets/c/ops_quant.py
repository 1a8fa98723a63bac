"""INT8 emitters: the float/integer boundary (Quantize, Dequantize, Retype), Requantize,
QAdd, QMul, QLut, and (in the sibling modules) products and pools.

Every formula is ir/qmath's, through csrc/qnnc_int8.h: qnnc_requant is requantize_raw plus
zero point and clamp, written once; (M0, shift) come from ir.ops.qcommon at compile time, so
the C uses exactly the interpreter's multipliers, as literals or static tables.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

import targets.c.ops_pool
import targets.c.ops_quant_conv
import targets.c.ops_quant_linear
import targets.c.ops_quant_pool
import targets.c.ops_shape  # noqa: F401  (the float emitters wrapped below register first)
from ir import qmath
from ir.ops.qcommon import ADD_SHIFT, add_multipliers, product_multiplier, rescale_multiplier
from ir.types import DType
from targets.c.emitter import (
    EMITTERS,
    Emitter,
    LayerCtx,
    c_table,
    emits,
    float_lit,
    nested_loops,
    offset,
    plus,
    strides_of,
)
from targets.c.expr import Const, Expr, Var, add
from targets.c.ops_elementwise import broadcast_strides, collapse
from targets.c.ops_quant_util import (
    byte_table,
    centred,
    chunked,
    clamp_bounds,
    int_table,
    qadd_n,
    qparams,
    sgn,
)
from targets.c.stmt import loop, nested
from targets.fusion import residual_fusable

# model.c must include the integer kernels. The renderer's header list belongs to the
# framework; until it names qnnc_int8.h itself, the INT8 emitters add it on import.


def _flat(ctx: LayerCtx, body: Callable[[Expr], str]) -> str:
    """``body(i)`` for every element index ``i`` of the output."""
    return nested_loops([ctx.ot(0).size], lambda i: body(i[0]), omp=ctx.omp())


def _byte_sized(t: DType) -> bool:
    return t in (DType.u8, DType.i8)


def _axis_loops(ctx: LayerCtx, axis: int, body: Callable[[Expr, Expr], str]) -> str:
    """``body(e, c)`` for every element ``e`` of the input, ``c`` its index along ``axis``."""
    shape = ctx.it(0).shape
    outer = int(np.prod(shape[:axis]))
    ch, inner = shape[axis], int(np.prod(shape[axis + 1:]))
    return nested_loops([outer, ch, inner], lambda oci: body(
        (oci[0] * ch + oci[1]) * inner + oci[2], oci[1]), var="i")


@emits("Quantize", inplace=False)
def quantize(ctx: LayerCtx) -> str:
    """q = saturate(rint(x / scale) + zp), x / scale in float32 (qnnc_quantize)."""
    if ctx.it(0).dtype.name != "f32":
        raise ctx.fail("Quantize reads f32 here")
    scale, zps = ctx.a["scale"], ctx.a["zero_point"]
    lo, hi = qmath.qrange(ctx.ot(0).dtype)
    ct = ctx.ctype(ctx.ot(0))
    x, y = ctx.i(0), ctx.o(0)
    if len(scale) == 1:
        s = float_lit(float(np.float32(scale[0])))
        if _byte_sized(ctx.ot(0).dtype):
            return chunked(ctx, ctx.ot(0).size, lambda i0, n: (
                f"qnnc_quantize_n({plus(x, i0)}, {plus(y, i0)}, {n}, {s}, {int(zps[0])}, "
                f"{lo}, {hi}, {sgn(ctx.ot(0))});"))
        return _flat(ctx, lambda i: f"{y}[{i}] = ({ct})qnnc_quantize({x}[{i}], {s}, "
                                    f"{int(zps[0])}, {lo}, {hi});")
    axis = ctx.a["axis"] % ctx.it(0).rank
    tab = _scale_tables(scale, zps)
    return tab + "\n" + _axis_loops(ctx, axis, lambda e, c: (
        f"{y}[{e}] = ({ct})qnnc_quantize({x}[{e}], qs[{c}], qz[{c}], {lo}, {hi});"))


@emits("Dequantize")
def dequantize(ctx: LayerCtx) -> str:
    """x = (float)(q - zp) * scale in float32 (qnnc_dequantize)."""
    q = qparams(ctx.it(0))
    x, y = ctx.i(0), ctx.o(0)
    if len(q.scale) == 1:
        s = float_lit(float(np.float32(q.scale[0])))
        zp = int(q.zero_point[0])
        if _byte_sized(ctx.it(0).dtype) and ctx.ot(0).dtype is DType.f32:
            return chunked(ctx, ctx.ot(0).size, lambda i0, n: (
                f"qnnc_dequantize_n({plus(x, i0)}, {plus(y, i0)}, {n}, {zp}, {s}, "
                f"{sgn(ctx.it(0))});"))
        return _flat(ctx, lambda i: f"{y}[{i}] = qnnc_dequantize({x}[{i}], {zp}, {s});")
    assert q.axis is not None
    tab = _scale_tables(q.scale, q.zero_point)
    return tab + "\n" + _axis_loops(ctx, q.axis, lambda e, c: (
        f"{y}[{e}] = qnnc_dequantize({x}[{e}], qz[{c}], qs[{c}]);"))


def _scale_tables(scale: Sequence[float], zps: Sequence[int]) -> str:
    """Per-channel ``qs`` (float32 scales) and ``qz`` (zero points) tables."""
    return (c_table("qs", "float", [float_lit(float(np.float32(v))) for v in scale]) + "\n"
            + int_table("qz", "int32_t", zps))


@emits("Retype")
def retype(ctx: LayerCtx) -> str:
    """Only the type changes: a copy (or nothing, when input and output share storage)."""
    if ctx.same_storage(0, 0):
        return ""
    return f"memcpy({ctx.o(0)}, {ctx.i(0)}, {ctx.ot(0).nbytes});"


@emits("Requantize", inplace=True)
def requantize(ctx: LayerCtx) -> str:
    """y = clamp(zy + requant(x - zx)); between 8-bit types eight lanes at a time
    (qnnc_requantize_n: a Concat input's rescale, e.g.)."""
    ti, to = ctx.it(0), ctx.ot(0)
    m0, shift = rescale_multiplier(ctx.it(0), ctx.ot(0))
    zx, zy = qparams(ctx.it(0)).zero_point[0], qparams(ctx.ot(0)).zero_point[0]
    lo, hi = clamp_bounds(ctx)
    x, y = ctx.i(0), ctx.o(0)
    if _byte_sized(ti.dtype) and _byte_sized(to.dtype):
        return chunked(ctx, to.size, lambda i0, n: (
            f"qnnc_requantize_n({plus(x, i0)}, {sgn(ti)}, {plus(y, i0)}, {sgn(to)}, {n}, {zx}, "
            f"{int(m0[0])}, {31 + int(shift[0])}, {zy}, {lo}, {hi});"))
    ct = ctx.ctype(ctx.ot(0))
    return _flat(ctx, lambda i: (
        f"{y}[{i}] = ({ct})qnnc_requant({centred(f'(int64_t){x}[{i}]', zx)}, {int(m0[0])}, "
        f"{31 + int(shift[0])}, {zy}, {lo}, {hi});"))


@emits("QLut", inplace=True)
def qlut(ctx: LayerCtx) -> str:
    """y = table[x - lo(x's type)]; between 8-bit types, the table as bytes indexed by x's
    stored byte (a signed input's rotated by 128), 32 codes at a time (qnnc_lut_copy)."""
    lo, _ = qmath.qrange(ctx.it(0).dtype)
    x, y = ctx.i(0), ctx.o(0)
    if _byte_sized(ctx.it(0).dtype) and _byte_sized(ctx.ot(0).dtype):
        tab = int_table("lut", "uint8_t", byte_table(ctx.a["table"], ctx.it(0).dtype))
        return tab + "\n" + chunked(ctx, ctx.ot(0).size, lambda i0, n: (
            f"qnnc_lut_copy({plus(x, i0)}, {plus(y, i0)}, {n}, lut);"))
    ct = ctx.ctype(ctx.ot(0))
    tab = int_table("lut", ct, ctx.a["table"])
    return tab + "\n" + _flat(ctx, lambda i: f"{y}[{i}] = lut[{centred(f'(int){x}[{i}]', lo)}];")


def _broadcast(ctx: LayerCtx, body: str) -> str:
    """``body`` over the broadcast output with ``a``/``b`` bound to the two operands."""
    ta, tb, to = ctx.it(0), ctx.it(1), ctx.ot(0)
    dims, (sa, sb, so) = collapse(to.shape, [broadcast_strides(ta.shape, to.shape),
                                             broadcast_strides(tb.shape, to.shape),
                                             strides_of(to.shape)])
    x0, x1, y, cy = ctx.i(0), ctx.i(1), ctx.o(0), ctx.ctype(to)
    za, zb = qparams(ta).zero_point[0], qparams(tb).zero_point[0]
    return nested_loops(dims, lambda idx: (
        f"const int64_t a = {centred(f'(int64_t){x0}[{offset(idx, sa)}]', za)};\n"
        f"const int64_t b = {centred(f'(int64_t){x1}[{offset(idx, sb)}]', zb)};\n"
        f"{y}[{offset(idx, so)}] = ({cy}){body};"), omp=ctx.omp())


@emits("QAdd", inplace=True)
def qadd(ctx: LayerCtx) -> str:
    """a' = requant_raw((a - za) << L, Ma), b' likewise, y = requant(a' + b', My); the shift
    is a multiplication by 2^L (shifting a negative value left is undefined in C). A
    same-shape 8-bit add (a residual connection) runs eight lanes at a time (qnnc_qadd_n)
    when every multiplier is below 1, as they are unless the output scale is below 2^-20
    of the inputs'."""
    ta, tb, to = ctx.it(0), ctx.it(1), ctx.ot(0)
    (ma, na), (mb, nb), (my, ny) = add_multipliers(ta, tb, to)
    lo, hi = clamp_bounds(ctx)
    zy = qparams(to).zero_point[0]
    if residual_fusable(ctx.node):
        call = qadd_n(ctx.node, ctx.i(0), ctx.i(1), ctx.o(0))
        return chunked(ctx, to.size, call)
    one = f"{1 << ADD_SHIFT}"
    body = (f"qnnc_requant(qnnc_requant_raw(a * {one}, {int(ma[0])}, {31 + int(na[0])}) + "
            f"qnnc_requant_raw(b * {one}, {int(mb[0])}, {31 + int(nb[0])}), {int(my[0])}, "
            f"{31 + int(ny[0])}, {zy}, {lo}, {hi})")
    return _broadcast(ctx, body)


@emits("QMul", inplace=True)
def qmul(ctx: LayerCtx) -> str:
    m0, shift = product_multiplier(ctx.it(0), ctx.it(1), ctx.ot(0), "QMul")
    lo, hi = clamp_bounds(ctx)
    zy = qparams(ctx.ot(0)).zero_point[0]
    rows = _scaled_rows(ctx, int(m0[0]), 31 + int(shift[0]), int(zy), lo, hi)
    if rows is not None:
        return rows
    return _broadcast(ctx, f"qnnc_requant(a * b, {int(m0[0])}, {31 + int(shift[0])}, {zy}, "
                           f"{lo}, {hi})")


def _scaled_rows(ctx: LayerCtx, m0: int, nsh: int, zy: int, lo: int, hi: int) -> str | None:
    """A QMul whose one operand is constant along the innermost run of the other (a
    per-channel scale times a feature map): each run is one qnnc_qmul_by_n call with that
    code. None for any other broadcast."""
    to = ctx.ot(0)
    for k in (1, 0):  # which operand is the broadcast one
        big, small = ctx.it(1 - k), ctx.it(k)
        if big.shape != to.shape or not _byte_sized(to.dtype):
            continue
        dims, (sb, ss, so) = collapse(to.shape, [broadcast_strides(big.shape, to.shape),
                                                 broadcast_strides(small.shape, to.shape),
                                                 strides_of(to.shape)])
        if len(dims) == 1:  # times one code everywhere
            dims, sb, ss, so = [1, dims[0]], [0, *sb], [0, *ss], [0, *so]
        if len(dims) != 2 or ss[1] != 0 or sb != so or so[1] != 1:
            continue
        rows, run = dims
        zb, zs = qparams(big).zero_point[0], qparams(small).zero_point[0]
        x, b, y = ctx.i(1 - k), ctx.i(k), ctx.o(0)
        hr, r = loop("r", rows)
        return "\n".join([
            f"/* QMul: {rows} runs of {run} codes, each times one code of the other operand */",
            *([ctx.omp().rstrip("\n")] if hr and ctx.omp() else []),
            *nested([hr], [
                f"qnnc_qmul_by_n({plus(x, r * run)}, {sgn(big)}, {plus(y, r * run)}, {sgn(to)}, "
                f"{run}, {zb}, {centred(f'(int32_t){b}[{r * ss[0]}]', zs)}, {m0}, {nsh}, {zy}, "
                f"{lo}, {hi});"])])
    return None


# -- data movement on 8-bit tensors ------------------------------------------------------------
# The float emitters of Resize and GlobalMaxPool insist on float types; integer tensors
# (quantised activations) get these, and everything else still goes to the float emitter.


def _int_or(op: str, int_fn: Callable[[LayerCtx], str]) -> None:
    base = EMITTERS[op]

    def dispatch(ctx: LayerCtx) -> str:
        return base.fn(ctx) if ctx.ot(0).dtype.is_float else int_fn(ctx)

    EMITTERS[op] = Emitter(dispatch, base.inplace, base.scratch)


def _int_global_max(ctx: LayerCtx) -> str:
    x = ctx.it(0).shape
    nc, s = x[0] * x[1], int(np.prod(x[2:]))
    ct = ctx.ctype(ctx.ot(0))
    hnc, c = loop("nc", nc)
    return "\n".join(nested([hnc], [
        f"const {ct} *xc = {plus(ctx.i(0), c * s)};",
        f"{ct} m = xc[0];",
        f"for (int i = 1; i < {s}; ++i) if (xc[i] > m) m = xc[i];",
        f"{ctx.o(0)}[{c}] = m;",
    ]))


#: the last axis of a nearest Resize of bytes whose source indices are j // 2
DOUBLED = "doubled"


def _int_resize(ctx: LayerCtx) -> str:
    """Nearest Resize of an integer tensor: one source index per output index and axis."""
    from ir.ops.resize import axis_taps, source_coords

    a = ctx.a
    if a["mode"] != "nearest" or a["coordinate_transformation_mode"] == "tf_crop_and_resize":
        raise ctx.fail("integer Resize supports mode nearest only")
    x, y = ctx.it(0).shape, ctx.ot(0).shape
    xst, lines, axes = strides_of(x), [], []
    for k in range(len(x)):
        if y[k] == x[k] and float(a["scales"][k]) == 1.0:
            axes.append(None)
            continue
        src = source_coords(a["coordinate_transformation_mode"], y[k], x[k], a["scales"][k], (0, 1))
        idx, _ = axis_taps(src, x[k], a["scales"][k], a)
        source = [int(v) for v in idx[:, 0]]  # each output index's source index
        if k == len(x) - 1 and source == [j // 2 for j in range(y[k])] and \
                ctx.ot(0).dtype.np.itemsize == 1:
            axes.append(DOUBLED)  # 2x upsampling of bytes: qnnc_upsample2_row8, no table
            continue
        lines.append(int_table(f"ix{k}", "int", source))
        axes.append(f"ix{k}")

    last, ct = len(y) - 1, ctx.ctype(ctx.ot(0))
    size = f"{y[last]} * sizeof({ct})"

    def row(i: list[Expr]) -> str:
        """One output row: its source row gathered through the last axis' table (or copied);
        a row whose source row is the previous output row's is a copy of that row."""
        terms = [(i[k] if t is None else Var(f"{t}[{i[k]}]", 0, x[k] - 1)) * xst[k]
                 for k, t in enumerate(axes[:last])]
        src = add(*terms) if terms else Const(0)
        at = [i[k] * st for k, st in enumerate(strides_of(y)[:last])]
        head = [f"{ct} *yr = {plus(ctx.o(0), add(*at) if at else Const(0))};",
                f"const {ct} *xr = {plus(ctx.i(0), src)};"]
        body = (f"memcpy(yr, xr, {size});" if axes[last] is None else
                f"qnnc_upsample2_row8(yr, xr, {y[last]});" if axes[last] == DOUBLED else
                f"for (int j = 0; j < {y[last]}; ++j) yr[j] = xr[{axes[last]}[j]];")
        t = axes[last - 1] if last >= 1 else None
        if t is not None and y[last - 1] > 1:
            k = i[last - 1]
            body = (f"if ({k} > 0 && {t}[{k}] == {t}[{k} - 1]) memcpy(yr, yr - {y[last]}, "
                    f"{size}); else {{ {body} }}")
        return "\n".join([*head, body])

    # the outermost loop is shared out unless it runs over the rows that copy their
    # predecessor
    outer = next((k for k in range(last) if y[k] > 1), None)
    copies = last >= 1 and axes[last - 1] is not None and y[last - 1] > 1
    omp = ctx.omp() if outer is not None and not (copies and outer == last - 1) else ""
    return "\n".join(lines + [nested_loops(list(y[:last]), row, omp=omp)])


_int_or("GlobalMaxPool", _int_global_max)
_int_or("Resize", _int_resize)
