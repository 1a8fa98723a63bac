"""The kernels of the tvm target, one builder per op name (``@kernel("QConv")``), as TVM's
``register_legalize`` keys its lowerings by op.

A builder takes the :class:`targets.tvm.context.Kernel` of one node (its operands as TE
placeholders, its attributes and types) and returns the TE tensors of the node's results,
in order; lower.py turns them into one PrimFunc. Its docstring states the formula.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ir.graph import Node

if TYPE_CHECKING:
    from targets.tvm.context import Kernel

Builder = Callable[["Kernel"], list[Any]]
Accepts = Callable[[Node], bool]


@dataclass(frozen=True)
class Entry:
    """An op's builder, and which of its nodes it handles (a form it lacks, such as
    MaxPool's argmax output, is then reported as unsupported)."""

    build: Builder
    accepts: Accepts


_KERNELS: dict[str, Entry] = {}


def _any(node: Node) -> bool:
    return True


def kernel(*ops: str, accepts: Accepts = _any) -> Callable[[Builder], Builder]:
    """Register the decorated builder for ``ops``; an op has one builder."""

    def register(fn: Builder) -> Builder:
        for op in ops:
            if op in _KERNELS:
                raise ValueError(f"op {op!r} has a tvm kernel already")
            _KERNELS[op] = Entry(fn, accepts)
        return fn

    return register


def kernels() -> dict[str, Entry]:
    """Every registered kernel by op name (the kernel modules loaded first)."""
    import targets.tvm.kernels  # noqa: F401 - registers every family

    return dict(_KERNELS)
