"""QAdd's exact linear form (targets/c/qadd_linear.py, qnnc_qadd_lin_n): the search keeps a
form only when it is the definition on every pair of codes, and the C kernel computes the form
at every build level, its tails included, bit-exact with the interpreter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ir import qmath
from ir.types import DType, QuantParams, TensorType
from targets.c import qadd_linear
from targets.c.qadd_linear import LinearAdd, evaluate, exact_table, linear_form
from tests.codegen.test_ops_int8 import CPUS, GEMM_CPUS, check_exact, graph, qt

#: ResNet-50's residual adds: (a's scale, b's scale) over the output's, both inputs u8
RESNET_RATIOS = [(1.4563, 1.5797), (1.2814, 0.7895), (1.6202, 1.6329), (0.9721, 0.9123),
                 (0.7629, 0.9063), (1.1593, 0.7561)]


def types(sa: float, za: int, da: DType, sb: float, zb: int, db: DType, sy: float, zy: int,
          dy: DType) -> tuple[TensorType, TensorType, TensorType]:
    return (TensorType((256, 256), da, QuantParams.per_tensor(sa, za)),
            TensorType((256, 256), db, QuantParams.per_tensor(sb, zb)),
            TensorType((256, 256), dy, QuantParams.per_tensor(sy, zy)))


def form_of(ta: TensorType, tb: TensorType, to: TensorType, lo: int, hi: int
            ) -> LinearAdd | None:
    g = graph("QAdd", [ta, tb], {"out_dtype": to.dtype.value, "out_scale": to.quant.scale[0],
                                 "out_zp": to.quant.zero_point[0], "act_min": lo,
                                 "act_max": hi})
    return linear_form(g.nodes[0])


def code(d: DType) -> st.SearchStrategy[int]:
    lo, hi = qmath.qrange(d)
    return st.integers(lo, hi)


@st.composite
def triples(draw: st.DrawFn) -> tuple[TensorType, TensorType, TensorType, int, int]:
    ds = [draw(st.sampled_from([DType.u8, DType.i8])) for _ in range(3)]
    scale = st.floats(1e-3, 1.0).map(lambda s: float(np.float32(s)))
    ta, tb, to = types(draw(scale), draw(code(ds[0])), ds[0], draw(scale), draw(code(ds[1])),
                       ds[1], draw(scale), draw(code(ds[2])), ds[2])
    lo, hi = qmath.qrange(ds[2])
    if draw(st.booleans()):  # a fused ReLU at the output's zero point
        lo = to.quant.zero_point[0]
    return ta, tb, to, lo, hi


@settings(max_examples=60, deadline=None)
@given(triples())
def test_a_kept_form_is_the_definition_on_every_pair(case: tuple) -> None:
    """Whatever the search returns is checked here again, independently: the form in int32
    steps against the interpreter's QAdd on all 65536 pairs, and no step past int32."""
    ta, tb, to, lo, hi = case
    form = form_of(ta, tb, to, lo, hi)
    if form is None:
        return
    a, b, want = exact_table(ta, tb, to, lo, hi)
    np.testing.assert_array_equal(evaluate(form, a, b, lo, hi), want)
    ap, bq = a * form.p, b * form.q
    for step in (ap, bq, ap + form.r, ap + form.r + bq):
        assert np.abs(step).max() < 2**31


@pytest.mark.parametrize("ra,rb", RESNET_RATIOS)
def test_residual_adds_have_a_form(ra: float, rb: float) -> None:
    """The search finds the form for ResNet-50's residual adds (u8, a fused ReLU), which is
    where it pays; a search that stopped finding it would keep them on the slower steps."""
    sy = 0.05
    ta, tb, to = types(ra * sy, 0, DType.u8, rb * sy, 0, DType.u8, sy, 0, DType.u8)
    assert form_of(ta, tb, to, 0, 255) is not None


def test_most_random_triples_have_a_form() -> None:
    rng = np.random.default_rng(5)
    found = 0
    for _ in range(40):
        ds = rng.choice([DType.u8, DType.i8], 3)
        zs = [int(rng.integers(*qmath.qrange(d))) for d in ds]
        ss = [float(np.float32(10 ** rng.uniform(-3, 0))) for _ in ds]
        ta, tb, to = types(ss[0], zs[0], ds[0], ss[1], zs[1], ds[1], ss[2], zs[2], ds[2])
        found += form_of(ta, tb, to, *qmath.qrange(ds[2])) is not None
    assert found >= 36


def test_simple_ratios_and_the_off_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scales in simple ratios (5/6 and 2/3 of the output's) put many pairs on rounding ties
    that the definition's inner steps decide: no form. Calibrated scales have one."""
    ta, tb, to = types(0.05, 3, DType.u8, 0.04, 0, DType.u8, 0.06, 10, DType.u8)
    assert form_of(ta, tb, to, 0, 255) is None
    ta, tb, to = types(0.0513, 3, DType.u8, 0.0398, 0, DType.u8, 0.0607, 10, DType.u8)
    assert form_of(ta, tb, to, 0, 255) is not None
    monkeypatch.setattr(qadd_linear, "ENABLED", False)
    assert form_of(ta, tb, to, 0, 255) is None


def pair_feeds(ta: TensorType, tb: TensorType, n: int) -> dict[str, np.ndarray]:
    """Every pair of codes, in the first 65536 elements of n (the rest repeat them)."""
    codes = np.arange(256)
    flat = [np.resize(np.repeat(codes, 256), n), np.resize(np.tile(codes, 256), n)]
    out = {}
    for k, (t, c) in enumerate(zip((ta, tb), flat)):
        c = c.astype(np.uint8)
        out[f"x{k}"] = (c.view(np.int8) if t.dtype is DType.i8 else c).reshape(t.shape)
    return out


@pytest.mark.parametrize("cpu", GEMM_CPUS)
@pytest.mark.parametrize("da,db,dy,relu", [(DType.u8, DType.u8, DType.u8, True),
                                           (DType.i8, DType.u8, DType.i8, False),
                                           (DType.u8, DType.i8, DType.u8, False)])
def test_kernel_on_every_pair(da: DType, db: DType, dy: DType, relu: bool, cpu: str,
                              tmp_path: Path) -> None:
    """qnnc_qadd_lin_n on all 65536 pairs plus a tail of 29 (the 64- or 32-element steps,
    then 16- and 8-lane ones and single elements): the C takes the form, and its bytes are
    the interpreter's."""
    shape = (65565,)
    a = qt(shape, da, 0.04317, 7 if da is DType.u8 else -9)
    b = qt(shape, db, 0.03129, 120 if db is DType.u8 else 4)
    zy = 3 if dy is DType.u8 else -20
    attrs = {"out_dtype": dy.value, "out_scale": 0.05233, "out_zp": zy}
    if relu:
        attrs["act_min"], attrs["act_max"] = zy, qmath.qrange(dy)[1]
    g = graph("QAdd", [a, b], attrs)
    assert linear_form(g.nodes[0]) is not None
    check_exact(g, tmp_path, cpu, feeds=pair_feeds(a, b, shape[0]))
    (source,) = [f.read_text() for f in tmp_path.rglob("model.c")]
    assert "qnnc_qadd_lin_n(" in source


@pytest.mark.parametrize("cpu", CPUS)
def test_no_form_keeps_the_definition(cpu: str, tmp_path: Path) -> None:
    """An output scale far below the inputs' leaves no form within int32: the definition's
    steps run, still exact."""
    a, b = qt((2, 20), DType.u8, 0.5, 3), qt((2, 20), DType.u8, 0.25, 200)
    g = graph("QAdd", [a, b], {"out_dtype": "i8", "out_scale": float(np.float32(0.5 / 2**22)),
                               "out_zp": 1})
    assert linear_form(g.nodes[0]) is None
    check_exact(g, tmp_path, cpu)
    (source,) = [f.read_text() for f in tmp_path.rglob("model.c")]
    assert "qnnc_qadd_lin_n(" not in source
