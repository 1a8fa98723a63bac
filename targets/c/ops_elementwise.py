"""Elementwise emitters: every unary op through one formula table, every binary op through
one broadcasting emitter whose strides are computed here, at compile time."""

from __future__ import annotations

import math

import numpy as np

from ir.types import DType
from targets.c.emitter import LayerCtx, emits, float_lit, nested_loops, offset, strides_of

# Unary formulas over the element ``x``: C expressions with {f}(name) for libm functions in
# the output's precision and {lit}(value) for float literals. One entry per op.
_SQRT1_2 = 1.0 / math.sqrt(2.0)
_SQRT_2_PI = math.sqrt(2.0 / math.pi)

UNARY: dict[str, str] = {
    "Relu": "x > 0 ? x : {zero}",
    "LeakyRelu": "x < 0 ? x * {alpha} : x",
    "Sigmoid": "x >= 0 ? {one} / ({one} + {exp}(-x)) : {exp}(x) / ({one} + {exp}(x))",
    "Tanh": "{tanh}(x)",
    "HardSigmoid": "{fmax}({zero}, {fmin}({one}, {alpha} * x + {beta}))",
    "HardSwish": "x * {fmax}({zero}, {fmin}({one}, x / {six} + {half}))",
    "Softplus": "x > 0 ? x + {log1p}({exp}(-x)) : {log1p}({exp}(x))",
    "Softsign": "x / ({one} + {fabs}(x))",
    "Elu": "x > 0 ? x : {alpha} * {expm1}(x)",
    "Selu": "x > 0 ? {gamma} * x : {gamma} * {alpha} * {expm1}(x)",
    "Celu": "{fmax}({zero}, x) + {fmin}({zero}, {alpha} * {expm1}(x / {alpha}))",
    "ThresholdedRelu": "x > {alpha} ? x : {zero}",
    "SiLU": "x >= 0 ? x / ({one} + {exp}(-x)) : x * {exp}(x) / ({one} + {exp}(x))",
    "Mish": "x * {tanh}(x > 0 ? x + {log1p}({exp}(-x)) : {log1p}({exp}(x)))",
    "Erf": "{erf}(x)",
    "Exp": "{exp}(x)",
    "Log": "{log}(x)",
    "Sqrt": "{sqrt}(x)",
    "Reciprocal": "{one} / x",
    "Sin": "{sin}(x)",
    "Cos": "{cos}(x)",
    "Tan": "{tan}(x)",
    "Asin": "{asin}(x)",
    "Acos": "{acos}(x)",
    "Atan": "{atan}(x)",
    "Sinh": "{sinh}(x)",
    "Cosh": "{cosh}(x)",
    "Asinh": "{asinh}(x)",
    "Acosh": "{acosh}(x)",
    "Atanh": "{atanh}(x)",
    "Shrink": "x < {neg_lambd} ? x + {bias} : (x > {lambd} ? x - {bias} : {zero})",
    "Swish": "x * ({alpha} * x >= 0 ? {one} / ({one} + {exp}({neg_alpha} * x))"
             " : {exp}({alpha} * x) / ({one} + {exp}({alpha} * x)))",
    "Abs": "{fabs}(x)",
    "Neg": "-x",
    "Sign": "(x > 0) - (x < 0)",
    "Floor": "{floor}(x)",
    "Ceil": "{ceil}(x)",
    "Round": "{rint}(x)",
    "Clip": "{clip}",
}
_GELU = {
    "none": "{half} * x * ({one} + {erf}(x * {sqrt1_2}))",
    "tanh": "{half} * x * ({one} + {tanh}({sqrt_2_pi} * (x + {c} * x * x * x)))",
}
_LIBM = ("exp", "expm1", "log", "log1p", "tanh", "erf", "sqrt", "sin", "cos", "fabs", "floor",
         "ceil", "rint", "fmax", "fmin", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh",
         "acosh", "atanh")
_INT_OK = {"Relu", "Abs", "Neg", "Clip", "Shrink"}


def unary_expr(ctx: LayerCtx) -> str:
    """The C expression of the node's unary op over ``x``."""
    op = ctx.node.op
    dt = ctx.ot(0).dtype
    if not dt.is_float:
        if op not in _INT_OK:
            ctx.require_float()
        return _int_unary(ctx)
    ctx.require_float()
    formula = _GELU[ctx.a["approximate"]] if op == "Gelu" else UNARY[op]
    subs: dict[str, str] = {name: ctx.fn(name) for name in _LIBM}
    subs.update({"zero": ctx.lit(0.0), "one": ctx.lit(1.0), "six": ctx.lit(6.0),
                 "half": ctx.lit(0.5),
                 "sqrt1_2": ctx.lit(_SQRT1_2), "sqrt_2_pi": ctx.lit(_SQRT_2_PI),
                 "c": ctx.lit(0.044715)})
    for k in ("alpha", "beta", "gamma", "lambd", "bias"):
        if k in ctx.a:
            subs[k] = ctx.lit(ctx.a[k])
            subs["neg_" + k] = ctx.lit(-ctx.a[k])
    if op == "Clip":
        lo, hi = ctx.a["min"], ctx.a["max"]
        e = "x"
        if lo != -math.inf:
            e = f"({e} < {ctx.lit(lo)} ? {ctx.lit(lo)} : {e})"
        if hi != math.inf:
            e = f"({e} > {ctx.lit(hi)} ? {ctx.lit(hi)} : {e})"
        subs["clip"] = e
    if op == "Sign":
        return f"({ctx.ctype(ctx.ot(0))})((x > 0) - (x < 0))"
    return formula.format(**subs)


def _int_unary(ctx: LayerCtx) -> str:
    op = ctx.node.op
    ct = ctx.ctype(ctx.ot(0))
    if op == "Relu":
        return "x > 0 ? x : 0"
    if op == "Abs":
        return f"({ct})(x < 0 ? -x : x)"
    if op == "Neg":
        return f"({ct})(-x)"
    if op == "Shrink":  # in double, truncated back as the reference's astype does
        lam, bias = (float_lit(ctx.a[k], DType.f64) for k in ("lambd", "bias"))
        neg = float_lit(-ctx.a["lambd"], DType.f64)
        return f"({ct})(x < {neg} ? x + {bias} : (x > {lam} ? x - {bias} : 0.0))"
    info_lo, info_hi = (int(v) for v in _int_range(ctx.ot(0).dtype))
    lo = max(info_lo, math.ceil(ctx.a["min"])) if ctx.a["min"] != -math.inf else info_lo
    hi = min(info_hi, math.floor(ctx.a["max"])) if ctx.a["max"] != math.inf else info_hi
    return f"(x < {lo} ? {lo} : x) > {hi} ? {hi} : (x < {lo} ? {lo} : x)"


def _int_range(dt: DType) -> tuple[int, int]:
    import numpy as np

    info = np.iinfo(dt.np)
    return int(info.min), int(info.max)


@emits(*UNARY, "Gelu", inplace=True)
def unary(ctx: LayerCtx) -> str:
    ct = ctx.ctype(ctx.ot(0))
    x, y, expr = ctx.i(0), ctx.o(0), unary_expr(ctx)
    return nested_loops([ctx.ot(0).size], lambda i: f"const {ct} x = {x}[{i[0]}];\n"
                        f"{y}[{i[0]}] = {expr};", var="i", omp=ctx.omp())


# -- binary ---------------------------------------------------------------------------------
BINARY: dict[str, str] = {
    "Add": "a + b", "Sub": "a - b", "Mul": "a * b", "Div": "a / b",
    "Pow": "{pow}(a, b)", "Max": "{max}(a, b)", "Min": "{min}(a, b)",
    "PRelu": "a < 0 ? a * b : a",
    "Equal": "a == b", "Less": "a < b", "Greater": "a > b", "LessOrEqual": "a <= b",
    "GreaterOrEqual": "a >= b", "And": "a && b", "Or": "a || b", "Xor": "(!a) != (!b)",
    "BitwiseAnd": "a & b", "BitwiseOr": "a | b", "BitwiseXor": "a ^ b",
}


def broadcast_strides(shape: tuple[int, ...], out: tuple[int, ...]) -> list[int]:
    """Strides of ``shape`` read at ``out``'s indices (0 on broadcast axes)."""
    pad = (1,) * (len(out) - len(shape)) + tuple(shape)
    st = strides_of(pad)
    return [0 if d == 1 and o != 1 else s for d, s, o in zip(pad, st, out)]


def collapse(out: tuple[int, ...], strides: list[list[int]]) -> tuple[list[int], list[list[int]]]:
    """Merge adjacent axes that every operand walks contiguously, so loops are few and long."""
    dims: list[int] = []
    sts: list[list[int]] = [[] for _ in strides]
    for k, n in enumerate(out):
        if n == 1:
            continue
        if dims and all(s[k] * n == ss[-1] for s, ss in zip(strides, sts)):
            dims[-1] *= n
            for s, ss in zip(strides, sts):
                ss[-1] = s[k]
            continue
        dims.append(n)
        for s, ss in zip(strides, sts):
            ss.append(s[k])
    return dims, sts


@emits(*BINARY, inplace=True)
def binary(ctx: LayerCtx) -> str:
    op = ctx.node.op
    ta, tb, to = ctx.it(0), ctx.it(1), ctx.ot(0)
    if op in ("Pow", "Max", "Min", "Div", "PRelu") and not to.dtype.is_float and op != "Div":
        ctx.require_float()
    cin = ctx.ctype(ta)
    if ta.dtype.is_float:
        f = "f" if ta.dtype is DType.f32 else ""
        expr = BINARY[op].format(pow=f"pow{f}", max=f"qnnc_max{f}", min=f"qnnc_min{f}")
    elif op in ("Max", "Min"):
        expr = "a > b ? a : b" if op == "Max" else "a < b ? a : b"
    else:
        expr = BINARY[op]
    if op == "Pow" and not ta.dtype.is_float:
        raise ctx.fail("integer Pow is not supported by the C emitter")
    squares = ctx.const(1)
    if op == "Pow" and squares is not None and squares.size and np.all(squares == 2):
        # x ** 2 (a magnitude's squares): pow rounds the exact square once, as a * a does
        expr = "a * a"
    cout = ctx.ctype(to)
    dims, (sa, sb, so) = collapse(to.shape, [broadcast_strides(ta.shape, to.shape),
                                             broadcast_strides(tb.shape, to.shape),
                                             strides_of(to.shape)])
    x0, y, cb = ctx.i(0), ctx.o(0), ctx.ctype(tb)
    x1 = None if expr == "a * a" else ctx.i(1)  # the squares read no exponent
    return nested_loops(dims, lambda idx: (f"const {cin} a = {x0}[{offset(idx, sa)}];\n"
                                           + ("" if x1 is None else
                                              f"const {cb} b = {x1}[{offset(idx, sb)}];\n")
                                           + f"{y}[{offset(idx, so)}] = ({cout})({expr});"),
                        omp=ctx.omp())
