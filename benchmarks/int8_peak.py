"""This machine's achievable INT8 multiply-accumulate peak on one core.

A small C program is written to a temporary folder and compiled with the system C compiler
(``cc -O3 -march=native``), so it measures exactly the instructions this CPU has. Each kernel
is an unrolled loop of one dot-product instruction into many independent accumulators (so the
instruction's latency is hidden and only its throughput counts), written as inline assembly
so the compiler cannot hoist or merge the loop-invariant products:

- ``vnni512``: AVX-512 VNNI ``vpdpbusd`` on zmm (u8 x s8, 4 MACs per int32 lane, 64 per op)
- ``avxvnni``: AVX-VNNI ``{vex} vpdpbusd`` on ymm (32 MACs per instruction)
- ``avx2-madd16``: AVX2 ``vpmaddwd`` on int8 widened to int16, plus ``vpaddd`` into the
  accumulator (16 MACs per pair) — the exact arithmetic qnnc's AVX2 GEMM uses
- ``avx2-maddubs``: ``vpmaddubsw`` + ``vpmaddwd`` (by ones) + ``vpaddd`` (32 MACs per triple):
  its int16 intermediate saturates for some full-range int8 weights, so it is exact only for
  weights within the pair rule — qnnc's ``--weight-range paired`` or ``int7``, whose layers
  then run it (csrc/qnnc_int8_u8s8.h)
- ``fma256`` / ``fma512``: FP32 ``vfmadd231ps`` on ymm / zmm, the float peak

Kernels the CPU lacks are not compiled (the program checks the compiler's feature macros).
GOPS counts 1 MAC as 2 operations. A dependent chain of 1-cycle integer adds estimates the
core clock, which turns GOPS into operations per cycle. The best of several timed runs is
reported: a peak is what the core *can* do, and background load only ever slows a run down.

    python -m benchmarks.int8_peak [--iterations 1000000] [--runs 40]

:func:`best_int8_gops` returns the best INT8 figure for other scripts (host_latency divides
a model's achieved GOPS by it).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import fmt, format_table, machine_line
from targets.host.build import find_cc
from targets.host.cpu import cpu_flags, is_x86_64

DEFAULT_ITERATIONS = 1_000_000
DEFAULT_RUNS = 40

#: kernel name -> (kind, description)
KERNELS: dict[str, tuple[str, str]] = {
    "vnni512": ("int8", "AVX-512 VNNI vpdpbusd zmm"),
    "avxvnni": ("int8", "AVX-VNNI {vex} vpdpbusd ymm"),
    "avx2-madd16": ("int8", "AVX2 vpmaddwd+vpaddd on int16-widened int8"),
    "avx2-maddubs": ("int8", "AVX2 vpmaddubsw+vpmaddwd+vpaddd (exact for paired/int7 weights)"),
    "fma512": ("fp32", "AVX-512F vfmadd231ps zmm"),
    "fma256": ("fp32", "AVX2 FMA vfmadd231ps ymm"),
}

# Each kernel: one loop iteration issues UNROLL instructions into UNROLL accumulators.
# The C program prints "name ops_per_iteration seconds..." per kernel and "clock seconds".
C_SOURCE = r"""
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define R12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define R8(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
static volatile int sink;

/* Dependent 1-cycle adds: 16 per iteration, so an iteration takes 16 cycles. Register
 * operands, not immediates: newer Intel cores (Golden Cove on) fold chains of adds of an
 * immediate at register renaming, several per cycle. */
static double clock_chain(long n) {
    long x = 0, y = (sink & 1) | 1;
    double t0 = now();
    for (long i = 0; i < n; ++i) {
        __asm__("add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\t"
                "add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\t"
                "add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\t"
                "add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0" : "+r"(x) : "r"(y));
    }
    double t = now() - t0;
    sink = (int)x;
    return t;
}

#if defined(__AVX512VNNI__) && defined(__AVX512F__)
#define HAVE_VNNI512 1
static double k_vnni512(long n) {
    __m512i a = _mm512_set1_epi8((char)sink + 3), b = _mm512_set1_epi8((char)sink + 5);
#define DECL(i) __m512i c##i = _mm512_setzero_si512();
    R12(DECL)
#undef DECL
    double t0 = now();
    for (long i = 0; i < n; ++i) {
#define OP(i) __asm__("vpdpbusd %2, %1, %0" : "+v"(c##i) : "v"(a), "v"(b));
        R12(OP)
#undef OP
    }
    double t = now() - t0;
    __m512i s = _mm512_setzero_si512();
#define SUM(i) s = _mm512_add_epi32(s, c##i);
    R12(SUM)
#undef SUM
    sink = _mm512_reduce_add_epi32(s);
    return t;
}
#endif

#if defined(__AVXVNNI__)
#define HAVE_AVXVNNI 1
static double k_avxvnni(long n) {
    __m256i a = _mm256_set1_epi8((char)sink + 3), b = _mm256_set1_epi8((char)sink + 5);
#define DECL(i) __m256i c##i = _mm256_setzero_si256();
    R12(DECL)
#undef DECL
    double t0 = now();
    for (long i = 0; i < n; ++i) {
#define OP(i) __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(c##i) : "x"(a), "x"(b));
        R12(OP)
#undef OP
    }
    double t = now() - t0;
    __m256i s = _mm256_setzero_si256();
#define SUM(i) s = _mm256_add_epi32(s, c##i);
    R12(SUM)
#undef SUM
    sink = _mm256_extract_epi32(s, 0);
    return t;
}
#endif

#if defined(__AVX2__)
#define HAVE_AVX2 1
static double k_madd16(long n) {
    __m256i a = _mm256_set1_epi16((short)sink + 3), b = _mm256_set1_epi16((short)sink - 5);
#define DECL(i) __m256i c##i = _mm256_setzero_si256();
    R8(DECL)
#undef DECL
    __m256i t;
    double t0 = now();
    for (long i = 0; i < n; ++i) {
#define OP(i) __asm__("vpmaddwd %3, %2, %1\n\tvpaddd %1, %0, %0" \
                      : "+x"(c##i), "=&x"(t) : "x"(a), "x"(b));
        R8(OP)
#undef OP
    }
    double el = now() - t0;
    __m256i s = _mm256_setzero_si256();
#define SUM(i) s = _mm256_add_epi32(s, c##i);
    R8(SUM)
#undef SUM
    sink = _mm256_extract_epi32(s, 0);
    return el;
}

static double k_maddubs(long n) {
    __m256i a = _mm256_set1_epi8((char)sink + 3), b = _mm256_set1_epi8((char)sink - 5);
    __m256i ones = _mm256_set1_epi16(1);
#define DECL(i) __m256i c##i = _mm256_setzero_si256();
    R8(DECL)
#undef DECL
    __m256i t;
    double t0 = now();
    for (long i = 0; i < n; ++i) {
#define OP(i) __asm__("vpmaddubsw %3, %2, %1\n\tvpmaddwd %4, %1, %1\n\tvpaddd %1, %0, %0" \
                      : "+x"(c##i), "=&x"(t) : "x"(a), "x"(b), "x"(ones));
        R8(OP)
#undef OP
    }
    double el = now() - t0;
    __m256i s = _mm256_setzero_si256();
#define SUM(i) s = _mm256_add_epi32(s, c##i);
    R8(SUM)
#undef SUM
    sink = _mm256_extract_epi32(s, 0);
    return el;
}
#endif

#if defined(__FMA__) && defined(__AVX__)
#define HAVE_FMA256 1
static double k_fma256(long n) {
    __m256 a = _mm256_set1_ps(1.0f + sink), b = _mm256_set1_ps(1e-7f);
#define DECL(i) __m256 c##i = _mm256_setzero_ps();
    R12(DECL)
#undef DECL
    double t0 = now();
    for (long i = 0; i < n; ++i) {
#define OP(i) __asm__("vfmadd231ps %2, %1, %0" : "+x"(c##i) : "x"(a), "x"(b));
        R12(OP)
#undef OP
    }
    double t = now() - t0;
    __m256 s = _mm256_setzero_ps();
#define SUM(i) s = _mm256_add_ps(s, c##i);
    R12(SUM)
#undef SUM
    sink = (int)_mm256_cvtss_f32(s);
    return t;
}
#endif

#if defined(__AVX512F__)
#define HAVE_FMA512 1
static double k_fma512(long n) {
    __m512 a = _mm512_set1_ps(1.0f + sink), b = _mm512_set1_ps(1e-7f);
#define DECL(i) __m512 c##i = _mm512_setzero_ps();
    R12(DECL)
#undef DECL
    double t0 = now();
    for (long i = 0; i < n; ++i) {
#define OP(i) __asm__("vfmadd231ps %2, %1, %0" : "+v"(c##i) : "v"(a), "v"(b));
        R12(OP)
#undef OP
    }
    double t = now() - t0;
    __m512 s = _mm512_setzero_ps();
#define SUM(i) s = _mm512_add_ps(s, c##i);
    R12(SUM)
#undef SUM
    sink = (int)_mm512_reduce_add_ps(s);
    return t;
}
#endif

typedef double (*kernel_fn)(long);

static void run(const char *name, kernel_fn fn, double ops_per_iter, long n, int runs) {
    fn(n / 10 + 1); /* warm-up: wakes the vector units and lets the clock settle */
    printf("%s %.0f", name, ops_per_iter);
    for (int r = 0; r < runs; ++r) printf(" %.9f", fn(n));
    printf("\n");
    fflush(stdout);
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 20000000L;
    int runs = argc > 2 ? atoi(argv[2]) : 5;
    if (n < 1 || runs < 1) return 2;
    /* ops per iteration: instructions x MACs per instruction x 2 */
#ifdef HAVE_VNNI512
    run("vnni512", k_vnni512, 12 * 64 * 2, n, runs);
#endif
#ifdef HAVE_AVXVNNI
    run("avxvnni", k_avxvnni, 12 * 32 * 2, n, runs);
#endif
#ifdef HAVE_AVX2
    run("avx2-madd16", k_madd16, 8 * 16 * 2, n, runs);
    run("avx2-maddubs", k_maddubs, 8 * 32 * 2, n, runs);
#endif
#ifdef HAVE_FMA512
    run("fma512", k_fma512, 12 * 16 * 2, n, runs);
#endif
#ifdef HAVE_FMA256
    run("fma256", k_fma256, 12 * 8 * 2, n, runs);
#endif
    clock_chain(n / 10 + 1);
    printf("clock 16"); /* twice the samples: the estimate scales every ops/cycle figure */
    for (int r = 0; r < 2 * runs; ++r) printf(" %.9f", clock_chain(n));
    printf("\n");
    return 0;
}
"""


@dataclass(frozen=True)
class KernelResult:
    """One kernel's throughput: best and median over the timed runs."""

    name: str
    kind: str  # "int8" or "fp32"
    description: str
    gops_best: float
    gops_median: float
    ops_per_cycle: float | None  # None when the clock estimate is unavailable


@dataclass(frozen=True)
class PeakResult:
    kernels: list[KernelResult]
    clock_ghz: float | None
    flags: str  # the relevant CPU feature flags, for the printout

    def best(self, kind: str = "int8", quads: bool = False) -> KernelResult | None:
        """The fastest exact kernel of ``kind``; the maddubs path counts only with ``quads``
        (weights within the pair rule, for which it is exact)."""
        exact = [k for k in self.kernels
                 if k.kind == kind and (quads or k.name != "avx2-maddubs")]
        return max(exact, key=lambda k: k.gops_best, default=None)

    def for_level(self, level: str) -> PeakResult:
        """Only the kernels a build for compile's ``--cpu`` level runs: ``avx2`` keeps the
        AVX2 ones (no VNNI, no 512-bit FMA), ``generic`` none; any other level all."""
        if level == "generic":
            return PeakResult([], self.clock_ghz, self.flags)
        if level == "avx2":
            keep = [k for k in self.kernels if k.name.startswith("avx2-") or k.name == "fma256"]
            return PeakResult(keep, self.clock_ghz, self.flags)
        return self

    def merged(self, other: PeakResult) -> PeakResult:
        """Each kernel's better measurement of the two: a peak is what the core can do, and
        a VM's core can run slower for minutes (another guest, a lower clock), so one
        measurement at the start of a long benchmark can be far below it."""
        theirs = {k.name: k for k in other.kernels}
        best = [max((k, theirs.get(k.name, k)), key=lambda r: r.gops_best)
                for k in self.kernels]
        clocks = [c for c in (self.clock_ghz, other.clock_ghz) if c is not None]
        return PeakResult(best, max(clocks, default=None), self.flags)


def build_program(folder: Path) -> Path:
    """Write and compile the C program into ``folder``; returns the executable."""
    src = folder / "int8_peak.c"
    exe = folder / "int8_peak"
    src.write_text(C_SOURCE)
    cmd = [*find_cc().split(), "-O3", "-march=native", str(src), "-o", str(exe)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"compiling the peak program failed: {' '.join(cmd)}\n{p.stderr}")
    return exe


def parse_output(text: str) -> dict[str, tuple[float, list[float]]]:
    """The program's lines as name -> (ops per iteration, seconds of each run); for the
    ``clock`` line the first figure is cycles per iteration instead of ops."""
    out: dict[str, tuple[float, list[float]]] = {}
    for line in text.split("\n"):
        parts = line.split()
        if len(parts) >= 3:
            out[parts[0]] = (float(parts[1]), [float(t) for t in parts[2:]])
    return out


def measure(iterations: int = DEFAULT_ITERATIONS, runs: int = DEFAULT_RUNS) -> PeakResult:
    """Compile and run the program; GOPS per kernel (best and median over ``runs``)."""
    flags = cpu_flags()
    shown = " ".join(sorted(f for f in flags if f.startswith(("avx", "fma")))) or "none"
    if not is_x86_64():
        return PeakResult([], None, f"{shown} (not x86-64: no kernels)")
    with tempfile.TemporaryDirectory(prefix="qnnc-peak-") as tmp:
        exe = build_program(Path(tmp))
        p = subprocess.run([str(exe), str(iterations), str(runs)], capture_output=True,
                           text=True, check=True)
    raw = parse_output(p.stdout)
    ghz = None
    if "clock" in raw:
        cycles_per_iter, times = raw.pop("clock")
        ghz = cycles_per_iter * iterations / min(times) / 1e9
    out = []
    for name, (ops, times) in raw.items():
        kind, desc = KERNELS.get(name, ("?", name))
        best = ops * iterations / min(times) / 1e9
        med = ops * iterations / statistics.median(times) / 1e9
        out.append(KernelResult(name, kind, desc, best, med, best / ghz if ghz else None))
    return PeakResult(out, ghz, shown)


def best_int8_gops(iterations: int = DEFAULT_ITERATIONS, runs: int = DEFAULT_RUNS) -> float | None:
    """The best exact INT8 GOPS this core reaches (None when no kernel applies)."""
    best = measure(iterations, runs).best("int8")
    return best.gops_best if best is not None else None


def report(res: PeakResult, iterations: int, runs: int) -> str:
    rows = [[k.name, k.kind, fmt(k.gops_best, 1), fmt(k.gops_median, 1),
             fmt(k.ops_per_cycle, 1), k.description] for k in res.kernels]
    lines = [machine_line(), f"CPU vector flags: {res.flags}",
             f"estimated core clock: {fmt(res.clock_ghz)} GHz (dependent add chain); "
             f"{iterations} iterations x {runs} runs per kernel, one thread",
             format_table(["kernel", "kind", "GOPS best", "GOPS median", "ops/cycle",
                           "instruction(s)"], rows)]
    for kind in ("int8", "fp32"):
        b = res.best(kind)
        lines.append(f"peak {kind}: " + (f"{b.gops_best:.1f} GOPS with {b.name} ({b.description})"
                                         if b else "n/a (no kernel for this CPU)"))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS,
                    help="loop iterations per timed run")
    ap.add_argument("--runs", type=int, default=DEFAULT_RUNS,
                    help="timed runs per kernel (best shown)")
    args = ap.parse_args(argv)
    res = measure(args.iterations, args.runs)
    print(report(res, args.iterations, args.runs))


if __name__ == "__main__":
    main()
