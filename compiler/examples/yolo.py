"""A YOLOv5s-style detector (416×416, 80 classes, 3 anchors per cell), written node by node.

The layer mix of the YOLO family as PyTorch exports it, which is what a detector brings to a
compiler: a Focus stem (four stride-2 Slices of the image joined into 12 channels), every
convolution followed by SiLU as ``x * Sigmoid(x)``, C3 blocks (two 1×1 branches, bottlenecks
with residual Adds on one, a Concat and a 1×1 merge), an SPP block (MaxPools of 5, 9 and 13
concatenated with their input), a PANet neck (nearest Resize ×2 and Concats with the
backbone's features, then stride-2 convolutions back down) and three 1×1 detection heads,
each reshaped to [1, 3, H, W, 85] and squashed by a Sigmoid, as the export's Detect layer
does before its box decoding. 62 convolutions, 14 Concats, 3 MaxPools, 2 Resizes.

BatchNorm is folded into the convolutions' weights and biases, as in exported YOLO models.
Weights are random normal, each convolution scaled so that its output has unit RMS on a
traced sample (a 256×256 normal image run through the layers as they are written, with
numpy: the data-dependent initialisation of Mishkin & Matas, "All you need is a good init"),
so activations stay of order one through 64 layers of SiLU and residual Adds. The example
has the structure and shapes of a trained detector but not its statistics: it measures
speed and exercises the compiler, not detection accuracy.
"""

from __future__ import annotations

import numpy as np
from onnx import ModelProto

from compiler.examples.builder import F32, GraphBuilder
from ir.ops.registry import get_op

RESOLUTION = 416
CLASSES = 80
ANCHORS = 3
#: side of the traced sample the convolutions are scaled on
TRACE_SIZE = 256
#: SPP's pooling windows (stride 1, same padding)
SPP_KERNELS = (5, 9, 13)


def _reference(op: str, ins: list[np.ndarray], **attrs: object) -> np.ndarray:
    """``op`` on the traced arrays by its reference semantics (the IR's one definition;
    ``attrs`` in the IR's form, e.g. Slice's starts and ends as attributes)."""
    opdef = get_op(op)
    return opdef.evaluate(list(ins), opdef.normalize_attrs(attrs), [], [])[0]


class _Yolo:
    """Writes the graph and, beside it, runs each layer on the traced sample (``self.v``:
    value name -> array) so that each convolution can be scaled as it is written."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.b = GraphBuilder(rng)
        self.rng = rng
        self.v: dict[str, np.ndarray] = {}

    def op(self, op: str, inputs: list[str], stem: str, value: np.ndarray,
           **attrs: object) -> str:
        """Write node ``op`` (ONNX ``attrs``), its traced result being ``value``."""
        name = self.b.op(op, inputs, stem, **attrs)
        self.v[name] = value
        return name

    def same(self, op: str, inputs: list[str], stem: str, **attrs: object) -> str:
        """Write node ``op`` whose ONNX attributes are the IR's too, traced by reference."""
        return self.op(op, inputs, stem, _reference(op, [self.v[x] for x in inputs], **attrs),
                       **attrs)

    def conv(self, x: str, c_in: int, c_out: int, k: int, stride: int, prefix: str,
             act: bool = True) -> str:
        """Conv (BatchNorm folded: weight and bias), scaled to unit output RMS on the traced
        sample, then SiLU as x * Sigmoid(x)."""
        b = self.b
        w = self.rng.standard_normal((c_out, c_in, k, k)) / np.sqrt(c_in * k * k)
        bias = self.rng.normal(0.0, 0.1, c_out)
        y = _reference("Conv", [self.v[x], w, bias], strides=[stride] * 2, pads=[k // 2] * 4,
                       dilations=[1, 1], group=1)
        rms = float(np.sqrt(np.mean(y * y)))
        w, bias, y = w / rms, bias / rms, y / rms
        out = self.op("Conv", [x, b.const(f"{prefix}.weight", w.astype(np.float32)),
                               b.const(f"{prefix}.bias", bias.astype(np.float32))],
                      f"{prefix}.conv", y, kernel_shape=[k, k], strides=[stride] * 2,
                      pads=[k // 2] * 4)
        if not act:
            return out
        s = self.same("Sigmoid", [out], f"{prefix}.sigmoid")
        return self.same("Mul", [out, s], f"{prefix}.silu")

    def concat(self, parts: list[str], stem: str) -> str:
        return self.same("Concat", parts, stem, axis=1)

    def c3(self, x: str, c_in: int, c_out: int, n: int, shortcut: bool, prefix: str) -> str:
        """C3: cv1 -> n bottlenecks (1x1, 3x3, + input if shortcut) ; cv2 ; concat ; cv3."""
        c_ = c_out // 2
        y = self.conv(x, c_in, c_, 1, 1, f"{prefix}.cv1")
        for i in range(n):
            h = self.conv(y, c_, c_, 1, 1, f"{prefix}.m{i}.cv1")
            h = self.conv(h, c_, c_, 3, 1, f"{prefix}.m{i}.cv2")
            y = self.same("Add", [y, h], f"{prefix}.m{i}.add") if shortcut else h
        z = self.conv(x, c_in, c_, 1, 1, f"{prefix}.cv2")
        cat = self.concat([y, z], f"{prefix}.cat")
        return self.conv(cat, 2 * c_, c_out, 1, 1, f"{prefix}.cv3")

    def spp(self, x: str, c_in: int, c_out: int, prefix: str) -> str:
        c_ = c_in // 2
        y = self.conv(x, c_in, c_, 1, 1, f"{prefix}.cv1")
        pools = []
        for k in SPP_KERNELS:
            pools.append(self.same("MaxPool", [y], f"{prefix}.pool{k}", kernel_shape=[k, k],
                                   strides=[1, 1], pads=[k // 2] * 4, dilations=[1, 1]))
        cat = self.concat([y, *pools], f"{prefix}.cat")
        return self.conv(cat, c_ * (len(SPP_KERNELS) + 1), c_out, 1, 1, f"{prefix}.cv2")

    def focus(self, x: str, c_out: int) -> str:
        """The four pixel phases of the image side by side as channels, then a 3x3 conv."""
        b = self.b
        parts = []
        shape = self.v[x].shape
        for dy, dx in ((0, 0), (1, 0), (0, 1), (1, 1)):
            traced = _reference("Slice", [self.v[x]], starts=[0, 0, dy, dx],
                                ends=list(shape), steps=[1, 1, 2, 2])
            parts.append(self.op("Slice", [x, b.ints("focus.starts", [dy, dx]),
                                           b.ints("focus.ends", [RESOLUTION, RESOLUTION]),
                                           b.ints("focus.axes", [2, 3]),
                                           b.ints("focus.steps", [2, 2])], "focus.slice",
                                 traced))
        cat = self.concat(parts, "focus.cat")
        return self.conv(cat, 12, c_out, 3, 1, "focus.conv")

    def up(self, x: str, prefix: str) -> str:
        b = self.b
        scales = b.const(f"{prefix}.scales", np.array([1, 1, 2, 2], np.float32))
        n, c, h, w = self.v[x].shape
        value = _reference("Resize", [self.v[x]], sizes=[n, c, 2 * h, 2 * w],
                           scales=[1.0, 1.0, 2.0, 2.0], mode="nearest")
        return self.op("Resize", [x, "", scales], prefix, value, mode="nearest")

    def detect(self, x: str, c_in: int, size: int, k: int) -> str:
        b = self.b
        y = self.conv(x, c_in, ANCHORS * (5 + CLASSES), 1, 1, f"detect.m{k}", act=False)
        shape = b.ints(f"detect.shape{k}", [1, ANCHORS, 5 + CLASSES, size, size])
        v = self.v[y]  # the traced sample is smaller: reshaped to its own size
        v = _reference("Reshape", [v], shape=[v.shape[0], ANCHORS, 5 + CLASSES, *v.shape[2:]])
        y = self.op("Reshape", [y, shape], f"detect.reshape{k}", v)
        y = self.same("Transpose", [y], f"detect.transpose{k}", perm=[0, 1, 3, 4, 2])
        return self.same("Sigmoid", [y], f"detect.out{k}")

    def build(self) -> list[str]:
        self.v["images"] = self.rng.standard_normal((1, 3, TRACE_SIZE, TRACE_SIZE))
        x = self.focus("images", 32)
        x = self.conv(x, 32, 64, 3, 2, "b1")
        x = self.c3(x, 64, 64, 1, True, "b2")
        x = self.conv(x, 64, 128, 3, 2, "b3")
        p3 = self.c3(x, 128, 128, 3, True, "b4")
        x = self.conv(p3, 128, 256, 3, 2, "b5")
        p4 = self.c3(x, 256, 256, 3, True, "b6")
        x = self.conv(p4, 256, 512, 3, 2, "b7")
        x = self.spp(x, 512, 512, "b8")
        x = self.c3(x, 512, 512, 1, False, "b9")
        h10 = self.conv(x, 512, 256, 1, 1, "h10")
        x = self.concat([self.up(h10, "h11"), p4], "h12")
        x = self.c3(x, 512, 256, 1, False, "h13")
        h14 = self.conv(x, 256, 128, 1, 1, "h14")
        x = self.concat([self.up(h14, "h15"), p3], "h16")
        out3 = self.c3(x, 256, 128, 1, False, "h17")
        x = self.conv(out3, 128, 128, 3, 2, "h18")
        x = self.concat([x, h14], "h19")
        out4 = self.c3(x, 256, 256, 1, False, "h20")
        x = self.conv(out4, 256, 256, 3, 2, "h21")
        x = self.concat([x, h10], "h22")
        out5 = self.c3(x, 512, 512, 1, False, "h23")
        s = RESOLUTION // 8
        return [self.detect(out3, 128, s, 0), self.detect(out4, 256, s // 2, 1),
                self.detect(out5, 512, s // 4, 2)]


def build_yolo(seed: int) -> ModelProto:
    """The YOLOv5s-style detector with random weights; input "images" [1,3,416,416], outputs
    [1,3,52,52,85], [1,3,26,26,85] and [1,3,13,13,85] (sigmoid of box, objectness, classes)."""
    net = _Yolo(np.random.default_rng(seed))
    outs = net.build()
    s = RESOLUTION // 8
    return net.b.model(
        "yolo",
        [("images", F32, [1, 3, RESOLUTION, RESOLUTION])],
        [(o, F32, [1, ANCHORS, s >> k, s >> k, 5 + CLASSES]) for k, o in enumerate(outs)],
        doc="YOLOv5s-style detector at 416x416, random weights (qnnc example)",
    )
