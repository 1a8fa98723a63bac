"""numpy's BLAS runs on one thread while qnnc's reference interpreter calibrates and
evaluates.

Two reasons. Reproducibility: OpenBLAS's results depend on how many threads split a product
(PP-OCRv4 rec calibrated with BLAS on one thread and on two gives different ranges in the
last bits, so different INT8 models), and a compile must give the same model on any machine
and under any load; compiler/blas_kernels.py pins the kernel set for the same reason. Speed:
the interpreter calls BLAS one layer at a time on one sample's tensors, while calibration
folds the finished tensors' histograms on a second thread (compiler/quant/observe_thread.py);
BLAS threads on every core compete with that thread, and with other load they wait on each
other in every call. PP-OCRv4 rec's 64-sample calibration on a 2-core machine took 7.5-8.6 s
with BLAS on both cores and 7.0 s on one; with one core busy elsewhere, 25.7 s against 7.9 s.

BLAS's own setting is restored afterwards, so code around a compile keeps its threads.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any


@functools.cache
def _controller() -> Any:
    """threadpoolctl's view of the loaded thread pools, found once: finding them walks every
    loaded library (milliseconds, a tenth of a small model's whole INT8 compile). numpy's
    BLAS is loaded with numpy, before the first compile."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextlib.contextmanager
def limited_blas() -> Iterator[None]:
    """Run the body with numpy's BLAS on one thread."""
    with _controller().limit(limits=1, user_api="blas"):
        yield
