"""Converters of onnxruntime's com.microsoft attention ops: Attention (the packed-QKV
projection BERT optimisation writes) and MultiHeadAttention, lowered at import like the
default-domain Attention (compiler/frontend/ops/attention.py) into MatMul, Softmax and
elementwise ops:

    q, k, v = x @ Wq + bq, x @ Wk + bk, x @ Wv + bv      (Attention: slices of one weight)
    s       = scale · q_h @ k_hᵀ + attention_bias
    s       = Where(key_valid, s, s + mask_filter_value)
    s       = Where(causal, s, -inf)                     unidirectional
    Y       = merge(Softmax(s) @ v_h)

A constant packed weight is cut into three at import, so each projection is its own fully
connected layer for the quantiser (its own output range, per-channel weights). The masks
follow onnxruntime's CPU kernels: a masked key adds ``mask_filter_value`` (default -10000)
to its score (so a fully padded row is the softmax of its raw scores, not zero).
"""

from __future__ import annotations

import math

import numpy as np

from compiler.frontend.context import Ctx
from compiler.frontend.ops.attention import Lowering, split_heads
from compiler.frontend.registry import converter
from ir.graph import Value

MS = "com.microsoft"
_IR_OPS = ("MatMul", "Add", "Mul", "Softmax", "Where", "Transpose", "Reshape", "Slice",
           "Concat", "Less", "Greater", "GreaterOrEqual", "And")


def key_valid(lo: Lowering, mask: Value | None, batch: int, s: int, t: int) -> Value | None:
    """Which keys onnxruntime's key mask keeps, bool [B, 1, 1 or S, T]. Forms: [B] valid
    lengths (right padding), [2B] ends then starts (left padding), [B, T] or [B, S, T] raw
    masks (0 = masked)."""
    if mask is None:
        return None
    shape = list(mask.type.shape)
    j = lo.const(np.arange(t, dtype=mask.type.dtype.np).reshape(1, t), "key_index")
    if len(shape) == 1 and shape[0] in (batch, 2 * batch):
        ends = lo.op("Slice", [mask], "mask_ends", starts=[0], ends=[batch], steps=[1])
        ok = lo.op("Less", [j, lo.reshape(ends, [batch, 1], "mask_ends_2d")], "key_valid")
        if shape[0] == 2 * batch:
            starts = lo.op("Slice", [mask], "mask_starts", starts=[batch], ends=[2 * batch],
                           steps=[1])
            after = lo.op("GreaterOrEqual", [j, lo.reshape(starts, [batch, 1], "starts_2d")],
                          "key_started")
            ok = lo.op("And", [ok, after], "key_live")
        ok = lo.reshape(ok, [batch, 1, 1, t], "key_valid_4d")
    elif len(shape) == 2 and shape == [batch, t]:
        ok = lo.reshape(lo.op("Greater", [mask, lo.const(np.zeros((), mask.type.dtype.np),
                                                           "mask_zero")], "key_valid"),
                        [batch, 1, 1, t], "key_valid_4d")
    elif len(shape) == 3 and shape == [batch, s, t]:
        ok = lo.reshape(lo.op("Greater", [mask, lo.const(np.zeros((), mask.type.dtype.np),
                                                           "mask_zero")], "key_valid"),
                        [batch, 1, s, t], "key_valid_4d")
    else:
        raise lo.ctx.fail(f"mask of shape {shape} is not supported: expected [{batch}], "
                          f"[{2 * batch}], [{batch}, {t}] or [{batch}, {s}, {t}]")
    return ok


def sdpa(lo: Lowering, qh: Value, kh: Value, vh: Value, scale: float | None,
         bias: Value | None, valid: Value | None, fill: float, past_len: int | None) -> Value:
    """Y [B, S, H*Dv] from heads qh [B, H, S, D], kh [B, H, T, D], vh [B, H, T, Dv]: the
    scaled scores plus ``bias``, plus ``fill`` where ``valid`` is false, causal from
    ``past_len`` when not None.

    The fill is selected (Where) rather than added as a mask bias: the result is the same,
    but an Add of -10000 would put the scores and the mask in one quantised tensor whose
    scale (~40) rounds every score away; the select keeps the mask in the float island
    with the Softmax."""
    b, heads, s, d = qh.type.shape
    t = kh.type.shape[2]
    kt = lo.op("Transpose", [kh], "k_t", perm=[0, 1, 3, 2])
    raw = lo.op("MatMul", [qh, kt], "scores")
    alpha = 1.0 / math.sqrt(d) if scale is None or scale == 0.0 else scale
    scores = lo.op("Mul", [raw, lo.scalar(alpha, raw, "scale")], "scaled")
    if bias is not None:
        scores = lo.op("Add", [scores, bias], "biased")
    if valid is not None:
        filled = lo.op("Add", [scores, lo.scalar(fill, raw, "mask_fill")], "filled")
        scores = lo.op("Where", [valid, scores, filled], "key_masked")
    if past_len is not None:
        i = np.arange(s).reshape(s, 1)
        allowed = np.arange(t).reshape(1, t) <= i + past_len
        scores = lo.op("Where", [lo.const(allowed, "causal"), scores,
                                 lo.scalar(-np.inf, raw, "neg_inf")], "masked")
    probs = lo.op("Softmax", [scores], "probs", axis=3)
    ctxv = lo.op("MatMul", [probs, vh], "context")
    merged = lo.op("Transpose", [ctxv], "context_t", perm=[0, 2, 1, 3])
    return lo.out(0, "Reshape", [merged], shape=[b, s, heads * vh.type.shape[3]])


def _cut(lo: Lowering, x: Value, start: int, end: int, what: str) -> Value:
    return lo.slice_last(x, start, end, 1, what)


@converter("Attention", domain=MS, ir_ops=_IR_OPS,
           note="packed-QKV projection + attention, lowered (masks as onnxruntime's CPU)")
def ms_attention(
    ctx: Ctx, x: Value, weights: Value, bias: Value | None = None,
    mask_index: Value | None = None, past: Value | None = None,
    attention_bias: Value | None = None, past_sequence_length: Value | None = None, *,
    num_heads: int, qkv_hidden_sizes: list[int] | None = None, unidirectional: int = 0,
    scale: float = 0.0, mask_filter_value: float = -10000.0, do_rotary: int = 0,
    past_present_share_buffer: int = 0, rotary_embedding_dim: int = 0,
) -> list[Value]:
    lo = Lowering(ctx)
    if do_rotary or past_present_share_buffer or past_sequence_length is not None:
        raise ctx.fail("do_rotary and past_present_share_buffer are not supported")
    total = weights.type.shape[-1]
    sizes = list(qkv_hidden_sizes) if qkv_hidden_sizes else [total // 3] * 3
    if len(sizes) != 3 or sum(sizes) != total:
        raise ctx.fail(f"qkv_hidden_sizes {sizes} do not add up to the weights' {total}")
    cuts = [0, sizes[0], sizes[0] + sizes[1], total]
    proj = []
    for n, what in enumerate(("q", "k", "v")):
        y = lo.op("MatMul", [x, _cut(lo, weights, cuts[n], cuts[n + 1], f"w{what}")],
                  f"{what}_proj")
        if bias is not None:
            y = lo.op("Add", [y, _cut(lo, bias, cuts[n], cuts[n + 1], f"b{what}")],
                      f"{what}_biased")
        proj.append(split_heads(lo, y, num_heads, what))
    qh, kh, vh = proj
    batch, s = x.type.shape[0], x.type.shape[1]
    past_len = 0
    if past is not None:
        past_len = past.type.shape[3]
        pk, pv = (lo.reshape(lo.op("Slice", [past], f"past_{w}", starts=[n, 0, 0, 0, 0],
                                   ends=[n + 1, *past.type.shape[1:]], steps=[1] * 5),
                             list(past.type.shape[1:]), f"past_{w}_4d")
                  for n, w in ((0, "k"), (1, "v")))
        kh = lo.op("Concat", [pk, kh], "present_k", axis=2)
        vh = lo.op("Concat", [pv, vh], "present_v", axis=2)
    t = kh.type.shape[2]
    valid = key_valid(lo, mask_index, batch, s, t)
    y = sdpa(lo, qh, kh, vh, scale, attention_bias, valid, mask_filter_value,
             past_len if unidirectional else None)
    outs = [y]
    if lo.wanted(1):
        stacked = [lo.reshape(v, [1, *v.type.shape], f"present_{w}_5d")
                   for v, w in ((kh, "k"), (vh, "v"))]
        outs.append(lo.out(1, "Concat", stacked, axis=0))
    return outs


def _packed(lo: Lowering, x: Value, index: int, what: str) -> Value:
    """Entry ``index`` of the packed axis 3 of x [B, L, N, P, H], as heads [B, N, L, H]."""
    b, seq, n, p, h = x.type.shape
    one = lo.op("Slice", [x], f"{what}_packed", starts=[0, 0, 0, index, 0],
                ends=[b, seq, n, index + 1, h], steps=[1] * 5)
    return lo.op("Transpose", [lo.reshape(one, [b, seq, n, h], f"{what}_split")],
                 f"{what}_heads", perm=[0, 2, 1, 3])


@converter("MultiHeadAttention", domain=MS, ir_ops=_IR_OPS,
           note="separate, packed-QKV or packed-KV projections with bias, key padding mask, "
                "attention_bias, past/present; lowered")
def multi_head_attention(
    ctx: Ctx, query: Value, key: Value | None = None, value: Value | None = None,
    bias: Value | None = None, key_padding_mask: Value | None = None,
    attention_bias: Value | None = None, past_key: Value | None = None,
    past_value: Value | None = None, past_sequence_length: Value | None = None,
    cache_indirection: Value | None = None, *, num_heads: int, unidirectional: int = 0,
    scale: float = 0.0, mask_filter_value: float = -10000.0,
) -> list[Value]:
    lo = Lowering(ctx)
    if past_sequence_length is not None or cache_indirection is not None:
        raise ctx.fail("past_sequence_length / cache_indirection (buffer sharing, beam "
                       "search) are not supported")
    if lo.wanted(3):
        raise ctx.fail("the qk output is not supported")
    n = num_heads

    def biased(x: Value, k: int, what: str) -> Value:
        if bias is None:
            return x
        size = bias.type.shape[0] // 3
        return lo.op("Add", [x, _cut(lo, bias, k * size, (k + 1) * size, f"b{what}")],
                     f"{what}_biased")

    if query.type.rank == 5:  # packed QKV [B, S, N, 3, H]
        if key is not None or value is not None:
            raise ctx.fail("a packed QKV query takes no key or value")
        if bias is not None:
            b, s, _, _, h = query.type.shape
            bias3 = lo.reshape(bias, [3, n, h], "bias_3nh")
            perm = lo.op("Transpose", [bias3], "bias_n3h", perm=[1, 0, 2])
            query = lo.op("Add", [query, perm], "qkv_biased")
        qh, kh, vh = (_packed(lo, query, i, w) for i, w in enumerate("qkv"))
    else:
        if key is None:
            raise ctx.fail("key is required unless the query packs Q, K and V")
        qh = split_heads(lo, biased(query, 0, "q"), n, "q")
        if key.type.rank == 5:  # packed KV [B, L, N, 2, H]
            if bias is not None:
                raise ctx.fail("bias with a packed KV key is not supported")
            kh, vh = _packed(lo, key, 0, "k"), _packed(lo, key, 1, "v")
        elif key.type.rank == 4:  # already projected heads [B, N, L, H]
            if value is None:
                raise ctx.fail("value is required with a 4-D key")
            kh, vh = key, value
        else:
            if value is None:
                raise ctx.fail("value is required with a 3-D key")
            kh = split_heads(lo, biased(key, 1, "k"), n, "k")
            vh = split_heads(lo, biased(value, 2, "v"), n, "v")
    if (past_key is None) != (past_value is None):
        raise ctx.fail("past_key and past_value must be given together")
    past_len = 0
    if past_key is not None and past_value is not None:
        past_len = past_key.type.shape[2]
        kh = (lo.out(1, "Concat", [past_key, kh], axis=2) if lo.wanted(1)
              else lo.op("Concat", [past_key, kh], "present_k", axis=2))
        vh = (lo.out(2, "Concat", [past_value, vh], axis=2) if lo.wanted(2)
              else lo.op("Concat", [past_value, vh], "present_v", axis=2))
    batch, s = qh.type.shape[0], qh.type.shape[2]
    valid = key_valid(lo, key_padding_mask, batch, s, kh.type.shape[2])
    y = sdpa(lo, qh, kh, vh, scale, attention_bias, valid, mask_filter_value,
             past_len if unidirectional else None)
    return [y, kh, vh]
