"""Quantised IR ops against straightforward references written here with Python ints and
Fractions, element by element: the (M0, shift) encoding of qmath is part of the specification,
everything else (accumulation, rounding, clamping) is re-done independently. Also: the
quantised data-movement ops keep their quantisation, and float arithmetic rejects it."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ir import qmath
from ir.build import make_node
from ir.graph import Graph
from ir.interpreter import run
from ir.ops.registry import OpError
from ir.qforms import clamp_between
from ir.text import parse_graph, print_graph
from ir.types import DType, QuantParams, TensorType
from ir.verifier import verify

Operand = tuple[np.ndarray, QuantParams | None, bool]  # (data, quant, is constant)

#: a fused activation as the real range its clamp keeps (qforms.clamp_between)
ACTIVATIONS = {"none": (-np.inf, np.inf), "relu": (0.0, np.inf), "relu6": (0.0, 6.0)}


def build(op: str, operands: list[Operand | None], **attrs: Any) -> Graph:
    g = Graph("t")
    vals = []
    for i, o in enumerate(operands):
        if o is None:
            vals.append(None)
            continue
        data, q, const = o
        if const:
            v = g.add_const(data, f"c{i}")
            v.type = TensorType(v.type.shape, v.type.dtype, q)
        else:
            v = g.add_input(f"x{i}", TensorType(data.shape, DType.from_numpy(data.dtype), q))
        vals.append(v)
    node = make_node(g, op, vals, attrs)
    g.outputs = list(node.outputs)
    verify(g)
    return g


def run_op(op: str, operands: list[Operand | None], **attrs: Any) -> tuple[np.ndarray, Graph]:
    g = build(op, operands, **attrs)
    feeds = {f"x{i}": o[0] for i, o in enumerate(operands) if o is not None and not o[2]}
    return run(g, feeds)[g.outputs[0].name], g


# -- the reference arithmetic --------------------------------------------------------------


def ref_requant(acc: int, m: float) -> int:
    """acc · M rounded half up, with M as qmath encodes it: exact integer arithmetic."""
    m0, shift = qmath.quantize_multiplier(m)
    if m0 == 0:
        return 0
    n = 31 + shift
    return (acc * m0 + (1 << (n - 1))) >> n


def clamp(v: int, dt: DType, lo: int = -(2**31), hi: int = 2**31 - 1) -> int:
    qlo, qhi = qmath.qrange(dt)
    return min(max(v, qlo, lo), qhi, hi)


def near_real(got: int, acc: int, m: float) -> None:
    """The encoded multiplier is accurate: the result is within one of acc · M exactly."""
    assert abs(got - Fraction(acc) * Fraction(m)) <= 1


def pt(scale: float, zp: int) -> QuantParams:
    return QuantParams.per_tensor(scale, zp)


def rand_q(rng: np.random.Generator, shape: tuple[int, ...], dt: DType) -> np.ndarray:
    lo, hi = qmath.qrange(dt)
    return rng.integers(lo, hi + 1, size=shape).astype(dt.np)


def out_attrs(dt: DType, scale: float, zp: int) -> dict[str, Any]:
    return {"out_dtype": dt.value, "out_scale": scale, "out_zp": zp}


# -- QConv ---------------------------------------------------------------------------------


def ref_conv(x: np.ndarray, zx: int, w: np.ndarray, zw: list[int], b: np.ndarray | None,
             s: list[int], p: list[int], d: list[int], g: int) -> np.ndarray:
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    oh = (h + p[0] + p[2] - ((kh - 1) * d[0] + 1)) // s[0] + 1
    ow = (wd + p[1] + p[3] - ((kw - 1) * d[1] + 1)) // s[1] + 1
    acc = np.zeros((n, m, oh, ow), dtype=object)
    mg = m // g
    for b_, co, i, j in itertools.product(range(n), range(m), range(oh), range(ow)):
        total = int(b[co]) if b is not None else 0
        for ci, ki, kj in itertools.product(range(cg), range(kh), range(kw)):
            r, q = i * s[0] - p[0] + ki * d[0], j * s[1] - p[1] + kj * d[1]
            if 0 <= r < h and 0 <= q < wd:  # padding holds zx: contributes 0
                xv = int(x[b_, (co // mg) * cg + ci, r, q]) - zx
                total += xv * (int(w[co, ci, ki, kj]) - zw[co])
        acc[b_, co, i, j] = total
    return acc


@pytest.mark.parametrize("seed", range(6))
def test_qconv_groups_dilations_pads_per_channel(seed: int) -> None:
    rng = np.random.default_rng(seed)
    g = [1, 2, 4][seed % 3]
    cg, mg = 2 if g < 4 else 1, [1, 2][seed % 2]
    c, m = cg * g, mg * g
    xdt = [DType.u8, DType.i8][seed % 2]
    x = rand_q(rng, (2, c, 6, 5), xdt)
    w = rng.integers(-127, 128, size=(m, cg, 3, 2)).astype(np.int8)
    per_channel = seed % 3 != 2
    sw = [float(np.float32(v)) for v in rng.uniform(0.002, 0.02, m)] if per_channel else [0.01]
    zw = [0] * m if per_channel else [int(rng.integers(-3, 4))]
    wq = QuantParams(tuple(sw), tuple(zw), 0) if per_channel else pt(sw[0], zw[0])
    sx, zx = 0.05, int(rng.integers(*qmath.qrange(xdt)))
    b = rng.integers(-5000, 5000, size=m).astype(np.int32)
    sy, zy = 0.07, int(rng.integers(0, 50))
    strides, pads, dil = [1 + seed % 2, 1], [1, 0, 2, 1], [1 + (seed // 3), 2]
    ydt = [DType.u8, DType.i8][(seed // 2) % 2]
    act = clamp_between(*ACTIVATIONS[["none", "relu", "relu6"][seed % 3]], ydt, sy, zy)
    got, _ = run_op("QConv", [(x, pt(sx, zx), False), (w, wq, True), (b, None, True)],
                    strides=strides, pads=pads, dilations=dil, group=g,
                    act_min=act[0], act_max=act[1], **out_attrs(ydt, sy, zy))
    zws = zw * m if not per_channel else zw
    sws = sw * m if not per_channel else sw
    acc = ref_conv(x, zx, w, zws, b, strides, pads, dil, g)
    assert got.dtype == ydt.np and got.shape == acc.shape
    for idx in np.ndindex(acc.shape):
        mult = sx * sws[idx[1]] / sy
        raw = ref_requant(acc[idx], mult)
        near_real(raw, acc[idx], mult)
        assert int(got[idx]) == clamp(zy + raw, ydt, *act), idx
    if act[0] > qmath.qrange(ydt)[0]:
        assert got.min() >= act[0]  # the fused ReLU clamp


def test_qconv_pointwise_and_depthwise_paths() -> None:
    """The float Conv's fast paths (1x1 without pads; depthwise) give the same integers."""
    rng = np.random.default_rng(7)
    for w_shape, g in (((4, 3, 1, 1), 1), ((3, 1, 3, 3), 3)):
        x = rand_q(rng, (1, 3, 5, 5), DType.u8)
        w = rng.integers(-127, 128, size=w_shape).astype(np.int8)
        got, _ = run_op("QConv", [(x, pt(0.1, 128), False), (w, pt(0.01, 0), True)],
                        strides=[1, 1], pads=[0, 0, 0, 0], dilations=[1, 1], group=g,
                        **out_attrs(DType.u8, 0.2, 10))
        acc = ref_conv(x, 128, w, [0] * w_shape[0], None, [1, 1], [0] * 4, [1, 1], g)
        want = np.vectorize(lambda a: clamp(10 + ref_requant(int(a), 0.1 * 0.01 / 0.2),
                                            DType.u8))(acc)
        np.testing.assert_array_equal(got, want.astype(np.uint8))


def test_qconv_rejects_bad_types() -> None:
    x = np.zeros((1, 2, 3, 3), np.uint8)
    w = np.zeros((2, 2, 1, 1), np.int8)
    geo = {"strides": [1, 1], "pads": [0] * 4, "dilations": [1, 1]}
    with pytest.raises(OpError, match="quantised"):
        build("QConv", [(x, None, False), (w, pt(1.0, 0), True)], **geo,
              **out_attrs(DType.u8, 1.0, 0))
    bad_axis = QuantParams((1.0, 1.0), (0, 0), 1)
    with pytest.raises(OpError, match="axis 0"):
        build("QConv", [(x, pt(1.0, 0), False), (w, bad_axis, True)], **geo,
              **out_attrs(DType.u8, 1.0, 0))
    with pytest.raises(OpError, match="too large"):
        build("QConv", [(x, pt(1.0, 0), False), (w, pt(1.0, 0), True)], **geo,
              **out_attrs(DType.u8, 2.0**-31, 0))


# -- QLinear, QMatMul ----------------------------------------------------------------------


@given(st.integers(0, 2**32 - 1), st.booleans())
@settings(max_examples=30, deadline=None)
def test_qlinear(seed: int, per_channel: bool) -> None:
    rng = np.random.default_rng(seed)
    k, n = int(rng.integers(1, 9)), int(rng.integers(1, 6))
    x = rand_q(rng, (2, 3, k), DType.u8)
    w = rng.integers(-127, 128, size=(n, k)).astype(np.int8)
    sw = [float(v) for v in rng.uniform(0.001, 0.05, n if per_channel else 1)]
    wq = QuantParams(tuple(sw), (0,) * n, 0) if per_channel else pt(sw[0], 0)
    b = rng.integers(-2000, 2000, size=n).astype(np.int32)
    zx, sx, sy, zy = int(rng.integers(0, 256)), 0.03, 0.02, -5
    got, _ = run_op("QLinear", [(x, pt(sx, zx), False), (w, wq, True), (b, None, True)],
                    act_min=-100, act_max=100, **out_attrs(DType.i8, sy, zy))
    for i, j, c in np.ndindex(2, 3, n):
        acc = int(b[c]) + sum((int(x[i, j, t]) - zx) * int(w[c, t]) for t in range(k))
        mult = sx * sw[c if per_channel else 0] / sy
        assert int(got[i, j, c]) == clamp(zy + ref_requant(acc, mult), DType.i8, -100, 100)


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=25, deadline=None)
def test_qmatmul_broadcasting(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rand_q(rng, (2, 1, 3, 4), DType.i8)
    b = rand_q(rng, (3, 4, 2), DType.u8)
    za, zb, sa, sb, sy, zy = -3, 130, 0.02, 0.04, 0.5, 128
    got, _ = run_op("QMatMul", [(a, pt(sa, za), False), (b, pt(sb, zb), False)],
                    **out_attrs(DType.u8, sy, zy))
    assert got.shape == (2, 3, 3, 2)
    for i, j, r, c in np.ndindex(got.shape):
        acc = sum((int(a[i, 0, r, t]) - za) * (int(b[j, t, c]) - zb) for t in range(4))
        assert int(got[i, j, r, c]) == clamp(zy + ref_requant(acc, sa * sb / sy), DType.u8)


# -- QAdd, QMul, Requantize, QLut ----------------------------------------------------------


@given(st.integers(0, 2**32 - 1), st.floats(0.001, 1.0), st.floats(0.001, 1.0),
       st.floats(0.005, 1.0))
@settings(max_examples=60, deadline=None)
def test_qadd_different_scales_broadcast(seed: int, sa: float, sb: float, sy: float) -> None:
    rng = np.random.default_rng(seed)
    a = rand_q(rng, (2, 3, 4), DType.u8)
    b = rand_q(rng, (3, 1), DType.i8)
    za, zb, zy = int(rng.integers(0, 256)), int(rng.integers(-128, 128)), 100
    act = clamp_between(*ACTIVATIONS["relu"], DType.u8, sy, zy)
    got, _ = run_op("QAdd", [(a, pt(sa, za), False), (b, pt(sb, zb), False)],
                    act_min=act[0], act_max=act[1], **out_attrs(DType.u8, sy, zy))
    s = 2 * max(sa, sb)
    for i, j, k in np.ndindex(got.shape):
        av = ref_requant((int(a[i, j, k]) - za) << 20, sa / s)
        bv = ref_requant((int(b[j, 0]) - zb) << 20, sb / s)
        raw = ref_requant(av + bv, s / (2**20 * sy))
        assert int(got[i, j, k]) == clamp(zy + raw, DType.u8, *act)
        real = (Fraction(sa) * (int(a[i, j, k]) - za) + Fraction(sb) * (int(b[j, 0]) - zb))
        assert abs(raw - real / Fraction(sy)) <= 1  # L = 20 bits keep it accurate


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=30, deadline=None)
def test_qmul(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rand_q(rng, (4, 5), DType.i8), rand_q(rng, (5,), DType.i8)
    sa, sb, sy, za, zb, zy = 0.05, 0.1, 0.3, 2, -7, 0
    got, _ = run_op("QMul", [(a, pt(sa, za), False), (b, pt(sb, zb), False)],
                    **out_attrs(DType.i8, sy, zy))
    for i, j in np.ndindex(4, 5):
        acc = (int(a[i, j]) - za) * (int(b[j]) - zb)
        assert int(got[i, j]) == clamp(zy + ref_requant(acc, sa * sb / sy), DType.i8)


@given(st.integers(0, 2**32 - 1), st.floats(0.001, 10.0), st.floats(0.001, 10.0))
@settings(max_examples=50, deadline=None)
def test_requantize(seed: int, sx: float, sy: float) -> None:
    rng = np.random.default_rng(seed)
    x = rand_q(rng, (17,), DType.u8)
    got, _ = run_op("Requantize", [(x, pt(sx, 77), False)], **out_attrs(DType.i8, sy, -20))
    for i in range(17):
        assert int(got[i]) == clamp(-20 + ref_requant(int(x[i]) - 77, sx / sy), DType.i8)


def test_requantize_ties_round_half_up() -> None:
    """M = 1/2 exactly: odd accumulators sit on a .5 tie, which requantisation rounds up
    (towards +inf), unlike QuantizeLinear's ties to even."""
    x = np.arange(0, 8, dtype=np.uint8)
    got, _ = run_op("Requantize", [(x, pt(0.5, 4), False)], **out_attrs(DType.i8, 1.0, 0))
    assert got.tolist() == [-2, -1, -1, 0, 0, 1, 1, 2]  # -4*.5=-2, -3*.5=-1.5 -> -1, ...


def test_qlut_sigmoid() -> None:
    x = np.arange(-128, 128, dtype=np.int8)
    table = qmath.make_lut(lambda v: 1 / (1 + np.exp(-v)), 0.1, 3, DType.i8, 1 / 256, -128,
                           DType.i8)
    got, _ = run_op("QLut", [(x, pt(0.1, 3), False)], table=table.tolist(),
                    **out_attrs(DType.i8, 1 / 256, -128))
    for v in range(-128, 128):
        real = 1 / (1 + math.exp(-0.1 * (v - 3)))
        want = min(127, round(real * 256) - 128)
        assert abs(int(got[v + 128]) - want) <= 1
        assert int(got[v + 128]) == int(table[v + 128])
    with pytest.raises(OpError, match="256"):
        build("QLut", [(x, pt(0.1, 3), False)], table=[0] * 10,
              **out_attrs(DType.i8, 1.0, 0))


def test_quantize_dequantize_retype() -> None:
    x = np.array([[-1.0, 0.25, 0.75], [2.5, 1000.0, -0.125]], np.float32)
    got, g = run_op("Quantize", [(x, None, False)], dtype="u8", scale=[0.5, 0.25],
                    zero_point=[10, 0], axis=0)
    assert g.outputs[0].type.quant == QuantParams((0.5, 0.25), (10, 0), 0)
    # rint: ties to even; saturation at 255
    assert got.tolist() == [[8, 10, 12], [10, 255, 0]]
    back, _ = run_op("Dequantize", [(got, QuantParams((0.5, 0.25), (10, 0), 0), False)])
    np.testing.assert_array_equal(back, [[-1.0, 0.0, 1.0], [2.5, 63.75, 0.0]])
    y, g = run_op("Retype", [(got, None, False)], scale=[0.1], zero_point=[3])
    assert g.outputs[0].type.quant == pt(0.1, 3) and y is not None
    np.testing.assert_array_equal(y, got)
    _, g = run_op("Retype", [(got, pt(0.1, 3), False)])
    assert g.outputs[0].type.quant is None


# -- pooling -------------------------------------------------------------------------------


@pytest.mark.parametrize("include_pad", [False, True])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_qaveragepool(include_pad: bool, ceil_mode: bool) -> None:
    rng = np.random.default_rng(int(include_pad) * 2 + int(ceil_mode))
    x = rand_q(rng, (1, 2, 5, 6), DType.u8)
    sx, zx, sy, zy = 0.1, 90, 0.08, 5
    k, s, p = [3, 2], [2, 2], [1, 1, 1, 0]
    got, _ = run_op("QAveragePool", [(x, pt(sx, zx), False)], kernel_shape=k, strides=s,
                    pads=p, dilations=[1, 1], ceil_mode=ceil_mode,
                    count_include_pad=include_pad, **out_attrs(DType.u8, sy, zy))
    h, w = x.shape[2:]
    for n, c, i, j in np.ndindex(got.shape):
        acc, count = 0, 0
        for ki, kj in itertools.product(range(k[0]), range(k[1])):
            r, q = i * s[0] - p[0] + ki, j * s[1] - p[1] + kj
            inside = 0 <= r < h and 0 <= q < w
            in_pads = -p[0] <= r < h + p[2] and -p[1] <= q < w + p[3]
            if inside:
                acc += int(x[n, c, r, q]) - zx
            count += inside if not include_pad else in_pads
        raw = ref_requant(acc, sx / (sy * count))
        assert int(got[n, c, i, j]) == clamp(zy + raw, DType.u8), (n, c, i, j)
        near_real(raw, acc, sx / (sy * count))


def test_qglobalaveragepool() -> None:
    rng = np.random.default_rng(3)
    x = rand_q(rng, (2, 3, 4, 5), DType.i8)
    got, _ = run_op("QGlobalAveragePool", [(x, pt(0.2, -10), False)],
                    **out_attrs(DType.i8, 0.1, 1))
    assert got.shape == (2, 3, 1, 1)
    for n, c in np.ndindex(2, 3):
        acc = sum(int(v) + 10 for v in x[n, c].reshape(-1))
        assert int(got[n, c, 0, 0]) == clamp(1 + ref_requant(acc, 0.2 / (0.1 * 20)), DType.i8)


# -- ONNX's integer ops --------------------------------------------------------------------


def test_convinteger_and_matmulinteger_per_channel_zero_points() -> None:
    rng = np.random.default_rng(11)
    x = rand_q(rng, (1, 2, 4, 4), DType.u8)
    w = rand_q(rng, (3, 2, 2, 2), DType.u8)
    xz, wz = np.array(100, np.uint8), np.array([1, 2, 3], np.uint8)
    got, _ = run_op("ConvInteger", [(x, None, False), (w, None, True), (xz, None, True),
                                    (wz, None, True)],
                    strides=[1, 1], pads=[1, 1, 0, 0], dilations=[1, 1])
    acc = ref_conv(x, 100, w, [1, 2, 3], None, [1, 1], [1, 1, 0, 0], [1, 1], 1)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, acc.astype(np.int64))
    a, b = rand_q(rng, (3, 4), DType.u8), rand_q(rng, (4, 2), DType.i8)
    az, bz = np.array([1, 2, 3], np.uint8), np.array([-1, 5], np.int8)
    got, _ = run_op("MatMulInteger", [(a, None, False), (b, None, False), (az, None, True),
                                      (bz, None, True)])
    want = [[sum((int(a[r, t]) - int(az[r])) * (int(b[t, c]) - int(bz[c])) for t in range(4))
             for c in range(2)] for r in range(3)]
    np.testing.assert_array_equal(got, want)


def test_dynamic_quantize_linear() -> None:
    x = np.array([-1.0, 0.0, 0.5, 3.0, 2.0], np.float32)
    g = build("DynamicQuantizeLinear", [(x, None, False)])
    y, s, z = (run(g, {"x0": x})[v.name] for v in g.outputs)
    assert s == np.float32(4.0) / np.float32(255) and int(z) == 64  # rint(63.75)
    np.testing.assert_array_equal(y, qmath.quantize(x, s, 64, DType.u8))


def test_exact_path_large_accumulators() -> None:
    """Accumulators past 2^31 (and operands whose float64 sum could round) stay exact."""
    k = 4096
    x = np.full((1, k), 255, np.uint8)
    w = np.full((1, k), -128, np.int8)
    got, _ = run_op("QLinear", [(x, pt(1.0, 0), False), (w, pt(1.0, 0), True)],
                    **out_attrs(DType.i8, 2.0**25, 0))
    assert int(got[0, 0]) == ref_requant(255 * -128 * k, 2.0**-25)


# -- quantisation through data movement ----------------------------------------------------


Q = pt(0.05, 7)


@pytest.mark.parametrize("op, attrs", [
    ("Reshape", {"shape": [1, 2, 16]}),
    ("Transpose", {"perm": [0, 2, 3, 1]}),
    ("Slice", {"starts": [0, 0, 1, 0], "ends": [1, 2, 3, 4], "steps": [1, 1, 1, 2]}),
    ("Identity", {}),
    ("Pad", {"pads": [0, 0, 1, 1, 0, 0, 1, 1], "value": 7.0}),
    ("Expand", {"shape": [2, 2, 4, 4]}),
    ("Tile", {"repeats": [1, 1, 2, 1]}),
    ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [0] * 4,
                 "dilations": [1, 1]}),
    ("GlobalMaxPool", {}),
    ("Resize", {"sizes": [1, 2, 8, 8], "scales": [1.0, 1.0, 2.0, 2.0], "mode": "nearest"}),
    ("DepthToSpace", {"blocksize": 1}),
    ("SpaceToDepth", {"blocksize": 2}),
    ("Split", {"axis": 1, "split": [1, 1]}),
])
def test_data_movement_keeps_quant(op: str, attrs: dict[str, Any]) -> None:
    x = np.arange(32, dtype=np.uint8).reshape(1, 2, 4, 4)
    g = build(op, [(x, Q, False)], **attrs)
    assert all(v.type.quant == Q for v in g.outputs)
    run(g, {"x0": x})


def test_gather_and_concat_quant() -> None:
    x = np.arange(12, dtype=np.int8).reshape(3, 4)
    idx = np.array([2, 0], np.int64)
    g = build("Gather", [(x, Q, False), (idx, None, True)], axis=0)
    assert g.outputs[0].type.quant == Q
    g = build("Concat", [(x, Q, False), (x, Q, False)], axis=1)
    assert g.outputs[0].type.quant == Q
    with pytest.raises(OpError, match="share one quantisation"):
        build("Concat", [(x, Q, False), (x, pt(0.05, 8), False)], axis=1)
    with pytest.raises(OpError, match="share one quantisation"):
        build("Concat", [(x, Q, False), (x, None, False)], axis=1)


@pytest.mark.parametrize("op, attrs", [
    ("Relu", {}), ("Add", {}), ("Mul", {}), ("MatMul", {}),
    ("Resize", {"sizes": [4, 8], "scales": [1.0, 2.0], "mode": "linear"}),
])
def test_arithmetic_rejects_quantised(op: str, attrs: dict[str, Any]) -> None:
    x = np.zeros((4, 4), np.uint8)
    n = 1 if op in ("Relu", "Resize") else 2
    with pytest.raises(OpError, match="quantised"):
        build(op, [(x, Q, False)] * n, **attrs)


def test_conv_rejects_quantised() -> None:
    x = np.zeros((1, 1, 3, 3), np.uint8)
    with pytest.raises(OpError, match="quantised"):
        build("Conv", [(x, Q, False), (x, Q, True)], strides=[1, 1], pads=[0] * 4,
              dilations=[1, 1])


def test_qops_print_and_parse() -> None:
    """Quantised types and Q-op attributes survive the IR text."""
    x = np.zeros((1, 2, 3, 3), np.uint8)
    w = np.ones((2, 2, 1, 1), np.int8)
    g = build("QConv", [(x, Q, False), (w, QuantParams((0.5, 0.25), (0, 0), 0), True)],
              strides=[1, 1], pads=[0] * 4, dilations=[1, 1], act_min=7, act_max=255,
              **out_attrs(DType.u8, 0.1, 7))
    text = print_graph(g)
    assert "QConv" in text
    assert parse_graph(text) == g
