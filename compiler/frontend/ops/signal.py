"""Converters of ONNX signal ops: DFT and STFT (IR ops, ir/ops/signal.py), and the window
generators and MelWeightMatrix, which become constants at import (their inputs decide their
shapes, so they must be known at compile time).

DFT's axis is an attribute before opset 20 (default 1) and an input from then on (default
-2); either way it counts the axes of the stored tensor, whose last axis holds
(real[, imaginary]). dft_length, STFT's frame_step and frame_length must be constants.
"""

from __future__ import annotations

import math

import numpy as np

from compiler.frontend.context import Ctx
from compiler.frontend.ops.quant import ir_dtype
from compiler.frontend.registry import converter
from ir.graph import Value


def _one_int(ctx: Ctx, v: Value, what: str) -> int:
    vals = ctx.ints_of(v, what)
    if len(vals) != 1:
        raise ctx.fail(f"{what} must hold one value, got {vals}")
    return vals[0]


@converter("DFT", note="dft_length and axis must be constant")
def dft(
    ctx: Ctx, x: Value, dft_length: Value | None = None, axis_input: Value | None = None, *,
    axis: int = 1, inverse: int = 0, onesided: int = 0,
) -> Value:
    rank = x.type.rank
    if ctx.opset >= 20:
        axis = -2 if axis_input is None else _one_int(ctx, axis_input, "axis")
    if not -rank <= axis < rank or axis % rank == rank - 1:
        raise ctx.fail(f"axis {axis} must name a signal axis of shape {list(x.type.shape)}; "
                       "the last axis holds (real[, imaginary])")
    axis %= rank
    if dft_length is not None:
        n = _one_int(ctx, dft_length, "dft_length")
    elif inverse and onesided:
        n = 2 * (x.type.shape[axis] - 1)  # the even signal half a spectrum comes from
    else:
        n = x.type.shape[axis]
    if n < 1:
        raise ctx.fail(f"the DFT length must be positive, got {n}")
    return ctx.op("DFT", [x], axis=axis, length=n, inverse=bool(inverse),
                  onesided=bool(onesided))


@converter("STFT", note="frame_step and frame_length must be constant")
def stft(
    ctx: Ctx, signal: Value, frame_step: Value, window: Value | None = None,
    frame_length: Value | None = None, *, onesided: int = 1,
) -> Value:
    step = _one_int(ctx, frame_step, "frame_step")
    if frame_length is not None:
        n = _one_int(ctx, frame_length, "frame_length")
    elif window is not None:
        n = window.type.shape[0] if window.type.rank == 1 else -1
    else:
        n = signal.type.shape[1] if signal.type.rank >= 2 else -1
    if signal.type.rank == 2:  # [batch, length]: a real signal without its storage axis
        raise ctx.fail("the signal must be [batch, length, 1 or 2]; add the last axis with "
                       "Unsqueeze")
    return ctx.op("STFT", [signal, window], frame_step=step, frame_length=n,
                  onesided=bool(onesided))


def _window(
    ctx: Ctx, size: Value, periodic: int, output_datatype: int, terms: tuple[float, ...]
) -> Value:
    """w[n] = sum_j (-1)^j terms[j] cos(2 pi j n / N), N = size (periodic) or size - 1, in
    float64, rounded once to the output type."""
    count = _one_int(ctx, size, "size")
    if count < 0:
        raise ctx.fail(f"size must not be negative, got {count}")
    denom = count if periodic else count - 1
    n = np.arange(count, dtype=np.float64)
    with np.errstate(all="ignore"):  # size 1, symmetric: 0/0 = nan, as ONNX's formula gives
        w = sum((-1) ** j * c * np.cos(2 * math.pi * j * n / denom) for j, c in enumerate(terms))
    dt = ir_dtype(output_datatype, "output_datatype")
    return ctx.const(np.asarray(w, dtype=np.float64).astype(dt.np))


@converter("HannWindow", ir_ops=(), note="a constant: size must be constant")
def hann_window(ctx: Ctx, size: Value, *, periodic: int = 1, output_datatype: int = 1) -> Value:
    return _window(ctx, size, periodic, output_datatype, (0.5, 0.5))


@converter("HammingWindow", ir_ops=(), note="a constant: size must be constant")
def hamming_window(
    ctx: Ctx, size: Value, *, periodic: int = 1, output_datatype: int = 1
) -> Value:
    return _window(ctx, size, periodic, output_datatype, (25 / 46, 21 / 46))


@converter("BlackmanWindow", ir_ops=(), note="a constant: size must be constant")
def blackman_window(
    ctx: Ctx, size: Value, *, periodic: int = 1, output_datatype: int = 1
) -> Value:
    return _window(ctx, size, periodic, output_datatype, (0.42, 0.5, 0.08))


@converter("MelWeightMatrix", ir_ops=(), note="a constant: every input must be constant")
def mel_weight_matrix(
    ctx: Ctx, num_mel_bins: Value, dft_length: Value, sample_rate: Value,
    lower_edge_hertz: Value, upper_edge_hertz: Value, *, output_datatype: int = 1,
) -> Value:
    """Triangles of peak 1 over the linear bins of a [dft_length / 2 + 1]-bin spectrum, one
    per mel bin, their corners num_mel_bins + 2 points equally spaced on the mel scale
    mel(f) = 2595 log10(1 + f / 700) from lower_edge_hertz up, a step being
    (mel(upper) - mel(lower)) / (num_mel_bins + 2) as onnx.reference has it; a corner f in
    hertz falls on bin floor((dft_length + 1) f / sample_rate)."""
    mels, length, rate = (_one_int(ctx, v, w) for v, w in (
        (num_mel_bins, "num_mel_bins"), (dft_length, "dft_length"), (sample_rate, "sample_rate")))
    lo, hi = (float(np.asarray(ctx.value_of(v, w)).reshape(-1)[0]) for v, w in (
        (lower_edge_hertz, "lower_edge_hertz"), (upper_edge_hertz, "upper_edge_hertz")))
    if mels < 1 or length < 1 or rate < 1:
        raise ctx.fail(f"num_mel_bins, dft_length and sample_rate must be positive, got "
                       f"{mels}, {length}, {rate}")
    bins = length // 2 + 1
    mel_lo, mel_hi = (2595.0 * math.log10(1.0 + f / 700.0) for f in (lo, hi))
    points = mel_lo + np.arange(mels + 2) * ((mel_hi - mel_lo) / (mels + 2))
    hertz = 700.0 * (10.0 ** (points / 2595.0) - 1.0)
    corner = np.floor((length + 1) * hertz / rate).astype(np.int64)
    if corner.min() < 0 or max(corner[-2], corner[-1] - 1) >= bins:  # the last index written
        raise ctx.fail(f"the edges {lo} .. {hi} Hz fall outside the spectrum's {bins} bins")
    out = np.zeros((bins, mels), np.float64)
    for i in range(mels):
        left, mid, right = (int(c) for c in corner[i:i + 3])
        j = np.arange(left, mid + 1)
        out[j, i] = (j - left) / (mid - left) if mid > left else 1.0
        j = np.arange(mid, right)
        out[j, i] = (right - j) / (right - mid)
    dt = ir_dtype(output_datatype, "output_datatype")
    return ctx.const(out.astype(dt.np))
