"""Epilogue tables (the fuse-epilogue pass's ``lut`` operand) in host C: every store path of
the INT8 products applies the table to the codes it just stored, bit-exact with the
interpreter, for u8 and i8 requantised codes (an i8 code's table is rotated in C) and u8/i8
results, with --cpu generic and avx2, and for convolutions avx512vnni where the CPU has it
(with and without VBMI's byte permutes where it has those too).

The paths: the fused tile kernel (multipliers below 1), the per-row store (a multiplier
above 1), depthwise (per row, per whole plane and per flattened plane), a depthwise 1x1
(per-channel scale), fully connected as GEMV and as GEMM (a transposed store), and QMatMul
of two run-time operands (fused and per-row).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from compiler.passes import as_passes, run_pipeline
from ir import qmath
from ir.build import make_node
from ir.interpreter import run as interpret
from ir.types import DType, QuantParams
from tests.codegen.test_ops_int8 import (
    CPUS,
    GEMM_CPUS,
    Const,
    check_exact,
    feeds_for,
    graph,
    out_attrs,
    rand_q,
    weights,
)


def lut(rng: np.random.Generator, dtype: DType) -> Const:
    lo, hi = qmath.qrange(dtype)
    table = rng.integers(lo, hi + 1, 256).astype(dtype.np)
    return table, QuantParams.per_tensor(float(np.float32(rng.uniform(0.01, 0.1))),
                                         int(rng.integers(lo, hi + 1)))


def big_multiplier(attrs: dict[str, Any]) -> dict[str, Any]:
    """An output scale so small that the multiplier exceeds 1 (the per-row store path)."""
    return {**attrs, "out_scale": 1e-6}


CONVS = {
    "dense_fused": (dict(x=(1, 9, 11, 13), w=(14, 9, 3, 3), s=[1, 1], p=[1, 1, 1, 1], g=1),
                    False),
    "dense_rowstore": (dict(x=(1, 5, 8, 8), w=(7, 5, 1, 1), s=[1, 1], p=[0, 0, 0, 0], g=1),
                       True),
    "depthwise_rows": (dict(x=(1, 6, 70, 70), w=(6, 1, 3, 3), s=[1, 1], p=[1, 1, 1, 1], g=6),
                       False),
    "depthwise_plane": (dict(x=(1, 6, 9, 9), w=(6, 1, 3, 3), s=[2, 2], p=[1, 1, 1, 1], g=6),
                        False),
    # short rows, unit strides: the flattened plane requantised and looked up in one pass
    "depthwise_flat": (dict(x=(1, 6, 12, 12), w=(6, 1, 3, 3), s=[1, 1], p=[1, 1, 1, 1], g=6),
                       False),
    "channel_scale": (dict(x=(1, 5, 7, 7), w=(5, 1, 1, 1), s=[1, 1], p=[0, 0, 0, 0], g=5),
                      False),
}


def has_vbmi() -> bool:
    from targets.host.cpu import cpu_flags

    return "avx512vbmi" in cpu_flags()


@pytest.mark.parametrize("cpu", GEMM_CPUS)
@pytest.mark.parametrize("mid,out", [(DType.u8, DType.u8), (DType.i8, DType.u8),
                                     (DType.u8, DType.i8)])
@pytest.mark.parametrize("case", sorted(CONVS))
@pytest.mark.parametrize("vbmi", ["auto", "off"])
def test_qconv_lut(case: str, mid: DType, out: DType, cpu: str, vbmi: str, tmp_path: Path,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    """AVX-512 builds look the table up with VBMI's byte permutes where the CPU has them
    (chosen at run time): "off" (QNNC_VBMI=0) checks the byte-by-byte path on such a CPU."""
    if vbmi == "off":
        if cpu != "avx512vnni" or not has_vbmi():
            pytest.skip("the VBMI switch matters only to AVX-512 builds on a CPU with VBMI")
        monkeypatch.setenv("QNNC_VBMI", "0")
    kw, big = CONVS[case]
    rng = np.random.default_rng(sorted(CONVS).index(case))
    attrs = {"strides": kw["s"], "pads": kw["p"], "group": kw["g"], "dilations": [1, 1],
             **out_attrs(rng, mid, "relu")}
    attrs = big_multiplier(attrs) if big else attrs
    bias = (rng.integers(-3000, 3000, kw["w"][0]).astype(np.int32), None)
    g = graph("QConv", [rand_q(rng, kw["x"], DType.u8), weights(rng, kw["w"], True), bias,
                        lut(rng, out)], attrs)
    assert g.outputs[0].type.dtype is out
    check_exact(g, tmp_path, cpu)


@pytest.mark.parametrize("cpu", GEMM_CPUS)
@pytest.mark.parametrize("mid,out", [(DType.u8, DType.u8), (DType.i8, DType.u8),
                                     (DType.u8, DType.i8)])
@pytest.mark.parametrize("act", ["none", "relu6"])
def test_qconv_lut_whole_tiles(mid: DType, out: DType, act: str, cpu: str,
                               tmp_path: Path) -> None:
    """Weights within the pair rule, so that AVX2 builds take the u8 tile: 13 channels
    make two whole six-row tiles, whose rows are requantised and looked up from the
    accumulator registers (qnnc_q8u_tile_st_avx2), and one row left to the row store,
    which looks two rows up at a time (an odd count here); 88 positions make five whole
    panels and one of 8 columns."""
    rng = np.random.default_rng(31)
    attrs = {"strides": [1, 1], "pads": [0, 0, 0, 0], "group": 1, "dilations": [1, 1],
             **out_attrs(rng, mid, act)}
    bias = (rng.integers(-3000, 3000, 13).astype(np.int32), None)
    g = graph("QConv", [rand_q(rng, (1, 40, 8, 11), DType.u8),
                        weights(rng, (13, 40, 1, 1), True, amax=64), bias, lut(rng, out)],
              attrs)
    check_exact(g, tmp_path, cpu)
    (source,) = [f.read_text() for f in tmp_path.rglob("model.c")]
    assert "u8 quads" in source


@pytest.mark.parametrize("cpu", CPUS)
@pytest.mark.parametrize("xshape,n,big", [((1, 300), 20, False), ((40, 64), 13, False),
                                          ((40, 64), 13, True)])
def test_qlinear_lut(xshape: tuple, n: int, big: bool, cpu: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(n + big)
    for mid in (DType.u8, DType.i8):
        attrs = out_attrs(rng, mid)
        attrs = big_multiplier(attrs) if big else attrs
        g = graph("QLinear", [rand_q(rng, xshape, DType.i8), weights(rng, (n, xshape[-1]), True),
                              None, lut(rng, DType.u8)], attrs)
        check_exact(g, tmp_path, cpu)


@pytest.mark.parametrize("cpu", CPUS)
@pytest.mark.parametrize("big", [False, True])
def test_qmatmul_lut(big: bool, cpu: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(7 + big)
    attrs = out_attrs(rng, DType.i8)
    attrs = big_multiplier(attrs) if big else attrs
    g = graph("QMatMul", [rand_q(rng, (2, 20, 24), DType.u8), rand_q(rng, (24, 19), DType.u8),
                          lut(rng, DType.i8)], attrs)
    check_exact(g, tmp_path, cpu)


def test_fused_graph_runs_as_the_unfused_one(tmp_path: Path) -> None:
    """QConv -> QLut -> Requantize, compiled as three nodes and, after fuse-epilogue, as one:
    the same integers (and the interpreter agrees with both)."""
    rng = np.random.default_rng(3)
    attrs = {"strides": [1, 1], "pads": [1, 1, 1, 1], "group": 1, "dilations": [1, 1],
             **out_attrs(rng, DType.u8, "relu")}
    g = graph("QConv", [rand_q(rng, (1, 4, 12, 12), DType.u8),
                        weights(rng, (10, 4, 3, 3), True), None], attrs)
    table, q = lut(rng, DType.u8)
    t = make_node(g, "QLut", [g.outputs[0]], {"table": [int(v) for v in table],
                                               "out_dtype": "u8", "out_scale": q.scale[0],
                                               "out_zp": q.zero_point[0]}, name="act")
    r = make_node(g, "Requantize", [t.outputs[0]], {"out_dtype": "i8", "out_scale": 0.05,
                                                    "out_zp": 3}, name="rq")
    g.outputs = list(r.outputs)
    feeds = feeds_for(g, 0)
    want = interpret(g, feeds)
    check_exact(g, tmp_path, CPUS[-1], feeds)
    fused = run_pipeline(g.copy(), as_passes("fuse-epilogue"))
    assert [n.op for n in fused.nodes] == ["QConv"]
    check_exact(fused, tmp_path, CPUS[-1], feeds)
    got = interpret(fused, feeds)
    np.testing.assert_array_equal(got[fused.outputs[0].name], want[g.outputs[0].name])
