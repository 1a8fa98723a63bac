"""Float elementwise ops of float graphs: activations, math functions, and the broadcasting
binary arithmetic, on float32 or float64 tensors (Add, Sub, Mul, Max, Min on integers too).

Where the interpreter evaluates a formula in float64 and rounds once (Sigmoid, HardSigmoid,
HardSwish, SiLU, Erf, Pow: ir/ops/elementwise.py, binary.py), so does the kernel; the others
compute in the tensor's own type. exp, tanh, erf and pow come from LLVM's math, so results
agree with numpy's within a few ulp, not bit for bit. nan propagates as numpy's does (Relu,
Clip, HardSigmoid, HardSwish, Max and Min compare so that a nan operand gives nan). Float
attributes are read from memory (context.py, per_channel).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ir.graph import Node, Value
from targets.tvm.api import te, tir
from targets.tvm.context import Expr, Kernel, Tensor
from targets.tvm.kernels.common import broadcast_index
from targets.tvm.kernels.float_nn import float_operands
from targets.tvm.registry import kernel

F64 = "float64"
Unary = Callable[[Expr, str, Callable[[str], Expr]], Expr]


def _select(cond: Expr, a: Expr, b: Expr) -> Expr:
    return tir.Select(cond, a, b)


def _sigmoid(x: Expr, dt: str) -> Expr:
    """1 / (1 + e) for x >= 0, else e / (1 + e), e = exp(-|x|) (never overflows), as the
    interpreter's _sigmoid."""
    e = tir.exp(-tir.abs(x))
    one = tir.const(1.0, dt)
    return _select(x >= tir.const(0.0, dt), one / (one + e), e / (one + e))


def _clip01(v: Expr, dt: str) -> Expr:
    """v clamped to [0, 1], nan kept (as numpy.clip)."""
    zero, one = tir.const(0.0, dt), tir.const(1.0, dt)
    v = _select(v < zero, zero, v)
    return _select(v > one, one, v)


def _hard_swish(x: Expr, dt: str) -> Expr:
    """x * clip(x / 6 + 1/2, 0, 1), in the interpreter's order."""
    return _clip01(x / tir.const(6.0, dt) + tir.const(0.5, dt), dt) * x


def _relu(x: Expr, dt: str) -> Expr:
    zero = tir.const(0.0, dt)
    return _select(x < zero, zero, x)


#: op -> (formula of x, its compute type and the attribute reader; whether it is evaluated
#: in float64)
UNARY: dict[str, tuple[Unary, bool]] = {
    "Relu": (lambda x, dt, at: _relu(x, dt), False),
    "LeakyRelu": (lambda x, dt, at: _select(x < tir.const(0.0, dt), x * at("alpha"), x),
                  False),
    "Sigmoid": (lambda x, dt, at: _sigmoid(x, dt), True),
    "Tanh": (lambda x, dt, at: tir.tanh(x), False),
    "HardSigmoid": (lambda x, dt, at: _clip01(at("alpha") * x + at("beta"), dt), True),
    "HardSwish": (lambda x, dt, at: _hard_swish(x, dt), True),
    "SiLU": (lambda x, dt, at: x * _sigmoid(x, dt), True),
    "Erf": (lambda x, dt, at: tir.erf(x), True),
    "Exp": (lambda x, dt, at: tir.exp(x), False),
    "Log": (lambda x, dt, at: tir.log(x), False),
    "Sqrt": (lambda x, dt, at: tir.sqrt(x), False),
    "Reciprocal": (lambda x, dt, at: tir.const(1.0, dt) / x, False),
    "Neg": (lambda x, dt, at: -x, False),
    "Abs": (lambda x, dt, at: tir.abs(x), False),
}

#: the float attributes each op reads
ATTRS = {"LeakyRelu": ("alpha",), "HardSigmoid": ("alpha", "beta"), "Clip": ("min", "max")}


def _as(v: Expr, to: str, have: str) -> Expr:
    return v if to == have else v.astype(to)


@kernel(*UNARY, accepts=float_operands)
def unary(k: Kernel) -> list[Tensor]:
    """y = f(x) elementwise, f the op's formula (ir/ops/elementwise.py):
    Relu max(x, 0); LeakyRelu x < 0 ? alpha * x : x; Sigmoid 1 / (1 + exp(-x)); Tanh tanh(x);
    HardSigmoid clip(alpha * x + beta, 0, 1); HardSwish x * clip(x / 6 + 1/2, 0, 1);
    SiLU x * sigmoid(x); Erf erf(x); Exp exp(x); Log ln(x); Sqrt sqrt(x); Reciprocal 1 / x;
    Neg -x; Abs |x|. Sigmoid, HardSigmoid, HardSwish, SiLU and Erf in float64, rounded
    once."""
    (y,) = k.out_types
    x = k.operand("x")
    dt = y.dtype.np.name
    fn, wide = UNARY[k.node.op]
    ct = F64 if wide else dt
    consts = {name: k.per_channel([k.attrs[name]], name, ct)(0)
              for name in ATTRS.get(k.node.op, ())}
    return [te.compute(y.shape, lambda *i: _as(fn(_as(x[i], ct, dt), ct, consts.__getitem__),
                                               dt, ct), name="y")]


@kernel("Clip", accepts=float_operands)
def clip(k: Kernel) -> list[Tensor]:
    """y = min(max(x, min), max), an absent bound being -inf / +inf (so max wins when
    min > max; nan stays nan); the bounds read from memory."""
    (y,) = k.out_types
    x = k.operand("x")
    dt = y.dtype.np.name
    lo_v, hi_v = k.attrs["min"], k.attrs["max"]
    lo = k.per_channel([lo_v], "min", dt)(0) if lo_v != -math.inf else None
    hi = k.per_channel([hi_v], "max", dt)(0) if hi_v != math.inf else None

    def out(*i: Any) -> Any:
        v = x[i]
        if lo is not None:
            v = _select(v < lo, lo, v)
        if hi is not None:
            v = _select(v > hi, hi, v)
        return v

    return [te.compute(y.shape, out, name="y")]


def _either_nan(a: Expr, b: Expr, v: Expr) -> Expr:
    return _select(tir.isnan(a), a, _select(tir.isnan(b), b, v))


BINARY: dict[str, Callable[[Expr, Expr], Expr]] = {
    "Add": lambda a, b: a + b,
    "Sub": lambda a, b: a - b,
    "Mul": lambda a, b: a * b,
    "Div": lambda a, b: a / b,
    "Max": lambda a, b: _either_nan(a, b, tir.max(a, b)),
    "Min": lambda a, b: _either_nan(a, b, tir.min(a, b)),
}


#: integer arithmetic the kernel also takes (wrapping like C's fixed-width integers, as the
#: interpreter's numpy does); integer Div (truncating, x / 0 = 0) has no kernel
INTEGER = ("Add", "Sub", "Mul", "Max", "Min")


def _float_or_integer(node: Node) -> bool:
    if float_operands(node):
        return True
    dts = {v.type.dtype for v in node.inputs if isinstance(v, Value)}
    dt = next(iter(dts)) if len(dts) == 1 else None
    return node.op in INTEGER and dt is not None and dt.is_int and not dt.is_storage_only


@kernel(*BINARY, accepts=_float_or_integer)
def binary(k: Kernel) -> list[Tensor]:
    """z[i...] = f(x[bx(i)], y[by(i)]), bx / by numpy broadcasting (an axis of one read at
    0, shapes aligned on the right); f: Add x + y, Sub x - y, Mul x * y, Div x / y,
    Max / Min max(x, y) / min(x, y) with nan propagating. Add, Sub, Mul, Max and Min on
    integers too."""
    (z,) = k.out_types
    at, bt = k.type_of("a"), k.type_of("b")
    a, b = k.operand("a"), k.operand("b")
    fn = BINARY[k.node.op]
    if not z.dtype.is_float:
        fn = {"Max": tir.max, "Min": tir.min}.get(k.node.op, fn)
    return [te.compute(z.shape, lambda *i: fn(a[tuple(broadcast_index(at.shape, i))],
                                              b[tuple(broadcast_index(bt.shape, i))]),
                       name="z")]


def _float_pow(node: Node) -> bool:
    values = [v for v in node.inputs if isinstance(v, Value)] + list(node.outputs)
    return all(v.type.dtype.np.name in ("float32", "float64") and v.type.quant is None
               for v in values)


@kernel("Pow", accepts=_float_pow)
def pow_(k: Kernel) -> list[Tensor]:
    """z = x ** y in float64 rounded once to x's type (numpy broadcasting; the exponent may
    be float32 or float64)."""
    (z,) = k.out_types
    xt, yt = k.type_of("x"), k.type_of("y")
    x, y = k.operand("x"), k.operand("y")
    dt = z.dtype.np.name
    return [te.compute(z.shape, lambda *i: tir.power(
        x[tuple(broadcast_index(xt.shape, i))].astype(F64),
        y[tuple(broadcast_index(yt.shape, i))].astype(F64)).astype(dt), name="z")]


@kernel("Gelu", accepts=float_operands)
def gelu(k: Kernel) -> list[Tensor]:
    """y = x/2 * (1 + erf(x / sqrt 2)), or with approximate='tanh'
    x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))); in float64, rounded once (as the
    interpreter's _gelu)."""
    (y,) = k.out_types
    x = k.operand("x")
    dt = y.dtype.np.name
    half, one = tir.const(0.5, F64), tir.const(1.0, F64)
    tanh_form = k.attrs["approximate"] == "tanh"

    def out(*i: Any) -> Any:
        v = x[i].astype(F64)
        if tanh_form:
            inner = tir.const(math.sqrt(2.0 / math.pi), F64) * (
                v + tir.const(0.044715, F64) * v * v * v)
            g = half * v * (one + tir.tanh(inner))
        else:
            g = half * v * (one + tir.erf(v / tir.const(math.sqrt(2.0), F64)))
        return g.astype(dt)

    return [te.compute(y.shape, out, name="y")]
