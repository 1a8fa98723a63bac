"""Converters of ONNX quant ops."""

from __future__ import annotations
