"""`qnnc bench MODEL --target host --profile`: per-layer times from a build that reads the
clock after every layer; they add up to the run, every layer of the model is accounted for,
and the profiling build computes the same outputs as the normal one. The figures average the
faster half of the timed runs, so one stalled run is not charged to a layer."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from compiler.api import compile_model
from compiler.cli import main
from compiler.cli_profile import layer_profile, profile_text
from compiler.io import random_inputs
from targets.c import emitter
from targets.host.build import BuildOptions
from targets.host.profile import faster_half, profile_layers


def test_profile_table(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", str(tiny), "--target", "host", "--calib", str(tmp_path / "calib.npz"),
                 "--profile", "--repeat", "3", "--warmup", "1"]) == 0
    out = capsys.readouterr().out
    head = re.search(r"per-layer profile: (\d+) layers, ([\d.]+) ms per run", out)
    assert head is not None
    kinds = out.split("by op kind:")[1].splitlines()[3:]
    counted = sum(int(ln.split()[1]) for ln in kinds if ln.strip())
    assert counted == int(head[1])  # every layer is in one op kind's row
    assert "QConv" in out


def test_layer_times_add_up_to_the_run(tiny: Path, tmp_path: Path) -> None:
    calib = np.load(tmp_path / "calib.npz")["input"]
    cm = compile_model(str(tiny), target="host", calibration=[{"input": s} for s in calib[:4]])
    feeds = random_inputs(cm.input_types, seed=0)
    data = layer_profile(cm, feeds, threads=1, cpu="auto", runs=5, warmup=1)
    assert len(data["layers"]) == len(cm.graph.nodes)
    assert all(r["ms"] >= 0 for r in data["layers"])
    assert sum(r["ms"] for r in data["layers"]) == pytest.approx(data["total_ms"], rel=1e-6)
    assert data["runs"] == 5 and data["kept_runs"] == 3
    assert "slowest" in profile_text(data) and "faster 3 of 5 runs" in profile_text(data)


def test_the_faster_half_of_the_runs() -> None:
    assert faster_half([5.0, 1.0, 100.0, 2.0]) == [1, 3]  # the stalled run 2 is out
    assert faster_half([3.0, 1.0, 2.0]) == [1, 2]
    assert faster_half([7.0]) == [0]
    assert faster_half([2.0, 2.0, 2.0, 2.0]) == [0, 1]  # ties by order


def test_a_stalled_run_is_not_charged(tiny: Path, tmp_path: Path) -> None:
    """Per-layer figures are the mean over the kept runs, and their totals the kept runs'."""
    calib = np.load(tmp_path / "calib.npz")["input"]
    cm = compile_model(str(tiny), target="host", calibration=[{"input": s} for s in calib[:4]])
    times = profile_layers(cm.graph, random_inputs(cm.input_types, seed=0),
                           opts=BuildOptions(), runs=6)
    assert times.kept == faster_half(times.run_ms) and len(times.kept) == 3
    assert max(times.run_ms[k] for k in times.kept) <= min(
        times.run_ms[k] for k in range(6) if k not in times.kept)
    assert sum(times.per_layer_ms) == pytest.approx(times.kept_ms, rel=1e-9)


def test_profiling_build_computes_the_same_outputs(tiny: Path, tmp_path: Path) -> None:
    calib = np.load(tmp_path / "calib.npz")["input"]
    cm = compile_model(str(tiny), target="host", calibration=[{"input": s} for s in calib[:4]])
    feeds = random_inputs(cm.input_types, seed=1)
    times = profile_layers(cm.graph, feeds, opts=BuildOptions(), runs=2)
    assert len(times.per_layer_ms) == len(cm.graph.nodes) and len(times.run_ms) == 2
    for want, got in zip(cm.run(None, feeds), times.outputs):
        np.testing.assert_array_equal(got, want)


def test_profile_needs_the_host(tiny: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", str(tiny), "--profile"]) != 0
    assert "--target host" in capsys.readouterr().err


def test_a_folder_is_profiled_at_its_thread_count(tiny: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`qnnc bench FOLDER --profile` profiles at the threads the folder was built for (its
    build.json), and refuses another count instead of timing a build it is not. (Every layer
    is shared out here: the tiny model's would otherwise be too small, and its build one
    thread's.)"""
    monkeypatch.setattr(emitter, "MIN_PARALLEL_NS", 0)
    monkeypatch.setattr(emitter, "MIN_SHARED_NS", 0)
    out = tmp_path / "built"
    assert main(["compile", str(tiny), "--target", "host", "--threads", "2", "--calib",
                 str(tmp_path / "calib.npz"), "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["bench", str(out), "--profile", "--repeat", "2", "--warmup", "1"]) == 0
    assert re.search(r"per-layer profile: .*2 threads", capsys.readouterr().out)
    assert main(["bench", str(out), "--threads", "3"]) != 0
    assert "compiled for 2 thread(s), not 3" in capsys.readouterr().err


def test_a_model_with_little_to_share_out_is_built_for_one_thread(
        tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every layer of the tiny model is worth sharing out here (MIN_PARALLEL_NS 0), but
    together they would take far under MIN_SHARED_NS on one thread: `--threads 2` builds
    one thread's module and says how much there was to share. With that bound at 0 the
    same command builds the threaded module."""
    monkeypatch.setattr(emitter, "MIN_PARALLEL_NS", 0)
    calib = str(tmp_path / "calib.npz")
    out = tmp_path / "one"
    assert main(["compile", str(tiny), "--target", "host", "--threads", "2", "--calib", calib,
                 "-o", str(out)]) == 0
    said = capsys.readouterr().out
    assert re.search(r"built for one thread, not 2: its layers large enough to share out "
                     r"would take about \d+ us together on one thread, under the 1000 us", said)
    assert "qnnc_team" not in next(out.rglob("model.c")).read_text()
    monkeypatch.setattr(emitter, "MIN_SHARED_NS", 0)
    out = tmp_path / "two"
    assert main(["compile", str(tiny), "--target", "host", "--threads", "2", "--calib", calib,
                 "-o", str(out)]) == 0
    assert "built for one thread" not in capsys.readouterr().out
    assert "qnnc_team" in next(out.rglob("model.c")).read_text()


def test_a_model_too_small_to_share_out_is_built_for_one_thread(
        tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No layer of the tiny model takes MIN_PARALLEL_NS on one thread, so `--threads 2`
    builds it for one thread (no OpenMP, no per-run team), says so, and the folder records
    the count it was built for."""
    out = tmp_path / "built"
    assert main(["compile", str(tiny), "--target", "host", "--threads", "2", "--calib",
                 str(tmp_path / "calib.npz"), "-o", str(out)]) == 0
    assert "built for one thread, not 2: no layer is large enough" in capsys.readouterr().out
    source = next(out.rglob("model.c")).read_text()
    assert "QNNC_OMP_FOR" not in source and "qnnc_team" not in source
    assert main(["bench", str(out), "--threads", "2"]) != 0
    assert "compiled for 1 thread(s), not 2" in capsys.readouterr().err
