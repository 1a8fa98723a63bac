"""One BLAS kernel set for float matrix products on every x86-64 CPU with AVX2.

numpy's OpenBLAS picks its sgemm kernels by CPU (Haswell, SkylakeX, Zen, ...), and the
kernels sum in different orders, so a float32 MatMul or Conv on the reference interpreter
gives results that differ in the last bits from one CPU family to another. Calibration
ranges, and from them every scale, inherit those bits: the same model and samples then
quantise to different scales on an AVX-512 machine than on an AVX2 one, and golden files
recorded on one fail on the other. Pinning OpenBLAS to its Haswell kernels (AVX2 + FMA,
which every such CPU runs) makes the interpreter's float products, and so everything
calibrated from them, the same on all of them.

OpenBLAS reads ``OPENBLAS_CORETYPE`` once, when numpy loads it, so :func:`pin` must run
before numpy is imported: the ``compiler`` package calls it first thing (this module imports
only the standard library, so ``qnnc --version`` stays instant), and the qnnc command and
pytest plugin load ``compiler`` before anything imports numpy. A user who imports numpy
before qnnc keeps the CPU's own kernels (calibration still works; scales may differ in the
last bits across CPU families). A value already set in the environment is left alone, and
CPUs without AVX2 and FMA (and other architectures) are not touched.
"""

from __future__ import annotations

import os
import platform
import sys

CORETYPE = "Haswell"


def _has_avx2_fma() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return {"avx2", "fma"} <= flags
    except OSError:
        return False
    return False


def pin() -> bool:
    """Set OPENBLAS_CORETYPE (when numpy is not loaded yet, the variable is unset and this is
    an x86-64 CPU with AVX2 and FMA); whether it is now in effect."""
    if "OPENBLAS_CORETYPE" in os.environ:
        return os.environ["OPENBLAS_CORETYPE"] == CORETYPE and "numpy" not in sys.modules
    if "numpy" in sys.modules or platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    if not _has_avx2_fma():
        return False
    os.environ["OPENBLAS_CORETYPE"] = CORETYPE
    return True
