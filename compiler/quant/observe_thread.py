"""Observing a sample's tensors on a second thread while the interpreter computes the next
layers.

Folding a tensor into its histogram (compiler/quant/native_hist.py) and running a layer
(numpy, BLAS) both release the GIL, so on a machine with two or more cores the two overlap:
on PP-OCR's detector this hides most of the histogram time. One worker takes the tensors in
the order the interpreter produced them, so every observer sees exactly the sequence it would
see on one thread and the ranges do not change by a bit.

The arrays waiting for the worker are bounded in bytes (:data:`BUDGET`): when the worker
falls behind, the interpreter waits instead of holding every intermediate tensor alive.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from types import TracebackType

import numpy as np

#: bytes of tensors allowed to wait for the worker before the producer blocks
BUDGET = 256 << 20
Observe = Callable[[str, np.ndarray], None]


class ObserveThread:
    """``with ObserveThread(observe) as t: ... t.put(name, array) ...``: ``observe`` runs on
    a worker thread, in ``put`` order. Leaving the block normally waits for the queue and
    re-raises the worker's first error; leaving it by an exception (Ctrl-C included) drops
    what is still queued and stops the worker."""

    def __init__(self, observe: Observe, budget: int = BUDGET) -> None:
        self._observe = observe
        self._budget = budget
        self._queue: deque[tuple[str, np.ndarray]] = deque()
        self._pending = 0  # bytes queued or being observed
        self._cond = threading.Condition()
        self._closing = False
        self._abort = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="qnnc-observe", daemon=True)

    def __enter__(self) -> ObserveThread:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None,
                 tb: TracebackType | None) -> None:
        with self._cond:
            self._closing = True
            self._abort = kind is not None
            if self._abort:
                self._queue.clear()
            self._cond.notify_all()
        self._thread.join()
        if kind is None and self._error is not None:
            raise self._error

    def put(self, name: str, array: np.ndarray) -> None:
        """Queue one tensor; blocks while more than the budget waits (unless the queue is
        empty: one tensor larger than the budget still goes through)."""
        with self._cond:
            while self._pending and self._pending + array.nbytes > self._budget \
                    and self._error is None:
                self._cond.wait()
            if self._error is not None:
                raise self._error
            self._queue.append((name, array))
            self._pending += array.nbytes
            self._cond.notify_all()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue or self._abort:
                    return
                name, array = self._queue.popleft()
            try:
                if self._error is None:
                    self._observe(name, array)
            except BaseException as e:  # noqa: BLE001 - handed to the producer
                self._error = e
            with self._cond:
                self._pending -= array.nbytes
                self._cond.notify_all()
