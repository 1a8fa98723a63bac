"""BLAS threads while the interpreter calibrates (compiler/quant/blas_threads.py)."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from compiler.quant.blas_threads import USER_SETTINGS, interpreter_threads, limited_blas


@pytest.mark.parametrize(("cores", "load", "threads"), [
    (1, 0.0, 1),     # one core: one thread
    (2, 0.0, 1),     # the observer thread has the other core
    (8, 0.3, 7),     # all but the observer's
    (8, 3.5, 4),     # and not the cores the load average takes
    (8, 20.0, 1),    # never fewer than one
])
def test_threads_leave_the_observer_and_the_load_their_cores(cores: int, load: float,
                                                              threads: int) -> None:
    assert interpreter_threads(cores, load) == threads


def _blas_threads() -> set[int]:
    return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}


def test_blas_is_limited_inside_and_restored_after(monkeypatch: pytest.MonkeyPatch) -> None:
    for v in USER_SETTINGS:
        monkeypatch.delenv(v, raising=False)
    before = _blas_threads()
    if not before:
        pytest.skip("numpy's BLAS is not visible to threadpoolctl here")
    monkeypatch.setattr("os.getloadavg", lambda: (0.0, 0.0, 0.0))
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    with limited_blas():
        assert _blas_threads() == {1}
        np.ones((64, 64)) @ np.ones((64, 64))  # BLAS still works
    assert _blas_threads() == before


def test_a_users_setting_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    before = _blas_threads()
    if not before or max(before) < 2:
        pytest.skip("needs a BLAS running more than one thread")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", str(max(before)))
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    with limited_blas():
        assert _blas_threads() == before
