"""The ConvTranspose float emitter against the reference interpreter (f32: rtol 1e-4,
atol 1e-5): strides, dilations, groups, crops, output_padding (cells only the bias reaches),
1-D, with and without bias, a weight that is a graph input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ir.types import DType, TensorType
from tests.codegen.harness import check_graph, op_graph


def f32(*shape: int) -> TensorType:
    return TensorType(tuple(shape), DType.f32)


def rnd(*shape: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


CASES = [
    # the PP-OCR det head: 2x2 kernel, stride 2, a per-channel (grouped) upsampling
    dict(x=(1, 4, 5, 6), w=(4, 1, 2, 2), strides=[2, 2], pads=[0, 0, 0, 0], group=4, b=True),
    dict(x=(1, 4, 5, 5), w=(4, 3, 3, 3), strides=[2, 2], pads=[1, 1, 1, 1], group=1,
         output_padding=[1, 1], b=True),
    dict(x=(2, 6, 4, 3), w=(6, 2, 2, 3), strides=[2, 1], pads=[0, 1, 1, 0], group=3,
         dilations=[1, 2], b=False),
    dict(x=(1, 3, 7), w=(3, 4, 4), strides=[3], pads=[2, 0], group=1, output_padding=[2],
         b=True),
]


@pytest.mark.parametrize("kw", CASES)
def test_conv_transpose(kw: dict, tmp_path: Path) -> None:
    nsp = len(kw["x"]) - 2
    attrs = {"strides": kw["strides"], "pads": kw["pads"], "group": kw["group"],
             "dilations": kw.get("dilations", [1] * nsp),
             "output_padding": kw.get("output_padding", [0] * nsp)}
    m = kw["w"][1] * kw["group"]
    b = rnd(m, seed=3) if kw["b"] else None
    check_graph(op_graph("ConvTranspose", [f32(*kw["x"]), rnd(*kw["w"], seed=2), b], attrs),
                tmp_path)


def test_conv_transpose_runtime_weight(tmp_path: Path) -> None:
    attrs = {"strides": [2, 2], "pads": [1, 0, 0, 1], "group": 1, "dilations": [1, 1],
             "output_padding": [0, 0]}
    check_graph(op_graph("ConvTranspose", [f32(1, 3, 4, 4), f32(3, 2, 3, 3)], attrs), tmp_path)
