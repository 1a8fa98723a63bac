"""Converters of ONNX ops that become constants or views at import:
Shape, Size, Constant, ConstantOfShape, Range, Dropout."""

from __future__ import annotations
