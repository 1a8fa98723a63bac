"""What a kernel builder sees of its node: operands as TE placeholders (read by name, as
``node.x``), the node's attributes and types, and compile-time constants it adds itself
(per-channel multipliers, lookup tables). lower.py reads back which Relax value feeds each
placeholder, in order, to call the PrimFunc."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ir.graph import Node, Value
from ir.types import TensorType
from targets.tvm.api import te, tir

Expr = Any  # a TIR PrimExpr
Tensor = Any  # a te.Tensor


def tvm_dtype(t: TensorType) -> str:
    """The TVM dtype string of an IR tensor type (numpy's name: uint8, int32, float32...)."""
    return str(t.dtype.np.name)


class Kernel:
    """One node being lowered; see the module doc."""

    def __init__(self, node: Node, bind: Callable[[Value], Any],
                 constant: Callable[[np.ndarray], Any],
                 checked: Callable[[Value, list[int]], Any] | None = None) -> None:
        self.node = node
        self.attrs = node.attrs
        self.placeholders: list[Tensor] = []
        self.args: list[Any] = []
        self._bind = bind
        self._constant = constant
        self._checked = checked

    @property
    def out_types(self) -> list[TensorType]:
        return [v.type for v in self.node.outputs]

    def has(self, name: str) -> bool:
        return self.node.operand(name) is not None

    def type_of(self, name: str) -> TensorType:
        value = self.node.operand(name)
        assert isinstance(value, Value), f"{self.node.op}: operand {name} is omitted"
        return value.type

    def operand(self, name: str) -> Tensor:
        """The placeholder of operand ``name`` (one per use: the PrimFunc's next parameter)."""
        value = self.node.operand(name)
        assert isinstance(value, Value), f"{self.node.op}: operand {name} is omitted"
        return self._placeholder(value, self._bind(value), name)

    def operands(self, name: str) -> list[Tensor]:
        """The placeholders of the variadic operand ``name`` (Concat's values)."""
        values = self.node.operand(name)
        return [self._placeholder(v, self._bind(v), f"{name}{k}") for k, v in enumerate(values)]

    def table(self, data: np.ndarray, name: str) -> Tensor:
        """A compile-time array the kernel reads (a parameter bound to a Relax constant)."""
        arr = np.asarray(data, order="C")
        t = te.placeholder(arr.shape, str(arr.dtype), name=name)
        self.placeholders.append(t)
        self.args.append(self._constant(arr))
        return t

    def indices(self, name: str, dims: list[int]) -> Tensor:
        """Operand ``name`` (indices into axes of ``dims`` entries: one dim for every index,
        or one per entry of the last axis) as int64 wrapped into [0, dim): constants
        wrapped here (the verifier checked their range), indices known only at run time
        through a check kernel that stops the run on one out of range (checks.py)."""
        value = self.node.operand(name)
        assert isinstance(value, Value), f"{self.node.op}: operand {name} is omitted"
        shape = list(value.type.shape)
        if value.data is not None:
            idx = np.asarray(value.data, dtype=np.int64).reshape(shape)
            d = np.asarray(dims, dtype=np.int64)
            d = d[-1] if len(dims) == 1 else d  # one dim, or one per tuple entry
            wrapped = np.where(idx < 0, idx + d, idx).astype(np.int64)
            return self.table(wrapped if wrapped.size else np.zeros(shape, np.int64), name)
        assert self._checked is not None, "indices known at run time need a check kernel"
        t = te.placeholder(shape, "int64", name=name)
        self.placeholders.append(t)
        self.args.append(self._checked(value, dims))
        return t

    def per_channel(self, values: np.ndarray, name: str,
                    dtype: str = "int64") -> Callable[[Expr], Expr]:
        """``values`` (one per channel, or one for all) as a function of the channel index:
        an inline constant when they are all equal integers, else a table lookup."""
        flat = np.asarray(values).reshape(-1)
        uniform = flat.size == 0 or bool((flat == flat[0]).all())
        if uniform and not dtype.startswith("float"):
            v = tir.const(flat[0].item() if flat.size else 0, dtype)
            return lambda c: v
        if uniform:  # floats stay in memory: TVM's C printer writes literals with too few
            # digits to round-trip (5.023775e-02f for 0.050237752f)
            t1 = self.table(flat[:1].astype(dtype), name)
            return lambda c: t1[0]
        t = self.table(flat.astype(dtype), name)
        return lambda c: t[c]

    def _placeholder(self, value: Value, arg: Any, name: str) -> Tensor:
        t = te.placeholder(value.type.shape, tvm_dtype(value.type), name=name)
        self.placeholders.append(t)
        self.args.append(arg)
        return t
