"""Before/after IR-text tests for every pass, from tests/passes/cases/*.ir.

A case file holds cases separated by a line ``// -----``. Each case is::

    // RUN: pass-a,pass-b        the pipeline to run (verified after every pass)
    // TARGET: ascend910b        (optional) the profile target passes work for
    graph @g(...) { ... }        the input graph (comments allowed)
    // CHECK:
    graph @g(...) { ... }        the exact expected text of the result (all constants inline)

Besides the exact text, every case checks on random inputs that the pipeline preserved the
graph's meaning under the interpreter: bit for bit, except that fold-batchnorm and
fold-affine reorder float arithmetic, and the recognize-* passes replace a chain that rounds
after every step by one op that rounds once; those are held to
|got - want| <= 1e-4 * |want| + 1e-5 * max|want|.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from compiler.passes import PASSES, run_pipeline
from compiler.passes.target_context import for_target
from ir.graph import Graph
from ir.interpreter import run
from ir.text import parse_graph, print_graph
from targets.profiles import load_target

CASES_DIR = Path(__file__).parent / "cases"
SEPARATOR = "// -----"
REORDERS_FLOATS = {"fold-affine", "fold-batchnorm", "recognize-gelu", "recognize-hardswish",
                   "recognize-layernorm", "recognize-silu"}


@dataclass(frozen=True)
class Case:
    file: str
    line: int
    passes: list[str]
    source: str
    expected: str
    target: str | None = None

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}"


def load_cases(path: Path) -> list[Case]:
    cases: list[Case] = []
    chunk: list[str] = []
    start = 1
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines + [SEPARATOR], start=1):
        if line.strip() != SEPARATOR:
            chunk.append(line)
            continue
        cases.append(_case(path.name, start, chunk))
        chunk, start = [], i + 1
    return cases


def _case(file: str, start: int, lines: list[str]) -> Case:
    run_at = [i for i, ln in enumerate(lines) if ln.startswith("// RUN:")]
    check_at = [i for i, ln in enumerate(lines) if ln.strip() == "// CHECK:"]
    where = f"{file}: case starting at line {start}"
    assert len(run_at) == 1 and len(check_at) == 1, f"{where}: needs one RUN and one CHECK"
    r, c = run_at[0], check_at[0]
    assert r < c, f"{where}: RUN must come before CHECK"
    passes = [p.strip() for p in lines[r].removeprefix("// RUN:").split(",")]
    expected = "\n".join(lines[c + 1:]).strip("\n") + "\n"
    target = next((ln.removeprefix("// TARGET:").strip() for ln in lines[r + 1:c]
                   if ln.startswith("// TARGET:")), None)
    return Case(file, start + r, passes, "\n".join(lines[r + 1:c]), expected, target)


ALL_CASES = [c for p in sorted(CASES_DIR.glob("*.ir")) for c in load_cases(p)]


def random_feeds(graph: Graph, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for v in graph.inputs:
        dt, shape = v.type.dtype, v.type.shape
        if dt.is_float:
            feeds[v.name] = (rng.standard_normal(shape) * 3).astype(dt.np)
        elif dt.is_int:
            info = np.iinfo(dt.np)
            feeds[v.name] = rng.integers(info.min, info.max, shape, dtype=dt.np, endpoint=True)
        else:
            feeds[v.name] = rng.random(shape) < 0.5
    return feeds


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_case(case: Case) -> None:
    before = parse_graph(case.source)
    with for_target(load_target(case.target) if case.target else None):
        after = run_pipeline(parse_graph(case.source), case.passes, verify=True)
    assert print_graph(after, max_inline=None) == case.expected
    for seed in range(3):
        feeds = random_feeds(before, seed)
        want, got = run(before, feeds), run(after, feeds)
        assert list(got) == list(want)
        for name, w in want.items():
            g = got[name]
            assert g.dtype == w.dtype and g.shape == w.shape, name
            if REORDERS_FLOATS & set(case.passes) and w.dtype.kind == "f":
                bound = 1e-4 * np.abs(w) + 1e-5 * np.abs(w).max(initial=0.0)
                assert np.all(np.abs(g.astype(np.float64) - w) <= bound), name
            else:
                assert g.tobytes() == w.tobytes(), name


def test_every_pass_has_cases() -> None:
    covered = {p for c in ALL_CASES for p in c.passes}
    assert set(PASSES) <= covered, f"passes without a case: {sorted(set(PASSES) - covered)}"


def test_case_files_split_into_cases() -> None:
    assert all(c.passes and c.source.strip() for c in ALL_CASES)
    assert len(ALL_CASES) >= 3 * len(PASSES)
