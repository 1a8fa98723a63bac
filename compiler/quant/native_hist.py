"""The calibration histogram's binning in C (csrc/qnnc_observe.c), built once per machine.

Calibration spends most of its time folding every tensor of every sample into its histogram;
numpy needs eight passes over a tensor for that, the C routine one (six times faster on
PP-OCR's detector). Its counts are the numpy path's bit for bit (the same IEEE division in
the input's precision; tests/quant/test_native_hist.py checks it), so which one ran never
changes a compiled model.

The library is compiled with the host's C compiler on first use and cached
(compiler/native_build.py). Without a C compiler, or if the build fails, :func:`library`
returns None and the numpy path is used.
"""

from __future__ import annotations

import ctypes
import functools
import threading

import numpy as np

from compiler.native_build import CSRC, load

SOURCE = CSRC / "qnnc_observe.c"
#: -fno-trapping-math lets gcc vectorise the float-to-int conversion; it does not change
#: the value of any finite operation (the caller drops NaN/inf)
#: -fopenmp-simd: the extremes scan's ``omp simd`` reductions (no OpenMP runtime)
FLAGS = ("-fno-trapping-math", "-fopenmp-simd")
_I64, _PTR = ctypes.c_int64, ctypes.c_void_p


@functools.cache
def library() -> ctypes.CDLL | None:
    """The built routine, or None (no C compiler, a failed build): use the numpy path."""
    lib = load(SOURCE, "qnnc_observe", FLAGS)
    if lib is None:
        return None
    for name in ("qnnc_hist_f32", "qnnc_hist_f64"):
        fn = getattr(lib, name)
        fn.restype = None
        fn.argtypes = [_PTR, _I64, ctypes.c_float if name.endswith("32") else ctypes.c_double,
                       _I64, _PTR, _PTR]
    for name in ("qnnc_hist_update_f32", "qnnc_hist_update_f64"):
        fn = getattr(lib, name)
        fn.restype = _I64
        fn.argtypes = [_PTR, _I64, ctypes.c_float if name.endswith("32") else ctypes.c_double,
                       ctypes.c_double, _I64, _PTR, _PTR, _PTR]
    many = lib.qnnc_hist_update_many_f32
    many.restype = None
    many.argtypes = [_PTR, _PTR, _I64, _PTR, _I64, _PTR, _PTR, _PTR, _PTR]
    return lib


_scratch = threading.local()  # per thread: zeroed sub-histograms, reused between calls


def _scratch_pointer(bins: int) -> int:
    """This thread's sub-histograms for ``bins`` (the C routine leaves them zeroed)."""
    have: dict[int, tuple[np.ndarray, int]] | None = getattr(_scratch, "by_bins", None)
    if have is None:
        have = _scratch.by_bins = {}
    if bins not in have:
        buf = np.zeros(4 * (2 * bins + 1), np.uint32)
        have[bins] = (buf, buf.ctypes.data)
    return have[bins][1]


def add_counts(a: np.ndarray, width: float, bins: int, counts_pointer: int) -> bool:
    """Add the signed bin codes' counts of ``a`` (float32/float64, finite) to the int64
    ``2 * bins + 1`` array at ``counts_pointer`` (the caller keeps that array alive and
    writable); False when the library is not available. The hot path of a histogram
    update, so it takes the address rather than the array: on small tensors finding an
    array's address costs more than binning it."""
    lib = library()
    if lib is None:
        return False
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    fn = lib.qnnc_hist_f32 if a.dtype == np.float32 else lib.qnnc_hist_f64
    scratch, base, step = _scratch_pointer(bins), a.ctypes.data, 1 << 31
    for at in range(0, a.size, step):  # the C sub-histograms count in 32 bits
        fn(base + at * a.itemsize, min(step, a.size - at), width, bins, counts_pointer,
           scratch)
    return True


def _extremes_pointer() -> tuple[np.ndarray, int]:
    """This thread's two doubles for the extremes the C update writes."""
    have: tuple[np.ndarray, int] | None = getattr(_scratch, "extremes", None)
    if have is None:
        buf = np.zeros(2, np.float64)
        have = _scratch.extremes = (buf, buf.ctypes.data)
    return have


def update_counts(a: np.ndarray, width: float, bins: int,
                  counts_pointer: int) -> tuple[float, float, bool] | None:
    """The common histogram update in one call: ``(min, max, binned)`` of ``a``
    (float32/float64), where ``binned`` says that ``a`` was also counted into the int64
    array at ``counts_pointer`` (it was when ``width`` > 0 and every magnitude lies within
    ``bins * width``; otherwise the caller sets the width and calls :func:`add_counts`).
    None when the library is not available or ``a`` holds NaN/inf (nothing counted)."""
    lib = library()
    if lib is None or a.size >= 1 << 31:  # the sub-histograms count in 32 bits
        return None
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    fn = lib.qnnc_hist_update_f32 if a.dtype == np.float32 else lib.qnnc_hist_update_f64
    ext, at = _extremes_pointer()
    r = fn(a.ctypes.data, a.size, width, bins * width, bins, counts_pointer,
           _scratch_pointer(bins), at)
    if r < 0:
        return None
    return float(ext[0]), float(ext[1]), r == 1


def signed_counts(a: np.ndarray, width: float, bins: int,
                  counts: np.ndarray | None = None) -> np.ndarray | None:
    """Counts of the signed bin codes of ``a`` (float32/float64, finite): entry
    ``bins + c`` counts the values of code ``c`` in [-bins, bins] (see the C source); None
    when the library is not available. Given ``counts`` (contiguous int64, ``2 * bins + 1``),
    the counts are added to it in place and it is returned."""
    if counts is None:
        counts = np.zeros(2 * bins + 1, np.int64)
    if counts.dtype != np.int64 or counts.shape != (2 * bins + 1,) or not (
            counts.flags.c_contiguous and counts.flags.writeable):
        raise ValueError(f"counts must be a writable contiguous int64[{2 * bins + 1}]")
    return counts if add_counts(a, width, bins, counts.ctypes.data) else None


def update_many_f32(x: np.ndarray, ends: np.ndarray, widths: np.ndarray, bins: int,
                    pointers: np.ndarray, extremes: np.ndarray, status: np.ndarray) -> bool:
    """:func:`update_counts` for many float32 segments of one contiguous ``x`` in one call:
    segment ``i`` ends at ``ends[i]`` (int64) and folds into the histogram of bin width
    ``widths[i]`` (float64) whose int64 counts are at ``pointers[i]`` (int64 addresses the
    caller keeps alive). Writes ``status[i]`` (int64: 1 binned, 0 not counted, -1 NaN/inf)
    and the segment's extremes to ``extremes[2i: 2i + 2]`` (float64); False when the library
    is not available."""
    lib = library()
    if lib is None:
        return False
    lib.qnnc_hist_update_many_f32(x.ctypes.data, ends.ctypes.data, len(ends),
                                  widths.ctypes.data, bins, pointers.ctypes.data,
                                  _scratch_pointer(bins), extremes.ctypes.data,
                                  status.ctypes.data)
    return True
