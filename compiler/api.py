"""The public Python API: load an ONNX model, compile it, save and reload the result, run it.

Typical use::

    import numpy as np
    from compiler.api import compile_model, load_compiled

    cm = compile_model("model.onnx", input_shapes={"input": (1, 3, 224, 224)},
                       output_dir="build/model")
    (logits,) = cm.run(None, {"input": np.zeros((1, 3, 224, 224), np.float32)})

    again = load_compiled("build/model")       # the saved folder runs the same way
    (logits2,) = again.run(["logits"], {"input": np.zeros((1, 3, 224, 224), np.float32)})

Without a target, compiled models run on the reference interpreter; ``target="host"``
generates C, builds it into an extension module (cached by content hash) and runs that
natively, behind the same interface; an accelerator target (``"ascend910b"``, ...) builds
the staged C of that chip, which runs here too::

    cm = compile_model("model.onnx", target="host", threads=2, output_dir="build/model")

How to compile is one :class:`compiler.options.CompileOptions` (keyword arguments of
compile_model set its fields). Every mistake a user can make (a bad file, an unsupported op,
feeds of the wrong shape) raises a :class:`compiler.errors.QnncError` subclass with a message
meant to be read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from onnx import ModelProto

from compiler.builds import accelerator_of, build
from compiler.compiled import CompiledModel, load_compiled, qnnc_version
from compiler.errors import QnncError
from compiler.folders import check_output_folder, write_folder_atomically
from compiler.frontend.importer import import_model
from compiler.frontend.loader import check_model, load_onnx
from compiler.interp_kernels import install as _install_interp_kernels
from compiler.options import (
    CALIB_METHODS,
    DEFAULT_CALIB_METHOD,
    PRECISIONS,
    CompileOptions,
    options_from,
)
from compiler.passes import DEFAULT_PIPELINE, PASSES, format_pipeline, run_pipeline
from compiler.passes.quantize import QuantizeOutcome, prequantised
from compiler.pipeline import check_pipeline, effective_pipeline
from compiler.shape_profiles import expand, signature
from ir.domain import check_domain
from ir.graph import Graph
from ir.verifier import verify

_install_interp_kernels()  # the interpreter's C kernels (exact; numpy where unavailable)

ModelLike = str | os.PathLike[str] | ModelProto
InputShapes = Any


def load_model(model: ModelLike, input_shapes: InputShapes | None = None, *,
               max_tensor_bytes: int | None = None) -> Graph:
    """Import an ONNX model (a file path or a ``ModelProto``) into an IR graph.

    ``input_shapes`` fixes inputs with symbolic dimensions, e.g. ``{"input": (1, 3, 224,
    224)}``; ``max_tensor_bytes`` raises the tensor size budget (compiler/budget.py).
    Raises :class:`ModelLoadError` for unreadable/invalid models and
    :class:`UnsupportedModelError` (listing every unsupported op) or :class:`ConversionError`
    for models qnnc cannot import::

        >>> from onnx import TensorProto, helper
        >>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
        >>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
        >>> m = helper.make_model(helper.make_graph(
        ...     [helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]))
        >>> [n.op for n in load_model(m).nodes]
        ['Relu']
    """
    proto = _proto(model, "load_model")
    profiles = expand(input_shapes, signature(proto))
    if len(profiles) > 1:
        raise QnncError(f"load_model imports one shape, but the input shapes given make "
                        f"{len(profiles)} profiles; compile_model compiles several")
    return import_model(proto, profiles[0] if profiles else None,
                        max_tensor_bytes=max_tensor_bytes)


def _proto(model: ModelLike, what: str) -> ModelProto:
    if isinstance(model, ModelProto):
        check_model(model, "the model")
        return model
    if isinstance(model, (str, os.PathLike)):
        return load_onnx(model)
    raise QnncError(f"{what} expects a path to an .onnx file or an onnx.ModelProto, got "
                    f"{type(model).__name__}")


def _source_name(model: ModelLike | Graph) -> str:
    if isinstance(model, (str, os.PathLike)):
        return os.fspath(model)
    if isinstance(model, ModelProto):
        return f"<ModelProto {model.graph.name!r}>"
    return f"<Graph {model.name!r}>"


def pass_names() -> list[str]:
    """Every registered pass name."""
    return sorted(PASSES)


def default_pipeline() -> list[str]:
    """The passes of an f32 compile with no target, by name."""
    return list(DEFAULT_PIPELINE)


def pipeline_for(options: CompileOptions | None = None, **kwargs: Any) -> str:
    """The pipeline a compile with these options runs, as text (what --print-pipeline
    prints)."""
    opts = options_from(options, kwargs)
    opts.check()
    return format_pipeline(effective_pipeline(opts, accelerator_of(opts)))


def compile_model(model: ModelLike | Graph, options: CompileOptions | None = None,
                  **kwargs: Any) -> CompiledModel:
    """Import ``model``, run the pass pipeline (quantising if asked), build the target's code
    and (with ``output_dir``) save the result.

    ``options`` says how (:class:`compiler.options.CompileOptions`, where every field is
    documented); keyword arguments set single fields on top of it, e.g.
    ``compile_model("net.onnx", target="host", precision="int8", calibration="calib.npz")``.
    With an accuracy report or budget the result carries ``accuracy`` and
    ``auto_precision``; on an accelerator target, ``report()``, ``plans()`` and
    ``counters()``::

        cm = compile_model("net.onnx", print_after=["all"],
                           on_print=lambda p, text: print(f"after {p}:\\n{text}"))
    """
    opts = options_from(options, kwargs)
    opts.check()
    if opts.output_dir is not None:  # refused in a second, not after calibration and a build
        check_output_folder(Path(opts.output_dir), opts.force)
    profile = accelerator_of(opts)
    outcome = QuantizeOutcome()
    passes = effective_pipeline(opts, profile, outcome)
    if isinstance(model, Graph):
        graph = model
    else:
        proto = _proto(model, "compile_model")
        sig = signature(proto)
        shapes = expand(opts.input_shapes, sig)
        mixed = (opts.calibration is not None and len(shapes) == 1
                 and any(s.symbolic for s in sig))  # samples may have other shapes
        if len(shapes) > 1 or mixed:
            from compiler.profiled import compile_profiles

            check_pipeline(passes, opts, profile, False)
            return compile_profiles(proto, _source_name(model), shapes, sig, passes, opts,
                                    profile, outcome)
        graph = import_model(proto, shapes[0] if shapes else None,
                             max_tensor_bytes=opts.max_tensor_bytes)
    check_pipeline(passes, opts, profile, prequantised(graph))
    check_domain(graph)
    ran = [p for p in passes if p.name not in opts.disabled_passes]
    after = [p.name for p in ran] if "all" in opts.print_after else list(opts.print_after)
    graph = run_pipeline(graph, passes, print_after=after, disabled=opts.disabled_passes,
                         on_print=opts.on_print)
    verify(graph)
    compiled = CompiledModel(graph, source=_source_name(model),
                             pipeline=[str(p) for p in ran],
                             target=profile.name if profile is not None else opts.target,
                             build=build(graph, opts, profile))
    compiled.profile = profile
    compiled.accuracy, compiled.auto_precision = outcome.accuracy, outcome.auto_precision
    compiled.calibration = outcome.calibration
    if opts.output_dir is not None:
        compiled.save(opts.output_dir, force=opts.force)
    return compiled


__all__ = [
    "CALIB_METHODS", "DEFAULT_CALIB_METHOD", "PRECISIONS", "CompileOptions", "CompiledModel",
    "ModelLike",
    "compile_model", "default_pipeline", "load_compiled", "load_model", "pass_names",
    "pipeline_for", "qnnc_version", "write_folder_atomically",
]
