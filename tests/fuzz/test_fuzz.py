"""Fuzzing qnnc's front door: mutated example models and hostile generated graphs
through inspect, compile-to-IR and the interpreter must end in qnnc's own errors only — no
traceback, no crash, no hang. The default run spends a bounded budget with a fixed seed; the
long run (``pytest -m fuzz``) puts 10,000 mutated models through worker processes, where a
crash or a hang is counted, not fatal. Every file in regressions/ once failed and is replayed.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.graphs import hostile_graph
from tests.fuzz.harness import check_case
from tests.fuzz.mutators import MUTATORS, mutant
from tests.fuzz.runner import run_many
from tests.fuzz.seeds import seed_models

REGRESSIONS = Path(__file__).parent / "regressions"
FIXED_SEED = 16
DEFAULT_CASES = 600  # about 10 s here: the default run's byte- and field-level share
LONG_CASES = 10_000


def _assert_clean(data: bytes, folder: Path) -> None:
    outcome = check_case(data, folder)
    assert outcome.kind in ("ok", "error"), f"{outcome.kind} at {outcome.stage}:\n" \
                                            f"{outcome.detail}"


@pytest.mark.parametrize("case", sorted(REGRESSIONS.glob("*.onnx")), ids=lambda p: p.stem)
def test_regression_inputs_end_in_qnnc_errors(case: Path, tmp_path: Path) -> None:
    outcome = check_case(case.read_bytes(), tmp_path)
    assert outcome.kind == "error", outcome  # each once failed; each is a damaged model


def test_mutated_examples_fixed_seed(tmp_path: Path) -> None:
    seeds = seed_models()
    for index in range(DEFAULT_CASES):
        _assert_clean(mutant(seeds, FIXED_SEED, index), tmp_path)


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(model=st.integers(0, 3), plan=st.lists(
    st.tuples(st.integers(0, len(MUTATORS) - 1), st.integers(0, 2**32)), min_size=1,
    max_size=4))
def test_hypothesis_mutation_plans(tmp_path: Path, model: int,
                                   plan: list[tuple[int, int]]) -> None:
    data = seed_models()[model]
    for which, seed in plan:
        data = MUTATORS[which](data, random.Random(seed))
    _assert_clean(data, tmp_path)


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=hostile_graph())
def test_hypothesis_hostile_graphs(tmp_path: Path, data: bytes) -> None:
    _assert_clean(data, tmp_path)


def test_the_harness_catches_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fuzz tests can fail: an exception that is not qnnc's is reported as one."""
    import tests.fuzz.harness as harness

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("cannot reshape array")

    monkeypatch.setattr(harness, "compile_model", broken)
    outcome = check_case(seed_models()[0], tmp_path)
    assert outcome.kind == "traceback" and "cannot reshape" in outcome.detail


def test_the_runner_counts_crashes_and_hangs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that dies is a crash, one that stops answering a hang; the run goes on."""
    import os
    import time

    import tests.fuzz.runner as runner
    from tests.fuzz.harness import Outcome

    def fake(data: bytes, folder: Path, timeout_s: float) -> Outcome:
        roll = random.Random(data).random()
        if roll < 0.1:
            os._exit(139)
        if roll < 0.2:
            time.sleep(60)
        return Outcome("error")

    monkeypatch.setattr(runner, "check_case", fake)
    report = run_many(20, seed=FIXED_SEED, workers=2, timeout_s=0.1)
    assert sum(report.counts.values()) == 20
    assert report.counts["crash"] + report.counts["hang"] == len(report.findings) > 0


@pytest.mark.fuzz
def test_long_fuzz_run() -> None:
    report = run_many(LONG_CASES, seed=FIXED_SEED, workers=2)
    print(report.line())
    assert not report.findings, {i: (o.kind, o.stage, o.detail[-300:])
                                 for i, o in list(report.findings.items())[:5]}
