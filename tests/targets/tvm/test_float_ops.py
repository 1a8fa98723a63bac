"""The float ops of float graphs through the tvm target (targets/tvm/kernels/float_nn.py,
float_elementwise.py, float_pool.py, resize.py), against the reference interpreter on
hypothesis-drawn shapes and attributes.

Tolerances: elementwise results within rtol 1e-5 / atol 1e-6 (a few float32 ulp: exp, tanh
and erf come from LLVM, not numpy). A sum (Conv, ConvTranspose, Gemm, MatMul, the average
pools) runs in another order than numpy's, so its error is bounded by the size of its terms,
not of its result (cancellation): each element within rtol 1e-5 plus 1e-5 times the same
sum over |operands| (the interpreter's result on the operands' absolute values). nearest
Resize, on every type, is exact.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

pytest.importorskip("tvm", reason="the tvm target needs Apache TVM (pip install apache-tvm)")

from ir.build import make_node  # noqa: E402
from ir.graph import Graph  # noqa: E402
from ir.interpreter import run  # noqa: E402
from ir.ops.registry import OpError  # noqa: E402
from ir.verifier import verify  # noqa: E402
from targets.tvm.build import run_in_memory  # noqa: E402
from targets.tvm.lower import unsupported  # noqa: E402
from tests.targets.tvm.harness import (  # noqa: E402
    Operand,
    add_operands,
    assert_close,
    assert_exact,
    feeds_of,
    one_node,
)

SETTINGS = settings(max_examples=15, deadline=None)
FLOAT_TYPES = st.sampled_from([np.float32, np.float32, np.float64])
#: elementwise float32 results: a few ulp apart
RTOL, ATOL = 1e-5, 1e-6
#: sums: relative to the result, and to the sum of the terms' magnitudes
SUM_RTOL, SUM_ATOL = 1e-5, 1e-5


def floats(data: st.DataObject, shape: tuple[int, ...], const: bool = False,
           dtype: type = np.float32) -> Operand:
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    scale = data.draw(st.sampled_from([1.0, 10.0, 0.01]))
    return (rng.standard_normal(shape) * scale).astype(dtype), None, const


def build(op: str, operands: list[Operand | None], **attrs: Any) -> Graph:
    """one_node, or the example rejected when the drawn attributes make no valid node."""
    try:
        return one_node(op, operands, **attrs)
    except OpError:
        assume(False)
        raise


def assert_sum_close(op: str, operands: list[Operand | None], **attrs: Any) -> None:
    """The tvm build within SUM_RTOL of the result plus SUM_ATOL times the sum of the
    terms' magnitudes, elementwise (see the module doc)."""
    g = build(op, operands, **attrs)
    feeds = feeds_of(operands)
    want = run(g, feeds)[g.outputs[0].name]
    (got,) = run_in_memory(g, feeds)
    absolute = [None if o is None else (np.abs(o[0]), o[1], o[2]) for o in operands]
    ga = one_node(op, absolute, **attrs)
    magnitude = np.abs(run(ga, feeds_of(absolute))[ga.outputs[0].name])
    assert got.dtype == want.dtype and got.shape == want.shape
    err = np.abs(got.astype(np.float64) - want)
    bound = SUM_RTOL * np.abs(want) + SUM_ATOL * magnitude + 1e-30
    worst = np.unravel_index(np.argmax(err - bound), err.shape)
    assert (err <= bound).all(), f"{op}: error {err[worst]} > {bound[worst]} at {worst}"


def spatial(data: st.DataObject) -> int:
    return data.draw(st.integers(1, 2))


# -- products --------------------------------------------------------------------------------


@SETTINGS
@given(st.data())
def test_conv(data: st.DataObject) -> None:
    dt = data.draw(FLOAT_TYPES)
    nsp = spatial(data)
    group = data.draw(st.sampled_from([1, 1, 2, 3]))
    cg, mg = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    depthwise = data.draw(st.booleans())
    if depthwise:
        cg = 1
    kern = [data.draw(st.integers(1, 3)) for _ in range(nsp)]
    size = [data.draw(st.integers(1, 7)) for _ in range(nsp)]
    attrs = {"strides": [data.draw(st.integers(1, 3)) for _ in range(nsp)],
             "dilations": [data.draw(st.integers(1, 2)) for _ in range(nsp)],
             "pads": [data.draw(st.integers(0, 2)) for _ in range(2 * nsp)], "group": group}
    n = data.draw(st.integers(1, 2))
    ops = [floats(data, (n, cg * group, *size), dtype=dt),
           floats(data, (mg * group, cg, *kern), True, dtype=dt)]
    if data.draw(st.booleans()):
        ops.append(floats(data, (mg * group,), data.draw(st.booleans()), dtype=dt))
    assert_sum_close("Conv", ops, **attrs)


@SETTINGS
@given(st.data())
def test_conv_transpose(data: st.DataObject) -> None:
    dt = data.draw(FLOAT_TYPES)
    nsp = spatial(data)
    group = data.draw(st.sampled_from([1, 1, 2]))
    cg, mg = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    kern = [data.draw(st.integers(1, 3)) for _ in range(nsp)]
    size = [data.draw(st.integers(1, 5)) for _ in range(nsp)]
    strides = [data.draw(st.integers(1, 3)) for _ in range(nsp)]
    attrs = {"strides": strides,
             "dilations": [data.draw(st.integers(1, 2)) for _ in range(nsp)],
             # negative pads widen the output with cells only the bias reaches
             "pads": [data.draw(st.integers(-1, 2)) for _ in range(2 * nsp)], "group": group,
             "output_padding": [data.draw(st.integers(0, s - 1)) for s in strides]}
    ops = [floats(data, (1, cg * group, *size), dtype=dt),
           floats(data, (cg * group, mg, *kern), True, dtype=dt)]
    if data.draw(st.booleans()):
        ops.append(floats(data, (mg * group,), True, dtype=dt))
    assert_sum_close("ConvTranspose", ops, **attrs)


@SETTINGS
@given(st.data())
def test_gemm(data: st.DataObject) -> None:
    dt = data.draw(FLOAT_TYPES)
    m, k, n = (data.draw(st.integers(1, 9)) for _ in range(3))
    ta, tb = data.draw(st.booleans()), data.draw(st.booleans())
    ops = [floats(data, (k, m) if ta else (m, k), dtype=dt),
           floats(data, (n, k) if tb else (k, n), data.draw(st.booleans()), dtype=dt)]
    attrs: dict[str, Any] = {"transA": ta, "transB": tb,
                             "alpha": data.draw(st.sampled_from([1.0, 0.1, -2.5]))}
    if data.draw(st.booleans()):
        cshape = data.draw(st.sampled_from([(m, n), (n,), (1, n), (m, 1), (1,)]))
        ops.append(floats(data, cshape, data.draw(st.booleans()), dtype=dt))
        attrs["beta"] = data.draw(st.sampled_from([1.0, 0.3]))
    assert_sum_close("Gemm", ops, **attrs)


@SETTINGS
@given(st.data())
def test_matmul(data: st.DataObject) -> None:
    dt = data.draw(FLOAT_TYPES)
    m, k, n = (data.draw(st.integers(1, 6)) for _ in range(3))
    batch = tuple(data.draw(st.lists(st.integers(1, 3), max_size=2)))
    a_shape = data.draw(st.sampled_from([(k,), (m, k), (*batch, m, k)]))
    b_shape = data.draw(st.sampled_from([(k, n), (*batch, k, n)]
                                        + ([(k,)] if len(a_shape) > 1 else [])))
    # a batch axis of one broadcasts against the other operand's
    b_shape = tuple(1 if data.draw(st.booleans()) and i < len(b_shape) - 2 else d
                    for i, d in enumerate(b_shape))
    ops = [floats(data, a_shape, dtype=dt),
           floats(data, b_shape, data.draw(st.booleans()), dtype=dt)]
    assert_sum_close("MatMul", ops)


# -- elementwise -------------------------------------------------------------------------------

shapes = st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple)
UNARY = ["Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "SiLU", "Erf",
         "Exp", "Log", "Sqrt", "Reciprocal", "Neg", "Abs", "Clip"]
POSITIVE = {"Log", "Sqrt"}


def each_op(specs: list[tuple[str, list[int], dict[str, Any]]],
            inputs: list[Operand]) -> Graph:
    """A graph of one node per (op, indices of its operands in ``inputs``, attributes), every
    result an output: one build checks every op."""
    g = Graph("t")
    values = add_operands(g, list(inputs))
    for op, which, attrs in specs:
        node = make_node(g, op, [values[i] for i in which], attrs, name=f"{op}/node")
        g.outputs.append(node.outputs[0])
    verify(g)
    return g


@SETTINGS
@given(st.data())
def test_unary(data: st.DataObject) -> None:
    dtype = data.draw(FLOAT_TYPES)
    x = floats(data, data.draw(shapes), dtype=dtype)
    positive = (np.abs(x[0]) + dtype(1e-3), None, False)
    clip = {k: v for k, v in (("min", data.draw(st.sampled_from([None, -0.1, 0.0, 0.7]))),
                              ("max", data.draw(st.sampled_from([None, 6.0, 0.30000001,
                                                                 -0.5]))))
            if v is not None}
    attrs: dict[str, dict[str, Any]] = {
        "LeakyRelu": {"alpha": data.draw(st.sampled_from([0.01, 0.1, 0.3333333]))},
        "HardSigmoid": dict(zip(("alpha", "beta"),
                                data.draw(st.sampled_from([(0.2, 0.5), (1 / 6, 0.5)])))),
        "Clip": clip}
    specs = [(op, [1 if op in POSITIVE else 0], attrs.get(op, {})) for op in UNARY]
    g = each_op(specs, [x, positive])
    assert_close(g, feeds_of([x, positive]), RTOL, ATOL)


def test_clamps_keep_nan() -> None:
    x = (np.array([np.nan, -1.0, 2.0, np.inf, -np.inf], np.float32), None, False)
    for op, attrs in (("Relu", {}), ("Clip", {"min": 0.0, "max": 1.0}), ("HardSigmoid", {}),
                      ("HardSwish", {}), ("Sigmoid", {})):
        g = one_node(op, [x], **attrs)
        (got,) = run_in_memory(g, feeds_of([x]))
        np.testing.assert_array_equal(got, run(g, feeds_of([x]))[g.outputs[0].name])


def broadcastable(data: st.DataObject, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that broadcasts with ``shape``: a suffix of it, some axes made one."""
    tail = shape[data.draw(st.integers(0, len(shape))):]
    return tuple(1 if data.draw(st.booleans()) else d for d in tail)


@SETTINGS
@given(st.data())
def test_binary(data: st.DataObject) -> None:
    dtype = data.draw(FLOAT_TYPES)
    shape = data.draw(shapes)
    other = broadcastable(data, shape)
    if data.draw(st.booleans()):
        shape, other = other, shape
    a, b = floats(data, shape, dtype=dtype), floats(data, other, data.draw(st.booleans()),
                                                     dtype)
    # Div by numbers away from 0; Pow of a positive base (a negative one to a fractional
    # power is nan) to exponents in [-3, 3]
    divisor = (np.where(np.abs(b[0]) < 1e-3, dtype(1), b[0]).astype(dtype), None, b[2])
    base = (np.abs(a[0]) + dtype(0.5), None, False)
    exponent = (np.clip(b[0], -3, 3).astype(dtype), None, b[2])
    ins = [a, b, divisor, base, exponent]
    specs = [(op, [0, 1], {}) for op in ("Add", "Sub", "Mul", "Max", "Min")]
    specs += [("Div", [0, 2], {}), ("Pow", [3, 4], {})]
    assert_close(each_op(specs, ins), feeds_of(ins), RTOL, ATOL)


def test_max_min_propagate_nan() -> None:
    a = (np.array([np.nan, 1.0, np.nan, -np.inf], np.float32), None, False)
    b = (np.array([0.0, np.nan, np.nan, 3.0], np.float32), None, False)
    for op in ("Max", "Min"):
        g = one_node(op, [a, b])
        (got,) = run_in_memory(g, feeds_of([a, b]))
        np.testing.assert_array_equal(got, run(g, feeds_of([a, b]))[g.outputs[0].name])


# -- pools -------------------------------------------------------------------------------------


@SETTINGS
@given(st.data())
def test_average_pool(data: st.DataObject) -> None:
    dt = data.draw(FLOAT_TYPES)
    nsp = spatial(data)
    kern = [data.draw(st.integers(1, 3)) for _ in range(nsp)]
    attrs = {"kernel_shape": kern,
             "strides": [data.draw(st.integers(1, 3)) for _ in range(nsp)],
             "dilations": [data.draw(st.integers(1, 2)) for _ in range(nsp)],
             "pads": [data.draw(st.integers(0, kern[i % nsp] - 1)) for i in range(2 * nsp)],
             "ceil_mode": data.draw(st.booleans()),
             "count_include_pad": data.draw(st.booleans())}
    size = [data.draw(st.integers(1, 7)) for _ in range(nsp)]
    x = floats(data, (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3)), *size), dtype=dt)
    assert_sum_close("AveragePool", [x], **attrs)


@SETTINGS
@given(st.data())
def test_global_average_pool(data: st.DataObject) -> None:
    dt = data.draw(FLOAT_TYPES)
    shape = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 4)),
             *data.draw(st.lists(st.integers(1, 12), min_size=1, max_size=3)))
    x = floats(data, shape, dtype=dt)
    assert_sum_close("GlobalAveragePool", [x])


# -- Resize ------------------------------------------------------------------------------------

COORDS = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
          "asymmetric"]
NEAREST = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]


def resize_case(data: st.DataObject, mode: str, dtype: type) -> tuple[Operand, dict[str, Any]]:
    shape = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3)),
             *data.draw(st.lists(st.integers(1, 6), min_size=1, max_size=2)))
    scales = [1.0, 1.0, *(data.draw(st.sampled_from([0.5, 1.0, 2.0, 3.0, 0.75, 1.7]))
                          for _ in shape[2:])]
    sizes = [max(1, int(np.floor(d * s))) for d, s in zip(shape, scales)]
    attrs: dict[str, Any] = {"sizes": sizes, "scales": scales, "mode": mode,
                             "coordinate_transformation_mode": data.draw(st.sampled_from(COORDS))}
    if mode == "nearest":
        attrs["nearest_mode"] = data.draw(st.sampled_from(NEAREST))
    else:
        attrs["exclude_outside"] = data.draw(st.booleans())
        attrs["antialias"] = data.draw(st.booleans())
        if mode == "cubic":
            attrs["cubic_coeff_a"] = data.draw(st.sampled_from([-0.75, -0.5]))
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
        x: Operand = (rng.integers(info.min, info.max + 1, size=shape).astype(dtype), None,
                      False)
    else:
        x = floats(data, shape)
    return x, attrs


@SETTINGS
@given(st.data())
def test_resize_nearest_exact(data: st.DataObject) -> None:
    x, attrs = resize_case(data, "nearest", data.draw(st.sampled_from([np.uint8, np.int8,
                                                                        np.float32])))
    assert_exact(build("Resize", [x], **attrs), feeds_of([x]))


@SETTINGS
@given(st.data())
def test_resize_linear_and_cubic(data: st.DataObject) -> None:
    mode = data.draw(st.sampled_from(["linear", "cubic"]))
    x, attrs = resize_case(data, mode, np.float32)
    # float64 weighted sums of a few taps, rounded once: float32 results a few ulp apart
    assert_close(build("Resize", [x], **attrs), feeds_of([x]), RTOL, ATOL)


def test_quantised_nearest_resize_keeps_codes() -> None:
    from ir.types import QuantParams

    q = QuantParams(scale=(0.05,), zero_point=(3,))
    codes = np.arange(24, dtype=np.uint8).reshape(1, 2, 3, 4)
    x: Operand = (codes, q, False)
    g = one_node("Resize", [x], sizes=[1, 2, 6, 8], scales=[1.0, 1.0, 2.0, 2.0],
                 mode="nearest", coordinate_transformation_mode="asymmetric",
                 nearest_mode="floor")
    assert_exact(g, feeds_of([x]))


# -- forms without a kernel --------------------------------------------------------------------


def test_unsupported_forms_are_reported() -> None:
    f16 = np.ones((1, 2, 3, 3), np.float16)
    conv16 = one_node("Conv", [(f16, None, False), (np.ones((2, 2, 1, 1), np.float16), None,
                                                   True)],
                      strides=[1, 1], pads=[0, 0, 0, 0], dilations=[1, 1])
    assert unsupported(conv16) == {"Conv": ["Conv/node 0"]}
    v = (np.ones(3, np.float32), None, False)
    assert unsupported(one_node("MatMul", [v, v])) == {"MatMul": ["MatMul/node 0"]}
    crop = one_node("Resize", [(np.ones((1, 1, 2, 2), np.float32), None, False)],
                    sizes=[1, 1, 3, 3], scales=[1.0, 1.0, 1.5, 1.5], mode="linear",
                    coordinate_transformation_mode="tf_crop_and_resize",
                    roi=[0.0, 0.0, 0.1, 0.1, 1.0, 1.0, 0.9, 0.9])
    assert unsupported(crop) == {"Resize": ["Resize/node 0"]}
    codes = one_node("Resize", [(np.ones((1, 1, 2, 2), np.uint8), None, False)],
                     sizes=[1, 1, 4, 4], scales=[1.0, 1.0, 2.0, 2.0], mode="linear")
    assert unsupported(codes) == {"Resize": ["Resize/node 0"]}
    ints = (np.ones((2, 2), np.int32), None, False)
    assert unsupported(one_node("Div", [ints, ints])) == {"Div": ["Div/node 0"]}
    assert unsupported(one_node("Add", [ints, ints])) == {}


@SETTINGS
@given(st.data())
def test_gelu_both_forms(data: st.DataObject) -> None:
    shape = tuple(data.draw(st.lists(st.integers(1, 5), min_size=1, max_size=3)))
    x = floats(data, shape)
    form = data.draw(st.sampled_from(["none", "tanh"]))
    assert_close(build("Gelu", [x], approximate=form), feeds_of([x]), RTOL, ATOL)


@SETTINGS
@given(st.data())
def test_batchnorm(data: st.DataObject) -> None:
    n, c = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 6))
    shape = (n, c, *data.draw(st.lists(st.integers(1, 5), max_size=2)))
    x = floats(data, shape)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    params = [(rng.standard_normal(c).astype(np.float32), None, True) for _ in range(3)]
    var = (rng.random(c).astype(np.float32) * 2, None, True)
    operands: list[Operand | None] = [x, *params, var]
    g = build("BatchNormalization", operands, epsilon=data.draw(st.sampled_from([1e-5, 1e-3])))
    # one multiply-add per element after per-channel factors computed as the interpreter does
    assert_close(g, feeds_of(operands), RTOL, ATOL * float(np.abs(x[0]).max(initial=1.0)))


def test_gemm_that_broke_llvms_slp_vectorizer() -> None:
    """A 4x3 @ 3x9 Gemm scaled by alpha made LLVM's SLP vectorizer emit a broken module
    ("Instruction does not dominate all uses!"); qnnc's LLVM targets turn that pass off."""
    rng = np.random.default_rng(0)
    ops: list[Operand | None] = [(rng.standard_normal((4, 3)).astype(np.float32), None, False),
                                 (rng.standard_normal((3, 9)).astype(np.float32), None, False)]
    assert_sum_close("Gemm", ops, transA=False, transB=False, alpha=0.5)
