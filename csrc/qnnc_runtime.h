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
/* kernels a layer calls with constant arguments, inlined even in the functions gcc outlines
   for OpenMP loops, where it otherwise keeps them out of line (ShuffleNet's depthwise taps
   and adds: 2.45 ms in a one-thread build, 2.70 in a two-thread build run on one thread) */
#define QNNC_HOT static inline __attribute__((always_inline))
#else
#define QNNC_ALIGNED(n)
#define QNNC_RESTRICT
#define QNNC_UNUSED
#define QNNC_NOINLINE
#define QNNC_HOT static inline
#endif

#define QNNC_PRAGMA(x) _Pragma(#x)
#ifdef _OPENMP
#include <omp.h>
#define QNNC_OMP_FOR(clauses) QNNC_PRAGMA(omp parallel for clauses)
/* which of a parallel loop's threads runs this iteration: its slice of a layer's scratch */
#define QNNC_THREAD_ID() omp_get_thread_num()
#include <stdlib.h>

/* The team a multi-threaded build runs with, chosen per run by measured time: its full
 * thread count, or one thread when that has been faster lately. Fork and join cost tens of
 * microseconds per parallel loop where sleeping threads must be woken (a virtual machine),
 * and a thread that shares its core with other work stalls every loop it is part of; in
 * both cases one thread can beat two, and only the clock knows. Run 0 uses the full team
 * and is not counted (cold caches); runs 1 to QNNC_TEAM_TRIALS alternate one thread and the
 * full team, and each team's fastest of them is its first estimate (a single slow run, say
 * the first wake-up of the threads, must not decide). After that each run takes the team
 * with the lower moving average of its run times, in which a run counts as at most twice
 * the average (one stall must not turn the choice). Now and then the other team is probed
 * for QNNC_TEAM_PROBE runs, whose fastest replaces that team's average (so a change of load
 * is seen at once): 16 runs after the trials or a change of choice, then twice as far apart
 * each time the choice stands, up to 256 runs.
 *
 * The full team collapses when one of its runs takes over QNNC_TEAM_GIVE_UP times one
 * thread's estimate: with one core busy elsewhere its run can take a hundred times as long
 * (every parallel loop waits for a thread that waits for the core), while its other runs
 * may be as fast as ever. Such a run counts in full, a probe with one counts at the mean of
 * its runs, the trials end once both of its trial runs so far took that long,
 * and the next probe waits until the collapsed runs are at most 1/QNNC_TEAM_PROBE_SHARE of
 * the time since (thousands of runs): a change of load is then seen that much later, for a
 * bounded cost. A collapse is also cut short while it runs: qnnc_team_watch, called after
 * each layer with a parallel loop, gives the rest of a full-team run one thread once the run
 * has taken QNNC_TEAM_GIVE_UP times one thread's estimate (such a run still counts as
 * collapsed, at the time it took). QNNC_ADAPTIVE_THREADS=0 in the environment keeps the full
 * team. Results do not depend on the team, not even on a change of it within a run: every
 * parallel loop computes the same values per iteration whichever thread runs it. */
#ifndef QNNC_TEAM_CLOCK
#define QNNC_TEAM_CLOCK() omp_get_wtime() /* seconds; a test may define its own clock */
#endif
#define QNNC_TEAM_TRIALS 6
#define QNNC_TEAM_PROBE 2
#define QNNC_TEAM_GIVE_UP 8.0
#define QNNC_TEAM_PROBE_SHARE 64

typedef struct {
    int full, fixed;            /* the build's thread count; 1: always the full team */
    int current;                /* this run: 0 the full team, 1 one thread */
    int probe_left, probe_from; /* runs left of the probe under way; the choice before it */
    int runs, next_probe, interval;
    int trials;                 /* the last trial run (QNNC_TEAM_TRIALS unless cut short) */
    int collapsed;              /* a run of the probe under way collapsed */
    double seconds[2];          /* moving averages: [0] the full team, [1] one thread */
    double spent;               /* seconds of the trials or the probe under way */
    double cut_at;              /* the clock past which this run goes on with one thread */
} qnnc_team_t;

#define QNNC_TEAM_NEVER 1e300
#define QNNC_TEAM_INIT(threads, fixed) \
    {(threads), (fixed), 0, 0, 0, 0, QNNC_TEAM_TRIALS + 17, 16, QNNC_TEAM_TRIALS, 0, \
     {0.0, 0.0}, 0.0, QNNC_TEAM_NEVER}

static inline double qnnc_team_begin(qnnc_team_t *t, int *team) {
    if (t->runs == 0) {
        const char *e = getenv("QNNC_ADAPTIVE_THREADS");
        t->fixed = t->fixed || (e != NULL && e[0] == '0');
    }
    const int best = t->seconds[1] < t->seconds[0];
    if (t->fixed || t->runs == 0) {
        t->current = 0;
    } else if (t->runs <= t->trials) {
        t->current = t->runs & 1;  /* odd runs one thread, even runs the full team */
    } else {
        if (t->probe_left == 0 && t->runs >= t->next_probe) {
            t->probe_left = QNNC_TEAM_PROBE;
            t->probe_from = best;
        }
        t->current = t->probe_left ? !t->probe_from : best;
    }
    *team = t->current ? 1 : t->full;
    const double start = QNNC_TEAM_CLOCK();
    t->cut_at = t->current == 0 && !t->fixed && t->seconds[1] > 0
                    ? start + QNNC_TEAM_GIVE_UP * t->seconds[1] : QNNC_TEAM_NEVER;
    return start;
}

/* After a layer of a full-team run: one thread for the rest of the run once it has taken
 * QNNC_TEAM_GIVE_UP times one thread's estimate (a collapse under way). */
static inline void qnnc_team_watch(const qnnc_team_t *t, int *team) {
    if (QNNC_TEAM_CLOCK() > t->cut_at) *team = 1;
}

/* No probe before collapsed runs of `spent` seconds are 1/QNNC_TEAM_PROBE_SHARE of the time
 * the chosen team's runs (`avg` each) take until then. */
static inline void qnnc_team_defer(qnnc_team_t *t, double spent, double avg) {
    if (avg <= 0) return;
    const double gap = QNNC_TEAM_PROBE_SHARE * spent / avg;
    const double room = (double)((1 << 30) - t->runs) - 2.0;
    const int at = t->runs + 1 + (int)(gap < room ? gap : room);
    if (at > t->next_probe) t->next_probe = at;
}

static inline void qnnc_team_end(qnnc_team_t *t, double start) {
    const double dt = QNNC_TEAM_CLOCK() - start;
    double *avg = &t->seconds[t->current];
    const double other = t->seconds[!t->current];
    /* only the full team collapses: one thread has no loops to wait in */
    const int collapsed = t->current == 0 && other > 0 && dt > QNNC_TEAM_GIVE_UP * other;
    if (t->runs > 0 && !t->fixed) {
        if (t->runs <= t->trials) {
            *avg = *avg <= 0 || dt < *avg ? dt : *avg;
            t->spent += dt;
            if (t->current == 0 && t->runs >= 4 && *avg > QNNC_TEAM_GIVE_UP * other) {
                t->trials = t->runs;  /* both of the full team's trials so far collapsed */
                qnnc_team_defer(t, t->spent, other);
            }
            if (t->runs == t->trials) t->spent = 0.0;
        } else if (t->probe_left) {
            t->spent += dt;
            t->collapsed |= collapsed;
            const int first = t->probe_left == QNNC_TEAM_PROBE;
            *avg = first ? dt
                 : t->collapsed ? t->spent / (QNNC_TEAM_PROBE - t->probe_left + 1)
                 : dt < *avg ? dt : *avg;
            if (--t->probe_left == 0) {
                const int stands = (t->seconds[1] < t->seconds[0]) == t->probe_from;
                t->interval = stands ? (t->interval < 256 ? 2 * t->interval : 256) : 16;
                t->next_probe = t->runs + 1 + t->interval;
                if (t->collapsed) qnnc_team_defer(t, t->spent, other);
                t->spent = 0.0;
                t->collapsed = 0;
            }
        } else { /* a run over twice the average counts as twice it: one stall (a thread
                    descheduled, a virtual CPU woken) must not turn the choice, a lasting
                    slow-down still doubles the average within a few runs; a collapse
                    counts in full */
            *avg = 0.75 * *avg + 0.25 * (dt < 2.0 * *avg || collapsed ? dt : 2.0 * *avg);
            if (collapsed) qnnc_team_defer(t, dt, other);
        }
    }
    if (t->runs < 1 << 30) ++t->runs;
}
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
