"""Elementwise unary ops: activations and math functions.

Every op keeps its input's element type: numpy would upcast float32 when a Python float meets
it in some expressions, so the factory casts each result back. Formulas that chain several
transcendental steps (Sigmoid, Softplus, Elu, Gelu, ...) are evaluated in float64 and rounded
once at the end, so the reference does not accumulate float16/float32 rounding error that
target kernels might not reproduce.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ir import accel, qforms
from ir.ops.common import require_inputs, unary
from ir.ops.registry import Attr, Attrs, register, require
from ir.types import TensorType, is_float_dtype

Fn = Callable[[np.ndarray, Attrs], np.ndarray]


def _quiet(fn: Fn) -> Fn:
    """Silence numpy's floating-point warnings: log(-1) = nan, exp(1000) = inf are the
    results ONNX specifies, not errors."""

    def run(x: np.ndarray, a: Attrs) -> np.ndarray:
        with np.errstate(all="ignore"):
            return fn(x, a)

    return run


#: elements evaluated at a time by the float64 formulas: their float64 temporaries then stay
#: in cache (on MobileNetV3-sized tensors, four times faster than whole-tensor temporaries)
F64_CHUNK = 1 << 16


def _f64(fn: Fn) -> Fn:
    """Evaluate the elementwise ``fn`` in float64, rounding each result once to the input's
    type; large tensors go :data:`F64_CHUNK` elements at a time (elementwise, so the values
    are the same)."""

    def run(x: np.ndarray, a: Attrs) -> np.ndarray:
        if x.size <= F64_CHUNK:
            return np.asarray(fn(x.astype(np.float64), a)).astype(x.dtype)
        flat = np.ascontiguousarray(x).reshape(-1)
        out = np.empty(flat.size, x.dtype)
        for at in range(0, flat.size, F64_CHUNK):
            out[at:at + F64_CHUNK] = fn(flat[at:at + F64_CHUNK].astype(np.float64), a)
        return out.reshape(x.shape)

    return _quiet(run)


# -- erf, without a scipy dependency ----------------------------------------------------
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def erf(x: np.ndarray) -> np.ndarray:
    """The error function in float64, accurate to a few ulp.

    |x| < 2: its Maclaurin series (32 terms reach 1e-16 there). |x| >= 2: erf = 1 - erfc,
    with erfc from its continued fraction x + (1/2)/(x + 1/(x + (3/2)/(x + ...))), which
    converges fast for large x (60 levels reach 1e-16 at x = 2).
    """
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(all="ignore"):
        small = np.abs(x) < 2.0
        xs = np.where(small, x, 0.0)
        x2 = xs * xs
        term = xs.copy()
        series = xs.copy()
        for n in range(1, 32):
            term = term * (-x2) / n
            series = series + term / (2 * n + 1)
        xl = np.where(small, 2.0, np.minimum(np.abs(x), 30.0))
        frac = xl.copy()
        for k in range(60, 0, -1):
            frac = xl + (k / 2.0) / frac
        tail = np.exp(-xl * xl) / (math.sqrt(math.pi) * frac)
        return np.where(small, series * _TWO_OVER_SQRT_PI, np.copysign(1.0 - tail, x))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))  # never overflows
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)  # log(1 + exp(x)) without overflow


def _gelu(x: np.ndarray, a: Attrs) -> np.ndarray:
    if a["approximate"] == "tanh":
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)
        return 0.5 * x * (1.0 + np.tanh(inner))
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def _hard_swish(x: np.ndarray) -> np.ndarray:
    """x * clip(x / 6 + 1/2, 0, 1) in place on one temporary (the same roundings, in the same
    order, as the expression; HardSwish runs after most layers of MobileNetV3-style models)."""
    u = np.divide(x, 6.0)
    u += 0.5
    np.clip(u, 0.0, 1.0, out=u)
    u *= x
    return u


def _alpha(default: float, doc: str = "") -> dict[str, Attr]:
    return {"alpha": Attr("float", default, doc)}


#: traits of the non-linearities that quantise to a 256-entry table (and, on accelerators,
#: are tiled as elementwise work)
TABLE: dict[str, Any] = {"quantized": qforms.lut}
TABLE_ELTWISE: dict[str, Any] = {**TABLE, "tiled": "eltwise"}

# -- activations ------------------------------------------------------------------------
unary("Relu", lambda x, a: np.maximum(x, 0), "y = max(x, 0)", dtypes="numeric",
      clamp=qforms.relu_clamp, stacks="together", **TABLE_ELTWISE)
unary("LeakyRelu", lambda x, a: np.where(x < 0, x * a["alpha"], x),
      "y = x if x >= 0 else alpha * x", _alpha(0.01), **TABLE_ELTWISE)
unary("Sigmoid", _f64(lambda x, a: _sigmoid(x)), "y = 1 / (1 + exp(-x))", **TABLE_ELTWISE)
unary("Tanh", _quiet(lambda x, a: np.tanh(x)), "y = tanh(x)", **TABLE_ELTWISE)
unary("HardSigmoid",
      _f64(lambda x, a: np.clip(a["alpha"] * x + a["beta"], 0.0, 1.0)),
      "y = max(0, min(1, alpha * x + beta))",
      {"alpha": Attr("float", 0.2), "beta": Attr("float", 0.5)}, **TABLE_ELTWISE)
_hard_swish_f64 = _f64(lambda x, a: _hard_swish(x))


def _hard_swish_op(x: np.ndarray, a: Attrs) -> np.ndarray:
    fast = accel.kernel("hard_swish")
    y = fast(x) if fast is not None else None
    return _hard_swish_f64(x, a) if y is None else y


unary("HardSwish", _hard_swish_op,
      "y = x * max(0, min(1, x / 6 + 1/2))", **TABLE_ELTWISE)
unary("Gelu", _f64(_gelu),
      "y = x/2 * (1 + erf(x / sqrt(2))); approximate='tanh': "
      "x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))",
      {"approximate": Attr("str", "none", "'none' (exact, erf) or 'tanh'")},
      **TABLE_ELTWISE)
unary("SiLU", _f64(lambda x, a: x * _sigmoid(x)),
      "y = x * sigmoid(x) = x / (1 + exp(-x)) (Swish-1; no ONNX op, made by recognize-silu)",
      **TABLE_ELTWISE)
unary("Softplus", _f64(lambda x, a: _softplus(x)), "y = log(1 + exp(x))", **TABLE)
unary("Softsign", _f64(lambda x, a: x / (1.0 + np.abs(x))), "y = x / (1 + |x|)", **TABLE)
unary("Elu", _f64(lambda x, a: np.where(x > 0, x, a["alpha"] * np.expm1(x))),
      "y = x if x > 0 else alpha * (exp(x) - 1)", _alpha(1.0), **TABLE)
unary("Selu",
      _f64(lambda x, a: a["gamma"] * np.where(x > 0, x, a["alpha"] * np.expm1(x))),
      "y = gamma * (x if x > 0 else alpha * (exp(x) - 1))",
      {"alpha": Attr("float", 1.67326319217681884765625),
       "gamma": Attr("float", 1.05070102214813232421875)}, **TABLE)
unary("Celu",
      _f64(lambda x, a: np.maximum(x, 0.0)
           + np.minimum(0.0, a["alpha"] * np.expm1(x / a["alpha"]))),
      "y = max(0, x) + min(0, alpha * (exp(x / alpha) - 1))", _alpha(1.0), **TABLE)
unary("ThresholdedRelu", lambda x, a: np.where(x > a["alpha"], x, 0),
      "y = x if x > alpha else 0", _alpha(1.0))
unary("Mish", _f64(lambda x, a: x * np.tanh(_softplus(x))), "y = x * tanh(log(1 + exp(x)))",
      **TABLE)

# -- math -------------------------------------------------------------------------------
unary("Erf", _f64(lambda x, a: erf(x)), "y = erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt",
      **TABLE_ELTWISE)
unary("Exp", _quiet(lambda x, a: np.exp(x)), "y = exp(x)", **TABLE_ELTWISE)
unary("Log", _quiet(lambda x, a: np.log(x)), "y = ln(x) (nan below 0, -inf at 0)")
unary("Sqrt", _quiet(lambda x, a: np.sqrt(x)), "y = sqrt(x) (nan below 0)")
unary("Reciprocal", _quiet(lambda x, a: np.reciprocal(x)), "y = 1 / x")
unary("Sin", _quiet(lambda x, a: np.sin(x)), "y = sin(x)")
unary("Cos", _quiet(lambda x, a: np.cos(x)), "y = cos(x)")
unary("Tan", _quiet(lambda x, a: np.tan(x)), "y = tan(x)", **TABLE)
unary("Asin", _quiet(lambda x, a: np.arcsin(x)), "y = asin(x) (nan outside [-1, 1])", **TABLE)
unary("Acos", _quiet(lambda x, a: np.arccos(x)), "y = acos(x) (nan outside [-1, 1])", **TABLE)
unary("Atan", _quiet(lambda x, a: np.arctan(x)), "y = atan(x)", **TABLE)
unary("Sinh", _quiet(lambda x, a: np.sinh(x)), "y = sinh(x)", **TABLE)
unary("Cosh", _quiet(lambda x, a: np.cosh(x)), "y = cosh(x)", **TABLE)
unary("Asinh", _quiet(lambda x, a: np.arcsinh(x)), "y = asinh(x)", **TABLE)
unary("Acosh", _quiet(lambda x, a: np.arccosh(x)), "y = acosh(x) (nan below 1)", **TABLE)
unary("Atanh", _quiet(lambda x, a: np.arctanh(x)),
      "y = atanh(x) (+-inf at +-1, nan outside [-1, 1])", **TABLE)
unary("Shrink",
      _f64(lambda x, a: np.where(x < -a["lambd"], x + a["bias"],
                                 np.where(x > a["lambd"], x - a["bias"], 0.0))),
      "y = x + bias if x < -lambd; x - bias if x > lambd; else 0",
      {"lambd": Attr("float", 0.5), "bias": Attr("float", 0.0)}, dtypes="numeric", **TABLE)
unary("Swish", _f64(lambda x, a: x * _sigmoid(a["alpha"] * x)),
      "y = x * sigmoid(alpha * x) (alpha = 1 is SiLU, which the frontend makes of it)",
      _alpha(1.0), **TABLE_ELTWISE)
unary("Abs", lambda x, a: np.abs(x), "y = |x|", dtypes="numeric", **TABLE)
unary("Neg", lambda x, a: np.negative(x), "y = -x (integers wrap)", dtypes="numeric", **TABLE)
unary("Sign", lambda x, a: np.sign(x), "y = -1, 0 or 1 by the sign of x", dtypes="numeric")
unary("Floor", lambda x, a: np.floor(x), "y = largest integer <= x")
unary("Ceil", lambda x, a: np.ceil(x), "y = smallest integer >= x")
unary("Round", lambda x, a: np.round(x), "y = nearest integer to x, halves to even")
unary("Not", lambda x, a: np.logical_not(x), "y = not x", dtypes="bool")


@register
class Clip:
    """y = min(max(x, min), max); when min > max every element becomes max.

    Bounds are float attributes; an absent bound is -inf/+inf. On integer inputs a bound is
    first clamped to the element type's range, and fractional bounds round inwards
    (ceil(min), floor(max)).
    """

    operands = ("x",)
    tiled = "eltwise"
    quantized = qforms.lut
    clamp = qforms.clip_clamp
    attrs = {
        "min": Attr("float", -math.inf, "lower bound"),
        "max": Attr("float", math.inf, "upper bound"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("Clip", ins, 1)
        require(x.dtype.is_float or x.dtype.is_int, f"Clip: needs a numeric input, got {x.dtype}")
        require(not (math.isnan(a["min"]) or math.isnan(a["max"])), "Clip: a bound is nan")
        return [TensorType(x.shape, x.dtype)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        lo, hi = _bound(a["min"], x.dtype, math.ceil), _bound(a["max"], x.dtype, math.floor)
        return [np.minimum(np.maximum(x, lo), hi).astype(x.dtype, copy=False)]


def _bound(v: float, dtype: np.dtype, to_int: Callable[[float], int]) -> np.ndarray:
    """A Clip bound in ``dtype``: saturated to an integer type's range, never wrapped."""
    if is_float_dtype(dtype):
        with np.errstate(over="ignore"):
            return np.asarray(v).astype(dtype)
    info = np.iinfo(dtype)
    if v <= info.min:
        return np.asarray(info.min, dtype)
    if v >= info.max:
        return np.asarray(info.max, dtype)
    return np.asarray(to_int(v), dtype)
