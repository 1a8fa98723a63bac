"""Converters of ONNX's attention family: Attention (opsets 23-25), RotaryEmbedding (23) and
SwiGLU, lowered at import into the IR's existing ops.

Attention is a composite of ops the IR already has and the quantiser already knows: the
Q·Kᵀ and P·V products are MatMuls (QMatMul in INT8, like any product of two activations),
Softmax is a float island, heads are split and merged with Reshape/Transpose (on codes).
So no Attention IR op exists: every existing C emitter and quantised form applies, and a
new one would only duplicate MatMul and Softmax. The lowering follows the ONNX function body:

    Qh, Kh, Vh = heads(Q, K, V)            3-D inputs: [B, S, H*D] -> [B, H, S, D]
    Kh, Vh     = Concat(past, Kh/Vh)        the present_key / present_value outputs
    s          = (Qh*√scale) @ (Kh*√scale)ᵀ   GQA: each KV head repeated for its query heads
    s          = softcap·tanh(s/softcap)      softcap > 0
    s          = Where(allowed, s + mask, -inf)
    P          = Softmax(s), fully-masked rows (the whole bias -inf) set to 0
    Y          = merge(P @ Vh)

``allowed`` joins the boolean mask, the causal frontier (j <= i + offset), the sliding window
and the padding of ``nonpad_kv_seqlen``; the parts known at compile time are one constant
(offset = the past length, or nonpad_kv_seqlen - S per batch when that is an input). A
disallowed score is selected to -inf rather than added, so a quantised graph never sees -inf
in an integer tensor: the Where and the Softmax after it form the float island.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx

from compiler.frontend.context import Ctx
from compiler.frontend.registry import converter
from ir.graph import Value
from ir.types import DType


class Lowering:
    """Emits the IR ops of one ONNX node, naming intermediates after the node's first output
    (``y_scores``, ``y_probs``) and the results after the node's outputs."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.hints = list(ctx.out_hints)
        self.prefix = next((h for h in self.hints if h), ctx.node_name or "attn")

    def op(self, op: str, ins: list[Value | None], what: str, **attrs: Any) -> Value:
        return self.ops(op, ins, what, **attrs)[0]

    def ops(self, op: str, ins: list[Value | None], what: str, **attrs: Any) -> list[Value]:
        ctx = self.ctx
        ctx.out_hints = [f"{self.prefix}_{what}"]
        try:
            return ctx.ops(op, ins, **attrs)
        finally:
            ctx.out_hints = self.hints

    def out(self, index: int, op: str, ins: list[Value | None], **attrs: Any) -> Value:
        """The node's output ``index``, made by ``op``."""
        ctx = self.ctx
        ctx.out_hints = [self.hints[index]] if index < len(self.hints) else []
        try:
            return ctx.op(op, ins, **attrs)
        finally:
            ctx.out_hints = self.hints

    def const(self, array: Any, what: str) -> Value:
        return self.ctx.const(np.asarray(array), f"{self.prefix}_{what}")

    def scalar(self, value: float, like: Value, what: str) -> Value:
        return self.const(np.array(value, dtype=like.type.dtype.np), what)

    def wanted(self, index: int) -> bool:
        return index < len(self.hints) and bool(self.hints[index])

    def reshape(self, x: Value, shape: list[int], what: str) -> Value:
        if list(x.type.shape) == list(shape):
            return x
        return self.op("Reshape", [x], what, shape=[int(d) for d in shape])

    def slice_last(self, x: Value, start: int, end: int, step: int, what: str) -> Value:
        rank = x.type.rank
        shape = x.type.shape
        return self.op("Slice", [x], what, starts=[0] * (rank - 1) + [start],
                       ends=list(shape[:-1]) + [end], steps=[1] * (rank - 1) + [step])


def split_heads(lo: Lowering, x: Value, heads: int, what: str) -> Value:
    """[B, S, H*D] -> [B, H, S, D]."""
    b, s, hidden = x.type.shape
    if heads <= 0 or hidden % heads:
        raise lo.ctx.fail(f"{what}: hidden size {hidden} is not a multiple of {heads} heads")
    y = lo.reshape(x, [b, s, heads, hidden // heads], f"{what}_split")
    return lo.op("Transpose", [y], f"{what}_heads", perm=[0, 2, 1, 3])


def repeat_heads(lo: Lowering, x: Value, times: int, what: str) -> Value:
    """[B, Hkv, T, D] -> [B, Hkv*times, T, D], each head repeated ``times`` in a row."""
    if times == 1:
        return x
    b, h, t, d = x.type.shape
    y = lo.reshape(x, [b, h, 1, t, d], f"{what}_5d")
    y = lo.op("Expand", [y], f"{what}_rep", shape=[b, h, times, t, d])
    return lo.reshape(y, [b, h * times, t, d], f"{what}_gqa")


def _window(q: int, t: int, offset: np.ndarray, causal: bool, left: int,
            right: int) -> np.ndarray | None:
    """Keys each query may see by the causal and window rules, for a constant ``offset``
    (shape () or [B]): bool [S, T] or [B, 1, S, T]; None when every key is allowed."""
    if not causal and left < 0 and right < 0:
        return None
    off = offset.reshape(-1, 1, 1, 1) if offset.ndim else offset
    i = np.arange(q).reshape(q, 1)
    j = np.arange(t).reshape(1, t)
    diff = i + off - j  # how far key j lies behind the query's absolute position
    ok = np.ones(np.shape(diff), bool)
    if causal:
        ok &= diff >= 0
    if left >= 0:
        ok &= diff <= left
    if right >= 0:
        ok &= -diff <= right
    return ok


def _runtime_window(lo: Lowering, nonpad: Value, q: int, t: int, causal: bool, left: int,
                    right: int) -> Value | None:
    """The causal/window rules and the padding of an input ``nonpad_kv_seqlen`` [B], whose
    offset is nonpad - S per batch: bool [B, 1, S, T], built from constant thresholds."""
    b = nonpad.type.shape[0]
    n = lo.reshape(lo.op("Cast", [nonpad], "nonpad_i64", to="i64")
                   if nonpad.type.dtype is not DType.i64 else nonpad, [b, 1, 1, 1], "nonpad_4d")
    i = np.arange(q).reshape(1, 1, q, 1)
    j = np.arange(t).reshape(1, 1, 1, t)
    parts: list[Value] = [lo.op("Less", [lo.const(j.astype(np.int64), "key_index"), n],
                                "padding")]
    # with d = i - j + nonpad - S: causal d >= 0, left d <= left, right -d <= right
    if causal:
        parts.append(lo.op("LessOrEqual", [lo.const((j - i + q).astype(np.int64), "causal_at"),
                                           n], "causal"))
    if left >= 0:
        parts.append(lo.op("LessOrEqual", [n, lo.const((j - i + q + left).astype(np.int64),
                                                      "left_at")], "left"))
    if right >= 0:
        parts.append(lo.op("LessOrEqual", [lo.const((j - i + q - right).astype(np.int64),
                                                    "right_at"), n], "right"))
    out = parts[0]
    for k, p in enumerate(parts[1:]):
        out = lo.op("And", [out, p], f"allowed{k}")
    return out


def _and(lo: Lowering, a: Value | None, b: Value | None, what: str) -> Value | None:
    if a is None or b is None:
        return a if b is None else b
    return lo.op("And", [a, b], what)


def _pad_mask(lo: Lowering, mask: Value, t: int) -> tuple[Value, Value | None]:
    """A mask whose last dim is shorter than the T keys, padded to T: a bool mask with False,
    a float one with 0 plus the constant 'allowed' of the unpadded keys (-inf padding)."""
    shape = list(mask.type.shape)
    pad = t - shape[-1]
    if pad < 0:
        raise lo.ctx.fail(f"attn_mask has {shape[-1]} keys, more than the {t} of K")
    if pad == 0:
        return mask, None
    filler = np.zeros(shape[:-1] + [pad], mask.type.dtype.np)
    padded = lo.op("Concat", [mask, lo.const(filler, "mask_pad")], "mask_padded",
                   axis=len(shape) - 1)
    if mask.type.dtype is DType.bool:
        return padded, None
    return padded, lo.const(np.arange(t) < shape[-1], "mask_keys")


def _all_masked(lo: Lowering, allowed: Value | None, mask: Value | None,
                scores: Value) -> Value | None:
    """Rows whose every key is disallowed (bias all -inf): bool [..., S, 1], or None when no
    row can be (a constant check)."""
    if mask is None:
        if allowed is None:
            return None
        if allowed.is_const:
            dead = ~np.asarray(allowed.data).any(axis=-1, keepdims=True)
            return lo.const(dead, "dead_rows") if dead.any() else None
        rank = allowed.type.rank
        lit = lo.op("Cast", [allowed], "allowed_f", to=DType.f32.value)
        best = lo.op("ReduceMax", [lit], "allowed_any", axes=[rank - 1], keepdims=1)
        return lo.op("Equal", [best, lo.const(np.float32(0), "zero")], "dead_rows")
    ninf = lo.scalar(-np.inf, scores, "neg_inf")
    bias = mask if allowed is None else lo.op("Where", [allowed, mask, ninf], "bias")
    rank = bias.type.rank
    best = lo.op("ReduceMax", [bias], "bias_max", axes=[rank - 1], keepdims=1)
    return lo.op("Equal", [best, ninf], "dead_rows")


@converter("Attention", ir_ops=(
    "MatMul", "Softmax", "Mul", "Div", "Tanh", "Add", "Where", "Transpose", "Reshape", "Expand",
    "Concat", "Cast", "Less", "LessOrEqual", "And", "ReduceMax", "Equal"),
    note="lowered to MatMul, Softmax and elementwise ops (3-D/4-D, GQA, masks, causal, "
         "window, softcap, past/present, qk_matmul_output, nonpad_kv_seqlen)")
def attention(
    ctx: Ctx, q: Value, k: Value, v: Value, attn_mask: Value | None = None,
    past_key: Value | None = None, past_value: Value | None = None,
    nonpad_kv_seqlen: Value | None = None, *, is_causal: int = 0, kv_num_heads: int = 0,
    q_num_heads: int = 0, qk_matmul_output_mode: int = 0, scale: float | None = None,
    softcap: float = 0.0, softmax_precision: int | None = None, left_window_size: int = -1,
    right_window_size: int = -1,
) -> list[Value]:
    lo = Lowering(ctx)
    rank = q.type.rank
    if not (rank == k.type.rank == v.type.rank) or rank not in (3, 4):
        raise ctx.fail("Q, K and V must all be 3-D or all 4-D")
    if (past_key is None) != (past_value is None):
        raise ctx.fail("past_key and past_value must be given together")
    if nonpad_kv_seqlen is not None and past_key is not None:
        raise ctx.fail("nonpad_kv_seqlen cannot be combined with past_key/past_value")
    if qk_matmul_output_mode not in (0, 1, 2, 3):
        raise ctx.fail(f"qk_matmul_output_mode {qk_matmul_output_mode} is not 0, 1, 2 or 3")
    if rank == 3:
        if not q_num_heads or not kv_num_heads:
            raise ctx.fail("3-D inputs need the q_num_heads and kv_num_heads attributes")
        qh = split_heads(lo, q, q_num_heads, "q")
        kh = split_heads(lo, k, kv_num_heads, "k")
        vh = split_heads(lo, v, kv_num_heads, "v")
    else:
        qh, kh, vh = q, k, v
    _, hq, sq, dq = qh.type.shape
    hkv = kh.type.shape[1]
    if vh.type.shape[1] != hkv or hq % hkv:
        raise ctx.fail(f"{hq} query heads cannot share {hkv} key and {vh.type.shape[1]} "
                       "value heads (GQA needs a multiple)")
    past_len = 0
    if past_key is not None and past_value is not None:
        past_len = past_key.type.shape[2]
        kh = (lo.out(1, "Concat", [past_key, kh], axis=2) if lo.wanted(1)
              else lo.op("Concat", [past_key, kh], "present_key", axis=2))
        vh = (lo.out(2, "Concat", [past_value, vh], axis=2) if lo.wanted(2)
              else lo.op("Concat", [past_value, vh], "present_value", axis=2))
    t = kh.type.shape[2]
    factor = math.sqrt(1.0 / math.sqrt(dq) if scale is None else scale)
    root = lo.scalar(factor, qh, "scale_sqrt")
    ks = repeat_heads(lo, kh, hq // hkv, "k")
    kt = lo.op("Transpose", [lo.op("Mul", [ks, root], "k_scaled")], "k_t", perm=[0, 1, 3, 2])
    raw = lo.op("MatMul", [lo.op("Mul", [qh, root], "q_scaled"), kt], "scores")
    capped = raw
    if softcap > 0:
        cap = lo.scalar(softcap, raw, "softcap")
        capped = lo.op("Mul", [lo.op("Tanh", [lo.op("Div", [raw, cap], "capped_in")],
                                     "capped_tanh"), cap], "capped")

    mask = allowed = None
    if attn_mask is not None:
        mask, allowed = _pad_mask(lo, attn_mask, t)
        if mask.type.dtype is DType.bool:
            allowed, mask = _and(lo, mask, allowed, "allowed_mask"), None
        elif mask.is_const:
            # a constant float mask: its -inf entries join the select, its finite rest (if
            # any) is added, so no quantised tensor ever holds -inf
            data = np.asarray(mask.data)
            keep = ~np.isneginf(data)
            if not keep.all():
                allowed = _and(lo, lo.const(keep, "mask_allowed"), allowed, "allowed_mask")
                data = np.where(keep, data, 0).astype(data.dtype)
                mask = lo.const(data, "mask_finite")
            if not data.any():
                mask = None
    if nonpad_kv_seqlen is not None and not nonpad_kv_seqlen.is_const:
        rule = _runtime_window(lo, nonpad_kv_seqlen, sq, t, bool(is_causal), left_window_size,
                               right_window_size)
    else:
        off = (np.asarray(nonpad_kv_seqlen.data).astype(np.int64) - sq
               if nonpad_kv_seqlen is not None else np.array(past_len))
        ok = _window(sq, t, off, bool(is_causal), left_window_size, right_window_size)
        if nonpad_kv_seqlen is not None:
            pad = np.arange(t) < np.asarray(nonpad_kv_seqlen.data).reshape(-1, 1, 1, 1)
            ok = pad if ok is None else ok & pad
        rule = None if ok is None else lo.const(ok, "allowed_rule")
    allowed = _and(lo, allowed, rule, "allowed")
    biased = capped if mask is None else lo.op("Add", [capped, mask], "biased")
    if allowed is not None:
        biased = lo.op("Where", [allowed, biased, lo.scalar(-np.inf, raw, "neg_inf")],
                       "masked")
    dead = _all_masked(lo, allowed, mask, raw)

    probs_in = biased
    precise = None
    if softmax_precision is not None:
        try:
            precise = DType.from_numpy(onnx.helper.tensor_dtype_to_np_dtype(softmax_precision))
        except (KeyError, TypeError, ValueError):
            raise ctx.fail(f"softmax_precision {softmax_precision} is not a float type qnnc "
                           "supports") from None
        if precise is biased.type.dtype:
            precise = None
        else:
            probs_in = lo.op("Cast", [biased], "scores_cast", to=precise.value)
    probs = lo.op("Softmax", [probs_in], "probs", axis=3)
    if dead is not None:
        probs = lo.op("Where", [dead, lo.scalar(0.0, probs, "zero"), probs], "probs_live")
    if precise is not None:
        probs = lo.op("Cast", [probs], "probs_cast", to=qh.type.dtype.value)

    vs = repeat_heads(lo, vh, hq // hkv, "v")
    outs: list[Value] = []
    if rank == 3:
        ctxv = lo.op("MatMul", [probs, vs], "context")
        merged = lo.op("Transpose", [ctxv], "context_t", perm=[0, 2, 1, 3])
        b, s, h, d = merged.type.shape
        outs.append(lo.out(0, "Reshape", [merged], shape=[b, s, h * d]))
    else:
        outs.append(lo.out(0, "MatMul", [probs, vs]))
    outs += [kh, vh]  # present_key / present_value: K and V with the past, [B, Hkv, T, D]
    if lo.wanted(3):
        outs.append({0: raw, 1: capped, 2: biased, 3: probs}[qk_matmul_output_mode])
    return outs


def rotate(lo: Lowering, x: Value, cos: Value, sin: Value, rot_dim: int,
           interleaved: bool) -> list[Value]:
    """RoPE on the last axis of ``x`` ([..., D]) by cos/sin broadcasting to [..., rot_dim/2]:
    (x1, x2) -> (cos·x1 - sin·x2, sin·x1 + cos·x2), the pairs being the two halves of the
    first ``rot_dim`` features or (interleaved) the even and odd ones; the rest pass.
    Returns the pieces the result concatenates along the last axis."""
    d = x.type.shape[-1]
    half = rot_dim // 2
    if rot_dim % 2 or not 0 < rot_dim <= d:
        raise lo.ctx.fail(f"rotary_embedding_dim {rot_dim} must be even and at most {d}")
    if cos.type.shape[-1] != half or sin.type.shape[-1] != half:
        raise lo.ctx.fail(f"cos/sin caches must have {half} (rotary dim / 2) values per "
                          f"position, got {cos.type.shape[-1]} and {sin.type.shape[-1]}")
    if interleaved:
        x1 = lo.slice_last(x, 0, rot_dim, 2, "x_even")
        x2 = lo.slice_last(x, 1, rot_dim, 2, "x_odd")
    else:
        x1 = lo.slice_last(x, 0, half, 1, "x_lo")
        x2 = lo.slice_last(x, half, rot_dim, 1, "x_hi")
    real = lo.op("Sub", [lo.op("Mul", [cos, x1], "cos_x1"), lo.op("Mul", [sin, x2], "sin_x2")],
                 "real")
    imag = lo.op("Add", [lo.op("Mul", [sin, x1], "sin_x1"), lo.op("Mul", [cos, x2], "cos_x2")],
                 "imag")
    if interleaved:
        shape = list(real.type.shape)
        pairs = lo.op("Concat", [lo.reshape(real, shape + [1], "real_1"),
                                 lo.reshape(imag, shape + [1], "imag_1")], "pairs",
                      axis=x.type.rank)
        parts = [lo.reshape(pairs, shape[:-1] + [rot_dim], "rotated")]
    else:
        parts = [real, imag]
    if rot_dim < d:
        parts.append(lo.slice_last(x, rot_dim, d, 1, "x_pass"))
    return parts


def gather_cache(lo: Lowering, cache: Value, positions: Value | None, what: str) -> Value:
    """cache[position_ids] ([B, S, R/2]), or the cache itself when it is already per token."""
    if positions is None:
        return cache
    return lo.op("Gather", [cache, positions], what, axis=0)


@converter("RotaryEmbedding", ir_ops=("Mul", "Sub", "Add", "Slice", "Concat", "Reshape",
                                      "Gather"),
           note="lowered to Slice, Mul, Add/Sub and Concat")
def rotary_embedding(
    ctx: Ctx, x: Value, cos_cache: Value, sin_cache: Value, position_ids: Value | None = None,
    *, interleaved: int = 0, num_heads: int = 0, rotary_embedding_dim: int = 0,
) -> Value:
    lo = Lowering(ctx)
    cos = gather_cache(lo, cos_cache, position_ids, "cos")
    sin = gather_cache(lo, sin_cache, position_ids, "sin")
    if cos.type.rank != 3 or sin.type.rank != 3:
        raise ctx.fail("cos/sin caches must be [max_position, R/2] with position_ids, "
                       "else [B, S, R/2]")
    b, s, half = cos.type.shape
    if x.type.rank == 4:
        # [B, H, S, D]: the caches broadcast over heads as [B, 1, S, R/2]
        xs = x
        cos = lo.reshape(cos, [b, 1, s, half], "cos_4d")
        sin = lo.reshape(sin, [b, 1, s, half], "sin_4d")
    elif x.type.rank == 3:
        hidden = x.type.shape[2]
        if not num_heads or hidden % num_heads:
            raise ctx.fail(f"a 3-D input needs num_heads dividing its hidden size {hidden}")
        xs = lo.reshape(x, [x.type.shape[0], x.type.shape[1], num_heads, hidden // num_heads],
                        "x_heads")
        cos = lo.reshape(cos, [b, s, 1, half], "cos_4d")
        sin = lo.reshape(sin, [b, s, 1, half], "sin_4d")
    else:
        raise ctx.fail(f"the input must be 3-D or 4-D, got rank {x.type.rank}")
    rot = rotary_embedding_dim or xs.type.shape[-1]
    parts = rotate(lo, xs, cos, sin, rot, bool(interleaved))
    return joined(lo, parts, list(x.type.shape))


def joined(lo: Lowering, parts: list[Value], shape: list[int]) -> Value:
    """The node's output: ``parts`` concatenated on their last axis, viewed as ``shape``."""
    last = parts[0].type.rank - 1
    full = list(parts[0].type.shape[:-1]) + [sum(p.type.shape[-1] for p in parts)]
    if full == shape:
        return lo.out(0, "Concat", parts, axis=last)
    return lo.out(0, "Reshape", [lo.op("Concat", parts, "rope", axis=last)], shape=shape)


@converter("SwiGLU", ir_ops=("Mul", "Sigmoid", "SiLU"),
           note="lowered: Mul(A, Sigmoid(alpha*A)) * B (SiLU when alpha is 1)")
def swiglu(ctx: Ctx, a: Value, b: Value, *, alpha: float = 1.0) -> Value:
    lo = Lowering(ctx)
    if a.type.shape != b.type.shape:
        raise ctx.fail(f"A {list(a.type.shape)} and B {list(b.type.shape)} must have one shape")
    if alpha == 1.0:
        gate = lo.op("SiLU", [a], "gate")
    else:
        scaled = lo.op("Mul", [a, lo.scalar(alpha, a, "alpha")], "gate_in")
        gate = lo.op("Mul", [a, lo.op("Sigmoid", [scaled], "gate_sigmoid")], "gate")
    return lo.out(0, "Mul", [gate, b])
