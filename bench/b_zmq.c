/* ZeroMQ as a peer: ipc:// (a Unix socket) PUSH/PULL for the one-way streams, REQ/REP
   for the ping-pong. Compiled in with MPB_HAVE_ZMQ=1 when the Makefile finds
   libzmq3-dev's zmq.h (and links -lzmq); otherwise every pair reports itself skipped.

   Each process makes its own context after the fork (ZeroMQ contexts do not survive
   one). The bound of 1024 (or 8) messages is the high-water mark on each side, so up
   to twice that, plus the socket buffer, can be in flight. */
#define _GNU_SOURCE
#include "bench.h"
#include "peer.h"
#include <stdio.h>

#ifndef MPB_HAVE_ZMQ
#define MPB_HAVE_ZMQ 0
#endif

#if MPB_HAVE_ZMQ
#include <zmq.h>

static void zmq_note(const char *what) {
    int a, b, c;
    zmq_version(&a, &b, &c);
    b_note("ZeroMQ %d.%d.%d, %s", a, b, c, what);
}

typedef struct {
    pb_gate gate;
    char endpoint[96];
    size_t size;
    long n;
    int hwm, received; /* received: the puller has every message */
} zjob;

/* A socket of the given type, bound or connected to j->endpoint, in a new context. */
static void *z_socket(const zjob *j, void **ctx, int type, bool bind) {
    *ctx = zmq_ctx_new();
    void *s = *ctx ? zmq_socket(*ctx, type) : NULL;
    if (!s) return NULL;
    int hwm = j->hwm;
    zmq_setsockopt(s, type == ZMQ_PUSH ? ZMQ_SNDHWM : ZMQ_RCVHWM, &hwm, sizeof hwm);
    if ((bind ? zmq_bind(s, j->endpoint) : zmq_connect(s, j->endpoint)) != 0) return NULL;
    return s;
}

/* Closes s and ends ctx; with linger, waits until what s still holds is delivered. */
static void z_close(void *ctx, void *s, bool linger) {
    int ms = linger ? -1 : 0;
    if (s) {
        zmq_setsockopt(s, ZMQ_LINGER, &ms, sizeof ms);
        zmq_close(s);
    }
    if (ctx) zmq_ctx_term(ctx);
}

static int z_pusher(void *arg, int who) {
    zjob *j = (zjob *)arg;
    void *ctx, *s = z_socket(j, &ctx, ZMQ_PUSH, false);
    char *msg = (char *)calloc(1, j->size);
    int rc = 0;
    if (!s || !msg) return 1;
    pb_gate_wait(&j->gate);
    for (long i = 0; i < j->n && !rc; i++) {
        memcpy(msg, &i, sizeof i);
        rc = zmq_send(s, msg, j->size, 0) != (int)j->size;
    }
    pb_gate_done(&j->gate, who);
    /* Stay connected until the puller has it all: ZeroMQ 4.3 can drop the last
       messages still queued at the bound end when the pusher disconnects. */
    while (!rc && !__atomic_load_n(&j->received, __ATOMIC_ACQUIRE)) usleep(1000);
    z_close(ctx, s, true);
    free(msg);
    return rc;
}

static int z_puller(void *arg, int who) {
    zjob *j = (zjob *)arg;
    void *ctx, *s = z_socket(j, &ctx, ZMQ_PULL, true);
    char *msg = (char *)malloc(j->size);
    long bad = 0;
    if (!s || !msg) return 1;
    pb_gate_wait(&j->gate);
    for (long i = 0; i < j->n; i++) {
        long seq = -1;
        if (zmq_recv(s, msg, j->size, 0) != (int)j->size) {
            __atomic_store_n(&j->received, 1, __ATOMIC_RELEASE); /* let the pusher go */
            return 1;
        }
        memcpy(&seq, msg, sizeof seq);
        bad += seq != i;
    }
    pb_gate_done(&j->gate, who);
    __atomic_store_n(&j->received, 1, __ATOMIC_RELEASE);
    z_close(ctx, s, false);
    free(msg);
    return bad != 0;
}

/* Seconds to push n messages of size bytes from one process to another; < 0 on failure. */
static double z_stream(size_t size, int hwm, long n) {
    zjob *j = (zjob *)pb_shared(sizeof(zjob));
    if (!j) return -1;
    snprintf(j->endpoint, sizeof j->endpoint, "ipc:///tmp/mpbench-zmq-%d", (int)getpid());
    j->size = size, j->n = n, j->hwm = hwm;
    /* The puller binds before the pusher connects: a connect that comes first is
       retried only after ZeroMQ's reconnect interval (100 ms). */
    pid_t pids[2] = {-1, pb_fork(z_puller, j, 1)};
    unsigned spins = 0;
    while (__atomic_load_n(&j->gate.ready, __ATOMIC_ACQUIRE) < 1 && pids[1] > 0) pb_spin(&spins);
    pids[0] = pb_fork(z_pusher, j, 0);
    pb_gate_open(&j->gate, 2);
    bool ok = pb_join(pids, 2);
    double dt = pb_gate_elapsed(&j->gate, 2);
    unlink(j->endpoint + 6);
    munmap(j, sizeof(zjob));
    return ok ? dt : -1;
}

BENCH(zmq_q1p1c, "queue_1p1c_64B", "ZeroMQ PUSH/PULL", "msg/s", +1) {
    enum { N = 1000000 };
    zmq_note("ipc:// PUSH/PULL, high-water marks 1024");
    double dt = z_stream(64, 1024, N);
    return dt < 0 ? b_fail("a worker failed or messages were lost") : N / dt;
}

BENCH(zmq_q1mib, "queue_1MiB", "ZeroMQ PUSH/PULL", "GB/s", +1) {
    enum { N = 2000 };
    zmq_note("ipc:// PUSH/PULL, high-water marks 8; GB = 1e9 bytes");
    double dt = z_stream(1 << 20, 8, N);
    return dt < 0 ? b_fail("a worker failed or messages were lost") : N * (double)(1 << 20) / dt / 1e9;
}

static int z_replier(void *arg, int who) {
    zjob *j = (zjob *)arg;
    void *ctx = zmq_ctx_new(), *s = ctx ? zmq_socket(ctx, ZMQ_REP) : NULL;
    char msg[64];
    (void)who;
    if (!s || zmq_bind(s, j->endpoint) != 0) return 1;
    pb_gate_wait(&j->gate);
    for (long i = 0; i < j->n; i++) {
        int k = zmq_recv(s, msg, sizeof msg, 0);
        if (k < 0 || zmq_send(s, msg, (size_t)k, 0) != k) return 1;
    }
    z_close(ctx, s, true);
    return 0;
}

BENCH(zmq_pingpong, "pingpong_64B", "ZeroMQ REQ/REP", "us", -1) {
    enum { N = 20000 };
    zjob *j = (zjob *)pb_shared(sizeof(zjob));
    char msg[64] = "ping";
    double res;
    if (!j) return b_fail("mmap");
    snprintf(j->endpoint, sizeof j->endpoint, "ipc:///tmp/mpbench-zmq-%d", (int)getpid());
    j->n = N + 1;
    b_party(0);
    pid_t pid = pb_fork(z_replier, j, 1);
    void *ctx = zmq_ctx_new(), *s = ctx ? zmq_socket(ctx, ZMQ_REQ) : NULL;
    bool ok = s && zmq_connect(s, j->endpoint) == 0;
    pb_gate_open(&j->gate, 1);
    /* The first round trip waits for the connection. */
    ok = ok && zmq_send(s, msg, sizeof msg, 0) == 64 && zmq_recv(s, msg, sizeof msg, 0) == 64;
    double t0 = b_now();
    for (long i = 0; i < N && ok; i++)
        ok = zmq_send(s, msg, sizeof msg, 0) == 64 && zmq_recv(s, msg, sizeof msg, 0) == 64;
    double dt = b_now() - t0;
    z_close(ctx, s, false);
    if (!ok) kill(pid, SIGKILL);
    ok = pb_join(&pid, 1) && ok;
    unlink(j->endpoint + 6);
    munmap(j, sizeof(zjob));
    zmq_note("ipc:// REQ/REP; 20,000 of 100,000 round trips (scaled down, same rate)");
    res = ok ? dt / N * 1e6 : b_fail("a round trip failed");
    return res;
}

#else /* no zmq.h */

#define ZMQ_SKIP(fn, workload, system, unit, better)                                    \
    BENCH(fn, workload, system, unit, better) {                                         \
        return b_skip("zmq.h not found: install libzmq3-dev (make bench-deps)");        \
    }
ZMQ_SKIP(zmq_q1p1c, "queue_1p1c_64B", "ZeroMQ PUSH/PULL", "msg/s", +1)
ZMQ_SKIP(zmq_q1mib, "queue_1MiB", "ZeroMQ PUSH/PULL", "GB/s", +1)
ZMQ_SKIP(zmq_pingpong, "pingpong_64B", "ZeroMQ REQ/REP", "us", -1)
#endif
