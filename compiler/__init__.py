"""qnnc's compiler pipeline: ONNX frontend, passes, public API and CLI.

The Python API in one look::

    import compiler
    model = compiler.compile_model("resnet50.onnx", output_dir="build/resnet50")
    (logits,) = model.run(None, {"input": x})

The names below load on first use, so that `qnnc` (compiler/entry.py) can install its Ctrl-C
handling before numpy, onnx and the passes are imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from compiler.blas_kernels import pin as _pin_blas

_pin_blas()  # before numpy loads (compiler/blas_kernels.py); imports nothing heavy itself

_HOMES = {
    "CompiledModel": "compiler.api",
    "compile_model": "compiler.api",
    "load_compiled": "compiler.api",
    "load_model": "compiler.api",
    "pipeline_for": "compiler.api",
    "qnnc_version": "compiler.api",
    "ConversionError": "compiler.errors",
    "InputError": "compiler.errors",
    "ModelLoadError": "compiler.errors",
    "QnncError": "compiler.errors",
    "UnsupportedModelError": "compiler.errors",
    "CompileOptions": "compiler.options",
    "ProfiledModel": "compiler.profiled",
}

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    """``compiler.compile_model`` and the other API names, and submodules
    (``compiler.passes``), imported when first read."""
    home = _HOMES.get(name)
    if home is not None:
        value = getattr(importlib.import_module(home), name)
        globals()[name] = value
        return value
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module 'compiler' has no attribute {name!r}") from None


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
