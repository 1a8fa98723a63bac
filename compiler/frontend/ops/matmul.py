"""Converters of ONNX matmul ops."""

from __future__ import annotations
