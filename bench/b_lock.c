/* lock_uncontended: acquire+release pairs in one process (ns/pair).
   lock_contended_2p: 2 processes each increment a shared counter 1,000,000 times under
   one lock (ns/increment). mp.h beside process-shared pthread mutexes, robust and not,
   all living in the same shared heap. */
#define _GNU_SOURCE
#include "../mp.h"
#include "bench.h"
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

enum { PAIRS = 10000000, INCS = 1000000 };

/* The contended lock is two-party: the parent is party 0, its child party 1 (bench.h). */
BENCH_TWO_PARTY("lock_contended_2p")

typedef struct {
    int (*acquire)(void *);
    int (*release)(void *);
    void *lock;
    volatile uint64_t *counter;
} b_lockops;

static int b_mp_acq(void *l) { return mp_lock_acquire((mp_lock *)l, MP_FOREVER); }
static int b_mp_rel(void *l) { return mp_lock_release((mp_lock *)l); }

static int b_pt_acq(void *l) {
    int rc = pthread_mutex_lock((pthread_mutex_t *)l);
    if (rc == EOWNERDEAD) rc = pthread_mutex_consistent((pthread_mutex_t *)l);
    return rc;
}
static int b_pt_rel(void *l) { return pthread_mutex_unlock((pthread_mutex_t *)l); }

static pthread_mutex_t *b_pt_create(bool robust) {
    pthread_mutex_t *m = (pthread_mutex_t *)mp_alloc(sizeof *m);
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (robust) pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    return m;
}

static double b_uncontended(int (*acq)(void *), int (*rel)(void *), void *l) {
    for (int i = 0; i < PAIRS / 10; i++) acq(l), rel(l); /* warm up */
    double t0 = b_now();
    for (int i = 0; i < PAIRS; i++) {
        acq(l);
        rel(l);
    }
    return (b_now() - t0) / PAIRS * 1e9;
}

BENCH(lock_unc_mp, "lock_uncontended", "mp.h", "ns", -1) {
    mp_lock *l = mp_lock_create();
    double r = b_uncontended(b_mp_acq, b_mp_rel, l);
    mp_lock_destroy(l);
    return r;
}

BENCH(lock_unc_robust, "lock_uncontended", "robust pthread mutex", "ns", -1) {
    pthread_mutex_t *m = b_pt_create(true);
    double r = b_uncontended(b_pt_acq, b_pt_rel, m);
    pthread_mutex_destroy(m);
    mp_free(m);
    return r;
}

BENCH(lock_unc_plain, "lock_uncontended", "pthread mutex (not robust)", "ns", -1) {
    pthread_mutex_t *m = b_pt_create(false);
    double r = b_uncontended(b_pt_acq, b_pt_rel, m);
    pthread_mutex_destroy(m);
    mp_free(m);
    return r;
}

static void b_increment(const b_lockops *o) {
    for (int i = 0; i < INCS; i++) {
        o->acquire(o->lock);
        *o->counter += 1;
        o->release(o->lock);
    }
}

/* Both processes start together (a spin on a shared flag), then each does INCS. */
static double b_contended(b_lockops *o) {
    volatile uint32_t *go = (volatile uint32_t *)mp_calloc(1, 64);
    *o->counter = 0;
    fflush(NULL);
    b_party(0);
    pid_t pid = b_fork_party(1);
    if (pid == 0) {
        __atomic_fetch_add(go, 1, __ATOMIC_SEQ_CST);
        while (__atomic_load_n(go, __ATOMIC_ACQUIRE) < 2) {}
        b_increment(o);
        _exit(0);
    }
    while (__atomic_load_n(go, __ATOMIC_ACQUIRE) < 1) {}
    double t0 = b_now();
    __atomic_fetch_add(go, 1, __ATOMIC_SEQ_CST);
    b_increment(o);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    double dt = b_now() - t0;
    bool ok = *o->counter == 2 * (uint64_t)INCS;
    mp_free((void *)go);
    return ok ? dt / (2.0 * INCS) * 1e9 : b_skip("counter mismatch: the lock failed");
}

BENCH(lock_con_mp, "lock_contended_2p", "mp.h", "ns", -1) {
    mp_lock *l = mp_lock_create();
    b_lockops o = {b_mp_acq, b_mp_rel, l, (volatile uint64_t *)mp_calloc(1, 64)};
    double r = b_contended(&o);
    mp_free((void *)o.counter);
    mp_lock_destroy(l);
    return r;
}

static double b_contended_pt(bool robust) {
    pthread_mutex_t *m = b_pt_create(robust);
    b_lockops o = {b_pt_acq, b_pt_rel, m, (volatile uint64_t *)mp_calloc(1, 64)};
    double r = b_contended(&o);
    mp_free((void *)o.counter);
    pthread_mutex_destroy(m);
    mp_free(m);
    return r;
}

BENCH(lock_con_robust, "lock_contended_2p", "robust pthread mutex", "ns", -1) {
    return b_contended_pt(true);
}

BENCH(lock_con_plain, "lock_contended_2p", "pthread mutex (not robust)", "ns", -1) {
    return b_contended_pt(false);
}
