"""Converters of ONNX conv ops."""

from __future__ import annotations
