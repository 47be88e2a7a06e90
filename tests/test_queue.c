/* Queues: bounded MPMC message queues in the shared heap, across real processes. */
#define _GNU_SOURCE
#include "test.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static mp_queue *q_new(size_t maxsize, size_t capacity) {
    mp_queue_desc d = {maxsize, capacity};
    mp_queue *q = mp_queue_create(&d);
    CHECK(q != NULL);
    return q;
}

static void q_join_ok(pid_t pid) {
    int st = t_wait(pid);
    CHECK(WIFEXITED(st));
    CHECK_EQ(WEXITSTATUS(st), 0);
}

/* A message of a given size whose bytes depend on (seed, size): checkable anywhere. */
static void q_fill(unsigned char *p, size_t n, unsigned seed) {
    uint32_t x = seed * 2654435761u + (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (unsigned char)(x >> 16);
    }
}

static bool q_check(const unsigned char *p, size_t n, unsigned seed) {
    uint32_t x = seed * 2654435761u + (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        if (p[i] != (unsigned char)(x >> 16)) return false;
    }
    return true;
}

TEST(queue_bad_arguments_are_einval) {
    mp_queue_desc small = {0, 10}, huge_max = {SIZE_MAX, 0}, too_big = {(size_t)1 << 30, 0};
    errno = 0;
    CHECK(mp_queue_create(&small) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(mp_queue_create(&huge_max) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(mp_queue_create(&too_big) == NULL); /* 2^30 slots of 64 B: not in a 1 GiB heap */
    CHECK_EQ(errno, EINVAL);

    mp_queue *q = mp_queue_create(NULL); /* NULL: all defaults */
    CHECK(q != NULL);
    size_t len;
    char buf[8];
    void *p = buf;
    mp_queue_msg m;
    CHECK_EQ(mp_queue_put(NULL, "x", 1, 0), MP_EINVAL);
    CHECK_EQ(mp_queue_put(q, NULL, 1, 0), MP_EINVAL);
    CHECK_EQ(mp_queue_get(NULL, buf, 8, &len, 0), MP_EINVAL);
    CHECK_EQ(mp_queue_get(q, buf, 8, NULL, 0), MP_EINVAL);
    CHECK_EQ(mp_queue_get(q, NULL, 8, &len, 0), MP_EINVAL);
    CHECK_EQ(mp_queue_get_alloc(NULL, &p, &len, 0), MP_EINVAL);
    CHECK(p == NULL);
    CHECK_EQ(mp_queue_get_alloc(q, NULL, &len, 0), MP_EINVAL);
    CHECK_EQ(mp_queue_reserve(NULL, 1, &m, 0), MP_EINVAL);
    CHECK_EQ(mp_queue_reserve(q, 1, NULL, 0), MP_EINVAL);
    CHECK_EQ(mp_queue_claim(NULL, &m, 0), MP_EINVAL);
    CHECK_EQ(mp_queue_claim(q, NULL, 0), MP_EINVAL);
    CHECK_EQ(mp_queue_commit(q, NULL), MP_EINVAL);
    CHECK_EQ(mp_queue_release(q, NULL), MP_EINVAL);
    memset(&m, 0, sizeof m);
    CHECK_EQ(mp_queue_commit(q, &m), MP_EINVAL); /* never reserved */
    CHECK_EQ(mp_queue_release(q, &m), MP_EINVAL);
    CHECK_EQ(mp_queue_task_done(NULL), MP_EINVAL);
    CHECK_EQ(mp_queue_join(NULL, 0), MP_EINVAL);
    CHECK_EQ(mp_queue_qsize(NULL), 0);
    CHECK(mp_queue_empty(NULL));
    CHECK(!mp_queue_full(NULL));
    mp_queue_close(NULL);
    mp_queue_destroy(NULL);
    /* a 0-byte message needs no buffer */
    CHECK_EQ(mp_queue_put(q, NULL, 0, 0), MP_OK);
    CHECK_EQ(mp_queue_get(q, NULL, 0, &len, 0), MP_OK);
    CHECK_EQ(len, 0);
    mp_queue_destroy(q);
}

TEST(queue_qsize_empty_full_and_exact_bound) {
    mp_queue *q = q_new(3, 0); /* not a power of two: the bound is exact */
    CHECK(mp_queue_empty(q));
    CHECK(!mp_queue_full(q));
    for (int i = 0; i < 3; i++) CHECK_EQ(mp_queue_put(q, &i, sizeof i, 0), MP_OK);
    CHECK_EQ(mp_queue_qsize(q), 3);
    CHECK(mp_queue_full(q));
    int x = 9;
    CHECK_EQ(mp_queue_put(q, &x, sizeof x, 0), MP_ETIMEDOUT);
    size_t len;
    /* many laps around a 3-slot ring keep FIFO */
    for (int i = 3; i < 3000; i++) {
        CHECK_EQ(mp_queue_get(q, &x, sizeof x, &len, 0), MP_OK);
        CHECK_EQ(x, i - 3);
        CHECK_EQ(mp_queue_put(q, &i, sizeof i, 0), MP_OK);
    }
    for (int i = 2997; i < 3000; i++) {
        CHECK_EQ(mp_queue_get(q, &x, sizeof x, &len, 0), MP_OK);
        CHECK_EQ(x, i);
    }
    CHECK(mp_queue_empty(q));
    CHECK_EQ(mp_queue_get(q, &x, sizeof x, &len, 0), MP_ETIMEDOUT);
    mp_queue_destroy(q);
}

/* --- FIFO per producer, across processes ------------------------------------------ */

typedef struct {
    mp_queue *q;
    int id, n;
} q_prod;

static int q_producer(void *arg) {
    q_prod *p = (q_prod *)arg;
    unsigned char buf[300];
    for (int i = 0; i < p->n; i++) {
        size_t len = 8 + (size_t)(i % 200);
        q_fill(buf, len, (unsigned)(p->id * 1000003 + i));
        memcpy(buf, &p->id, 4);
        memcpy(buf + 4, &i, 4);
        if (mp_queue_put(p->q, buf, len, MP_FOREVER) != MP_OK) return 1;
    }
    return 0;
}

TEST(queue_fifo_single_producer_process) {
    mp_queue *q = q_new(64, 0);
    q_prod p = {q, 7, (int)t_scale(100000)};
    pid_t pid = t_fork(q_producer, &p);
    unsigned char buf[300];
    for (int i = 0; i < p.n; i++) {
        size_t len;
        int id, seq;
        CHECK_EQ(mp_queue_get(q, buf, sizeof buf, &len, 10), MP_OK);
        memcpy(&id, buf, 4);
        memcpy(&seq, buf + 4, 4);
        CHECK_EQ(id, 7);
        CHECK_EQ(seq, i);
        CHECK_EQ(len, 8 + (size_t)(i % 200));
    }
    q_join_ok(pid);
    CHECK(mp_queue_empty(q));
    mp_queue_destroy(q);
}

/* --- 4 producers x 4 consumers x 50,000 messages: each once, in order per producer -- */

enum { Q_NP = 4, Q_NC = 4 };

typedef struct {
    mp_queue *q;
    uint8_t *seen; /* [producer][seq] receive counts */
    int n;
    int bad;
} q_mpmc;

static q_mpmc *q_mpmc_g;

static int q_mpmc_consumer(void *arg) {
    q_mpmc *s = q_mpmc_g;
    int last[Q_NP];
    (void)arg;
    for (int i = 0; i < Q_NP; i++) last[i] = -1;
    unsigned char buf[300];
    size_t len;
    int r;
    while ((r = mp_queue_get(s->q, buf, sizeof buf, &len, MP_FOREVER)) == MP_OK) {
        int id, seq;
        memcpy(&id, buf, 4);
        memcpy(&seq, buf + 4, 4);
        if (id < 0 || id >= Q_NP || seq < 0 || seq >= s->n || seq <= last[id] ||
            len != 8 + (size_t)(seq % 200) ||
            !q_check(buf + 8, len - 8, (unsigned)(id * 1000003 + seq))) {
            __atomic_store_n(&s->bad, 1, __ATOMIC_SEQ_CST);
            return 2;
        }
        last[id] = seq;
        __atomic_fetch_add(&s->seen[(size_t)id * (size_t)s->n + (size_t)seq], 1, __ATOMIC_RELAXED);
    }
    return r == MP_ECLOSED ? 0 : 1;
}

/* q_producer fills the whole buffer then overwrites the first 8 bytes; so check the
   rest against a fill of the same length. */
static int q_mpmc_producer(void *arg) {
    q_prod *p = (q_prod *)arg;
    unsigned char buf[300], tmp[300];
    for (int i = 0; i < p->n; i++) {
        size_t len = 8 + (size_t)(i % 200);
        q_fill(tmp, len - 8, (unsigned)(p->id * 1000003 + i));
        memcpy(buf + 8, tmp, len - 8);
        memcpy(buf, &p->id, 4);
        memcpy(buf + 4, &i, 4);
        if (mp_queue_put(p->q, buf, len, MP_FOREVER) != MP_OK) return 1;
    }
    return 0;
}

TEST_T(queue_4p4c_50000_each_exactly_once_in_order, 120) {
    q_mpmc *s = (q_mpmc *)mp_calloc(1, sizeof *s);
    s->n = (int)t_scale(50000);
    s->q = q_new(256, 0);
    s->seen = (uint8_t *)mp_calloc((size_t)Q_NP * (size_t)s->n, 1);
    CHECK(s->seen != NULL);
    q_mpmc_g = s;
    pid_t cons[Q_NC], prod[Q_NP];
    q_prod p[Q_NP];
    for (int i = 0; i < Q_NC; i++) cons[i] = t_fork(q_mpmc_consumer, NULL);
    for (int i = 0; i < Q_NP; i++) {
        p[i].q = s->q, p[i].id = i, p[i].n = s->n;
        prod[i] = t_fork(q_mpmc_producer, &p[i]);
    }
    for (int i = 0; i < Q_NP; i++) q_join_ok(prod[i]);
    mp_queue_close(s->q);
    for (int i = 0; i < Q_NC; i++) q_join_ok(cons[i]);
    CHECK_EQ(s->bad, 0);
    for (size_t i = 0; i < (size_t)Q_NP * (size_t)s->n; i++)
        if (s->seen[i] != 1) CHECK_EQ(s->seen[i], 1);
    mp_queue_destroy(s->q);
    mp_free(s->seen);
    mp_free(s);
}

/* --- sizes from 0 B to 4 MiB ------------------------------------------------------- */

static const size_t q_sizes[] = {0,    1,    15,    16,     47,     48,      49,     63,
                                 64,   100,  240,   241,    1000,   4096,    65536,  1 << 20,
                                 3000000, 4 << 20};
enum { Q_NSIZES = sizeof q_sizes / sizeof q_sizes[0] };

static mp_queue *q_sizes_q;

static int q_sizes_producer(void *arg) {
    (void)arg;
    unsigned char *buf = (unsigned char *)malloc(4 << 20);
    for (int rep = 0; rep < 2; rep++) {
        for (int i = 0; i < Q_NSIZES; i++) {
            q_fill(buf, q_sizes[i], (unsigned)i);
            if (mp_queue_put(q_sizes_q, buf, q_sizes[i], 10) != MP_OK) return 1;
        }
    }
    /* and once more through the zero-copy verbs */
    for (int i = 0; i < Q_NSIZES; i++) {
        mp_queue_msg m;
        if (mp_queue_reserve(q_sizes_q, q_sizes[i], &m, 10) != MP_OK) return 2;
        if (m.len != q_sizes[i]) return 3;
        q_fill((unsigned char *)m.data, m.len, (unsigned)i);
        if (mp_queue_commit(q_sizes_q, &m) != MP_OK) return 4;
    }
    free(buf);
    return 0;
}

TEST(queue_sizes_0_to_4MiB_across_processes) {
    mp_heap_stats before, after;
    q_sizes_q = q_new(4, 4096); /* 1 KiB slots: the big ones travel as heap blocks */
    mp_heap_stats_get(&before);
    pid_t pid = t_fork(q_sizes_producer, NULL);
    unsigned char *buf = (unsigned char *)malloc(4 << 20);
    for (int i = 0; i < Q_NSIZES; i++) { /* plain get */
        size_t len;
        CHECK_EQ(mp_queue_get(q_sizes_q, buf, 4 << 20, &len, 10), MP_OK);
        CHECK_EQ(len, q_sizes[i]);
        CHECK(q_check(buf, len, (unsigned)i));
    }
    for (int i = 0; i < Q_NSIZES; i++) { /* get_alloc */
        size_t len;
        void *p;
        CHECK_EQ(mp_queue_get_alloc(q_sizes_q, &p, &len, 10), MP_OK);
        CHECK(p != NULL);
        CHECK_EQ(len, q_sizes[i]);
        CHECK(q_check((unsigned char *)p, len, (unsigned)i));
        free(p);
    }
    for (int i = 0; i < Q_NSIZES; i++) { /* read in place */
        mp_queue_msg m;
        CHECK_EQ(mp_queue_claim(q_sizes_q, &m, 10), MP_OK);
        CHECK_EQ(m.len, q_sizes[i]);
        CHECK(q_check((const unsigned char *)m.data, m.len, (unsigned)i));
        CHECK_EQ(mp_queue_release(q_sizes_q, &m), MP_OK);
        CHECK_EQ(mp_queue_release(q_sizes_q, &m), MP_EINVAL); /* once only */
    }
    q_join_ok(pid);
    mp_heap_stats_get(&after);
    CHECK_EQ(after.blocks, before.blocks); /* every heap block went back */
    free(buf);
    mp_queue_destroy(q_sizes_q);
}

TEST(queue_too_big_for_the_heap) {
    mp_queue *q = q_new(4, 0);
    mp_heap_stats hs;
    mp_heap_stats_get(&hs);
    static char c;
    /* larger than the heap: refused before reading the buffer */
    CHECK_EQ(mp_queue_put(q, &c, hs.size + 1, 0), MP_ETOOBIG);
    CHECK_EQ(mp_queue_put(q, &c, hs.size - 4096, 0), MP_ENOMEM);
    CHECK(mp_queue_empty(q));
    mp_queue_destroy(q);
}

TEST(queue_buffer_too_small_keeps_the_message) {
    mp_queue *q = q_new(4, 0);
    char big[100], out[100];
    memset(big, 'x', sizeof big);
    big[99] = 'y';
    CHECK_EQ(mp_queue_put(q, big, sizeof big, 0), MP_OK);
    size_t len = 0;
    CHECK_EQ(mp_queue_get(q, out, 10, &len, 0), MP_ETOOBIG);
    CHECK_EQ(len, 100);
    CHECK_EQ(mp_queue_qsize(q), 1);
    CHECK_EQ(mp_queue_get(q, out, 100, &len, 0), MP_OK);
    CHECK_EQ(len, 100);
    CHECK(memcmp(out, big, 100) == 0);
    /* a block-sized message too */
    static char huge[100000];
    huge[99999] = 'z';
    CHECK_EQ(mp_queue_put(q, huge, sizeof huge, 0), MP_OK);
    CHECK_EQ(mp_queue_get(q, out, sizeof out, &len, 0), MP_ETOOBIG);
    CHECK_EQ(len, sizeof huge);
    void *p;
    CHECK_EQ(mp_queue_get_alloc(q, &p, &len, 0), MP_OK);
    CHECK_EQ(len, sizeof huge);
    CHECK_EQ(((char *)p)[99999], 'z');
    free(p);
    mp_queue_destroy(q);
}

/* --- timeouts ------------------------------------------------------------------------ */

static mp_queue *q_to;

static int q_late_put(void *arg) {
    (void)arg;
    usleep(150000);
    int x = 42;
    return mp_queue_put(q_to, &x, sizeof x, 0) == MP_OK ? 0 : 1;
}

static int q_late_get(void *arg) {
    (void)arg;
    usleep(150000);
    int x;
    size_t len;
    return mp_queue_get(q_to, &x, sizeof x, &len, 0) == MP_OK ? 0 : 1;
}

TEST(queue_timeouts) {
    q_to = q_new(1, 0);
    int x = 1;
    size_t len;
    double t0 = t_now();
    CHECK_EQ(mp_queue_get(q_to, &x, sizeof x, &len, 0), MP_ETIMEDOUT); /* get_nowait */
    CHECK(t_now() - t0 < 0.05);
    t0 = t_now();
    CHECK_EQ(mp_queue_get(q_to, &x, sizeof x, &len, 0.2), MP_ETIMEDOUT);
    double dt = t_now() - t0;
    CHECK(dt >= 0.19 && dt < 1.5);
    CHECK_EQ(mp_queue_put(q_to, &x, sizeof x, 0), MP_OK);
    t0 = t_now();
    CHECK_EQ(mp_queue_put(q_to, &x, sizeof x, 0), MP_ETIMEDOUT); /* put_nowait */
    CHECK(t_now() - t0 < 0.05);
    t0 = t_now();
    CHECK_EQ(mp_queue_put(q_to, &x, sizeof x, 0.2), MP_ETIMEDOUT);
    dt = t_now() - t0;
    CHECK(dt >= 0.19 && dt < 1.5);
    /* a blocked put is let through by a get in another process */
    pid_t pid = t_fork(q_late_get, NULL);
    t0 = t_now();
    CHECK_EQ(mp_queue_put(q_to, &x, sizeof x, 10), MP_OK);
    CHECK(t_now() - t0 >= 0.1);
    q_join_ok(pid);
    CHECK_EQ(mp_queue_get(q_to, &x, sizeof x, &len, 0), MP_OK);
    /* a blocked get is woken by a put in another process */
    pid = t_fork(q_late_put, NULL);
    t0 = t_now();
    CHECK_EQ(mp_queue_get(q_to, &x, sizeof x, &len, 10), MP_OK);
    CHECK(t_now() - t0 >= 0.1);
    CHECK_EQ(x, 42);
    q_join_ok(pid);
    mp_queue_destroy(q_to);
}

/* --- close ---------------------------------------------------------------------------- */

static mp_queue *q_cl;

static int q_blocked_get(void *arg) {
    (void)arg;
    int x;
    size_t len;
    return mp_queue_get(q_cl, &x, sizeof x, &len, 30) == MP_ECLOSED ? 0 : 1;
}

static int q_blocked_put(void *arg) {
    (void)arg;
    int x = 5;
    return mp_queue_put(q_cl, &x, sizeof x, 30) == MP_ECLOSED ? 0 : 1;
}

TEST(queue_close_drains_then_eclosed_and_wakes_everyone) {
    q_cl = q_new(2, 0);
    pid_t g[2] = {t_fork(q_blocked_get, NULL), t_fork(q_blocked_get, NULL)};
    usleep(100000);
    double t0 = t_now();
    mp_queue_close(q_cl);
    q_join_ok(g[0]);
    q_join_ok(g[1]);
    CHECK(t_now() - t0 < 2);
    mp_queue_destroy(q_cl);

    q_cl = q_new(2, 0);
    int x = 1;
    CHECK_EQ(mp_queue_put(q_cl, &x, sizeof x, 0), MP_OK);
    x = 2;
    CHECK_EQ(mp_queue_put(q_cl, &x, sizeof x, 0), MP_OK);
    pid_t p[2] = {t_fork(q_blocked_put, NULL), t_fork(q_blocked_put, NULL)};
    usleep(100000);
    t0 = t_now();
    mp_queue_close(q_cl);
    q_join_ok(p[0]);
    q_join_ok(p[1]);
    CHECK(t_now() - t0 < 2);
    CHECK_EQ(mp_queue_put(q_cl, &x, sizeof x, 0), MP_ECLOSED);
    mp_queue_msg m;
    CHECK_EQ(mp_queue_reserve(q_cl, 4, &m, 0), MP_ECLOSED);
    size_t len;
    CHECK_EQ(mp_queue_get(q_cl, &x, sizeof x, &len, 0), MP_OK); /* drain what is left */
    CHECK_EQ(x, 1);
    CHECK_EQ(mp_queue_get(q_cl, &x, sizeof x, &len, MP_FOREVER), MP_OK);
    CHECK_EQ(x, 2);
    CHECK_EQ(mp_queue_get(q_cl, &x, sizeof x, &len, MP_FOREVER), MP_ECLOSED);
    CHECK_EQ(mp_queue_claim(q_cl, &m, MP_FOREVER), MP_ECLOSED);
    mp_queue_close(q_cl); /* repeatable */
    mp_queue_destroy(q_cl);
}

/* --- task_done / join ------------------------------------------------------------------- */

static mp_queue *q_jq;

static int q_worker_done(void *arg) {
    int n = *(int *)arg, x;
    size_t len;
    for (int i = 0; i < n; i++) {
        if (mp_queue_get(q_jq, &x, sizeof x, &len, 10) != MP_OK) return 1;
        usleep(1000);
        if (mp_queue_task_done(q_jq) != MP_OK) return 2;
    }
    return 0;
}

TEST(queue_task_done_and_join) {
    q_jq = q_new(16, 0);
    CHECK_EQ(mp_queue_join(q_jq, 0), MP_OK); /* nothing put: nothing to wait for */
    CHECK_EQ(mp_queue_task_done(q_jq), MP_EOVERFLOW);
    int n = 10, x = 0;
    for (int i = 0; i < n; i++) CHECK_EQ(mp_queue_put(q_jq, &i, sizeof i, 0), MP_OK);
    CHECK_EQ(mp_queue_join(q_jq, 0), MP_ETIMEDOUT);
    CHECK_EQ(mp_queue_join(q_jq, 0.05), MP_ETIMEDOUT);
    pid_t pid = t_fork(q_worker_done, &n);
    double t0 = t_now();
    CHECK_EQ(mp_queue_join(q_jq, 10), MP_OK);
    CHECK(t_now() - t0 >= 0.005);
    q_join_ok(pid);
    CHECK_EQ(mp_queue_task_done(q_jq), MP_EOVERFLOW);
    /* got but not done: join waits; task_done beyond the items got overflows */
    size_t len;
    CHECK_EQ(mp_queue_put(q_jq, &x, sizeof x, 0), MP_OK);
    CHECK_EQ(mp_queue_put(q_jq, &x, sizeof x, 0), MP_OK);
    CHECK_EQ(mp_queue_get(q_jq, &x, sizeof x, &len, 0), MP_OK);
    CHECK_EQ(mp_queue_task_done(q_jq), MP_OK);
    CHECK_EQ(mp_queue_task_done(q_jq), MP_EOVERFLOW); /* the second is not got yet */
    CHECK_EQ(mp_queue_join(q_jq, 0), MP_ETIMEDOUT);
    CHECK_EQ(mp_queue_get(q_jq, &x, sizeof x, &len, 0), MP_OK);
    CHECK_EQ(mp_queue_join(q_jq, 0), MP_ETIMEDOUT);
    CHECK_EQ(mp_queue_task_done(q_jq), MP_OK);
    CHECK_EQ(mp_queue_join(q_jq, 0), MP_OK);
    mp_queue_destroy(q_jq);
}

/* --- created after the fork, handed over by pointer ---------------------------------- */

typedef struct {
    mp_queue *control;
} q_handoff;

static int q_child_creates(void *arg) {
    q_handoff *h = (q_handoff *)arg;
    mp_queue *mine = q_new(8, 0);
    if (mp_queue_put(h->control, &mine, sizeof mine, 10) != MP_OK) return 1;
    for (int i = 0; i < 100; i++)
        if (mp_queue_put(mine, &i, sizeof i, 10) != MP_OK) return 2;
    return 0;
}

TEST(queue_created_in_a_child_and_handed_over) {
    q_handoff h = {q_new(1, 0)};
    pid_t pid = t_fork(q_child_creates, &h);
    mp_queue *theirs = NULL;
    size_t len;
    CHECK_EQ(mp_queue_get(h.control, &theirs, sizeof theirs, &len, 10), MP_OK);
    CHECK_EQ(len, sizeof theirs);
    for (int i = 0; i < 100; i++) {
        int x;
        CHECK_EQ(mp_queue_get(theirs, &x, sizeof x, &len, 10), MP_OK);
        CHECK_EQ(x, i);
    }
    q_join_ok(pid);
    mp_queue_destroy(theirs);
    mp_queue_destroy(h.control);
}

/* --- threads ------------------------------------------------------------------------- */

typedef struct {
    mp_queue *q;
    int id, n;
    long sum;
} q_thr;

static void *q_thr_put(void *arg) {
    q_thr *t = (q_thr *)arg;
    for (int i = 0; i < t->n; i++) {
        int v[2] = {t->id, i};
        if (mp_queue_put(t->q, v, sizeof v, MP_FOREVER) != MP_OK) t->sum = -1;
    }
    return NULL;
}

static void *q_thr_get(void *arg) {
    q_thr *t = (q_thr *)arg;
    int v[2], last[4] = {-1, -1, -1, -1};
    size_t len;
    while (mp_queue_get(t->q, v, sizeof v, &len, MP_FOREVER) == MP_OK) {
        if (v[1] <= last[v[0]]) t->sum = -1000000000;
        last[v[0]] = v[1];
        t->sum += v[1];
    }
    return NULL;
}

TEST(queue_threads_2p2c_in_one_process) {
    mp_queue *q = q_new(32, 0);
    int n = (int)t_scale(20000);
    pthread_t th[4];
    q_thr t[4];
    for (int i = 0; i < 4; i++) {
        t[i].q = q, t[i].id = i, t[i].n = n, t[i].sum = 0;
        CHECK(pthread_create(&th[i], NULL, i < 2 ? q_thr_put : q_thr_get, &t[i]) == 0);
    }
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    mp_queue_close(q);
    for (int i = 2; i < 4; i++) pthread_join(th[i], NULL);
    CHECK_EQ(t[0].sum, 0);
    CHECK_EQ(t[1].sum, 0);
    CHECK_EQ(t[2].sum + t[3].sum, 2L * n * (n - 1) / 2);
    mp_queue_destroy(q);
}

/* --- robustness: deterministic deaths mid-put and mid-get ---------------------------- */

static mp_queue *q_rb;

static int q_die_reserved(void *arg) {
    (void)arg;
    mp_queue_msg m;
    if (mp_queue_reserve(q_rb, 8, &m, 10) != MP_OK) return 1;
    memcpy(m.data, "halfway", 8);
    raise(SIGKILL); /* dies between reserve and commit: mid-put */
    return 2;
}

static int q_die_claimed(void *arg) {
    (void)arg;
    mp_queue_msg m;
    if (mp_queue_claim(q_rb, &m, 10) != MP_OK) return 1;
    raise(SIGKILL); /* dies between claim and release: mid-get */
    return 2;
}

TEST(queue_dead_producer_mid_put_does_not_wedge) {
    q_rb = q_new(4, 0);
    pid_t pid = t_fork(q_die_reserved, NULL);
    int st = t_wait(pid);
    CHECK(WIFSIGNALED(st));
    int x = 7;
    CHECK_EQ(mp_queue_put(q_rb, &x, sizeof x, 0), MP_OK); /* behind the dead one */
    size_t len;
    double t0 = t_now();
    CHECK_EQ(mp_queue_get(q_rb, &x, sizeof x, &len, 5), MP_OK);
    CHECK_EQ(x, 7);
    CHECK(t_now() - t0 < 2);
    CHECK_EQ(mp_queue_task_done(q_rb), MP_OK);
    CHECK_EQ(mp_queue_join(q_rb, 1), MP_OK); /* the lost message is not waited for */
    for (int i = 0; i < 20; i++) { /* and the ring keeps turning */
        CHECK_EQ(mp_queue_put(q_rb, &i, sizeof i, 1), MP_OK);
        CHECK_EQ(mp_queue_get(q_rb, &x, sizeof x, &len, 1), MP_OK);
        CHECK_EQ(x, i);
    }
    mp_queue_destroy(q_rb);
}

TEST(queue_dead_consumer_mid_get_does_not_wedge) {
    q_rb = q_new(2, 0);
    int x = 1;
    CHECK_EQ(mp_queue_put(q_rb, &x, sizeof x, 0), MP_OK);
    x = 2;
    CHECK_EQ(mp_queue_put(q_rb, &x, sizeof x, 0), MP_OK);
    pid_t pid = t_fork(q_die_claimed, NULL); /* takes message 1, dies holding its slot */
    int st = t_wait(pid);
    CHECK(WIFSIGNALED(st));
    x = 3;
    double t0 = t_now();
    CHECK_EQ(mp_queue_put(q_rb, &x, sizeof x, 5), MP_OK); /* needs the dead one's slot */
    CHECK(t_now() - t0 < 2);
    size_t len;
    CHECK_EQ(mp_queue_get(q_rb, &x, sizeof x, &len, 1), MP_OK);
    CHECK_EQ(x, 2);
    CHECK_EQ(mp_queue_get(q_rb, &x, sizeof x, &len, 1), MP_OK);
    CHECK_EQ(x, 3);
    CHECK(mp_queue_empty(q_rb));
    mp_queue_destroy(q_rb);
}

/* A poller (timeout 0 or below the 20 ms owner-check interval, as event loops use) must
   also recover a dead owner's slot: every getter verb behind a dead writer, every putter
   verb in front of a dead reader. */
static const double q_poll_timeouts[] = {0, 0.001, 0.015};

static int q_poll_get(int verb, double timeout, int *x) {
    size_t len;
    void *b = NULL;
    mp_queue_msg m;
    int r;
    if (verb == 0) return mp_queue_get(q_rb, x, sizeof *x, &len, timeout);
    if (verb == 1) {
        if ((r = mp_queue_get_alloc(q_rb, &b, &len, timeout)) == MP_OK) memcpy(x, b, sizeof *x);
        free(b);
        return r;
    }
    if ((r = mp_queue_claim(q_rb, &m, timeout)) != MP_OK) return r;
    memcpy(x, m.data, sizeof *x);
    return mp_queue_release(q_rb, &m);
}

static int q_poll_put(int verb, double timeout, int x) {
    mp_queue_msg m;
    int r;
    if (verb == 0) return mp_queue_put(q_rb, &x, sizeof x, timeout);
    if ((r = mp_queue_reserve(q_rb, sizeof x, &m, timeout)) != MP_OK) return r;
    memcpy(m.data, &x, sizeof x);
    return mp_queue_commit(q_rb, &m);
}

/* Retry verb until it succeeds, for up to 3 s: MP_OK, or the last code seen. */
static int q_poll_until(int (*op)(int, double, int *), int verb, double timeout, int *x) {
    int r = MP_ETIMEDOUT;
    for (double end = t_now() + 3; r == MP_ETIMEDOUT && t_now() < end;)
        r = op(verb, timeout, x);
    return r;
}

static int q_poll_put_p(int verb, double timeout, int *x) { return q_poll_put(verb, timeout, *x); }

TEST(queue_pollers_recover_a_dead_writers_slot) {
    const char *verbs[] = {"get", "get_alloc", "claim"};
    for (int v = 0; v < 3; v++)
        for (int t = 0; t < 3; t++) {
            q_rb = q_new(4, 0);
            int st = t_wait(t_fork(q_die_reserved, NULL));
            CHECK(WIFSIGNALED(st));
            int x = 100 + v * 10 + t;
            CHECK_EQ(mp_queue_put(q_rb, &x, sizeof x, 0), MP_OK); /* behind the dead one */
            x = 0;
            int r = q_poll_until(q_poll_get, v, q_poll_timeouts[t], &x);
            if (r != MP_OK)
                printf("     %s with timeout %g: %s\n", verbs[v], q_poll_timeouts[t], mp_strerror(r));
            CHECK_EQ(r, MP_OK);
            CHECK_EQ(x, 100 + v * 10 + t);
            CHECK(mp_queue_empty(q_rb));
            mp_queue_destroy(q_rb);
        }
}

TEST(queue_pollers_recover_a_dead_readers_slot) {
    const char *verbs[] = {"put", "reserve"};
    for (int v = 0; v < 2; v++)
        for (int t = 0; t < 3; t++) {
            q_rb = q_new(2, 0);
            int x = 1;
            CHECK_EQ(mp_queue_put(q_rb, &x, sizeof x, 0), MP_OK);
            x = 2;
            CHECK_EQ(mp_queue_put(q_rb, &x, sizeof x, 0), MP_OK);
            int st = t_wait(t_fork(q_die_claimed, NULL)); /* takes 1, dies holding its slot */
            CHECK(WIFSIGNALED(st));
            x = 3;
            int r = q_poll_until(q_poll_put_p, v, q_poll_timeouts[t], &x);
            if (r != MP_OK)
                printf("     %s with timeout %g: %s\n", verbs[v], q_poll_timeouts[t], mp_strerror(r));
            CHECK_EQ(r, MP_OK);
            size_t len;
            CHECK_EQ(mp_queue_get(q_rb, &x, sizeof x, &len, 0), MP_OK);
            CHECK_EQ(x, 2);
            CHECK_EQ(mp_queue_get(q_rb, &x, sizeof x, &len, 0), MP_OK);
            CHECK_EQ(x, 3);
            mp_queue_destroy(q_rb);
        }
}

/* --- robustness: SIGKILL at random moments while others keep going ------------------- */

enum { K_NP = 3, K_NC = 3, K_MAXSEQ = 4000000 };

typedef struct {
    mp_queue *q;
    uint32_t next_seq[K_NP]; /* the seq a (replacement) producer puts next */
    uint32_t stop;
    uint32_t bad;
    uint64_t received;
    uint8_t *seen;   /* [producer][seq] */
    double timeout;  /* every put and get: MP_FOREVER, or polls (0) retried at once */
    int threads;     /* consumer threads per consumer process */
    int unbounded;   /* an unbounded queue kept in overflow: slow consumers, and
                        producers that hold off above K_HELD messages */
    uint64_t max_held, overflow_puts;
} k_state;

enum { K_RING = 4096, K_HELD = 30000 }; /* the default ring's slots; the backlog cap */

static k_state *k_g;

typedef struct {
    uint32_t id, seq, len, sum;
} k_hdr;

static uint32_t k_sum(const unsigned char *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

static int k_producer(void *arg) {
    uint32_t id = (uint32_t)(uintptr_t)arg;
    k_state *s = k_g;
    unsigned char buf[1024];
    while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
        /* claim the number first: a death anywhere below loses at most this one */
        uint32_t seq = __atomic_fetch_add(&s->next_seq[id], 1, __ATOMIC_SEQ_CST);
        if (seq >= K_MAXSEQ) return 0;
        k_hdr h = {id, seq, (uint32_t)(sizeof h + (seq * 7919u + id) % 600), 0};
        q_fill(buf + sizeof h, h.len - sizeof h, seq ^ (id << 24));
        h.sum = k_sum(buf + sizeof h, h.len - sizeof h);
        memcpy(buf, &h, sizeof h);
        int r;
        size_t held = s->unbounded ? mp_queue_qsize(s->q) : 0;
        if (held > K_RING) __atomic_fetch_add(&s->overflow_puts, 1, __ATOMIC_RELAXED);
        for (uint64_t m = __atomic_load_n(&s->max_held, __ATOMIC_RELAXED); held > m;)
            if (__atomic_compare_exchange_n(&s->max_held, &m, held, false, __ATOMIC_RELAXED,
                                            __ATOMIC_RELAXED))
                break;
        while (s->unbounded && mp_queue_qsize(s->q) > K_HELD && !s->stop) sched_yield();
        while ((r = mp_queue_put(s->q, buf, h.len, s->timeout)) == MP_ETIMEDOUT) sched_yield();
        if (r != MP_OK) return r == MP_ECLOSED ? 0 : 1;
    }
    return 0;
}

static int k_get(k_state *s, unsigned char *buf, size_t cap, size_t *len) {
    int r;
    while ((r = mp_queue_get(s->q, buf, cap, len, s->timeout)) == MP_ETIMEDOUT) sched_yield();
    return r;
}

static void *k_consume(void *arg) {
    k_state *s = k_g;
    unsigned char buf[1024];
    int64_t last[K_NP] = {-1, -1, -1};
    size_t len;
    int r;
    (void)arg;
    while ((r = k_get(s, buf, sizeof buf, &len)) == MP_OK) {
        k_hdr h;
        memcpy(&h, buf, sizeof h);
        if (len < sizeof h || h.len != len || h.id >= K_NP || h.seq >= K_MAXSEQ ||
            (int64_t)h.seq <= last[h.id] || h.sum != k_sum(buf + sizeof h, len - sizeof h)) {
            __atomic_store_n(&s->bad, 1, __ATOMIC_SEQ_CST);
            return (void *)2;
        }
        last[h.id] = h.seq;
        __atomic_fetch_add(&s->seen[(size_t)h.id * K_MAXSEQ + h.seq], 1, __ATOMIC_SEQ_CST);
        __atomic_fetch_add(&s->received, 1, __ATOMIC_RELAXED);
        for (volatile int k = 0; s->unbounded && k < 3000; k++) {} /* let a backlog build */
    }
    return (void *)(uintptr_t)(r == MP_ECLOSED ? 0 : 1);
}

/* s->threads threads consuming; the process exits with the first non-zero result. */
static int k_consumer(void *arg) {
    pthread_t th[4];
    int n = k_g->threads > 1 ? k_g->threads : 1, rc = 0;
    for (int i = 1; i < n; i++)
        if (pthread_create(&th[i], NULL, k_consume, arg) != 0) return 3;
    void *res = k_consume(arg);
    rc = (int)(uintptr_t)res;
    for (int i = 1; i < n; i++) {
        pthread_join(th[i], &res);
        if (!rc) rc = (int)(uintptr_t)res;
    }
    return rc;
}

/* Producers and consumers SIGKILLed at random while the others go on: nothing
   duplicated or corrupted, at most one message lost per thread killed, and the
   survivors keep moving through the whole run (a slot a dead process held is recovered,
   also by callers that only poll). */
static void k_run(double timeout, int threads, int unbounded) {
    k_state *s = (k_state *)mp_calloc(1, sizeof *s);
    s->seen = (uint8_t *)mp_calloc((size_t)K_NP * K_MAXSEQ, 1);
    CHECK(s->seen != NULL);
    s->timeout = timeout;
    s->threads = threads;
    s->unbounded = unbounded;
    /* 240 B inline: the larger messages go as heap blocks (in the overflow too) */
    s->q = unbounded ? mp_queue_create(NULL) : q_new(64, 64 * 256);
    CHECK(s->q != NULL);
    k_g = s;
    pid_t prod[K_NP], cons[K_NC];
    for (int i = 0; i < K_NP; i++) prod[i] = t_fork(k_producer, (void *)(uintptr_t)i);
    for (int i = 0; i < K_NC; i++) cons[i] = t_fork(k_consumer, NULL);
    unsigned seed = (unsigned)getpid();
    double end = t_now() + (getenv("MP_TEST_SLOW") ? 3.0 : 7.0);
    double half = t_now() + (end - t_now()) / 2;
    uint64_t at_half = 0;
    int kills = 0;
    while (t_now() < end) {
        if (!at_half && t_now() >= half) at_half = __atomic_load_n(&s->received, __ATOMIC_RELAXED) + 1;
        usleep((useconds_t)(rand_r(&seed) % 8000));
        int who = (int)(rand_r(&seed) % (K_NP + K_NC));
        pid_t *slot = who < K_NP ? &prod[who] : &cons[who - K_NP];
        kill(*slot, SIGKILL);
        int st = t_wait(*slot);
        if (WIFSIGNALED(st)) kills++;
        else CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0); /* a consumer saw corruption? */
        *slot = who < K_NP ? t_fork(k_producer, (void *)(uintptr_t)who) : t_fork(k_consumer, NULL);
    }
    uint64_t mid = __atomic_load_n(&s->received, __ATOMIC_RELAXED);
    __atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < K_NP; i++) q_join_ok(prod[i]);
    mp_queue_close(s->q);
    for (int i = 0; i < K_NC; i++) q_join_ok(cons[i]);
    CHECK_EQ(s->bad, 0);
    uint64_t lost = 0, got = 0;
    for (int p = 0; p < K_NP; p++) {
        uint32_t n = s->next_seq[p] < K_MAXSEQ ? s->next_seq[p] : K_MAXSEQ;
        for (uint32_t i = 0; i < n; i++) {
            uint8_t c = s->seen[(size_t)p * K_MAXSEQ + i];
            if (c > 1) CHECK_EQ(c, 1); /* never duplicated */
            if (c == 0) lost++;
            got += c;
        }
    }
    printf("     %d kills, %llu messages moved (%llu during the kills, %llu in their second "
           "half), %llu lost\n", kills, (unsigned long long)got, (unsigned long long)mid,
           (unsigned long long)(mid - (at_half - 1)), (unsigned long long)lost);
    if (unbounded) {
        printf("     unbounded: up to %llu held (the ring has %d slots), %llu puts made "
               "while above it\n", (unsigned long long)s->max_held, K_RING,
               (unsigned long long)s->overflow_puts);
        CHECK(s->max_held > K_RING);        /* the kills happened while in overflow */
        CHECK(s->overflow_puts >= 1000);
    }
    CHECK(kills >= 50);
    CHECK(mid >= 1000); /* the survivors kept moving */
    CHECK(at_half > 0 && mid - (at_half - 1) >= 500); /* ... to the end, unwedged */
    CHECK(lost <= (uint64_t)kills * (uint64_t)(threads > 1 ? threads : 1));
    mp_queue_destroy(s->q);
    mp_free(s->seen);
    mp_free(s);
}

TEST_T(queue_random_sigkill_loses_at_most_one_per_kill, 90) { k_run(MP_FOREVER, 1, 0); }

/* Event-loop style: every put and get polls with timeout 0; consumers have two threads. */
TEST_T(queue_random_sigkill_polling_threaded_consumers, 90) { k_run(0, 2, 0); }

/* The same on an unbounded queue held in overflow (a backlog above the ring's 4096
   slots): producers, consumers and consumers moving overflow into the ring are killed. */
TEST_T(queue_unbounded_random_sigkill_in_overflow, 90) { k_run(MP_FOREVER, 1, 1); }
TEST_T(queue_unbounded_random_sigkill_in_overflow_polling, 90) { k_run(0, 2, 1); }

/* --- close racing with busy producers: every put that returned MP_OK is got --------- */

enum { CR_NP = 2, CR_NC = 3, CR_MAX = 2000000 };

typedef struct {
    mp_queue *q;
    uint32_t ok_puts[CR_NP]; /* puts that returned MP_OK, in order */
    uint8_t *seen;           /* [producer][seq] */
    uint32_t bad;
} cr_state;

static cr_state *cr_g;

static int cr_producer(void *arg) {
    uint32_t id = (uint32_t)(uintptr_t)arg;
    for (uint32_t seq = 0; seq < CR_MAX; seq++) {
        uint32_t m[2] = {id, seq};
        int r = mp_queue_put(cr_g->q, m, sizeof m, MP_FOREVER);
        if (r == MP_ECLOSED) return 0;
        if (r != MP_OK) return 1;
        __atomic_store_n(&cr_g->ok_puts[id], seq + 1, __ATOMIC_RELEASE);
    }
    return 3; /* never closed? */
}

static int cr_consumer(void *arg) {
    uint32_t m[2];
    size_t len;
    int r;
    (void)arg;
    while ((r = mp_queue_get(cr_g->q, m, sizeof m, &len, MP_FOREVER)) == MP_OK) {
        if (m[0] >= CR_NP || m[1] >= CR_MAX) cr_g->bad = 1;
        else __atomic_fetch_add(&cr_g->seen[(size_t)m[0] * CR_MAX + m[1]], 1, __ATOMIC_RELAXED);
    }
    return r == MP_ECLOSED ? 0 : 1;
}

TEST(queue_close_racing_with_puts_strands_nothing) {
    /* more getters than putters: the queue is mostly empty, and a put that slips past
       close would land after the getters' last look */
    for (int round = 0; round < 20; round++) {
        cr_g = (cr_state *)mp_calloc(1, sizeof *cr_g);
        cr_g->q = q_new((size_t)(round % 4 + 1) * 3, 0);
        cr_g->seen = (uint8_t *)mp_calloc((size_t)CR_NP * CR_MAX, 1);
        pid_t p[CR_NP + CR_NC];
        for (int i = 0; i < CR_NP; i++) p[i] = t_fork(cr_producer, (void *)(uintptr_t)i);
        for (int i = 0; i < CR_NC; i++) p[CR_NP + i] = t_fork(cr_consumer, NULL);
        usleep(5000 + (useconds_t)round * 1000);
        mp_queue_close(cr_g->q);
        for (int i = 0; i < CR_NP + CR_NC; i++) q_join_ok(p[i]);
        CHECK_EQ(cr_g->bad, 0);
        for (uint32_t id = 0; id < CR_NP; id++) {
            uint32_t n = cr_g->ok_puts[id];
            for (uint32_t s = 0; s <= n && s < CR_MAX; s++) {
                uint8_t c = cr_g->seen[(size_t)id * CR_MAX + s];
                if (c != (s < n)) CHECK_EQ(c, s < n); /* the failed put never arrives */
            }
        }
        mp_queue_destroy(cr_g->q);
        mp_free(cr_g->seen);
        mp_free(cr_g);
    }
}
