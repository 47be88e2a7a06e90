/* pool_map_1M, pool_apply_async, pool_imap_chunk1 for mp.h (Python's Pool is its
   peer, in another file). Each run creates a 2-worker pool, times the workload
   alone, then closes and joins the pool. */
#define _GNU_SOURCE
#include "../mp.h"
#include "bench.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int b_square(const void *in, void *out) {
    int64_t x = *(const int64_t *)in;
    *(int64_t *)out = x * x;
    return 0;
}

static int b_task_square(const void *arg, size_t len, void *res, size_t *res_len) {
    int64_t x;
    (void)len;
    memcpy(&x, arg, sizeof x);
    x *= x;
    memcpy(res, &x, sizeof x);
    *res_len = sizeof x;
    return 0;
}

static mp_pool *b_pool(void) {
    mp_pool_desc d = {2, NULL, NULL, 0, 0, 0, 0};
    return mp_pool_create(&d);
}

static void b_pool_end(mp_pool *p) {
    mp_pool_close(p);
    mp_pool_join(p, MP_FOREVER);
    mp_pool_destroy(p);
}

static int64_t *b_iota(size_t n) {
    int64_t *a = (int64_t *)malloc(n * sizeof *a);
    for (size_t i = 0; a && i < n; i++) a[i] = (int64_t)i;
    return a;
}

BENCH(pool_map_mp, "pool_map_1M", "mp.h", "items/s", +1) {
    enum { N = 1000000, REPS = 5 };
    int64_t *in = b_iota(N), *out = (int64_t *)malloc(N * sizeof *out);
    mp_pool *p = b_pool();
    if (!in || !out || !p) return b_skip("no memory or no pool");
    mp_map_desc d = {b_square, in, 8, out, 8, N, 0, false, NULL, NULL, NULL, NULL, 0};
    double t0 = b_now();
    for (int r = 0; r < REPS; r++)
        if (mp_pool_map(p, &d) != MP_OK || out[N - 1] != (int64_t)(N - 1) * (N - 1))
            return b_skip("map failed");
    double dt = b_now() - t0;
    b_pool_end(p);
    free(in);
    free(out);
    return (double)N * REPS / dt;
}

BENCH(pool_apply_mp, "pool_apply_async", "mp.h", "tasks/s", +1) {
    enum { N = 20000 };
    mp_async **r = (mp_async **)malloc(N * sizeof *r);
    mp_pool *p = b_pool();
    if (!r || !p) return b_skip("no memory or no pool");
    double t0 = b_now();
    for (int64_t i = 0; i < N; i++) r[i] = mp_pool_apply_async(p, b_task_square, &i, sizeof i);
    for (int64_t i = 0; i < N; i++) {
        int64_t v = 0;
        if (!r[i] || mp_async_get(r[i], &v, sizeof v, NULL, MP_FOREVER) != MP_OK || v != i * i)
            return b_skip("apply_async failed");
        mp_async_destroy(r[i]);
    }
    double dt = b_now() - t0;
    b_pool_end(p);
    free(r);
    return N / dt;
}

BENCH(pool_imap_mp, "pool_imap_chunk1", "mp.h", "items/s", +1) {
    enum { N = 50000 };
    int64_t *in = b_iota(N);
    mp_pool *p = b_pool();
    if (!in || !p) return b_skip("no memory or no pool");
    mp_map_desc d = {b_square, in, 8, NULL, 8, N, 1, false, NULL, NULL, NULL, NULL, 0};
    double t0 = b_now();
    mp_imap *it = mp_pool_imap(p, &d);
    int64_t v;
    size_t idx, got = 0;
    while (mp_imap_next(it, &v, &idx, MP_FOREVER) == MP_OK) {
        if (idx != got || v != (int64_t)(idx * idx)) return b_skip("imap out of order");
        got++;
    }
    double dt = b_now() - t0;
    mp_imap_destroy(it);
    b_pool_end(p);
    free(in);
    return got == N ? N / dt : b_skip("imap lost items");
}

/* pool_map_cpu: a CPU-bound map, about 20 us of work per item (a dependent chain of
   multiplies: no memory traffic), with 1, 2, ... as many workers as CPUs; the driver
   reports the parallel efficiency T1 / (N * TN) from the medians. The pool starts,
   and its workers run a first small map, before the clock. */
enum { CPU_ITEMS = 16000, CPU_ITERS = 12000 };

static uint64_t b_burn(uint64_t x) {
    for (int i = 0; i < CPU_ITERS; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        x ^= x >> 29;
    }
    return x;
}

static int b_burn_item(const void *in, void *out) {
    *(uint64_t *)out = b_burn(*(const int64_t *)in);
    return 0;
}

BENCH_SCALE(pool_cpu_mp, "pool_map_cpu", "mp.h", "items/s", +1, 0) {
    int64_t *in = b_iota(CPU_ITEMS);
    uint64_t *out = (uint64_t *)calloc(CPU_ITEMS, sizeof *out);
    mp_pool_desc pd = {.processes = (unsigned)n};
    mp_pool *p = in && out ? mp_pool_create(&pd) : NULL;
    if (!p) return b_skip("no memory or no pool");
    mp_map_desc d = {.fn = b_burn_item, .in = in, .in_size = 8, .out = out, .out_size = 8,
                     .n = (size_t)(4 * n), .chunksize = 1};
    if (mp_pool_map(p, &d) != MP_OK) return b_fail("map failed");
    d.n = CPU_ITEMS, d.chunksize = 0;
    double t0 = b_now();
    int rc = mp_pool_map(p, &d);
    double dt = b_now() - t0;
    for (size_t i = 0; rc == MP_OK && i < CPU_ITEMS; i += 997)
        if (out[i] != b_burn((uint64_t)i)) rc = MP_EINVAL;
    b_pool_end(p);
    free(in);
    free(out);
    if (rc != MP_OK) return b_fail("map failed or gave a wrong result");
    b_note("%d items, %.1f us of CPU each (N x wall time / items)", CPU_ITEMS,
           n * dt / CPU_ITEMS * 1e6);
    return CPU_ITEMS / dt;
}

/* The same items split evenly over N forked processes that write straight into shared
   memory, no pool: the parallel efficiency the machine itself gives (a VM whose vCPUs
   share host cores gives much less than 1). */
BENCH_SCALE(pool_cpu_fork, "pool_map_cpu", "N forked processes (limit)", "items/s", +1, 0) {
    uint64_t *out = (uint64_t *)mp_calloc(CPU_ITEMS, sizeof *out);
    pid_t pids[64];
    if (!out || n > 64) return b_skip("no memory, or too many CPUs");
    double t0 = b_now();
    for (int w = 0; w < n; w++)
        if ((pids[w] = fork()) == 0) {
            for (size_t i = (size_t)w; i < CPU_ITEMS; i += (size_t)n) out[i] = b_burn((uint64_t)i);
            _exit(0);
        }
    bool ok = true;
    for (int w = 0; w < n; w++) {
        int st;
        while (waitpid(pids[w], &st, 0) < 0 && errno == EINTR) {}
        ok = ok && pids[w] > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    double dt = b_now() - t0;
    for (size_t i = 0; ok && i < CPU_ITEMS; i += 997) ok = out[i] == b_burn((uint64_t)i);
    mp_free(out);
    if (!ok) return b_fail("a worker failed or gave a wrong result");
    b_note("%d items, every N-th in each of N processes, fork and wait timed", CPU_ITEMS);
    return CPU_ITEMS / dt;
}
