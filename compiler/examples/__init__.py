"""Example models qnnc builds itself, as ONNX, with no downloads.

``qnnc example NAME -o model.onnx`` writes one; the accuracy and speed benchmarks use them.
Every model is float32 with static input shapes and is deterministic for a given seed.
Weights are random but well scaled, so activations stay of order one through the whole
network — the property quantisation experiments need (constant or badly scaled weights
would make every calibration trivially right or hopelessly wrong).
"""

from __future__ import annotations

from collections.abc import Callable

import onnx
from onnx import ModelProto

from compiler.examples.bert import build_bert_encoder
from compiler.examples.llama import build_llama
from compiler.examples.mobilenet import build_mobilenetv2
from compiler.examples.small import build_tiny_cnn
from compiler.examples.yolo import build_yolo
from compiler.examples.zoo import build_zoo_model

_ZOO = "(onnx light zoo graph), random He-scaled weights, 1x3x224x224"

#: example name → one-line description
EXAMPLES: dict[str, str] = {
    "resnet50": f"ResNet-50 v1 {_ZOO}",
    "squeezenet": f"SqueezeNet 1.0 {_ZOO}",
    "shufflenet": f"ShuffleNet v1 {_ZOO}",
    "inception_v1": f"Inception v1 / GoogLeNet {_ZOO}",
    "inception_v2": f"Inception v2 (BN-Inception) {_ZOO}",
    "densenet121": f"DenseNet-121 {_ZOO}",
    "vgg19": f"VGG-19 {_ZOO}",
    "alexnet": f"AlexNet (BVLC) {_ZOO}",
    "zfnet512": f"ZFNet-512 {_ZOO}",
    "mobilenetv2": "MobileNetV2 1.0 (BatchNorm unfolded, ReLU6 as Clip), random He-scaled "
    "weights, 1x3x224x224",
    "bert_encoder": "BERT-style encoder, 6 layers, hidden 384, 12 heads, erf GELU, random "
    "Xavier weights, hidden states 1x64x384",
    "tiny_cnn": "tiny CNN (2 conv + relu, maxpool, gemm), random He-scaled weights, 1x1x8x8",
    "llama": "Llama-style decoder, 2 layers, hidden 128, 4 query / 2 kv heads, RoPE, SwiGLU, "
    "static KV cache of 128 slots, input_ids 1xseq, trained briefly on stdlib docstrings",
    "yolo": "YOLOv5s-style detector (Focus stem, C3 blocks, SPP, PANet neck, SiLU), 3 heads of "
    "80 classes, random weights, 1x3x416x416",
}

_BUILDERS: dict[str, Callable[[int], ModelProto]] = {
    "mobilenetv2": build_mobilenetv2,
    "bert_encoder": build_bert_encoder,
    "tiny_cnn": build_tiny_cnn,
    "llama": build_llama,
    "yolo": build_yolo,
}


def build_example(name: str, seed: int = 0) -> ModelProto:
    """Build example ``name`` with weights drawn from ``seed``; the model passes onnx's checker.

    Raises ValueError for an unknown name, listing the known ones.
    """
    if name not in EXAMPLES:
        raise ValueError(
            f"unknown example {name!r}; the examples are: {', '.join(sorted(EXAMPLES))}"
        )
    builder = _BUILDERS.get(name)
    model = builder(seed) if builder is not None else build_zoo_model(name, seed)
    onnx.checker.check_model(model)
    return model


__all__ = ["EXAMPLES", "build_example"]
