"""Signal processing: the discrete Fourier transform (DFT) and its short-time form (STFT).

Complex values are stored as ONNX does, in a last axis of two (real, imaginary); a real
signal may have a last axis of one. The references build the twiddle factors
e^(-2 pi i t / N) from t = (k * n) mod N, the same table the C emitters precompute, and
accumulate in complex128 before rounding once to the input's type.

ONNX's window generators (HannWindow, HammingWindow, BlackmanWindow) and MelWeightMatrix
never reach the IR: their inputs decide their shapes, so they are constants at import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ir.ops.common import reject_quant, require_inputs
from ir.ops.registry import Attr, Attrs, register, require
from ir.types import TensorType

if TYPE_CHECKING:
    from ir.graph import Node


def twiddles(n: int) -> np.ndarray:
    """e^(-2 pi i t / n) for t in [0, n), in complex128."""
    return np.exp(-2j * np.pi * np.arange(n) / n)


def dft_matrix(n: int, bins: int, inverse: bool = False) -> np.ndarray:
    """W[k, m] = e^(-+2 pi i k m / n) for k < bins, m < n (+ when inverse)."""
    t = (np.arange(bins)[:, None] * np.arange(n)[None, :]) % n
    w = twiddles(n)[t]
    return np.conj(w) if inverse else w


def as_complex(x: np.ndarray) -> np.ndarray:
    """(..., 1 or 2) real storage -> complex128 (...)."""
    z = x[..., 0].astype(np.complex128)
    if x.shape[-1] == 2:
        z = z + 1j * x[..., 1].astype(np.float64)
    return z


def _fit(z: np.ndarray, n: int) -> np.ndarray:
    """Zero-pad or truncate the last axis to ``n``."""
    if z.shape[-1] >= n:
        return z[..., :n]
    pad = [(0, 0)] * (z.ndim - 1) + [(0, n - z.shape[-1])]
    return np.pad(z, pad)


def _complex_storage(z: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return np.stack([z.real, z.imag], axis=-1).astype(dtype)


def _sum_flops(node: Node) -> tuple[int, int]:
    """A direct sum: 8 FLOPs (a complex multiply-add) per input term of each output value
    (no MACs: cost.py counts those for the multiply-accumulate layers only)."""
    out = node.outputs[0].type
    if node.op == "STFT":
        terms = node.attrs["frame_length"]
    else:
        terms = min(node.x.type.shape[node.attrs["axis"]], node.attrs["length"])
    return 0, 8 * terms * (out.size // out.shape[-1])


@register
class DFT:
    """Along ``axis`` (an axis of the signal, never the last storage axis), with N = length:
    forward  y[k] = sum_{n<N} x[n] e^(-2 pi i k n / N), k < N (k <= N/2 if onesided);
    inverse  x[n] = 1/N sum_{k<N} y[k] e^(2 pi i k n / N);
    inverse and onesided (a real signal from half a spectrum):
             x[n] = 1/N sum_{k<=N/2} c_k (Re y[k] cos(2 pi k n / N) - Im y[k] sin(2 pi k n / N)),
             c_k = 1 for k = 0 and k = N/2, else 2; the result has a last axis of one.
    The input axis is zero-padded or truncated to N (to N/2 + 1 bins when inverse and
    onesided)."""

    operands = ("x",)
    flops = _sum_flops
    attrs = {
        "axis": Attr("int", doc="the signal axis, non-negative, not the last (complex) axis"),
        "length": Attr("int", doc="N, the DFT length"),
        "inverse": Attr("bool", False, "the inverse transform"),
        "onesided": Attr("bool", False, "forward: keep bins k <= N/2; inverse: x is real and "
                         "y holds those bins only"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("DFT", ins, 1)
        reject_quant("DFT", [x])
        require(x.dtype.is_float, f"DFT: needs a float input, got {x.dtype.value}")
        require(x.rank >= 2 and x.shape[-1] in (1, 2),
                f"DFT: the last axis holds (real[, imaginary]): size 1 or 2, got {list(x.shape)}")
        require(0 <= a["axis"] < x.rank - 1, f"DFT: axis {a['axis']} is not a signal axis of "
                f"{list(x.shape)}")
        n = a["length"]
        require(n >= 1, f"DFT: length must be positive, got {n}")
        shape = list(x.shape)
        if a["inverse"] and a["onesided"]:
            shape[a["axis"]], shape[-1] = n, 1
        else:
            shape[a["axis"]], shape[-1] = (n // 2 + 1 if a["onesided"] else n), 2
        return [TensorType(tuple(shape), x.dtype)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        n, ax = a["length"], a["axis"]
        z = np.moveaxis(as_complex(x), ax, -1)
        if a["inverse"] and a["onesided"]:
            bins = n // 2 + 1
            y = _fit(z, bins)
            k = np.arange(bins)
            c = np.where((k == 0) | (2 * k == n), 1.0, 2.0)
            w = dft_matrix(n, bins, inverse=True)  # [k, m]
            real = (y.real * c) @ w.real - (y.imag * c) @ w.imag
            out = np.moveaxis(real / n, -1, ax)[..., None]
            return [out.astype(x.dtype)]
        bins = n // 2 + 1 if a["onesided"] else n
        w = dft_matrix(n, bins, a["inverse"])
        y = _fit(z, n) @ w.T
        if a["inverse"]:
            y = y / n
        return [_complex_storage(np.moveaxis(y, -1, ax), x.dtype)]


@register
class STFT:
    """For each batch b, frame f < F = (T - L) / step + 1 and bin k < L (k <= L/2 if onesided),
    with L = frame_length and w the window (ones when absent):
    y[b, f, k] = sum_{n<L} x[b, f * step + n] w[n] e^(-2 pi i k n / L).
    x is [batch, T, 1 or 2], y is [batch, F, bins, 2]."""

    operands = ("signal", "window?")
    flops = _sum_flops
    attrs = {
        "frame_step": Attr("int", doc="samples between frame starts"),
        "frame_length": Attr("int", doc="samples per frame, the DFT length"),
        "onesided": Attr("bool", True, "keep bins k <= L/2 only"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("STFT", ins, 1)
        reject_quant("STFT", [x, ins[1] if len(ins) > 1 else None])
        require(x.dtype.is_float, f"STFT: needs a float signal, got {x.dtype.value}")
        require(x.rank == 3 and x.shape[-1] in (1, 2),
                f"STFT: the signal is [batch, length, 1 or 2], got {list(x.shape)}")
        step, n = a["frame_step"], a["frame_length"]
        require(step >= 1, f"STFT: frame_step must be positive, got {step}")
        require(1 <= n <= x.shape[1],
                f"STFT: frame_length {n} must be in [1, {x.shape[1]}] (the signal's length)")
        w = ins[1] if len(ins) > 1 else None
        if w is not None:
            require(w.shape == (n,) and w.dtype == x.dtype,
                    f"STFT: the window must be {x.dtype.value}[{n}], got {w}")
        frames = (x.shape[1] - n) // step + 1
        bins = n // 2 + 1 if a["onesided"] else n
        return [TensorType((x.shape[0], frames, bins, 2), x.dtype)]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        w = ins[1] if len(ins) > 1 else None
        step, n = a["frame_step"], a["frame_length"]
        frames = (x.shape[1] - n) // step + 1
        bins = n // 2 + 1 if a["onesided"] else n
        z = as_complex(x)  # [batch, T]
        starts = np.arange(frames)[:, None] * step + np.arange(n)[None, :]
        seg = z[:, starts]  # [batch, frames, n]
        if w is not None:
            seg = seg * w.astype(np.float64)
        y = seg @ dft_matrix(n, bins).T
        return [_complex_storage(y, x.dtype)]
