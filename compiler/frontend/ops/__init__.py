"""ONNX op converters, one module per family; importing this registers them all."""

from compiler.frontend.ops import binary, elementwise, shape  # noqa: F401
