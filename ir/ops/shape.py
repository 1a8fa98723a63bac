"""Ops that only move or re-view data: reshape, transpose, squeeze, expand, ..."""

from __future__ import annotations

import numpy as np

from ir.ops.common import require_inputs
from ir.ops.registry import Attrs, register
from ir.types import TensorType


@register
class Identity:
    """y = x"""

    inputs = (1, 1)
    attrs: dict = {}

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        (x,) = require_inputs("Identity", ins, 1)
        return [x]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        assert ins[0] is not None
        return [ins[0].copy()]
