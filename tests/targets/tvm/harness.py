"""Building one-node graphs of quantised ops, running them through the interpreter and the
tvm target, and comparing: integers exactly, floats within a stated tolerance."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from ir import qmath
from ir.build import make_node
from ir.graph import Graph, Value
from ir.interpreter import run
from ir.types import DType, QuantParams, TensorType
from ir.verifier import verify
from targets.tvm.build import run_in_memory

#: (data, quant params or None, is a constant)
Operand = tuple[np.ndarray, QuantParams | None, bool]

ACT = (DType.u8, DType.i8)


def add_operands(g: Graph, operands: list[Operand | None]) -> list[Value | None]:
    """The operands as values of ``g``: constants as constants (c<i>), the others as inputs
    (x<i>, the names feeds_of uses); None stays None (an omitted optional operand)."""
    values: list[Value | None] = []
    for i, o in enumerate(operands):
        if o is None:
            values.append(None)
            continue
        data, q, const = o
        t = TensorType(data.shape, DType.from_numpy(data.dtype), q)
        if const:
            v = g.add_const(data, f"c{i}")
            v.type = t
        else:
            v = g.add_input(f"x{i}", t)
        values.append(v)
    return values


def one_node(op: str, operands: list[Operand | None], **attrs: Any) -> Graph:
    """A graph of one ``op`` node: constant operands as constants, the others as inputs."""
    g = Graph("t")
    node = make_node(g, op, add_operands(g, operands), attrs, name=f"{op}/node 0")
    g.outputs = list(node.outputs)
    verify(g)
    return g


def feeds_of(operands: list[Operand | None]) -> dict[str, np.ndarray]:
    return {f"x{i}": o[0] for i, o in enumerate(operands) if o is not None and not o[2]}


def assert_exact(g: Graph, feeds: dict[str, np.ndarray]) -> None:
    """The tvm build of ``g`` returns exactly the interpreter's outputs (dtype, shape,
    every element)."""
    want = run(g, feeds)
    got = run_in_memory(g, feeds)
    for v, out in zip(g.outputs, got, strict=True):
        assert out.dtype == want[v.name].dtype and out.shape == want[v.name].shape
        np.testing.assert_array_equal(out, want[v.name])


def assert_close(g: Graph, feeds: dict[str, np.ndarray], rtol: float, atol: float) -> None:
    want = run(g, feeds)
    got = run_in_memory(g, feeds)
    for v, out in zip(g.outputs, got, strict=True):
        assert out.dtype == want[v.name].dtype and out.shape == want[v.name].shape
        np.testing.assert_allclose(out, want[v.name], rtol=rtol, atol=atol)


# -- strategies ---------------------------------------------------------------------------


def codes(draw: Any, shape: tuple[int, ...], dtype: DType) -> np.ndarray:
    """Random codes of ``dtype`` with the extremes of its range likely."""
    lo, hi = qmath.qrange(dtype)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    data = rng.integers(lo, hi + 1, size=shape)
    edge = rng.random(size=shape) < 0.1
    data = np.where(edge, rng.choice([lo, hi], size=shape), data)
    return data.astype(dtype.np)


def act_params(draw: Any, dtype: DType | None = None) -> tuple[DType, int, float]:
    """(dtype, zero point, scale) of an activation."""
    dt = dtype or draw(st.sampled_from(ACT))
    lo, hi = qmath.qrange(dt)
    zp = draw(st.sampled_from([lo, hi, 0 if lo < 0 else 128]) | st.integers(lo, hi))
    # powers of two keep the multipliers derived from scales exact, so ties occur
    scale = float(np.float32(draw(st.sampled_from([2.0**-k for k in range(1, 11)])
                                  | st.floats(1e-3, 1.0))))
    return dt, zp, scale


def multiplier(draw: Any, useful: tuple[int, int]) -> float:
    """A real multiplier whose encoding's n = 31 + shift ranges over 1..62 (and past 62,
    where qmath encodes M0 = 0); most draws take a shift from ``useful``, where the op's
    typical accumulators give results inside the 8-bit range rather than 0 or saturation.
    Power-of-two mantissas make the rounding ties common."""
    whole = st.integers(qmath.MIN_SHIFT, qmath.MAX_SHIFT + 1)
    shift = draw(whole if draw(st.integers(0, 3)) == 0 else st.integers(*useful))
    mant = draw(st.sampled_from([0.5, 0.75]) | st.floats(0.5, 0.999))
    return float(np.ldexp(mant, -shift))


def out_scale_for(real_in: float, m: float) -> float:
    """The output scale that makes the multiplier real_in / s_y equal ``m`` (as near as a
    float allows)."""
    return real_in / m


def out_attrs(draw: Any, scale: float, *, act: bool = False) -> dict[str, Any]:
    dt, zp, _ = act_params(draw)
    attrs: dict[str, Any] = {"out_dtype": dt.value, "out_scale": scale, "out_zp": zp}
    if act and draw(st.booleans()):
        lo, hi = qmath.qrange(dt)
        a = draw(st.integers(lo, hi))
        attrs["act_min"], attrs["act_max"] = a, draw(st.integers(a, hi))
    return attrs
