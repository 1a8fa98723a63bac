"""Converters of ONNX's sequence and optional ops, resolved at import.

The IR has statically shaped tensors only, so a sequence becomes a :class:`Seq` (a tuple of
IR tensor values of a length known at compile time) and an optional an :class:`Opt` (its
value, or absent); see "Sequences and optionals" in docs/architecture.md. Nothing of them
reaches the IR: SplitToSequence emits Split (and Reshape for keepdims=0), ConcatFromSequence
Concat (and Reshape for new_axis=1), and the rest only rearrange values at import. Every
position must be a compile-time constant.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from compiler.frontend.context import Ctx, Opt, Resolved, Seq
from compiler.frontend.ops.quant import ir_dtype
from compiler.frontend.ops.shape import axis_arg, reshape_to
from compiler.frontend.registry import converter
from ir.graph import Value
from ir.types import DType

_AT_IMPORT = "a list of tensors resolved at import"
_POSITION = "resolved at import; position must be a compile-time constant"


def _seq(ctx: Ctx, s: Resolved | None, what: str = "input_sequence") -> Seq:
    if isinstance(s, Seq):
        return s
    kind = "missing" if s is None else "an optional" if isinstance(s, Opt) else "a tensor"
    raise ctx.fail(f"{what} must be a sequence, but it is {kind}")


def _tensor(ctx: Ctx, v: Resolved | None, what: str) -> Value:
    if isinstance(v, Value):
        return v
    kind = "missing" if v is None else "a sequence" if isinstance(v, Seq) else "an optional"
    raise ctx.fail(f"{what} must be a tensor, but it is {kind}")


def _position(ctx: Ctx, pos: Value, n: int, *, end_ok: bool) -> int:
    """A constant position in a sequence of ``n`` items, negative ones counted from the
    back; ``end_ok`` allows ``n`` (inserting at the back)."""
    if pos.data is None:
        raise ctx.fail(
            f"position (%{pos.name}) must be known at compile time, but it depends on the "
            "model's inputs: qnnc resolves sequences while compiling, so sequence positions "
            "must be constants"
        )
    if pos.data.size != 1 or pos.type.dtype not in (DType.i32, DType.i64):
        raise ctx.fail(f"position must be a single int32/int64, not {pos.type}")
    p = int(pos.data.reshape(-1)[0])
    hi = n if end_ok else n - 1
    if not -n <= p <= hi:
        raise ctx.fail(f"position {p} is out of range for a sequence of {n} tensors "
                       f"([{-n}, {hi}])")
    return p + n if p < 0 else p


def _same_dtype(ctx: Ctx, dtype: DType, t: Value) -> None:
    if t.type.dtype != dtype:
        raise ctx.fail(f"tensor {t.type} does not match the sequence's element type {dtype.value}")


@converter("SequenceConstruct", ir_ops=(), note=_AT_IMPORT, sequences=True)
def sequence_construct(ctx: Ctx, *inputs: Resolved | None) -> Seq:
    items = [_tensor(ctx, v, f"input {k}") for k, v in enumerate(inputs)]
    if not items:
        raise ctx.fail("SequenceConstruct needs at least one tensor")
    for t in items[1:]:
        _same_dtype(ctx, items[0].type.dtype, t)
    return Seq(tuple(items), items[0].type.dtype)


@converter("SequenceEmpty", ir_ops=(), note=_AT_IMPORT, sequences=True)
def sequence_empty(ctx: Ctx, *, dtype: int = 1) -> Seq:
    return Seq((), ir_dtype(dtype, "dtype"))


@converter("SequenceInsert", ir_ops=(), note=_POSITION, sequences=True)
def sequence_insert(ctx: Ctx, input_sequence: Resolved, tensor: Resolved,
                    position: Resolved | None = None) -> Seq:
    s = _seq(ctx, input_sequence)
    t = _tensor(ctx, tensor, "tensor")
    _same_dtype(ctx, s.dtype, t)
    n = len(s.items)
    p = n if position is None else _position(ctx, _tensor(ctx, position, "position"), n,
                                             end_ok=True)
    return Seq(s.items[:p] + (t,) + s.items[p:], s.dtype)


@converter("SequenceErase", ir_ops=(), note=_POSITION, sequences=True)
def sequence_erase(ctx: Ctx, input_sequence: Resolved,
                   position: Resolved | None = None) -> Seq:
    s = _seq(ctx, input_sequence)
    n = len(s.items)
    if n == 0:
        raise ctx.fail("cannot erase from an empty sequence")
    p = n - 1 if position is None else _position(ctx, _tensor(ctx, position, "position"), n,
                                                 end_ok=False)
    return Seq(s.items[:p] + s.items[p + 1:], s.dtype)


@converter("SequenceAt", ir_ops=(), note=_POSITION, sequences=True)
def sequence_at(ctx: Ctx, input_sequence: Resolved, position: Resolved) -> Value:
    s = _seq(ctx, input_sequence)
    p = _position(ctx, _tensor(ctx, position, "position"), len(s.items), end_ok=False)
    return s.items[p]


@converter("SequenceLength", ir_ops=(), note="a constant: lengths are known at compile time",
           sequences=True)
def sequence_length(ctx: Ctx, input_sequence: Resolved) -> Value:
    return ctx.const(np.array(len(_seq(ctx, input_sequence).items), dtype=np.int64))


@converter("SplitToSequence", ir_ops=("Split", "Reshape"),
           note="split must be constant; keepdims=0 squeezes with a Reshape", sequences=True)
def split_to_sequence(ctx: Ctx, input_: Resolved, split: Resolved | None = None, *,
                      axis: int = 0, keepdims: int = 1) -> Seq:
    x = _tensor(ctx, input_, "input")
    ax = axis_arg(ctx, axis, x.type.rank)
    dim = x.type.shape[ax]
    squeeze = False
    if split is None:  # pieces of one, the axis kept or dropped as keepdims says
        sizes, squeeze = [1] * dim, not keepdims
    else:
        sp = _tensor(ctx, split, "split")
        given = ctx.ints_of(sp, "split")
        if sp.type.rank == 0:  # equal pieces of this size, the last one smaller
            if given[0] <= 0:
                raise ctx.fail(f"split {given[0]} must be positive")
            sizes = [min(given[0], dim - k) for k in range(0, dim, given[0])]
        else:
            sizes = given
        if sum(sizes) != dim or any(s < 0 for s in sizes):
            raise ctx.fail(f"split sizes {sizes} do not add up to dim {dim} of {x.type}")
    if not sizes:
        raise ctx.fail(f"cannot split dim {dim} of {x.type}: a sequence from it would be "
                       "empty, and an empty sequence has no tensors to give")
    base = (ctx.out_hints or ["seq"])[0]
    names = [f"{base}_{k}" for k in range(len(sizes))]  # the graph outputs' names, if they are
    ctx.out_hints = [f"{n}_split" for n in names] if squeeze else names
    parts = [x] if len(sizes) == 1 else ctx.ops("Split", [x], axis=ax, split=sizes)
    if squeeze:
        squeezed = []
        for name, p in zip(names, parts):
            ctx.out_hints = [name]
            squeezed.append(reshape_to(ctx, p, [d for k, d in enumerate(p.type.shape) if k != ax]))
        parts = squeezed
    return Seq(tuple(parts), x.type.dtype)


@converter("ConcatFromSequence", ir_ops=("Concat", "Reshape"),
           note="new_axis=1 unsqueezes each tensor with a Reshape", sequences=True)
def concat_from_sequence(ctx: Ctx, input_sequence: Resolved, *, axis: int,
                         new_axis: int = 0) -> Value:
    s = _seq(ctx, input_sequence)
    if not s.items:
        raise ctx.fail("cannot concatenate an empty sequence")
    rank = s.items[0].type.rank
    if new_axis:
        ax = axis_arg(ctx, axis, rank + 1)
        hints, items = ctx.out_hints, []
        for t in s.items:
            ctx.out_hints = [f"{t.name}_unsqueezed"] if len(s.items) > 1 else hints
            items.append(reshape_to(ctx, t, [*t.type.shape[:ax], 1, *t.type.shape[ax:]]))
        ctx.out_hints = hints
    else:
        ax, items = axis_arg(ctx, axis, rank), list(s.items)
    if len(items) == 1:
        return items[0]
    return ctx.op("Concat", items, axis=ax)


@converter("Optional", ir_ops=(), note="present or absent, decided at import", sequences=True)
def optional(ctx: Ctx, x: Resolved | None = None, *, type: Any = None) -> Opt:  # noqa: A002
    if isinstance(x, Opt):
        raise ctx.fail("an optional cannot hold an optional")
    if x is None and type is None:
        raise ctx.fail("Optional without an input needs the attribute type")
    return Opt(x)


@converter("OptionalHasElement", ir_ops=(), note="a constant: known at import", sequences=True)
def optional_has_element(ctx: Ctx, x: Resolved | None = None) -> Value:
    present = x is not None and not (isinstance(x, Opt) and x.value is None)
    return ctx.const(np.array(present, dtype=np.bool_))


@converter("OptionalGetElement", ir_ops=(), note="the optional must be present",
           sequences=True)
def optional_get_element(ctx: Ctx, x: Resolved) -> Resolved:
    if not isinstance(x, Opt):
        return x  # opset 18: a tensor or sequence is its own element
    if x.value is None:
        raise ctx.fail("the optional is empty here, so it has no element to get")
    return x.value
