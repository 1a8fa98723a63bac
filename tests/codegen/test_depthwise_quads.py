"""Depthwise convolutions on byte quads (csrc/qnnc_int8.h qnnc_dw_quad_row and
qnnc_dw_quad_taps, targets/c/ops_quant_conv.py): in a build with vpdpbusd, a depthwise QConv
with unit dilations and a column stride of 1 or 2 reads its padded rows as quads of bytes and
takes four taps per vpdpbusd. Bit-exact with the interpreter over the geometries trained
models have (3x3, 5x5 and 7x7 kernels, strides 1 and 2, rows shorter and longer than a block,
odd widths, per-row and whole-plane stores, a table in the epilogue), u8 and i8 inputs (i8
codes flipped to bytes), several images, two threads; and the cases that must keep the int16
taps instead (dilation 2, a column stride of 3, centred weights outside int8)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ir.graph import Graph
from ir.interpreter import run as interpret
from ir.types import DType, QuantParams
from targets.host.build import BuildOptions
from targets.host.cpu import detect_level
from tests.codegen.harness import c_runner
from tests.codegen.test_epilogue_lut import lut
from tests.codegen.test_ops_int8 import feeds_for, graph, out_attrs, rand_q, weights

pytestmark = pytest.mark.skipif(
    detect_level() != "avx512vnni",
    reason="this CPU has no AVX-512 VNNI: the byte-quad depthwise path is built only for it")

#: name -> (input shape, kernel, strides, pads [top, left, bottom, right], dilations)
CASES: dict[str, tuple[tuple[int, ...], tuple[int, int], list[int], list[int], list[int]]] = {
    "3x3_s1_rows": ((1, 5, 70, 70), (3, 3), [1, 1], [1, 1, 1, 1], [1, 1]),
    "3x3_s1_plane": ((1, 7, 13, 21), (3, 3), [1, 1], [1, 1, 1, 1], [1, 1]),
    "3x3_s2_odd": ((1, 6, 41, 39), (3, 3), [2, 2], [1, 1, 1, 1], [1, 1]),
    "3x3_s2_rows": ((2, 4, 80, 97), (3, 3), [2, 2], [0, 1, 1, 0], [1, 1]),
    "5x5_s1": ((1, 6, 20, 20), (5, 5), [1, 1], [2, 2, 2, 2], [1, 1]),
    "5x5_s2": ((1, 5, 23, 35), (5, 5), [2, 2], [2, 2, 2, 2], [1, 1]),
    "7x7_s1": ((1, 3, 17, 33), (7, 7), [1, 1], [3, 3, 3, 3], [1, 1]),
    "3x5_s2x1": ((1, 4, 19, 18), (3, 5), [2, 1], [1, 2, 1, 2], [1, 1]),
    "1x4_no_pad": ((1, 4, 6, 40), (1, 4), [1, 1], [0, 0, 0, 0], [1, 1]),
    "3x3_one_column": ((1, 3, 9, 1), (3, 3), [1, 1], [1, 1, 1, 1], [1, 1]),
    "1x11_s2": ((1, 3, 5, 61), (1, 11), [1, 2], [0, 5, 0, 5], [1, 1]),  # three quads a row
}
#: geometries the quad path does not take (the int16 taps run them)
OTHERS = {
    "dilation_2": ((1, 4, 16, 16), (3, 3), [1, 1], [2, 2, 2, 2], [2, 2]),
    "stride_3": ((1, 4, 16, 16), (3, 3), [3, 3], [1, 1, 1, 1], [1, 1]),
}


def conv_graph(case: tuple, xdtype: DType, rng: np.random.Generator, *, table: bool = False,
               wide_weights: bool = False) -> Graph:
    shape, kernel, strides, pads, dil = case
    c = shape[1]
    w, q = weights(rng, (c, 1, *kernel), True)
    if wide_weights:  # channel 0's zero point takes its centred weight 127 to 147
        w[0].flat[0] = 127
        q = QuantParams(q.scale, (-20,) + tuple(q.zero_point[1:]), 0)
    attrs: dict[str, Any] = {"strides": strides, "pads": pads, "dilations": dil, "group": c,
                             **out_attrs(rng, DType.u8, "relu")}
    bias = (rng.integers(-3000, 3000, c).astype(np.int32), None)
    ins: list = [rand_q(rng, shape, xdtype), (w, q), bias]
    if table:
        ins.append(lut(rng, DType.u8))
    return graph("QConv", ins, attrs)


def build_and_check(g: Graph, folder: Path, threads: int = 1) -> str:
    """Build ``g`` in C (avx512vnni) once and hold it to the interpreter on two inputs, bit
    for bit; the generated model.c."""
    run = c_runner(g, folder, BuildOptions(cpu="avx512vnni", werror=True, threads=threads))
    for seed in (0, 1):
        feeds = feeds_for(g, seed)
        want, got = interpret(g, feeds), run(feeds)
        for name, w in want.items():
            np.testing.assert_array_equal(got[name], w, err_msg=name)
    return (folder / "model.c").read_text()


@pytest.mark.parametrize("xdtype", [DType.u8, DType.i8])
@pytest.mark.parametrize("case", sorted(CASES))
def test_quad_taps_exact(case: str, xdtype: DType, tmp_path: Path) -> None:
    rng = np.random.default_rng(sorted(CASES).index(case) * 2 + (xdtype is DType.i8))
    c_src = build_and_check(conv_graph(CASES[case], xdtype, rng), tmp_path)
    assert "qnnc_dw_quad_taps(" in c_src


@pytest.mark.parametrize("vbmi", ["auto", "off"])
@pytest.mark.parametrize("case", ["3x3_s1_rows", "5x5_s1", "3x3_s2_odd"])
def test_quad_taps_with_table(case: str, vbmi: str, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The table looked up in registers before the store (qnnc_q8_store_lut with VBMI) and,
    with QNNC_VBMI=0, after it."""
    if vbmi == "off":
        monkeypatch.setenv("QNNC_VBMI", "0")
    rng = np.random.default_rng(40 + sorted(CASES).index(case))
    c_src = build_and_check(conv_graph(CASES[case], DType.u8, rng, table=True), tmp_path)
    assert "qnnc_dw_quad_taps(" in c_src and "qnnc_q8_store_lut(" in c_src


def test_quad_taps_two_threads(tmp_path: Path) -> None:
    rng = np.random.default_rng(50)
    c_src = build_and_check(conv_graph(CASES["3x3_s2_rows"], DType.i8, rng), tmp_path,
                            threads=2)
    assert "qnnc_dw_quad_taps(" in c_src


@pytest.mark.parametrize("case", sorted(OTHERS))
def test_other_geometries_keep_int16_taps(case: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(60 + sorted(OTHERS).index(case))
    c_src = build_and_check(conv_graph(OTHERS[case], DType.u8, rng), tmp_path)
    assert "qnnc_dw_quad_taps(" not in c_src and "qnnc_dw_taps(" in c_src


def test_weights_outside_int8_keep_int16_taps(tmp_path: Path) -> None:
    rng = np.random.default_rng(70)
    g = conv_graph(CASES["3x3_s1_plane"], DType.u8, rng, wide_weights=True)
    c_src = build_and_check(g, tmp_path)
    assert "qnnc_dw_quad_taps(" not in c_src and "qnnc_dw_taps(" in c_src
