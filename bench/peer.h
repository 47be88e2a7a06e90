/* Small helpers for the C and C++ peers (Boost, ZeroMQ, the limits): shared memory,
   forking a worker, and a start gate so the clock starts when every worker is set up
   and stops when the last one is done. C and C++; everything static. */
#ifndef MP_BENCH_PEER_H
#define MP_BENCH_PEER_H
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "bench.h"

#if defined(__x86_64__) || defined(__i386__)
#define PB_PAUSE() __asm__ __volatile__("pause")
#else
#define PB_PAUSE() __asm__ __volatile__("" ::: "memory")
#endif

enum { PB_MAXW = 8 };

/* In shared memory: workers count themselves ready, wait for go, and each stamps the
   time it finished its part. */
typedef struct {
    int ready, go;
    double t0, t_end[PB_MAXW];
} pb_gate;

static inline void *pb_shared(size_t n) {
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Spin with a pause; past a while, yield, so an oversubscribed machine still moves. */
static inline void pb_spin(unsigned *spins) {
    if (++*spins < 2000) PB_PAUSE();
    else sched_yield();
}

static inline void pb_gate_wait(pb_gate *g) {
    unsigned spins = 0;
    __atomic_fetch_add(&g->ready, 1, __ATOMIC_ACQ_REL);
    while (!__atomic_load_n(&g->go, __ATOMIC_ACQUIRE)) pb_spin(&spins);
}

/* Parent: waits for n workers, then starts the clock and lets them go. */
static inline void pb_gate_open(pb_gate *g, int n) {
    unsigned spins = 0;
    while (__atomic_load_n(&g->ready, __ATOMIC_ACQUIRE) < n) pb_spin(&spins);
    g->t0 = b_now();
    __atomic_store_n(&g->go, 1, __ATOMIC_RELEASE);
}

static inline void pb_gate_done(pb_gate *g, int worker) { g->t_end[worker] = b_now(); }

/* Seconds from the opening of the gate to the last of n workers done. */
static inline double pb_gate_elapsed(const pb_gate *g, int n) {
    double end = g->t0;
    for (int i = 0; i < n; i++)
        if (g->t_end[i] > end) end = g->t_end[i];
    return end - g->t0;
}

/* Forks a worker, party i of the run (pinned where the run's placement puts it: see
   bench.h), that runs fn(arg, i) and exits with its return value. */
static inline pid_t pb_fork(int (*fn)(void *, int), void *arg, int i) {
    pid_t pid = b_fork_party(i);
    if (pid == 0) _exit(fn(arg, i) & 0xff);
    return pid;
}

/* Waits for the workers; true when all exited 0. */
static inline bool pb_join(const pid_t *pids, int n) {
    bool ok = true;
    for (int i = 0; i < n; i++) {
        int st = 0;
        if (pids[i] <= 0 || waitpid(pids[i], &st, 0) != pids[i] || !WIFEXITED(st) ||
            WEXITSTATUS(st) != 0)
            ok = false;
    }
    return ok;
}
#endif
