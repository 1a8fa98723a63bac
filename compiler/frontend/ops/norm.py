"""Converters of ONNX norm ops."""

from __future__ import annotations
