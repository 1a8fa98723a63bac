"""Shared helpers for op declarations: broadcasting, axis handling, and factories for the
many elementwise ops whose declaration is a formula and nothing else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ir.ops.registry import Attr, Attrs, OpError, register
from ir.types import DType, TensorType


def broadcast_shapes(op: str, *shapes: tuple[int, ...]) -> tuple[int, ...]:
    """Numpy (multidirectional) broadcasting, as ONNX defines it."""
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*shapes))
    except ValueError:
        raise OpError(
            f"{op}: shapes {' and '.join(str(list(s)) for s in shapes)} do not broadcast"
        ) from None


def norm_axis(op: str, axis: int, rank: int) -> int:
    """Map a possibly negative axis into [0, rank); error if out of range."""
    if not -rank <= axis < max(rank, 1):
        raise OpError(f"{op}: axis {axis} is out of range for rank {rank}")
    return axis % rank if rank else 0


def require_inputs(op: str, ins: list[TensorType | None], n: int) -> list[TensorType]:
    """The first ``n`` inputs, which must be present."""
    out = []
    for i in range(n):
        t = ins[i] if i < len(ins) else None
        if t is None:
            raise OpError(f"{op}: input {i} is required")
        out.append(t)
    return out


def same_dtype(op: str, types: list[TensorType]) -> DType:
    dts = {t.dtype for t in types}
    if len(dts) != 1:
        got = sorted(d.value for d in dts)
        raise OpError(f"{op}: inputs must share one element type, got {got}")
    return types[0].dtype


def reject_quant(op: str, types: list[TensorType | None]) -> None:
    """Arithmetic on stored integers of a quantised tensor would ignore its scale and zero
    point: such inputs are an error (the quantiser rewrites those ops to Q-ops)."""
    for t in types:
        if t is not None and t.quant is not None:
            raise OpError(f"{op}: input {t} is quantised; {op} works on plain values "
                          "(use the quantised op instead)")


def unary(
    name: str,
    fn: Callable[[np.ndarray, Attrs], np.ndarray],
    doc: str,
    attrs: dict[str, Attr] | None = None,
    dtypes: str = "float",
    **traits: Any,
) -> None:
    """Register an elementwise op ``y = fn(x)`` whose output type equals its input type.

    ``dtypes`` is "float" (float inputs only), "numeric" (no bool), "bool" (bool only) or "any";
    ``traits`` are the op's traits (registry.py), e.g. ``quantized=qforms.lut``.
    """

    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs(name, ins, 1)
        reject_quant(name, [x])
        if dtypes == "float" and not x.dtype.is_float:
            raise OpError(f"{name}: needs a float input, got {x.dtype.value}")
        if dtypes == "numeric" and x.dtype is DType.bool:
            raise OpError(f"{name}: needs a numeric input, got bool")
        if dtypes == "bool" and x.dtype is not DType.bool:
            raise OpError(f"{name}: needs a bool input, got {x.dtype.value}")
        return [TensorType(x.shape, x.dtype)]

    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        return [np.asarray(fn(x, a)).astype(x.dtype, copy=False)]

    cls = type(name, (), {
        "__doc__": doc,
        "name": name,
        "operands": ("x",),
        "attrs": attrs or {},
        "infer": staticmethod(infer),
        "compute": staticmethod(compute),
        **traits,
    })
    register(cls)


def binary(
    name: str,
    fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
    doc: str,
    result: str = "same",
    dtypes: str = "numeric",
    **traits: Any,
) -> None:
    """Register a broadcasting binary op. ``result`` is "same" (the inputs' type) or "bool";
    ``traits`` are the op's traits (registry.py)."""

    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        x, y = require_inputs(name, ins, 2)
        reject_quant(name, [x, y])
        dt = same_dtype(name, [x, y])
        if dtypes == "numeric" and dt is DType.bool:
            raise OpError(f"{name}: needs numeric inputs, got bool")
        if dtypes == "bool" and dt is not DType.bool:
            raise OpError(f"{name}: needs bool inputs, got {dt.value}")
        shape = broadcast_shapes(name, x.shape, y.shape)
        return [TensorType(shape, DType.bool if result == "bool" else dt)]

    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x, y = ins[0], ins[1]
        assert x is not None and y is not None
        out_dt: Any = np.bool_ if result == "bool" else x.dtype
        return [np.asarray(fn(x, y)).astype(out_dt, copy=False)]

    cls = type(name, (), {
        "__doc__": doc,
        "name": name,
        "operands": ("a", "b"),
        "attrs": {},
        "infer": staticmethod(infer),
        "compute": staticmethod(compute),
        **traits,
    })
    register(cls)
