"""Small helpers shared by the INT8 emitters: quant params, clamp bounds, multiplier tables."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ir import qmath
from ir.types import DType, QuantParams, TensorType
from targets.c.emitter import LayerCtx, c_table


def qparams(t: TensorType) -> QuantParams:
    assert t.quant is not None, t
    return t.quant


def sgn(t: TensorType) -> int:
    """1 for a signed 8-bit tensor: the literal that selects int8_t in csrc/qnnc_int8.h."""
    return 1 if t.dtype is DType.i8 else 0


def clamp_bounds(ctx: LayerCtx) -> tuple[int, int]:
    """The output type's range met with the fused activation's act_min/act_max (if any)."""
    lo, hi = qmath.qrange(ctx.ot(0).dtype)
    if "act_min" in ctx.a:
        lo, hi = max(lo, int(ctx.a["act_min"])), min(hi, int(ctx.a["act_max"]))
    return lo, hi


def centred(value: str, zero_point: int) -> str:
    """``value - zero_point`` (C text), or ``value`` alone for a zero point of 0."""
    z = int(zero_point)
    return value if z == 0 else (f"{value} - {z}" if z > 0 else f"{value} + {-z}")


def int_table(name: str, ctype: str, values: Sequence[int]) -> str:
    return c_table(name, ctype, [int(v) for v in values])


def mult_exprs(m0: np.ndarray, shift: np.ndarray, index: str) -> tuple[list[str], str, str]:
    """(declarations, M0 expression, n expression) of requantisation multipliers: literals
    when there is one, else per-channel static tables indexed by the C expression ``index``."""
    if m0.size == 1:
        return [], str(int(m0[0])), str(qmath.M0_BITS + int(shift[0]))
    decl = [int_table("req_m0", "int32_t", m0.tolist()),
            int_table("req_n", "int8_t", (shift + qmath.M0_BITS).tolist())]
    return decl, f"req_m0[{index}]", f"req_n[{index}]"
