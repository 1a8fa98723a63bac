"""The INT8 GEMM paths of csrc/qnnc_int8.h and qnnc_int8_u8s8.h, each forced by a layer shape,
bit-exact with the reference interpreter for --cpu generic, avx2 and, on a CPU that has it,
avx512vnni (where every int8 weight takes the vpdpbusd u8 tile; compiled everywhere).

test_ops_int8.py covers the op semantics; these shapes are chosen to reach every branch of
the fast paths, each with full-range weights (the int16 pair kernel) and with weights the u8 x
s8 kernel takes: direct 1x1 packing (no im2col) with full and partial 16-column panels and
several L2 chunks, im2col from zero-padded plane copies for output rows of up to 64 (strides
1, 2 and 3, padding on every side) and in row segments for longer rows (the vectorised
stride-2 gather with padding at both ends), odd K (the zero row of the last pair), batch-1
and small-row fully connected layers, run-time operands with zero points, and depthwise
convolutions whose stride splits the padded input into column phases.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ir.interpreter import run as interpret
from ir.types import DType, QuantParams
from targets.host.build import BuildOptions, build_c_library
from targets.host.cpu import is_x86_64
from tests.codegen.harness import run_c
from tests.codegen.test_ops_int8 import (
    CPUS,
    GEMM_CPUS,
    check_exact,
    feeds_for,
    graph,
    out_attrs,
    rand_q,
    weights,
)


@pytest.fixture(autouse=True)
def packing_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the packing paths these shapes are chosen for in AVX-512 VNNI builds too, which
    read stride-1 convolutions from quad planes where they can (test_qconv_implicit.py)."""
    monkeypatch.setattr("targets.c.qconv_implicit.MIN_GRID_USE", 2.0)


CONVS = {
    # direct 1x1: P = 3136 spans several chunks; P = 49 ends in a panel of one column (on
    # VNNI in the k loop of the panel before it), with an odd count of k quads; odd K
    "direct_chunks": dict(x=(1, 96, 56, 56), w=(40, 96, 1, 1), s=[1, 1], p=[0, 0, 0, 0]),
    "direct_tail": dict(x=(1, 33, 7, 7), w=(19, 33, 1, 1), s=[1, 1], p=[0, 0, 0, 0]),
    # last panels of at most 8 columns (the ymm tile on VNNI): P = 4 alone, P = 40 = 32 + 8
    "tail_4": dict(x=(1, 16, 2, 2), w=(7, 16, 1, 1), s=[1, 1], p=[0, 0, 0, 0]),
    "tail_8": dict(x=(1, 12, 5, 8), w=(13, 12, 1, 1), s=[1, 1], p=[0, 0, 0, 0]),
    # P = 20 = 16 + 4: a panel and a few columns (one k loop on VNNI, two tiles on AVX2)
    "tail_20": dict(x=(1, 10, 4, 5), w=(9, 10, 1, 1), s=[1, 1], p=[0, 0, 0, 0]),
    # P = 33 = 32 + 1: a pair of panels, then a panel of one column alone
    "tail_1": dict(x=(1, 21, 3, 11), w=(11, 21, 1, 1), s=[1, 1], p=[0, 0, 0, 0]),
    # stride 2: 1x1 (downsampling shortcut) and 3x3 with padding, OW >= 17 for the SIMD gather
    "s2_1x1": dict(x=(1, 24, 70, 70), w=(20, 24, 1, 1), s=[2, 2], p=[0, 0, 0, 0]),
    "s2_3x3": dict(x=(1, 5, 75, 77), w=(9, 5, 3, 3), s=[2, 2], p=[1, 1, 1, 1]),
    "s2_7x7": dict(x=(1, 3, 64, 66), w=(8, 3, 7, 7), s=[2, 2], p=[3, 3, 2, 2]),
    # stride 1 with padding, many channels (long K), output channels not a multiple of 6 (a
    # last weight tile of one row; others here end in 2, 3 or 4 rows: the few-row VNNI tile)
    "s1_3x3": dict(x=(1, 70, 20, 21), w=(37, 70, 3, 3), s=[1, 1], p=[1, 1, 1, 1]),
    # short output rows (im2col from padded planes), padded on every side
    "padded_7x7": dict(x=(1, 64, 7, 7), w=(20, 64, 3, 3), s=[1, 1], p=[1, 1, 1, 1]),
    "s3_asym": dict(x=(1, 4, 40, 61), w=(6, 4, 2, 5), s=[1, 3], p=[0, 2, 1, 0]),
    # rows longer than 64: im2col in row segments, stride 1 and 2 (the SIMD stride-2 gather)
    "wide_s1": dict(x=(1, 4, 10, 90), w=(6, 4, 3, 3), s=[1, 1], p=[1, 1, 1, 1]),
    "wide_s2": dict(x=(1, 3, 20, 150), w=(8, 3, 3, 3), s=[2, 2], p=[1, 1, 0, 1]),
}


@pytest.mark.parametrize("amax", [127, 64], ids=["full_int8", "pair_rule"])
@pytest.mark.parametrize("cpu", GEMM_CPUS)
@pytest.mark.parametrize("xdt", [DType.u8, DType.i8])
@pytest.mark.parametrize("case", sorted(CONVS))
def test_qconv_paths(case: str, xdt: DType, cpu: str, amax: int, tmp_path: Path) -> None:
    kw = CONVS[case]
    rng = np.random.default_rng(sorted(CONVS).index(case))
    attrs = {"strides": kw["s"], "pads": kw["p"], "group": 1, "dilations": [1, 1],
             **out_attrs(rng, DType.u8, "relu")}
    bias = (rng.integers(-3000, 3000, kw["w"][0]).astype(np.int32), None)
    g = graph("QConv", [rand_q(rng, kw["x"], xdt), weights(rng, kw["w"], True, amax=amax),
                        bias], attrs)
    check_exact(g, tmp_path, cpu)
    (source,) = [f.read_text() for f in tmp_path.rglob("model.c")]
    # full-range weights take the int16 pair kernel, except where vpdpbusd takes any int8
    assert ("u8 quads" in source) == (amax == 64 or cpu == "avx512vnni")


@pytest.mark.parametrize("cpu", GEMM_CPUS)
@pytest.mark.parametrize("per_channel", [True, False], ids=["per_channel", "per_tensor"])
@pytest.mark.parametrize("act", ["none", "relu6"])
@pytest.mark.parametrize("ydt", [DType.u8, DType.i8])
def test_whole_tiles_requantised_in_registers(ydt: DType, act: str, per_channel: bool,
                                              cpu: str, tmp_path: Path) -> None:
    """Whole six-row tiles whose rows all take the high-half form are requantised from the
    accumulator registers (AVX-512 VNNI: 32 columns a tile, qnnc_q8u_tile2_st_vnni; AVX2:
    16, qnnc_q8u_tile_st_avx2), the rest through the int32 tile. 19 channels: per channel,
    the first weight tile's rows all take the registers; the second has a channel whose
    multiplier is above 1/2 (n = 31), the third one whose multiplier is 2^-24 (n = 54, past
    the n that the register epilogue's rounding term can carry the zero point for), and each
    of those sends its tile to the general store, as the last tile's one row and a
    per-tensor epilogue go there. 80 positions: two whole VNNI tiles and a half, five AVX2
    panels. Every output type and clamp; the weights keep the pair rule, so that AVX2 takes
    the u8 tile too."""
    rng = np.random.default_rng(77)
    w, wq = weights(rng, (19, 40, 1, 1), per_channel, amax=64)
    x = rand_q(rng, (1, 40, 8, 10), DType.u8)
    attrs = {"strides": [1, 1], "pads": [0, 0, 0, 0], "group": 1, "dilations": [1, 1],
             **out_attrs(rng, ydt, act)}
    if per_channel:  # channel 8's input * weight scale over the output's is 0.7: n = 31
        scales = list(wq.scale)
        scales[8] = 0.7 * attrs["out_scale"] / x.quant.scale[0]
        scales[14] = 2.0**-24 * attrs["out_scale"] / x.quant.scale[0]  # n = 54
        wq = QuantParams(tuple(scales), wq.zero_point, wq.axis)
    bias = (rng.integers(-3000, 3000, 19).astype(np.int32), None)
    check_exact(graph("QConv", [x, (w, wq), bias], attrs), tmp_path, cpu)
    (source,) = [f.read_text() for f in tmp_path.rglob("model.c")]
    assert "u8 quads" in source


DEPTHWISE = {
    # the stride's column phases: stride 2 with odd and even widths and one-sided padding,
    # stride 3 with dilation (taps land in different phases), a 1-D depthwise
    "s2_pad": dict(x=(1, 7, 15, 22), w=(7, 1, 3, 3), s=[2, 2], p=[1, 1, 1, 1], d=[1, 1]),
    "s2_asym": dict(x=(1, 5, 16, 17), w=(5, 1, 5, 5), s=[2, 2], p=[0, 2, 1, 1], d=[1, 1]),
    "s3_dil": dict(x=(1, 3, 20, 23), w=(3, 1, 3, 3), s=[3, 3], p=[2, 2, 2, 2], d=[2, 2]),
    "s1_1d": dict(x=(2, 4, 30), w=(4, 1, 7), s=[1], p=[3, 3], d=[1]),
    "s2_1d": dict(x=(1, 4, 31), w=(4, 1, 4), s=[2], p=[0, 1], d=[1]),
    # stride 1, short rows: taps over the flattened padded plane (det's 10x10 5x5 layers),
    # with dilation and one-sided padding
    "s1_flat": dict(x=(1, 6, 10, 10), w=(6, 1, 5, 5), s=[1, 1], p=[2, 2, 2, 2], d=[1, 1]),
    "s1_flat_dil": dict(x=(1, 3, 9, 12), w=(3, 1, 3, 3), s=[1, 1], p=[2, 0, 1, 2], d=[2, 2]),
}


@pytest.mark.parametrize("cpu", CPUS)
@pytest.mark.parametrize("xdt", [DType.u8, DType.i8])
@pytest.mark.parametrize("case", sorted(DEPTHWISE))
def test_depthwise_paths(case: str, xdt: DType, cpu: str, tmp_path: Path) -> None:
    kw = DEPTHWISE[case]
    rng = np.random.default_rng(40 + sorted(DEPTHWISE).index(case))
    m = kw["w"][0]
    attrs = {"strides": kw["s"], "pads": kw["p"], "group": m, "dilations": kw["d"],
             **out_attrs(rng, DType.i8, "relu6")}
    bias = (rng.integers(-3000, 3000, m).astype(np.int32), None)
    g = graph("QConv", [rand_q(rng, kw["x"], xdt), weights(rng, kw["w"], True), bias], attrs)
    check_exact(g, tmp_path, cpu)


@pytest.mark.parametrize("cpu", GEMM_CPUS)
@pytest.mark.parametrize("xshape,n", [((1, 2048), 1000), ((1, 1, 385), 70), ((3, 130), 9),
                                      ((64, 384), 36), ((17, 31), 5)])
def test_qlinear_paths(xshape: tuple, n: int, cpu: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(n)
    for xdt in (DType.u8, DType.i8):
        w = weights(rng, (n, xshape[-1]), per_channel=True)
        b = (rng.integers(-5000, 5000, n).astype(np.int32), None)
        g = graph("QLinear", [rand_q(rng, xshape, xdt), w, b], out_attrs(rng, DType.u8))
        check_exact(g, tmp_path, cpu)


@pytest.mark.parametrize("cpu", CPUS)
@pytest.mark.parametrize("sa,sb", [((1, 12, 64, 33), (1, 12, 33, 64)), ((2, 40, 64), (64, 35))])
def test_qmatmul_paths(sa: tuple, sb: tuple, cpu: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(len(sa))
    for da, db in ((DType.u8, DType.u8), (DType.i8, DType.u8)):
        g = graph("QMatMul", [rand_q(rng, sa, da), rand_q(rng, sb, db)], out_attrs(rng, DType.u8))
        check_exact(g, tmp_path, cpu)


@pytest.mark.skipif(not is_x86_64(), reason="AVX-512 VNNI is an x86-64 level")
@pytest.mark.parametrize("case", ["direct_tail", "s2_3x3"])
def test_vnni_build_is_warning_free(case: str, tmp_path: Path) -> None:
    """Every fast path also compiles for AVX-512 VNNI with -Wall -Werror (it may not run)."""
    kw = CONVS[case]
    rng = np.random.default_rng(3)
    attrs = {"strides": kw["s"], "pads": kw["p"], "group": 1, "dilations": [1, 1],
             **out_attrs(rng, DType.u8)}
    g = graph("QConv", [rand_q(rng, kw["x"], DType.u8), weights(rng, kw["w"], True), None],
              attrs)
    assert build_c_library(g, tmp_path / case, BuildOptions(cpu="avx512vnni",
                                                             werror=True)).is_file()


def test_gemv_threads_give_the_same_integers(tmp_path: Path,
                                            every_layer_threaded: None) -> None:
    """The batch-1 fully connected path splits its weight tiles over OpenMP threads."""
    rng = np.random.default_rng(5)
    w = weights(rng, (45, 77), per_channel=True)
    g = graph("QLinear", [rand_q(rng, (2, 77), DType.u8), w, None], out_attrs(rng, DType.i8))
    feeds = feeds_for(g, 1)
    want = interpret(g, feeds)
    got = run_c(g, feeds, tmp_path / "omp", BuildOptions(cpu=CPUS[-1], threads=2, werror=True))
    for name, v in want.items():
        np.testing.assert_array_equal(got[name], v)


@pytest.mark.parametrize("cpu", CPUS)
@pytest.mark.parametrize("shapes", [((2, 24, 9, 11), (1, 24, 1, 1)), ((1, 24, 1, 1), (1, 24, 7, 5)),
                                    ((3, 70), (1,)), ((1, 5, 33), (1, 5, 1))])
def test_qmul_by_one_code_per_run(shapes: tuple, cpu: str, tmp_path: Path) -> None:
    """A QMul whose one operand is constant along the other's innermost run (a per-channel
    scale over a feature map): the vectorised runs, for both operand orders, u8 and i8, and
    a multiplier above 1 (the scalar path); with a batch of 2 the broadcast is not one run
    per row, and the general loop must give the same integers."""
    rng = np.random.default_rng(len(shapes[0]) + shapes[0][-1])
    for da, db, big in ((DType.u8, DType.u8, False), (DType.i8, DType.u8, False),
                        (DType.u8, DType.i8, True)):
        attrs = out_attrs(rng, DType.u8 if da is DType.u8 else DType.i8)
        if big:
            attrs["out_scale"] = 1e-5
        g = graph("QMul", [rand_q(rng, shapes[0], da), rand_q(rng, shapes[1], db)], attrs)
        check_exact(g, tmp_path, cpu)
