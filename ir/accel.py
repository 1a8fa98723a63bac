"""Optional native kernels for the reference interpreter.

The interpreter's numpy code defines every op's values. Where a numpy path spends more on
passes over memory than on arithmetic (a depthwise convolution adds one product per tap to
the whole output; a float64 activation converts and walks the tensor several times), a
layer above ir (compiler/interp_kernels.py, which builds csrc/qnnc_interp.c) may register
a kernel under a name the op looks up here. A registered kernel computes exactly the numpy
path's values, bit for bit: the same IEEE operations on the same operands in the same order.
It may decline (return None), and then numpy computes. :func:`numpy_only` turns them all off,
which is how the tests compare the two.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_kernels: dict[str, Callable[..., Any]] = {}
_off = threading.local()


def register(name: str, fn: Callable[..., Any]) -> None:
    """Make ``fn`` the kernel ``name`` (replacing any before it)."""
    _kernels[name] = fn


def kernel(name: str) -> Callable[..., Any] | None:
    """The kernel registered as ``name``, or None (none, or :func:`numpy_only` is on)."""
    if getattr(_off, "on", False):
        return None
    return _kernels.get(name)


@contextmanager
def numpy_only() -> Iterator[None]:
    """Within the block (on this thread), every op computes with numpy."""
    was = getattr(_off, "on", False)
    _off.on = True
    try:
        yield
    finally:
        _off.on = was
