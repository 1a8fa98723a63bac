"""The memory budget: the largest tensor qnnc will allocate, checked from shapes before any
allocation, so a model (or a data file) that declares a huge tensor is an error naming it
rather than a MemoryError after minutes of swapping.

The budget is ``max(--max-tensor-size, 4 x the model's largest weight)``: a model that really
holds big weights gets room for tensors of their size (a Cast or Concat of them), while one
that only *declares* big sizes (ConstantOfShape [1e5, 1e5], a Range of 1e12, a Tile or Resize
by 30,000, an input of 1e12 elements) is stopped at import.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from onnx import ModelProto

from compiler.errors import QnncError

DEFAULT_MAX_TENSOR_BYTES = 1 << 30  # 1 GiB
FLAG = "--max-tensor-size"
OPTION = "max_tensor_bytes"
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """``"4G"`` / ``"512M"`` / ``"64k"`` / ``"1000000"`` -> bytes (binary units)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)[iI]?[bB]?\s*", text)
    if not m:
        raise QnncError(f"bad size {text!r}: write bytes or a number with K, M, G or T, "
                        "e.g. 4G")
    value = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if value <= 0:
        raise QnncError(f"bad size {text!r}: it must be positive")
    return value


def human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def model_budget(model: ModelProto | None, floor: int | None = None) -> int:
    """The tensor size budget for ``model``: ``floor`` (default 1 GiB) or 4 x its largest
    initializer, whichever is larger."""
    budget = DEFAULT_MAX_TENSOR_BYTES if floor is None else int(floor)
    if model is not None:
        for t in model.graph.initializer:
            budget = max(budget, 4 * (len(t.raw_data) or 0))
    return budget


def tensor_bytes(shape: Sequence[int], itemsize: int) -> int:
    return math.prod(int(d) for d in shape) * int(itemsize)


def over_budget(what: str, shape: Sequence[int], itemsize: int, budget: int) -> str | None:
    """The error message when a tensor of ``shape`` would exceed ``budget``, else None."""
    size = tensor_bytes(shape, itemsize)
    if size <= budget:
        return None
    dims = "x".join(str(int(d)) for d in shape) or "a scalar"
    return (f"{what} would be {dims} ({human_bytes(size)}), over the tensor "
            f"size budget of {human_bytes(budget)}; if the model really needs it, raise the "
            f"budget with {FLAG} SIZE (Python: {OPTION}=)")
