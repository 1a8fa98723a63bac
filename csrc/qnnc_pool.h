/* qnnc_pool.h - the parallel loops of a threaded build, where a late thread costs nothing.
 *
 * Generated code shares its loops out with `#pragma omp parallel for` (static schedule), which
 * GCC lowers to three calls: GOMP_parallel(fn, data, n, flags) runs fn(data) on a team of n,
 * and fn takes its block of iterations by omp_get_thread_num() and omp_get_num_threads().
 * libgomp's GOMP_parallel returns when every thread of the team has run fn, so a parallel
 * loop waits for the slowest thread to wake up: on a virtual machine a thread that slept
 * between two runs was seen to start up to 4 ms late (benchmarks/README.md, omp_wake), longer
 * than a whole run of a small model.
 *
 * This file defines those three functions for the model's own module (hidden: they bind
 * inside the module and leave libgomp, and any other module's OpenMP, alone). The n blocks of
 * a loop are items that any thread of the pool claims, one at a time, with a compare-and-swap
 * on one word holding the loop's number and the next item; the calling thread claims items
 * too, and when none is left it waits only for the items other threads have claimed (they
 * are running them). A thread that wakes too late for a loop finds every item taken and waits
 * for the next loop, so a loop takes at worst what it takes on the calling thread alone. Each
 * item runs with omp_get_thread_num() = its block number, so the values (and the per-thread
 * scratch each block uses, QNNC_THREAD_ID) are the same whichever thread runs a block.
 *
 * Between loops a worker spins for QNNC_SPIN_US microseconds (default 100; for ever with
 * OMP_WAIT_POLICY=ACTIVE), giving its core up now and then, and then sleeps on a futex: the
 * caller wakes it with the next loop, and goes on with the blocks meanwhile. Each worker is
 * kept on a CPU of the process other than the caller's (moved when the caller moves onto
 * its CPU; QNNC_POOL_PIN=0 leaves placement to the kernel): the kernel otherwise woke a
 * sleeping worker on the caller's own core, where it waited for the caller's block to end
 * (`python -m benchmarks.omp_wake --runtime pool`: a woken worker took its block 20-100 us
 * after the caller asked; unpinned, in a quarter of the runs and 365-700 us late). Workers
 * start on the first loop that asks for more than one thread and stay for the life of the
 * process (a forked child starts its own). A loop started while
 * another thread's loop is under way (two callers at once, or a loop inside a loop) runs on
 * its caller alone. Linux and GCC only (elsewhere, or with QNNC_LIBGOMP_LOOPS defined,
 * libgomp's own).
 */
#ifndef QNNC_POOL_H
#define QNNC_POOL_H
/* model.c alone includes this file (the functions are defined once per module) */
#if defined(_OPENMP) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(QNNC_LIBGOMP_LOOPS)

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define QNNC_POOL_MAX 64 /* threads of one loop at most (the build's count is far below) */
#define QNNC_POOL_CPUS 1024 /* CPUs the affinity masks cover */
#define QNNC_POOL_JOIN_SPIN 4000 /* checks of the items left before yielding the core */
#define QNNC_POOL_SPIN_US 100 /* default microseconds a waiting worker spins before it sleeps */
#define QNNC_POOL_YIELD_EVERY 256 /* a waiting worker yields its core once per so many checks */
#define QNNC_HIDDEN __attribute__((visibility("hidden")))
long syscall(long number, ...); /* unistd.h declares it only for _GNU_SOURCE or _DEFAULT_SOURCE */

typedef void (*qnnc_pool_fn)(void *);

static struct {
    _Atomic uint64_t state;        /* loop number << 32 | the next item to claim */
    _Atomic uint32_t loop;         /* the loop number alone: what sleeping threads wait on */
    _Atomic uint32_t sleepers;     /* threads in (or about to enter) the futex wait */
    _Atomic uint32_t done;         /* items of the current loop finished */
    _Atomic(qnnc_pool_fn) fn;      /* the current loop: its body, data and item count */
    _Atomic(void *) data;
    _Atomic uint32_t items;
    _Atomic int busy;              /* a caller's loop is under way */
    _Atomic int started;           /* workers started (or tried: -1 failed) */
    pthread_mutex_t start_lock;
    int workers;
    int pin;                       /* workers are kept off the caller's core (see below) */
    _Atomic int avoid;             /* the caller's CPU the workers are kept off */
    unsigned long allowed[QNNC_POOL_CPUS / (8 * sizeof(unsigned long))]; /* the process's CPUs */
    _Atomic int tid[QNNC_POOL_MAX]; /* each worker's kernel thread id (0 until it runs) */
    double spin;                   /* seconds of spinning before sleeping; < 0: never sleep */
} qnnc_pool = {.start_lock = PTHREAD_MUTEX_INITIALIZER};

static __thread int qnnc_pool_id = 0, qnnc_pool_n = 1;

QNNC_HIDDEN int omp_get_thread_num(void) { return qnnc_pool_id; }
QNNC_HIDDEN int omp_get_num_threads(void) { return qnnc_pool_n; }

static inline void qnnc_pool_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Run items of loop `loop` until none is left to claim. */
static void qnnc_pool_work(uint32_t loop) {
    for (;;) {
        uint64_t s = atomic_load_explicit(&qnnc_pool.state, memory_order_acquire);
        if ((uint32_t)(s >> 32) != loop) return;
        /* read before the claim: a successful claim proves the loop was still this one, so
           these were its values (the caller changes them only after every item is done) */
        qnnc_pool_fn fn = atomic_load_explicit(&qnnc_pool.fn, memory_order_relaxed);
        void *data = atomic_load_explicit(&qnnc_pool.data, memory_order_relaxed);
        const uint32_t items = atomic_load_explicit(&qnnc_pool.items, memory_order_relaxed);
        const uint32_t item = (uint32_t)s;
        if (item >= items) return;
        if (!atomic_compare_exchange_weak_explicit(&qnnc_pool.state, &s, s + 1,
                                                   memory_order_acq_rel, memory_order_acquire))
            continue;
        qnnc_pool_id = (int)item;
        qnnc_pool_n = (int)items;
        fn(data);
        qnnc_pool_id = 0;
        qnnc_pool_n = 1;
        atomic_fetch_add_explicit(&qnnc_pool.done, 1, memory_order_release);
    }
}

/* CPU affinity by raw system calls (glibc declares its wrappers only for _GNU_SOURCE) */
static int qnnc_pool_getcpu(void) {
    unsigned cpu = 0;
    return syscall(SYS_getcpu, &cpu, NULL, NULL) == 0 ? (int)cpu : -1;
}

/* Keep thread `tid` (0: this one) on the process's CPUs other than `cpu`. */
static void qnnc_pool_keep_off(int tid, int cpu) {
    unsigned long mask[QNNC_POOL_CPUS / (8 * sizeof(unsigned long))];
    const int w = (int)(8 * sizeof(unsigned long));
    memcpy(mask, qnnc_pool.allowed, sizeof mask);
    mask[cpu / w] &= ~(1UL << (cpu % w));
    syscall(SYS_sched_setaffinity, tid, sizeof mask, mask);
}

static void *qnnc_pool_worker(void *arg) {
    const int self = (int)(intptr_t)arg;
    const int tid = (int)syscall(SYS_gettid);
    atomic_store(&qnnc_pool.tid[self], tid); /* before reading where the caller is */
    if (qnnc_pool.pin) qnnc_pool_keep_off(0, atomic_load(&qnnc_pool.avoid));
    uint32_t seen = atomic_load_explicit(&qnnc_pool.loop, memory_order_acquire);
    for (;;) {
        uint32_t now;
        long k = 0;
        double until = 0.0;
        while ((now = atomic_load_explicit(&qnnc_pool.loop, memory_order_acquire)) == seen) {
            if ((++k & (QNNC_POOL_YIELD_EVERY - 1)) != 0) {
                qnnc_pool_pause();
                continue;
            }
            sched_yield(); /* the scheduler may have put a caller on this core */
            if (qnnc_pool.spin < 0) continue;
            const double t = omp_get_wtime();
            if (until == 0.0) until = t + qnnc_pool.spin;
            if (t < until) continue;
            atomic_fetch_add(&qnnc_pool.sleepers, 1);
            if (atomic_load(&qnnc_pool.loop) == seen)
                syscall(SYS_futex, &qnnc_pool.loop, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
            atomic_fetch_sub(&qnnc_pool.sleepers, 1);
            until = 0.0;
        }
        seen = now;
        qnnc_pool_work(now);
    }
    return NULL;
}

/* Seconds a waiting worker spins before it sleeps: QNNC_SPIN_US (default 100), or for ever
 * with OMP_WAIT_POLICY=ACTIVE (< 0). */
static double qnnc_pool_spin_seconds(void) {
    const char *policy = getenv("OMP_WAIT_POLICY"), *us = getenv("QNNC_SPIN_US");
    if (policy != NULL && (strcmp(policy, "ACTIVE") == 0 || strcmp(policy, "active") == 0))
        return -1.0;
    if (us != NULL) {
        char *end;
        const double v = strtod(us, &end);
        if (end != us && v >= 0) return 1e-6 * v;
    }
    return 1e-6 * QNNC_POOL_SPIN_US;
}

/* In the child of a fork: no worker came along, so the pool starts afresh (its first loop
 * that asks for threads starts the child's own workers). */
static void qnnc_pool_after_fork(void) {
    pthread_mutex_init(&qnnc_pool.start_lock, NULL);
    for (int i = 0; i < qnnc_pool.workers; ++i) atomic_store(&qnnc_pool.tid[i], 0);
    qnnc_pool.workers = 0;
    atomic_store(&qnnc_pool.sleepers, 0);
    atomic_store(&qnnc_pool.busy, 0);
    atomic_store(&qnnc_pool.started, 0);
}

/* Start `want` workers once; 1 when there are some. */
static int qnnc_pool_start(int want) {
    int s = atomic_load_explicit(&qnnc_pool.started, memory_order_acquire);
    if (s != 0) return s > 0;
    pthread_mutex_lock(&qnnc_pool.start_lock);
    if (atomic_load(&qnnc_pool.started) == 0) {
        static int forks_seen = 0; /* kept in a forked child: one handler per process */
        if (!forks_seen) forks_seen = pthread_atfork(NULL, NULL, qnnc_pool_after_fork) == 0;
        qnnc_pool.spin = qnnc_pool_spin_seconds();
        const char *pin = getenv("QNNC_POOL_PIN");
        const int here = qnnc_pool_getcpu(), w = (int)(8 * sizeof(unsigned long));
        int cpus = 0;
        if ((pin == NULL || pin[0] != '0') && here >= 0 && here < QNNC_POOL_CPUS &&
            syscall(SYS_sched_getaffinity, 0, sizeof qnnc_pool.allowed, qnnc_pool.allowed) > 0)
            for (int c = 0; c < QNNC_POOL_CPUS; ++c)
                cpus += (int)((qnnc_pool.allowed[c / w] >> (c % w)) & 1UL);
        qnnc_pool.pin = cpus > 1 && ((qnnc_pool.allowed[here / w] >> (here % w)) & 1UL);
        qnnc_pool.avoid = here;
        for (int i = 0; i < want; ++i) {
            pthread_t t;
            pthread_attr_t attr;
            pthread_attr_init(&attr);
            pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
            const int failed = pthread_create(&t, &attr, qnnc_pool_worker, (void *)(intptr_t)i);
            pthread_attr_destroy(&attr);
            if (failed) break;
            ++qnnc_pool.workers;
        }
        atomic_store(&qnnc_pool.started, qnnc_pool.workers > 0 ? 1 : -1);
    }
    pthread_mutex_unlock(&qnnc_pool.start_lock);
    return atomic_load(&qnnc_pool.started) > 0;
}

static void qnnc_pool_alone(qnnc_pool_fn fn, void *data) {
    const int id = qnnc_pool_id, n = qnnc_pool_n;
    qnnc_pool_id = 0;
    qnnc_pool_n = 1;
    fn(data);
    qnnc_pool_id = id;
    qnnc_pool_n = n;
}

QNNC_HIDDEN void GOMP_parallel(qnnc_pool_fn fn, void *data, unsigned n, unsigned flags) {
    (void)flags;
    int expected = 0;
    const int team = (int)(n < QNNC_POOL_MAX ? n : QNNC_POOL_MAX);
    if (n <= 1 || qnnc_pool_n > 1 || !qnnc_pool_start(team - 1) ||
        !atomic_compare_exchange_strong(&qnnc_pool.busy, &expected, 1)) {
        qnnc_pool_alone(fn, data);
        return;
    }
    if (n > QNNC_POOL_MAX) n = QNNC_POOL_MAX;
    if (qnnc_pool.pin) { /* the caller has moved: keep the workers off its new CPU */
        const int here = qnnc_pool_getcpu();
        if (here != atomic_load_explicit(&qnnc_pool.avoid, memory_order_relaxed) && here >= 0 &&
            here < QNNC_POOL_CPUS) {
            atomic_store(&qnnc_pool.avoid, here);
            for (int i = 0; i < qnnc_pool.workers; ++i) {
                const int tid = atomic_load(&qnnc_pool.tid[i]);
                if (tid != 0) qnnc_pool_keep_off(tid, here);
            }
        }
    }
    const uint32_t loop = atomic_load_explicit(&qnnc_pool.loop, memory_order_relaxed) + 1;
    atomic_store_explicit(&qnnc_pool.fn, fn, memory_order_relaxed);
    atomic_store_explicit(&qnnc_pool.data, data, memory_order_relaxed);
    atomic_store_explicit(&qnnc_pool.items, n, memory_order_relaxed);
    atomic_store_explicit(&qnnc_pool.done, 0, memory_order_relaxed);
    atomic_store_explicit(&qnnc_pool.state, (uint64_t)loop << 32, memory_order_release);
    atomic_store(&qnnc_pool.loop, loop);
    if (atomic_load(&qnnc_pool.sleepers) > 0)
        syscall(SYS_futex, &qnnc_pool.loop, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
    qnnc_pool_work(loop);
    /* every item is claimed; the ones still running belong to threads that are awake, or
       that the scheduler put on this thread's core: after a short spin, give the core up */
    for (long k = 0; atomic_load_explicit(&qnnc_pool.done, memory_order_acquire) < n; ++k) {
        if (k < QNNC_POOL_JOIN_SPIN) qnnc_pool_pause();
        else sched_yield();
    }
    atomic_store_explicit(&qnnc_pool.busy, 0, memory_order_release);
}

#endif
#endif
