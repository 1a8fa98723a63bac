"""Converters of onnxruntime's com.microsoft contrib ops that its offline optimiser writes
into shipped models (onnxruntime.transformers.optimizer): fused activations, fused
normalisations, FusedConv / FusedMatMul, and the weight-only quantised MatMulNBits and
DynamicQuantizeMatMul. The attention ones are in contrib_attention.py.

Each is lowered at import into the IR ops it fuses (its default-domain twin where there is
one: Gelu, LayerNormalization, Conv + activation, MatMul), so the quantiser sees the graph an
exporter would have written before the optimiser ran. Weight-only quantised matrices are
dequantised at import to f32 constants: the INT8 quantiser then requantises them per channel
like any weight, and a float compile runs them in f32.
"""

from __future__ import annotations

import numpy as np

from compiler.frontend.context import Ctx
from compiler.frontend.ops.attention import Lowering, gather_cache, joined, rotate
from compiler.frontend.ops.conv import spatial_attrs
from compiler.frontend.ops.norm import layer_normalization
from compiler.frontend.registry import converter
from ir.graph import Value
from ir.types import DType

MS = "com.microsoft"


def _biased(lo: Lowering, x: Value, bias: Value | None, what: str = "biased") -> Value:
    return x if bias is None else lo.op("Add", [x, bias], what)


@converter("Gelu", domain=MS, ir_ops=("Gelu",), note="the exact (erf) GELU")
def ms_gelu(ctx: Ctx, x: Value) -> Value:
    return ctx.op("Gelu", [x], approximate="none")


@converter("FastGelu", domain=MS, ir_ops=("Gelu", "Add"),
           note="Gelu(x + bias, approximate='tanh')")
def fast_gelu(ctx: Ctx, x: Value, bias: Value | None = None) -> Value:
    lo = Lowering(ctx)
    return lo.out(0, "Gelu", [_biased(lo, x, bias)], approximate="tanh")


@converter("BiasGelu", domain=MS, ir_ops=("Gelu", "Add"), note="Gelu(A + B), exact")
def bias_gelu(ctx: Ctx, a: Value, b: Value) -> Value:
    lo = Lowering(ctx)
    return lo.out(0, "Gelu", [_biased(lo, a, b)], approximate="none")


@converter("QuickGelu", domain=MS, ir_ops=("Mul", "Sigmoid", "SiLU"),
           note="x * Sigmoid(alpha * x)")
def quick_gelu(ctx: Ctx, x: Value, *, alpha: float = 1.702) -> Value:
    lo = Lowering(ctx)
    if alpha == 1.0:
        return lo.out(0, "SiLU", [x])
    gate = lo.op("Sigmoid", [lo.op("Mul", [x, lo.scalar(alpha, x, "alpha")], "scaled")], "gate")
    return lo.out(0, "Mul", [x, gate])


@converter("LayerNormalization", domain=MS, ir_ops=("LayerNormalization",),
           note="as the default-domain LayerNormalization")
def ms_layer_normalization(
    ctx: Ctx, x: Value, scale: Value, bias: Value | None = None, *, axis: int = -1,
    epsilon: float = 1e-5, stash_type: int = 1,
) -> list[Value]:
    return layer_normalization(ctx, x, scale, bias, axis=axis, epsilon=epsilon,
                               stash_type=stash_type)


def rms_norm(lo: Lowering, x: Value, scale: Value, axis: int, epsilon: float,
             index: int = 0) -> tuple[Value, Value]:
    """y = x / sqrt(mean(x², axes axis..) + epsilon) * scale (RMS normalisation), as primitive
    ops; returns (y, 1/rms) with y named after the node's output ``index``."""
    rank = x.type.rank
    a = axis % rank if -rank <= axis < rank else None
    if a is None:
        raise lo.ctx.fail(f"axis {axis} is out of range for an input of rank {rank}")
    axes = list(range(a, rank))
    mean = lo.op("ReduceMean", [lo.op("Mul", [x, x], "square")], "mean_square", axes=axes,
                 keepdims=1)
    rms = lo.op("Sqrt", [lo.op("Add", [mean, lo.scalar(epsilon, x, "epsilon")], "var")], "rms")
    inv = lo.op("Reciprocal", [rms], "inv_rms")
    y = lo.out(index, "Mul", [lo.op("Mul", [x, inv], "normed"), scale])
    return y, inv


@converter("SimplifiedLayerNormalization", ir_ops=("Mul", "ReduceMean", "Add", "Sqrt",
                                                   "Reciprocal"),
           note="onnxruntime's RMS normalisation (its own op in the default domain), lowered")
def simplified_layer_normalization(
    ctx: Ctx, x: Value, scale: Value, *, axis: int = -1, epsilon: float = 1e-5,
    stash_type: int = 1,
) -> list[Value]:
    lo = Lowering(ctx)
    y, inv = rms_norm(lo, x, scale, axis, epsilon)
    return [y, inv]


@converter("SimplifiedLayerNormalization", domain=MS, ir_ops=(
    "Mul", "ReduceMean", "Add", "Sqrt", "Reciprocal"), note="RMS normalisation, lowered")
def ms_simplified_layer_normalization(
    ctx: Ctx, x: Value, scale: Value, *, axis: int = -1, epsilon: float = 1e-5,
    stash_type: int = 1,
) -> list[Value]:
    return simplified_layer_normalization(ctx, x, scale, axis=axis, epsilon=epsilon)


def _skip_sum(lo: Lowering, x: Value, skip: Value, bias: Value | None) -> Value:
    """input + skip (+ bias): the fourth output, named after it when the model reads it."""
    if bias is None:
        return (lo.out(3, "Add", [x, skip]) if lo.wanted(3)
                else lo.op("Add", [x, skip], "skip_sum"))
    s = lo.op("Add", [x, skip], "skip_add")
    return lo.out(3, "Add", [s, bias]) if lo.wanted(3) else lo.op("Add", [s, bias], "skip_sum")


@converter("SkipLayerNormalization", domain=MS, ir_ops=("Add", "LayerNormalization"),
           note="LayerNormalization(input + skip + bias) over the last axis")
def skip_layer_normalization(
    ctx: Ctx, x: Value, skip: Value, gamma: Value, beta: Value | None = None,
    bias: Value | None = None, *, epsilon: float = 1e-12,
) -> list[Value]:
    lo = Lowering(ctx)
    total = _skip_sum(lo, x, skip, bias)
    stats = lo.wanted(1) or lo.wanted(2)
    ins = [total, gamma] + ([beta] if beta is not None else [])
    ctx.out_hints = lo.hints[:3] if stats else lo.hints[:1]
    try:
        outs = ctx.ops("LayerNormalization", ins, axis=x.type.rank - 1, epsilon=epsilon,
                       stash=DType.f32.value, stats=stats)
    finally:
        ctx.out_hints = lo.hints
    y = outs[0]
    mean, inv = (outs[1], outs[2]) if stats else (y, y)
    return [y, mean, inv, total]


@converter("SkipSimplifiedLayerNormalization", domain=MS, ir_ops=(
    "Add", "Mul", "ReduceMean", "Sqrt", "Reciprocal"),
           note="RMS normalisation of input + skip + bias, lowered")
def skip_simplified_layer_normalization(
    ctx: Ctx, x: Value, skip: Value, gamma: Value, bias: Value | None = None, *,
    epsilon: float = 1e-12,
) -> list[Value]:
    lo = Lowering(ctx)
    total = _skip_sum(lo, x, skip, bias)
    y, inv = rms_norm(lo, total, gamma, -1, epsilon)
    return [y, y, inv, total]


_ACTIVATIONS = {"Relu": 0, "Tanh": 0, "Sigmoid": 0, "LeakyRelu": 1, "Clip": 2,
                "HardSigmoid": 2}


def fused_activation(lo: Lowering, x: Value, name: str, params: list[float]) -> Value:
    """onnxruntime's fused activation by name, with its activation_params, as the node's
    output."""
    if name not in _ACTIVATIONS:
        raise lo.ctx.fail(f"activation {name!r} is not one of {sorted(_ACTIVATIONS)}")
    if len(params) < _ACTIVATIONS[name]:
        raise lo.ctx.fail(f"activation {name} needs {_ACTIVATIONS[name]} activation_params")
    if name == "LeakyRelu":
        return lo.out(0, "LeakyRelu", [x], alpha=params[0])
    if name == "Clip":
        return lo.out(0, "Clip", [x], min=params[0], max=params[1])
    if name == "HardSigmoid":
        return lo.out(0, "HardSigmoid", [x], alpha=params[0], beta=params[1])
    return lo.out(0, name, [x])


@converter("FusedConv", domain=MS, ir_ops=("Conv", "Add", "Relu", "Tanh", "Sigmoid",
                                           "LeakyRelu", "Clip", "HardSigmoid"),
           note="Conv (+ Z) followed by its activation")
def fused_conv(
    ctx: Ctx, x: Value, w: Value, b: Value | None = None, z: Value | None = None, *,
    activation: str = "", activation_params: list[float] | None = None,
    auto_pad: str = "NOTSET", dilations: list[int] | None = None, group: int = 1,
    kernel_shape: list[int] | None = None, pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> Value:
    lo = Lowering(ctx)
    kernel = list(w.type.shape[2:])
    if kernel_shape and list(kernel_shape) != kernel:
        raise ctx.fail(f"kernel_shape {list(kernel_shape)} disagrees with the weight {kernel}")
    s, d, p = spatial_attrs(ctx, x, kernel, strides, dilations, pads, auto_pad)
    last = not activation and z is None
    attrs = {"strides": s, "pads": p, "dilations": d, "group": group}
    y = lo.out(0, "Conv", [x, w, b], **attrs) if last else lo.op("Conv", [x, w, b], "conv",
                                                                  **attrs)
    if z is not None:
        y = lo.out(0, "Add", [y, z]) if not activation else lo.op("Add", [y, z], "sum")
    if not activation:
        return y
    return fused_activation(lo, y, activation, list(activation_params or []))


@converter("FusedMatMul", domain=MS, ir_ops=("MatMul", "Transpose", "Mul"),
           note="alpha · op(A) @ op(B), op a transpose of the last two axes when asked")
def fused_matmul(
    ctx: Ctx, a: Value, b: Value, *, alpha: float = 1.0, transA: int = 0, transB: int = 0,
    transBatchA: int = 0, transBatchB: int = 0,
) -> Value:
    lo = Lowering(ctx)
    if transBatchA or transBatchB:
        raise ctx.fail("transBatchA/transBatchB are not supported; re-export without the "
                       "onnxruntime optimiser's batch-transposing MatMul fusion")

    def t(v: Value, flag: int, what: str) -> Value:
        if not flag or v.type.rank < 2:
            return v
        perm = list(range(v.type.rank - 2)) + [v.type.rank - 1, v.type.rank - 2]
        return lo.op("Transpose", [v], what, perm=perm)

    ta, tb = t(a, transA, "a_t"), t(b, transB, "b_t")
    if alpha == 1.0:
        return lo.out(0, "MatMul", [ta, tb])
    y = lo.op("MatMul", [ta, tb], "product")
    return lo.out(0, "Mul", [y, lo.scalar(alpha, y, "alpha")])


def unpack_bits(packed: np.ndarray, bits: int) -> np.ndarray:
    """uint8 [..., n] holding 8/bits values per byte, lowest bits first -> [..., n*8/bits]."""
    per = 8 // bits
    shifts = (np.arange(per) * bits).astype(np.uint8)
    vals = (packed[..., None] >> shifts) & np.uint8((1 << bits) - 1)
    return vals.reshape(*packed.shape[:-1], packed.shape[-1] * per)


@converter("MatMulNBits", domain=MS, ir_ops=("MatMul", "Add"),
           note="weights dequantised at import to an f32 constant [K, N]")
def matmul_nbits(
    ctx: Ctx, a: Value, b: Value, scales: Value, zero_points: Value | None = None,
    g_idx: Value | None = None, bias: Value | None = None, *, K: int, N: int, bits: int = 4,
    block_size: int, accuracy_level: int = 0, weight_prepacked: int = 0,
) -> Value:
    lo = Lowering(ctx)
    if bits not in (2, 4, 8):
        raise ctx.fail(f"bits must be 2, 4 or 8, got {bits}")
    if weight_prepacked:
        raise ctx.fail("prepacked weights (weight_prepacked != 0) are an execution provider's "
                       "layout; quantise the model again without prepacking")
    if g_idx is not None:
        raise ctx.fail("g_idx (deprecated act-order groups) is not supported")
    packed = np.asarray(ctx.value_of(b, "B")).astype(np.uint8)
    blocks = -(-K // block_size)
    if packed.shape != (N, blocks, block_size * bits // 8):
        raise ctx.fail(f"B has shape {list(packed.shape)}, expected "
                       f"[{N}, {blocks}, {block_size * bits // 8}] for K={K}, N={N}, "
                       f"block_size={block_size}, bits={bits}")
    q = unpack_bits(packed, bits).astype(np.float32)  # [N, blocks, block_size]
    s = np.asarray(ctx.value_of(scales, "scales"), np.float32).reshape(N, blocks)
    if zero_points is None:
        zp = np.full((N, blocks), 1 << (bits - 1), np.float32)
    else:
        raw = np.asarray(ctx.value_of(zero_points, "zero_points"))
        if raw.dtype == np.uint8:
            zp = unpack_bits(raw.reshape(N, -1), bits)[:, :blocks].astype(np.float32)
        else:
            zp = raw.astype(np.float32).reshape(N, blocks)
    w = ((q - zp[..., None]) * s[..., None]).reshape(N, blocks * block_size)[:, :K]
    weight = lo.const(np.ascontiguousarray(w.T).astype(a.type.dtype.np), "weight")
    if bias is None:
        return lo.out(0, "MatMul", [a, weight])
    return lo.out(0, "Add", [lo.op("MatMul", [a, weight], "product"), bias])


@converter("DynamicQuantizeMatMul", domain=MS, ir_ops=(
    "DynamicQuantizeLinear", "MatMulInteger", "Cast", "Mul", "Add"),
           note="DynamicQuantizeLinear(A), MatMulInteger, rescaled by a_scale·b_scale")
def dynamic_quantize_matmul(
    ctx: Ctx, a: Value, b: Value, b_scale: Value, b_zero_point: Value | None = None,
    bias: Value | None = None,
) -> Value:
    lo = Lowering(ctx)
    ctx.value_of(b, "B")
    aq, a_scale, a_zp = lo.ops("DynamicQuantizeLinear", [a], "a_q")
    acc = lo.op("MatMulInteger", [aq, b, a_zp, b_zero_point], "acc")
    real = lo.op("Cast", [acc], "acc_f", to=a.type.dtype.value)
    scale = lo.op("Mul", [a_scale, b_scale], "scale")
    if bias is None:
        return lo.out(0, "Mul", [real, scale])
    return lo.out(0, "Add", [lo.op("Mul", [real, scale], "product"), bias])


@converter("RotaryEmbedding", domain=MS, ir_ops=("Mul", "Sub", "Add", "Slice", "Concat",
                                                 "Reshape", "Gather"),
           note="lowered like the default-domain RotaryEmbedding")
def ms_rotary_embedding(
    ctx: Ctx, x: Value, position_ids: Value, cos_cache: Value, sin_cache: Value, *,
    interleaved: int = 0, is_packed_batching: int = 0, num_heads: int = 0,
    rotary_embedding_dim: int = 0, scale: float = 1.0,
) -> Value:
    lo = Lowering(ctx)
    if is_packed_batching:
        raise ctx.fail("is_packed_batching (ragged batches) is not supported")
    half = cos_cache.type.shape[-1]
    if x.type.rank == 4:
        s = x.type.shape[2]
        xs = x
    elif x.type.rank == 3:
        b, s, hidden = x.type.shape
        head = hidden // num_heads if num_heads else 2 * half
        if hidden % head:
            raise ctx.fail(f"hidden size {hidden} is not a multiple of the head size {head}")
        xs = lo.op("Transpose", [lo.reshape(x, [b, s, hidden // head, head], "x_split")],
                   "x_heads", perm=[0, 2, 1, 3])
    else:
        raise ctx.fail(f"the input must be 3-D or 4-D, got rank {x.type.rank}")
    if position_ids.type.shape in ((1,), ()):
        # one offset for the whole batch: token t sits at offset + t
        start = lo.reshape(position_ids, [1, 1], "pos_start")
        steps = lo.const(np.arange(s, dtype=position_ids.type.dtype.np).reshape(1, s),
                         "pos_steps")
        position_ids = lo.op("Add", [start, steps], "positions")
    cos = gather_cache(lo, cos_cache, position_ids, "cos")
    sin = gather_cache(lo, sin_cache, position_ids, "sin")
    pb = cos.type.shape[0]
    cos = lo.reshape(cos, [pb, 1, s, half], "cos_4d")
    sin = lo.reshape(sin, [pb, 1, s, half], "sin_4d")
    parts = rotate(lo, xs, cos, sin, rotary_embedding_dim or 2 * half, bool(interleaved))
    if x.type.rank == 4:
        return joined(lo, parts, list(x.type.shape))
    y = lo.op("Concat", parts, "rope", axis=3)
    merged = lo.op("Transpose", [y], "rope_t", perm=[0, 2, 1, 3])
    return lo.out(0, "Reshape", [merged], shape=list(x.type.shape))
