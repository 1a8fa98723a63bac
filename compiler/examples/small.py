"""tiny_cnn: a network small enough to read in full, for quick and golden tests.

1×1×8×8 input → Conv 3×3 (4 ch) → ReLU → Conv 3×3 (8 ch) → ReLU → MaxPool 2×2 → Flatten
→ Gemm (10 logits). Every weight is He-normal, biases small.
"""

from __future__ import annotations

import numpy as np
from onnx import ModelProto

from compiler.examples import weights
from compiler.examples.builder import F32, GraphBuilder

CLASSES = 10


def build_tiny_cnn(seed: int) -> ModelProto:
    """Input "input" [1,1,8,8] → output "logits" [1,10]."""
    b = GraphBuilder(np.random.default_rng(seed))
    x, c_in = "input", 1
    for i, c_out in enumerate((4, 8)):
        shape = (c_out, c_in, 3, 3)
        w = b.const(f"conv{i}.weight", weights.he_normal(b.rng, shape, weights.conv_fan_in(shape)))
        bias = b.const(f"conv{i}.bias", weights.small(b.rng, (c_out,), 0.05))
        x = b.op("Conv", [x, w, bias], f"conv{i}", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
        x = b.op("Relu", [x], f"relu{i}")
        c_in = c_out
    x = b.op("MaxPool", [x], "pool", kernel_shape=[2, 2], strides=[2, 2])
    x = b.op("Flatten", [x], "flatten", axis=1)
    features = c_in * 4 * 4
    w = b.const("fc.weight", weights.he_normal(b.rng, (CLASSES, features), features))
    bias = b.const("fc.bias", weights.small(b.rng, (CLASSES,), 0.05))
    x = b.op("Gemm", [x, w, bias], "logits", transB=1)
    return b.model(
        "tiny_cnn",
        [("input", F32, [1, 1, 8, 8])],
        [(x, F32, [1, CLASSES])],
        doc="tiny CNN for quick tests (qnnc example)",
    )
