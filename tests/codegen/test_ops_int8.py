"""Per-op INT8 emitters against the reference interpreter: integer results must be bit-exact.

Random scales and zero points, u8 and i8 activations, per-channel weights, fused clamps,
stride/pad/dilation/group variants and channel counts that are not multiples of the SIMD
width; every graph is compiled with -Wall -Werror for --cpu generic and for avx2.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ir import qmath
from ir.build import make_node
from ir.graph import Graph
from ir.interpreter import run as interpret
from ir.qforms import clamp_between
from ir.types import DType, QuantParams, TensorType
from targets.c import qadd_linear
from targets.c.model import generate
from targets.host.build import CSRC, BuildOptions, HostRenderer, build_c_library, find_cc
from targets.host.cpu import arch_flags, cpu_flags, detect_level, is_x86_64
from tests.codegen.harness import run_c

CPUS = ["generic", "avx2"] if is_x86_64() else ["generic"]
#: the levels the GEMM paths are checked at: CPUS and AVX-512 VNNI (its vpdpbusd u8 tile takes
#: any int8 weights), which runs only on a CPU that has it and is skipped elsewhere, saying so
GEMM_CPUS = [*CPUS, pytest.param("avx512vnni", marks=pytest.mark.skipif(
    detect_level() != "avx512vnni",
    reason="this CPU has no AVX-512 VNNI: the vpdpbusd tile runs only where it is"))]
_count = itertools.count()
Const = tuple[np.ndarray, QuantParams | None]

#: a fused activation as the real range its clamp keeps (qforms.clamp_between)
ACTIVATIONS = {"none": (-np.inf, np.inf), "relu": (0.0, np.inf), "relu6": (0.0, 6.0)}


@pytest.fixture
def definition_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """QAdd by its definition's lane forms (qnnc_qadd_n), not the linear form that most
    scale triples have (test_qadd_linear.py checks that one)."""
    monkeypatch.setattr(qadd_linear, "ENABLED", False)


def qt(shape: tuple[int, ...], dtype: DType, scale: float, zp: int) -> TensorType:
    return TensorType(tuple(shape), dtype, QuantParams.per_tensor(scale, zp))


def rand_q(rng: np.random.Generator, shape: tuple[int, ...], dtype: DType) -> TensorType:
    lo, hi = qmath.qrange(dtype)
    return qt(shape, dtype, float(np.float32(rng.uniform(0.005, 0.1))),
              int(rng.integers(lo, hi + 1)))


def graph(op: str, inputs: list[TensorType | Const | None], attrs: dict[str, Any]) -> Graph:
    """One node; TensorTypes become graph inputs, (array, quant) pairs typed constants."""
    g = Graph(f"test_{op}")
    vals = []
    for k, x in enumerate(inputs):
        if x is None:
            vals.append(None)
        elif isinstance(x, TensorType):
            vals.append(g.add_input(f"x{k}", x))
        else:
            v = g.add_const(x[0], f"c{k}")
            v.type = TensorType(v.type.shape, v.type.dtype, x[1])
            vals.append(v)
    node = make_node(g, op, vals, attrs, name=f"{op.lower()}_node")
    g.outputs = list(node.outputs)
    return g


def feeds_for(g: Graph, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for v in g.inputs:
        if v.type.dtype.is_float:
            out[v.name] = (rng.standard_normal(v.type.shape) * 3).astype(np.float32)
        else:
            info = np.iinfo(v.type.dtype.np)
            out[v.name] = rng.integers(info.min, int(info.max) + 1, v.type.shape,
                                       dtype=v.type.dtype.np)
    return out


def check_exact(g: Graph, tmp: Path, cpu: str, feeds: dict[str, np.ndarray] | None = None,
                seed: int = 0) -> None:
    feeds = feeds if feeds is not None else feeds_for(g, seed)
    want = interpret(g, feeds)
    got = run_c(g, feeds, tmp / f"g{next(_count)}", BuildOptions(cpu=cpu, werror=True))
    for name, w in want.items():
        assert got[name].dtype == w.dtype and got[name].shape == w.shape, name
        np.testing.assert_array_equal(got[name], w, err_msg=name)


def out_attrs(rng: np.random.Generator, dtype: DType, act: str | None = None) -> dict:
    lo, hi = qmath.qrange(dtype)
    scale = float(np.float32(rng.uniform(0.02, 0.3)))
    zp = int(rng.integers(lo, hi + 1)) if act is None or act == "none" else \
        int(rng.integers(lo, lo + 40))
    a: dict[str, Any] = {"out_dtype": dtype.value, "out_scale": scale, "out_zp": zp}
    if act is not None:
        a["act_min"], a["act_max"] = clamp_between(*ACTIVATIONS[act], dtype, scale, zp)
    return a


def weights(rng: np.random.Generator, shape: tuple[int, ...], per_channel: bool,
            zw: bool = False, amax: int = 127) -> Const:
    """Random int8 weights in [-amax, amax] (61 with zero points of up to 3 keeps every
    centred weight within 64, which the u8 x s8 kernel takes for any pair)."""
    w = rng.integers(-amax, amax + 1, shape).astype(np.int8)
    m = shape[0]
    if per_channel:
        s = tuple(float(np.float32(v)) for v in rng.uniform(0.001, 0.02, m))
        z = tuple(int(v) for v in rng.integers(-3, 4, m)) if zw else (0,) * m
        return w, QuantParams(s, z, 0)
    return w, QuantParams.per_tensor(float(np.float32(rng.uniform(0.001, 0.02))),
                                     int(rng.integers(-3, 4)) if zw else 0)


CONVS = [
    dict(x=(1, 3, 9, 9), w=(8, 3, 3, 3), s=[1, 1], p=[1, 1, 1, 1], g=1),
    dict(x=(2, 5, 10, 7), w=(7, 5, 3, 2), s=[2, 1], p=[0, 1, 2, 0], g=1),
    dict(x=(1, 6, 8, 8), w=(6, 1, 3, 3), s=[2, 2], p=[1, 1, 1, 1], g=6),
    dict(x=(1, 13, 7, 9), w=(13, 1, 5, 5), s=[1, 1], p=[2, 2, 2, 2], g=13),
    dict(x=(1, 8, 6, 6), w=(12, 2, 3, 3), s=[1, 1], p=[1, 1, 1, 1], g=4),
    dict(x=(1, 4, 6, 6), w=(8, 1, 3, 3), s=[1, 1], p=[1, 0, 1, 0], g=4),
    dict(x=(1, 17, 5, 5), w=(21, 17, 1, 1), s=[1, 1], p=[0, 0, 0, 0], g=1),
    dict(x=(1, 3, 12, 12), w=(5, 3, 3, 3), s=[1, 1], p=[2, 2, 2, 2], g=1, d=[2, 2]),
    dict(x=(1, 3, 23, 19), w=(9, 3, 7, 7), s=[2, 2], p=[3, 3, 3, 3], g=1),
    dict(x=(1, 4, 20), w=(7, 4, 5), s=[2], p=[2, 1], g=1),
    # depthwise 1x1 (a per-channel scale): more positions than one accumulator block, and few
    dict(x=(2, 9, 40, 40), w=(9, 1, 1, 1), s=[1, 1], p=[0, 0, 0, 0], g=9),
    dict(x=(1, 5, 3, 7), w=(5, 1, 1, 1), s=[1, 1], p=[0, 0, 0, 0], g=5),
    # a depthwise plane larger than DW_PLANE_ACC: requantised row by row
    dict(x=(1, 3, 70, 70), w=(3, 1, 3, 3), s=[1, 1], p=[1, 1, 1, 1], g=3),
    # depthwise, dilated, stride 2 across and 1 down, rows of 19: the taps' phase planes
    dict(x=(1, 5, 19, 41), w=(5, 1, 3, 3), s=[1, 2], p=[2, 2, 2, 2], g=5, d=[2, 2]),
    # depthwise 7x7 with two outputs per channel (49 taps: an odd last pair) over a plane
    # of 30 rows of 33
    dict(x=(1, 7, 30, 27), w=(14, 1, 7, 7), s=[1, 1], p=[3, 3, 3, 3], g=7),
    dict(x=(1, 64, 9, 9), w=(70, 64, 3, 3), s=[1, 1], p=[1, 1, 1, 1], g=1),
]


@pytest.mark.parametrize("cpu", CPUS)
@pytest.mark.parametrize("xdt", [DType.u8, DType.i8])
@pytest.mark.parametrize("case", range(len(CONVS)))
def test_qconv(case: int, xdt: DType, cpu: str, tmp_path: Path) -> None:
    kw = CONVS[case]
    rng = np.random.default_rng(100 + case)
    nsp = len(kw["x"]) - 2
    act = ["none", "relu", "relu6"][case % 3]
    ydt = [DType.u8, DType.i8][(case + (xdt is DType.i8)) % 2]
    attrs = {"strides": kw["s"], "pads": kw["p"], "group": kw["g"],
             "dilations": kw.get("d", [1] * nsp), **out_attrs(rng, ydt, act)}
    w = weights(rng, kw["w"], per_channel=case % 4 != 1, zw=case % 5 == 2)
    bias = (rng.integers(-3000, 3000, kw["w"][0]).astype(np.int32), None) if case % 3 else None
    g = graph("QConv", [rand_q(rng, kw["x"], xdt), w, bias], attrs)
    check_exact(g, tmp_path, cpu, seed=case)


#: the convolutions that run a GEMM (not depthwise: one input and one output per group)
GEMM_CONVS = [i for i, kw in enumerate(CONVS) if not (kw["g"] > 1 and kw["w"][1] == 1
                                                       and kw["w"][0] == kw["g"])]


@pytest.mark.parametrize("cpu", CPUS)
@pytest.mark.parametrize("xdt", [DType.u8, DType.i8])
@pytest.mark.parametrize("case", GEMM_CONVS)
def test_qconv_u8s8_quads(case: int, xdt: DType, cpu: str, tmp_path: Path) -> None:
    """Weights whose pairs cannot saturate vpmaddubsw take the u8 x s8 kernel (the C says
    so) and give the interpreter's integers: im2col, gathered and direct 1x1 packing, K not a
    multiple of 4, groups, int8 codes flipped to bytes, weight zero points."""
    kw = CONVS[case]
    rng = np.random.default_rng(300 + case)
    nsp = len(kw["x"]) - 2
    ydt = [DType.u8, DType.i8][case % 2]
    attrs = {"strides": kw["s"], "pads": kw["p"], "group": kw["g"],
             "dilations": kw.get("d", [1] * nsp), **out_attrs(rng, ydt, "relu")}
    w = weights(rng, kw["w"], per_channel=case % 4 != 1, zw=case % 5 == 2, amax=61)
    bias = (rng.integers(-3000, 3000, kw["w"][0]).astype(np.int32), None)
    g = graph("QConv", [rand_q(rng, kw["x"], xdt), w, bias], attrs)
    check_exact(g, tmp_path, cpu, seed=case)
    (source,) = [f.read_text() for f in tmp_path.rglob("model.c")]
    assert "u8 quads" in source and "qnnc_q8u_tile" in source


#: planes larger than one im2col block (QUAD_BLOCK columns) and than one chunk, and short
#: rows that gather through the offset table over several blocks
LARGE_QUAD_CONVS = [
    dict(x=(1, 5, 40, 45), w=(8, 5, 3, 3), s=[1, 1], p=[1, 1, 1, 1]),
    dict(x=(1, 3, 90, 90), w=(6, 3, 5, 5), s=[1, 1], p=[2, 2, 2, 2]),
    dict(x=(1, 4, 60, 14), w=(7, 4, 3, 3), s=[1, 1], p=[1, 1, 1, 1]),
    dict(x=(1, 3, 71, 65), w=(16, 3, 3, 3), s=[2, 2], p=[0, 1, 1, 0]),
]


@pytest.mark.parametrize("cpu", CPUS)
@pytest.mark.parametrize("xdt", [DType.u8, DType.i8])
@pytest.mark.parametrize("case", range(len(LARGE_QUAD_CONVS)))
def test_qconv_u8s8_quads_over_blocks_and_chunks(case: int, xdt: DType, cpu: str,
                                                 tmp_path: Path) -> None:
    kw = LARGE_QUAD_CONVS[case]
    rng = np.random.default_rng(400 + case)
    attrs = {"strides": kw["s"], "pads": kw["p"], "group": 1, "dilations": [1, 1],
             **out_attrs(rng, DType.u8, "relu")}
    w = weights(rng, kw["w"], per_channel=True, amax=64)
    g = graph("QConv", [rand_q(rng, kw["x"], xdt), w, None], attrs)
    check_exact(g, tmp_path, cpu, seed=case)
    (source,) = [f.read_text() for f in tmp_path.rglob("model.c")]
    assert "u8 quads" in source


#: stride-1 convolutions whose output rows are whole panels (a multiple of 16 wide): quads
#: packed straight from the padded planes; K = 27 (a last quad with a row past K), several
#: chunks, dilation, an odd row stride, groups, and one 17-wide (rows straddling panels: the
#: im2col rows)
PLANE_QUAD_CONVS = [
    (dict(x=(1, 3, 20, 32), w=(10, 3, 3, 3), s=[1, 1], p=[1, 1, 1, 1]), True),
    (dict(x=(2, 8, 40, 80), w=(12, 8, 3, 3), s=[1, 1], p=[1, 1, 1, 1]), True),
    (dict(x=(1, 5, 21, 32), w=(6, 5, 3, 3), s=[1, 1], p=[2, 2, 2, 2], d=[2, 2]), True),
    (dict(x=(1, 4, 31, 16), w=(8, 4, 3, 1), s=[2, 1], p=[1, 0, 1, 0]), True),
    (dict(x=(1, 8, 9, 48), w=(8, 4, 3, 3), s=[1, 1], p=[1, 1, 1, 1], g=2), True),
    (dict(x=(1, 6, 12, 17), w=(7, 6, 3, 3), s=[1, 1], p=[1, 1, 1, 1]), False),
]


@pytest.mark.parametrize("cpu", GEMM_CPUS)
@pytest.mark.parametrize("xdt", [DType.u8, DType.i8])
@pytest.mark.parametrize("case", range(len(PLANE_QUAD_CONVS)))
def test_qconv_quads_straight_from_padded_planes(case: int, xdt: DType, cpu: str,
                                                 tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # AVX-512 VNNI builds read such layers from quad planes where the grid is used enough
    # (tests/codegen/test_qconv_implicit.py); here none is, to check the packing path there
    monkeypatch.setattr("targets.c.qconv_implicit.MIN_GRID_USE", 2.0)
    kw, straight = PLANE_QUAD_CONVS[case]
    rng = np.random.default_rng(450 + case)
    attrs = {"strides": kw["s"], "pads": kw["p"], "group": kw.get("g", 1),
             "dilations": kw.get("d", [1, 1]), **out_attrs(rng, DType.u8, "relu")}
    w = weights(rng, kw["w"], per_channel=True, amax=61)
    g = graph("QConv", [rand_q(rng, kw["x"], xdt), w, None], attrs)
    check_exact(g, tmp_path, cpu, seed=case)
    (source,) = [f.read_text() for f in tmp_path.rglob("model.c")]
    assert ("qnnc_q8u_im2quad_s1(" in source) == straight, source[:2000]


#: convolutions whose im2col goes through row segments when the padded plane copies are
#: refused: strides, dilation, a 7x7 stride 2 and a stride-2 row of AVX2's byte shuffle
SEGMENT_CONVS = [CONVS[1], CONVS[7], CONVS[8], {**LARGE_QUAD_CONVS[3], "g": 1}]


@pytest.mark.parametrize("cpu", GEMM_CPUS)
@pytest.mark.parametrize("amax", [127, 61], ids=["pairs", "quads"])
@pytest.mark.parametrize("case", range(len(SEGMENT_CONVS)))
def test_qconv_im2col_in_row_segments(case: int, amax: int, cpu: str, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Planes too large for the zero-padded copy (PADDED_MAX_BYTES, lowered to nothing here)
    take im2col in bounds-checked row segments, with the interpreter's integers."""
    monkeypatch.setattr("targets.c.conv_packing.PADDED_MAX_BYTES", 0)
    kw = SEGMENT_CONVS[case]
    rng = np.random.default_rng(700 + case)
    nsp = len(kw["x"]) - 2
    attrs = {"strides": kw["s"], "pads": kw["p"], "group": kw["g"],
             "dilations": kw.get("d", [1] * nsp), **out_attrs(rng, DType.u8, "relu")}
    w = weights(rng, kw["w"], per_channel=True, amax=amax)
    g = graph("QConv", [rand_q(rng, kw["x"], DType.u8), w, None], attrs)
    check_exact(g, tmp_path, cpu, seed=case)
    (source,) = [f.read_text() for f in tmp_path.rglob("model.c")]
    assert "qnnc_q8_im2row8" in source and "qnnc_q8_pad_planes" not in source


@pytest.mark.parametrize("cpu", GEMM_CPUS)
def test_u8s8_pairs_at_the_bound_are_exact(cpu: str, tmp_path: Path) -> None:
    """Pairs at the bound (127 + 1, 64 + 64, -128 + 0, -1 - 127) times inputs at the ends of
    the byte range: the int16 pair sums reach +-32640 and must not saturate."""
    pairs = [(127, 1), (64, 64), (-128, 0), (-1, -127), (100, 28), (-64, -64)]
    w = np.array([[a, b] * 8 for a, b in pairs], dtype=np.int8).reshape(6, 16, 1, 1)
    wq = QuantParams(tuple([0.01] * 6), (0,) * 6, 0)
    x = qt((1, 16, 4, 4), DType.u8, 0.05, 0)
    attrs = {"strides": [1, 1], "pads": [0, 0, 0, 0], "group": 1, "dilations": [1, 1],
             "out_dtype": "i8", "out_scale": 40.0, "out_zp": 0}
    g = graph("QConv", [x, (w, wq), None], attrs)
    feeds = {"x0": np.full((1, 16, 4, 4), 255, np.uint8)}
    feeds["x0"][0, 1::2, :2] = 0  # every other k at 0 in some positions: mixed pair sums
    check_exact(g, tmp_path, cpu, feeds=feeds)
    (source,) = [f.read_text() for f in tmp_path.rglob("model.c")]
    assert "qnnc_q8u_tile" in source


@pytest.mark.parametrize("cpu", ["generic", *GEMM_CPUS[len(CPUS):]])
def test_pairs_past_the_bound(cpu: str, tmp_path: Path) -> None:
    """One pair over the bound (127 + 2, 127 + 127 at inputs of 255: int16 sums of 64770
    would saturate vpmaddubsw) sends the layer to the int16 kernel, still exact; an AVX-512
    VNNI build keeps the u8 tile (vpdpbusd adds in int32), exact too."""
    w = np.zeros((4, 8, 1, 1), np.int8)
    w[2, 4, 0, 0], w[2, 5, 0, 0] = 127, 2
    w[3, 0, 0, 0], w[3, 1, 0, 0] = 127, 127
    wq = QuantParams.per_tensor(0.01, 0)
    attrs = {"strides": [1, 1], "pads": [0, 0, 0, 0], "group": 1, "dilations": [1, 1],
             "out_dtype": "u8", "out_scale": 20.0, "out_zp": 0}
    g = graph("QConv", [qt((1, 8, 3, 3), DType.u8, 0.05, 0), (w, wq), None], attrs)
    check_exact(g, tmp_path, cpu, feeds={"x0": np.full((1, 8, 3, 3), 255, np.uint8)})
    (source,) = [f.read_text() for f in tmp_path.rglob("model.c")]
    if cpu == "avx512vnni":
        assert "u8 quads" in source and "QNNC_Q8U_ANY_WEIGHTS" in source
    else:
        assert "int16 pairs" in source and "qnnc_q8u_tile" not in source


@pytest.mark.skipif(not is_x86_64(), reason="AVX2 is an x86-64 level")
def test_vnni_layout_refuses_an_avx2_compile(tmp_path: Path) -> None:
    """C laid out for vpdpbusd (weights past the pair rule on the u8 tile) does not compile
    where the u8 tile would be vpmaddubsw: an #error, not saturated sums."""
    w = np.full((6, 8, 1, 1), 127, np.int8)
    attrs = {"strides": [1, 1], "pads": [0, 0, 0, 0], "group": 1, "dilations": [1, 1],
             "out_dtype": "u8", "out_scale": 20.0, "out_zp": 0}
    g = graph("QConv", [qt((1, 8, 3, 3), DType.u8, 0.05, 0),
                        (w, QuantParams.per_tensor(0.01, 0)), None], attrs)
    r = HostRenderer()
    r.u8_any_weights = True
    for name, text in generate(g, r).files.items():
        (tmp_path / name).write_bytes(text) if isinstance(text, bytes) else \
            (tmp_path / name).write_text(text)
    for h in CSRC.glob("*.h"):
        shutil.copy(h, tmp_path / h.name)
    for flags, ok in ((arch_flags("avx2"), False), (arch_flags("avx512vnni"), True),
                      ([], True)):
        done = subprocess.run([find_cc(), *flags, "-fsyntax-only", "-I.", "model.c"],
                              cwd=tmp_path, capture_output=True, text=True)
        assert (done.returncode == 0) == ok, (flags, done.stderr)
        if not ok:
            assert "AVX-512 VNNI" in done.stderr


@pytest.mark.parametrize("cpu", GEMM_CPUS)
@pytest.mark.parametrize("xshape,n", [((1, 37), 19), ((5, 64), 33), ((2, 3, 15), 7),
                                      ((40, 9), 10)])
def test_qlinear(xshape: tuple, n: int, cpu: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(n)
    for xdt, act in [(DType.u8, "relu"), (DType.i8, "none")]:
        w = weights(rng, (n, xshape[-1]), per_channel=xdt is DType.u8)
        b = (rng.integers(-5000, 5000, n).astype(np.int32), None)
        g = graph("QLinear", [rand_q(rng, xshape, xdt), w, b], out_attrs(rng, DType.u8, act))
        check_exact(g, tmp_path, cpu)


@pytest.mark.skipif(detect_level() != "avx512vnni",
                    reason="this CPU has no AVX-512 VNNI: the vpdpbusd GEMV runs only where it is")
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("xshape,n", [((1, 37), 19), ((3, 130), 40), ((4, 2048), 16),
                                      ((1, 1), 1)])
def test_qlinear_gemv_quads(xshape: tuple, n: int, threads: int, tmp_path: Path) -> None:
    """Up to four input rows on AVX-512 VNNI: the u8-quad GEMV (16 weight rows a tile),
    int8 weights (with zero points, up to 127 from them), K not a multiple of 4, rows past the last
    tile's, int8 inputs flipped, the weight tiles shared out among threads; exact."""
    rng = np.random.default_rng(n + xshape[-1])
    for xdt, act in [(DType.u8, "relu"), (DType.i8, "none")]:
        w = weights(rng, (n, xshape[-1]), per_channel=xdt is DType.u8, zw=True, amax=124)
        b = (rng.integers(-5000, 5000, n).astype(np.int32), None)
        g = graph("QLinear", [rand_q(rng, xshape, xdt), w, b], out_attrs(rng, DType.i8, act))
        folder = tmp_path / xdt.value
        feeds = feeds_for(g, n)
        got = run_c(g, feeds, folder, BuildOptions(cpu="avx512vnni", threads=threads,
                                                   werror=True))
        for name, want in interpret(g, feeds).items():
            np.testing.assert_array_equal(got[name], want)
        (source,) = [f.read_text() for f in folder.rglob("model.c")]
        assert "qnnc_q8u_gemv(" in source


@pytest.mark.parametrize("cpu", CPUS)
@pytest.mark.parametrize("xshape,n", [((5, 64), 33), ((2, 3, 15), 7), ((40, 9), 10),
                                      ((37, 130), 20)])
def test_qlinear_u8s8_quads(xshape: tuple, n: int, cpu: str, tmp_path: Path) -> None:
    """Fully connected layers whose weight pairs fit take the u8 x s8 kernel, exact: K not a
    multiple of 4, int8 inputs flipped to bytes, more rows than one panel."""
    rng = np.random.default_rng(n + 7)
    for xdt, act in [(DType.u8, "relu"), (DType.i8, "none")]:
        w = weights(rng, (n, xshape[-1]), per_channel=xdt is DType.u8, zw=True, amax=61)
        b = (rng.integers(-5000, 5000, n).astype(np.int32), None)
        g = graph("QLinear", [rand_q(rng, xshape, xdt), w, b], out_attrs(rng, DType.u8, act))
        folder = tmp_path / xdt.value
        check_exact(g, folder, cpu)
        (source,) = [f.read_text() for f in folder.rglob("model.c")]
        assert "u8 quads" in source and "qnnc_q8u_tile" in source


@pytest.mark.parametrize("cpu", CPUS)
@pytest.mark.parametrize("sa,sb", [((5, 7), (7, 33)), ((2, 3, 9, 17), (2, 3, 17, 4)),
                                   ((3, 1, 6, 8), (4, 8, 5)), ((8,), (8, 3)), ((2, 4, 8), (8,))])
def test_qmatmul(sa: tuple, sb: tuple, cpu: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(len(sa) * 10 + len(sb))
    g = graph("QMatMul", [rand_q(rng, sa, DType.u8), rand_q(rng, sb, DType.i8)],
              out_attrs(rng, DType.i8))
    check_exact(g, tmp_path, cpu)


BROADCAST = [((2, 3, 4), (2, 3, 4)), ((2, 3, 4), (4,)), ((2, 1, 4), (3, 1)), ((1,), (2, 3)),
             ((1, 5, 1, 1), (1, 5, 3, 2))]


@pytest.mark.parametrize("cpu", CPUS)
@pytest.mark.parametrize("op", ["QAdd", "QMul"])
@pytest.mark.parametrize("sa,sb", BROADCAST)
def test_qbinary(op: str, sa: tuple, sb: tuple, cpu: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(len(sa) + 7 * len(sb))
    attrs = out_attrs(rng, DType.u8, "relu" if op == "QAdd" else None)
    g = graph(op, [rand_q(rng, sa, DType.u8), rand_q(rng, sb, DType.i8)], attrs)
    check_exact(g, tmp_path, cpu)


@pytest.mark.usefixtures("definition_steps")
@pytest.mark.parametrize("cpu", GEMM_CPUS)  # AVX-512 builds add sixteen lanes a step
def test_qadd_equal_scales_and_clamps(cpu: str, tmp_path: Path) -> None:
    t = qt((4, 64), DType.i8, 0.05, -3)
    attrs = {"out_dtype": "i8", "out_scale": 0.05, "out_zp": -3, "act_min": -3, "act_max": 60}
    check_exact(graph("QAdd", [t, t], attrs), tmp_path, cpu)


@pytest.mark.usefixtures("definition_steps")
@pytest.mark.parametrize("cpu", GEMM_CPUS)
@pytest.mark.parametrize("sa,sb,sy", [(0.05, 0.02, 1e-7), (0.02, 0.05, 0.1), (0.03, 0.03, 2e-7),
                                      (0.04, 0.04, 0.09)])
def test_qadd_vector_forms(sa: float, sb: float, sy: float, cpu: str, tmp_path: Path) -> None:
    """QAdd's lane forms (eight lanes, and sixteen on AVX-512): an input at half the larger
    scale's multiplier (x + 1) >> 1, the other and the output in the high-half form, both
    inputs halved at equal scales; an output multiplier of 1/2 or more (a tiny output scale,
    saturating) keeps the sign-trick form. Exact either way."""
    a, b = qt((3, 37), DType.u8, sa, 7), qt((3, 37), DType.i8, sb, -5)
    attrs = {"out_dtype": "u8", "out_scale": sy, "out_zp": 100}
    g = graph("QAdd", [a, b], attrs)
    check_exact(g, tmp_path, cpu)


@pytest.mark.usefixtures("definition_steps")
@pytest.mark.parametrize("cpu", GEMM_CPUS)
@pytest.mark.parametrize("small_first", [True, False])
@pytest.mark.parametrize("ta,tb", [(DType.u8, DType.u8), (DType.i8, DType.u8),
                                   (DType.u8, DType.i8)])
@pytest.mark.parametrize("ratio", [0.6, 3 * 2.0**-12, 3 * 2.0**-13], ids=["n32", "n42", "n43"])
def test_qadd_split_form_on_every_code_pair(ratio: float, ta: DType, tb: DType,
                                            small_first: bool, cpu: str, tmp_path: Path) -> None:
    """The smaller-scale input's step in 32-bit lanes (qnnc_qadd_split: n - 20 up to 22) and
    in the 64-bit form past it (n = 43), the larger-scale input halved, on every pair of
    codes, either operand order and type: the lanes take each input's codes as the op does
    (test_qadd_split.py holds the step itself to its definition, which this cannot see)."""
    small = qt((256, 256), ta, ratio, 9 if ta is DType.u8 else -7)
    large = qt((256, 256), tb, 1.0, 130 if tb is DType.u8 else 3)
    a, b = (small, large) if small_first else (large, small)
    attrs = {"out_dtype": "u8", "out_scale": 0.05, "out_zp": 17}
    g = graph("QAdd", [a, b], attrs)
    codes = np.arange(256)
    feeds = {}
    for k, t in enumerate((a, b)):
        grid = codes[:, None] if k == 0 else codes[None, :]
        c = np.broadcast_to(grid, (256, 256)).astype(np.uint8)
        feeds[f"x{k}"] = c.view(np.int8) if t.dtype is DType.i8 else c
    check_exact(g, tmp_path, cpu, feeds=feeds)


@pytest.mark.parametrize("cpu", CPUS)
@pytest.mark.parametrize("xdt,ydt", [(DType.u8, DType.i8), (DType.i8, DType.u8),
                                     (DType.i8, DType.i8)])
def test_requantize_and_lut(xdt: DType, ydt: DType, cpu: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    x = rand_q(rng, (3, 50), xdt)
    check_exact(graph("Requantize", [x], out_attrs(rng, ydt)), tmp_path, cpu)
    oa = out_attrs(rng, ydt)
    assert x.quant is not None
    table = qmath.make_lut(np.tanh, x.quant.scale[0], x.quant.zero_point[0], xdt,
                           oa["out_scale"], oa["out_zp"], ydt)
    g = graph("QLut", [x], {"table": [int(v) for v in table], **oa})
    check_exact(g, tmp_path, cpu, feeds={"x0": np.arange(-128, 128).astype(np.int64)
                                         .astype(xdt.np, casting="unsafe")[:150].reshape(3, 50)})


@pytest.mark.parametrize("cpu", GEMM_CPUS)
@pytest.mark.parametrize("vbmi", ["auto", "off"])
@pytest.mark.parametrize("xdt,ydt", [(DType.u8, DType.u8), (DType.u8, DType.i8),
                                     (DType.i8, DType.u8), (DType.i8, DType.i8)])
def test_lut_every_code(xdt: DType, ydt: DType, cpu: str, vbmi: str, tmp_path: Path,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    """QLut between 8-bit codes looks its table up 32 bytes at a time on AVX2 and 64 with
    VBMI's byte permutes (AVX-512 builds on a CPU that has them; "off", QNNC_VBMI=0, takes
    the AVX2 lookup there), a signed input's table rotated to its stored bytes: a random
    table, every input code, 305 codes so that the last 17 (AVX2) or 49 (VBMI, under a mask)
    go through the tail."""
    if vbmi == "off":
        if cpu != "avx512vnni" or "avx512vbmi" not in cpu_flags():
            pytest.skip("the VBMI switch matters only to AVX-512 builds on a CPU with VBMI")
        monkeypatch.setenv("QNNC_VBMI", "0")
    rng = np.random.default_rng(int(xdt is DType.i8) + 2 * int(ydt is DType.i8))
    x = rand_q(rng, (5, 61), xdt)
    lo, hi = qmath.qrange(ydt)
    table = rng.integers(lo, hi + 1, 256)
    g = graph("QLut", [x], {"table": [int(v) for v in table], **out_attrs(rng, ydt)})
    xlo, _ = qmath.qrange(xdt)
    codes = np.concatenate([np.arange(256), rng.integers(0, 256, 305 - 256)]) + xlo
    check_exact(g, tmp_path, cpu, feeds={"x0": codes.astype(xdt.np).reshape(5, 61)})


@pytest.mark.parametrize("cpu", CPUS)
@pytest.mark.parametrize("dtype", [DType.u8, DType.i8, DType.u16, DType.i16])
def test_quantize_ties_and_saturation(dtype: DType, cpu: str, tmp_path: Path) -> None:
    scale, zp = 0.25, (3 if dtype in (DType.u8, DType.u16) else -2)
    ties = (np.arange(-40, 40) + 0.5) * scale  # exactly representable .5 ties
    specials = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, 0.0, -0.0, 1e-30])
    # 107 values: the specials fill one vector of 8, and 3 are left for the scalar tail
    x = np.concatenate([ties, specials, np.linspace(-100, 100, 19)]).astype(np.float32)
    g = graph("Quantize", [TensorType(x.shape, DType.f32)],
              {"dtype": dtype.value, "scale": [scale], "zero_point": [zp]})
    check_exact(g, tmp_path, cpu, feeds={"x0": x})


@pytest.mark.parametrize("cpu", CPUS)
def test_quantize_dequantize_per_axis(cpu: str, tmp_path: Path) -> None:
    scales = [0.1, 0.03, 0.7]
    g = graph("Quantize", [TensorType((2, 3, 5), DType.f32)],
              {"dtype": "i8", "scale": scales, "zero_point": [0, -5, 7], "axis": 1})
    check_exact(g, tmp_path, cpu)
    q = TensorType((2, 3, 5), DType.i8, QuantParams(tuple(scales), (0, -5, 7), 1))
    check_exact(graph("Dequantize", [q], {}), tmp_path, cpu)


@pytest.mark.parametrize("cpu", CPUS)
@pytest.mark.parametrize("dtype", [DType.u8, DType.i8, DType.i16, DType.i32])
def test_dequantize(dtype: DType, cpu: str, tmp_path: Path) -> None:
    lo, hi = qmath.qrange(dtype) if dtype is not DType.i32 else (-1000, 1000)
    g = graph("Dequantize", [qt((4, 33), dtype, 0.0371, (lo + hi) // 3)], {})
    check_exact(g, tmp_path, cpu)


POOLS = [
    dict(k=[2, 2], s=[2, 2], p=[0, 0, 0, 0], ceil=False, cip=False),
    dict(k=[3, 3], s=[2, 2], p=[1, 1, 1, 1], ceil=False, cip=False),
    dict(k=[3, 3], s=[2, 2], p=[1, 1, 1, 1], ceil=False, cip=True),
    dict(k=[3, 2], s=[2, 3], p=[1, 0, 1, 1], ceil=True, cip=False),
    dict(k=[7, 7], s=[1, 1], p=[0, 0, 0, 0], ceil=False, cip=False),
]


@pytest.mark.parametrize("cpu", CPUS)
@pytest.mark.parametrize("case", range(len(POOLS)))
def test_qaveragepool(case: int, cpu: str, tmp_path: Path) -> None:
    kw = POOLS[case]
    rng = np.random.default_rng(case)
    xdt = [DType.u8, DType.i8][case % 2]
    attrs = {"kernel_shape": kw["k"], "strides": kw["s"], "pads": kw["p"],
             "dilations": [1, 1], "ceil_mode": kw["ceil"], "count_include_pad": kw["cip"],
             **out_attrs(rng, xdt)}
    g = graph("QAveragePool", [rand_q(rng, (2, 3, 9, 8) if case < 4 else (1, 5, 7, 7), xdt)],
              attrs)
    check_exact(g, tmp_path, cpu)


@pytest.mark.parametrize("cpu", CPUS)
@pytest.mark.parametrize("xdt", [DType.u8, DType.i8])
def test_qglobalaveragepool(xdt: DType, cpu: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    g = graph("QGlobalAveragePool", [rand_q(rng, (2, 19, 7, 6), xdt)], out_attrs(rng, DType.u8))
    check_exact(g, tmp_path, cpu)


MOVES: list[tuple[str, list[tuple[int, ...]], dict[str, Any]]] = [
    ("MaxPool", [(1, 3, 9, 8)], {"kernel_shape": [3, 3], "strides": [2, 2],
                                 "pads": [1, 1, 1, 1], "dilations": [1, 1], "ceil_mode": True}),
    # stride 1 with asymmetric padding, a 1-D window, a window wider than its stride
    ("MaxPool", [(2, 4, 7, 11)], {"kernel_shape": [3, 3], "strides": [1, 1],
                                  "pads": [0, 2, 1, 0], "dilations": [1, 1], "ceil_mode": False}),
    ("MaxPool", [(1, 2, 13)], {"kernel_shape": [4], "strides": [3], "pads": [1, 2],
                               "dilations": [1], "ceil_mode": True}),
    ("MaxPool", [(1, 3, 6, 6)], {"kernel_shape": [2, 5], "strides": [2, 1],
                                 "pads": [0, 0, 0, 0], "dilations": [1, 1], "ceil_mode": False}),
    # rows long enough for qnnc_maxpool_row8's vector steps and their tails: 3x3 stride 2
    # (16 outputs a step), 2-wide stride 2, an SPP-like 5x5 stride 1 (the padded-plane
    # path), stride 3
    ("MaxPool", [(1, 2, 5, 75)], {"kernel_shape": [3, 3], "strides": [2, 2],
                                  "pads": [1, 1, 1, 1], "dilations": [1, 1], "ceil_mode": False}),
    ("MaxPool", [(1, 2, 4, 70)], {"kernel_shape": [2, 2], "strides": [2, 2],
                                  "pads": [0, 0, 0, 0], "dilations": [1, 1], "ceil_mode": True}),
    ("MaxPool", [(1, 2, 5, 80)], {"kernel_shape": [5, 5], "strides": [1, 1],
                                  "pads": [2, 2, 2, 2], "dilations": [1, 1], "ceil_mode": False}),
    ("MaxPool", [(1, 1, 3, 100)], {"kernel_shape": [1, 3], "strides": [1, 3],
                                   "pads": [0, 0, 0, 0], "dilations": [1, 1], "ceil_mode": False}),
    # unit strides on a plane too large for the padded copy: the row path's stride-1 steps
    ("MaxPool", [(1, 1, 20013)], {"kernel_shape": [4], "strides": [1], "pads": [1, 2],
                                  "dilations": [1], "ceil_mode": False}),
    ("GlobalMaxPool", [(2, 3, 5, 4)], {}),
    ("Reshape", [(2, 3, 4)], {"shape": [6, 4]}),
    ("Transpose", [(2, 3, 4)], {"perm": [2, 0, 1]}),
    ("Concat", [(2, 3, 4), (2, 5, 4)], {"axis": 1}),
    ("Slice", [(4, 9)], {"starts": [1, 0], "ends": [3, 9], "steps": [1, 2]}),
    ("Pad", [(1, 2, 3, 3)], {"pads": [0, 0, 1, 2, 0, 0, 2, 1], "mode": "constant", "value": 7}),
    ("Resize", [(1, 2, 3, 4)], {"scales": [1.0, 1.0, 2.0, 1.5], "sizes": [1, 2, 6, 6],
                                 "mode": "nearest"}),
    # the row paths: rows repeated (2x upsampling), only the last axis, only an outer one,
    # a downsampling (no row repeats), one axis
    ("Resize", [(2, 3, 4, 5)], {"scales": [1.0, 1.0, 2.0, 2.0], "sizes": [2, 3, 8, 10],
                                 "mode": "nearest"}),
    ("Resize", [(1, 2, 3, 4)], {"scales": [1.0, 1.0, 1.0, 1.75], "sizes": [1, 2, 3, 7],
                                 "mode": "nearest"}),
    ("Resize", [(1, 2, 3, 4)], {"scales": [1.0, 2.0, 1.0, 1.0], "sizes": [1, 4, 3, 4],
                                 "mode": "nearest"}),
    ("Resize", [(1, 2, 9, 8)], {"scales": [1.0, 1.0, 0.5, 0.5], "sizes": [1, 2, 4, 4],
                                 "mode": "nearest"}),
    ("Resize", [(5,)], {"scales": [1.8], "sizes": [9], "mode": "nearest"}),
    # 2x upsampling rows doubled by qnnc_upsample2_row8: 32- and 16-byte steps and the tail
    ("Resize", [(1, 2, 3, 40)], {"scales": [1.0, 1.0, 2.0, 2.0], "sizes": [1, 2, 6, 80],
                                  "mode": "nearest"}),
    ("Resize", [(2, 3, 2, 37)], {"scales": [1.0, 1.0, 2.0, 2.0], "sizes": [2, 3, 4, 74],
                                  "mode": "nearest"}),
    ("Resize", [(1, 1, 1, 24)], {"scales": [1.0, 1.0, 1.0, 2.0], "sizes": [1, 1, 1, 48],
                                  "mode": "nearest"}),
    ("Retype", [(3, 5)], {"scale": [0.5], "zero_point": [2]}),
]


@pytest.mark.parametrize("cpu", CPUS)
@pytest.mark.parametrize("xdt", [DType.u8, DType.i8])
@pytest.mark.parametrize("op,shapes,attrs", MOVES, ids=[m[0] for m in MOVES])
def test_data_movement_keeps_quantised_bytes(op: str, shapes: list, attrs: dict, xdt: DType,
                                             cpu: str, tmp_path: Path) -> None:
    ins: list[TensorType | Const | None] = [qt(s, xdt, 0.1, 3) for s in shapes]
    if op == "Retype":
        ins = [TensorType(shapes[0], xdt)]
    g = graph(op, ins, attrs)
    check_exact(g, tmp_path, cpu)


@pytest.mark.parametrize("cpu", CPUS)
def test_gather_quantised(cpu: str, tmp_path: Path) -> None:
    idx = (np.array([2, 0, -1, 1], dtype=np.int64), None)
    g = graph("Gather", [qt((3, 4, 5), DType.u8, 0.1, 3), idx], {"axis": 1})
    check_exact(g, tmp_path, cpu)


@pytest.mark.skipif(not is_x86_64(), reason="AVX-512 VNNI is an x86-64 level")
def test_vnni_kernel_compiles_and_runs_where_supported(tmp_path: Path) -> None:
    """The VNNI micro-kernel always compiles (-Werror); it only runs on a CPU that has it."""
    rng = np.random.default_rng(9)
    kw = CONVS[-1]
    attrs = {"strides": kw["s"], "pads": kw["p"], "group": 1, "dilations": [1, 1],
             **out_attrs(rng, DType.u8, "relu")}
    g = graph("QConv", [rand_q(rng, kw["x"], DType.u8), weights(rng, kw["w"], True), None],
              attrs)
    lib = build_c_library(g, tmp_path / "vnni", BuildOptions(cpu="avx512vnni", werror=True))
    assert lib.is_file()
    if detect_level() == "avx512vnni":
        check_exact(g, tmp_path, "avx512vnni")


def test_threads_give_the_same_integers(tmp_path: Path, every_layer_threaded: None) -> None:
    """OpenMP splits the weight tiles and elementwise loops; the results cannot change."""
    rng = np.random.default_rng(11)
    kw = CONVS[1]
    attrs = {"strides": kw["s"], "pads": kw["p"], "group": 1, "dilations": [1, 1],
             **out_attrs(rng, DType.u8, "relu")}
    for g in (graph("QConv", [rand_q(rng, kw["x"], DType.u8), weights(rng, kw["w"], True),
                              None], attrs),
              graph("QAdd", [rand_q(rng, (2, 3, 40), DType.u8), rand_q(rng, (3, 1), DType.u8)],
                    out_attrs(rng, DType.i8, "none"))):
        feeds = feeds_for(g, 0)
        want = interpret(g, feeds)
        got = run_c(g, feeds, tmp_path / f"t{next(_count)}",
                    BuildOptions(cpu=CPUS[-1], threads=2, werror=True))
        for name, w in want.items():
            np.testing.assert_array_equal(got[name], w)


#: convolutions whose output planes are shared out among threads by chunks of columns (each
#: thread packing its own), or whose channels are (depthwise)
THREADED_CONVS = [
    dict(x=(1, 8, 24, 24), w=(20, 8, 3, 3), s=[1, 1], p=[1, 1, 1, 1], g=1),  # im2row
    dict(x=(2, 16, 20, 20), w=(10, 16, 1, 1), s=[1, 1], p=[0, 0, 0, 0], g=1),  # direct 1x1
    dict(x=(1, 6, 16, 16), w=(9, 6, 3, 3), s=[1, 1], p=[1, 1, 1, 1], g=1),  # gather table
    dict(x=(1, 300, 20, 20), w=(8, 300, 3, 3), s=[1, 1], p=[1, 1, 1, 1], g=1),  # long K
    dict(x=(1, 12, 18, 18), w=(12, 4, 3, 3), s=[1, 1], p=[1, 1, 1, 1], g=3),  # groups
    # grouped 1x1 (ShuffleNet's): every group's chunks in one parallel loop
    dict(x=(1, 32, 14, 14), w=(36, 8, 1, 1), s=[1, 1], p=[0, 0, 0, 0], g=4),
    # 169 columns: chunks of 88 + 81, the first ending half-way through a panel
    dict(x=(1, 16, 13, 13), w=(14, 16, 3, 3), s=[1, 1], p=[1, 1, 1, 1], g=1),
    # rows of 16 (quads packed straight from whole-panel rows): 208 columns go 112 + 96
    dict(x=(1, 8, 13, 16), w=(10, 8, 3, 3), s=[1, 1], p=[1, 1, 1, 1], g=1),
    dict(x=(2, 24, 15, 15), w=(24, 1, 3, 3), s=[2, 2], p=[1, 1, 1, 1], g=24),  # depthwise
]


@pytest.mark.parametrize("cpu", GEMM_CPUS[1:])
@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("case", range(len(THREADED_CONVS)))
def test_threaded_convs_give_the_same_integers(case: int, threads: int, cpu: str,
                                               tmp_path: Path,
                                               every_layer_threaded: None) -> None:
    """Each thread packs its own chunk of output positions into its own slice of scratch
    (or takes its own channels): the integers are the interpreter's, at 2 and 3 threads,
    with the AVX2 tiles and the vpdpbusd ones."""
    kw = THREADED_CONVS[case]
    rng = np.random.default_rng(300 + case)
    attrs = {"strides": kw["s"], "pads": kw["p"], "group": kw["g"], "dilations": [1, 1],
             **out_attrs(rng, DType.u8, "relu")}
    g = graph("QConv", [rand_q(rng, kw["x"], DType.u8), weights(rng, kw["w"], True),
                        (rng.integers(-3000, 3000, kw["w"][0]).astype(np.int32), None)],
              attrs)
    feeds = feeds_for(g, case)
    want = interpret(g, feeds)
    got = run_c(g, feeds, tmp_path / "omp", BuildOptions(cpu=cpu, threads=threads, werror=True))
    for name, w in want.items():
        np.testing.assert_array_equal(got[name], w)


def test_grouped_pointwise_chunks_share_one_parallel_loop(tmp_path: Path,
                                                          every_layer_threaded: None) -> None:
    """A grouped 1x1 convolution shares every group's chunks out in one parallel loop (one
    fork and join per layer, not per group); a grouped 3x3 one, whose groups each fill the
    shared padded planes first, keeps a parallel loop per group."""
    rng = np.random.default_rng(5)
    forms = {}
    for k, (w, pads) in enumerate([((36, 8, 1, 1), [0, 0, 0, 0]), ((36, 8, 3, 3), [1] * 4)]):
        attrs = {"strides": [1, 1], "pads": pads, "group": 4, "dilations": [1, 1],
                 **out_attrs(rng, DType.u8, "relu")}
        g = graph("QConv", [rand_q(rng, (1, 32, 14, 14), DType.u8), weights(rng, w, True),
                            None], attrs)
        folder = tmp_path / f"t{k}"
        build_c_library(g, folder, BuildOptions(cpu=CPUS[-1], threads=2, werror=True))
        text = (folder / "model.c").read_text()
        body = text[text.index("im2col + int8 GEMM"):]
        forms[k] = (body.count("QNNC_OMP_FOR"), "collapse(2)" in body,
                    body.index("QNNC_OMP_FOR") < body.index("for (int g = 0"))
    assert forms == {0: (1, True, True), 1: (1, False, False)}


def test_thread_chunks_start_on_a_panel_where_rows_are_whole_panels() -> None:
    """Chunks shared out among threads are a multiple of 8 columns, but of a whole panel
    where quads are packed straight from output rows of whole panels: a chunk starting
    half-way through a panel would make its panels straddle two rows."""
    from targets.c.conv_packing import conv_split

    assert conv_split(dict(SW=1, OW=13, P=169), 16, 2) == 88
    assert conv_split(dict(SW=1, OW=16, P=208), 16, 2) == 112
    assert conv_split(dict(SW=2, OW=16, P=208), 16, 2) == 104


def test_small_layers_stay_on_one_thread(tmp_path: Path) -> None:
    """At 2 threads a layer whose estimated time is below MIN_PARALLEL_NS has no parallel
    loop (waking a thread costs more than it takes); a longer one has, with its scratch in
    per-thread slices. The estimate weighs the kind of work: a depthwise convolution's
    multiply-accumulates cost ten times a dense one's, and an element-wise layer is
    counted by its elements."""
    from targets.c.emitter import MIN_PARALLEL_NS, estimated_ns

    rng = np.random.default_rng(7)

    def conv(shape: tuple[int, ...], w: tuple[int, ...], group: int) -> Graph:
        attrs = {"strides": [1, 1], "pads": [1, 1, 1, 1], "group": group, "dilations": [1, 1],
                 **out_attrs(rng, DType.u8, "relu")}
        return graph("QConv", [rand_q(rng, shape, DType.u8), weights(rng, w, True), None],
                     attrs)

    def add(shape: tuple[int, ...]) -> Graph:
        return graph("QAdd", [rand_q(rng, shape, DType.u8), rand_q(rng, shape, DType.u8)],
                     out_attrs(rng, DType.u8, "none"))

    cases = [(conv((1, 8, 12, 12), (8, 8, 3, 3), 1), False),
             (conv((1, 32, 40, 40), (32, 32, 3, 3), 1), True),
             # 0.46 M multiply-accumulates: too few for a dense layer, enough for depthwise
             (conv((1, 32, 40, 40), (32, 1, 3, 3), 32), True),
             (add((1, 8, 16, 16)), False), (add((1, 16, 64, 64)), True)]
    for k, (g, threaded) in enumerate(cases):
        assert (estimated_ns(g.nodes[0]) >= MIN_PARALLEL_NS) == threaded, k
        folder = tmp_path / f"t{k}"
        build_c_library(g, folder, BuildOptions(cpu=CPUS[-1], threads=2, werror=True))
        text = (folder / "model.c").read_text()
        assert ("QNNC_OMP_FOR" in text) == threaded, k
        if g.nodes[0].op == "QConv":
            assert ("QNNC_THREAD_ID()" in text) == threaded, k


def test_threaded_data_movement_gives_the_same_codes(tmp_path: Path,
                                                      every_layer_threaded: None) -> None:
    """Nearest Resize of codes shares out its outermost loop, except where that loop runs
    over rows that copy the row before them (one plane: that loop stays serial), and a
    global average pool shares out its channels; the codes are the interpreter's."""
    rng = np.random.default_rng(21)
    up = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
          "nearest_mode": "floor"}
    cases = [(graph("Resize", [rand_q(rng, (1, 6, 5, 7), DType.u8)],
                    {**up, "scales": [1.0, 1.0, 2.0, 2.0], "sizes": [1, 6, 10, 14]}), True),
             (graph("Resize", [rand_q(rng, (1, 1, 5, 7), DType.u8)],
                    {**up, "scales": [1.0, 1.0, 2.0, 2.0], "sizes": [1, 1, 10, 14]}), False),
             (graph("QGlobalAveragePool", [rand_q(rng, (2, 9, 7, 6), DType.u8)],
                    out_attrs(rng, DType.u8)), True)]
    for k, (g, threaded) in enumerate(cases):
        feeds = feeds_for(g, k)
        want = interpret(g, feeds)
        folder = tmp_path / f"m{k}"
        got = run_c(g, feeds, folder, BuildOptions(cpu=CPUS[-1], threads=2, werror=True))
        assert ("QNNC_OMP_FOR" in (folder / "model.c").read_text()) == threaded, k
        for name, ref in want.items():
            np.testing.assert_array_equal(got[name], ref)


def test_byte_rows_doubled_without_a_table(tmp_path: Path) -> None:
    """A nearest 2x Resize of codes doubles each row with qnnc_upsample2_row8 (no index
    table for the last axis); a 1.75x one keeps its gather."""
    rng = np.random.default_rng(22)
    for k, (size, doubled) in enumerate([(14, True), (12, False)]):
        g = graph("Resize", [rand_q(rng, (1, 3, 5, 7), DType.i8)],
                  {"mode": "nearest", "scales": [1.0, 1.0, 2.0, size / 7],
                   "sizes": [1, 3, 10, size]})
        feeds = feeds_for(g, k)
        want = interpret(g, feeds)
        folder = tmp_path / f"m{k}"
        got = run_c(g, feeds, folder, BuildOptions(cpu=CPUS[-1], werror=True))
        text = (folder / "model.c").read_text()
        assert ("qnnc_upsample2_row8(" in text) == doubled and ("ix3[" in text) != doubled, k
        for name, ref in want.items():
            np.testing.assert_array_equal(got[name], ref)


@pytest.mark.parametrize("cpu", GEMM_CPUS[1:])
@pytest.mark.parametrize("threads", [2, 3])
def test_threaded_products_give_the_same_integers(threads: int, cpu: str, tmp_path: Path,
                                                  every_layer_threaded: None) -> None:
    """A fully connected layer over many rows (chunks of rows shared out: 152 + 148 at two
    threads, a chunk ending half-way through a panel), and batched run-time products
    (attention's heads shared out, broadcast batch axes included), with the AVX2 tiles and
    the vpdpbusd ones."""
    rng = np.random.default_rng(threads)
    w = weights(rng, (19, 40), per_channel=True)
    b = (rng.integers(-5000, 5000, 19).astype(np.int32), None)
    cases = [graph("QLinear", [rand_q(rng, (300, 40), DType.u8), w, b],
                   out_attrs(rng, DType.u8, "relu")),
             graph("QMatMul", [rand_q(rng, (2, 3, 96, 200), DType.u8),
                               rand_q(rng, (2, 3, 200, 150), DType.i8)],
                   out_attrs(rng, DType.i8)),
             graph("QMatMul", [rand_q(rng, (3, 1, 6, 8), DType.u8),
                               rand_q(rng, (4, 8, 70), DType.i8)], out_attrs(rng, DType.u8))]
    for k, g in enumerate(cases):
        feeds = feeds_for(g, k)
        want = interpret(g, feeds)
        got = run_c(g, feeds, tmp_path / f"p{k}", BuildOptions(cpu=cpu, threads=threads,
                                                               werror=True))
        for name, ref in want.items():
            np.testing.assert_array_equal(got[name], ref)


@pytest.mark.usefixtures("definition_steps")
@pytest.mark.parametrize("cpu", CPUS)
@pytest.mark.parametrize("ta,tb,to,act", [(DType.u8, DType.u8, DType.u8, "relu"),
                                          (DType.i8, DType.u8, DType.i8, "none"),
                                          (DType.u8, DType.i8, DType.u8, None)])
def test_qadd_same_shape_lanes(ta: DType, tb: DType, to: DType, act: str | None, cpu: str,
                               tmp_path: Path) -> None:
    """A same-shape add runs eight lanes at a time plus a scalar tail (123 elements)."""
    rng = np.random.default_rng(11)
    g = graph("QAdd", [rand_q(rng, (3, 41), ta), rand_q(rng, (3, 41), tb)],
              out_attrs(rng, to, act))
    check_exact(g, tmp_path, cpu)


@pytest.mark.usefixtures("definition_steps")
@pytest.mark.parametrize("cpu", CPUS)
def test_qadd_output_multiplier_above_one(cpu: str, tmp_path: Path) -> None:
    """An output scale below 2^-20 of the inputs' makes the last multiplier exceed 1: the
    scalar definition runs instead of the lanes, with the same integers."""
    a, b = qt((2, 20), DType.u8, 0.5, 3), qt((2, 20), DType.u8, 0.25, 200)
    attrs = {"out_dtype": "i8", "out_scale": float(np.float32(0.5 / 2**22)), "out_zp": 1}
    check_exact(graph("QAdd", [a, b], attrs), tmp_path, cpu)


@pytest.mark.parametrize("cpu", CPUS)
@pytest.mark.parametrize("ratio", [0.37, 1.0, 3.3, 300.0, 2.0**20])
def test_requantize_multipliers_below_and_above_one(ratio: float, cpu: str,
                                                    tmp_path: Path) -> None:
    """Requantize by s_x / s_y below and above 1 (shifts n from 32 down to 11), every input
    code, with a zero point on both sides: the vector lanes and the scalar tail agree with
    the interpreter."""
    x = qt((2, 129), DType.i8, 0.05, -7)
    attrs = {"out_dtype": "u8", "out_scale": float(np.float32(0.05 / ratio)), "out_zp": 100}
    codes = np.resize(np.arange(-128, 128), 258).astype(np.int8).reshape(2, 129)
    check_exact(graph("Requantize", [x], attrs), tmp_path, cpu, feeds={"x0": codes})
