"""Integer arithmetic of quantised tensors — defined once, here, and used by the interpreter,
the quantiser and (as the specification they are tested against) every code generator.

Conventions (this module is their one definition; docs/architecture.md, "Element types" and
"Quantised forms", shows where each is used):

- real = scale · (q − zero_point); weights are int8 symmetric per output channel in
  [−127, 127]; activations are per-tensor affine u8 or i8; biases int32 with scale s_in·s_w.
- Float → integer (QuantizeLinear): q = saturate(rint(x / scale) + zero_point), the division
  in float32 as ONNX does, rint rounding ties to even.
- Requantisation by a real multiplier M > 0 encoded at compile time as (M0, shift), M0 an
  int32 in [2^30, 2^31), so that M ≈ M0 · 2^−n with n = 31 + shift:

      requant(acc) = (acc · M0 + 2^(n−1)) >> n        (64-bit product, arithmetic shift)

  i.e. acc · M rounded half towards +∞. Multipliers below 2^−32 cannot change any int32
  accumulator's result from 0 and are encoded as M0 = 0, shift = 0. Multipliers of 2^30 or
  more are rejected (no sensible quantisation produces them).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ir.types import DType

M0_BITS = 31
MIN_SHIFT = 1 - M0_BITS  # n = 31 + shift >= 1
MAX_SHIFT = 31  # n <= 62 keeps acc·M0 + 2^(n−1) inside int64 for |acc| < 2^31
MIN_SCALE = 2.0**-24  # smallest scale chosen for a tensor: ranges narrower than 2^-24 per
# step are treated as this wide, keeping every requantisation multiplier in range
MAX_SCALE = float(np.finfo(np.float32).max)
BIAS_LIMIT = 2**30  # the largest |int32 bias code| the quantiser makes: the other half of
# the int32 range is left to the sum of products it is added to


@functools.cache
def qrange(dtype: DType, *, narrow: bool = False) -> tuple[int, int]:
    """The integer range of ``dtype``; ``narrow`` drops the most negative value (int8 weights
    use [−127, 127] so that negation never overflows)."""
    info = np.iinfo(dtype.np)
    lo = int(info.min) + (1 if narrow and info.min < 0 else 0)
    return lo, int(info.max)


def quantize_multiplier(m: float) -> tuple[int, int]:
    """Encode a real multiplier as (M0, shift) with M0 in [2^30, 2^31); see the module doc."""
    if not (m > 0.0 and math.isfinite(m)):
        raise ValueError(f"requantisation multiplier must be positive and finite, got {m}")
    mant, exp = math.frexp(m)  # m = mant · 2^exp, mant in [0.5, 1)
    m0 = round(mant * (1 << M0_BITS))
    if m0 == 1 << M0_BITS:  # mantissa rounded up to 1.0
        m0 //= 2
        exp += 1
    shift = -exp
    if shift > MAX_SHIFT:
        return 0, 0
    if shift < MIN_SHIFT:
        raise ValueError(f"requantisation multiplier {m} is too large (must be < 2^30)")
    return int(m0), int(shift)


def quantize_multipliers(real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`quantize_multiplier` over an array (flattened): (M0, shift) as int64 arrays,
    equal element for element to the scalar function, which stays the definition."""
    flat = np.asarray(real, dtype=np.float64).reshape(-1)
    bad = ~((flat > 0.0) & np.isfinite(flat))
    if bad.any():
        quantize_multiplier(float(flat[np.argmax(bad)]))  # raises its ValueError
    mant, exp = np.frexp(flat)
    m0 = np.rint(mant * float(1 << M0_BITS)).astype(np.int64)  # exact scaling, ties to even
    up = m0 == 1 << M0_BITS
    m0 = np.where(up, m0 // 2, m0)
    shift = -(exp.astype(np.int64) + up)
    if (shift < MIN_SHIFT).any():
        quantize_multiplier(float(flat[np.argmax(shift < MIN_SHIFT)]))  # raises
    gone = shift > MAX_SHIFT
    return np.where(gone, 0, m0), np.where(gone, 0, shift)


def multiplier_value(m0: int, shift: int) -> float:
    """The real multiplier that (M0, shift) encodes."""
    return math.ldexp(m0, -(M0_BITS + shift))


def _channel_shape(values: np.ndarray, ndim: int, axis: int | None) -> np.ndarray:
    if axis is None or values.size == 1:
        return values.reshape(())
    shape = [1] * ndim
    shape[axis] = values.size
    return values.reshape(shape)


def requantize_raw(
    acc: np.ndarray, m0: np.ndarray | int, shift: np.ndarray | int, axis: int | None = None
) -> np.ndarray:
    """(acc · M0 + 2^(n−1)) >> n with n = 31 + shift, elementwise, as int64.

    ``m0``/``shift`` are scalars or one per index of ``axis`` (per-channel requantisation).
    """
    a = np.asarray(acc).astype(np.int64)
    m0a = _channel_shape(np.asarray(m0, dtype=np.int64), a.ndim, axis)
    n = _channel_shape(np.asarray(shift, dtype=np.int64) + M0_BITS, a.ndim, axis)
    rounding = np.left_shift(np.int64(1), n - 1)
    out = np.right_shift(a * m0a + rounding, n)
    return np.where(m0a == 0, np.int64(0), out)


def requantize(
    acc: np.ndarray,
    m0: np.ndarray | int,
    shift: np.ndarray | int,
    zero_point: int,
    dtype: DType,
    *,
    clamp: tuple[int, int] | None = None,
    axis: int | None = None,
) -> np.ndarray:
    """An int32 accumulator to the output type: zero_point + requant(acc), clamped to the
    type's range intersected with ``clamp`` (how fused ReLU/ReLU6/Clip are expressed)."""
    lo, hi = qrange(dtype)
    if clamp is not None:
        lo, hi = max(lo, clamp[0]), min(hi, clamp[1])
    y = requantize_raw(acc, m0, shift, axis) + np.int64(zero_point)
    return np.clip(y, lo, hi).astype(dtype.np)


def quantize(
    x: np.ndarray,
    scale: np.ndarray | float,
    zero_point: np.ndarray | int,
    dtype: DType,
    axis: int | None = None,
) -> np.ndarray:
    """ONNX QuantizeLinear: saturate(rint(x / scale) + zero_point), division in float32."""
    x32 = np.asarray(x, dtype=np.float32)
    s = _channel_shape(np.asarray(scale, dtype=np.float32), x32.ndim, axis)
    z = _channel_shape(np.asarray(zero_point, dtype=np.int64), x32.ndim, axis)
    lo, hi = qrange(dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        q = np.rint(x32 / s).astype(np.float64) + z
    q = np.nan_to_num(q, nan=0.0, posinf=hi, neginf=lo)
    return np.clip(q, lo, hi).astype(dtype.np)


def dequantize(
    q: np.ndarray,
    scale: np.ndarray | float,
    zero_point: np.ndarray | int,
    axis: int | None = None,
) -> np.ndarray:
    """ONNX DequantizeLinear: (q − zero_point) · scale in float32."""
    qa = np.asarray(q)
    s = _channel_shape(np.asarray(scale, dtype=np.float32), qa.ndim, axis)
    z = _channel_shape(np.asarray(zero_point, dtype=np.int64), qa.ndim, axis)
    return ((qa.astype(np.int64) - z).astype(np.float32) * s).astype(np.float32)


def choose_qparams(
    lo: float, hi: float, dtype: DType, *, symmetric: bool = False
) -> tuple[float, int]:
    """Scale and zero point that cover [lo, hi] (widened to include 0, so 0.0 is exact).

    Asymmetric: the 256 codes span the range, zero point rounded half to even. Symmetric:
    zero point 0 (signed; narrow range [-127, 127]) or the middle code (unsigned). Scales are
    float32 values in [MIN_SCALE, MAX_SCALE]; a zero-width range (an all-zero tensor) gets
    scale 1.0 and the zero point of any range starting at 0 — never a zero or NaN scale.
    """
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise ValueError(f"a quantisation range needs finite lo <= hi, got [{lo}, {hi}]")
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    qmin, qmax = qrange(dtype, narrow=symmetric)
    if symmetric:
        zp = 0 if qmin < 0 else (qmin + qmax + 1) // 2
        amax = max(-lo, hi)
        return (_f32_scale(amax / min(qmax - zp, zp - qmin)) if amax else 1.0), zp
    if hi == lo:  # both 0 after widening
        return 1.0, qmin
    levels = qmax - qmin
    scale = _f32_scale(hi / levels - lo / levels)  # divided first: hi - lo may overflow
    zp = qmin + round(-lo / scale)
    return scale, int(min(max(zp, qmin), qmax))


def _f32_scale(scale: float) -> float:
    return float(np.float32(min(max(scale, MIN_SCALE), MAX_SCALE)))


def make_lut(
    fn: np.ufunc | object,
    in_scale: float,
    in_zp: int,
    in_dtype: DType,
    out_scale: float,
    out_zp: int,
    out_dtype: DType,
) -> np.ndarray:
    """The 256-entry table of a unary function on 8-bit quantised values, indexed by
    ``q_in − qmin(in_dtype)``: table[i] = quantize(fn(dequantize(q_in)))."""
    qmin, qmax = qrange(in_dtype)
    q = np.arange(qmin, qmax + 1, dtype=np.int64)
    x = dequantize(q, in_scale, in_zp).astype(np.float64)
    y = np.asarray(fn(x), dtype=np.float64)  # type: ignore[operator]
    return quantize(y.astype(np.float32), out_scale, out_zp, out_dtype)


def lookup(q: np.ndarray, table: np.ndarray, in_dtype: DType) -> np.ndarray:
    """Apply a table made by :func:`make_lut`."""
    qmin, _ = qrange(in_dtype)
    return table[np.asarray(q).astype(np.int64) - qmin]


#: how weight codes are chosen (CompileOptions.weight_range): "int8" uses [-127, 127];
#: "paired" too, but in every aligned pair of a row (k even, k + 1 of the flattened
#: reduction axis) the positive codes sum to at most 128 and so do the negative ones, which
#: lets u8 x s8 kernels (vpmaddubsw) multiply exactly; "int7" uses [-63, 63] (onnxruntime's
#: reduce_range), which passes that rule everywhere
WEIGHT_RANGES = ("int8", "paired", "int7")
PAIR_LIMIT = 128


#: "paired": codes per scale tried (amax -> this code); the smallest, 64, needs no pair moved
PAIRED_LEVELS = (127, 120, 113, 106, 99, 92, 85, 78, 71, 64)


def quantize_weights(w: np.ndarray, per_channel: bool = True,
                     min_scales: np.ndarray | None = None,
                     weight_range: str = "int8") -> tuple[np.ndarray, np.ndarray]:
    """int8 symmetric codes and their scales: one per output channel (axis 0) or one for the
    tensor (a 1-element array). Scales are float32 amax / qmax, at least MIN_SCALE and at
    least ``min_scales`` (per channel, see :func:`bias_scale_floor`); the codes are
    :func:`quantize`'s (ties to even) clipped to [-qmax, qmax]. qmax is 127 ("int8"), 63
    ("int7"), or for "paired" the one of PAIRED_LEVELS that gives each channel (or the
    tensor) the least squared error once :func:`pair_bounded` has brought its pairs within
    the rule: a coarser scale where many large weights share pairs, 127 where few do."""
    if weight_range not in WEIGHT_RANGES:
        raise ValueError(f"weight range {weight_range!r}: expected one of {WEIGHT_RANGES}")
    wf = np.asarray(w, dtype=np.float32)
    floor = np.float64(MIN_SCALE) if min_scales is None else \
        np.maximum(np.asarray(min_scales, dtype=np.float64), MIN_SCALE)
    channels = per_channel and wf.ndim >= 1 and wf.shape[0] > 1
    rows = wf.reshape(wf.shape[0] if wf.ndim else 1, -1)
    if channels:
        amax = np.abs(rows).max(axis=1)
    else:
        amax = np.array([np.abs(wf).max(initial=0.0)])
        floor = np.float64(np.max(floor))

    def scales_for(qmax: int) -> np.ndarray:
        s = np.maximum(amax / qmax, floor).astype(np.float32)
        return np.where(s < floor, np.nextafter(s, np.float32(np.inf)), s)

    def codes_for(scales: np.ndarray, qmax: int) -> np.ndarray:
        q = quantize(wf, scales, np.zeros_like(scales, dtype=np.int64), DType.i8, axis=0) \
            if channels else quantize(wf, scales[0], 0, DType.i8)
        return np.clip(q, -qmax, qmax).astype(np.int8)

    if weight_range != "paired":
        qmax = 63 if weight_range == "int7" else 127
        scales = scales_for(qmax)
        return codes_for(scales, qmax), scales
    if wf.size == 0:
        return codes_for(scales_for(127), 127), scales_for(127)
    rows32 = rows.astype(np.float32)
    best_codes = best_scales = best_err = None
    for level in PAIRED_LEVELS:
        scales = scales_for(level)
        per_row = np.broadcast_to(scales, (rows.shape[0],)).reshape(-1, 1)
        codes, err = _paired_codes(rows32, per_row)
        if not channels:
            err = np.full_like(err, err.sum())
        if best_codes is None or best_scales is None or best_err is None:
            best_codes, best_scales, best_err = codes, scales.copy(), err
            continue
        take = err < best_err
        best_codes[take] = codes[take]
        best_err[take] = err[take]
        if channels:
            best_scales[take] = scales[take]
        elif take.any():
            best_scales[:] = scales
    assert best_codes is not None and best_scales is not None
    return best_codes.reshape(wf.shape).astype(np.int8), best_scales


def _paired_codes(rows: np.ndarray, scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codes within the pair rule, squared error per row) of float32 ``rows`` [R, K] at
    ``scales`` [R, 1]: :func:`quantize`'s codes (float32 division, ties to even) clipped to
    127, then :func:`pair_bounded`."""
    exact = rows / scales
    codes = np.clip(np.rint(exact), -127, 127)
    codes = pair_bounded(codes, exact)
    diff = codes - exact
    err = np.einsum("ij,ij->i", diff, diff, dtype=np.float64) * \
        scales.reshape(-1).astype(np.float64) ** 2
    return codes, err


def pairs_fit(codes: np.ndarray) -> bool:
    """Whether int8 codes [rows, K] (values in [-128, 127]) keep the pair rule: no aligned
    pair (k even, k + 1) sums past PAIR_LIMIT in magnitude. Within int8, that is the same as
    the positive parts of a pair summing to at most 128 and the negative parts too (opposite
    signs sum to at most 128 in magnitude), so 255 * (a + b) fits int16 for any u8 input."""
    q = np.asarray(codes, dtype=np.int64).reshape(np.shape(codes)[0], -1)
    if q.shape[1] % 2:
        q = np.pad(q, ((0, 0), (0, 1)))
    return bool(q.size == 0 or np.abs(q[:, 0::2] + q[:, 1::2]).max() <= PAIR_LIMIT)


def pair_bounded(codes: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """Codes [rows, K] (integer-valued, within [-127, 127]; int8 or float) with every aligned
    pair (k even, k + 1) whose same-sign magnitudes sum to more than PAIR_LIMIT moved onto
    that limit: the pair becomes the integer point of a + b = 128 nearest (a rounding of the
    projection) to the unrounded codes ``exact``, each of a, b in [1, 127] with its sign
    kept. Other pairs are unchanged; the result has the codes' dtype. (Opposite signs never
    pass the limit: their sum is at most 127 in magnitude, so |a + b| > 128 finds them all.)"""
    out = np.array(codes, copy=True)
    k = out.shape[1]
    even = k - k % 2
    if even == 0:
        return out
    a, b = out[:, 0:even:2], out[:, 1:even:2]
    total = a.astype(np.int32) + b.astype(np.int32)
    r, c = np.nonzero(np.abs(total) > PAIR_LIMIT)
    if r.size:
        sign = np.sign(total[r, c]).astype(np.float64)
        xa = sign * exact[r, 2 * c].astype(np.float64)
        xb = sign * exact[r, 2 * c + 1].astype(np.float64)
        na = np.clip(np.rint(xa - (xa + xb - PAIR_LIMIT) / 2), PAIR_LIMIT - 127, 127)
        a[r, c] = sign * na
        b[r, c] = sign * (PAIR_LIMIT - na)
    return out


def bias_scale_floor(b: np.ndarray, s_x: float) -> np.ndarray:
    """The smallest weight scale per channel at which bias ``b`` (at scale s_x · s_w) takes at
    most BIAS_LIMIT steps. A channel whose weights are all (nearly) zero, such as a dead
    filter after BatchNorm folding, would get the smallest weight scale, and its bias would
    need far more than 2^31 steps; its weights are exact at any scale, so raising the scale
    costs nothing there, and for live weights it costs precision only where the bias
    outweighs 2^30 input steps times the weight."""
    return np.abs(np.asarray(b, dtype=np.float64)) / (float(s_x) * BIAS_LIMIT)


def quantize_bias(b: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """int32 bias codes at ``scales`` (s_x · s_w[c], one per entry or one for all): the
    division and ties-to-even rounding in float64, saturated to int32."""
    q = np.rint(np.asarray(b, dtype=np.float64) / np.asarray(scales, dtype=np.float64))
    lo, hi = qrange(DType.i32)
    return np.clip(q, lo, hi).astype(np.int32)
