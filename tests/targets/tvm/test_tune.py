"""Tuning the tvm target with MetaSchedule: measured through a TVM RPC tracker and server on
the loopback address (as on a farm of boards), records in the database, the tuned build
still bit-exact, a second compile reusing the database; the tracker flag's parsing."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ir.errors import QnncError

pytest.importorskip("tvm", reason="the tvm target needs Apache TVM (pip install 'qnnc[tvm]')")
pytest.importorskip("tornado", reason="TVM's RPC tracker needs tornado (in 'qnnc[tvm]')")
pytest.importorskip("xgboost", reason="MetaSchedule's cost model needs xgboost (in 'qnnc[tvm]')")

from ir.graph import Graph  # noqa: E402
from ir.interpreter import run  # noqa: E402
from ir.types import QuantParams  # noqa: E402
from targets.tvm.build import TvmSession, host_target, signature  # noqa: E402
from targets.tvm.lower import lower  # noqa: E402
from targets.tvm.tune import MARKER, RpcTracker, compile_tuned, trials_done, tune  # noqa: E402
from tests.targets.tvm.harness import one_node  # noqa: E402


def requantize_graph() -> tuple[Graph, np.ndarray]:
    """One Requantize node (one kernel to tune) and its input."""
    x = np.arange(-128, 128, dtype=np.int8).reshape(4, 64)
    return one_node("Requantize", [(x, QuantParams((0.02,), (3,)), False)],
                    out_dtype="u8", out_scale=0.05, out_zp=128), x


@contextlib.contextmanager
def loopback_tracker(key: str) -> Iterator[str]:
    """A TVM RPC tracker and one server registered under ``key`` on 127.0.0.1, for the
    duration of the block; yields the --tune-rpc text."""
    from tvm import rpc
    from tvm.rpc.tracker import Tracker

    tracker = Tracker(host="127.0.0.1", port=9190, port_end=9290, silent=True)
    server = rpc.Server(host="127.0.0.1", port=9300, port_end=9400, key=key,
                        tracker_addr=("127.0.0.1", tracker.port), silent=True)
    try:
        yield f"127.0.0.1:{tracker.port}:{key}"
    finally:
        server.terminate()
        tracker.terminate()


def test_rpc_flag_parsing() -> None:
    assert RpcTracker.parse("127.0.0.1:9190:rk3588") == RpcTracker("127.0.0.1", 9190, "rk3588")
    assert RpcTracker.parse("farm.local:9190:a:b").key == "a:b"
    for bad in ("127.0.0.1:9190", "host:port:key", "h:0:k", "h:70000:k", ":9190:k", "h:9190:"):
        with pytest.raises(QnncError, match="HOST:PORT:KEY"):
            RpcTracker.parse(bad)


def test_tuning_through_a_loopback_rpc_tracker(tmp_path: Path) -> None:
    """compile_model(target="tvm", tune=2, tune_rpc=...) measures through a tracker and a
    server on 127.0.0.1, keeps the records in the cache, builds the tuned kernels exactly;
    the same compile again reuses both the database and the build, with no tracker."""
    from compiler.api import compile_model

    g, x = requantize_graph()
    seen: list[tuple[int, int]] = []
    said: list[str] = []
    with loopback_tracker("qnnc-test") as tune_rpc:
        cm = compile_model(g, target="tvm", tune=2, cache_dir=tmp_path, tune_rpc=tune_rpc,
                           tune_progress=lambda a, b: seen.append((a, b)),
                           tune_log=said.append)
    assert "1 kernels" in said[0] and "about" in said[0] and "qnnc-test" in said[0]
    # a requantisation has few distinct schedules: the search may run out before 2 trials
    assert seen and all(1 <= a <= b == 2 for a, b in seen)
    (work,) = tmp_path.glob("tvmtune-*")
    records = [json.loads(line) for line in
               (work / "database_tuning_record.json").read_text().splitlines()]
    # [workload, [trace, run seconds, target, arguments]]: measured, not failed (1e10 s)
    assert records and all(min(r[1][1]) < 1.0 for r in records)
    assert trials_done(work) == 2 and (work / MARKER).is_file()
    want = run(g, {"x0": x})[g.outputs[0].name]
    got = cm.run(None, {"x0": x})[0]
    assert got.dtype == np.uint8 and want.dtype == np.uint8
    np.testing.assert_array_equal(got, want)

    again: list[str] = []
    cm2 = compile_model(g, target="tvm", tune=2, cache_dir=tmp_path, tune_log=again.append)
    assert again == [f"tvm: reusing the tuning database in {work} (2 trials)"]
    assert cm2.build.cache_hit and cm2.build.folder == cm.build.folder
    np.testing.assert_array_equal(cm2.run(None, {"x0": x})[0], want)
    session = TvmSession(compile_tuned(lower(g), host_target(), work), signature(g))
    np.testing.assert_array_equal(session.run([g.outputs[0].name], {"x0": x})[0], want)


def test_non_positive_trials_are_refused(tmp_path: Path) -> None:
    g = one_node("Requantize", [(np.zeros((2, 2), np.int8), QuantParams((0.1,), (0,)), False)],
                 out_dtype="i8", out_scale=0.1, out_zp=0)
    with pytest.raises(QnncError, match="positive number of trials"):
        tune(lower(g), host_target(), 0, tmp_path)


@pytest.mark.slow  # 90 s: MetaSchedule takes a minute even for one kernel
def test_a_tuned_board_build_tunes_its_standalone_program_too(tmp_path: Path) -> None:
    """Tuning for a board (here x86_64 given as JSON, measured through the loopback
    tracker): the standalone program's kernels take the database's schedules, and it still
    runs exactly."""
    pytest.importorskip("ziglang", reason="linking needs ziglang (in 'qnnc[tvm]')")
    from compiler.api import compile_model
    from targets.tvm.emulate import launcher
    from targets.tvm.standalone import kernels_module, tuned
    from targets.tvm.targets import parse
    from tests.targets.tvm.test_export import EXPORTED

    if launcher("x86_64") is None:
        pytest.skip("this machine is not x86_64")
    g, x = requantize_graph()
    with loopback_tracker("qnnc-board") as tune_rpc:
        cm = compile_model(g, target=EXPORTED["x86_64"], tune=2, cache_dir=tmp_path,
                           tune_rpc=tune_rpc, tune_log=lambda text: None)
    (work,) = tmp_path.glob("tvmtune-*")
    spec = parse(EXPORTED["x86_64"]).spec
    import tvm

    _, count = tuned(kernels_module(lower(g)), tvm.target.Target(spec), work)
    assert count == 1  # the one kernel took a tuned schedule
    want = run(g, {"x0": x})[g.outputs[0].name]
    np.testing.assert_array_equal(cm.run(None, {"x0": x})[0], want)  # the program, run here
