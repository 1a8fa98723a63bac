"""Broadcasting binary ops: arithmetic, comparison, logic, selection.

All of them broadcast like numpy (ONNX's multidirectional broadcasting). ONNX's variadic
Sum/Mean/Max/Min are lowered by the frontend to chains of the binary ops here, so the IR has
one form of each. Integer arithmetic wraps like C on fixed-width integers; division by zero is
left as numpy defines it (0 for integers) since ONNX leaves it undefined.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ir import qforms
from ir.graph import Node
from ir.ops.common import binary, broadcast_shapes, require_inputs, same_dtype
from ir.ops.registry import Attr, Attrs, register, require
from ir.qforms import NoQuantForm, QuantContext
from ir.types import DType, TensorType, is_float_dtype


def _quiet(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[
    [np.ndarray, np.ndarray], np.ndarray
]:
    """Silence numpy's warnings for the results ONNX specifies (x/0 = inf, 0/0 = nan)."""

    def run(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return fn(x, y)

    return run


def _div(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Floats divide; integers divide truncating toward zero, as C (and ONNX) do."""
    if is_float_dtype(x.dtype):
        return np.divide(x, y)
    q = np.floor_divide(x, y)
    if x.dtype.kind == "u":
        return q
    # floor and trunc differ where the division is inexact and the signs differ
    inexact = np.not_equal(np.remainder(x, y), 0)
    return np.where(inexact & ((x < 0) != (y < 0)), q + 1, q)


def quantize_mul(ctx: QuantContext, node: Node) -> None:
    """Mul by a positive constant scalar c only rescales: the codes stay and the scale becomes
    s * c (a Retype, free at run time), as for attention scores times 1/sqrt(d); another
    constant scalar (or a Retype whose parameters the result cannot take) → a QLut of the
    codes; two quantised operands → QMul."""
    a, b = node.a, node.b
    out = node.outputs[0]
    if ctx.is_constant(a) != ctx.is_constant(b):
        x, c = (b, a) if ctx.is_constant(a) else (a, b)
        cv = np.asarray(ctx.constant(c), dtype=np.float64).reshape(-1)
        if cv.size == 1 and np.isfinite(cv[0]) and cv[0] > 0 and out.type.shape == x.type.shape:
            xq = ctx.act(x)
            qp = xq.type.quant
            assert qp is not None and len(qp.scale) == 1
            attrs = {"scale": [float(np.float32(qp.scale[0] * cv[0]))],
                     "zero_point": [int(qp.zero_point[0])]}
            try:
                ctx.emit("Retype", [xq], attrs, [node], [out])
                return
            except NoQuantForm:
                pass  # the result must have other parameters: a table requantises to them
    if qforms.scalar_lut(ctx, node):  # any other constant scalar: a table of the codes
        return
    ins = [ctx.act(a), ctx.act(b)]
    ctx.emit("QMul", ins, ctx.out_params(out).attrs(), [node], [out])


ELTWISE = {"tiled": "eltwise"}
binary("Add", lambda x, y: np.add(x, y), "z = x + y (numpy broadcasting)",
       quantized=qforms.with_scalar_lut(qforms.rescaling("QAdd", fuse=True)), **ELTWISE)
binary("Sub", lambda x, y: np.subtract(x, y), "z = x - y", quantized=qforms.with_scalar_lut(),
       **ELTWISE)
binary("Mul", lambda x, y: np.multiply(x, y), "z = x * y", quantized=quantize_mul, **ELTWISE)
binary("Div", _quiet(_div), "z = x / y; integers truncate toward zero",
       quantized=qforms.with_scalar_lut(), **ELTWISE)
binary("Max", lambda x, y: np.maximum(x, y), "z = max(x, y) (nan propagates)",
       quantized=qforms.with_scalar_lut(), **ELTWISE)
binary("Min", lambda x, y: np.minimum(x, y), "z = min(x, y) (nan propagates)",
       quantized=qforms.with_scalar_lut(), **ELTWISE)
binary("Equal", lambda x, y: np.equal(x, y), "z = x == y", result="bool", dtypes="any")
binary("Less", lambda x, y: np.less(x, y), "z = x < y", result="bool")
binary("Greater", lambda x, y: np.greater(x, y), "z = x > y", result="bool")
binary("LessOrEqual", lambda x, y: np.less_equal(x, y), "z = x <= y", result="bool")
binary("GreaterOrEqual", lambda x, y: np.greater_equal(x, y), "z = x >= y", result="bool")
binary("And", lambda x, y: np.logical_and(x, y), "z = x and y", result="bool", dtypes="bool")
binary("Or", lambda x, y: np.logical_or(x, y), "z = x or y", result="bool", dtypes="bool")
binary("Xor", lambda x, y: np.logical_xor(x, y), "z = x xor y", result="bool", dtypes="bool")


def _same_type_binary(op: str, ins: list[TensorType | None], kinds: str) -> TensorType:
    """The output type of a broadcasting op on two inputs of one type allowed by ``kinds``."""
    x, y = require_inputs(op, ins, 2)
    dt = same_dtype(op, [x, y])
    ok = {"int": dt.is_int, "numeric": dt is not DType.bool}[kinds]
    require(ok, f"{op}: element type {dt.value} is not supported")
    return TensorType(broadcast_shapes(op, x.shape, y.shape), dt)


@register
class PRelu:
    """y = x if x >= 0 else slope * x; slope broadcasts to x's shape (one way only)."""

    operands = ("x", "slope")
    attrs: dict[str, Attr] = {}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        out = _same_type_binary("PRelu", ins, "numeric")
        x = ins[0]
        assert x is not None
        require(out.shape == x.shape,
                f"PRelu: slope {list(ins[1].shape) if ins[1] else []} does not broadcast "
                f"to x {list(x.shape)}")
        return [out]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, slope = ins[0], ins[1]
        assert x is not None and slope is not None
        return [np.where(x < 0, x * slope, x).astype(x.dtype, copy=False)]


@register
class Mod:
    """fmod=0: z = x - floor(x / y) * y (sign of y, Python's %);
    fmod=1: z = x - trunc(x / y) * y (sign of x, C's fmod)."""

    operands = ("a", "b")
    attrs = {"fmod": Attr("int", 0, "0: floored remainder, 1: truncated remainder")}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        require(a["fmod"] in (0, 1), f"Mod: fmod must be 0 or 1, got {a['fmod']}")
        return [_same_type_binary("Mod", ins, "numeric")]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, y = ins[0], ins[1]
        assert x is not None and y is not None
        with np.errstate(all="ignore"):
            z = np.fmod(x, y) if a["fmod"] else np.mod(x, y)
        return [np.asarray(z).astype(x.dtype, copy=False)]


@register
class BitShift:
    """z = x << y (direction LEFT) or x >> y (RIGHT, arithmetic for signed types).

    A shift amount that is negative or at least the bit width yields what sign extension
    alone gives: -1 for a right shift of a negative x, else 0 (ONNX opset 28).
    """

    operands = ("x", "y")
    attrs = {"direction": Attr("str", doc="LEFT or RIGHT")}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        require(a["direction"] in ("LEFT", "RIGHT"),
                f"BitShift: direction must be LEFT or RIGHT, got {a['direction']!r}")
        return [_same_type_binary("BitShift", ins, "int")]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, y = ins[0], ins[1]
        assert x is not None and y is not None
        valid = (y >= 0) & (y < x.dtype.itemsize * 8)
        amount = np.where(valid, y, 0).astype(x.dtype)
        if a["direction"] == "LEFT":
            z = np.where(valid, np.left_shift(x, amount), 0)
        else:
            fill = np.where(x < 0, -1, 0) if x.dtype.kind == "i" else 0
            z = np.where(valid, np.right_shift(x, amount), fill)
        return [np.asarray(z).astype(x.dtype, copy=False)]


@register
class Pow:
    """z = x ** y, with the base's element type; the exponent may have another numeric type.

    Float bases are computed in float64 and rounded once. Integer bases with integer
    exponents are exact (wrapping on overflow); a negative exponent gives trunc(x ** y)
    (0, or +-1 for x = +-1). An integer base with a float exponent truncates the float result.
    """

    operands = ("x", "y")
    attrs: dict[str, Attr] = {}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        x, y = require_inputs("Pow", ins, 2)
        for t, what in ((x, "base"), (y, "exponent")):
            require(t.dtype is not DType.bool, f"Pow: the {what} cannot be bool")
        return [TensorType(broadcast_shapes("Pow", x.shape, y.shape), x.dtype)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, y = ins[0], ins[1]
        assert x is not None and y is not None
        with np.errstate(all="ignore"):
            if is_float_dtype(x.dtype) or is_float_dtype(y.dtype):
                z = np.power(x.astype(np.float64), y.astype(np.float64))
                if not is_float_dtype(x.dtype):
                    z = np.where(np.isfinite(z), np.trunc(z), 0)
            else:
                neg = y < 0
                wide = np.uint64 if x.dtype.kind == "u" else np.int64  # wraps like x's type
                z = np.power(x.astype(wide), np.where(neg, 0, y).astype(wide))
                inv = np.trunc(np.power(x.astype(np.float64), y.astype(np.float64)))
                z = np.where(neg, np.where(np.isfinite(inv), inv, 0).astype(x.dtype), z)
            return [np.asarray(z).astype(x.dtype)]


@register
class Where:
    """z = x where cond else y (all three broadcast)."""

    operands = ("condition", "x", "y")
    attrs: dict[str, Attr] = {}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        c, x, y = require_inputs("Where", ins, 3)
        require(c.dtype is DType.bool, f"Where: the condition must be bool, got {c.dtype.value}")
        dt = same_dtype("Where", [x, y])
        return [TensorType(broadcast_shapes("Where", c.shape, x.shape, y.shape), dt)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        c, x, y = ins
        assert c is not None and x is not None and y is not None
        return [np.where(c, x, y).astype(x.dtype, copy=False)]
