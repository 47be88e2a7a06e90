/* Queue workloads (BENCHMARKS.md): queue_1p1c_64B, queue_2p2c_64B, pingpong_64B and
   queue_1MiB for mp.h and its peers: raw pipe(2), POSIX mq and a process-shared
   mutex+condvar ring (copy under the lock, signal only when someone waits). Every
   system moves the same messages through the same harness: workers are forked, wait
   for a common start, and the consumers check that every message arrived once.

   queue_NpNc_64B: the scale curve, N producers and N consumers for N = 1 ... 16 (more
   processes than CPUs on a small machine), mp.h beside the same ring with a robust
   mutex (a holder that dies does not wedge it, as with mp.h's queue). Every workload
   here is two-party: its processes are pinned (bench.h), party k being the k-th
   process forked (consumer 0, producer 0, consumer 1, ...; the ping-pong's parent is
   party 0, its echo party 1). The scale curve runs cross only: its parties alternate
   over the CPUs. */
#define _GNU_SOURCE
#include "../mp.h"
#include "bench.h"
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

enum { SMALL = 64, NSMALL = 1000000, BOUND = 1024, NPING = 100000, NPING_SLOW = 20000 };
enum { BIG = 1 << 20, NBIG = 2000, BIGBOUND = 8, MAXW = 16 };
#define STOP UINT64_MAX
#define ID_SHIFT 48 /* a message's first 8 bytes: producer id << ID_SHIFT | sequence */

/* A channel: one of the systems compared, opened before the fork. */
typedef struct chan chan;
typedef struct {
    const char *name;
    chan *(*open)(size_t msgsize, size_t bound); /* NULL: cannot run (b_skip said why) */
    void (*send)(chan *c, const void *buf, size_t len);
    void (*recv)(chan *c, void *buf, size_t len); /* exactly len bytes, one message */
    void (*close)(chan *c);
} chan_ops;

static void *b_shared(size_t n) {
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    memset(p, 0, n);
    return p;
}

static void b_die(const char *what) {
    perror(what);
    _exit(99);
}

/* ---- mp.h ---- */
struct chan {
    mp_queue *q;
};
static chan *mp_open(size_t msgsize, size_t bound) {
    (void)msgsize;
    mp_init(NULL);
    mp_queue_desc d = {bound, 0};
    chan *c = (chan *)mp_alloc(sizeof *c);
    c->q = mp_queue_create(&d);
    if (!c->q) b_die("mp_queue_create");
    return c;
}
static void mp_send(chan *c, const void *buf, size_t len) {
    if (mp_queue_put(c->q, buf, len, MP_FOREVER) != MP_OK) b_die("mp_queue_put");
}
static void mp_recv(chan *c, void *buf, size_t len) {
    size_t n;
    if (mp_queue_get(c->q, buf, len, &n, MP_FOREVER) != MP_OK || n != len) b_die("mp_queue_get");
}
static void mp_close(chan *c) {
    mp_queue_destroy(c->q);
    mp_free(c);
}
static const chan_ops ops_mp = {"mp.h", mp_open, mp_send, mp_recv, mp_close};

/* ---- raw pipe(2) ---- */
typedef struct { int fd[2]; } pipe_chan;
static chan *pipe_open(size_t msgsize, size_t bound) {
    pipe_chan *c = (pipe_chan *)malloc(sizeof *c);
    if (pipe(c->fd) < 0) b_die("pipe");
    /* the pipe gets the same room as the others' bound, as far as the kernel allows */
    size_t want = msgsize * bound;
    if (want > 65536) fcntl(c->fd[1], F_SETPIPE_SZ, (int)(want > (1 << 20) ? 1 << 20 : want));
    return (chan *)c;
}
static void pipe_send(chan *ch, const void *buf, size_t len) {
    pipe_chan *c = (pipe_chan *)ch;
    const char *p = (const char *)buf;
    while (len) {
        ssize_t r = write(c->fd[1], p, len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) b_die("write");
        p += r, len -= (size_t)r;
    }
}
static void pipe_recv(chan *ch, void *buf, size_t len) {
    pipe_chan *c = (pipe_chan *)ch;
    char *p = (char *)buf;
    while (len) {
        ssize_t r = read(c->fd[0], p, len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) b_die("read");
        p += r, len -= (size_t)r;
    }
}
static void pipe_close(chan *ch) {
    pipe_chan *c = (pipe_chan *)ch;
    close(c->fd[0]);
    close(c->fd[1]);
    free(c);
}
static const chan_ops ops_pipe = {"raw pipe(2)", pipe_open, pipe_send, pipe_recv, pipe_close};

/* ---- POSIX mq ---- */
typedef struct { mqd_t mq; char name[64]; } mq_chan;
static char mq_note[160];

/* The mq limits as found, put back at exit. */
static long mq_saved[2] = {-1, -1};
static const char *const mq_files[2] = {"msg_max", "msgsize_max"};

static long mq_read(int i) {
    char path[96];
    long cur = 0;
    snprintf(path, sizeof path, "/proc/sys/fs/mqueue/%s", mq_files[i]);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    if (fscanf(f, "%ld", &cur) != 1) cur = 0;
    fclose(f);
    return cur;
}

static bool mq_write(int i, long v) {
    char path[96];
    snprintf(path, sizeof path, "/proc/sys/fs/mqueue/%s", mq_files[i]);
    FILE *f = fopen(path, "w");
    if (!f) return false;
    fprintf(f, "%ld\n", v);
    return fclose(f) == 0;
}

static void mq_restore(void) {
    for (int i = 0; i < 2; i++)
        if (mq_saved[i] >= 0) mq_write(i, mq_saved[i]);
}

/* Raise limit i (0 msg_max, 1 msgsize_max) to want if it is lower and we may (root);
   the value now. The queue's bytes count against RLIMIT_MSGQUEUE: raise that too. */
static long mq_limit(int i, long want) {
    long cur = mq_read(i);
    struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
    setrlimit(RLIMIT_MSGQUEUE, &rl); /* fails quietly when not root */
    if (cur >= want) return cur;
    if (mq_saved[0] < 0 && mq_saved[1] < 0) atexit(mq_restore);
    if (mq_saved[i] < 0) mq_saved[i] = cur;
    return mq_write(i, want) ? want : cur;
}

static chan *mq_open_(size_t msgsize, size_t bound) {
    long maxmsg = mq_limit(0, (long)bound), maxsize = mq_limit(1, (long)msgsize);
    if (maxsize < (long)msgsize) {
        b_skip("msgsize_max below the message size and not writable");
        return NULL;
    }
    if (maxmsg < (long)bound)
        snprintf(mq_note, sizeof mq_note, "# POSIX mq: msg_max %ld (< %zu, not writable): bounded at %ld\n",
                 maxmsg, bound, maxmsg);
    struct rlimit rl;
    if (getrlimit(RLIMIT_MSGQUEUE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        /* the kernel charges each queue about maxmsg * (msgsize + a pointer) */
        long fit = (long)(rl.rlim_cur / (msgsize + 2 * sizeof(void *)));
        static char why[160];
        if (fit < 1) {
            snprintf(why, sizeof why, "RLIMIT_MSGQUEUE is %lu bytes, below one %zu-byte message, "
                     "and cannot be raised here", (unsigned long)rl.rlim_cur, msgsize);
            b_skip(why);
            return NULL;
        }
        if (fit < maxmsg && fit < (long)bound) {
            maxmsg = fit;
            snprintf(mq_note, sizeof mq_note, "# POSIX mq: RLIMIT_MSGQUEUE %lu bytes: bounded at %ld\n",
                     (unsigned long)rl.rlim_cur, fit);
        }
    }
    mq_chan *c = (mq_chan *)malloc(sizeof *c);
    static int seq;
    snprintf(c->name, sizeof c->name, "/mpbench.%d.%d", (int)getpid(), seq++);
    struct mq_attr a;
    memset(&a, 0, sizeof a);
    a.mq_maxmsg = maxmsg < (long)bound ? maxmsg : (long)bound;
    a.mq_msgsize = (long)msgsize;
    c->mq = mq_open(c->name, O_RDWR | O_CREAT | O_EXCL, 0600, &a);
    if (c->mq == (mqd_t)-1) {
        free(c);
        b_skip("mq_open failed (RLIMIT_MSGQUEUE?)");
        return NULL;
    }
    mq_unlink(c->name);
    return (chan *)c;
}
static void mq_send_(chan *ch, const void *buf, size_t len) {
    mq_chan *c = (mq_chan *)ch;
    while (mq_send(c->mq, (const char *)buf, len, 0) < 0)
        if (errno != EINTR) b_die("mq_send");
}
static void mq_recv_(chan *ch, void *buf, size_t len) {
    mq_chan *c = (mq_chan *)ch;
    ssize_t r;
    while ((r = mq_receive(c->mq, (char *)buf, len, NULL)) < 0)
        if (errno != EINTR) b_die("mq_receive");
    if ((size_t)r != len) b_die("mq_receive size");
}
static void mq_close_(chan *ch) {
    mq_chan *c = (mq_chan *)ch;
    mq_close(c->mq);
    free(c);
}
static const chan_ops ops_mq = {"POSIX mq", mq_open_, mq_send_, mq_recv_, mq_close_};

/* ---- process-shared mutex + condvar ring ---- */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    size_t head, tail, count, bound, msgsize, mapped;
    int wait_put, wait_get;
    char data[];
} ring_chan;
static chan *ring_open(size_t msgsize, size_t bound) {
    size_t n = sizeof(ring_chan) + msgsize * bound;
    ring_chan *c = (ring_chan *)b_shared(n);
    pthread_mutexattr_t ma;
    pthread_condattr_t ca;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&c->mu, &ma);
    pthread_condattr_init(&ca);
    pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
    pthread_cond_init(&c->not_empty, &ca);
    pthread_cond_init(&c->not_full, &ca);
    c->bound = bound, c->msgsize = msgsize, c->mapped = n;
    return (chan *)c;
}
/* Lock and wait the same for both rings: a plain mutex never reports EOWNERDEAD. */
static int ring_lock(ring_chan *c) {
    int rc = pthread_mutex_lock(&c->mu);
    if (rc == EOWNERDEAD) rc = pthread_mutex_consistent(&c->mu);
    return rc;
}
/* A wait that returns EOWNERDEAD holds the mutex all the same. */
static void ring_wait(pthread_cond_t *cv, ring_chan *c) {
    if (pthread_cond_wait(cv, &c->mu) == EOWNERDEAD) pthread_mutex_consistent(&c->mu);
}
static void ring_send(chan *ch, const void *buf, size_t len) {
    ring_chan *c = (ring_chan *)ch;
    if (ring_lock(c) != 0) b_die("pthread_mutex_lock");
    while (c->count == c->bound) {
        c->wait_put++;
        ring_wait(&c->not_full, c);
        c->wait_put--;
    }
    memcpy(c->data + c->tail * c->msgsize, buf, len);
    c->tail = (c->tail + 1) % c->bound;
    c->count++;
    if (c->wait_get) pthread_cond_signal(&c->not_empty);
    pthread_mutex_unlock(&c->mu);
}
static void ring_recv(chan *ch, void *buf, size_t len) {
    ring_chan *c = (ring_chan *)ch;
    if (ring_lock(c) != 0) b_die("pthread_mutex_lock");
    while (c->count == 0) {
        c->wait_get++;
        ring_wait(&c->not_empty, c);
        c->wait_get--;
    }
    memcpy(buf, c->data + c->head * c->msgsize, len);
    c->head = (c->head + 1) % c->bound;
    c->count--;
    if (c->wait_put) pthread_cond_signal(&c->not_full);
    pthread_mutex_unlock(&c->mu);
}
static void ring_close(chan *ch) {
    ring_chan *c = (ring_chan *)ch;
    munmap(c, c->mapped);
}
static const chan_ops ops_ring = {"mutex+condvar ring", ring_open, ring_send, ring_recv, ring_close};

/* The same ring with a robust mutex: a holder that died is recovered (ring_lock,
   ring_wait; the ring's state may be half updated then; the bench never kills a
   holder). */
static chan *ring_open_robust(size_t msgsize, size_t bound) {
    ring_chan *c = (ring_chan *)ring_open(msgsize, bound);
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_destroy(&c->mu);
    if (pthread_mutex_init(&c->mu, &ma) != 0) b_die("pthread_mutex_init(robust)");
    pthread_mutexattr_destroy(&ma);
    return (chan *)c;
}
static const chan_ops ops_ring_robust = {"robust mutex+condvar ring", ring_open_robust,
                                         ring_send, ring_recv, ring_close};

/* ---- the harness ---- */
typedef struct {
    int ready, go;
    double t0, t_end[MAXW];
    uint64_t count[MAXW], bad[MAXW];
} b_sync;

typedef struct {
    const chan_ops *ops;
    chan *c;
    b_sync *s;
    size_t msgsize;
    uint64_t n; /* messages per producer */
    int id, np;
    uint64_t *seen; /* this consumer's bitmap: message id * n + seq received */
} b_job;

static void b_start(b_sync *s) {
    __atomic_fetch_add(&s->ready, 1, __ATOMIC_SEQ_CST);
    while (!__atomic_load_n(&s->go, __ATOMIC_ACQUIRE)) sched_yield();
}

static void b_producer(b_job *j) {
    char *m = (char *)calloc(1, j->msgsize);
    b_start(j->s);
    for (uint64_t i = 0; i < j->n; i++) {
        uint64_t v = (uint64_t)j->id << ID_SHIFT | i; /* fits an 8-byte message too */
        memcpy(m, &v, sizeof v);
        j->ops->send(j->c, m, j->msgsize);
    }
    uint64_t stop = STOP;
    memcpy(m, &stop, sizeof stop);
    j->ops->send(j->c, m, j->msgsize);
    free(m);
}

/* Marks each message in its own bitmap (in shared memory, read by the parent after
   the run: a private page per consumer, so the check costs no sharing); a message
   seen twice here, or out of range, is bad. */
static void b_consumer(b_job *j) {
    char *m = (char *)calloc(1, j->msgsize);
    uint64_t count = 0, bad = 0, seq;
    b_start(j->s);
    for (;;) {
        j->ops->recv(j->c, m, j->msgsize);
        memcpy(&seq, m, sizeof seq);
        if (seq == STOP) break;
        uint64_t id = seq >> ID_SHIFT, i = seq & (((uint64_t)1 << ID_SHIFT) - 1);
        uint64_t at = id * j->n + i, bit = (uint64_t)1 << (at & 63);
        if (i >= j->n || id >= (uint64_t)j->np || (j->seen[at >> 6] & bit)) bad++;
        else j->seen[at >> 6] |= bit;
        count++;
    }
    j->s->t_end[j->id] = b_now();
    j->s->count[j->id] = count, j->s->bad[j->id] = bad;
    free(m);
}

/* Whether the nc bitmaps (stride words apart) together hold every one of total
   messages exactly once. */
static bool b_exactly_once(const uint64_t *seen, int nc, size_t stride, uint64_t total) {
    for (size_t w = 0; w < (total + 63) / 64; w++) {
        uint64_t all = 0;
        for (int c = 0; c < nc; c++) {
            uint64_t v = seen[(size_t)c * stride + w];
            if (all & v) return false; /* two consumers got the same message */
            all |= v;
        }
        uint64_t left = total - (uint64_t)w * 64;
        if (all != (left >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << left) - 1)) return false;
    }
    return true;
}

/* Forks party k of the run. */
static pid_t b_spawn(void (*fn)(b_job *), b_job j, int k) {
    pid_t pid = b_fork_party(k);
    if (pid < 0) b_die("fork");
    if (pid == 0) {
        fn(&j);
        _exit(0);
    }
    return pid;
}

/* np producers of n/np messages each, nc consumers; each producer ends with one STOP,
   each consumer stops at its first, so np must equal nc. msg/s, or NAN. */
static double b_stream(const chan_ops *ops, int np, size_t msgsize, uint64_t n, size_t bound) {
    pid_t pids[2 * MAXW];
    if (np < 1 || np > MAXW) return b_fail("too many producers");
    chan *c = ops->open(msgsize, bound);
    if (!c) return NAN;
    b_sync *s = (b_sync *)b_shared(sizeof *s);
    uint64_t per = n / (uint64_t)np, total = per * (uint64_t)np;
    /* each consumer's bitmap starts on its own page */
    size_t words = (size_t)((total + 63) / 64), stride = (words * 8 + 4095) / 4096 * 4096 / 8;
    uint64_t *seen = (uint64_t *)b_shared(stride * 8 * (size_t)np);
    int k = 0;
    for (int i = 0; i < np; i++) {
        b_job j = {ops, c, s, msgsize, per, i, np, seen + stride * (size_t)i};
        pids[k] = b_spawn(b_consumer, j, k);
        k++;
        pids[k] = b_spawn(b_producer, j, k);
        k++;
    }
    while (__atomic_load_n(&s->ready, __ATOMIC_ACQUIRE) < k) sched_yield();
    s->t0 = b_now();
    __atomic_store_n(&s->go, 1, __ATOMIC_RELEASE);
    bool ok = true;
    for (int i = 0; i < k; i++) {
        int st;
        while (waitpid(pids[i], &st, 0) < 0 && errno == EINTR) {}
        ok = ok && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru); /* the workers are reaped: their switches */
    uint64_t count = 0, bad = 0;
    double end = s->t0;
    for (int i = 0; i < np; i++) {
        count += s->count[i], bad += s->bad[i];
        if (s->t_end[i] > end) end = s->t_end[i];
    }
    double r = NAN;
    if (!ok || count != total || bad || !b_exactly_once(seen, np, stride, total))
        fprintf(stderr, "# %s: lost or duplicated messages (%llu of %llu, %llu bad)\n", ops->name,
                (unsigned long long)count, (unsigned long long)total, (unsigned long long)bad);
    else
        r = (double)count / (end - s->t0);
    if (np > 2 || getenv("MPBENCH_SWITCHES"))
        b_note("context switches per 1000 messages: %.1f voluntary (sleeps), %.1f involuntary",
               1000.0 * (double)ru.ru_nvcsw / (double)total, 1000.0 * (double)ru.ru_nivcsw / (double)total);
    ops->close(c);
    munmap(s, sizeof *s);
    munmap(seen, stride * 8 * (size_t)np);
    if (mq_note[0]) {
        fputs(mq_note, stdout);
        mq_note[0] = 0;
    }
    return r != r ? b_skip("the run failed") : r;
}

static void b_echo(b_job *j) {
    chan **cc = (chan **)j->c;
    char m[SMALL];
    b_start(j->s);
    for (uint64_t i = 0; i < j->n; i++) {
        j->ops->recv(cc[0], m, SMALL);
        j->ops->send(cc[1], m, SMALL);
    }
}

/* trips round trips through two channels; microseconds per round trip. The systems
   that sleep in the kernel on every message do 20,000 (see b_pipe.c). */
static double b_pingpong(const chan_ops *ops, int trips) {
    chan *cc[2] = {ops->open(SMALL, 1), NULL};
    if (!cc[0] || !(cc[1] = ops->open(SMALL, 1))) return NAN;
    b_sync *s = (b_sync *)b_shared(sizeof *s);
    b_job j = {ops, (chan *)cc, s, SMALL, (uint64_t)trips, 0, 1, NULL};
    b_party(0);
    pid_t pid = b_spawn(b_echo, j, 1);
    while (__atomic_load_n(&s->ready, __ATOMIC_ACQUIRE) < 1) sched_yield();
    __atomic_store_n(&s->go, 1, __ATOMIC_RELEASE);
    char m[SMALL] = {1};
    double t0 = b_now();
    for (int i = 0; i < trips; i++) {
        ops->send(cc[0], m, SMALL);
        ops->recv(cc[1], m, SMALL);
    }
    double t = b_now() - t0;
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    ops->close(cc[0]);
    ops->close(cc[1]);
    munmap(s, sizeof *s);
    if (trips < NPING) b_note("%d of %d round trips (scaled down, same rate)", trips, NPING);
    return t / trips * 1e6;
}

#define B_STREAMS(tag, ops)                                                            \
    BENCH(q1_##tag, "queue_1p1c_64B", ops.name, "msg/s", 1) {                          \
        return b_stream(&ops, 1, SMALL, NSMALL, BOUND);                                \
    }                                                                                  \
    BENCH(q2_##tag, "queue_2p2c_64B", ops.name, "msg/s", 1) {                          \
        return b_stream(&ops, 2, SMALL, NSMALL, BOUND);                                \
    }                                                                                  \
    BENCH(qbig_##tag, "queue_1MiB", ops.name, "GB/s", 1) {                             \
        return b_stream(&ops, 1, BIG, NBIG, BIGBOUND) * BIG / 1e9;                     \
    }

BENCH_TWO_PARTY("queue_1p1c_64B")
BENCH_TWO_PARTY("queue_2p2c_64B")
BENCH_TWO_PARTY("queue_1MiB")
BENCH_TWO_PARTY("pingpong_64B")
BENCH_PLACED("queue_NpNc_64B", B_CROSS)

B_STREAMS(mp, ops_mp)
B_STREAMS(pipe, ops_pipe)
B_STREAMS(mq, ops_mq)
B_STREAMS(ring, ops_ring)

/* queue_sizes: 1p1c at one message size, in GB/s. About 1.6 GB per run from 4 KiB up
   (1,000,000 messages below), 6.4 GB at 16 MiB, and a bound of 8 MiB of messages (8 to
   1024 of them): the same for both systems, a user's { .maxsize = bound } queue for
   mp.h. At 16 MiB the 10 blocks in flight cost some 13 ms each to commit the first time
   (fresh shared memory: ~3 us per 4 KiB page on a VM, madvise populate no cheaper), which
   would be most of a 100-message run: 400 messages show the steady state. */
static double b_sizes(const chan_ops *ops, size_t size) {
    size_t bound = ((size_t)8 << 20) / size;
    bound = bound < 8 ? 8 : bound > 1024 ? 1024 : bound;
    uint64_t n = size <= 256 ? 1000000 : (uint64_t)((size >= (16u << 20) ? 6.4e9 : 1.6e9) / (double)size);
    if (n < 100) n = 100;
    b_note("%llu messages, bound %zu", (unsigned long long)n, bound);
    return b_stream(ops, 1, size, n, bound) * (double)size / 1e9;
}

#define B_SIZES(tag, size)                                                             \
    BENCH_TWO_PARTY("queue_sizes_" #tag)                                               \
    BENCH(qs_mp_##tag, "queue_sizes_" #tag, "mp.h", "GB/s", 1) {                       \
        return b_sizes(&ops_mp, size);                                                 \
    }                                                                                  \
    BENCH(qs_pipe_##tag, "queue_sizes_" #tag, "raw pipe(2)", "GB/s", 1) {              \
        return b_sizes(&ops_pipe, size);                                               \
    }

B_SIZES(8B, 8)
B_SIZES(256B, 256)
B_SIZES(4KiB, 4096)
B_SIZES(64KiB, 65536)
B_SIZES(1MiB, 1 << 20)
B_SIZES(16MiB, 16 << 20)

/* The raw pipe round trip belongs to the connections' bench. */
BENCH(ping_mp, "pingpong_64B", "mp.h", "us", -1) { return b_pingpong(&ops_mp, NPING); }
BENCH(ping_mq, "pingpong_64B", "POSIX mq", "us", -1) { return b_pingpong(&ops_mq, NPING_SLOW); }
BENCH(ping_ring, "pingpong_64B", "mutex+condvar ring", "us", -1) {
    return b_pingpong(&ops_ring, NPING_SLOW);
}

/* The scale curve: 1,000,000 messages in all, whatever N. */
BENCH_SCALE(qn_mp, "queue_NpNc_64B", "mp.h", "msg/s", 1, 1, 2, 4, 8, 16) {
    return b_stream(&ops_mp, n, SMALL, NSMALL, BOUND);
}
BENCH_SCALE(qn_ring, "queue_NpNc_64B", "robust mutex+condvar ring", "msg/s", 1, 1, 2, 4, 8, 16) {
    return b_stream(&ops_ring_robust, n, SMALL, NSMALL, BOUND);
}
