"""Observing on a second thread (compiler/quant/observe_thread.py): the same ranges and channel
means as on one thread, bit for bit, whatever the budget; the worker's errors reach the
caller; an interrupted run stops the worker and drops its queue."""

from __future__ import annotations

import importlib
import threading

import numpy as np
import pytest

from compiler.quant import Calibrator
from compiler.quant.observe_thread import ObserveThread
from tests.quant.test_calibrate import _graph, _samples

calibrate_mod = importlib.import_module("compiler.quant.calibrate")


def _calibrated(threads: int, method: str) -> Calibrator:
    cal = Calibrator(_graph(), method)  # type: ignore[arg-type]
    cal.threads = threads
    for s in _samples(12):
        cal.feed(s)
    return cal


@pytest.mark.parametrize("method", ["percentile", "entropy", "minmax"])
def test_threaded_observation_gives_the_same_ranges(method: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(calibrate_mod, "THREADED_ELEMENTS", 0)  # thread even this small graph
    one, two = _calibrated(1, method), _calibrated(2, method)
    assert two._threaded(two.graph) and not one._threaded(one.graph)
    assert one.ranges() == two.ranges()
    m1, m2 = one.channel_means(), two.channel_means()
    assert m1.keys() == m2.keys() and m1
    for k in m1:
        np.testing.assert_array_equal(m1[k], m2[k])


def test_order_is_kept_under_a_tiny_budget() -> None:
    seen: list[str] = []
    with ObserveThread(lambda name, a: seen.append(name), budget=1) as t:
        for i in range(200):
            t.put(str(i), np.zeros(10))
    assert seen == [str(i) for i in range(200)]


def test_a_worker_error_reaches_the_caller() -> None:
    def fail(name: str, a: np.ndarray) -> None:
        if name == "bad":
            raise ValueError("observer failed on bad")

    with pytest.raises(ValueError, match="bad"):
        with ObserveThread(fail) as t:
            t.put("ok", np.zeros(3))
            t.put("bad", np.zeros(3))
    with pytest.raises(ValueError, match="bad"):  # or at the next put, whichever comes first
        with ObserveThread(fail, budget=1) as t:
            t.put("bad", np.zeros(3))
            for _ in range(100):
                t.put("ok", np.zeros(3))


def test_an_interrupted_run_drops_the_queue_and_stops_the_worker() -> None:
    gate, seen = threading.Event(), []

    def slow(name: str, a: np.ndarray) -> None:
        gate.wait()
        seen.append(name)

    with pytest.raises(KeyboardInterrupt):
        with ObserveThread(slow) as t:
            for i in range(50):
                t.put(str(i), np.zeros(4))
            gate.set()
            raise KeyboardInterrupt
    assert len(seen) < 50
    assert not any(th.name == "qnnc-observe" and th.is_alive() for th in threading.enumerate())
