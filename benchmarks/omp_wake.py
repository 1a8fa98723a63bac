"""How late a sleeping thread starts its share of a parallel loop, by the pause before the
loop and by how long the thread spins before it sleeps.

A small C program is written to a temporary folder and compiled with the C compiler qnnc
builds with (``-O2 -fopenmp``). Each run sleeps for the pause, then opens a parallel loop of
two blocks: block 1 notes when it starts and on which thread, block 0 (the caller's) waits
up to 1 ms for block 1 to start. After the pause a thread still spinning starts at once; one
that has gone to sleep must be woken, and on a virtual machine that can take far longer than
the wake-up itself. Printed per pause: the median and the 90th percentile of the start
delay, over the runs where a worker (not the caller) ran block 1, and how many runs that was.

Two runtimes: libgomp's (``--runtime libgomp``; one run per GOMP_SPINCOUNT of ``--spins``,
with OMP_WAIT_POLICY=PASSIVE as qnnc sets it; its worker always runs block 1, the caller
waiting for it), and qnnc's own fork and join that threaded builds use on Linux with GCC
(``--runtime pool``, csrc/qnnc_pool.h; one run per QNNC_SPIN_US of ``--spin-us``; a block
that no worker took within the caller's wait is run by the caller, and such runs are not
in the delays).

    python -m benchmarks.omp_wake
    python -m benchmarks.omp_wake --runtime libgomp --spins 0,1000,30000,300000 --runs 200
    python -m benchmarks.omp_wake --runtime pool --spin-us 0,100,2000 --gaps-ms 1,5,20,50
    QNNC_POOL_PIN=0 python -m benchmarks.omp_wake --runtime pool   # workers placed by the kernel

These are measurements for reports, not test assertions.
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
from targets.host.build import CSRC, DEFAULT_GOMP_SPINCOUNT, find_cc

PROGRAM = r"""
#define _GNU_SOURCE
#include <omp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#ifdef QNNC_POOL
#include "qnnc_pool.h"
#endif

static int cmp(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    const int runs = atoi(argv[1]);
    const long caller = syscall(SYS_gettid);
    double *d = malloc(sizeof(double) * (size_t)runs);
    if (d == NULL) return 1;
    for (int a = 2; a < argc; ++a) {
        const double gap = atof(argv[a]) * 1e-3;
        const struct timespec ts = {(time_t)gap, (long)((gap - (time_t)gap) * 1e9)};
        int n = 0;
        for (int r = -5; r < runs; ++r) {  /* five untimed runs first */
            nanosleep(&ts, NULL);
            double start = 0.0;
            long who = caller;
            _Atomic int started = 0;
            const double t0 = omp_get_wtime();
#pragma omp parallel for num_threads(2)
            for (int b = 0; b < 2; ++b) {
                if (b == 1) {
                    start = omp_get_wtime();
                    who = syscall(SYS_gettid);
                    started = 1;
                } else {
                    while (!started && omp_get_wtime() - t0 < 1e-3) {}
                }
            }
            if (r >= 0 && who != caller) d[n++] = (start - t0) * 1e6;
        }
        qsort(d, (size_t)n, sizeof(double), cmp);
        if (n > 0) printf("%s %.1f %.1f %d\n", argv[a], d[n / 2], d[(n * 9) / 10], n);
        else printf("%s - - 0\n", argv[a]);
    }
    free(d);
    return 0;
}
"""


def build(folder: Path, pool: bool) -> Path:
    (folder / "wake.c").write_text(PROGRAM)
    exe = folder / ("wake_pool" if pool else "wake")
    extra = ["-DQNNC_POOL", f"-I{CSRC}"] if pool else []
    subprocess.run([find_cc(), "-O2", "-fopenmp", *extra, "wake.c", "-o", str(exe)],
                   cwd=folder, check=True, capture_output=True)
    return exe


def measure(exe: Path, env: dict[str, str], gaps: Sequence[float], runs: int
            ) -> list[list[str]]:
    """[pause ms, median us, p90 us, runs a worker took block 1] per pause."""
    out = subprocess.run([str(exe), str(runs), *(f"{g:g}" for g in gaps)],
                         env={**os.environ, **env}, check=True, capture_output=True,
                         text=True).stdout
    return [line.split() for line in out.splitlines() if line.strip()]


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.omp_wake", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runtime", choices=("libgomp", "pool", "both"), default="both",
                    help="whose fork and join (default: both)")
    ap.add_argument("--spins", default=f"0,1000,30000,{DEFAULT_GOMP_SPINCOUNT}",
                    help="comma-separated GOMP_SPINCOUNT values (libgomp)")
    ap.add_argument("--spin-us", default="0,100,2000",
                    help="comma-separated QNNC_SPIN_US values (the pool; 100 is qnnc's)")
    ap.add_argument("--gaps-ms", default="1,5,10,20,50", help="comma-separated pauses")
    ap.add_argument("--runs", type=int, default=200, help="timed loops per pause")
    args = ap.parse_args(argv)
    try:
        spins = [int(s) for s in args.spins.split(",") if s]
        spin_us = [float(s) for s in args.spin_us.split(",") if s]
        gaps = [float(g) for g in args.gaps_ms.split(",") if g]
    except ValueError:
        ap.error("--spins takes integers, --spin-us and --gaps-ms numbers, comma-separated")
    if args.runs < 1 or not spins or not spin_us or not gaps or min(spins) < 0 \
            or min(spin_us) < 0 or min(gaps) < 0:
        ap.error("--runs must be at least 1; --spins, --spin-us and --gaps-ms not empty, "
                 "not negative")
    rows = []
    with tempfile.TemporaryDirectory(prefix="qnnc-wake-") as tmp:
        for pool in (False, True):
            if args.runtime != "both" and (args.runtime == "pool") != pool:
                continue
            try:
                exe = build(Path(tmp), pool)
            except (subprocess.CalledProcessError, OSError) as e:
                sys.exit(f"cannot build the OpenMP test program: {e}")
            if pool:
                for us in spin_us:
                    mark = " (qnnc)" if us == 100 else ""
                    rows += [[f"pool, spin {us:g} us{mark}", *r]
                             for r in measure(exe, {"QNNC_SPIN_US": f"{us:g}"}, gaps,
                                              args.runs)]
            else:
                for spin in spins:
                    mark = " (qnnc)" if str(spin) == DEFAULT_GOMP_SPINCOUNT else ""
                    env = {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": str(spin)}
                    rows += [[f"libgomp, GOMP_SPINCOUNT {spin}{mark}", *r]
                             for r in measure(exe, env, gaps, args.runs)]
    print(machine_line())
    print(f"the worker's start of block 1 after the loop began, {args.runs} loops per pause "
          "(runs: how many a worker, not the caller, took it in)")
    print(format_table(["runtime", "pause ms", "median us", "p90 us", "runs"], rows))


if __name__ == "__main__":
    main()
