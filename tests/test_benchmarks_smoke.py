"""The benchmark scripts' core functions run end to end on tiny inputs and return
well-formed results. No timing is asserted: benchmark numbers are for reports only."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmarks.common import adaptive_repeat, format_table, geomean, time_interleaved
from targets.host.cpu import is_x86_64

pytest.importorskip("onnxruntime")
needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")


def test_time_interleaved_runs_every_contender_the_same_number_of_rounds() -> None:
    calls = {"a": 0, "b": 0}

    def bump(k: str) -> None:
        calls[k] += 1

    t = time_interleaved({"a": lambda: bump("a"), "b": lambda: bump("b")}, warmup=2, repeat=3)
    assert calls == {"a": 5, "b": 5}
    assert [t["a"].runs, t["b"].runs] == [3, 3]
    assert t["a"].median_ms >= 0 and t["a"].min_ms <= t["a"].median_ms


def test_helpers() -> None:
    assert adaptive_repeat(1.0, 10.0, lo=3, hi=50) == 10
    assert adaptive_repeat(100.0, 10.0, lo=3, hi=50) == 3
    assert adaptive_repeat(0.0, 10.0, lo=3, hi=50) == 50
    assert geomean([2.0, 8.0]) == pytest.approx(4.0)
    assert math.isnan(geomean([]))
    text = format_table(["model", "ms"], [["a", "1.00"], ["longer", "10.00"]])
    lines = text.split("\n")
    assert len(lines) == 4 and len({len(x) for x in lines[:2]}) == 1
    assert lines[3].startswith("longer") and lines[3].endswith("10.00")


@needs_cc
@pytest.mark.skipif(not is_x86_64(), reason="the peak kernels are x86-64 assembly")
def test_int8_peak_tiny() -> None:
    from benchmarks.int8_peak import measure, report

    res = measure(iterations=2000, runs=2)
    kinds = {k.kind for k in res.kernels}
    assert kinds <= {"int8", "fp32"}
    for k in res.kernels:
        assert k.gops_best > 0 and k.gops_best >= k.gops_median
    if "avx2" in res.flags:  # -march=native on an AVX2 machine compiles the AVX2 kernels
        assert {"avx2-madd16", "fma256"} <= {k.name for k in res.kernels}
        best = res.best("int8")
        assert best is not None and best.name != "avx2-maddubs"  # saturating: not exact
    assert "peak int8" in report(res, 2000, 2)


def test_int8_peak_merged_keeps_each_kernels_better_run() -> None:
    from benchmarks.int8_peak import KernelResult, PeakResult

    def kernel(name: str, gops: float) -> KernelResult:
        return KernelResult(name, "int8", name, gops, gops * 0.9, None)

    slow = PeakResult([kernel("vnni512", 361.6), kernel("avx2-madd16", 170.0)], 2.9, "avx2")
    fast = PeakResult([kernel("vnni512", 470.5), kernel("avx2-madd16", 160.0)], 3.7, "avx2")
    both = slow.merged(fast)
    assert [k.gops_best for k in both.kernels] == [470.5, 170.0]
    assert both.clock_ghz == 3.7 and both.best("int8") is fast.kernels[0]


def test_int8_peak_for_a_lower_level_keeps_only_its_kernels() -> None:
    """host_latency --cpu avx2 on a VNNI machine divides by the AVX2 peak, not vpdpbusd's."""
    from benchmarks.int8_peak import KernelResult, PeakResult

    ks = [KernelResult(n, "int8", n, g, g, None)
          for n, g in (("vnni512", 470.5), ("avx2-madd16", 184.7), ("avx2-maddubs", 229.7))]
    peak = PeakResult(ks, 3.6, "avx2 avx512_vnni")
    assert peak.for_level("avx512vnni") is peak
    avx2 = peak.for_level("avx2")
    assert [k.name for k in avx2.kernels] == ["avx2-madd16", "avx2-maddubs"]
    assert avx2.best("int8").name == "avx2-madd16"
    assert avx2.best("int8", quads=True).name == "avx2-maddubs"
    assert peak.for_level("generic").best("int8") is None


@needs_cc
def test_host_latency_tiny_cnn(tmp_path: Path) -> None:
    from benchmarks.host_latency import bench_model, report

    res = bench_model("tiny_cnn", threads=(1,), n_calib=2, warmup=1, repeat=1,
                      cache_dir=tmp_path, time_compile=True)
    assert res.notes == []
    (row,) = res.rows
    assert row.threads == 1 and row.rounds == 1
    for ms in (row.qnnc_ms, row.ort_int8_ms, row.ort_f32_ms):
        assert ms is not None and ms > 0
    assert res.quant_macs > 0
    assert res.exact == "bit-exact"  # tiny_cnn's output is an integer layer's, dequantised
    assert res.sqnr_qnnc is not None and res.sqnr_qnnc > 10
    assert res.sqnr_ort is not None and res.sqnr_ort > 10
    c = res.compile
    assert c is not None and not c.cold.cache_hit and c.hit.cache_hit
    assert 0 < c.cold.calib_s < c.cold.total_s and 0 < c.hit.calib_s < c.hit.total_s
    assert c.calib_alone_s > 0
    text = report([res], None, (1,), "smoke")
    assert "tiny_cnn" in text and "geometric mean" in text and "bit-exact" in text


def test_host_latency_summarises_every_thread_count_and_the_scaling() -> None:
    """The acceptance figures at two threads come from the report itself: each thread
    count's geometric mean and worst, each runtime's speed-up, and the models that run
    slower with more threads or scale less than onnxruntime."""
    from benchmarks.host_latency import ModelResult, Row, report

    res = [ModelResult("a", [Row(1, 10.0, 20.0, 30.0, 5), Row(2, 6.0, 16.0, 20.0, 5)]),
           ModelResult("b", [Row(1, 1.0, 2.0, 3.0, 5), Row(2, 1.25, 1.0, 2.0, 5)]),
           ModelResult("c", [Row(1, 4.0, 8.0, 9.0, 5), Row(2, 2.5, 4.0, 5.0, 5)])]
    text = report(res, None, (1, 2), "smoke")
    assert "qnnc/ORT-int8 at 1 thread(s): geometric mean 0.50 over 3 model(s); worst a 0.50" \
        in text
    # at 2: a 0.375, b 1.25, c 0.625
    assert "qnnc/ORT-int8 at 2 thread(s): geometric mean 0.66 over 3 model(s); worst b 1.25" \
        in text
    rows = {line.split()[0]: line.split() for line in text.splitlines()
            if line.split()[:1] in (["a"], ["b"], ["c"]) and "->" in line}
    assert rows["a"][4:6] == ["1.67", "1.25"] and rows["b"][4:6] == ["0.80", "2.00"]
    assert rows["c"][4:6] == ["1.60", "2.00"]
    assert "qnnc slower with more threads: b (2)" in text
    assert "qnnc scaling less than onnxruntime INT8: b (2), c (2)" in text
    assert "built for one thread" not in text
    from benchmarks.common import fmt

    res[0].rows[1].one_thread_runs = (3, 40)  # the per-run team's choices in the rounds
    team = {line.split()[0]: line.split() for line in report(res, None, (1, 2), "smoke")
            .splitlines() if "->" in line}
    assert team["a"][6] == "3/40" and team["b"][6] == fmt(res[1].rows[1].load)
    # --threads 2,1 (a profile at 2 threads): the speed-ups still go from 1 thread to 2
    down = report(res, None, (2, 1), "smoke")
    assert "Speed-up from 1 thread(s)" in down and "2 -> 1" not in down
    assert "qnnc slower with more threads: b (2)" in down


def test_host_latency_marks_a_one_thread_build_instead_of_calling_it_slower() -> None:
    """A model built for one thread whatever --threads says times the same module twice:
    its speed-up is marked and it is not listed as slower or behind onnxruntime."""
    from benchmarks.host_latency import ModelResult, Row, report

    res = [ModelResult("v", [Row(1, 1.0, 2.0, 3.0, 5), Row(2, 1.02, 2.0, 3.0, 5)],
                       one_thread={2})]
    text = report(res, None, (1, 2), "smoke")
    (row,) = [line.split() for line in text.splitlines() if line.startswith("v ") and "->" in line]
    assert row[4] == "0.98*"
    assert "qnnc slower with more threads: none" in text
    assert "qnnc scaling less than onnxruntime INT8: none" in text
    assert "module as at 1 thread: v (2)" in text


@needs_cc
def test_host_latency_reports_a_failing_model_as_n_a(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import benchmarks.host_latency as hl
    from compiler.errors import QnncError

    def broken(*args: object, **kwargs: object) -> object:
        raise QnncError("no C emitter for op QFoo\nsecond line")

    monkeypatch.setattr(hl, "compile_model", broken)
    res = hl.bench_model("tiny_cnn", threads=(1,), n_calib=2, warmup=1, repeat=1,
                         cache_dir=tmp_path)
    assert res.notes == ["qnnc int8 n/a (QnncError: no C emitter for op QFoo)"]
    (row,) = res.rows
    assert row.qnnc_ms is None and row.ort_int8_ms is not None
    assert "n/a" in hl.report([res], None, (1,), "smoke")


@needs_cc
@pytest.mark.slow  # two host builds with their Cython wrappers: about a minute
def test_lstm_int8_tiny(tmp_path: Path) -> None:
    from benchmarks.lstm_int8 import CONTENDERS, bench, report

    res = bench(steps=4, hidden=8, features=6, n_calib=2, n_eval=2, warmup=1, repeat=1,
                folder=tmp_path)
    assert res.qnnc_ops.get("QLSTM") == 1 and res.ort_ops.get("DynamicQuantizeLSTM") == 1
    assert set(res.ms) == set(CONTENDERS) and all(ms > 0 for ms in res.ms.values())
    assert min(res.sqnr["qnnc f32"]) > 60  # the same float model: only rounding differs
    assert min(res.sqnr["qnnc int8"]) > 10 and min(res.sqnr["ORT int8"]) > 10
    assert set(res.r2) == set(CONTENDERS)  # the head was fitted to the task
    text = report(res)
    assert "QLSTM" in text and "ORT int8" in text and "vs interpreter" in text


def test_shipped_models_report_measures_agreement_and_names_failures() -> None:
    from benchmarks.shipped_models import agreement, report

    ref = np.array([[[0.1, 0.9], [0.8, 0.2]]])
    assert agreement("rec", ref, np.array([[[0.2, 0.8], [0.1, 0.9]]])) == 0.5
    assert agreement("det", np.array([0.2, 0.5]), np.array([0.4, 0.6])) == 0.5
    text = report({"cls": {"qnnc interp": 1.0, "qnnc host C": "failed: CodegenError: x"}})
    assert "1.0000" in text and "cls qnnc host C: failed: CodegenError: x" in text


def test_int8_recipe_digits_two_methods(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sklearn")
    import benchmarks.int8_recipe as ir
    from compiler.quant.calibrate import DEFAULT_METHOD

    other = "minmax" if DEFAULT_METHOD != "minmax" else "mse"
    rep = ir.digits([other, DEFAULT_METHOD], n_calib=8, n_test=20, folder=tmp_path / "a")
    assert [r for r, _ in rep.rows] == ["ORT f32", "ORT INT8", ir.label(other),
                                        f"qnnc INT8 {DEFAULT_METHOD} (default)"]
    assert rep.notes == []
    assert rep.value("ORT f32", "top-1 agree") == 1.0
    for row, cells in rep.rows:
        assert all(isinstance(c, float) and 0.5 <= c <= 1.0 for c in cells), (row, cells)
    (c,) = rep.compiled
    assert set(c.seconds) == {"ORT INT8", ir.label(other), ir.label(DEFAULT_METHOD)}
    text = ir.compile_table(rep.compiled, [other, DEFAULT_METHOD])
    assert "digits_cnn" in text and f"{DEFAULT_METHOD}/ORT" in text
    assert "(default)" in rep.format()

    real = ir.compile_model

    def broken(*args: object, **kwargs: object) -> object:
        if kwargs.get("calib_method") == other:
            raise RuntimeError("no observer\nsecond line")
        return real(*args, **kwargs)

    monkeypatch.setattr(ir, "compile_model", broken)
    rep = ir.digits([other, DEFAULT_METHOD], n_calib=4, n_test=5, folder=tmp_path / "b")
    assert dict(rep.rows)[ir.label(other)] == ["n/a", "n/a"]
    assert rep.notes == [f"digits_cnn {ir.label(other)}: RuntimeError: no observer"]
    assert "n/a" in rep.format()


def test_int8_recipe_times_fast_quantisations_again(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A model whose quantisations are all fast is quantised --timing-repeat times by each
    tool, and the fastest time is kept."""
    pytest.importorskip("sklearn")
    import benchmarks.int8_recipe as ir

    calls: list[str] = []
    real_q, real_ort = ir.compile_model, ir.ort_quantize

    def counted_q(*args: object, **kwargs: object) -> object:
        calls.append("qnnc")
        return real_q(*args, **kwargs)

    def counted_ort(*args: object, **kwargs: object) -> object:
        calls.append("ort")
        return real_ort(*args, **kwargs)

    monkeypatch.setattr(ir, "compile_model", counted_q)
    monkeypatch.setattr(ir, "ort_quantize", counted_ort)
    monkeypatch.setattr(ir, "TIMING_REPEAT", 2)
    rep = ir.digits(["minmax"], n_calib=4, n_test=5, folder=tmp_path)
    assert calls.count("ort") == 2 and calls.count("qnnc") == 2, calls
    (c,) = rep.compiled
    assert all(0 < t < ir.REPEAT_UNDER for t in c.seconds.values())


def test_host_latency_warms_a_threaded_build_past_the_team_trials() -> None:
    """The untimed runs host_latency gives a multi-thread build before timing it are the
    runtime's own count of team trials, read from the header that defines it."""
    from benchmarks.host_latency import TEAM_TRIALS

    header = (Path(__file__).parents[1] / "csrc" / "qnnc_runtime.h").read_text()
    assert f"#define QNNC_TEAM_TRIALS {TEAM_TRIALS}\n" in header


def test_calib_speed_times_the_digits_cnn(capsys: pytest.CaptureFixture[str]) -> None:
    """calib_speed's repository models need none of the corpus packages: the digits CNN row
    comes out with both tools' times and their ratio."""
    from benchmarks import calib_speed

    calib_speed.main(["--models", "digits", "--samples", "4", "--no-build", "--repeat", "1"])
    row = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("digits"))
    cells = row.split()
    assert cells[1] == "4" and cells[4] == "n/a"
    assert float(cells[2]) >= 0 and float(cells[3]) >= 0 and float(cells[5]) > 0


@needs_cc
def test_threads_under_load_times_both_builds_with_a_busy_core(
        capsys: pytest.CaptureFixture[str]) -> None:
    """threads_under_load builds tiny_cnn for one and two threads, runs both with a spinning
    process beside them, and prints a row per build and their ratios; the spinner is gone
    afterwards."""
    import subprocess

    from benchmarks import threads_under_load as tul

    started: list[subprocess.Popen[bytes]] = []
    real = subprocess.Popen

    def popen(*args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        p = real(*args, **kwargs)  # type: ignore[call-overload]
        if args and isinstance(args[0], list) and tul.SPIN in args[0]:
            started.append(p)  # the spinner, not a compiler run
        return p

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tul.subprocess, "Popen", popen)
        tul.main(["--models", "tiny_cnn", "--runs", "3", "--gap-ms", "0"])
    out = capsys.readouterr().out
    rows = [ln.split() for ln in out.splitlines() if ln.startswith("tiny_cnn")]
    assert [r[1] for r in rows[:2]] == ["1", "2"] and len(rows) == 3
    assert all(float(c) > 0 for r in rows[:2] for c in r[2:6])
    assert float(rows[2][1]) > 0 and float(rows[2][2]) > 0
    assert "n/a (built for one thread)" in out  # tiny_cnn shares no layer out
    assert len(started) == 1 and all(p.poll() is not None for p in started)


def test_host_latency_times_every_thread_count_in_the_same_rounds() -> None:
    """The rows of one model come from one interleaved run: each round calls every
    contender at every thread count before the next round starts, so a speed-up is never
    a change of load between two phases."""
    from benchmarks.host_latency import TEAM_TRIALS, ModelResult, time_rows

    calls: list[str] = []

    class Fake:
        def __init__(self, name: str) -> None:
            self.name = name

        def run(self, *_: object) -> None:
            calls.append(self.name)

        def team_runs(self) -> tuple[int, int]:  # a third of the runs on one thread
            n = calls.count(self.name)
            return n - n // 3, n // 3

    res = ModelResult("m")
    time_rows(res, (1, 2), {t: Fake(f"q{t}") for t in (1, 2)},  # type: ignore[misc]
              {t: Fake(f"i{t}") for t in (1, 2)}, {t: Fake(f"f{t}") for t in (1, 2)},
              {}, ["y"], warmup=1, repeat=3, budget_s=1.0)
    assert calls[:TEAM_TRIALS] == ["q2"] * TEAM_TRIALS  # the team's trials, untimed
    one_round = ["q1", "i1", "f1", "q2", "i2", "f2"]
    assert calls[TEAM_TRIALS:] == one_round * 4  # the warm-up call, then three rounds
    assert [r.threads for r in res.rows] == [1, 2]
    assert all(r.rounds == 3 and r.qnnc_ms is not None and r.ort_int8_ms is not None
               for r in res.rows)
    # the runs of the rounds (6 before, 10 after): 3 - 2 of them on one thread
    assert res.rows[0].one_thread_runs is None and res.rows[1].one_thread_runs == (1, 4)


@needs_cc
def test_omp_wake_prints_a_row_per_spin_count_and_pause(
        capsys: pytest.CaptureFixture[str]) -> None:
    """The wake-up program builds for both runtimes, runs once per spin setting and reports
    every pause with a delay in microseconds (no bound on it: the numbers are for reports)
    and how many runs a worker took the block in; libgomp's worker always does."""
    from benchmarks.omp_wake import main

    main(["--spins", "0,300000", "--spin-us", "0,100", "--gaps-ms", "0,1", "--runs", "3"])
    lines = [ln for ln in capsys.readouterr().out.splitlines()
             if ln.startswith(("libgomp,", "pool,"))]
    rows = [(ln.rsplit(None, 4)[0], ln.split()[-4:]) for ln in lines]
    assert [(name.split(" (")[0], r[0]) for name, r in rows] == [
        ("libgomp, GOMP_SPINCOUNT 0", "0"), ("libgomp, GOMP_SPINCOUNT 0", "1"),
        ("libgomp, GOMP_SPINCOUNT 300000", "0"), ("libgomp, GOMP_SPINCOUNT 300000", "1"),
        ("pool, spin 0 us", "0"), ("pool, spin 0 us", "1"),
        ("pool, spin 100 us", "0"), ("pool, spin 100 us", "1")]
    assert "(qnnc)" in rows[2][0] and "(qnnc)" in rows[6][0]
    assert all(r[3] == "3" for name, r in rows if name.startswith("libgomp"))
    timed = [r for _, r in rows if r[3] != "0"]
    assert all(float(r[1]) >= 0 and float(r[2]) >= float(r[1]) for r in timed)
    assert all(r[1:3] == ["-", "-"] for _, r in rows if r[3] == "0")


def test_omp_wake_refuses_bad_arguments() -> None:
    from benchmarks.omp_wake import main

    with pytest.raises(SystemExit) as e:
        main(["--spins", "x"])
    assert e.value.code == 2
