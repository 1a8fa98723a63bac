"""The reference interpreter's native kernels (csrc/qnnc_interp.c), registered with ir.accel.

Calibration runs the float model on the interpreter, so its slowest numpy paths are its
cost: on PP-OCRv4's recogniser the depthwise convolutions (one pass over the output per
kernel tap) and the float64 HardSwish after most layers took 40% of it. The C kernels do the
same IEEE operations in the same order in one pass (tests/ir/test_interp_kernels.py compares
them with numpy bit for bit), and decline what they do not cover (other dtypes, ranks),
which numpy then computes. :func:`install` registers them; the library is built on first
use (compiler/native_build.py) and, where it cannot be, numpy computes everything.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Sequence

import numpy as np

from compiler.native_build import CSRC, load
from ir import accel
from ir.ops.conv import pad_spatial

SOURCE = CSRC / "qnnc_interp.c"
#: lets gcc vectorise HardSwish's clip (its compares need not keep FP exceptions); no value
#: of any operation changes
FLAGS = ("-fno-trapping-math",)
_I64, _PTR = ctypes.c_int64, ctypes.c_void_p


@functools.cache
def library() -> ctypes.CDLL | None:
    """The built kernels, or None (no C compiler, a failed build): numpy computes."""
    lib = load(SOURCE, "qnnc_interp", FLAGS)
    if lib is None:
        return None
    lib.qnnc_depthwise2d_f32.restype = None
    lib.qnnc_depthwise2d_f32.argtypes = [_PTR, *[_I64] * 4, _PTR, *[_I64] * 9, _PTR]
    lib.qnnc_hard_swish_f32.restype = None
    lib.qnnc_hard_swish_f32.argtypes = [_PTR, _I64, _PTR]
    return lib


def depthwise2d(x: np.ndarray, w: np.ndarray, strides: Sequence[int], pads: Sequence[int],
                dilations: Sequence[int], out: Sequence[int]) -> np.ndarray | None:
    """The depthwise convolution of float32 ``x`` (N, G, H, W) zero-padded by ``pads`` by
    ``w`` (G * M, 1, KH, KW) as (N, G, M, *out), as ir.ops.conv's tap-by-tap loop computes
    it; None for anything else (numpy computes it then)."""
    if x.dtype != np.float32 or w.dtype != np.float32 or x.ndim != 4:
        return None
    lib = library()
    if lib is None:
        return None
    xc = np.ascontiguousarray(pad_spatial(x, pads[:2], pads[2:]))
    wc = np.ascontiguousarray(w)
    n, g, hp, wp = xc.shape
    mg, (kh, kw) = w.shape[0] // g, w.shape[2:]
    y = np.empty((n, g, mg, out[0], out[1]), np.float32)
    lib.qnnc_depthwise2d_f32(xc.ctypes.data, n * g, g, hp, wp, wc.ctypes.data, mg, kh, kw,
                             out[0], out[1], strides[0], strides[1], dilations[0],
                             dilations[1], y.ctypes.data)
    return y


def hard_swish(x: np.ndarray) -> np.ndarray | None:
    """HardSwish of float32 ``x`` evaluated in float64 and rounded once, as the
    interpreter's float64 path does; None for other dtypes."""
    if x.dtype != np.float32:
        return None
    lib = library()
    if lib is None:
        return None
    xc = np.ascontiguousarray(x)
    y = np.empty(x.shape, np.float32)
    lib.qnnc_hard_swish_f32(xc.ctypes.data, xc.size, y.ctypes.data)
    return y


def install() -> None:
    """Register the kernels with the interpreter (ir.accel)."""
    accel.register("depthwise2d", depthwise2d)
    accel.register("hard_swish", hard_swish)
