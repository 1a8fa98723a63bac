"""MobileNetV2 (width 1.0, 224×224, 1000 classes), written node by node.

The layout follows Sandler et al. 2018, table 2: a stride-2 3×3 stem, seventeen inverted
residual blocks (1×1 expand, 3×3 depthwise, 1×1 linear projection, residual Add when the
shape allows), a 1×1 conv to 1280 channels, global average pooling and a Gemm classifier.
ReLU6 is Clip(0, 6), as PyTorch exports it. BatchNormalization stays as separate nodes so
the BN-folding pass has real work. Weights are He-normal; BatchNorm statistics match the
predicted statistics of their inputs (reweight.py), so activations stay of order one.
"""

from __future__ import annotations

import numpy as np
from onnx import ModelProto

from compiler.examples.builder import F32, GraphBuilder
from compiler.examples.reweight import reweight

#: (expansion t, output channels c, repeats n, first stride s), from the paper
INVERTED_RESIDUALS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_CHANNELS = 32
LAST_CHANNELS = 1280
CLASSES = 1000
RESOLUTION = 224


class _MobileNet:
    def __init__(self, rng: np.random.Generator) -> None:
        self.b = GraphBuilder(rng)
        # Clip's bounds are inputs since opset 11; one shared pair serves every ReLU6.
        self.lo = self.b.const("relu6_min", np.array(0.0, np.float32))
        self.hi = self.b.const("relu6_max", np.array(6.0, np.float32))

    def conv_bn(
        self,
        x: str,
        c_in: int,
        c_out: int,
        k: int,
        stride: int,
        groups: int,
        prefix: str,
        relu6: bool,
    ) -> str:
        """Conv (no bias, as exported with BN) → BatchNormalization → optional ReLU6.

        Parameters are placeholders here; reweight() draws them once the graph exists.
        """
        b = self.b
        w = b.const(f"{prefix}.weight", np.zeros((c_out, c_in // groups, k, k), np.float32))
        pad = k // 2
        y = b.op(
            "Conv",
            [x, w],
            f"{prefix}.conv",
            kernel_shape=[k, k],
            strides=[stride] * 2,
            pads=[pad] * 4,
            group=groups,
        )
        bn = [
            b.const(f"{prefix}.bn.{p}", np.ones(c_out, np.float32))
            for p in ("scale", "bias", "mean", "var")
        ]
        y = b.op("BatchNormalization", [y, *bn], f"{prefix}.bn", epsilon=1e-5)
        if relu6:
            y = b.op("Clip", [y, self.lo, self.hi], f"{prefix}.relu6")
        return y

    def block(self, x: str, c_in: int, c_out: int, t: int, stride: int, prefix: str) -> str:
        hidden = c_in * t
        y = x
        if t != 1:
            y = self.conv_bn(y, c_in, hidden, 1, 1, 1, f"{prefix}.expand", relu6=True)
        y = self.conv_bn(y, hidden, hidden, 3, stride, hidden, f"{prefix}.dw", relu6=True)
        y = self.conv_bn(y, hidden, c_out, 1, 1, 1, f"{prefix}.project", relu6=False)
        if stride == 1 and c_in == c_out:
            y = self.b.op("Add", [x, y], f"{prefix}.add")
        return y

    def build(self) -> str:
        b = self.b
        x = self.conv_bn("input", 3, STEM_CHANNELS, 3, 2, 1, "stem", relu6=True)
        c_in, index = STEM_CHANNELS, 0
        for t, c, n, s in INVERTED_RESIDUALS:
            for i in range(n):
                x = self.block(x, c_in, c, t, s if i == 0 else 1, f"block{index}")
                c_in, index = c, index + 1
        x = self.conv_bn(x, c_in, LAST_CHANNELS, 1, 1, 1, "head", relu6=True)
        x = b.op("GlobalAveragePool", [x], "pool")
        x = b.op("Flatten", [x], "flatten", axis=1)
        w = b.const("classifier.weight", np.zeros((CLASSES, LAST_CHANNELS), np.float32))
        bias = b.const("classifier.bias", np.zeros(CLASSES, np.float32))
        return b.op("Gemm", [x, w, bias], "logits", transB=1)


def build_mobilenetv2(seed: int) -> ModelProto:
    """MobileNetV2 1.0/224 with random He-scaled weights; input "input" [1,3,224,224]."""
    rng = np.random.default_rng(seed)
    net = _MobileNet(rng)
    out = net.build()
    model = net.b.model(
        "mobilenetv2",
        [("input", F32, [1, 3, RESOLUTION, RESOLUTION])],
        [(out, F32, [1, CLASSES])],
        doc="MobileNetV2 1.0/224, random He-scaled weights (qnnc example)",
    )
    reweight(model, rng)
    return model
