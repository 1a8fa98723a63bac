"""Before/after IR-text tests for every pass, from tests/passes/cases/*.ir.

A case file holds cases separated by a line ``// -----``. Each case is::

    // RUN: pass-a,pass-b{opt=v}     the pipeline to run, as pipeline text (a target pass
                                     names its target: tile{target=ascend910b}); verified
                                     after every pass
    // CALIB: seed=0 samples=4       (quantize only) calibration samples: seeded N(0, 1)
    graph @g(...) { ... }            the input graph (comments allowed)
    // CHECK:
    graph @g(...) { ... }            the exact expected text of the result (constants inline)

Besides the exact text, every case checks on random inputs that the pipeline preserved the
graph's meaning under the interpreter: bit for bit, except that fold-batchnorm, fold-affine
and conv-transpose-blocks reorder float arithmetic, and the recognize-* passes replace a chain
that rounds after every step by one op that rounds once; those are held to
|got - want| <= 1e-4 * |want| + 1e-5 * max|want|. quantize approximates the float graph by
8-bit codes: on its own calibration samples (inside the calibrated ranges) each output is held
to QUANT_RTOL of its largest magnitude (a step is 1/255 of a range; the cases' few layers of
rounding stay well inside). Its precision is measured in tests/quant, not here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from compiler.passes import PASSES, as_passes, run_pipeline
from compiler.passes.quantize import Quantize
from ir.graph import Graph
from ir.interpreter import run
from ir.text import parse_graph, print_graph

CASES_DIR = Path(__file__).parent / "cases"
SEPARATOR = "// -----"
REORDERS_FLOATS = {"conv-transpose-blocks", "fold-affine", "fold-batchnorm", "recognize-gelu",
                   "recognize-hardswish", "recognize-layernorm", "recognize-silu"}
#: how far a quantised output may be from the float one, relative to its largest magnitude
QUANT_RTOL = 0.05


@dataclass(frozen=True)
class Case:
    file: str
    line: int
    pipeline: str
    source: str
    expected: str
    calib: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def passes(self) -> list[str]:
        return [p.name for p in as_passes(self.pipeline)]

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
    pipeline = lines[r].removeprefix("// RUN:").strip()
    expected = "\n".join(lines[c + 1:]).strip("\n") + "\n"
    calib = next((dict((k, int(v)) for k, v in (kv.split("=") for kv in ln.split()[2:]))
                  for ln in lines[r + 1:c] if ln.startswith("// CALIB:")), {})
    return Case(file, start + r, pipeline, "\n".join(lines[r + 1:c]), expected, calib)


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


def calibration(graph: Graph, seed: int, samples: int) -> list[dict[str, np.ndarray]]:
    """Seeded N(0, 1) samples for every input (the CALIB line of a quantize case)."""
    rng = np.random.default_rng(seed)
    return [{v.name: rng.standard_normal(v.type.shape).astype(v.type.dtype.np)
             for v in graph.inputs} for _ in range(samples)]


def pipeline_of(case: Case) -> list:
    """The case's passes; a quantize pass gets the CALIB samples."""
    samples = calibration(parse_graph(case.source), **case.calib) if case.calib else None
    return [dataclasses.replace(p, calibration=samples) if isinstance(p, Quantize) else p
            for p in as_passes(case.pipeline)]


def _assert_quantised_close(before: Graph, after: Graph, feeds: dict[str, np.ndarray]) -> None:
    want, got = run(before, feeds), run(after, feeds)
    for name, w in want.items():
        bound = QUANT_RTOL * float(np.abs(w).max())
        assert np.all(np.abs(got[name] - w) <= bound), name


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_case(case: Case) -> None:
    before = parse_graph(case.source)
    after = run_pipeline(parse_graph(case.source), pipeline_of(case), verify=True)
    assert print_graph(after, max_inline=None) == case.expected
    if "quantize" in case.passes:
        for feeds in calibration(before, **case.calib):
            _assert_quantised_close(before, after, feeds)
        return
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
