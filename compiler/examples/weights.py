"""Random, well-scaled parameter tensors shared by every example builder.

The examples exist to exercise calibration and quantisation, so their weights must produce
activations of order one all the way through the network: a network whose activations
explode or collapse says nothing about INT8 accuracy. These helpers draw the classic
initialisations (He for layers followed by ReLU-like activations, Xavier/Glorot for linear
paths such as attention) and inference-time BatchNorm statistics near identity.
"""

from __future__ import annotations

import numpy as np


def he_normal(
    rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, gain: float = 2.0
) -> np.ndarray:
    """N(0, gain/fan_in): He/Kaiming normal (gain 2 preserves the second moment through ReLU)."""
    std = np.sqrt(gain / max(fan_in, 1))
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(std)


def xavier_normal(
    rng: np.random.Generator, fan_in: int, fan_out: int, gain: float = 1.0
) -> np.ndarray:
    """N(0, 2·gain²/(fan_in+fan_out)) as a [fan_in, fan_out] matrix (MatMul's B layout)."""
    std = gain * np.sqrt(2.0 / (fan_in + fan_out))
    return rng.standard_normal((fan_in, fan_out), dtype=np.float32) * np.float32(std)


def small(rng: np.random.Generator, shape: tuple[int, ...], std: float = 0.01) -> np.ndarray:
    """Small zero-mean noise: biases, BatchNorm shifts and running means."""
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(std)


def near_one(rng: np.random.Generator, shape: tuple[int, ...], std: float = 0.05) -> np.ndarray:
    """Positive values close to 1: BatchNorm/LayerNorm scales and running variances."""
    return np.exp(rng.standard_normal(shape, dtype=np.float32) * np.float32(std))


def conv_fan_in(weight_shape: tuple[int, ...]) -> int:
    """Inputs feeding one output of a conv with weight [M, C/group, k...]."""
    return int(np.prod(weight_shape[1:]))
