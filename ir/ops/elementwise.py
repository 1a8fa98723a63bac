"""Elementwise unary ops: activations and math functions."""

from __future__ import annotations

import numpy as np

from ir.ops.common import unary

unary("Relu", lambda x, a: np.maximum(x, 0), "y = max(x, 0)", dtypes="numeric")
