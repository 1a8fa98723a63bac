"""onnx's backend node tests, run through qnnc's frontend and reference interpreter.

A test whose ops are all supported must pass unless exclusions.txt lists it with a reason;
tests of unsupported ops are skipped and counted per op in the run's summary.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, numpy_helper
from onnx.backend.test.case.test_case import TestCase

from compiler.backend import QnncBackend
from tests.conformance.cases import exclusions, node_cases, op_under_test, unsupported

_EXCLUDED = exclusions()


def _params() -> list:
    out = []
    for case in node_cases():
        marks = []
        if case.name in _EXCLUDED:
            marks.append(pytest.mark.xfail(strict=True, reason=_EXCLUDED[case.name]))
        out.append(pytest.param(case, id=case.name, marks=marks))
    return out


def _array(a: Any) -> Any:
    """Some node tests (Cast, QuantizeLinear, ...) store their data as TensorProtos."""
    return numpy_helper.to_array(a) if isinstance(a, TensorProto) else a


@pytest.mark.parametrize("case", _params())
def test_node(case: TestCase, record_property: pytest.RecordProperty) -> None:
    record_property("onnx_op", op_under_test(case))
    missing = unsupported(case)
    if missing:
        pytest.skip(f"unsupported op(s): {', '.join(missing)}")
    rep = QnncBackend.prepare(case.model)
    for inputs, expected in case.data_sets:
        inputs = [_array(a) for a in inputs]
        expected = [_array(e) for e in expected]
        got = rep.run(inputs)
        assert len(got) == len(expected)
        for i, (g, e) in enumerate(zip(got, expected)):
            _check(g, e, case, f"output {i}")


def _check(g: Any, e: Any, case: TestCase, where: str) -> None:
    """Compare one output; a sequence output is a list of arrays, an absent optional None."""
    if e is None:
        assert g is None, f"{where}: got {type(g).__name__}, expected None (absent)"
        return
    if isinstance(e, list):
        assert isinstance(g, list), f"{where}: got {type(g).__name__}, expected a sequence"
        assert len(g) == len(e), f"{where}: {len(g)} tensors, expected {len(e)}"
        for k, (gk, ek) in enumerate(zip(g, e)):
            _check(gk, ek, case, f"{where}[{k}]")
        return
    e = np.asarray(_array(e))
    assert g.dtype == e.dtype, f"{where}: dtype {g.dtype}, expected {e.dtype}"
    assert g.shape == e.shape, f"{where}: shape {g.shape}, expected {e.shape}"
    if e.dtype.kind in "fc":
        np.testing.assert_allclose(g, e, rtol=case.rtol, atol=case.atol, err_msg=where)
    elif e.dtype.kind == "V":  # bfloat16, float8, int4, ... (ml_dtypes): widen exactly
        np.testing.assert_allclose(g.astype(np.float64), e.astype(np.float64),
                                   rtol=case.rtol, atol=case.atol, err_msg=where)
    else:
        np.testing.assert_array_equal(g, e, err_msg=where)
