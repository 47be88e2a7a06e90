/* The hardware-ish limits of BENCHMARKS.md: what the same work costs with no kernel
   and no blocking at all, to show how far from the machine each system is. They spin
   (a pause, then sched_yield when a wait drags on), so they are not usable queues:
   a waiting side burns its core. Reported as "(limit)", not as peers. */
#define _GNU_SOURCE
#include "bench.h"
#include "peer.h"
#include <stdalign.h>

/* ---- a single-producer single-consumer ring, spinning ---------------------------- */

typedef struct {
    pb_gate gate;
    alignas(64) uint64_t head; /* written by the producer */
    alignas(64) uint64_t tail; /* written by the consumer */
    alignas(64) uint64_t cap, size, n;
    char slots[]; /* cap * size bytes */
} ring;

static int ring_producer(void *arg, int who) {
    ring *r = (ring *)arg;
    char *msg = (char *)malloc(r->size);
    uint64_t tail = 0;
    unsigned spins = 0;
    memset(msg, 'x', r->size);
    pb_gate_wait(&r->gate);
    for (uint64_t i = 0; i < r->n; i++) {
        spins = 0;
        while (i - tail == r->cap) { /* full by the cached tail: look again */
            tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
            if (i - tail == r->cap) pb_spin(&spins);
        }
        memcpy(msg, &i, sizeof i);
        memcpy(r->slots + (i % r->cap) * r->size, msg, r->size);
        __atomic_store_n(&r->head, i + 1, __ATOMIC_RELEASE);
    }
    pb_gate_done(&r->gate, who);
    free(msg);
    return 0;
}

static int ring_consumer(void *arg, int who) {
    ring *r = (ring *)arg;
    char *msg = (char *)malloc(r->size);
    uint64_t head = 0, seq, bad = 0;
    unsigned spins = 0;
    pb_gate_wait(&r->gate);
    for (uint64_t i = 0; i < r->n; i++) {
        spins = 0;
        while (i == head) {
            head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
            if (i == head) pb_spin(&spins);
        }
        memcpy(msg, r->slots + (i % r->cap) * r->size, r->size);
        __atomic_store_n(&r->tail, i + 1, __ATOMIC_RELEASE);
        memcpy(&seq, msg, sizeof seq);
        bad += seq != i;
    }
    pb_gate_done(&r->gate, who);
    free(msg);
    return bad != 0;
}

/* Seconds for n messages of size bytes through a ring of cap slots; < 0 on failure. */
static double ring_run(uint64_t cap, uint64_t size, uint64_t n) {
    size_t bytes = sizeof(ring) + cap * size;
    ring *r = (ring *)pb_shared(bytes);
    if (!r) return -1;
    r->cap = cap, r->size = size, r->n = n;
    pid_t pids[2] = {pb_fork(ring_producer, r, 0), pb_fork(ring_consumer, r, 1)};
    pb_gate_open(&r->gate, 2);
    bool ok = pb_join(pids, 2);
    double dt = pb_gate_elapsed(&r->gate, 2);
    munmap(r, bytes);
    return ok ? dt : -1;
}

BENCH(limit_ring_64, "queue_1p1c_64B", "spinning ring (limit)", "msg/s", +1) {
    enum { N = 1000000 };
    double dt = ring_run(1024, 64, N);
    b_note("SPSC ring of 1024 x 64 B in shared memory, both sides spinning, no syscalls");
    return dt < 0 ? b_fail("ring lost or reordered messages") : N / dt;
}

BENCH(limit_ring_1mib, "queue_1MiB", "spinning ring (limit)", "GB/s", +1) {
    enum { N = 2000 };
    double dt = ring_run(8, 1 << 20, N);
    b_note("SPSC ring of 8 x 1 MiB, spinning: one copy in, one copy out; GB = 1e9 bytes");
    return dt < 0 ? b_fail("ring lost or reordered messages") : N * (double)(1 << 20) / dt / 1e9;
}

/* ---- two processes bouncing 64 bytes through one shared line ----------------------- */

typedef struct {
    pb_gate gate;
    alignas(64) uint64_t seq; /* odd: the ball is with the child; even: the parent */
    char msg[64];
} court;

#define COURT_STOP UINT64_MAX

static int court_child(void *arg, int who) {
    court *c = (court *)arg;
    char buf[64];
    unsigned spins;
    uint64_t seq;
    (void)who;
    pb_gate_wait(&c->gate);
    for (uint64_t i = 0;; i++) {
        spins = 0;
        while ((seq = __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE)) != 2 * i + 1 && seq != COURT_STOP)
            pb_spin(&spins);
        if (seq == COURT_STOP) return 0;
        memcpy(buf, c->msg, sizeof buf);
        memcpy(c->msg, buf, sizeof buf);
        __atomic_store_n(&c->seq, 2 * i + 2, __ATOMIC_RELEASE);
    }
}

BENCH(limit_pingpong, "pingpong_64B", "spinning cache line (limit)", "us", -1) {
    enum { N = 100000 };
    court *c = (court *)pb_shared(sizeof *c);
    char buf[64] = "ping";
    unsigned spins = 0;
    if (!c) return b_fail("mmap");
    b_party(0);
    pid_t pid = pb_fork(court_child, c, 1);
    pb_gate_open(&c->gate, 1);
    double t0 = b_now();
    uint64_t i;
    /* At most 2 s: spinning on an oversubscribed machine can take 100 times longer. */
    for (i = 0; i < N && (i % 1024 || b_now() - t0 < 2); i++) {
        memcpy(c->msg, buf, sizeof buf);
        __atomic_store_n(&c->seq, 2 * i + 1, __ATOMIC_RELEASE);
        spins = 0;
        while (__atomic_load_n(&c->seq, __ATOMIC_ACQUIRE) != 2 * i + 2) pb_spin(&spins);
        memcpy(buf, c->msg, sizeof buf);
    }
    double dt = b_now() - t0;
    __atomic_store_n(&c->seq, COURT_STOP, __ATOMIC_RELEASE);
    bool ok = pb_join(&pid, 1);
    munmap(c, sizeof *c);
    if (i < N) b_note("64 bytes and a sequence word in shared memory, both sides spinning; "
                      "stopped at 2 s after %lu round trips", (unsigned long)i);
    else b_note("64 bytes and a sequence word in shared memory, both sides spinning");
    return ok ? dt / (double)i * 1e6 : b_fail("child failed");
}

/* ---- one uncontended lock: a compare-and-swap and a store ----------------------------- */

BENCH(limit_lock, "lock_uncontended", "atomic CAS pair (limit)", "ns", -1) {
    enum { N = 10000000 };
    uint32_t *w = (uint32_t *)pb_shared(4096);
    if (!w) return b_fail("mmap");
    double t0 = b_now();
    for (int i = 0; i < N; i++) {
        uint32_t z = 0;
        if (!__atomic_compare_exchange_n(w, &z, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            return b_fail("word taken");
        __atomic_store_n(w, 0, __ATOMIC_RELEASE);
    }
    double dt = b_now() - t0;
    munmap(w, 4096);
    b_note("CAS 0->1 (acquire) and store 0 (release) on a shared word; no owner, not robust");
    return dt / N * 1e9;
}
