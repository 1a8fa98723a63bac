"""BLAS on one thread while the interpreter calibrates (compiler/quant/blas_threads.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from compiler.passes.manager import run_pipeline
from compiler.passes.quantize import Quantize
from compiler.quant.blas_threads import limited_blas
from ir.text import parse_graph, print_graph
from tests.quant.test_smooth import BEFORE, _samples


def _blas_threads() -> set[int]:
    """Thread counts of numpy's BLAS, the one the interpreter calls: the pools of numpy's own
    install when it bundles one (other tests may load scipy's, whose threads calibration
    never uses), else every BLAS pool."""
    pools = [p for p in threadpool_info() if p["user_api"] == "blas"]
    home = Path(np.__file__).resolve().parent  # wheels bundle it in numpy.libs beside it
    dirs = {home, home.with_name(home.name + ".libs")}
    own = [p for p in pools if dirs & set(Path(p["filepath"]).resolve().parents)]
    return {p["num_threads"] for p in own or pools}


@pytest.fixture(autouse=True)
def _visible_blas() -> None:
    if not _blas_threads():
        pytest.skip("numpy's BLAS is not visible to threadpoolctl here")


def test_blas_is_limited_inside_and_restored_after() -> None:
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        with limited_blas():
            assert _blas_threads() == {1}
            np.ones((64, 64)) @ np.ones((64, 64))  # BLAS still works
        assert _blas_threads() == before


def test_calibration_runs_blas_on_one_thread_whatever_the_caller_set() -> None:
    texts = []
    for threads in (1, 2):
        seen: list[set[int]] = []
        with threadpool_limits(limits=threads, user_api="blas"):
            q = Quantize(calibration=_samples(),
                         progress=lambda done, total, seen=seen: seen.append(_blas_threads()))
            texts.append(print_graph(run_pipeline(parse_graph(BEFORE), [q])))
        assert seen and all(s == {1} for s in seen), threads
    assert texts[0] == texts[1]
