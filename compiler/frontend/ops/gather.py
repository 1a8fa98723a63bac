"""Converters of ONNX gather ops."""

from __future__ import annotations
