/* named_queue_1p1c_64B: queue_1p1c_64B between two separately exec'd programs attached
   to one named heap, beside the same work in a family (forked children, the ordinary
   heap) and Boost.Interprocess's message_queue (b_boost.cpp; itself a queue between
   unrelated processes). The exec'd side is this very binary: a constructor sees
   MPBENCH_NAMED_PEER=role:heap:n in its environment, plays the role and exits before
   main, so nothing else is needed on the PATH. Two-party (bench.h): the consumer is
   party 0, the producer party 1, pinned before the exec (the affinity survives it). */
#define _GNU_SOURCE
#include "../mp.h"
#include "bench.h"
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { NB_MSG = 64, NB_N = 1000000, NB_BOUND = 1024 };

BENCH_TWO_PARTY("named_queue_1p1c_64B")
#define NB_STOP UINT64_MAX

typedef struct { /* registered as "sync" beside the queue "q" */
    uint32_t ready, go;
    double t0, t_end;
    uint64_t count, sum;
} nb_sync;

static void nb_start(nb_sync *s) {
    __atomic_fetch_add(&s->ready, 1, __ATOMIC_SEQ_CST);
    while (!__atomic_load_n(&s->go, __ATOMIC_ACQUIRE)) sched_yield();
}

/* The producer or the consumer of one run, on the queue and sync found by name. */
static int nb_role(const char *role, uint64_t n) {
    mp_queue *q = (mp_queue *)mp_name_get("q");
    nb_sync *s = (nb_sync *)mp_name_get("sync");
    char m[NB_MSG] = {0};
    size_t len;
    if (!q || !s) return 3;
    nb_start(s);
    if (role[0] == 'p') {
        for (uint64_t i = 0; i <= n; i++) {
            uint64_t v = i < n ? i : NB_STOP;
            memcpy(m, &v, sizeof v);
            if (mp_queue_put(q, m, sizeof m, MP_FOREVER) != MP_OK) return 4;
        }
        return 0;
    }
    uint64_t count = 0, sum = 0, v;
    for (;;) {
        if (mp_queue_get(q, m, sizeof m, &len, MP_FOREVER) != MP_OK || len != NB_MSG) return 5;
        memcpy(&v, m, sizeof v);
        if (v == NB_STOP) break;
        count++, sum += v;
    }
    s->t_end = b_now();
    s->count = count, s->sum = sum;
    return 0;
}

__attribute__((constructor)) static void nb_peer_main(void) {
    const char *spec = getenv("MPBENCH_NAMED_PEER");
    char role[16], heap[128];
    unsigned long long n;
    if (!spec) return;
    if (sscanf(spec, "%15[^:]:%127[^:]:%llu", role, heap, &n) != 3) _exit(2);
    mp_config c = {.name = heap};
    _exit(mp_init(&c) == MP_OK ? nb_role(role, (uint64_t)n) : 6);
}

/* Start one side, party k: exec'd on the named heap, or forked in the family. */
static pid_t nb_spawn(const char *role, const char *heap, bool exec, int k) {
    char spec[192];
    snprintf(spec, sizeof spec, "%s:%s:%d", role, heap ? heap : "", NB_N);
    fflush(NULL);
    pid_t pid = b_fork_party(k);
    if (pid != 0) return pid;
    if (!exec) _exit(nb_role(role, NB_N));
    setenv("MPBENCH_NAMED_PEER", spec, 1);
    execl("/proc/self/exe", "mpbench", (char *)NULL);
    _exit(127);
}

static double nb_run(bool named) {
    char heap[64];
    snprintf(heap, sizeof heap, "/mpbench-named-%d", (int)getpid());
    mp_config c = {.name = heap};
    if (mp_init(named ? &c : NULL) != MP_OK) return b_fail("mp_init");
    mp_queue_desc d = {.maxsize = NB_BOUND};
    mp_queue *q = mp_queue_create(&d);
    nb_sync *s = (nb_sync *)mp_calloc(1, sizeof *s);
    if (!q || !s || mp_name_set("q", q) || mp_name_set("sync", s)) return b_fail("setup");
    pid_t p[2] = {nb_spawn("consume", heap, named, 0), nb_spawn("produce", heap, named, 1)};
    while (__atomic_load_n(&s->ready, __ATOMIC_ACQUIRE) < 2) sched_yield();
    s->t0 = b_now();
    __atomic_store_n(&s->go, 1, __ATOMIC_RELEASE);
    bool ok = true;
    for (int i = 0; i < 2; i++) {
        int st;
        while (waitpid(p[i], &st, 0) < 0 && errno == EINTR) {}
        ok = ok && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    if (named) mp_heap_unlink(heap);
    if (!ok) return b_fail("a side failed");
    if (s->count != NB_N || s->sum != (uint64_t)NB_N * (NB_N - 1) / 2)
        return b_fail("lost or duplicated messages");
    b_note("%s", named ? "two exec'd programs on a named heap" : "forked producer and consumer");
    return NB_N / (s->t_end - s->t0);
}

BENCH(nb_named, "named_queue_1p1c_64B", "mp.h named heap", "msg/s", +1) { return nb_run(true); }
/* Not named "mp.h ...": the driver then treats it as the peer the named heap is held to */
BENCH(nb_family, "named_queue_1p1c_64B", "family (forked), mp.h queue", "msg/s", +1) { return nb_run(false); }
