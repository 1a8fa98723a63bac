"""The threaded build's own fork and join (csrc/qnnc_pool.h): every block of a loop runs once,
with the block number and count the static schedule needs, whichever thread claims it; the
caller never waits for a thread that has not claimed a block (a stalled worker cannot hold a
loop); a loop inside a loop runs on its caller; and a threaded module binds the OpenMP entry
points to its own pool."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

import pytest

from targets.host.build import CSRC, find_cc

pytestmark = pytest.mark.skipif(platform.system() != "Linux", reason="the pool is Linux-only")

# A C driver of the pool with the OpenMP lowering GCC gives a `parallel for`: mode "count"
# runs LOOPS loops of N blocks and checks every block ran once with its number and count;
# mode "stalled" first stops every other thread of the process in a signal handler (it waits
# on a pipe), then runs a loop, which must finish on the caller alone, then lets them go and
# runs LOOPS more; mode "fork" forks after LOOPS loops and runs LOOPS more in the child, then
# prints the child's thread count; mode "nested" runs a loop from inside a block.
DRIVER = r"""
#define _GNU_SOURCE
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "qnnc_runtime.h"
#include "qnnc_pool.h"
#define MAXN 8
static _Atomic int ran[MAXN], bad, on_caller, caller, inner_n;
static int n_expected;
static int gettid_(void) { return (int)syscall(SYS_gettid); }
static void body(void *d) {
    (void)d;
    const int id = omp_get_thread_num(), n = omp_get_num_threads();
    if (n != n_expected || id < 0 || id >= n) ++bad;
    else ++ran[id];
    if (gettid_() == caller) ++on_caller;
}
static void inner(void *d) { (void)d; inner_n = omp_get_num_threads(); }
static void outer(void *d) { (void)d; GOMP_parallel(inner, NULL, 2, 0); }
static int fds[2];
static void hold(int sig) { (void)sig; char c; if (read(fds[0], &c, 1) < 0) _exit(3); }
static int stop_others(void) {
    int n = 0;
    DIR *dir = opendir("/proc/self/task");
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        const int tid = atoi(e->d_name);
        if (tid > 0 && tid != caller) { syscall(SYS_tgkill, getpid(), tid, SIGUSR1); ++n; }
    }
    closedir(dir);
    return n;
}
static int loops(int count, int n) {
    n_expected = n;
    for (int l = 0; l < count; ++l) {
        for (int i = 0; i < n; ++i) ran[i] = 0;
        GOMP_parallel(body, NULL, (unsigned)n, 0);
        for (int i = 0; i < n; ++i) if (ran[i] != 1) return 1;
    }
    return bad != 0;
}
int main(int argc, char **argv) {
    const int n = atoi(argv[2]), count = atoi(argv[3]);
    caller = gettid_();
    if (argv[1][0] == 'c') return loops(count, n) ? 1 : (printf("ok\n"), 0);
    if (argv[1][0] == 'n') {
        GOMP_parallel(outer, NULL, (unsigned)n, 0);
        return printf("%d\n", inner_n), 0;
    }
    if (argv[1][0] == 'f') { /* fork after the workers started; the child's loops */
        if (loops(count, n)) return 1;
        const pid_t pid = fork();
        if (pid == 0) {
            caller = gettid_();
            if (loops(count, n)) _exit(1);
            int threads = 0;
            DIR *dir = opendir("/proc/self/task");
            struct dirent *e;
            while ((e = readdir(dir)) != NULL) threads += atoi(e->d_name) > 0;
            closedir(dir);
            printf("%d\n", threads);
            fflush(stdout);
            _exit(0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 4;
    }
    if (pipe(fds) != 0) return 2;
    signal(SIGUSR1, hold);
    if (loops(1, n)) return 1; /* starts the workers */
    usleep(20000);
    const int stopped = stop_others();
    usleep(20000); /* the signals are taken */
    on_caller = 0;
    if (loops(1, n)) return 1;
    printf("%d %d\n", stopped, on_caller);
    for (int i = 0; i < stopped; ++i) if (write(fds[1], "x", 1) != 1) return 2;
    return loops(count, n) ? 1 : 0;
}
"""


def gcc_or_skip() -> None:
    macros = subprocess.run([find_cc(), "-dM", "-E", "-x", "c", os.devnull],
                            capture_output=True, text=True).stdout
    if "__clang__" in macros:
        pytest.skip("the pool is built with GCC only (clang builds use libgomp's loops)")


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc_or_skip()
    d = tmp_path_factory.mktemp("pool")
    (d / "driver.c").write_text(DRIVER)
    exe = d / "driver"
    subprocess.run([find_cc(), "-O2", "-fopenmp", "-std=c11", "-Wall", "-Werror", f"-I{CSRC}",
                    "driver.c", "-o", str(exe)], cwd=d, check=True)
    return exe


def run(exe: Path, *args: object, **env: str) -> str:
    out = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True,
                         timeout=60, env={**os.environ, **env})
    assert out.returncode == 0, (out.returncode, out.stdout, out.stderr)
    return out.stdout


@pytest.mark.parametrize("spin", ["0", "100", "5000"])
@pytest.mark.parametrize("n", [2, 3])
def test_every_block_runs_once_with_its_number(driver: Path, n: int, spin: str) -> None:
    """Thousands of loops, with workers that sleep at once, after a short spin or a long one."""
    assert run(driver, "count", n, 3000, QNNC_SPIN_US=spin) == "ok\n"


def test_a_stalled_worker_does_not_hold_the_loop(driver: Path) -> None:
    """With every other thread stopped (and not to go on before the loop is over), the loop
    finishes, both blocks on the caller; the workers then take part again."""
    stopped, on_caller = map(int, run(driver, "stalled", 2, 500, QNNC_SPIN_US="0").split())
    assert stopped >= 1 and on_caller == 2


def test_a_forked_child_starts_its_own_workers(driver: Path) -> None:
    """After a fork (the parent's workers stay behind), the child's loops run every block
    once and the child starts a worker of its own."""
    assert int(run(driver, "fork", 2, 500)) >= 2


def test_a_loop_inside_a_loop_runs_on_its_caller(driver: Path) -> None:
    assert run(driver, "nested", 2, 0) == "1\n"


def test_a_threaded_module_binds_the_entry_points_to_its_pool(
        tmp_path: Path, every_layer_threaded: None) -> None:
    """No GOMP_parallel or thread-number function is taken from libgomp."""
    gcc_or_skip()
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("no nm")
    from compiler.api import compile_model, load_model
    from compiler.examples import build_example

    compile_model(load_model(build_example("tiny_cnn")), target="host", threads=2,
                  cache_dir=tmp_path / "cache")
    so = next((tmp_path / "cache").rglob("*.so"))
    undefined = subprocess.run([nm, "-D", "--undefined-only", str(so)], capture_output=True,
                               text=True, check=True).stdout
    assert "GOMP_parallel" not in undefined and "omp_get_thread_num" not in undefined
    local = subprocess.run([nm, str(so)], capture_output=True, text=True, check=True).stdout
    assert " t GOMP_parallel" in local
