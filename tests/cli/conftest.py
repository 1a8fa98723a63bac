"""Shared CLI fixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from compiler.examples import build_example


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """tiny_cnn as tmp_path/tiny.onnx, with 16 N(0, 1) calibration samples in calib.npz."""
    p = tmp_path / "tiny.onnx"
    onnx.save(build_example("tiny_cnn"), p)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "calib.npz",
             input=rng.standard_normal((16, 1, 1, 8, 8)).astype(np.float32))
    return p
