"""The onnx "light" model zoo, re-weighted.

onnx ships nine classic image classifiers (ResNet-50, SqueezeNet, ShuffleNet, Inception v1/v2,
DenseNet-121, VGG-19, AlexNet, ZFNet-512) as graphs whose weights are ConstantOfShape nodes
filling every tensor with 0.02. The graphs are real; the weights are useless for calibration
or accuracy work (every channel is identical). Here each such graph is loaded from the
installed onnx package, every ConstantOfShape becomes an initializer, and every parameter
gets random values with the right scale for its role: He-normal conv/FC weights, small
biases, near-identity BatchNorm. The graph (ops, attributes, names, opset) is otherwise kept.

The few tensors the light files still store verbatim (the trained first layers of some
models) are redrawn too: trained statistics next to random weights would be the very
mismatch that makes activations explode or vanish.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import ModelProto, NodeProto, numpy_helper

from compiler.examples.reweight import reweight

#: example name → file name inside onnx/backend/test/data/light
LIGHT_FILES = {
    "resnet50": "light_resnet50.onnx",
    "squeezenet": "light_squeezenet.onnx",
    "shufflenet": "light_shufflenet.onnx",
    "inception_v1": "light_inception_v1.onnx",
    "inception_v2": "light_inception_v2.onnx",
    "densenet121": "light_densenet121.onnx",
    "vgg19": "light_vgg19.onnx",
    "alexnet": "light_bvlc_alexnet.onnx",
    "zfnet512": "light_zfnet512.onnx",
}

#: the first IR version that lets initializers stay out of the graph inputs
_IR_VERSION_INITIALIZERS_NOT_INPUTS = 4


def light_model_path(name: str) -> Path:
    """Where the installed onnx package keeps the light model behind example ``name``."""
    return Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / LIGHT_FILES[name]


def build_zoo_model(name: str, seed: int) -> ModelProto:
    """Load light model ``name`` and give it random, well-scaled weights."""
    path = light_model_path(name)
    if not path.is_file():
        raise FileNotFoundError(
            f"the installed onnx package has no {path.name}; reinstall onnx to get its test data"
        )
    model = onnx.load(str(path))
    inline_constant_of_shape(model)
    reweight(model, np.random.default_rng(seed))
    return model


def inline_constant_of_shape(model: ModelProto) -> None:
    """Turn each ConstantOfShape with a constant shape into an initializer of that shape.

    The initializers are made non-input (IR version 4 semantics), so onnxruntime and qnnc
    see them as weights rather than overridable graph inputs.
    """
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    kept_nodes: list[NodeProto] = []
    new_inits: list[onnx.TensorProto] = []
    for node in g.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in inits:
            shape = numpy_helper.to_array(inits[node.input[0]]).astype(np.int64)
            fill = np.zeros(1, np.float32)
            for a in node.attribute:
                if a.name == "value":
                    fill = numpy_helper.to_array(a.t).ravel()
            arr = np.full(tuple(int(d) for d in shape), fill[0], dtype=fill.dtype)
            new_inits.append(numpy_helper.from_array(arr, node.output[0]))
        else:
            kept_nodes.append(node)
    del g.node[:]
    g.node.extend(kept_nodes)
    g.initializer.extend(new_inits)
    used = {x for n in g.node for x in n.input} | {o.name for o in g.output}
    live = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(live)
    init_names = {t.name for t in g.initializer}
    real_inputs = [i for i in g.input if i.name not in init_names and i.name in used]
    del g.input[:]
    g.input.extend(real_inputs)
    model.ir_version = max(model.ir_version, _IR_VERSION_INITIALIZERS_NOT_INPUTS)
