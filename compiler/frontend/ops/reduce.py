"""Converters of ONNX reduce ops."""

from __future__ import annotations
