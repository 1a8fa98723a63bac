"""qnnc's compiler pipeline: ONNX frontend, passes, public API and CLI.

The Python API in one look::

    import compiler
    model = compiler.compile_model("resnet50.onnx", output_dir="build/resnet50")
    (logits,) = model.run(None, {"input": x})
"""

from compiler.api import (
    CompiledModel,
    compile_model,
    load_compiled,
    load_model,
    pipeline_for,
    qnnc_version,
)
from compiler.errors import (
    ConversionError,
    InputError,
    ModelLoadError,
    QnncError,
    UnsupportedModelError,
)
from compiler.options import CompileOptions
from compiler.profiled import ProfiledModel

__all__ = [
    "CompileOptions",
    "CompiledModel",
    "ConversionError",
    "InputError",
    "ModelLoadError",
    "ProfiledModel",
    "QnncError",
    "UnsupportedModelError",
    "compile_model",
    "load_compiled",
    "load_model",
    "pipeline_for",
    "qnnc_version",
]
