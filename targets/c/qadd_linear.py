"""QAdd in an exact linear form of its raw codes: y = clamp((a * p + b * q + r) >> k, lo, hi).

QAdd's definition (ir/ops/qelementwise.py) rescales each input by a 64-bit multiplication,
adds, and rescales the sum by a third: about one cycle an element on a Zen 4 core, which in
ResNet-50 is 1.5 ms of residual adds. Its inputs are 8-bit codes, so the op is a function of
the 65536 pairs of codes alone, and that function is nearly linear: for most scale triples
some integers p, q, r and k give every pair's result with two 32-bit multiplications, an add
and a shift (csrc/qnnc_int8.h, qnnc_qadd_lin_n).

``linear_form`` searches for them and keeps them only if they give the definition's result
on all 65536 pairs, computed by the interpreter's own QAdd (the pairs whose result the clamp
decides need only stay beyond the clamp), and if no step of the form leaves int32. A
triple without such a form keeps the definition's steps (qnnc_qadd_n): scales in simple
ratios (5/6 and 2/3 of the output's) put many pairs on rounding ties that the definition's
inner steps decide, and an output scale far below the inputs' leaves no room in int32.
Calibrated scales mostly have one (197 of 200 random triples)."""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np

from ir import qmath
from ir.graph import Node
from ir.ops.qcommon import ADD_SHIFT, add_multipliers
from ir.ops.qelementwise import QAdd
from ir.types import DType, QuantParams, TensorType

#: shifts k the form may take; the finest TRIED of them that keep it in int32 are searched
SHIFTS = range(1, 31)
TRIED = 3
#: offsets from the rounded ideal slopes tried at each k
NUDGES = tuple(itertools.product((0, -1, 1), repeat=2))
I32 = 2**31
#: whether the emitters may use the form (tests that pin the definition's lane forms turn
#: it off)
ENABLED = True


@dataclass(frozen=True)
class LinearAdd:
    """y = clamp((a * p + b * q + r) >> k, lo, hi) on the raw codes a and b."""

    p: int
    q: int
    r: int
    k: int


def linear_form(node: Node) -> LinearAdd | None:
    """The exact linear form of the same-shape or broadcast QAdd ``node``, or None."""
    if not ENABLED:
        return None
    ta, tb = (v.type for v in node.inputs if v is not None)
    to = node.outputs[0].type
    if not all(t.dtype in (DType.u8, DType.i8) and t.quant is not None
               and not t.quant.per_channel for t in (ta, tb, to)):
        return None
    lo, hi = clamp_of(node)
    return _search(_key(ta), _key(tb), _key(to), lo, hi)


def clamp_of(node: Node) -> tuple[int, int]:
    """The output's type range met with the fused activation's clamp."""
    lo, hi = qmath.qrange(node.outputs[0].type.dtype)
    if "act_min" in node.attrs:
        lo, hi = max(lo, int(node.attrs["act_min"])), min(hi, int(node.attrs["act_max"]))
    return lo, hi


Key = tuple[str, float, int]


def _key(t: TensorType) -> Key:
    assert t.quant is not None
    return (t.dtype.value, float(t.quant.scale[0]), int(t.quant.zero_point[0]))


def _type(key: Key, shape: tuple[int, ...]) -> TensorType:
    return TensorType(shape, DType(key[0]), QuantParams.per_tensor(key[1], key[2]))


def exact_table(ta: TensorType, tb: TensorType, to: TensorType, lo: int, hi: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a codes, b codes, the definition's y) over every pair, as 256 x 256 int64 grids."""
    (alo, ahi), (blo, bhi) = qmath.qrange(ta.dtype), qmath.qrange(tb.dtype)
    a, b = np.meshgrid(np.arange(alo, ahi + 1), np.arange(blo, bhi + 1), indexing="ij")
    attrs = {"act_min": lo, "act_max": hi}
    y = QAdd.compute([a.astype(ta.dtype.np), b.astype(tb.dtype.np)], attrs, [ta, tb], [to])[0]
    return a.astype(np.int64), b.astype(np.int64), y.astype(np.int64)


@functools.lru_cache(maxsize=256)
def _search(ka: Key, kb: Key, ko: Key, lo: int, hi: int) -> LinearAdd | None:
    ta, tb, to = _type(ka, (256, 256)), _type(kb, (256, 256)), _type(ko, (256, 256))
    a, b, y = exact_table(ta, tb, to, lo, hi)
    (ma, na), (mb, nb), (my, ny) = add_multipliers(ta, tb, to)
    out = float(my[0]) / 2.0 ** (31 + int(ny[0]))
    slope_a = 2.0**ADD_SHIFT * float(ma[0]) / 2.0 ** (31 + int(na[0])) * out
    slope_b = 2.0**ADD_SHIFT * float(mb[0]) / 2.0 ** (31 + int(nb[0])) * out
    # y + 1 - a slope_a - b slope_b bounds r / 2^k; the form's largest value is about
    # (|a| slope_a + |b| slope_b + |that|) 2^k
    ca, cb = a[:, 0], b[0, :]
    offset = float(np.abs(y + 1 - a * slope_a - b * slope_b).max())
    reach = float(np.abs(ca).max()) * abs(slope_a) + float(np.abs(cb).max()) * abs(slope_b)
    # pairs the clamp decides need only stay beyond it: their bound is dropped
    never = np.int64(1) << 62
    drop_lo = np.where(y <= lo, -never, 0)
    drop_hi = np.where(y >= hi, never, 0)
    fine = [k for k in SHIFTS if (reach + offset) * 2.0**k < I32]
    for k in reversed(fine[-TRIED:]):  # the finest shifts first: any that works will do
        one = np.int64(1) << k
        yk = y * one
        for dp, dq in NUDGES:
            p, q = round(slope_a * 2.0**k) + dp, round(slope_b * 2.0**k) + dq
            # floor((v + r) / 2^k) = y with v = a p + b q needs y 2^k - v <= r and
            # r <= y 2^k - v + 2^k - 1
            e = yk - (ca * p)[:, None] - (cb * q)[None, :]
            r_lo, r_hi = int((e + drop_lo).max()), int((e + drop_hi).min()) + int(one) - 1
            if r_lo > r_hi:
                continue
            r = min(max(0, r_lo), r_hi)
            if _fits_int32(a, b, p, q, r):
                return LinearAdd(p, q, r, k)
    return None


def _fits_int32(a: np.ndarray, b: np.ndarray, p: int, q: int, r: int) -> bool:
    """Every step of (a * p + r) + b * q, in the kernel's order, within int32."""
    ap, bq = a * p, b * q
    steps = (ap, bq, ap + r, ap + r + bq)
    return all(int(np.abs(s).max()) < I32 for s in steps)


def evaluate(form: LinearAdd, a: np.ndarray, b: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """The form on codes, as the kernel computes it (int32 steps, an arithmetic shift)."""
    a32, b32 = a.astype(np.int32), b.astype(np.int32)
    v = (a32 * np.int32(form.p) + np.int32(form.r) + b32 * np.int32(form.q)) >> form.k
    return np.clip(v, lo, hi)
