"""The project's golden suite: every corpus model × target × precision must reproduce its
recorded outputs (integers exactly, floats within the tolerance in its manifest, INT8 models
with tolerance 0). Regenerate after an intended change with ``python -m tests.golden.regen``
(see README.md)."""

from __future__ import annotations

import json

import pytest

from compiler.golden import (
    DEFAULT_ATOL,
    DEFAULT_RTOL,
    MANIFEST,
    OUTPUTS,
    Tolerance,
    check_outputs,
    compare_output,
    load_arrays,
)
from targets.c.emitter import CodegenError
from tests.golden.corpus import (
    CASES,
    PRECISIONS,
    Case,
    arrays_sha256,
    combos,
    compile_case,
    folder,
    graph_sha256,
)

REGEN = "python -m tests.golden.regen"


@pytest.mark.parametrize(
    ("case", "target", "precision"), combos(), ids=[f"{c.name}-{t}-{p}" for c, t, p in combos()]
)
def test_golden(case: Case, target: str, precision: str) -> None:
    where = folder(case, target, precision)
    try:
        cm, pins = compile_case(case, target, precision)
    except CodegenError as e:
        if (where / MANIFEST).exists():
            raise  # it compiled when recorded: losing a target's support is a regression
        pytest.skip(f"{target} cannot compile {precision} {case.name} yet: {e}")
    if not (where / MANIFEST).exists():
        pytest.fail(f"no golden at {where}, though {case.name} now compiles for {target} "
                    f"{precision}; record it with `{REGEN} {case.name}`")
    recorded = json.loads((where / MANIFEST).read_text()).get("corpus", {})
    model = case.model()
    assert recorded.get("graph_sha256") == graph_sha256(model), (
        f"the {case.name} model built by tests/golden/corpus.py is not the one the golden was "
        f"recorded from; if the builder changed on purpose, rerun `{REGEN} {case.name}`")
    if precision == "int8":
        assert recorded.get("calibration_sha256") == arrays_sha256(case.calibration(model)), (
            f"the calibration data for {case.name} changed (numpy's generator?); rerun "
            f"`{REGEN} {case.name}` if that is expected")
    res = check_outputs(cm, where)
    assert res.passed, res.report() + f"\nIf the change is intended: `{REGEN} {case.name}`"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("precision", PRECISIONS)
def test_targets_agree(case: Case, precision: str) -> None:
    """The recorded host outputs against the interpreter's (the oracle), from the stored
    files alone: outputs that are dequantised integer codes exactly (integer kernels are
    bit-exact), other floats within the default f32 golden tolerance."""
    ref, host = folder(case, "interp", precision), folder(case, "host", precision)
    if not (ref / MANIFEST).exists() or not (host / MANIFEST).exists():
        pytest.skip("not recorded for both targets")
    want, got = load_arrays(ref / OUTPUTS), load_arrays(host / OUTPUTS)
    for entry in json.loads((ref / MANIFEST).read_text())["outputs"]:
        name = entry["name"]
        exact = "quant_step" in entry or entry["compare"] == "exact"
        tol = None if exact else Tolerance(DEFAULT_RTOL, DEFAULT_ATOL)
        r = compare_output(name, want[name], got[name], tol, entry.get("quant_step"))
        assert r.ok, f"host vs interp, {case.name} {precision}:\n{r.format()}"
