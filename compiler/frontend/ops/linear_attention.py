"""Converter of ONNX's LinearAttention (opset 27): the recurrence unrolled at import over the
static sequence length T into MatMul / Mul / Add ops on the state [B, H_kv, d_k, d_v]:

    S_t = exp(g_t) ⊙ S_{t-1}                              gated, gated_delta
    v_t = β_t · (v_t - S_{t-1}ᵀ k_t)                        delta, gated_delta (S after decay)
    S_t = S_t + k_t ⊗ v_t
    o_t = scale · q_t S_t      (GQA: query head h reads state h // (H_q / H_kv))

Unrolling is exact (the spec's sequential definition) and fits decoding (T = 1) and short
prefills; each step is a handful of small ops, so a long prefill is refused above
``MAX_STEPS`` rather than turned into thousands of nodes (a chunked IR op would be the
way there). Like the reference, the recurrence runs in f32 whatever the input type.
"""

from __future__ import annotations

import math

import numpy as np

from compiler.frontend.context import Ctx
from compiler.frontend.ops.attention import Lowering, split_heads
from compiler.frontend.registry import converter
from ir.graph import Value
from ir.types import DType

MAX_STEPS = 256
_RULES = ("linear", "gated", "delta", "gated_delta")


def _f32(lo: Lowering, x: Value, what: str) -> Value:
    return x if x.type.dtype is DType.f32 else lo.op("Cast", [x], f"{what}_f32", to="f32")


def _step(lo: Lowering, x: Value, i: int, what: str) -> Value:
    """x[:, :, i:i+1, :] of a [B, H, T, D] tensor."""
    b, h, _, d = x.type.shape
    return lo.op("Slice", [x], f"{what}{i}", starts=[0, 0, i, 0], ends=[b, h, i + 1, d],
                 steps=[1, 1, 1, 1])


def _per_head(lo: Lowering, x: Value, heads: int, what: str) -> Value:
    """A [B, T, heads] gate as [B, heads, T, 1]."""
    b, t, _ = x.type.shape
    y = lo.reshape(x, [b, t, heads, 1], f"{what}_4d")
    return lo.op("Transpose", [y], f"{what}_heads", perm=[0, 2, 1, 3])


@converter("LinearAttention", ir_ops=("MatMul", "Mul", "Add", "Sub", "Exp", "Slice", "Concat",
                                      "Reshape", "Transpose", "Cast"),
           note=f"the recurrence unrolled over the sequence (at most {MAX_STEPS} steps)")
def linear_attention(
    ctx: Ctx, query: Value, key: Value, value: Value, past_state: Value | None = None,
    decay: Value | None = None, beta: Value | None = None, *, q_num_heads: int,
    kv_num_heads: int, chunk_size: int = 64, scale: float = 0.0,
    update_rule: str = "gated_delta",
) -> list[Value]:
    lo = Lowering(ctx)
    if update_rule not in _RULES:
        raise ctx.fail(f"update_rule {update_rule!r} is not one of {list(_RULES)}")
    gated, delta = update_rule in ("gated", "gated_delta"), update_rule in ("delta",
                                                                            "gated_delta")
    if gated != (decay is not None) or delta != (beta is not None):
        raise ctx.fail(f"update_rule {update_rule!r} takes decay: {gated}, beta: {delta}")
    if q_num_heads <= 0 or kv_num_heads <= 0 or q_num_heads % kv_num_heads:
        raise ctx.fail(f"q_num_heads {q_num_heads} must be a multiple of kv_num_heads "
                       f"{kv_num_heads}")
    if any(v.type.rank != 3 for v in (query, key, value)):
        raise ctx.fail("query, key and value must be 3-D [B, T, H*D]")
    b, t, _ = query.type.shape
    if t > MAX_STEPS:
        raise ctx.fail(f"a sequence of {t} steps is unrolled into too many ops (at most "
                       f"{MAX_STEPS}); run the prefill in chunks")
    q4 = split_heads(lo, _f32(lo, query, "q"), q_num_heads, "q")
    k4 = split_heads(lo, _f32(lo, key, "k"), kv_num_heads, "k")
    v4 = split_heads(lo, _f32(lo, value, "v"), kv_num_heads, "v")
    dk, dv, hkv, group = q4.type.shape[3], v4.type.shape[3], kv_num_heads, \
        q_num_heads // kv_num_heads
    gates = None
    if decay is not None:
        d = _f32(lo, decay, "decay")
        if d.type.shape[-1] == hkv:
            d4 = _per_head(lo, d, hkv, "decay")
        elif d.type.shape[-1] == hkv * dk:
            d4 = split_heads(lo, d, hkv, "decay")
        else:
            raise ctx.fail(f"decay's last dim must be {hkv} or {hkv * dk}")
        gates = lo.op("Exp", [d4], "decay_exp")  # [B, H_kv, T, 1 or d_k]
    rates = None
    if beta is not None:
        if beta.type.shape[-1] not in (hkv, 1):
            raise ctx.fail(f"beta's last dim must be {hkv} or 1")
        rates = _per_head(lo, _f32(lo, beta, "beta"), beta.type.shape[-1], "beta")
    if past_state is not None:
        if list(past_state.type.shape) != [b, hkv, dk, dv]:
            raise ctx.fail(f"past_state must be [{b}, {hkv}, {dk}, {dv}]")
        state = _f32(lo, past_state, "state")
    else:
        state = lo.const(np.zeros((b, hkv, dk, dv), np.float32), "state0")
    outs = []
    for i in range(t):
        k_row = _step(lo, k4, i, "k_t")  # [B, H_kv, 1, d_k]
        k_col = lo.reshape(k_row, [b, hkv, dk, 1], f"k_col{i}")
        v_row = _step(lo, v4, i, "v_t")
        if gates is not None:
            g = _step(lo, gates, i, "g_t")
            g = lo.reshape(g, [b, hkv, g.type.shape[3], 1], f"g_col{i}")
            state = lo.op("Mul", [state, g], f"decayed{i}")
        if rates is not None:
            seen = lo.op("MatMul", [k_row, state], f"retrieved{i}")
            v_row = lo.op("Mul", [_step(lo, rates, i, "beta_t"),
                                  lo.op("Sub", [v_row, seen], f"residual{i}")], f"v_delta{i}")
        state = lo.op("Add", [state, lo.op("MatMul", [k_col, v_row], f"outer{i}")],
                      f"state{i + 1}")
        q_t = lo.reshape(_step(lo, q4, i, "q_t"), [b, hkv, group, dk], f"q_groups{i}")
        outs.append(lo.reshape(lo.op("MatMul", [q_t, state], f"read{i}"),
                               [b, q_num_heads, 1, dv], f"o{i}"))
    o = outs[0] if t == 1 else lo.op("Concat", outs, "o_all", axis=2)
    factor = 1.0 / math.sqrt(dk) if not scale else scale
    o = lo.op("Mul", [o, lo.const(np.float32(factor), "scale")], "o_scaled")
    o = lo.op("Transpose", [o], "o_t", perm=[0, 2, 1, 3])
    packed = [b, t, q_num_heads * dv]
    out_dt = query.type.dtype
    state_dt = past_state.type.dtype if past_state is not None else out_dt
    y = (lo.out(0, "Cast", [lo.reshape(o, packed, "o_packed")], to=out_dt.value)
         if out_dt is not DType.f32 else lo.out(0, "Reshape", [o], shape=packed))
    present = (lo.out(1, "Cast", [state], to=state_dt.value) if state_dt is not DType.f32
               else state)
    return [y, present]
