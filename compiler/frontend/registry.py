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
    op_type: str  # "domain.op_type" outside ONNX's default domain
    fn: ConverterFn
    ir_ops: tuple[str, ...]  # IR ops it may produce, for `qnnc ops` and the docs
    note: str = ""
    domain: str = ""  # "" is ONNX's default domain; else e.g. "com.microsoft"
    sequences: bool = False  # takes sequence/optional values (context.Seq, Opt) as inputs


CONVERTERS: dict[str, Converter] = {}
DEFAULT_DOMAINS = ("", "ai.onnx")


def converter_key(op_type: str, domain: str = "") -> str:
    """The CONVERTERS key: the op type for the default domain, else "domain.op_type"."""
    return op_type if domain in DEFAULT_DOMAINS else f"{domain}.{op_type}"


def converter(
    op_type: str, *, ir_ops: tuple[str, ...] | None = None, note: str = "", domain: str = "",
    sequences: bool = False,
) -> Callable[[ConverterFn], ConverterFn]:
    """Register ``fn`` as the converter of ONNX ``op_type`` in ``domain`` (default: ONNX's
    default domain; other domains are keyed "domain.op_type", e.g. "com.microsoft.QLinearAdd").
    Only a converter registered with ``sequences=True`` is given sequence and optional values
    (``Seq``, ``Opt`` from compiler.frontend.context); the importer stops any other with an
    error naming the input."""

    def deco(fn: ConverterFn) -> ConverterFn:
        key = converter_key(op_type, domain)
        if key in CONVERTERS:
            raise ValueError(f"ONNX op {key!r} has two converters")
        ops = (op_type,) if ir_ops is None else ir_ops  # () = folded, no IR op
        # op_type is the key, so listings (`qnnc ops`, docs/ops.md) name the domain
        CONVERTERS[key] = Converter(key, fn, ops, note, "" if domain in DEFAULT_DOMAINS
                                    else domain, sequences)
        return fn

    return deco


def supported_ops() -> list[Converter]:
    """Every ONNX op qnnc imports, sorted by name (what `qnnc ops` prints)."""
    return [CONVERTERS[k] for k in sorted(CONVERTERS)]
