"""Relayout: an explicit change of storage layout (see ir/layouts.py).

Values in the IR are logical tensors, so a Relayout computes the identity; what it changes is
how its output is stored on the target (``layout``) compared with its input
(``from_layout``). Layout passes insert Relayouts where a producer's layout differs from what
a consumer needs, and fold-layout removes the ones that cancel.
"""

from __future__ import annotations

import numpy as np

from ir import layouts
from ir.ops.registry import Attr, Attrs, register, require
from ir.types import TensorType


@register
class Relayout:
    """y = x; y is stored in ``layout``, x in ``from_layout`` ('' = plain row-major)."""

    operands = ("x",)
    moves_data = True
    attrs = {
        "layout": Attr("str", doc="the output's storage layout"),
        "from_layout": Attr("str", "", "the input's storage layout"),
    }

    @staticmethod
    def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
        x = ins[0]
        require(x is not None, "Relayout: needs an input")
        assert x is not None
        for key in ("layout", "from_layout"):
            try:
                lay = layouts.parse(a[key])
            except layouts.LayoutError as e:
                require(False, f"Relayout: {e}")
                raise
            require(lay.kind == "plain" or x.rank == 4,
                    f"Relayout: layout {a[key]!r} needs a 4-D tensor, got {x}")
        return [x]

    @staticmethod
    def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
        x = ins[0]
        assert x is not None
        return [x]
