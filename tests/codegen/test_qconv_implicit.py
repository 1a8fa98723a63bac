"""Stride-1 convolutions read straight from byte-quad planes (targets/c/qconv_implicit.py,
csrc/qnnc_int8_implicit.h) against the reference interpreter, bit for bit.

The path exists only in AVX-512 VNNI builds, so the differential tests run only on a CPU
that has it (skipped elsewhere, saying so). They lower MIN_GRID_USE so that small planes
take the path too, and check from the C that they did: channel counts that are not a
multiple of 4, u8 and i8 inputs and outputs, per-tensor and per-channel weights with zero
points, groups, dilation, asymmetric and zero padding, 1-D, kernels one column wide (the grid
drops nothing), a last weight tile of fewer than six rows, multipliers of 1 and above (the
per-run store), epilogue tables, a fused residual add, and the grid shared out among threads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from compiler.passes import run_pipeline
from ir.build import make_node
from ir.interpreter import run as interpret
from ir.types import DType
from targets.c import qconv_implicit
from targets.c.ops_linalg import conv_geometry
from targets.host.build import BuildOptions
from targets.host.cpu import detect_level
from tests.codegen.harness import run_c
from tests.codegen.test_epilogue_lut import big_multiplier, lut
from tests.codegen.test_ops_int8 import feeds_for, graph, out_attrs, rand_q, weights

VNNI = pytest.mark.skipif(detect_level() != "avx512vnni",
                          reason="this CPU has no AVX-512 VNNI: the quad-plane path is built "
                                 "only for it")

#: (input shape, weight shape, pads, group, dilations)
CASES: list[tuple[tuple[int, ...], tuple[int, ...], list[int], int, list[int]]] = [
    ((1, 3, 9, 9), (8, 3, 3, 3), [1, 1, 1, 1], 1, [1, 1]),
    ((1, 64, 9, 9), (70, 64, 3, 3), [1, 1, 1, 1], 1, [1, 1]),
    ((2, 5, 10, 7), (7, 5, 3, 2), [0, 1, 2, 0], 1, [1, 1]),
    ((1, 3, 12, 12), (5, 3, 3, 3), [2, 2, 2, 2], 1, [2, 2]),
    ((1, 8, 6, 6), (12, 2, 3, 3), [1, 1, 1, 1], 4, [1, 1]),
    ((1, 16, 40, 37), (16, 16, 3, 3), [1, 1, 1, 1], 1, [1, 1]),
    ((1, 6, 20), (7, 6, 5), [2, 1], 1, [1]),
    ((1, 9, 11, 13), (10, 9, 3, 1), [1, 0, 1, 0], 1, [1, 1]),
    ((1, 7, 6, 5), (4, 7, 5, 5), [0, 0, 0, 0], 1, [1, 1]),
    ((1, 12, 3, 30), (9, 12, 1, 3), [0, 1, 0, 1], 1, [1, 1]),
]


@pytest.fixture
def whole_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every stride-1 geometry takes the path, however much of its grid it drops."""
    monkeypatch.setattr(qconv_implicit, "MIN_GRID_USE", 0.0)


def conv(case: int, xdt: DType, ydt: DType, *, act: str = "relu", zw: bool = False,
         per_channel: bool = True, seed: int = 0, extra: dict[str, Any] | None = None,
         table: bool = False):
    x, w, pads, group, dil = CASES[case]
    rng = np.random.default_rng(1000 * case + seed)
    attrs = {"strides": [1] * len(dil), "pads": pads, "group": group, "dilations": dil,
             **out_attrs(rng, ydt, act), **(extra or {})}
    bias = (rng.integers(-3000, 3000, w[0]).astype(np.int32), None)
    ins = [rand_q(rng, x, xdt), weights(rng, w, per_channel, zw=zw, amax=124), bias]
    if table:
        ins.append(lut(rng, ydt))
    return graph("QConv", ins, attrs)


def exact(g, tmp: Path, threads: int = 1, seed: int = 0) -> str:
    """Run g's C (AVX-512 VNNI) against the interpreter; the model's C source."""
    feeds = feeds_for(g, seed)
    want = interpret(g, feeds)
    got = run_c(g, feeds, tmp, BuildOptions(cpu="avx512vnni", threads=threads, werror=True))
    for name, w in want.items():
        np.testing.assert_array_equal(got[name], w, err_msg=name)
    (source,) = [f.read_text() for f in tmp.rglob("model.c")]
    return source


@VNNI
@pytest.mark.parametrize("xdt,ydt", [(DType.u8, DType.i8), (DType.i8, DType.u8)])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_quad_planes_match_the_interpreter(case: int, xdt: DType, ydt: DType, tmp_path: Path,
                                           whole_grid: None) -> None:
    g = conv(case, xdt, ydt, act=["none", "relu", "relu6"][case % 3], zw=case % 2 == 1,
             per_channel=case % 4 != 3)
    assert "qnnc_q8u_implicit(" in exact(g, tmp_path)


@VNNI
@pytest.mark.parametrize("case", [0, 1, 5, 8])
def test_multipliers_of_one_and_above_are_not_taken(case: int, tmp_path: Path,
                                                    whole_grid: None) -> None:
    """The path requantises with the fused epilogue only (every multiplier below 1): the
    others keep the im2col path, still exact."""
    g = conv(case, DType.u8, DType.u8, extra=big_multiplier({}))
    assert "qnnc_q8u_implicit(" not in exact(g, tmp_path)


@VNNI
@pytest.mark.parametrize("ydt", [DType.u8, DType.i8])
@pytest.mark.parametrize("case", [1, 2, 5])
def test_epilogue_tables(case: int, ydt: DType, tmp_path: Path, whole_grid: None,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A table fused into the layer goes through the per-run store (with VBMI's permutes
    where the CPU has them, and without)."""
    for vbmi in ("1", "0"):
        monkeypatch.setenv("QNNC_VBMI", vbmi)
        g = conv(case, DType.u8, ydt, table=True)
        assert "qnnc_q8u_implicit(" in exact(g, tmp_path / vbmi)


@VNNI
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("conv_first", [True, False])
@pytest.mark.parametrize("case", [1, 5, 9])
def test_residual_add_in_the_epilogue(case: int, conv_first: bool, threads: int,
                                      tmp_path: Path, whole_grid: None,
                                      every_layer_threaded: None) -> None:
    """A QAdd fused into the layer adds each tile's outputs of the grid part just stored."""
    g = conv(case, DType.u8, DType.u8)
    y = g.outputs[0]
    rng = np.random.default_rng(case)
    r = g.add_input("r", rand_q(rng, y.type.shape, DType.u8))
    add = make_node(g, "QAdd", [y, r] if conv_first else [r, y],
                    out_attrs(rng, DType.u8, "relu"), name="add")
    g.outputs = list(add.outputs)
    g = run_pipeline(g, "fuse-epilogue")
    assert g.nodes[0].attrs.get("epilogue") in ("a", "b")
    assert "qnnc_q8u_implicit(" in exact(g, tmp_path, threads=threads, seed=case)


@VNNI
@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("case", [1, 5, 9])
def test_threads_share_the_grid(case: int, threads: int, tmp_path: Path, whole_grid: None,
                                every_layer_threaded: None) -> None:
    """With threads the grid is cut into parts of whole steps (or, for a small grid, the
    weight tiles are shared out): the same integers either way."""
    g = conv(case, DType.i8, DType.u8)
    source = exact(g, tmp_path, threads=threads)
    assert "qnnc_q8u_implicit(" in source
    nq = qconv_implicit.grid(conv_geometry_of(g))[2]
    split = qconv_implicit.parts(nq, threads)[0] > 1
    assert ("for (int part = 0;" in source) == split


def test_weights_reordered_to_channel_quads_per_tap() -> None:
    """k = c * taps + tap becomes (c4, tap, c % 4), channels padded with zeros to 4."""
    w = np.arange(2 * 5 * 3).reshape(2, 15) + 1  # 2 rows, 5 channels, 3 taps
    got = qconv_implicit.tap_order(w, 5, 3).reshape(2, 2, 3, 4)
    for row in range(2):
        for c in range(8):
            for t in range(3):
                want = w[row, c * 3 + t] if c < 5 else 0
                assert got[row, c // 4, t, c % 4] == want


def test_quad_offsets_follow_the_taps_and_planes() -> None:
    d = {"KH": 3, "KW": 3, "DH": 2, "DW": 1, "OH": 10, "OW": 12, "Cg": 6}
    hp, wp, nq = qconv_implicit.grid(d)
    assert (hp, wp, nq) == (14, 14, 9 * 14 + 12)
    ps = qconv_implicit.plane_stride(d)
    assert ps % 64 == 0 and ps >= 4 * hp * wp
    off = qconv_implicit.quad_offsets(d)
    assert len(off) == 2 * 9
    assert off[0] == 0 and off[1] == 4 and off[3] == 4 * 2 * wp and off[9] == ps
    assert off[17] == ps + 4 * (2 * 2 * wp + 2)


@pytest.mark.parametrize("hw,c,taken", [(56, 64, True), (28, 128, True), (14, 256, False),
                                        (7, 512, False), (80, 24, True)])
def test_grid_use_picks_the_path(hw: int, c: int, taken: bool) -> None:
    """ResNet-50's 3x3 layers: the grid's dropped columns cost more than im2col below 14x14."""
    g = graph("QConv", [rand_q(np.random.default_rng(0), (1, c, hw, hw), DType.u8),
                        weights(np.random.default_rng(1), (c, c, 3, 3), True), None],
              {"strides": [1, 1], "pads": [1, 1, 1, 1], "group": 1, "dilations": [1, 1],
               **out_attrs(np.random.default_rng(2), DType.u8, "relu")})
    assert qconv_implicit.fits(conv_geometry_of(g)) is taken


def conv_geometry_of(g) -> dict[str, int]:
    d = conv_geometry(g.nodes[0])
    d["P"] = d["OH"] * d["OW"]
    return d
