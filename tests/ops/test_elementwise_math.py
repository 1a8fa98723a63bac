"""The elementwise math ops added for the full ONNX op set (inverse trigonometric and
hyperbolic functions, Shrink, Swish): qnnc's import and interpreter against onnx's reference
evaluator (rtol 1e-6, as tests/ops/test_elementwise.py), their domains' edges, and their
256-entry table form."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from compiler.frontend.importer import import_model
from ir import qforms
from ir.ops.registry import get_op
from tests.ops.test_elementwise import check_same, onnx_model, qnnc_and_reference

rng = np.random.default_rng(11)
UNIT = rng.uniform(-0.99, 0.99, (3, 4, 5)).astype(np.float32)
WIDE = rng.uniform(-5, 5, (3, 4, 5)).astype(np.float32)
ABOVE_ONE = rng.uniform(1.0, 30.0, (4, 5)).astype(np.float32)

CASES: list[tuple[str, dict[str, Any], np.ndarray, int]] = [
    ("Tan", {}, UNIT, 7), ("Asin", {}, UNIT, 7), ("Acos", {}, UNIT, 7), ("Atan", {}, WIDE, 7),
    ("Sinh", {}, WIDE, 9), ("Cosh", {}, WIDE, 9), ("Asinh", {}, WIDE, 9),
    ("Acosh", {}, ABOVE_ONE, 9), ("Atanh", {}, UNIT, 9),
    ("Shrink", {}, WIDE, 9), ("Shrink", {"lambd": 1.5, "bias": 1.5}, WIDE, 9),
    ("Shrink", {"lambd": 0.0, "bias": -0.25}, WIDE, 9),
    ("Swish", {"alpha": 0.5}, WIDE, 24), ("Swish", {"alpha": -2.0}, WIDE, 24),
    ("Swish", {}, WIDE, 24),
]


@pytest.mark.parametrize("op,attrs,x,opset", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_math_op_matches_reference(op: str, attrs: dict, x: np.ndarray, opset: int,
                                   dtype: type) -> None:
    got, ref = qnnc_and_reference(op, [x.astype(dtype)], opset=opset, **attrs)
    check_same(got, ref)


def test_domain_edges() -> None:
    """Outside their domains the inverse functions give nan; atanh(+-1) = +-inf."""
    x = np.array([-2.0, -1.0, 1.0, 2.0], np.float32)
    for op, want in (("Asin", [np.nan, -np.pi / 2, np.pi / 2, np.nan]),
                     ("Atanh", [np.nan, -np.inf, np.inf, np.nan]),
                     ("Acosh", [np.nan, np.nan, 0.0, np.arccosh(2.0)])):
        got, _ = qnnc_and_reference(op, [x], opset=9)
        np.testing.assert_allclose(got, np.asarray(want, np.float32), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.int8, np.int32])
def test_shrink_on_integers(dtype: type) -> None:
    x = np.arange(-6, 7).astype(dtype)
    got, ref = qnnc_and_reference("Shrink", [x], opset=9, lambd=2.0, bias=1.0)
    check_same(got, ref)


def test_swish_of_alpha_one_is_silu() -> None:
    """Swish(alpha=1) is the SiLU the rest of the compiler knows (recognize-silu, tables)."""
    g = import_model(onnx_model("Swish", [WIDE], 24))
    assert [n.op for n in g.nodes] == ["SiLU"]
    g = import_model(onnx_model("Swish", [WIDE], 24, alpha=0.5))
    assert [n.op for n in g.nodes] == ["Swish"]


@pytest.mark.parametrize("op", ["Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh",
                                "Acosh", "Atanh", "Shrink", "Swish"])
def test_quantised_as_a_table(op: str) -> None:
    assert get_op(op).quantized is qforms.lut
