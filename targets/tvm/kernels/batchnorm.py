"""BatchNormalization of float graphs (inference form, constant statistics): what the
fold-batchnorm pass cannot fold into a convolution before it (DenseNet's, after a Concat)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ir.graph import Node
from targets.tvm.api import te
from targets.tvm.context import Kernel, Tensor
from targets.tvm.registry import kernel


def _constant_f32(node: Node) -> bool:
    x = node.operand("x")
    return (x is not None and x.type.dtype.np.name == "float32" and x.type.quant is None
            and all(v is not None and v.data is not None
                    for v in (node.operand(n) for n in ("scale", "bias", "mean", "var"))))


@kernel("BatchNormalization", accepts=_constant_f32)
def batchnorm(k: Kernel) -> list[Tensor]:
    """y = (x - mean[c]) * (inv[c] * scale[c]) + bias[c], inv = 1 / sqrt(var + epsilon): the
    per-channel factors computed here as the interpreter computes them (float32), the
    per-element part in the kernel."""
    (y,) = k.out_types
    x = k.operand("x")
    f32 = np.float32

    def const(name: str) -> np.ndarray:
        return np.asarray(k.node.operand(name).data, dtype=f32)

    inv = f32(1.0) / np.sqrt(const("var") + f32(k.attrs["epsilon"]))
    mean = k.table(const("mean"), "mean")
    factor = k.table((inv * const("scale")).astype(f32), "factor")
    bias = k.table(const("bias"), "bias")

    def out(*i: Any) -> Any:
        c = i[1]
        return (x[i] - mean[c]) * factor[c] + bias[c]

    return [te.compute(y.shape, out, name="y")]
