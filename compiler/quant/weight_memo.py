"""Weight codes made once per compile, whatever graph asks for them.

One INT8 compile quantises the same weights several times: the ``auto`` method builds the
model with each candidate's ranges, and a model with several shape profiles is quantised once
per profile, each an import of its own whose constants are new arrays holding the same
numbers. A layer's codes, scales and corrected bias depend only on its float weights and bias,
the input means bias correction uses, the group count, the scale floor an int32 bias imposes
and the weight settings: :class:`WeightMemo` keys them by exactly that content and hands every
asker its own copy of the one result, so the graphs come out as they would without it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np

from ir.types import QuantParams

#: (int8 codes, their parameters, the float bias corrected for their rounding)
Codes = tuple[np.ndarray, QuantParams, np.ndarray | None]


def _digest(arrays: tuple[np.ndarray | None, ...], settings: tuple[object, ...]) -> bytes:
    h = hashlib.sha256(repr(settings).encode())  # SHA extensions: the fastest hashlib has
    for a in arrays:
        if a is None:
            h.update(b"|none")
            continue
        c = np.ascontiguousarray(a)
        h.update(f"|{c.dtype.str}{c.shape}".encode())
        h.update(memoryview(c).cast("B"))
    return h.digest()


class WeightMemo:
    """Weight codes by the content they are made from, for the length of one compile."""

    def __init__(self) -> None:
        self._made: dict[bytes, Codes] = {}
        self.hits = 0

    def __len__(self) -> int:
        return len(self._made)

    def get(self, arrays: tuple[np.ndarray | None, ...], settings: tuple[object, ...],
            make: Callable[[], Codes]) -> Codes:
        """``make()``'s result for these inputs (``arrays`` by content, ``settings`` by
        value), made the first time and copied for each asker after."""
        key = _digest(arrays, settings)
        if key not in self._made:
            self._made[key] = make()
        else:
            self.hits += 1
        codes, params, bias = self._made[key]
        return codes.copy(), params, None if bias is None else bias.copy()
