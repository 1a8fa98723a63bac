"""The per-run choice of a threaded build's team (csrc/qnnc_runtime.h): results never depend
on it, the faster team wins all but its probes, a change of load is followed, a full team
that collapses under load is left at once (within the run) and seldom tried again, and
QNNC_ADAPTIVE_THREADS=0 keeps the full team."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ir.graph import Graph
from ir.interpreter import run as interpret
from ir.types import DType
from targets.host.build import CSRC, BuildOptions, find_cc
from tests.codegen.harness import c_runner
from tests.codegen.test_ops_int8 import feeds_for, graph, out_attrs, rand_q, weights

# A C driver of qnnc_team_begin/end on a simulated clock (QNNC_TEAM_CLOCK): each run takes
# a chosen time per team, the two times swap at run SWAP (a change of load) or, given LOAD,
# the full team's runs take LOAD times as long from then on (a core busy elsewhere), and
# run SLOW takes ten times as long. It prints how many runs from run 2 (or from the swap) used one
# thread, and the time all runs took.
DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
static double now;
#define QNNC_TEAM_CLOCK() now
#include "qnnc_runtime.h"
static qnnc_team_t st = QNNC_TEAM_INIT(2, 0);
int main(int argc, char **argv) {
    double full = atof(argv[1]), one = atof(argv[2]);
    const int runs = atoi(argv[3]), swap = argc > 4 ? atoi(argv[4]) : runs;
    const int slow = argc > 5 ? atoi(argv[5]) : -1;
    const double load = argc > 6 ? atof(argv[6]) : 0.0;
    int single = 0, team = 0;
    for (int r = 0; r < runs; ++r) {
        if (r == swap) {
            const double t = full;
            full = load > 0 ? full * load : one;
            one = load > 0 ? one : t;
            single = 0;
        }
        const double t0 = qnnc_team_begin(&st, &team);
        now += (team == 1 ? one : full) * (r == slow ? 10.0 : 1.0);
        qnnc_team_end(&st, t0);
        if (r >= 2) single += team == 1;
    }
    printf("%d %.17g\n", single, now);
    return 0;
}
"""


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("team")
    (d / "driver.c").write_text(DRIVER)
    exe = d / "driver"
    subprocess.run([find_cc(), "-O2", "-fopenmp", f"-I{CSRC}", "driver.c", "-o", str(exe)],
                   cwd=d, check=True)
    return exe


def simulate(exe: Path, full: float, one: float, runs: int, swap: int | None = None,
             slow_run: int | None = None, load: float = 0.0, **env: str) -> tuple[int, float]:
    """(runs from run 2 (or the swap) that used one thread, the time of all runs)."""
    args = [str(exe), str(full), str(one), str(runs), str(runs if swap is None else swap),
            str(-1 if slow_run is None else slow_run), str(load)]
    out = subprocess.run(args, check=True,
                         capture_output=True, text=True, env={**os.environ, **env})
    single, total = out.stdout.split()
    return int(single), float(total)


def singles(exe: Path, full: float, one: float, runs: int, swap: int | None = None,
            slow_run: int | None = None, **env: str) -> int:
    return simulate(exe, full, one, runs, swap, slow_run, **env)[0]


def test_the_faster_team_wins_after_its_probes(driver: Path) -> None:
    """One thread three times faster: run 0 (not counted) uses the full team, runs 1-6
    alternate one thread and the full team (runs 2, 4, 6 counted here); then one thread,
    except the two-run probes of the full team at runs 23-24 and 57-58 (16, then 32 runs
    apart). The full team three times faster: one thread only in the trials (runs 3 and 5)
    and at the probes."""
    assert singles(driver, 3.0, 1.0, 60) == 58 - 7
    assert singles(driver, 1.0, 3.0, 60) == 6


def test_a_change_of_load_is_followed(driver: Path) -> None:
    """One thread faster until run 40, then the full team: one thread keeps running until
    the probe at runs 57-58 sees the full team's new time (runs 40-56), then only at its
    probes (runs 75-76 and 109-110: 16, then 32 runs after the change of choice)."""
    assert singles(driver, 3.0, 1.0, 120, swap=40) == 17 + 4


def test_one_slow_trial_does_not_decide(driver: Path) -> None:
    """The full team twice as fast, but its first counted run (run 2) slow, as a first
    wake-up of the threads can be: the trials' fastest run still picks the full team, and
    one thread runs only in the trials (runs 3 and 5) and its probe (runs 23-24)."""
    assert singles(driver, 1.0, 2.0, 30, slow_run=2) == 4


def test_one_stall_after_the_trials_does_not_turn_the_choice(driver: Path) -> None:
    """The full team twice as fast and chosen, then one of its runs (run 10) ten times as
    long, a thread descheduled for a moment: that run counts as twice the average, which
    stays below one thread's, so one thread runs only in the trials and its probe."""
    assert singles(driver, 1.0, 2.0, 30, slow_run=10) == 4


def test_a_full_team_that_collapses_is_seldom_probed(driver: Path) -> None:
    """With one core busy elsewhere a full team's run can take a hundred times as long.
    The trials stop once both of its trial runs (runs 2 and 4) were that slow, and a probe
    of it waits until it is at most 1/64 of the time spent: over 20000 runs the full team
    runs only in those two trials and the probe at runs 12933-12934 (64 x the trials' 202
    time units on; the next would be 12800 runs later), so the runs take 2.5% more time than
    one thread alone, where probing every 256 runs took 81% more."""
    single, total = simulate(driver, 100.0, 1.0, 20000)
    assert single == 19998 - 4
    assert total == 19995 * 1.0 + 5 * 100.0  # run 0 uses the full team too


def test_a_chosen_team_that_collapses_is_left_at_once(driver: Path) -> None:
    """The full team twice as fast and chosen, until from run 40 on a core busy elsewhere
    makes its runs a hundred times as long: run 40, over eight times one thread's average,
    counts in full, so one thread takes over at run 41, and the probe that was due at run 57
    waits 3200 runs (64 x 100 / 2). One slow run in all, where counting every run as at
    most twice the average gave 22 (2000 runs: 4063 time units against 6121)."""
    single, total = simulate(driver, 1.0, 2.0, 2000, swap=40, load=100.0)
    assert single == 1960 - 1
    head = simulate(driver, 1.0, 2.0, 40)[1]
    assert total == head + 1959 * 2.0 + 100.0


def test_a_team_merely_slower_is_probed_as_before(driver: Path) -> None:
    """A full team three times slower than one thread (not collapsed: under eight times)
    keeps the doubling schedule, so a change of load is still seen within 16-256 runs."""
    assert singles(driver, 3.0, 1.0, 300) == 298 - 3 - 2 * 4  # probes at 23, 57, 123, 253


# A run of LAYERS layers on the simulated clock, qnnc_team_watch after each as a threaded
# build's qnnc_run_layers calls it: a layer takes FULL with the full team and ONE with one
# thread, and from run COLLAPSE on the full team's layers take a hundred times as long. It
# prints the time of every run, one per line.
LAYERED = r"""
#include <stdio.h>
#include <stdlib.h>
static double now;
#define QNNC_TEAM_CLOCK() now
#include "qnnc_runtime.h"
static qnnc_team_t st = QNNC_TEAM_INIT(2, 0);
int main(int argc, char **argv) {
    const double full = atof(argv[1]), one = atof(argv[2]);
    const int layers = atoi(argv[3]), runs = atoi(argv[4]), collapse = atoi(argv[5]);
    int team = 0;
    for (int r = 0; r < runs; ++r) {
        const double t0 = qnnc_team_begin(&st, &team);
        for (int l = 0; l < layers; ++l) {
            if (team > 1) {
                now += r >= collapse ? 100.0 * full : full;
                qnnc_team_watch(&st, &team);
            } else {
                now += one;
            }
        }
        qnnc_team_end(&st, t0);
        printf("%.17g\n", now - t0);
    }
    return 0;
}
"""


def test_a_collapse_is_cut_short_within_the_run(tmp_path: Path) -> None:
    """The full team twice as fast per layer (0.5 against 1, 50 layers) and chosen, until
    from run 40 on its layers take a hundred times as long. Run 40 passes eight times one
    thread's estimate (400) after 9 layers (450) and runs its other 41 layers on one thread:
    491 time units, where the whole run on the collapsed team would take 2500. It counts as
    collapsed, so run 41 on takes one thread (50 each); the runs before are untouched."""
    (tmp_path / "layered.c").write_text(LAYERED)
    exe = tmp_path / "layered"
    subprocess.run([find_cc(), "-O2", "-fopenmp", f"-I{CSRC}", "layered.c", "-o", str(exe)],
                   cwd=tmp_path, check=True)
    out = subprocess.run([str(exe), "0.5", "1", "50", "60", "40"], check=True,
                         capture_output=True, text=True).stdout.split()
    times = [float(t) for t in out]
    # after the trials the full team, uncut, but for one thread's probe at runs 23-24
    assert times[7:40] == [50.0 if r in (23, 24) else 25.0 for r in range(7, 40)]
    assert times[40] == 9 * 50.0 + 41 * 1.0
    assert times[41:] == [50.0] * 19


def test_the_full_team_can_be_kept(driver: Path) -> None:
    """QNNC_ADAPTIVE_THREADS=0 keeps the full team however slow it is."""
    assert singles(driver, 3.0, 1.0, 20, QNNC_ADAPTIVE_THREADS="0") == 0


def test_results_do_not_depend_on_the_team(tmp_path: Path,
                                           every_layer_threaded: None) -> None:
    """Forty runs of a threaded build (each team taken, probes included) give the
    interpreter's integers every time. The convolution's output positions are cut into one
    chunk per thread, so the runs given one thread call its serial twin, cut for one."""
    rng = np.random.default_rng(2)
    attrs = {"strides": [1, 1], "pads": [1, 1, 1, 1], "group": 1, "dilations": [1, 1],
             **out_attrs(rng, DType.u8, "relu")}
    g = graph("QConv", [rand_q(rng, (1, 8, 20, 20), DType.u8),
                        weights(rng, (12, 8, 3, 3), True), None], attrs)
    source = runs_like_the_interpreter(g, tmp_path, 40)
    assert "if (qnnc_team > 1) { layer_000_" in source and "_serial(" in source


def test_a_layer_cut_the_same_way_at_any_count_has_a_twin_too(
        tmp_path: Path, every_layer_threaded: None) -> None:
    """A layer whose code differs between thread counts only by its parallel-loop line (an
    element-wise add) is copied as well: the one-thread runs call a function with no OpenMP
    loop in it, not the outlined loop through a team of one."""
    rng = np.random.default_rng(3)
    shape = (1, 16, 24, 24)
    g = graph("QAdd", [rand_q(rng, shape, DType.u8), rand_q(rng, shape, DType.u8)],
              out_attrs(rng, DType.u8, None))
    source = runs_like_the_interpreter(g, tmp_path, 10)
    twin = source[source.index("_serial("):]
    assert "QNNC_OMP_FOR" in source and "if (qnnc_team > 1) { layer_000_" in source
    body = twin[twin.index("{"):twin.index("\n}\n")]
    assert "QNNC_OMP_FOR" not in body


def runs_like_the_interpreter(g: Graph, tmp_path: Path, runs: int) -> str:
    """Build ``g`` for two threads, check ``runs`` runs (each team taken, probes included)
    against the interpreter's integers; the generated model.c."""
    feeds = feeds_for(g, 0)
    want = interpret(g, feeds)
    run = c_runner(g, tmp_path / "lib", BuildOptions(threads=2, werror=True))
    for _ in range(runs):
        got = run(feeds)
        for name, w in want.items():
            np.testing.assert_array_equal(got[name], w, err_msg=name)
    return (tmp_path / "lib" / "model.c").read_text()
