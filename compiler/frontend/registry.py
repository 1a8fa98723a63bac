"""The table of ONNX op converters: one function per ONNX op, registered by op type.

A converter is called with the conversion context, the node's inputs as IR values (None for
an omitted optional input) and its attributes as keyword arguments, and returns the IR
value(s) of the node's outputs::

    @converter("LeakyRelu")
    def leaky_relu(ctx: Ctx, x: Value, *, alpha: float = 0.01) -> Value:
        return ctx.op("LeakyRelu", [x], alpha=alpha)

Attribute defaults are ONNX's. Opset differences (an attribute that became an input, a
changed default) are handled inside the one converter, using ``ctx.opset``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ConverterFn = Callable[..., Any]


@dataclass(frozen=True)
class Converter:
    op_type: str
    fn: ConverterFn
    ir_ops: tuple[str, ...]  # IR ops it may produce, for `qnnc ops` and the docs
    note: str = ""


CONVERTERS: dict[str, Converter] = {}


def converter(op_type: str, *, ir_ops: tuple[str, ...] | None = None, note: str = "") -> Callable[
    [ConverterFn], ConverterFn
]:
    """Register ``fn`` as the converter of ONNX ``op_type`` (default domain)."""

    def deco(fn: ConverterFn) -> ConverterFn:
        if op_type in CONVERTERS:
            raise ValueError(f"ONNX op {op_type!r} has two converters")
        ops = (op_type,) if ir_ops is None else ir_ops  # () = folded, no IR op
        CONVERTERS[op_type] = Converter(op_type, fn, ops, note)
        return fn

    return deco


def supported_ops() -> list[Converter]:
    """Every ONNX op qnnc imports, sorted by name (what `qnnc ops` prints)."""
    return [CONVERTERS[k] for k in sorted(CONVERTERS)]
