"""numpy's BLAS threads while qnnc's reference interpreter calibrates and evaluates.

The interpreter's convolutions and products call BLAS one layer at a time, on tensors of a
single sample, while calibration folds the finished tensors' histograms on a second thread
(compiler/quant/observe_thread.py). BLAS threads that fill every core then compete with that
thread, and on a machine with other load they wait on each other in every call: PP-OCRv4
rec's 64-sample calibration took 7.5-8.6 s with OpenBLAS on both cores of a quiet 2-core
machine and 7.0 s on one, and 25.7 s against 9.0 s with one core busy elsewhere. So while
calibration and evaluation run, BLAS gets the cores that are neither the observer's nor
taken by the load average, at least one (:func:`interpreter_threads`); its own setting is
restored afterwards. A user who set OPENBLAS_NUM_THREADS, OMP_NUM_THREADS or
MKL_NUM_THREADS keeps it.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator

#: variables through which a user fixes BLAS's threads (they win over ours)
USER_SETTINGS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def interpreter_threads(cores: int | None = None, load: float | None = None) -> int:
    """BLAS threads for the interpreter: the cores left after the observer thread and the
    1-minute load average, at least 1."""
    cores = cores if cores is not None else (os.cpu_count() or 1)
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:  # no load average on this platform
            load = 0.0
    return max(1, min(cores - 1, math.floor(cores - load)))


@contextlib.contextmanager
def limited_blas() -> Iterator[None]:
    """Run the body with BLAS at :func:`interpreter_threads` (unless the user set them)."""
    if any(os.environ.get(v) for v in USER_SETTINGS):
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=interpreter_threads(), user_api="blas"):
        yield
