"""ONNX → IR: loading model files safely and converting them op by op."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from compiler.frontend.importer import import_model
from compiler.frontend.loader import load_onnx
from ir.graph import Graph


def load(
    path: str | os.PathLike[str], input_shapes: Mapping[str, Sequence[int]] | None = None
) -> Graph:
    """Load an ONNX file and convert it to an IR graph."""
    return import_model(load_onnx(path), input_shapes)


__all__ = ["import_model", "load", "load_onnx"]
