"""How late a sleeping OpenMP thread starts, by the pause before the parallel region and
by the spin count its wait policy gives it (GOMP_SPINCOUNT).

A small C program is written to a temporary folder and compiled with the C compiler qnnc
builds with (``-O2 -fopenmp``). Each run sleeps for the pause, then opens an empty parallel
region of two threads; the second thread notes when it starts. After the pause a thread
still spinning starts at once; one that has gone to sleep must be woken, and on a virtual
machine that can take far longer than the wake-up itself. The program runs once per spin
count (libgomp reads the count when it loads), with OMP_WAIT_POLICY=PASSIVE as qnnc sets
it, and prints the median and the 90th percentile of the start delay per pause.

    python -m benchmarks.omp_wake
    python -m benchmarks.omp_wake --spins 0,1000,30000,300000 --gaps-ms 1,5,10,20 --runs 200

qnnc's default (targets/host/build.py: DEFAULT_GOMP_SPINCOUNT) is one of the rows: its
spin should outlast the pause between the runs a model serves. These are measurements for
reports, not test assertions.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import format_table, machine_line
from targets.host.build import DEFAULT_GOMP_SPINCOUNT, find_cc

PROGRAM = r"""
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int cmp(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    const int runs = atoi(argv[1]);
    double *d = malloc(sizeof(double) * (size_t)runs);
    if (d == NULL) return 1;
    for (int a = 2; a < argc; ++a) {
        const double gap = atof(argv[a]) * 1e-3;
        const struct timespec ts = {(time_t)gap, (long)((gap - (time_t)gap) * 1e9)};
        for (int r = -5; r < runs; ++r) {  /* five untimed runs first */
            nanosleep(&ts, NULL);
            double start = 0.0;
            const double t0 = omp_get_wtime();
#pragma omp parallel num_threads(2)
            if (omp_get_thread_num() == 1) start = omp_get_wtime();
            if (r >= 0) d[r] = (start - t0) * 1e6;
        }
        qsort(d, (size_t)runs, sizeof(double), cmp);
        printf("%s %.1f %.1f\n", argv[a], d[runs / 2], d[(runs * 9) / 10]);
    }
    free(d);
    return 0;
}
"""


def build(folder: Path) -> Path:
    (folder / "wake.c").write_text(PROGRAM)
    exe = folder / "wake"
    subprocess.run([find_cc(), "-O2", "-fopenmp", "wake.c", "-o", str(exe)], cwd=folder,
                   check=True, capture_output=True)
    return exe


def measure(exe: Path, spin: int, gaps: Sequence[float], runs: int) -> list[list[str]]:
    """[pause ms, median us, p90 us] per pause, with ``spin`` as GOMP_SPINCOUNT."""
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": str(spin)}
    out = subprocess.run([str(exe), str(runs), *(f"{g:g}" for g in gaps)], env=env,
                         check=True, capture_output=True, text=True).stdout
    return [line.split() for line in out.splitlines() if line.strip()]


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.omp_wake", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spins", default=f"0,1000,30000,{DEFAULT_GOMP_SPINCOUNT}",
                    help="comma-separated GOMP_SPINCOUNT values")
    ap.add_argument("--gaps-ms", default="1,5,10,20,50", help="comma-separated pauses")
    ap.add_argument("--runs", type=int, default=200, help="timed regions per pause")
    args = ap.parse_args(argv)
    try:
        spins = [int(s) for s in args.spins.split(",") if s]
        gaps = [float(g) for g in args.gaps_ms.split(",") if g]
    except ValueError:
        ap.error("--spins takes integers and --gaps-ms numbers, comma-separated")
    if args.runs < 1 or not spins or not gaps or min(spins) < 0 or min(gaps) < 0:
        ap.error("--runs must be at least 1; --spins and --gaps-ms not empty, not negative")
    rows = []
    with tempfile.TemporaryDirectory(prefix="qnnc-wake-") as tmp:
        try:
            exe = build(Path(tmp))
        except (subprocess.CalledProcessError, OSError) as e:
            sys.exit(f"cannot build the OpenMP test program: {e}")
        for spin in spins:
            default = " (qnnc)" if str(spin) == DEFAULT_GOMP_SPINCOUNT else ""
            rows += [[f"{spin}{default}", *r] for r in measure(exe, spin, gaps, args.runs)]
    print(machine_line())
    print(f"second thread's start after the first's, {args.runs} regions per pause "
          "(OMP_WAIT_POLICY=PASSIVE)")
    print(format_table(["GOMP_SPINCOUNT", "pause ms", "median us", "p90 us"], rows))


if __name__ == "__main__":
    main()
