/* qnnc_runtime.h - the tiny runtime every generated model.c includes.
 *
 * Nothing here allocates: generated code uses one static arena planned at compile time.
 * Portable C99 with optional OpenMP; the SIMD paths live in the kernel headers. */
#ifndef QNNC_RUNTIME_H
#define QNNC_RUNTIME_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define QNNC_ALIGNED(n) __attribute__((aligned(n)))
#define QNNC_RESTRICT __restrict__
#define QNNC_UNUSED __attribute__((unused))
/* layer functions stay out of qnnc_run: inlining thousands of them into one function made
   gcc's optimiser super-linear (a 1,000-layer chain: 15 s instead of 1 s at -O3) */
#define QNNC_NOINLINE __attribute__((noinline))
#else
#define QNNC_ALIGNED(n)
#define QNNC_RESTRICT
#define QNNC_UNUSED
#define QNNC_NOINLINE
#endif

#define QNNC_PRAGMA(x) _Pragma(#x)
#ifdef _OPENMP
#include <omp.h>
#define QNNC_OMP_FOR(clauses) QNNC_PRAGMA(omp parallel for clauses)
/* which of a parallel loop's threads runs this iteration: its slice of a layer's scratch */
#define QNNC_THREAD_ID() omp_get_thread_num()
#else
#define QNNC_OMP_FOR(clauses)
#define QNNC_THREAD_ID() 0
#endif

/* Element types of qnnc_tensor_info.dtype (same spelling as the IR and numpy). */
enum qnnc_dtype {
    QNNC_F32 = 0, QNNC_F64, QNNC_I8, QNNC_I16, QNNC_I32, QNNC_I64,
    QNNC_U8, QNNC_U16, QNNC_U32, QNNC_U64, QNNC_BOOL
};

#define QNNC_MAX_RANK 8

typedef struct {
    const char *name;     /* the model's tensor name (non-printable characters replaced) */
    int dtype;            /* enum qnnc_dtype */
    int rank;
    int64_t shape[QNNC_MAX_RANK];
    size_t nbytes;
} qnnc_tensor_info;

typedef struct {
    const char *model_name;
    int num_inputs;
    int num_outputs;
    const qnnc_tensor_info *inputs;
    const qnnc_tensor_info *outputs;
    size_t arena_bytes;
    size_t weight_bytes;
} qnnc_model_info_t;

static inline float qnnc_maxf(float a, float b) { return (a != a || a > b) ? a : b; }
static inline float qnnc_minf(float a, float b) { return (a != a || a < b) ? a : b; }
static inline double qnnc_max(double a, double b) { return (a != a || a > b) ? a : b; }
static inline double qnnc_min(double a, double b) { return (a != a || a < b) ? a : b; }

#endif /* QNNC_RUNTIME_H */
