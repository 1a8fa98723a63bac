"""Ops on the bits of a value: bitwise logic on integers, reinterpreting an element's bytes
(BitCast), and classifying floats (IsNaN, IsInf).

Bitwise ops work on the two's-complement bits of an integer type and keep it; the binary ones
broadcast like numpy. None of them has a quantised form: they mean nothing on a tensor's real
values.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ir.ops.common import broadcast_shapes, reject_quant, require_inputs, same_dtype
from ir.ops.registry import Attr, Attrs, OpError, register, require
from ir.types import DType, TensorType

BinFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _bitwise_binary(name: str, fn: BinFn, doc: str) -> None:
    """Register a broadcasting bitwise op on two integers of one type."""

    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        x, y = require_inputs(name, ins, 2)
        reject_quant(name, [x, y])
        dt = same_dtype(name, [x, y])
        require(dt.is_int, f"{name}: needs integer inputs, got {dt.value}")
        return [TensorType(broadcast_shapes(name, x.shape, y.shape), dt)]

    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, y = ins[0], ins[1]
        assert x is not None and y is not None
        return [np.asarray(fn(x, y)).astype(x.dtype, copy=False)]

    register(type(name, (), {
        "__doc__": doc, "name": name, "operands": ("a", "b"), "attrs": {},
        "infer": staticmethod(infer), "compute": staticmethod(compute),
    }))


_bitwise_binary("BitwiseAnd", np.bitwise_and, "z = a & b (numpy broadcasting)")
_bitwise_binary("BitwiseOr", np.bitwise_or, "z = a | b (numpy broadcasting)")
_bitwise_binary("BitwiseXor", np.bitwise_xor, "z = a ^ b (numpy broadcasting)")


@register
class BitwiseNot:
    """y = ~x (every bit flipped; for signed types ~x = -x - 1)."""

    operands = ("x",)
    attrs: dict[str, Attr] = {}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("BitwiseNot", ins, 1)
        reject_quant("BitwiseNot", [x])
        require(x.dtype.is_int, f"BitwiseNot: needs an integer input, got {x.dtype.value}")
        return [TensorType(x.shape, x.dtype)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        return [np.invert(x)]


@register
class BitCast:
    """y = the bytes of x read as element type ``to`` (little endian, no value conversion);
    both types have one width, so the shape stays."""

    operands = ("x",)
    moves_data = True
    attrs = {"to": Attr("str", doc="the IR element type to read the bytes as (e.g. i32)")}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("BitCast", ins, 1)
        reject_quant("BitCast", [x])
        to = _dtype(a["to"])
        require(to.np.itemsize == x.dtype.np.itemsize,
                f"BitCast: {x.dtype.value} and {to.value} differ in width")
        return [TensorType(x.shape, to)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        to = DType(a["to"]).np.newbyteorder("<")
        raw = np.ascontiguousarray(x, dtype=x.dtype.newbyteorder("<"))
        return [raw.view(to).astype(DType(a["to"]).np).reshape(x.shape)]


def _dtype(to: str) -> DType:
    try:
        return DType(to)
    except ValueError:
        raise OpError(f"BitCast: unknown element type {to!r}; one of "
                      f"{', '.join(d.value for d in DType)}") from None


@register
class IsNaN:
    """y = (x is nan), bool."""

    operands = ("x",)
    attrs: dict[str, Attr] = {}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("IsNaN", ins, 1)
        reject_quant("IsNaN", [x])
        require(x.dtype.is_float, f"IsNaN: needs a float input, got {x.dtype.value}")
        return [TensorType(x.shape, DType.bool)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        assert ins[0] is not None
        return [np.isnan(ins[0])]


@register
class IsInf:
    """y = (x == +inf and detect_positive) or (x == -inf and detect_negative), bool."""

    operands = ("x",)
    attrs = {
        "detect_negative": Attr("bool", True, "-inf counts"),
        "detect_positive": Attr("bool", True, "+inf counts"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("IsInf", ins, 1)
        reject_quant("IsInf", [x])
        require(x.dtype.is_float, f"IsInf: needs a float input, got {x.dtype.value}")
        return [TensorType(x.shape, DType.bool)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        pos = np.isposinf(x) if a["detect_positive"] else np.zeros(x.shape, bool)
        neg = np.isneginf(x) if a["detect_negative"] else np.zeros(x.shape, bool)
        return [pos | neg]
