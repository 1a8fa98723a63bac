"""Compile for an accelerator only as far as its cost model: the passes `qnnc compile
--target T` runs (import, quantise, layout, tiling), without generating or building C. For
questions about modelled latency alone (benchmarks, tests over many models and targets)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from compiler.builds import accelerator_of
from compiler.errors import QnncError
from compiler.frontend.importer import import_model
from compiler.options import CompileOptions
from compiler.passes import run_pipeline
from compiler.passes.quantize import QuantizeOutcome
from compiler.pipeline import effective_pipeline
from ir.graph import Graph
from targets.profiles.schema import Profile
from targets.staged.plans import plans_of
from targets.tiling import TilePlans


def model_only(model: Any, target: str, calibration: Any,
               input_shapes: Mapping[str, Sequence[int]] | None = None
               ) -> tuple[Graph, TilePlans, Profile]:
    """The INT8 graph of ``model`` (an ONNX ModelProto or path) tiled for ``target``, its
    tile plans with every layer's modelled cost, and the target's profile."""
    opts = CompileOptions(target=target, precision="int8", calibration=calibration)
    prof = accelerator_of(opts)
    if prof is None:
        raise QnncError(f"{target!r} is not an accelerator target; its latency is measured, "
                        "not modelled")
    shapes = {k: tuple(v) for k, v in input_shapes.items()} if input_shapes else None
    graph = run_pipeline(import_model(model, shapes),
                         effective_pipeline(opts, prof, QuantizeOutcome()))
    return graph, plans_of(graph, prof), prof
