"""The per-run choice of a threaded build's team (csrc/qnnc_runtime.h): results never depend
on it, the faster team wins most runs whichever it is, and QNNC_ADAPTIVE_THREADS=0 keeps the
full team."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ir.interpreter import run as interpret
from ir.types import DType
from targets.host.build import CSRC, BuildOptions, find_cc
from tests.codegen.harness import c_runner
from tests.codegen.test_ops_int8 import feeds_for, graph, out_attrs, rand_q, weights

# A C driver of qnnc_team_begin/end whose "layers" take a chosen time per team (a busy wait):
# it prints how many of the runs after the first two (or after the swap of the two times)
# used one thread.
DRIVER = r"""
#include <stdio.h>
#include "qnnc_runtime.h"
static qnnc_team_t st = QNNC_TEAM_INIT(2, 0);
int main(int argc, char **argv) {
    double full = atof(argv[1]) * 1e-3, one = atof(argv[2]) * 1e-3;
    const int runs = atoi(argv[3]), swap = argc > 4 ? atoi(argv[4]) : runs;
    int single = 0, team = 0;
    for (int r = 0; r < runs; ++r) {
        if (r == swap) { /* the load changes: the times of the two teams swap */
            const double t = full;
            full = one;
            one = t;
            single = 0;
        }
        const double t0 = qnnc_team_begin(&st, &team);
        const double until = t0 + (team == 1 ? one : full);
        while (omp_get_wtime() < until) {
        }
        qnnc_team_end(&st, t0);
        if (r >= 2) single += team == 1;
    }
    printf("%d\n", single);
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


def singles(exe: Path, full_ms: float, one_ms: float, runs: int, swap: int | None = None,
            **env: str) -> int:
    args = [str(exe), str(full_ms), str(one_ms), str(runs)] + ([] if swap is None else
                                                               [str(swap)])
    out = subprocess.run(args, check=True,
                         capture_output=True, text=True, env={**os.environ, **env})
    return int(out.stdout)


def test_the_faster_team_wins_most_runs(driver: Path) -> None:
    """Three times faster either way: after its probes the policy stays with the faster
    team (probes are the only runs on the other; a descheduled run may cost one more)."""
    runs = 60
    assert singles(driver, 3.0, 1.0, runs) >= 0.8 * (runs - 2)
    assert singles(driver, 1.0, 3.0, runs) <= 0.2 * (runs - 2)


def test_a_change_of_load_is_followed(driver: Path) -> None:
    """One thread three times faster for 40 runs, then the full team: the probe after the
    change (at most 32 runs later here) moves the choice, and it stays there."""
    assert singles(driver, 3.0, 1.0, 120, swap=40) <= 32 + 8


def test_the_full_team_can_be_kept(driver: Path) -> None:
    """QNNC_ADAPTIVE_THREADS=0 keeps the full team however slow it is."""
    assert singles(driver, 3.0, 1.0, 20, QNNC_ADAPTIVE_THREADS="0") == 0


def test_results_do_not_depend_on_the_team(tmp_path: Path,
                                           every_layer_threaded: None) -> None:
    """Forty runs of a threaded build (each team taken, probes included) give the
    interpreter's integers every time."""
    rng = np.random.default_rng(2)
    attrs = {"strides": [1, 1], "pads": [1, 1, 1, 1], "group": 1, "dilations": [1, 1],
             **out_attrs(rng, DType.u8, "relu")}
    g = graph("QConv", [rand_q(rng, (1, 8, 20, 20), DType.u8),
                        weights(rng, (12, 8, 3, 3), True), None], attrs)
    feeds = feeds_for(g, 0)
    want = interpret(g, feeds)
    run = c_runner(g, tmp_path / "lib", BuildOptions(threads=2, werror=True))
    for _ in range(40):
        got = run(feeds)
        for name, w in want.items():
            np.testing.assert_array_equal(got[name], w, err_msg=name)
